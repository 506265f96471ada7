"""The sktriplet command line: fit and transform CSV files, one-line errors."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sktriplet import TripletEmbedder, load, save
from sktriplet.cli import build_parser, main
from sktriplet.console import quiet_framework_start


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory, all_digits):
    X, y = all_digits
    path = tmp_path_factory.mktemp("cli") / "digits.csv"
    names = np.array(list("abcdefghij"))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"px{i}" for i in range(64)] + ["label"])
        for row, label in zip(X[:300], y[:300]):
            w.writerow([*row.tolist(), names[label]])
    return path


def _command(*args: str, user_log_level: str | None = None):
    """Run ``sktriplet ARGS`` in a fresh interpreter, as a user's shell would, with
    the environment of a user who set no TensorFlow log level (or ``user_log_level``).
    """
    script = Path(sys.executable).with_name("sktriplet")
    command = (
        [str(script)] if script.exists() else [sys.executable, "-m", "sktriplet.cli"]
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if user_log_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_log_level
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env)


def test_fit_then_transform_as_two_commands(data_csv, tmp_path):
    """fit and transform in two processes, as a user runs them: the second loads
    what the first wrote, embeds the rows in their order, and neither prints
    TensorFlow's start-up lines."""
    pd = pytest.importorskip("pandas")
    model = tmp_path / "model"  # no extension: the path is used as given
    fit = _command(
        "fit",
        str(data_csv),
        "--target",
        "label",
        "--output",
        str(model),
        "--epochs",
        "2",
    )
    assert fit.returncode == 0, fit.stderr
    assert "trained on 300 rows, 64 features, 10 classes" in fit.stdout
    assert fit.stderr == ""

    # New rows in reverse order, with the columns shuffled and one extra column.
    frame = pd.read_csv(data_csv).iloc[::-1]
    columns = list(frame.columns)
    np.random.RandomState(0).shuffle(columns)
    frame[columns].assign(note="x").to_csv(tmp_path / "new.csv", index=False)
    (tmp_path / "copy.sktriplet").write_bytes(model.read_bytes())
    restored = load(model)
    expected = restored.transform(frame[[f"px{i}" for i in range(64)]])
    for path in (model, tmp_path / "copy.sktriplet"):
        out = tmp_path / "emb.csv"
        transform = _command(
            "transform", str(path), str(tmp_path / "new.csv"), "--output", str(out)
        )
        assert transform.returncode == 0, transform.stderr
        assert transform.stderr == ""
        rows = list(csv.reader(open(out)))
        assert rows[0] == [f"dim{i}" for i in range(32)]
        np.testing.assert_allclose(np.array(rows[1:], dtype=float), expected, atol=1e-6)


