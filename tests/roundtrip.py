"""Save fitted models in one interpreter, load them in another: what a user does.

Run by ``test_round_trips.py`` in fresh interpreters, never imported by a test::

    python tests/roundtrip.py save DIR   # fit every kind of model, write each format
    python tests/roundtrip.py load DIR   # load what is in DIR, record what it gives

``save`` writes, for each model kind, the model in each format it supports and the
transform of the fitting process.  ``load`` loads every model file in DIR and
writes its transform and fitted attributes, so that the test compares the two
processes.  The Keras backend is the environment's (``KERAS_BACKEND``): files are
named after the backend that wrote them, so that one backend loads another's.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import joblib
import numpy as np

# Formats every backend writes; pickles only load under the backend that wrote them.
FORMATS = ("sktriplet", "pickle", "joblib")
CROSS_BACKEND_FORMATS = ("sktriplet",)
# Kinds whose loaded model continues training with partial_fit, checked against
# the fitting process continuing its own.
CONTINUED = ("mlp", "partial_fit", "multilabel")
# The round-trip matrix: every kind of label that fit accepts, fitted with a
# schedule that ends below learning_rate (so that a loaded model's partial_fit
# shows which rate it continues at), saved, loaded in a new process,
# transformed, scored and continued in each format.
LABEL_KINDS = (
    "y_int",
    "y_str",
    "y_object",
    "y_pandas_string",
    "y_category",
    "y_Int64",
    "y_bool",
    "y_float",
    "y_multilabel_sparse",
    "y_partly_labelled",
)
# The one backend that writes a kind (loaded by both), where not both do: the
# strategy needs TensorFlow; the label kinds' round trip does not depend on
# the backend that fitted, so they alternate between the two writers, which
# run side by side (the suite's time is the slower one's).
WRITER = {
    "strategy": "tensorflow",
    **{kind: ("tensorflow", "jax")[i % 2] for i, kind in enumerate(LABEL_KINDS)},
}


def writes(backend: str, kind: str) -> bool:
    return WRITER.get(kind, backend) == backend


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0)[:200], np.array(list("abcdefghij"))[y[:200]]


def _stock_encoder():
    """A user's encoder of stock Keras layers that is no plain dense stack."""
    import keras

    inputs = keras.Input((64,))
    h = keras.layers.Dense(16, activation="gelu")(inputs)
    h = keras.layers.Dropout(0.1, seed=0)(h)
    return keras.Model(inputs, keras.layers.Dense(8)(h))


def _data(kind: str):
    """The data a kind is fitted on and transforms: X and y."""
    X, y = _digits()
    if kind == "multilabel":  # the digit, and whether it is even, and small
        digit = np.searchsorted(np.unique(y), y)
        columns = [digit[:, None] == np.arange(10), digit % 2 == 0, digit < 5]
        return X, np.column_stack(columns).astype(np.uint8)
    if kind == "partly_labelled":  # integer labels, every other one unknown
        codes = np.searchsorted(np.unique(y), y)
        return X, np.where(np.arange(len(y)) % 2 == 0, codes, -1)
    if kind == "conv":
        return X.reshape(-1, 8, 8, 1), y
    if kind.startswith("y_"):
        return X, _labels(kind, y)
    if kind == "dataframe":
        import pandas as pd

        return pd.DataFrame(X, columns=[f"px{i}" for i in range(64)]), y
    return X, y


def _labels(kind: str, letters: np.ndarray):
    """The labels of the digits (letters ``a`` to ``j``) as ``kind`` gives them."""
    import pandas as pd
    import scipy.sparse as sp

    codes = np.searchsorted(np.unique(letters), letters)
    return {
        "y_int": lambda: codes,
        "y_str": lambda: letters,
        "y_object": lambda: pd.Series(letters, dtype=object),
        "y_pandas_string": lambda: pd.Series(letters, dtype="string"),
        "y_category": lambda: pd.Series(letters, dtype="category"),
        "y_Int64": lambda: pd.Series(codes, dtype="Int64"),
        "y_bool": lambda: codes % 2 == 0,
        "y_float": lambda: codes.astype(float),
        "y_multilabel_sparse": lambda: sp.csr_matrix(
            np.column_stack([codes[:, None] == np.arange(10), codes < 5]).astype(
                np.uint8
            )
        ),
        "y_partly_labelled": lambda: np.where(np.arange(len(codes)) % 3, codes, -1),
    }[kind]()


