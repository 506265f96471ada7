"""Safe persistence: save a fitted TripletEmbedder to a file that runs no code on load.

A saved model is one zip file holding ``metadata.json`` (the format version, the
parameters and the small fitted attributes, as JSON) and the fitted encoder in the
Keras v3 format (its architecture as JSON, its weights as arrays), loaded with
Keras ``safe_mode=True``: a file from an untrusted source cannot execute code,
unlike a pickle.  Weights are stored as plain arrays, so a model trained on a GPU
loads and transforms on a CPU-only machine.

``pickle`` and ``joblib`` work too, and are faster to write, but loading a pickle
runs whatever code it names: load them only from sources you trust.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._stack import user_stacklevel
from .estimator import TripletEmbedder
from .inference import DenseForward

__all__ = ["FORMAT_VERSION", "load", "save"]

FORMAT = "sktriplet.TripletEmbedder"
FORMAT_VERSION = 1
_METADATA = "metadata.json"
_ENCODER = "encoder.keras"
_ENCODER_PARAM = "encoder_param.keras"
# Parameters that hold live objects of this process, meaningless in a file.
_RUNTIME_PARAMS = ("callbacks", "strategy")


def save(estimator: TripletEmbedder, path: str | os.PathLike) -> None:
    """Write a fitted ``estimator`` to ``path`` in the safe sktriplet format.

    Parameters
    ----------
    estimator : TripletEmbedder
        A fitted estimator.
    path : str or path-like
        The file to write (conventionally ending in ``.sktriplet``).

    Notes
    -----
    Parameters that are Python code are not stored: an ``encoder`` given as a
    callable is loaded back as None (a Keras model is stored and loaded back),
    and ``callbacks`` and ``strategy`` as None.  They only matter for a later
    ``fit``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sktriplet import TripletEmbedder, load, save
    >>> X = np.random.RandomState(0).normal(size=(40, 4)); y = np.arange(40) % 2
    >>> emb = TripletEmbedder(epochs=1, hidden_layer_sizes=(8,), random_state=0)
    >>> emb = emb.fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "emb.sktriplet")
    >>> save(emb, path)
    >>> np.array_equal(load(path).transform(X), emb.transform(X))
    True
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    params = estimator.get_params()
    encoder_param = params.pop("encoder")
    for runtime_object in _RUNTIME_PARAMS:
        params.pop(runtime_object)
    params["hidden_layer_sizes"] = [
        int(s) for s in np.ravel(params["hidden_layer_sizes"])
    ]
    if isinstance(params["random_state"], np.random.RandomState):
        params["random_state"] = None
    fitted = {
        "classes_": {
            "dtype": estimator.classes_.dtype.str,
            "values": estimator.classes_.tolist(),
        },
        "feature_names_in_": (
            estimator.feature_names_in_.tolist()
            if hasattr(estimator, "feature_names_in_")
            else None
        ),
        "_multilabel": bool(getattr(estimator, "_multilabel", False)),
        "n_features_in_": int(estimator.n_features_in_),
        "sample_shape": [int(s) for s in estimator._sample_shape],
        "n_components_": int(estimator.n_components_),
        "n_iter_": int(estimator.n_iter_),
        "best_epoch_": estimator.best_epoch_,
        "history_": estimator.history_,
    }
    _warn_if_code_is_needed(estimator.encoder_)
    encoder_kind = "default" if encoder_param is None else "callable"
    if _is_keras_model(encoder_param):
        encoder_kind = "keras_model"
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": params,
        "encoder_param": encoder_kind,
        "fitted": fitted,
    }
    try:
        text = json.dumps(metadata)
    except TypeError as exc:
        raise ValueError(
            f"Cannot save this estimator in the safe format: {exc}. Labels and "
            "parameters must be numbers, strings or booleans; use pickle for "
            "other objects."
        ) from exc
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path, "w") as zf:
        zf.writestr(_METADATA, text)
        zf.write(_keras_file(estimator.encoder_, tmp, _ENCODER), _ENCODER)
        if encoder_kind == "keras_model":
            zf.write(_keras_file(encoder_param, tmp, _ENCODER_PARAM), _ENCODER_PARAM)


def load(path: str | os.PathLike) -> TripletEmbedder:
    """Read a TripletEmbedder written by :func:`save`; runs no code from the file.

    Works in a new process with nothing imported first, and under any Keras
    backend, whichever backend fitted the model.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is damaged, is no sktriplet model file, or was written in a
        format version this sktriplet cannot read.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            metadata = json.loads(zf.read(_METADATA))
            _check_format(metadata, path)
            with tempfile.TemporaryDirectory() as tmp:
                encoder = _load_keras(zf, _ENCODER, tmp)
                encoder_param = None
                if metadata["encoder_param"] == "keras_model":
                    encoder_param = _load_keras(zf, _ENCODER_PARAM, tmp)
        params = dict(metadata["params"])
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        estimator = TripletEmbedder(**params, encoder=encoder_param)
        fitted = metadata["fitted"]
        classes = fitted.pop("classes_")
        names = fitted.pop("feature_names_in_")
        sample_shape = tuple(fitted.pop("sample_shape"))
    except (zipfile.BadZipFile, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path} is not a readable sktriplet model file ({type(exc).__name__}: "
            f"{exc}); it may be damaged or truncated."
        ) from exc
    estimator.classes_ = np.asarray(classes["values"], dtype=np.dtype(classes["dtype"]))
    if names is not None:
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    for name, value in fitted.items():
        setattr(estimator, name, value)
    estimator.encoder_ = encoder
    estimator._sample_shape = sample_shape
    estimator._forward = DenseForward.from_keras(encoder)
    return estimator


def _check_format(metadata: dict, path: Path) -> None:
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a readable sktriplet model file (its metadata.json "
            "names no sktriplet format)."
        )
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in sktriplet model format version {version}; this "
            f"sktriplet reads versions up to {FORMAT_VERSION}. Upgrade sktriplet."
        )


def _warn_if_code_is_needed(encoder) -> None:
    """Warn when ``encoder`` holds layers that :func:`load` will refuse."""
    import warnings

    import keras

    lambdas = [
        layer.name
        for layer in encoder._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.Lambda)
    ]
    if lambdas:
        warnings.warn(
            f"The encoder has Lambda layers ({', '.join(lambdas)}), whose code "
            "sktriplet.load refuses to run: this file will not load. Replace each "
            "Lambda with a layer class registered with "
            "keras.saving.register_keras_serializable, or use pickle (trusted "
            "sources only).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _is_keras_model(obj) -> bool:
    if not hasattr(obj, "get_weights"):  # None or a plain function: skip Keras
        return False
    import keras

    return isinstance(obj, keras.Model)


def _keras_file(model, folder: str, name: str) -> str:
    target = os.path.join(folder, name)
    model.save(target)
    return target


def _load_keras(zf: zipfile.ZipFile, name: str, folder: str):
    import keras

    # sktriplet's own layers, named explicitly: a fresh process that loads a
    # model has not imported the module whose decorators register them.
    from .keras.models import CUSTOM_OBJECTS

    target = zf.extract(name, folder)
    try:
        return keras.saving.load_model(
            target, custom_objects=CUSTOM_OBJECTS, compile=False, safe_mode=True
        )
    except Exception as exc:  # Keras raises many types for a bad archive
        raise ValueError(
            f"The encoder stored in the model file could not be loaded safely "
            f"({type(exc).__name__}: {exc}). Files that need code to load, such as "
            "Lambda layers, are refused; load such a model only from a trusted "
            "source, with pickle."
        ) from exc