def test_fit_a_column_of_label_sets_then_transform(tmp_path, digits):
    """A target column listing several labels a row ('even|small'; empty:
    unlabelled) trains a multi-label model, in one process; another embeds with it."""
    X, y = digits[0][:200], digits[1][:200]
    tags = [
        "|".join(t for t, on in (("even", d % 2 == 0), ("small", d < 5)) if on)
        for d in y
    ]
    data = tmp_path / "tagged.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"px{i}" for i in range(64)] + ["tags"])
        w.writerows([*row.tolist(), tag] for row, tag in zip(X, tags))
    model, out = tmp_path / "tags.sktriplet", tmp_path / "emb.csv"
    fit = _command(
        "fit", str(data), "--target", "tags", "--label-separator", "|",
        "--output", str(model), "--epochs", "2",
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    # Odd digits from 5 have no tag: unlabelled rows, left out.
    assert (
        "trained on 140 rows (60 unlabelled rows left out), 64 features, 2 labels"
        in (fit.stdout)
    )
    transform = _command("transform", str(model), str(data), "--output", str(out))
    assert transform.returncode == 0, transform.stderr
    restored = load(model)
    assert restored._multilabel and restored.classes_.tolist() == [0, 1]
    rows = np.array(list(csv.reader(open(out)))[1:], dtype=float)
    np.testing.assert_allclose(rows, restored.transform(X), atol=1e-6)


def test_fit_with_empty_label_cells_trains_on_them_unlabelled(tmp_path, digits):
    """Rows with an empty label cell are unlabelled (-1), not a class of '';
    the model, loaded in this process, keeps the text labels as its classes
    (not the codes the fit trained on: issue 44, item 9)."""
    X, y = digits
    names = np.array(list("abcdefghij"))[y[:200]]
    names[1::2] = ""
    data = tmp_path / "partly.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"px{i}" for i in range(64)] + ["label"])
        w.writerows([*row.tolist(), name] for row, name in zip(X[:200], names))
    model = tmp_path / "partly.sktriplet"
    fit = _command(
        "fit", str(data), "--target", "label", "--output", str(model), "--epochs", "2"
    )
    assert fit.returncode == 0, fit.stderr
    assert "trained on 200 rows, 64 features, 10 classes" in fit.stdout
    assert load(model).classes_.tolist() == list("abcdefghij")


def test_transform_rejects_cells_that_are_not_finite(data_csv, tmp_path, capsys):
    model = tmp_path / "model.sktriplet"
    fit = ["fit", str(data_csv), "--target", "label", "--output", str(model)]
    assert main([*fit, "--epochs", "1"]) == 0
    for cell in ("nan", "inf", "", "-Infinity"):
        bad = tmp_path / "bad.csv"
        lines = open(data_csv).read().splitlines()
        lines[2] = ",".join([cell, *lines[2].split(",")[1:]])
        bad.write_text("\n".join(lines))
        capsys.readouterr()
        assert main(["transform", str(model), str(bad), "--output", "e.csv"]) == 2
        err = capsys.readouterr().err
        assert "line 3, column 'px0'" in err, err
        assert not os.path.exists("e.csv")


def test_transform_with_a_model_fitted_on_an_array(tmp_path, capsys, digits):
    """A model saved from Python without feature names embeds a CSV of as many
    columns, in order, and names the mismatch otherwise."""
    X, y = digits
    emb = TripletEmbedder(epochs=1, hidden_layer_sizes=(8,), random_state=0)
    save(emb.fit(X[:100], y[:100]), tmp_path / "m.sktriplet")
    good = tmp_path / "good.csv"
    np.savetxt(good, X[:5], delimiter=",", header=",".join("abcdefgh" * 8), comments="")
    out = tmp_path / "e.csv"
    assert (
        main(
            [
                "transform",
                str(tmp_path / "m.sktriplet"),
                str(good),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    np.testing.assert_allclose(
        np.loadtxt(out, delimiter=",", skiprows=1),
        emb.transform(X[:5]),
        atol=1e-6,
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert (
        main(
            ["transform", str(tmp_path / "m.sktriplet"), str(bad), "--output", str(out)]
        )
        == 2
    )
    assert "must have exactly 64 columns, in the order of fitting; it has 2" in (
        capsys.readouterr().err
    )


def _noisy_start():
    """Writes to file descriptor 2 as TensorFlow's C++ start-up does."""
    os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\n")
    os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN\n")
    os.write(2, b"a line of the user's own\n")


def test_start_up_noise_is_dropped_and_other_lines_kept(monkeypatch, capfd):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet_framework_start(_noisy_start)
    assert capfd.readouterr().err == "a line of the user's own\n"


def test_a_users_log_level_is_kept_and_nothing_filtered(monkeypatch, capfd):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_framework_start(_noisy_start)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert "oneDNN" in capfd.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "missing.csv", "--target", "y", "--output", "m"], "no such file"),
        (
            ["fit", "{data}", "--target", "species", "--output", "m"],
            "has no column 'species'",
        ),
        (
            ["transform", "missing.sktriplet", "{data}", "--output", "e.csv"],
            "no such file",
        ),
    ],
)
def test_bad_input_gives_a_one_line_error(data_csv, tmp_path, capsys, args, message):
    args = [a.format(data=data_csv) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("sktriplet ")


def test_non_numeric_feature_names_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    assert main(["fit", str(bad), "--target", "label", "--output", "m"]) == 2
    assert "line 3, column 'b': 'oops' is not a number" in capsys.readouterr().err


def test_ragged_csv(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2\n")
    assert main(["fit", str(bad), "--target", "label", "--output", "m"]) == 2
    assert "line 2: 2 fields, but the header has 3" in capsys.readouterr().err


def test_help_explains_each_option():
    out = subprocess.run(
        [sys.executable, "-m", "sktriplet.cli", "fit", "--help"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    for option in ("--target", "--output", "--margin", "--mining", "--epochs"):
        assert option in out.stdout


def test_fit_options_default_to_the_estimators_defaults():
    args = build_parser().parse_args(["fit", "d.csv", "--target", "y", "--output", "m"])
    params = TripletEmbedder().get_params()
    for name in ("margin", "mining", "epochs"):
        assert getattr(args, name) == params[name], name


_CHECK_BEFORE_KERAS = """
import json, sys, time
start = time.perf_counter()
from sktriplet.cli import main
code = main(sys.argv[1:])
print(json.dumps({
    "code": code,
    "seconds": time.perf_counter() - start,
    "framework": sorted(m for m in ("keras", "tensorflow", "jax") if m in sys.modules),
}))
"""


def _checked_before_keras(*args: str):
    """``sktriplet ARGS`` in a fresh interpreter whose user set
    TF_CPP_MIN_LOG_LEVEL=2: its exit status, its seconds from import to exit,
    the frameworks it imported, and its standard error."""
    import json

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(
        [sys.executable, "-c", _CHECK_BEFORE_KERAS, *args],
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.splitlines()[-1]), out.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["fit", "{data}", "--target", "species", "--output", "{tmp}/m"],
            "has no column 'species'",
        ),
        (
            ["fit", "{data}", "--target", "label", "--output", "{tmp}/no/dir/m"],
            "cannot write {tmp}/no/dir/m: no such folder ({tmp}/no/dir)",
        ),
        (
            ["fit", "{data}", "--target", "label", "--output", "{tmp}"],
            "cannot write {tmp}: is a folder, not a file",
        ),
        (
            ["fit", "{tmp}", "--target", "label", "--output", "{tmp}/m"],
            "{tmp} is a folder, not a file",
        ),
        (
            ["transform", "{tmp}", "{data}", "--output", "{tmp}/e.csv"],
            "{tmp} is a folder, not a file",
        ),
        (
            ["transform", "{model}", "{data}", "--output", "{tmp}/no/e.csv"],
            "cannot write {tmp}/no/e.csv: no such folder ({tmp}/no)",
        ),
        (
            ["transform", "{model}", "{tmp}/missing.csv", "--output", "{tmp}/e.csv"],
            "no such file: {tmp}/missing.csv",
        ),
        (
            ["transform", "{model}", "{narrow}", "--output", "{tmp}/e.csv"],
            "{narrow} lacks the model's feature columns: 'px2'",
        ),
    ],
)
def test_paths_and_columns_are_checked_before_keras_starts(
    data_csv, model_file, tmp_path, args, message
):
    """A wrong path or column ends the command with one line on stderr and exit
    status 2, before Keras is imported (no TensorFlow start-up lines, even for
    a user who set TF_CPP_MIN_LOG_LEVEL=2) and before any training."""
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("px0,px1\n0,1\n")
    names = dict(data=data_csv, tmp=tmp_path, model=model_file, narrow=narrow)
    report, stderr = _checked_before_keras(*[a.format(**names) for a in args])
    assert report["code"] == 2
    assert stderr.strip().count("\n") == 0, stderr
    assert message.format(**names) in stderr
    assert report["framework"] == []
    assert report["seconds"] < 1, report  # no framework start, no training


@pytest.fixture(scope="module")
def model_file(data_csv, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.sktriplet"
    assert main(["fit", str(data_csv), "--target", "label", "--output", str(path),
                 "--epochs", "1"]) == 0  # fmt: skip
    return path


def test_a_disk_error_while_writing_is_one_line_and_keeps_the_old_output(
    data_csv, model_file, tmp_path, capsys, monkeypatch
):
    """An OSError at any point (here a full disk as the embeddings are written)
    is one line and exit status 2, and the earlier output stays whole."""
    import sktriplet._files

    out = tmp_path / "e.csv"
    out.write_text("earlier\n")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sktriplet._files.os, "fsync", full_disk)
    code = main(["transform", str(model_file), str(data_csv), "--output", str(out)])
    monkeypatch.undo()
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "sktriplet transform: error: No space left on device", err
    assert out.read_text() == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv"]


def test_a_reader_that_leaves_the_pipe_early_ends_the_command_quietly(
    data_csv, tmp_path
):
    """``sktriplet transform ... --output - | head``: the reader leaves after a
    few bytes; the command stops without an error line or a traceback (it
    printed "error: Broken pipe")."""
    model = tmp_path / "model.sktriplet"
    fit = _command("fit", str(data_csv), "--target", "label", "--epochs", "1",
                   "--output", str(model))  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    wide = tmp_path / "wide.csv"  # far more than a pipe's buffer holds
    lines = data_csv.read_text().splitlines()
    wide.write_text("\n".join(lines + lines[1:] * 20) + "\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "sktriplet.cli", "transform", str(model), str(wide),
         "--output", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout.read(100).startswith(b"dim0,")
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    for noise in ("error:", "Broken pipe", "Traceback"):
        assert noise not in stderr, stderr


def _labelled_csv(path, X, cells):
    """The first ``len(cells)`` rows of ``X`` as a CSV file whose 'label' column
    holds ``cells``."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"px{i}" for i in range(64)] + ["label"])
        w.writerows([*row.tolist(), cell] for row, cell in zip(X, cells))
    return path


def _fit_cells(tmp_path, capsys, X, cells, *options):
    data = _labelled_csv(tmp_path / "data.csv", X, cells)
    model = tmp_path / "m.sktriplet"
    code = main(["fit", str(data), "--target", "label", "--output", str(model),
                 "--epochs", "1", *options])  # fmt: skip
    out = capsys.readouterr()
    return code, out.out + out.err, model


def test_multi_label_empty_cells_are_unlabelled_rows_left_out(tmp_path, capsys, digits):
    """With --label-separator, an empty cell (or one of separators only) is an
    unlabelled row, as without it: left out of training, and said so, not
    trained as a row that shares no label with any other."""
    X, y = digits
    cells = ["even|small" if d % 2 == 0 and d < 5 else "even" if d % 2 == 0
             else "small" if d < 5 else "odd" for d in y[:120]]  # fmt: skip
    cells[::4] = [""] * 30
    cells[1] = "|"
    code, out, model = _fit_cells(tmp_path, capsys, X, cells, "--label-separator", "|")
    assert code == 0, out
    assert "trained on 89 rows (31 unlabelled rows left out), 64 features, " in out
    assert load(model).classes_.tolist() == [0, 1, 2]  # even, odd, small


def test_minus_one_in_an_integer_label_column_marks_unlabelled_rows(
    tmp_path, capsys, digits
):
    """-1 in a column of integer labels is unlabelled, as in sklearn, and the
    model's classes are the integers of the file."""
    X, y = digits
    cells = [str(d + 10) for d in y[:120]]
    cells[1::2] = ["-1"] * 60
    cells[2] = " 12 "
    code, out, model = _fit_cells(tmp_path, capsys, X, cells)
    assert code == 0, out
    assert "trained on 120 rows, 64 features, 10 classes" in out
    assert load(model).classes_.tolist() == list(range(10, 20))


def test_labels_are_stripped_of_surrounding_spaces(tmp_path, capsys, digits):
    cells = ["beach| sunset", "sunset |beach", " beach", "sunset"] * 15
    code, out, model = _fit_cells(
        tmp_path, capsys, digits[0], cells, "--label-separator", "|"
    )
    assert code == 0, out
    assert "60 rows, 64 features, 2 labels" in out


@pytest.mark.parametrize(
    "cells, options, message",
    [
        (["cat", "dog", "-1"] * 20, (), "column 'label' mixes text labels with -1"),
        (
            ["1|-1", "2", "1"] * 20,
            ("--label-separator", "|"),
            "column 'label' lists -1 beside other labels in a row",
        ),
    ],
)
def test_ambiguous_minus_one_is_refused_with_what_to_write(
    tmp_path, capsys, digits, cells, options, message
):
    code, out, _ = _fit_cells(tmp_path, capsys, digits[0], cells, *options)
    assert code == 2 and message in out, out


def test_help_says_once_what_marks_an_unlabelled_row():
    out = subprocess.run(
        [sys.executable, "-m", "sktriplet.cli", "fit", "--help"],
        capture_output=True,
        text=True,
    ).stdout
    flat = " ".join(out.split())
    assert flat.count("empty label cell") == flat.count("-1") == 1, flat
    assert "An empty label cell marks an unlabelled row, and so does -1" in flat


def test_output_minus_writes_to_standard_output(data_csv, tmp_path):
    """``--output -`` writes the model (fit) and the embedding (transform) to
    standard output, the report to stderr, and replaces no file named "-"
    (issue 44, item 4): the model piped out of one process loads in another."""
    fit = subprocess.run(
        [sys.executable, "-m", "sktriplet.cli", "fit", str(data_csv),
         "--target", "label", "--epochs", "2", "--output", "-"],
        capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert b"model written to -" in fit.stderr
    model = tmp_path / "model.sktriplet"
    model.write_bytes(fit.stdout)
    transform = _command("transform", str(model), str(data_csv), "--output", "-")
    assert transform.returncode == 0, transform.stderr
    rows = list(csv.reader(transform.stdout.splitlines()))
    assert rows[0] == [f"dim{i}" for i in range(32)] and len(rows) == 301
    assert "embedded 300 rows" in transform.stderr
    assert not (tmp_path / "-").exists()


def _labelled_csv(path, X, cells):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"px{i}" for i in range(64)] + ["label"])
        w.writerows([*row.tolist(), cell] for row, cell in zip(X, cells))
    return path


@pytest.mark.parametrize(
    "cells, options, message",
    [
        (
            ["cat"] * 40,
            ["--label-separator", "|"],
            "column 'label' lists one label only, 'cat'; training needs two labels "
            "or more",
        ),
        (
            [""] * 40,
            ["--label-separator", "|"],
            "column 'label' labels none of the 40 rows (every cell is empty or -1)",
        ),
        (
            ["", "-1"] * 20,
            [],
            "column 'label' labels none of the 40 rows (every cell is empty or -1)",
        ),
    ],
    ids=["one label with a separator", "no label with a separator", "no label"],
)
def test_a_label_column_that_cannot_train_says_why_in_its_terms(
    tmp_path, capsys, digits, cells, options, message
):
    """Not scikit-learn's words about the array the column became ("y has 1
    class: 1", "Found array with 0 sample(s)"), but the column's (item 9)."""
    data = _labelled_csv(tmp_path / "d.csv", digits[0][: len(cells)], cells)
    argv = ["fit", str(data), "--target", "label", "--output", str(tmp_path / "m")]
    assert main([*argv, *options]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sktriplet fit: error: {message}") and "\n" not in err
