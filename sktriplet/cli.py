"""The ``sktriplet`` command: train and apply an embedding from CSV files.

    sktriplet fit data.csv --target label --output model.sktriplet
    sktriplet fit data.csv --target tags --label-separator "|" --output model.sktriplet
    sktriplet transform model.sktriplet data.csv --output embeddings.csv
    sktriplet export model.sktriplet --output model.onnx

Models are written in the safe format of :mod:`sktriplet.persistence`.  Each
command first reads and checks every file, column and output path, without
starting Keras; a problem (a missing file or column, a folder where a file goes,
an output folder that does not exist, text where numbers are expected, a value
that is not finite) ends it in well under a second with a one-line message and
exit status 2, before any training.  Outputs are replaced only once complete.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from collections.abc import Callable

import numpy as np

from ._files import check_output_path, writing
from .console import quiet_framework_start


class CommandError(Exception):
    """A problem with the command's input, reported in one line."""


def _check_input(path: str) -> None:
    """Refuse an input path that is missing, a folder, or unreadable."""
    if os.path.isdir(path):
        raise CommandError(f"{path} is a folder, not a file")
    try:
        open(path, "rb").close()
    except FileNotFoundError:
        raise CommandError(f"no such file: {path}") from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


def _check_output(path: str) -> None:
    """Refuse an output path that cannot be written, before any work ("-" is
    standard output)."""
    if path == STDOUT:
        return
    try:
        check_output_path(path)
    except OSError as exc:
        where = "" if exc.filename == path else f" ({exc.filename})"
        raise CommandError(f"cannot write {path}: {exc.strerror}{where}") from None


STDOUT = "-"  # --output -: write to standard output, and report on stderr


def _output(path: str, binary: bool = True):
    """Where ``--output`` writes: standard output for "-", else the path."""
    if path != STDOUT:
        return path
    return sys.stdout.buffer if binary else sys.stdout


def _report(args, message: str) -> None:
    """The command's closing line: on stderr when the output is stdout."""
    print(message, file=sys.stderr if args.output == STDOUT else sys.stdout)


def _read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    _check_input(path)
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


def _features(path, header, body, index: list[int]) -> np.ndarray:
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


def _model_columns(fitted: dict, path: str, header: list[str]) -> list[int]:
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


# The fit command's options that are TripletEmbedder parameters of one name.
_PARAMS = ("n_components", "margin", "mining", "epochs", "random_state", "verbose")


def _fit(args) -> Callable[[], None]:
    """Check the input and output of ``sktriplet fit``; return the training."""
    _check_output(args.output)
    header, body = _read_csv(args.data)
    if args.target not in header:
        raise CommandError(
            f"{args.data} has no column {args.target!r}; its columns are "
            + ", ".join(repr(c) for c in header)
        )
    columns = [c for c in header if c != args.target]
    if not columns:
        raise CommandError(f"{args.data} has no feature column besides the target")
    X = _features(args.data, header, body, [header.index(c) for c in columns])
    cells = [row[header.index(args.target)] for row in body]
    y, keep, kind, text = _labels(cells, args.target, args.label_separator)
    X, left_out = X[keep], int(np.sum(~keep))

    def train() -> None:
        from . import TripletEmbedder, save

        embedder = TripletEmbedder(**{name: getattr(args, name) for name in _PARAMS})
        try:
            embedder.fit(X, y)
        except (ValueError, FloatingPointError) as exc:
            raise CommandError(str(exc).splitlines()[0]) from None
        embedder.feature_names_in_ = np.asarray(columns, dtype=object)
        if text is not None:  # the codes of text labels beside empty cells
            embedder.classes_ = text[embedder.classes_]
        save(embedder, _output(args.output))
        skipped = f" ({left_out} unlabelled rows left out)" if left_out else ""
        _report(
            args,
            f"trained on {len(X)} rows{skipped}, {len(columns)} features, "
            f"{len(embedder.classes_)} {kind}; model written to {args.output}",
        )

    return train


UNLABELLED_HELP = (
    "An empty label cell marks an unlabelled row, and so does -1 in a column of "
    "integer labels. With one label per row, unlabelled rows train as "
    "sklearn.semi_supervised takes them; with --label-separator they are left "
    "out, and the command says how many. Spaces around labels are ignored."
)


def _labels(cells: list[str], column: str, separator: str | None) -> tuple:
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


