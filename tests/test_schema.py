"""The model file's metadata.json schema, held to each key's rule on parsed
metadata (no file, no Keras): every valid value passes, every other is refused
in one line that names the file, the key and what it must be."""

import copy
import re
from pathlib import Path

import pytest

from sktriplet._schema import FORMAT, FORMAT_VERSION, check_metadata

PATH = Path("folder/model.sktriplet")
VALID = {
    "format": FORMAT,
    "format_version": 1,
    "params": {"margin": 0.5},
    "encoder_param": "default",
    "fitted": {
        "classes_": {"dtype": "int64", "values": [0, 1]},
        "feature_names_in_": None,
        "_multilabel": False,
        "n_features_in_": 3,
        "sample_shape": [3],
        "n_components_": 2,
        "n_iter_": 4,
        "best_epoch_": None,
        "history_": {"loss": [0.5, 0.25]},
    },
}


def _with(**changes):
    """VALID with ``fitted__key=value`` (or a top-level ``key=value``) set;
    the value ``...`` removes the key."""
    metadata = copy.deepcopy(VALID)
    for key, value in changes.items():
        where, _, name = key.partition("__") if "__" in key else ("", "", key)
        target = metadata[where] if where else metadata
        if value is ...:
            del target[name]
        else:
            target[name] = value
    return metadata


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"format_version": FORMAT_VERSION},
        {"encoder_param": "callable"},
        {"encoder_param": "keras_model"},
        {"fitted__classes_": {"dtype": "<U3", "values": ["cat", "dog"]}},
        {"fitted__classes_": {"dtype": "object", "values": ["cat", 2]}},
        {"fitted__classes_": {"dtype": "bool", "values": [False, True]}},
        {"fitted__classes_": {"dtype": "float64", "values": [0.5, 1]}},
        {"fitted__classes_": {"dtype": "uint8", "values": []}},
        {"fitted__feature_names_in_": ["a", "b", "c"]},
        {"fitted__n_features_in_": 1, "fitted__sample_shape": [1]},
        {"fitted__n_features_in_": 8, "fitted__sample_shape": [8, 8, 1]},
        {"fitted__n_components_": 1},
        {"fitted__n_iter_": 0, "fitted__best_epoch_": 0},
        {"fitted___multilabel": True},
        {"fitted__history_": {}},
        {"fitted__history_": {"loss": [], "val_map_at_r": [1]}},
    ],
)
def test_valid_metadata_passes_as_it_is(changes):
    metadata = _with(**changes)
    assert check_metadata(metadata, PATH) is metadata


def _refused(key, expected, value):
    return re.escape(
        f"{PATH} is not a valid sktriplet model file: metadata.json's {key!r} "
        f"must be {expected}; it holds {value}."
    )


