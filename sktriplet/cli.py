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
import os
import sys
from collections.abc import Callable

import numpy as np

from ._files import check_output_path, writing
from ._table import (
    UNLABELLED_HELP,
    CommandError,
    check_input,
    features,
    model_columns,
    read_csv,
    target_labels,
)
from .console import quiet_framework_start


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


# The fit command's options that are TripletEmbedder parameters of one name.
_PARAMS = ("n_components", "margin", "mining", "epochs", "random_state", "verbose")


def _fit(args) -> Callable[[], None]:
    """Check the input and output of ``sktriplet fit``; return the training."""
    _check_output(args.output)
    header, body = read_csv(args.data)
    if args.target not in header:
        raise CommandError(
            f"{args.data} has no column {args.target!r}; its columns are "
            + ", ".join(repr(c) for c in header)
        )
    columns = [c for c in header if c != args.target]
    if not columns:
        raise CommandError(f"{args.data} has no feature column besides the target")
    X = features(args.data, header, body, [header.index(c) for c in columns])
    cells = [row[header.index(args.target)] for row in body]
    y, keep, kind, text = target_labels(cells, args.target, args.label_separator)
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


def _transform(args) -> Callable[[], None]:
    """Check the model file (its metadata only), the CSV file's columns and the
    output of ``sktriplet transform``; return the embedding."""
    from .persistence import read_metadata

    check_input(args.model)
    _check_output(args.output)
    try:
        fitted = read_metadata(args.model)["fitted"]
    except ValueError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    header, body = read_csv(args.data)
    X = features(args.data, header, body, model_columns(fitted, args.data, header))

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

    check_input(args.model)
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
    except BrokenPipeError:
        # The reader of standard output left (``| head``): stop quietly, as
        # Unix tools do, and keep Python from reporting the pipe again as it
        # flushes standard output on the way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
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
