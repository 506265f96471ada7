"""Tables for the ``sktriplet`` command: a CSV file read and checked, its
feature columns as a matrix, its target column as labels.

Every problem found (a missing file, a short line, text where a number goes, a
column the model needs and the file lacks, labels that cannot train) is a
:class:`CommandError` that names the file, the line and the column, raised
before Keras starts.  Pure Python and numpy.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np

__all__ = [
    "UNLABELLED_HELP",
    "CommandError",
    "check_input",
    "features",
    "target_labels",
    "model_columns",
    "read_csv",
]


class CommandError(Exception):
    """A problem with the command's input, reported in one line."""


def check_input(path: str) -> None:
    """Refuse an input path that is missing, a folder, or unreadable."""
    if os.path.isdir(path):
        raise CommandError(f"{path} is a folder, not a file")
    try:
        open(path, "rb").close()
    except FileNotFoundError:
        raise CommandError(f"no such file: {path}") from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


def read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    check_input(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CommandError(f"cannot read {path} as CSV: {exc}") from None
    if len(rows) < 2:
        raise CommandError(f"{path} needs a header line and at least one data line")
    header, body = rows[0], rows[1:]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise CommandError(
                f"{path}, line {line}: {len(row)} fields, but the header has "
                f"{len(header)}"
            )
    return header, body


def features(path, header, body, index: list[int]) -> np.ndarray:
    """The numeric matrix of the columns at ``index``, checked cell by cell."""
    X = np.empty((len(body), len(index)))
    for line, row in enumerate(body, start=2):
        for j, i in enumerate(index):
            try:
                value = float(row[i])
            except ValueError:
                raise CommandError(
                    f"{path}, line {line}, column {header[i]!r}: {row[i]!r} is not a "
                    "number (feature columns must be numeric)"
                ) from None
            if not math.isfinite(value):
                raise CommandError(
                    f"{path}, line {line}, column {header[i]!r}: {row[i]!r} is not a "
                    "finite number (fill or drop missing values first)"
                )
            X[line - 2, j] = value
    return X


def model_columns(fitted: dict, path: str, header: list[str]) -> list[int]:
    """Where the columns that a model embeds stand in ``path``, in the model's
    order; ``fitted`` is the model file's checked metadata of fitted attributes
    (:func:`sktriplet.persistence.read_metadata`).

    A model fitted by ``sktriplet fit`` (or on a DataFrame) knows its columns by
    name.  One fitted on a plain array knows only how many: the file must then
    hold exactly that many columns, taken in order.
    """
    sample_shape, n_features = tuple(fitted["sample_shape"]), fitted["n_features_in_"]
    if len(sample_shape) != 1:
        raise CommandError(
            f"the model embeds samples of shape {sample_shape} (images), "
            "not CSV rows; use TripletEmbedder.transform from Python"
        )
    names = fitted["feature_names_in_"]
    if names is None:
        if len(header) != n_features:
            raise CommandError(
                f"the model was fitted without feature names on "
                f"{n_features} features, so {path} must have exactly "
                f"{n_features} columns, in the order of fitting; it "
                f"has {len(header)}"
            )
        return list(range(len(header)))
    columns = [str(c) for c in names]
    missing = [c for c in columns if c not in header]
    if missing:
        raise CommandError(
            f"{path} lacks the model's feature columns: "
            + ", ".join(repr(c) for c in missing)
        )
    return [header.index(c) for c in columns]


UNLABELLED_HELP = (
    "An empty label cell marks an unlabelled row, and so does -1 in a column of "
    "integer labels. With one label per row, unlabelled rows train as "
    "sklearn.semi_supervised takes them; with --label-separator they are left "
    "out, and the command says how many. Spaces around labels are ignored."
)


def target_labels(cells: list[str], column: str, separator: str | None) -> tuple:
    """The target ``column`` as ``y`` (one label per row, or with ``separator``
    the multi-label indicator matrix of the labels each cell lists), which rows
    it keeps, what its classes are called, and the text labels that integer
    codes in ``y`` stand for (None where ``y`` holds the labels themselves);
    see :data:`UNLABELLED_HELP`."""
    if separator is None:
        sets = [[cell.strip()] if cell.strip() else [] for cell in cells]
    else:
        sets = [
            [label.strip() for label in cell.split(separator) if label.strip()]
            for cell in cells
        ]
    names = {label for labels in sets for label in labels}
    integers = all(_is_integer(name) for name in names)
    if "-1" in names and not integers:
        raise CommandError(
            f"column {column!r} mixes text labels with -1; mark unlabelled rows "
            "with an empty cell"
        )
    unlabelled = np.array([not labels or labels == ["-1"] for labels in sets])
    if (
        "-1" in names
        and separator is not None
        and any("-1" in labels and len(labels) > 1 for labels in sets)
    ):
        raise CommandError(
            f"column {column!r} lists -1 beside other labels in a row; -1 marks "
            "an unlabelled row and stands alone"
        )
    names.discard("-1")
    if unlabelled.all():
        raise CommandError(
            f"column {column!r} labels none of the {len(cells)} rows (every cell "
            "is empty or -1); training needs labelled rows of two classes or more"
        )
    if separator is not None and len(names) == 1:
        raise CommandError(
            f"column {column!r} lists one label only, {next(iter(names))!r}; "
            "training needs two labels or more"
        )
    every_row = np.ones(len(cells), dtype=bool)
    if separator is None:
        first = np.array([labels[0] if labels else "" for labels in sets])
        if integers:  # the user's own labels become classes_
            y = np.where(unlabelled, "-1", first).astype(int)
        elif unlabelled.any():
            # Text labels cannot sit beside -1 (see unlabelled_rows): codes,
            # named after the fit (see _fit).
            text, codes = np.unique(first[~unlabelled], return_inverse=True)
            y = np.full(len(first), -1)
            y[~unlabelled] = codes
            return y, every_row, "classes", text
        else:
            y = first
        return y, every_row, "classes", None
    # A multi-label y has no unlabelled rows: those are left out.
    order = sorted(names, key=int) if integers else sorted(names)
    code = {name: j for j, name in enumerate(order)}
    kept = [labels for labels, u in zip(sets, unlabelled) if not u]
    indicator = np.zeros((len(kept), len(order)), dtype=np.uint8)
    for i, labels in enumerate(kept):
        indicator[i, [code[label] for label in labels]] = 1
    return indicator, ~unlabelled, "labels", None


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
