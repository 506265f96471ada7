"""The command's tables (sktriplet._table): a CSV file read and checked, its
feature columns as numbers, its target column as labels; each problem one
CommandError naming the file, line and column.  No Keras, no subprocess."""

import re

import numpy as np
import pytest

from sktriplet._table import (
    CommandError,
    check_input,
    features,
    model_columns,
    read_csv,
    target_labels,
)


def _csv(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _refused(message):
    return pytest.raises(CommandError, match="^" + re.escape(message) + "$")


def test_a_csv_file_is_its_header_and_rows_of_text(tmp_path):
    path = _csv(tmp_path, "a,b,y\n1,2,cat\n3, 4,dog\n")
    assert read_csv(path) == (["a", "b", "y"], [["1", "2", "cat"], ["3", " 4", "dog"]])


def test_unreadable_inputs_are_named(tmp_path):
    with _refused(f"no such file: {tmp_path / 'x.csv'}"):
        check_input(str(tmp_path / "x.csv"))
    with _refused(f"{tmp_path} is a folder, not a file"):
        read_csv(str(tmp_path))
    header_only = _csv(tmp_path, "a,b\n")
    with _refused(f"{header_only} needs a header line and at least one data line"):
        read_csv(header_only)
    path = _csv(tmp_path, "a,b\n1,2\n3\n4,5\n")
    with _refused(f"{path}, line 3: 1 fields, but the header has 2"):
        read_csv(path)
    bad = tmp_path / "latin.csv"
    bad.write_bytes(b"a\n\xff\n")
    with pytest.raises(CommandError, match=re.escape(f"cannot read {bad} as CSV: ")):
        read_csv(str(bad))


def test_feature_columns_are_read_as_float64_in_the_order_asked():
    header, body = ["a", "b", "c"], [["1", "2.5", "x"], ["-3e2", "4", "y"]]
    X = features("d.csv", header, body, [1, 0])
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, [[2.5, 1.0], [4.0, -300.0]])


@pytest.mark.parametrize(
    "cell, message",
    [("x", "'x' is not a number (feature columns must be numeric)"),
     ("", "'' is not a number (feature columns must be numeric)"),
     ("nan", "'nan' is not a finite number (fill or drop missing values first)"),
     ("-inf", "'-inf' is not a finite number (fill or drop missing values first)")],
)  # fmt: skip
def test_a_bad_feature_cell_is_named_by_line_and_column(cell, message):
    body = [["1", "2"], ["3", cell]]
    with _refused(f"d.csv, line 3, column 'b': {message}"):
        features("d.csv", ["a", "b"], body, [0, 1])


def _fitted(names, shape=(2,)):
    return {"sample_shape": list(shape), "n_features_in_": shape[0],
            "feature_names_in_": names}  # fmt: skip


def test_a_model_with_names_finds_its_columns_wherever_they_stand():
    header = ["y", "b", "extra", "a"]
    assert model_columns(_fitted(["a", "b"]), "d.csv", header) == [3, 1]
    with _refused("d.csv lacks the model's feature columns: 'a', 'c'"):
        model_columns(_fitted(["a", "b", "c"], (3,)), "d.csv", ["b", "x"])


def test_a_model_without_names_takes_exactly_its_number_of_columns():
    assert model_columns(_fitted(None), "d.csv", ["p", "q"]) == [0, 1]
    with _refused(
        "the model was fitted without feature names on 2 features, so d.csv "
        "must have exactly 2 columns, in the order of fitting; it has 3"
    ):
        model_columns(_fitted(None), "d.csv", ["p", "q", "r"])


def test_a_model_of_images_refuses_csv_rows():
    with _refused(
        "the model embeds samples of shape (8, 8) (images), not CSV rows; use "
        "TripletEmbedder.transform from Python"
    ):
        model_columns(_fitted(None, (8, 8)), "d.csv", ["p"] * 8)


def test_integer_labels_are_classes_and_minus_one_or_empty_unlabelled():
    y, keep, kind, text = target_labels([" 3", "1", "-1", "", "3"], "y", None)
    np.testing.assert_array_equal(y, [3, 1, -1, -1, 3])
    assert y.dtype.kind == "i" and keep.all() and kind == "classes" and text is None


def test_text_labels_are_kept_as_text_when_every_row_has_one():
    y, keep, kind, text = target_labels(["cat ", "dog", "cat"], "y", None)
    np.testing.assert_array_equal(y, ["cat", "dog", "cat"])
    assert keep.all() and kind == "classes" and text is None


def test_text_labels_beside_empty_cells_become_codes_named_by_text():
    y, keep, kind, text = target_labels(["dog", "", "cat", "dog"], "y", None)
    np.testing.assert_array_equal(y, [1, -1, 0, 1])
    np.testing.assert_array_equal(text, ["cat", "dog"])
    assert keep.all() and kind == "classes"


def test_label_sets_become_an_indicator_and_empty_rows_are_left_out():
    y, keep, kind, text = target_labels(["b|a", "", "c", "a | c", " | "], "t", "|")
    np.testing.assert_array_equal(keep, [True, False, True, True, False])
    np.testing.assert_array_equal(y, [[1, 1, 0], [0, 0, 1], [1, 0, 1]])
    assert y.dtype == np.uint8 and kind == "labels" and text is None
    y, keep, *_ = target_labels(["10|2", "2", "-1", "10"], "t", "|")  # as numbers
    np.testing.assert_array_equal(y, [[1, 1], [1, 0], [0, 1]])
    np.testing.assert_array_equal(keep, [True, True, False, True])


@pytest.mark.parametrize(
    "cells, separator, message",
    [(["cat", "-1"], None, "column 'y' mixes text labels with -1; mark unlabelled "
      "rows with an empty cell"),
     (["1|-1", "2"], "|", "column 'y' lists -1 beside other labels in a row; -1 "
      "marks an unlabelled row and stands alone"),
     (["", "-1", " "], None, "column 'y' labels none of the 3 rows (every cell is "
      "empty or -1); training needs labelled rows of two classes or more"),
     (["a", "a|a", ""], "|", "column 'y' lists one label only, 'a'; training "
      "needs two labels or more")],
)  # fmt: skip
def test_labels_that_cannot_train_are_refused_in_their_terms(cells, separator, message):
    with _refused(message):
        target_labels(cells, "y", separator)


def test_one_data_line_is_enough(tmp_path):
    assert read_csv(_csv(tmp_path, "a,y\n1,2\n")) == (["a", "y"], [["1", "2"]])


def test_quoted_cells_keep_their_own_line_breaks(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b'a,y\r\n"x\r\ny",1\r\n')
    assert read_csv(str(path)) == (["a", "y"], [["x\r\ny", "1"]])


def test_an_input_that_cannot_be_opened_says_why(tmp_path):
    import socket

    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)
        with _refused(f"cannot read {path}: No such device or address"):
            check_input(path)


def test_the_rows_kept_are_a_boolean_mask():
    _, keep, _, _ = target_labels(["a", "b", "a"], "y", None)
    assert keep.dtype == bool and keep.all()
