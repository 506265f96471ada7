"""docs/errors.rst is a test table: every row holds exactly as written.

Each row of the page's table is read here and matched to a case below (by the
start of its Input cell).  A case triggers the input (one trigger for each
alternative the Message cell gives, separated by " / " or "(or: ...)"), and the
test checks that the exception, warning or exit status is the one the row names
and that its message holds the row's message: its fragments (split at "...")
in order, with the placeholders PATH, FOLDER, NAME(S), N, M, V, B, L, E, C, S
standing for any text.  A row without a case, or a case without a row, fails.
Rows whose behaviour needs a fault injected (a full disk) name the test that
checks it instead.
"""

import contextlib
import csv
import io
import os
import pickle
import re
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits

from sktriplet import TripletEmbedder, launch, load, save
from sktriplet.cli import main
from sktriplet.metrics import mean_average_precision_at_r

keras = pytest.importorskip("keras")

from test_encoders import Subclassed  # noqa: E402
from test_persistence import (  # noqa: E402
    _rewrite_encoder_config,
    _rewrite_member,
    _rewrite_metadata,
    _rewrite_optimizer_state,
    _set,
    use_os_system,
)
from test_training import _Collapse, _InterruptAt  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "docs" / "errors.rst"
QUICK = dict(epochs=1, hidden_layer_sizes=(8,), random_state=0, device="cpu")
RNG = np.random.RandomState(0)
X = RNG.normal(size=(60, 5))
Y = np.arange(60) % 3
X4 = RNG.normal(size=(4, 3))


def table_rows(text: str) -> list[list[str]]:
    """The rows of the page's list-table, each as its cells' text."""
    rows = []
    for line in text.splitlines():
        if line.startswith("   * - "):
            rows.append([line[7:]])
        elif line.startswith("     - ") and rows:
            rows[-1].append(line[7:])
        elif line.startswith("       ") and rows and line.strip():
            rows[-1][-1] += " " + line.strip()
        elif rows and line.strip() and not line.startswith(" "):
            break
    # A backslash escapes reStructuredText (``n_components\_``, not a link).
    return [
        [" ".join(cell.replace("\\_", "_").split()) for cell in row] for row in rows[1:]
    ]


_PLACEHOLDER = re.compile(r"\b(?:PATH|FOLDER|NAMES|NAME|N|M|V|B|L|E|C)\b|\bS'|\bS\b")


def _alternatives(message: str) -> list[str]:
    """The messages a cell gives: split at " / " and at "(or: ...)"."""
    main_text, _, other = message.partition("(or: ")
    alternatives = main_text.split(" / ")
    if other:
        alternatives.append(other.rstrip(")").strip())
    return [a.strip() for a in alternatives if a.strip()]


def _holds(pattern: str, text: str) -> bool:
    """Whether ``text`` holds the fragments of ``pattern`` (split at "..."),
    in order, placeholders standing for any text."""
    position = 0
    for fragment in (f.strip() for f in pattern.split("...")):
        if not fragment:
            continue
        regex = _PLACEHOLDER.sub(".+?", re.escape(fragment).replace("\\ ", " "))
        found = re.compile(regex, re.DOTALL).search(text, position)
        if not found:
            return False
        position = found.end()
    return True


def _outcomes(trigger) -> list[tuple[set, str]]:
    """What ``trigger`` gave: each (names that describe it, message), from an
    exception (its class and base classes), the warnings it raised, or a CLI
    exit status with its standard error."""
    stderr = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with contextlib.redirect_stderr(stderr):
                result = trigger()
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt included
            if isinstance(exc, (SystemExit, GeneratorExit)):
                raise
            return [({c.__name__ for c in type(exc).__mro__}, str(exc))]
    found = [({c.__name__ for c in w.category.__mro__}, str(w.message)) for w in caught]
    if isinstance(result, int):  # the exit status of sktriplet.cli.main
        found.append(({f"exit status {result}"}, stderr.getvalue()))
    return found


# --- what the triggers share -------------------------------------------------


def _digits(n=120):
    X_digits, y_digits = load_digits(return_X_y=True)
    return X_digits[:n] / 16.0, y_digits[:n]


@cache
def _fitted():
    """A small fitted model on 5 features."""
    return TripletEmbedder(**QUICK).fit(X, Y)


