"""The sktriplet command line: fit and transform CSV files, one-line errors."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sktriplet import TripletEmbedder, load
from sktriplet.cli import build_parser, main


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    path = tmp_path_factory.mktemp("cli") / "digits.csv"
    names = np.array(list("abcdefghij"))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"px{i}" for i in range(64)] + ["label"])
        for row, label in zip(X[:300] / 16.0, y[:300]):
            w.writerow([*row.tolist(), names[label]])
    return path


def test_fit_then_transform(data_csv, tmp_path, capsys):
    model = tmp_path / "model.sktriplet"
    assert (
        main(
            [
                "fit",
                str(data_csv),
                "--target",
                "label",
                "--output",
                str(model),
                "--epochs",
                "2",
            ]
        )
        == 0
    )
    assert "trained on 300 rows, 64 features, 10 classes" in capsys.readouterr().out
    assert list(load(model).classes_) == list("abcdefghij")

    out = tmp_path / "emb.csv"
    assert main(["transform", str(model), str(data_csv), "--output", str(out)]) == 0
    rows = list(csv.reader(open(out)))
    assert rows[0] == [f"dim{i}" for i in range(32)] and len(rows) == 301
    expected = load(model)._embed(
        np.loadtxt(data_csv, delimiter=",", skiprows=1, usecols=range(64))
    )
    np.testing.assert_allclose(np.array(rows[1:], dtype=float), expected, atol=1e-6)


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
