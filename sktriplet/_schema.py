"""The schema of a model file's ``metadata.json`` (format version 1), as data.

Each key maps to a test of its value and what the test asks for, in words, for
the error.  :func:`check_metadata` holds a parsed ``metadata.json`` to it: a
model file is untrusted input, so anything unknown, missing or out of range is
refused with a ``ValueError`` that names the file and the key.  Pure Python and
numpy: reading a file's metadata needs neither Keras nor scikit-learn.
"""

from __future__ import annotations

from numbers import Integral, Real
from pathlib import Path

import numpy as np

FORMAT = "sktriplet.TripletEmbedder"
FORMAT_VERSION = 1
METADATA = "metadata.json"
_ENCODER_KINDS = ("default", "callable", "keras_model")


def _integer(low: int):
    return (
        lambda v: isinstance(v, Integral) and not isinstance(v, bool) and v >= low,
        f"an integer >= {low}",
    )


def _is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _is_label(v) -> bool:
    return isinstance(v, (str, Real))  # bool is a Real


def _is_classes(v) -> bool:
    if not (isinstance(v, dict) and set(v) == {"dtype", "values"}):
        return False
    try:
        kind = np.dtype(v["dtype"]).kind
    except TypeError:
        return False
    # Object dtype: text labels as pandas gives them (object, string or
    # category Series), loaded back as the same object array.
    return (
        kind in "biufUO"
        and isinstance(v["values"], list)
        and all(_is_label(label) for label in v["values"])
    )


_TOP_LEVEL = {
    "format": (lambda v: v == FORMAT, repr(FORMAT)),
    "format_version": _integer(1),
    "params": (lambda v: isinstance(v, dict), "an object of parameters"),
    "encoder_param": (lambda v: v in _ENCODER_KINDS, f"one of {_ENCODER_KINDS}"),
    "fitted": (lambda v: isinstance(v, dict), "an object of fitted attributes"),
}
_FITTED = {
    "classes_": (
        _is_classes,
        "{'dtype': a numpy dtype of numbers, booleans, strings or objects, "
        "'values': a list of labels}",
    ),
    "feature_names_in_": (
        lambda v: (
            v is None or (isinstance(v, list) and all(isinstance(s, str) for s in v))
        ),
        "null or a list of strings",
    ),
    "_multilabel": (lambda v: isinstance(v, bool), "true or false"),
    "n_features_in_": _integer(1),
    "sample_shape": (
        lambda v: (
            isinstance(v, list) and len(v) >= 1 and all(_integer(1)[0](s) for s in v)
        ),
        "a list of integers >= 1",
    ),
    "n_components_": _integer(1),
    "n_iter_": _integer(0),
    "best_epoch_": (
        lambda v: v is None or _integer(0)[0](v),
        "null or an integer >= 0",
    ),
    "history_": (
        lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(values, list) and all(_is_number(x) for x in values)
                for values in v.values()
            )
        ),
        "an object of lists of numbers",
    ),
}


def check_keys(
    found: dict, schema: dict, prefix: str, path: Path, required=True, allowed=()
) -> None:
    unknown = sorted(set(found) - set(schema) - set(allowed))
    if unknown:
        raise ValueError(
            f"{path} is not a valid sktriplet model file: {METADATA} holds "
            f"the unknown key {prefix + unknown[0]!r}."
        )
    for key, (valid, expected) in schema.items():
        if key not in found and required:
            raise ValueError(
                f"{path} is not a valid sktriplet model file: {METADATA} lacks "
                f"the key {prefix + key!r}."
            )
        if not valid(found[key]):
            _refuse(path, prefix + key, expected, found[key])


def _refuse(path: Path, key: str, expected: str, value) -> None:
    raise ValueError(
        f"{path} is not a valid sktriplet model file: {METADATA}'s {key!r} "
        f"must be {expected}; it holds {shown(value)}."
    )


def shown(value) -> str:
    """``repr(value)``, cut to 80 characters for a one-line error."""
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def check_metadata(metadata, path: Path) -> dict:
    """``metadata`` (metadata.json, parsed) when it holds the known keys
    only, each of its type and range, else a ``ValueError`` naming the file,
    the key and what it must be."""
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a readable sktriplet model file (its metadata.json "
            "names no sktriplet format)."
        )
    version = metadata.get("format_version")
    if _integer(1)[0](version) and version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in sktriplet model format version {version}; this "
            f"sktriplet reads versions up to {FORMAT_VERSION}. Upgrade sktriplet."
        )
    check_keys(metadata, _TOP_LEVEL, "", path)
    check_keys(metadata["fitted"], _FITTED, "fitted.", path)
    fitted = metadata["fitted"]
    n_features = fitted["n_features_in_"]
    if fitted["sample_shape"][0] != n_features:
        _refuse(
            path,
            "fitted.sample_shape",
            f"a shape of {n_features} rows (n_features_in_)",
            fitted["sample_shape"],
        )
    names = fitted["feature_names_in_"]
    if names is not None and len(names) != n_features:
        _refuse(path, "fitted.feature_names_in_", f"{n_features} names", names)
    return metadata


def check_encoder_shapes(got_in, got_out, fitted: dict, path: Path) -> None:
    """The stored encoder, of input shape ``got_in`` and output shape
    ``got_out``, takes samples of the stored shape (grayscale images with a
    channel axis added) and embeds them into vectors of the stored size."""
    sample_shape = tuple(fitted["sample_shape"])
    takes = isinstance(got_in, tuple) and any(
        len(shape) == len(got_in) - 1
        and all(d is None or d == s for d, s in zip(got_in[1:], shape))
        for shape in (sample_shape, (*sample_shape, 1))
    )
    gives = isinstance(got_out, tuple) and got_out[1:] == (fitted["n_components_"],)
    if not (takes and gives):
        raise ValueError(
            f"{path} is not a valid sktriplet model file: its encoder maps "
            f"inputs of shape {got_in} to {got_out}, but {METADATA} says samples "
            f"of shape {sample_shape} to {fitted['n_components_']} dimensions."
        )


def check_optimizer_state(state: list, weight_shapes: list, path: Path) -> None:
    """The stored optimizer state fits the stored encoder, of trainable weights
    of ``weight_shapes`` (Adam's two moments per trainable weight, in the
    weights' order, beside scalars such as the step count) and holds only
    finite numbers: ``partial_fit`` would otherwise fail deep in Keras, or
    train the encoder into NaN without an error."""
    moments = [tuple(a.shape) for a in state if a.ndim]
    expected = [shape for shape in weight_shapes for _ in (0, 1)]
    if moments != expected:
        raise ValueError(
            f"{path} is not a valid sktriplet model file: its optimizer state "
            f"holds arrays of shapes {shown(moments)}, which do not fit its encoder "
            f"({len(expected) // 2} trainable weights need two moments each)."
        )
    if not all(np.isfinite(a).all() for a in state):
        raise ValueError(
            f"{path} is not a valid sktriplet model file: its optimizer state "
            "holds values that are not finite (NaN or infinity)."
        )