@cache
def _image_model():
    images, y = _digits()
    return TripletEmbedder(**QUICK).fit(images.reshape(-1, 8, 8, 1), y)


@cache
def _folder() -> Path:
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="sktriplet-errors-")
    atexit.register(shutil.rmtree, folder, True)
    return Path(folder)


@cache
def _model_file() -> Path:
    """A model saved from Python, fitted on the digits without feature names."""
    path = _folder() / "digits.sktriplet"
    save(TripletEmbedder(**QUICK).fit(*_digits()), path)
    return path


def _csv(name: str, cells: list) -> Path:
    """A CSV file of the digits with a 'label' column of ``cells``."""
    images, _ = _digits(len(cells))
    path = _folder() / name
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"px{i}" for i in range(64)] + ["label"])
        w.writerows([*row.tolist(), cell] for row, cell in zip(images, cells))
    return path


def _with(a, index, value):
    a = a.astype(float)
    a[index] = value
    return a


def _exit_status(main, argv):
    """A trigger that runs a command's ``main`` and gives its exit status,
    whether it returns it or exits with it (argparse's errors)."""

    def run():
        try:
            return main(argv)
        except SystemExit as exc:
            return exc.code

    return run


def _fit(X_bad, y_bad, **params):
    return lambda: TripletEmbedder(**{**QUICK, **params}).fit(X_bad, y_bad)


def _encoder(inputs_shape, outputs):
    def build():
        inputs = keras.Input(inputs_shape)
        return keras.Model(inputs, outputs(inputs))

    return build


def _rewritten(change) -> Path:
    target = _folder() / f"changed-{abs(hash(change))}.sktriplet"
    _rewrite_metadata(_model_file(), target, change)
    return target


def _load_with_optimizer_state(change):
    def run():
        target = _folder() / f"optimizer-{abs(hash(change))}.sktriplet"
        _rewrite_optimizer_state(_model_file(), target, change)
        return load(target)

    return run


def _load_with_a_damaged_encoder():
    target = _folder() / "damaged.sktriplet"
    _rewrite_member(_model_file(), target, "encoder.keras", lambda d: d[:100])
    return load(target)


def _load_with_os_system():
    target = _folder() / "os_system.sktriplet"
    _rewrite_encoder_config(_model_file(), target, use_os_system)
    return load(target)


def _lambda_model_file():
    inputs = keras.Input((64,))
    out = keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Dense(4)(inputs))
    emb = TripletEmbedder(encoder=keras.Model(inputs, out), **QUICK).fit(*_digits())
    target = _folder() / "lambda.sktriplet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save(emb, target)
    return target


def _partial_fit_kinds():
    emb = TripletEmbedder(**QUICK).partial_fit(X, np.eye(3, dtype=int)[Y])
    return emb.partial_fit(X, Y)


def _partial_fit_columns():
    emb = TripletEmbedder(**QUICK).partial_fit(X, np.eye(3, dtype=int)[Y])
    return emb.partial_fit(X, np.eye(4, dtype=int)[Y])


def _many_small_classes():
    X_big = RNG.normal(size=(10_200, 4)).astype(np.float32)
    y_big = np.arange(len(X_big)) % 2_040
    emb = TripletEmbedder(hidden_layer_sizes=(), n_components=2, epochs=1,
                          learning_rate_schedule="adaptive")  # fmt: skip
    return emb.fit(X_big, y_big)


def _plot_multilabel():
    import matplotlib

    matplotlib.use("Agg")
    from sktriplet.plotting import plot_embedding

    return plot_embedding(_fitted(), X, np.eye(3, dtype=int)[Y])


def _launch_on_a_taken_port():
    import socket

    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["--processes", "2", "--coordinator", f"localhost:{port}", __file__]
        return _exit_status(launch.main, argv)()


def _onnx_of(build):
    from sktriplet.onnx import to_onnx

    return to_onnx(TripletEmbedder(**{**QUICK, "encoder": build()}).fit(X, Y))


def _cli(*args):
    return lambda: main([str(a) for a in args])


def _fit_cli(name, cells, *options):
    data = _csv(name, cells)
    return main(["fit", str(data), "--target", "label", "--output",
                 str(_folder() / "m"), *options])  # fmt: skip