def fit(kind: str):
    from sktriplet import TripletEmbedder

    quick = dict(epochs=2, hidden_layer_sizes=(16,), random_state=0, device="cpu")
    X, y = _data(kind)
    if kind in ("mlp", "conv", "dataframe", "multilabel", "partly_labelled"):
        return TripletEmbedder(**quick).fit(X, y)
    if kind == "keras_model":
        return TripletEmbedder(encoder=_stock_encoder(), **quick).fit(X, y)
    if kind in LABEL_KINDS:
        return TripletEmbedder(learning_rate_schedule="cosine", **quick).fit(X, y)
    if kind in ("mixed_float16", "mixed_bfloat16"):
        return TripletEmbedder(precision=kind, **quick).fit(X, y)
    if kind == "partial_fit":
        emb = TripletEmbedder(**quick)
        return emb.partial_fit(X[:100], y[:100]).partial_fit(X[100:], y[100:])
    if kind == "strategy":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        return TripletEmbedder(strategy=strategy, **quick).fit(X, y)
    raise ValueError(kind)


KINDS = (
    "mlp",
    "conv",
    "dataframe",
    "keras_model",
    "mixed_float16",
    "mixed_bfloat16",
    "partial_fit",
    "strategy",
    "multilabel",
    "partly_labelled",
    *LABEL_KINDS,
)


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _fitted_state(emb) -> dict:
    params = {
        k: v
        for k, v in emb.get_params().items()
        if k not in ("encoder", "callbacks", "strategy")
    }
    params["hidden_layer_sizes"] = list(params["hidden_layer_sizes"])
    names = getattr(emb, "feature_names_in_", None)
    return {
        "params": params,
        "classes_": emb.classes_.tolist(),
        "classes_dtype": str(emb.classes_.dtype),
        "history_": emb.history_,
        "n_components_": int(emb.n_components_),
        "n_iter_": int(emb.n_iter_),
        "feature_names_in_": None if names is None else names.tolist(),
        "multilabel": bool(getattr(emb, "_multilabel", False)),
    }


def save(folder: Path) -> None:
    from sktriplet import save as save_model

    backend = _backend()
    for kind in KINDS:
        if not writes(backend, kind):
            continue
        emb = fit(kind)
        stem = folder / f"{backend}-{kind}"
        np.save(f"{stem}.fitted.npy", emb.transform(_data(kind)[0]))
        np.save(f"{stem}.score.npy", emb.score(*_data(kind)))
        Path(f"{stem}.fitted.json").write_text(json.dumps(_fitted_state(emb)))
        save_model(emb, f"{stem}.sktriplet")
        emb.set_params(strategy=None)  # a strategy is this process's: see pickle
        Path(f"{stem}.pickle").write_bytes(pickle.dumps(emb))
        joblib.dump(emb, f"{stem}.joblib")
        if kind == "keras_model":  # a refit of the loaded model repeats this one
            np.save(
                f"{stem}.refit.npy", emb.fit(*_data(kind)).transform(_data(kind)[0])
            )
        if kind in CONTINUED + LABEL_KINDS:  # so does one more partial_fit
            X, y = _data(kind)
            np.save(f"{stem}.continued.npy", emb.partial_fit(X, y).transform(X))


def load(folder: Path) -> None:
    from sktriplet import load as load_model

    backend = _backend()
    readers = {
        "sktriplet": load_model,
        "pickle": lambda path: pickle.loads(Path(path).read_bytes()),
        "joblib": joblib.load,
    }
    for fitted in sorted(folder.glob("*.fitted.json")):
        stem = str(fitted).removesuffix(".fitted.json")
        writer, kind = Path(stem).name.split("-", 1)
        formats = FORMATS if writer == backend else CROSS_BACKEND_FORMATS
        for fmt in formats:
            out = f"{stem}.{fmt}.loaded-by-{backend}"
            try:
                emb = readers[fmt](f"{stem}.{fmt}")
            except Exception as exc:  # the test of this file names it
                Path(f"{out}.error.txt").write_text(f"{type(exc).__name__}: {exc}")
                continue
            np.save(f"{out}.npy", emb.transform(_data(kind)[0]))
            np.save(f"{out}.score.npy", emb.score(*_data(kind)))
            Path(f"{out}.json").write_text(json.dumps(_fitted_state(emb)))
            if kind == "keras_model" and fmt == "sktriplet" and writer == backend:
                refit = emb.fit(*_data(kind)).transform(_data(kind)[0])
                np.save(f"{out}.refit.npy", refit)
            if kind in CONTINUED + LABEL_KINDS and writer == backend:
                X, y = _data(kind)
                np.save(f"{out}.continued.npy", emb.partial_fit(X, y).transform(X))


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    {"save": save, "load": load}[command](folder)