@pytest.mark.parametrize(
    "changes, key, expected, shown",
    [
        ({"format_version": 0}, "format_version", "an integer >= 1", "0"),
        ({"format_version": True}, "format_version", "an integer >= 1", "True"),
        ({"format_version": "1"}, "format_version", "an integer >= 1", "'1'"),
        ({"params": []}, "params", "an object of parameters", "[]"),
        ({"encoder_param": "lambda"}, "encoder_param",
         "one of ('default', 'callable', 'keras_model')", "'lambda'"),
        ({"fitted__n_features_in_": 0}, "fitted.n_features_in_",
         "an integer >= 1", "0"),
        ({"fitted__n_components_": 2.0}, "fitted.n_components_",
         "an integer >= 1", "2.0"),
        ({"fitted__n_iter_": -1}, "fitted.n_iter_", "an integer >= 0", "-1"),
        ({"fitted__best_epoch_": -1}, "fitted.best_epoch_",
         "null or an integer >= 0", "-1"),
        ({"fitted___multilabel": 0}, "fitted._multilabel", "true or false", "0"),
        ({"fitted__feature_names_in_": ["a", 2, "c"]},
         "fitted.feature_names_in_", "null or a list of strings", "['a', 2, 'c']"),
        ({"fitted__feature_names_in_": "abc"},
         "fitted.feature_names_in_", "null or a list of strings", "'abc'"),
        ({"fitted__sample_shape": []}, "fitted.sample_shape",
         "a list of integers >= 1", "[]"),
        ({"fitted__sample_shape": [3, 0]}, "fitted.sample_shape",
         "a list of integers >= 1", "[3, 0]"),
        ({"fitted__sample_shape": [4]}, "fitted.sample_shape",
         "a shape of 3 rows (n_features_in_)", "[4]"),
        ({"fitted__feature_names_in_": ["a", "b"]}, "fitted.feature_names_in_",
         "3 names", "['a', 'b']"),
        ({"fitted__history_": {"loss": [0.5, "nan"]}}, "fitted.history_",
         "an object of lists of numbers", "{'loss': [0.5, 'nan']}"),
        ({"fitted__history_": {"loss": [True]}}, "fitted.history_",
         "an object of lists of numbers", "{'loss': [True]}"),
        ({"fitted__history_": {"loss": 0.5}}, "fitted.history_",
         "an object of lists of numbers", "{'loss': 0.5}"),
        ({"fitted__history_": [0.5]}, "fitted.history_",
         "an object of lists of numbers", "[0.5]"),
        ({"fitted__classes_": {"dtype": "int64", "values": [[0], [1]]}},
         "fitted.classes_", None, None),
        ({"fitted__classes_": {"dtype": "complex128", "values": [0]}},
         "fitted.classes_", None, None),
        ({"fitted__classes_": {"dtype": "no such type", "values": [0]}},
         "fitted.classes_", None, None),
        ({"fitted__classes_": {"dtype": "int64", "values": (0, 1)}},
         "fitted.classes_", None, None),
        ({"fitted__classes_": {"dtype": "int64", "values": [0], "x": 1}},
         "fitted.classes_", None, None),
        ({"fitted__classes_": [0, 1]}, "fitted.classes_", None, "[0, 1]"),
        ({"fitted__classes_": {"dtype": "int64", "values": [None]}},
         "fitted.classes_", None, None),
    ],
)  # fmt: skip
def test_each_bad_value_is_refused_by_its_key(changes, key, expected, shown):
    metadata = _with(**changes)
    if expected is None:  # classes_: one description of what it must be
        expected = (
            "{'dtype': a numpy dtype of numbers, booleans, strings or objects, "
            "'values': a list of labels}"
        )
    if shown is None:
        shown = repr(changes[next(iter(changes))])
    with pytest.raises(ValueError, match=_refused(key, expected, shown) + "$"):
        check_metadata(metadata, PATH)


def test_a_long_value_is_cut_to_80_characters_in_the_message():
    metadata = _with(fitted__feature_names_in_=["a" * 50, "b" * 50])
    shown = repr(["a" * 50, "b" * 50])[:77] + "..."
    with pytest.raises(ValueError, match=_refused(
        "fitted.feature_names_in_", "3 names", shown) + "$"
    ):  # fmt: skip
        check_metadata(metadata, PATH)
    exactly_80 = "x" * 78  # repr adds two quotes: 80 characters, shown whole
    metadata = _with(encoder_param=exactly_80)
    with pytest.raises(ValueError, match=re.escape(f"it holds {exactly_80!r}.")):
        check_metadata(metadata, PATH)


@pytest.mark.parametrize("where", ["", "fitted."])
def test_unknown_and_missing_keys_are_named(where):
    prefix = "fitted__" if where else ""
    unknown = _with(**{f"{prefix}zeta": 1, f"{prefix}alpha": 2})
    with pytest.raises(ValueError, match=re.escape(
        f"{PATH} is not a valid sktriplet model file: metadata.json holds the "
        f"unknown key '{where}alpha'."
    ) + "$"):  # fmt: skip
        check_metadata(unknown, PATH)
    key = "n_iter_" if where else "params"
    missing = _with(**{f"{prefix}{key}": ...})
    with pytest.raises(ValueError, match=re.escape(
        f"{PATH} is not a valid sktriplet model file: metadata.json lacks the "
        f"key '{where}{key}'."
    ) + "$"):  # fmt: skip
        check_metadata(missing, PATH)


@pytest.mark.parametrize("metadata", [[], {"format": "joblib"}, _with(format=...)])
def test_metadata_of_no_sktriplet_format_is_refused(metadata):
    with pytest.raises(ValueError, match=re.escape(
        f"{PATH} is not a readable sktriplet model file (its metadata.json names "
        "no sktriplet format)."
    ) + "$"):  # fmt: skip
        check_metadata(metadata, PATH)


def test_a_newer_format_version_asks_to_upgrade():
    newer = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match=re.escape(
        f"{PATH} was written in sktriplet model format version {newer}; this "
        f"sktriplet reads versions up to {FORMAT_VERSION}. Upgrade sktriplet."
    ) + "$"):  # fmt: skip
        check_metadata(_with(format_version=newer), PATH)


def test_a_value_of_81_characters_is_cut():
    value = "x" * 79  # its repr: 81 characters
    with pytest.raises(ValueError, match=re.escape(
        f"it holds {repr(value)[:77]}...."
    )):  # fmt: skip
        check_metadata(_with(encoder_param=value), PATH)
