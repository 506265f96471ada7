"""Safe persistence: save a fitted TripletEmbedder to a file that runs no code on load.

A saved model is one zip file holding ``metadata.json`` (the format version, the
parameters and the small fitted attributes, as JSON) and the fitted encoder in the
Keras v3 format (its architecture as JSON, its weights as arrays), loaded with
Keras ``safe_mode=True``: a file from an untrusted source cannot execute code,
unlike a pickle.  Weights are stored as plain arrays, so a model trained on a GPU
loads and transforms on a CPU-only machine.  The optimizer's state is stored too
(``optimizer.npz``, plain arrays), so that a loaded model continues training
with ``partial_fit`` where the saved one stopped.

A model file is untrusted input: :func:`load` reads ``metadata.json`` against
a schema (known keys only, each of its type and range) and refuses anything
else with a ``ValueError`` that names the key.  :func:`save` replaces the file
only once the new one is complete (:func:`sktriplet._files.replacing`): a save
that fails or is interrupted leaves the old model whole.

``pickle`` and ``joblib`` work too, and are faster to write, but loading a pickle
runs whatever code it names: load them only from sources you trust.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from ._files import writing
from ._schema import (
    FORMAT,
    FORMAT_VERSION,
    METADATA,
    check_encoder_shapes,
    check_keys,
    check_metadata,
    check_optimizer_state,
)
from ._warnings import user_stacklevel

if TYPE_CHECKING:  # imported where used: read_metadata needs neither
    from .estimator import TripletEmbedder

__all__ = ["FORMAT_VERSION", "load", "read_metadata", "save"]

_ENCODER = "encoder.keras"
_ENCODER_PARAM = "encoder_param.keras"
_OPTIMIZER = "optimizer.npz"  # optional: files written before it load without
# Parameters that hold live objects of this process, meaningless in a file.
_RUNTIME_PARAMS = ("callbacks", "strategy")


def save(estimator: TripletEmbedder, path: str | os.PathLike | IO[bytes]) -> None:
    """Write a fitted ``estimator`` to ``path`` in the safe sktriplet format.

    The file at ``path`` is replaced only once the new one is complete: if the
    save fails (a full disk) or is interrupted (Ctrl-C), a model already at
    ``path`` stays as it was.

    Parameters
    ----------
    estimator : TripletEmbedder
        A fitted estimator.
    path : str, path-like or binary file object
        The file to write (conventionally ending in ``.sktriplet``).  A
        symbolic link keeps pointing to the file it names, which is the one
        replaced; a path that is no regular file (a device, a pipe) is written
        directly; an open binary file object is written as it is.

    Raises
    ------
    OSError
        When ``path`` is a folder, or its folder does not exist or cannot be
        written into; checked before anything is written.

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
    optimizer_state = estimator._encoder.optimizer_state
    # The new file replaces the old one only once complete (a temporary file
    # beside it, fsync, os.replace): a failed save leaves the old model whole.
    with (
        tempfile.TemporaryDirectory() as tmp,
        writing(path) as file,
        zipfile.ZipFile(file, "w") as zf,
    ):
        zf.writestr(METADATA, text)
        zf.write(_keras_file(estimator.encoder_, tmp, _ENCODER), _ENCODER)
        if encoder_kind == "keras_model":
            zf.write(_keras_file(encoder_param, tmp, _ENCODER_PARAM), _ENCODER_PARAM)
        if optimizer_state is not None:
            arrays = io.BytesIO()
            np.savez(arrays, *[np.asarray(v) for v in optimizer_state])
            zf.writestr(_OPTIMIZER, arrays.getvalue())


def load(path: str | os.PathLike) -> TripletEmbedder:
    """Read a TripletEmbedder written by :func:`save`; runs no code from the file.

    Works in a new process with nothing imported first, and under any Keras
    backend, whichever backend fitted the model.  The loaded model transforms
    as the saved one did, and ``partial_fit`` continues its training with the
    optimizer's saved state (files written by sktriplet before it stored that
    state continue with a new optimizer).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    IsADirectoryError
        When ``path`` is a folder.
    ValueError
        When the file is damaged, is no sktriplet model file, holds metadata
        outside the format's schema (the message names the key), names code
        outside Keras and sktriplet, or was written in a format version this
        sktriplet cannot read.
    """
    from .estimator import TripletEmbedder
    from .fitted import FittedEncoder

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            metadata = _read_checked_metadata(zf, path)
            _check_params(metadata["params"], path)
            with tempfile.TemporaryDirectory() as tmp:
                encoder = _load_keras(zf, _ENCODER, tmp, path)
                encoder_param = None
                if metadata["encoder_param"] == "keras_model":
                    encoder_param = _load_keras(zf, _ENCODER_PARAM, tmp, path)
            optimizer_state = _read_optimizer_state(zf, path)
    except (zipfile.BadZipFile, KeyError, EOFError) as exc:
        raise ValueError(
            f"{path} is not a readable sktriplet model file ({type(exc).__name__}: "
            f"{exc}); it may be damaged or truncated."
        ) from exc
    fitted = metadata["fitted"]
    check_encoder_shapes(encoder.input_shape, encoder.output_shape, fitted, path)
    if optimizer_state is not None:
        weights = [tuple(w.shape) for w in encoder.trainable_weights]
        check_optimizer_state(optimizer_state, weights, path)
    estimator = TripletEmbedder(**_params(metadata["params"]), encoder=encoder_param)
    classes = fitted["classes_"]
    estimator.classes_ = np.asarray(classes["values"], dtype=np.dtype(classes["dtype"]))
    if fitted["feature_names_in_"] is not None:
        estimator.feature_names_in_ = np.asarray(
            fitted["feature_names_in_"], dtype=object
        )
    estimator.n_features_in_ = fitted["n_features_in_"]
    estimator.n_components_ = fitted["n_components_"]
    estimator.n_iter_ = fitted["n_iter_"]
    estimator.best_epoch_ = fitted["best_epoch_"]
    estimator.history_ = fitted["history_"]
    estimator._multilabel = fitted["_multilabel"]
    estimator._sample_shape = tuple(fitted["sample_shape"])
    estimator._encoder = FittedEncoder(
        encoder, estimator.n_components_, optimizer_state
    )
    return estimator