def _transform_narrow():
    narrow = _folder() / "narrow.csv"
    narrow.write_text("a,b\n1,2\n")
    return main(["transform", str(_model_file()), str(narrow), "--output",
                 str(_folder() / "e.csv")])  # fmt: skip


def _non_finite_csv():
    """64 feature columns, as the digits model takes, with a 'nan' cell."""
    path = _folder() / "nan.csv"
    rows = _digits(5)[0].astype(str).tolist()
    rows[1][0] = "nan"
    path.write_text(
        "\n".join(",".join(row) for row in [[f"c{i}" for i in range(64)], *rows])
    )
    return path


# Each case: the start of a row's Input cell, and its triggers (or the test
# that checks the row, where a fault must be injected).
CASES = {
    "NaN in ``X``": [_fit(_with(X, (0, 0), np.nan), Y)],
    "infinity in ``X``": [_fit(_with(X, (0, 0), np.inf), Y)],
    "values beyond float32's range": [_fit(_with(X, (0, 0), 1e39), Y)],
    "NaN in ``y``": [_fit(X, _with(Y, 0, np.nan))],
    "continuous ``y``": [_fit(X, RNG.normal(size=60))],
    "``y`` is None": [_fit(X, None)],
    "a 2-D ``y`` that is not a binary indicator": [
        _fit(X4, np.array([[0, 2], [1, 0], [1, 1], [0, 1]]))
    ],
    "``y`` as a list (or set) of labels per sample": [
        _fit(X4, [["a", "b"], ["b", "c"], ["a", "c"], ["c", "a"]])
    ],
    "``-1`` in a multi-label indicator ``y``": [
        _fit(X4, np.array([[1, -1], [1, 0], [0, 1], [-1, 1]]))
    ],
    "a multi-label ``y`` where no label is shared": [
        _fit(X4, np.array([[1, 0], [0, 1], [0, 0], [0, 0]]))
    ],
    "a multi-label ``y`` with a label that every sample has": [
        _fit(X4, np.array([[1, 0], [1, 1], [1, 0], [1, 1]]))
    ],
    "``partial_fit`` with another kind of ``y``": [
        _partial_fit_kinds,
        _partial_fit_columns,
    ],
    '``validation_strategy="class_disjoint"`` with a multi-label': [
        _fit(X, np.eye(3, dtype=int)[Y], validation_strategy="class_disjoint")
    ],
    "every sample unlabelled": [_fit(X, np.full(60, -1))],
    "string labels mixed with -1": [_fit(X, np.array(["a", "b", "-1"] * 20))],
    "a single class": [_fit(X, np.full(60, 3))],
    "no class with two or more samples": [_fit(X[:5], np.arange(5))],
    "some classes with a single sample": [
        _fit(X, np.r_[np.arange(50) % 5, 10 + np.arange(10)])
    ],
    "``len(y) != len(X)``": [_fit(X, Y[:-1])],
    "empty ``X``": [_fit(X[:0], Y[:0])],
    "one sample": [_fit(X[:1], Y[:1])],
    "1-D ``X``": [_fit(X[:, 0], Y)],
    "5-D ``X``": [_fit(X.reshape(60, 5, 1, 1, 1), Y)],
    "images with the channels first": [_fit(np.zeros((60, 3, 8, 8)), Y)],
    "``transform`` of images of another shape": [
        lambda: _image_model().transform(np.zeros((2, 8, 9, 1)))
    ],
    "``similarity`` of unpaired inputs": [lambda: _fitted().similarity(X, X[:3])],
    "strings or objects in ``X``": [_fit(np.full((60, 5), "a", dtype=object), Y)],
    "sparse ``X``": [_fit(sp.csr_matrix(X), Y)],
    "fewer samples than one batch": [_fit(X, Y, batch_size=128)],
    "an embedding of size 1": [_fit(X, Y, n_components=1)],
    "any invalid parameter value": [_fit(X, Y, margin=0.0)],
    "``hidden_layer_sizes`` with a zero": [_fit(X, Y, hidden_layer_sizes=(0,))],
    "``transform`` with the wrong number of features": [
        lambda: _fitted().transform(X[:, :4])
    ],
    "``transform`` or ``score`` before ``fit``": [
        lambda: TripletEmbedder().transform(X)
    ],
    "an ``encoder`` whose output is not one vector": [
        _fit(
            X,
            Y,
            encoder=_encoder(
                (5,), lambda t: keras.layers.Reshape((4, 2))(keras.layers.Dense(8)(t))
            ),
        )
    ],
    "an ``encoder`` whose output size differs": [
        _fit(X, Y, encoder=_encoder((5,), keras.layers.Dense(8)), n_components=4)
    ],
    "an ``encoder`` whose input shape does not fit": [
        _fit(*_digits(), encoder=_encoder((10,), keras.layers.Dense(8)))
    ],
    "a subclassed ``keras.Model`` instance": [_fit(X, Y, encoder=Subclassed())],
    "``save`` of a model whose encoder has ``Lambda`` layers": [
        lambda: save(
            TripletEmbedder(
                encoder=_encoder((5,), keras.layers.Lambda(lambda t: t * 2.0)),
                **QUICK,
            ).fit(X, Y),
            _folder() / "with-lambda.sktriplet",
        )
    ],
    "an ``encoder`` callable that returns no Keras model": [
        _fit(X, Y, encoder=lambda: 3)
    ],
    "``early_stopping`` with too few samples per class": [
        _fit(X[:12], np.arange(12) % 4, early_stopping=True)
    ],
    '``early_stopping="auto"`` above 10000 samples': [_many_small_classes],
    "a loss that turns NaN or infinite": [
        _fit(
            *(lambda d: (d[0] * 1e20, d[1]))(_digits(400)),
            learning_rate=1e30,
            normalize=False,
            epochs=5,
            hidden_layer_sizes=(),
        )
    ],
    "``KeyboardInterrupt`` (Ctrl-C) during ``fit``": [
        _fit(
            *_digits(400), epochs=10, callbacks=[_InterruptAt(1)], early_stopping=True
        ),
        _fit(*_digits(), epochs=10, callbacks=[_InterruptAt(1)]),
    ],
    "an embedding that collapsed to one point": [
        _fit(*_digits(), callbacks=[_Collapse()])
    ],
    "``sample_size`` of a retrieval metric": [
        lambda: mean_average_precision_at_r(X, Y, sample_size=0)
    ],
    "``load`` of a path that does not exist": [
        lambda: load(_folder() / "nowhere.sktriplet")
    ],
    "``load`` of a damaged or foreign file": [
        lambda: load(__file__),
        _load_with_a_damaged_encoder,
    ],
    "``load`` of a file from a newer format version": [
        lambda: load(_rewritten(_set("format_version", value=99)))
    ],
    "``load`` of a file whose metadata holds a key outside": [
        lambda: load(_rewritten(_set("fitted", "transform", value=1)))
    ],
    "``load`` of a file whose metadata holds a value of the wrong type": [
        lambda: load(_rewritten(_set("fitted", "n_components_", value="8")))
    ],
    "``load`` of a file whose encoder does not match": [
        lambda: load(_rewritten(_set("fitted", "n_components_", value=4)))
    ],
    "``load`` of a file whose optimizer state does not fit": [
        _load_with_optimizer_state(lambda a: a[..., :1] if a.ndim else a),
        _load_with_optimizer_state(lambda a: a * np.inf),
    ],
    "``load`` of a file whose encoder needs code to load": [
        _load_with_os_system,
        lambda: load(_lambda_model_file()),
    ],
    "``save`` onto a folder, or into a folder that does not exist": [
        lambda: save(_fitted(), _folder()),
        lambda: save(_fitted(), _folder() / "no" / "m.sktriplet"),
    ],
    "``save`` that fails (a full disk) or is interrupted": (
        "test_persistence.py::test_failed_save_leaves_the_old_file_whole"
    ),
    "``strategy=keras.distribution.DataParallel()`` on the TensorFlow": [
        _fit(X, Y, strategy=keras.distribution.DataParallel())
    ],
    "``python -m sktriplet.launch`` of a script": [
        _exit_status(launch.main, ["--processes", "2", "no-such-script.py"])
    ],
    "``python -m sktriplet.launch`` with a coordinator that is not": [
        _exit_status(
            launch.main, ["--processes", "2", "--coordinator", "localhost", __file__]
        ),
        _exit_status(
            launch.main, ["--processes", "2", "--heartbeat-timeout", "0", __file__]
        ),
        _launch_on_a_taken_port,
    ],  # fmt: skip
    "``python -m sktriplet.launch``: a script that raises": (
        "test_launch.py::test_a_script_that_raises_ends_the_run_at_once_and_says_why"
    ),
    "``strategy=keras.distribution.DataParallel()`` with a ``batch_size``": (
        "test_launch.py::test_a_batch_the_processes_cannot_split_fails_before_training"
    ),
    "``pickle`` of an estimator whose ``strategy`` is set": [
        lambda: pickle.dumps(
            _fitted().set_params(
                strategy=pytest.importorskip("tensorflow").distribute.get_strategy()
            )
        )
    ],
    "``sktriplet fit`` or ``transform``: an input that is a folder": [
        _cli("fit", _folder(), "--target", "label", "--output", "m"),
        _cli("fit", __file__, "--target", "x", "--output", _folder() / "no" / "m"),
    ],
    "``sktriplet fit`` or ``transform``: any other ``OSError``": (
        "test_cli.py::test_a_disk_error_while_writing_is_one_line_and_keeps_the_old_"
        "output"
    ),
    "``sktriplet fit`` or ``transform``: a cell that is not a finite number": [
        lambda: main(
            [
                "transform",
                str(_model_file()),
                str(_non_finite_csv()),
                "--output",
                str(_folder() / "e.csv"),
            ]
        )  # fmt: skip
    ],
    "``sktriplet fit``: ``-1`` in a label column": [
        lambda: _fit_cli("text.csv", ["a", "b", "-1"] * 5),
        lambda: _fit_cli(
            "beside.csv", ["1|-1", "2", "1"] * 5, "--label-separator", "|"
        ),
    ],
    "ONNX export (``onnx.to_onnx``, ``onnx.export``)": [
        lambda: _onnx_of(_encoder((5,), keras.layers.Dense(4, activation="gelu"))),
        lambda: _onnx_of(
            _encoder(
                (5,), lambda t: keras.layers.LSTM(3)(keras.layers.Reshape((5, 1))(t))
            )
        ),
    ],
    "``sktriplet fit``: a label column that labels no row": [
        lambda: _fit_cli("none.csv", [""] * 30),
        lambda: _fit_cli("one.csv", ["cat"] * 30, "--label-separator", "|"),
    ],
    "``plotting.plot_embedding`` of a multi-label ``y``": [_plot_multilabel],
    "``sktriplet transform`` of a model without feature names": [_transform_narrow],
}