def _transform(args) -> Callable[[], None]:
    """Check the model file (its metadata only), the CSV file's columns and the
    output of ``sktriplet transform``; return the embedding."""
    from .persistence import read_metadata

    _check_input(args.model)
    _check_output(args.output)
    try:
        fitted = read_metadata(args.model)["fitted"]
    except ValueError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    header, body = _read_csv(args.data)
    X = _features(args.data, header, body, _model_columns(fitted, args.data, header))

    def embed() -> None:
        from . import load

        try:
            embedder = load(args.model)
        except ValueError as exc:
            raise CommandError(str(exc).splitlines()[0]) from None
        E = embedder._encoder.embed(X, embedder.device)  # columns checked above
        with writing(_output(args.output, binary=False), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([f"dim{i}" for i in range(E.shape[1])])
            writer.writerows(E.tolist())
        _report(
            args, f"embedded {len(E)} rows into {E.shape[1]} dimensions: {args.output}"
        )

    return embed


def _export(args) -> Callable[[], None]:
    """Check the model file (its metadata) and the output of ``sktriplet
    export``; return the conversion to ONNX (:mod:`sktriplet.onnx`)."""
    from .persistence import read_metadata

    _check_input(args.model)
    _check_output(args.output)
    try:
        read_metadata(args.model)
    except ValueError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None

    def export() -> None:
        from . import load
        from .onnx import export

        try:
            export(load(args.model), _output(args.output))
        except (ImportError, ValueError) as exc:
            raise CommandError(str(exc).splitlines()[0]) from None
        _report(
            args, f"wrote the ONNX model (input X, output embedding): {args.output}"
        )

    return export


# The estimator's own defaults, so that the command trains as the library does
# (a test holds them equal), written here so that the command checks its input
# without importing scikit-learn first.
DEFAULTS = {"margin": 0.5, "mining": "semihard", "epochs": 200}


def build_parser() -> argparse.ArgumentParser:
    from .mining import MINING_STRATEGIES

    default = DEFAULTS
    parser = argparse.ArgumentParser(
        prog="sktriplet",
        description="Learn an embedding where same-label rows are close (triplet "
        "loss), and embed new rows with it.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser(
        "fit",
        help="train on a CSV file",
        description="Train a TripletEmbedder on a CSV file with a header line: one "
        "column of labels (--target), every other column a numeric feature. "
        + UNLABELLED_HELP,
    )
    fit.add_argument("data", help="CSV file with a header line")
    fit.add_argument(
        "--target",
        required=True,
        help="name of the label column",
    )
    fit.add_argument(
        "--output", required=True, help="model file to write (- for standard output)"
    )
    fit.add_argument(
        "--label-separator",
        metavar="SEP",
        default=None,
        help="the target column lists several labels per row, separated by SEP "
        "(as 'beach|sunset' with SEP '|'): rows that share a label are "
        "positives, rows that share none negatives",
    )
    fit.add_argument(
        "--n-components", type=int, default=None, help="embedding size (default: 32)"
    )
    fit.add_argument(
        "--margin",
        type=float,
        default=default["margin"],
        help="triplet loss margin (default: %(default)s)",
    )
    fit.add_argument(
        "--mining",
        default=default["mining"],
        choices=MINING_STRATEGIES,
        help="which triplets train the model (default: %(default)s)",
    )
    fit.add_argument(
        "--epochs",
        type=int,
        default=default["epochs"],
        help="passes over the data, at most: training stops once the loss stops "
        "improving, and above 10000 rows it runs round(60 * sqrt(1600 / rows per "
        "class)) epochs (default: %(default)s)",
    )
    fit.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed, for reproducible models (default: 0)",
    )
    fit.add_argument(
        "--verbose",
        type=int,
        default=0,
        choices=[0, 1, 2],
        help="0 silent, 1 progress bar, 2 one line per epoch",
    )
    fit.set_defaults(run=_fit)

    transform = _model_command(
        commands,
        _transform,
        "embed the rows of a CSV file",
        "Embed the rows of a CSV file with a model written by 'sktriplet fit'. "
        "The file needs the model's feature columns; others are ignored.",
        output="CSV file to write",
    )
    transform.add_argument("data", help="CSV file with a header line")
    _model_command(
        commands,
        _export,
        "write a model as ONNX, to serve without Python's ML stack",
        "Convert a model written by 'sktriplet fit' (or sktriplet.save) to "
        "ONNX: input X, float32 samples of the model's features; output "
        "embedding. Needs the onnx extra: pip install 'sktriplet[onnx]'.",
        output="ONNX file to write",
    )
    return parser


def _model_command(commands, run, summary: str, description: str, output: str):
    """A subcommand that reads a model file and writes ``--output``; named for
    its function (``_transform`` is ``transform``)."""
    command = commands.add_parser(
        run.__name__.lstrip("_"), help=summary, description=description
    )
    command.add_argument("model", help="model file written by 'sktriplet fit'")
    command.add_argument(
        "--output", required=True, help=f"{output} (- for standard output)"
    )
    command.set_defaults(run=run)
    return command


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        work = args.run(args)  # every check, before Keras starts
        quiet_framework_start()
        work()
    except CommandError as exc:
        print(f"sktriplet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a file removed meanwhile: no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(
            f"sktriplet {args.command}: error: {exc.strerror or exc}{where}",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