def read_metadata(path: str | os.PathLike) -> dict:
    """The ``metadata.json`` of the model file at ``path``, its fitted
    attributes checked as :func:`load` checks them, without loading the encoder
    (nor Keras, nor scikit-learn): what the command line checks a CSV file
    against before it starts Keras.  The parameters are checked by
    :func:`load` only.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_checked_metadata(zf, path)
    except (zipfile.BadZipFile, KeyError, EOFError) as exc:
        raise ValueError(
            f"{path} is not a readable sktriplet model file ({type(exc).__name__}: "
            f"{exc}); it may be damaged or truncated."
        ) from exc


def _read_checked_metadata(zf: zipfile.ZipFile, path: Path) -> dict:
    try:
        metadata = json.loads(zf.read(METADATA))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path} is not a readable sktriplet model file (its {METADATA} is "
            f"not JSON: {exc})."
        ) from exc
    return check_metadata(metadata, path)


def _check_params(params: dict, path: Path) -> None:
    """Known parameters only, each valid as ``set_params`` would take it;
    those a file omits keep their defaults."""
    from ._checks import check_hidden_layer_sizes
    from .estimator import TripletEmbedder

    known = set(TripletEmbedder().get_params()) - {"encoder", *_RUNTIME_PARAMS}
    check_keys(params, {}, "params.", path, required=False, allowed=known)
    try:
        check_hidden_layer_sizes(params.get("hidden_layer_sizes", (1,)))
        TripletEmbedder(**_params(params))._validate_params()
    except ValueError as exc:
        raise ValueError(
            f"{path} is not a valid sktriplet model file: {METADATA} holds an "
            f"invalid parameter: {exc}"
        ) from None


def _params(params: dict) -> dict:
    # Files written before weight_decay existed trained without it.
    params = {"weight_decay": 0.0, **params}
    if "hidden_layer_sizes" in params:
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    return params


def _read_optimizer_state(zf: zipfile.ZipFile, path: Path) -> list | None:
    """The stored optimizer state, plain numeric arrays, or None (a file
    written before sktriplet stored it: training continues with a new one)."""
    if _OPTIMIZER not in zf.namelist():
        return None
    try:
        with np.load(io.BytesIO(zf.read(_OPTIMIZER)), allow_pickle=False) as npz:
            state = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{path} is not a readable sktriplet model file: its optimizer state "
            f"cannot be read ({type(exc).__name__}: {exc})."
        ) from exc
    if not all(a.dtype.kind in "biuf" for a in state):
        raise ValueError(
            f"{path} is not a valid sktriplet model file: its optimizer state "
            "holds arrays that are not numbers."
        )
    return state


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


def _load_keras(zf: zipfile.ZipFile, name: str, folder: str, path: Path):
    import keras

    # sktriplet's own layers, named explicitly: a fresh process that loads a
    # model has not imported the module whose decorators register them.
    from .keras.models import CUSTOM_OBJECTS

    target = zf.extract(name, folder)
    damaged = f"{path} is not a readable sktriplet model file: its {name} "
    if not zipfile.is_zipfile(target):
        raise ValueError(
            damaged + "is not a Keras archive; the file may be damaged or truncated."
        )
    try:
        return keras.saving.load_model(
            target, custom_objects=CUSTOM_OBJECTS, compile=False, safe_mode=True
        )
    except Exception as exc:  # Keras raises many types for a bad archive
        refused = _code_named_in(target)
        if not refused:  # damage, not code: say so, naming no temporary file
            reason = _first_line(exc).replace(target, name)
            raise ValueError(
                damaged + f"could not be read ({type(exc).__name__}: {reason}); "
                "the file may be damaged or truncated."
            ) from None
        raise ValueError(
            f"The encoder stored in {path} could not be loaded safely: it names "
            f"{refused}, which is neither Keras's nor sktriplet's, and loading it "
            "could run code. Files that need code to load, such as Lambda layers "
            "or functions outside Keras, are refused; load such a model only "
            "from a trusted source, with pickle."
        ) from None


def _code_named_in(keras_file: str) -> str | None:
    """The first object of a ``.keras`` file's config that safe loading refuses
    (a Lambda layer's code, or a class or function from a module outside Keras
    and sktriplet), described for a user; None when there is none."""
    try:
        with zipfile.ZipFile(keras_file) as zf:
            config = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return None

    def search(node, layer):
        if isinstance(node, list):
            return next(
                (found for item in node if (found := search(item, layer))), None
            )
        if not isinstance(node, dict):
            return None
        inner = node.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            layer = inner["name"]
        where = f" (in layer {layer!r})" if layer else ""
        if node.get("class_name") in ("Lambda", "__lambda__"):
            return f"a Lambda layer's Python code{where}"
        module = node.get("module")
        if isinstance(module, str) and module.split(".")[0] not in (
            "keras",
            "sktriplet",
        ):
            name = node.get("config") if isinstance(inner, str) else None
            name = name or node.get("class_name")
            return f"{module}.{name}{where}"
        return next(
            (found for value in node.values() if (found := search(value, layer))),
            None,
        )

    return search(config, None)


def _first_line(exc: Exception) -> str:
    """An exception's first line, without the ``<class '...'>`` paths of
    Keras's internals."""
    import re

    line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", line)