ROWS = table_rows(PAGE.read_text())


def _case_of(row: list[str]) -> str:
    keys = [key for key in CASES if row[0].startswith(key)]
    assert len(keys) == 1, f"{len(keys)} cases for the row {row[0]!r}"
    return keys[0]


def test_every_row_has_a_case_and_every_case_a_row():
    cases = [_case_of(row) for row in ROWS]
    assert sorted(cases) == sorted(CASES), set(CASES) - set(cases)


@pytest.mark.parametrize("row", ROWS, ids=[row[0][:60] for row in ROWS])
def test_the_row_holds_as_written(row):
    what, message = row[1], row[2]
    case = CASES[_case_of(row)]
    if isinstance(case, str):  # checked by the named test, which must exist
        module, _, test = case.partition("::")
        assert f"def {test}(" in (Path(__file__).with_name(module)).read_text()
        return
    expected = set(re.findall(r"``(\w+)``", what))
    expected |= {f"exit status {n}" for n in re.findall(r"exit status (\d+)", what)}
    alternatives = _alternatives(message)
    matched = set()
    for trigger in case:
        outcomes = _outcomes(trigger)
        hits = [
            alternative
            for names, text in outcomes
            if names & expected
            for alternative in alternatives
            if _holds(alternative, text)
        ]
        assert hits, f"{what!r} / {message!r} not in {outcomes!r}"
        matched.update(hits)
    assert matched == set(alternatives), set(alternatives) - matched


def test_the_page_matcher_reads_placeholders_and_elisions():
    assert _holds(
        "X has N features ... expecting M", "X has 4 features, but expecting 5"
    )
    assert not _holds("X has N features", "Y has 4 features")
    assert _alternatives("a / b (or: c)") == ["a", "b", "c"]
    assert os.fspath(PAGE).endswith("errors.rst") and len(ROWS) > 50
