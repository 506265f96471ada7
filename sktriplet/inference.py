"""Serving-speed inference: a numpy forward pass of a fitted dense encoder.

``keras.Model.predict`` spends milliseconds per call on bookkeeping, which dominates
when a service embeds a few rows at a time.  When the fitted encoder is a
stack of ``Dense`` layers (the default MLP, or any user model of that shape),
:class:`DenseForward` holds its weights as numpy arrays and embeds rows with a few
matrix products, with no framework in the way.

This module is pure numpy; it reads a Keras model's layers but never imports Keras.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHUNK_ROWS", "DenseForward", "embed_in_chunks"]

CHUNK_ROWS = 4096  # rows embedded at a time


def embed_in_chunks(X, embed_chunk, width: int, chunk_dtype=None) -> np.ndarray:
    """The embeddings of the rows of ``X``, ``CHUNK_ROWS`` rows at a time.

    Each chunk is cast as it is read (to ``chunk_dtype``, or to the output's
    dtype), so that memory stays bounded for a memmap of any size and dtype.
    The output has ``X``'s float dtype, float32 for integer ``X``.

    >>> X = np.arange(6, dtype=np.uint8).reshape(3, 2)
    >>> embed_in_chunks(X, lambda chunk: chunk[:, :1], 1)
    array([[0.],
           [2.],
           [4.]], dtype=float32)
    """
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    out = np.empty((len(X), width), dtype=dtype)
    for i in range(0, len(X), CHUNK_ROWS):
        chunk = X[i : i + CHUNK_ROWS].astype(chunk_dtype or dtype, copy=False)
        out[i : i + CHUNK_ROWS] = embed_chunk(chunk)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0, out=x),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
}


_NORMALIZATIONS = ("UnitNormalization", "L2Normalization")


def _fold_batch_norm(dense, layer):
    """``dense`` followed by the inference-mode ``BatchNormalization`` ``layer``,
    as one affine layer, or None when ``layer`` does not act on the last axis.

    Inference computes ``gamma * (h - mean) / sqrt(var + epsilon) + beta``: a
    scale of each output column and a shift.
    """
    kernel, bias, activation = dense
    if tuple(np.ravel(layer.axis)) not in {(-1,), (1,)}:
        return None
    # Keyed by the variable's own name: gamma and beta are absent without
    # ``scale`` and ``center``.
    values = {w.path.rsplit("/", 1)[-1]: np.asarray(w) for w in layer.weights}
    std = np.sqrt(values["moving_variance"] + layer.epsilon)
    scale = values.get("gamma", 1.0) / std
    shift = values.get("beta", 0.0) - values["moving_mean"] * scale
    if bias is not None:
        shift = shift + bias * scale
    return kernel * scale, shift.astype(kernel.dtype), activation


def _flat_layers(model):
    """The layers of ``model``, those of the Keras models within it in their
    place.  Only single-input layers are accepted after this, whose graph from
    one input to one output is a chain: in the order of ``layers``."""
    for layer in model.layers:
        if type(layer).__name__ in ("Sequential", "Functional") and type(
            layer
        ).__module__.startswith("keras."):
            yield from _flat_layers(layer)
        else:
            yield layer


def _start_and_chain(model, layers: list):
    """The linear ``start`` layer whose output an ``Add`` layer sums with the
    output of the other layers (the default encoder at few rows a class,
    :func:`sktriplet.keras.encoders.build_mlp_encoder`), and those other
    layers: ``(None, layers)`` without an ``Add``, ``(None, None)`` for any
    other use of one."""
    adds = [layer for layer in layers if type(layer).__name__ == "Add"]
    if not adds:
        return None, layers
    add = adds[0]
    summed = list(add.input) if isinstance(add.input, list | tuple) else []
    starts = [
        layer
        for layer in layers
        if type(layer).__name__ == "Dense"
        and layer.input is model.input
        and any(layer.output is t for t in summed)
    ]
    if len(adds) > 1 or len(summed) != 2 or len(starts) != 1:
        return None, None
    start = starts[0]
    chain = [layer for layer in layers if layer is not start and layer is not add]
    after = layers[layers.index(add) + 1 :]
    before = [layer for layer in chain if layer not in after]
    other = summed[1] if summed[0] is start.output else summed[0]
    if (
        not before
        or before[-1].output is not other
        or any(type(layer).__name__ not in _NORMALIZATIONS for layer in after)
    ):
        return None, None
    return start, chain


class DenseForward:
    """Numpy forward pass of ``Dense`` layers, then an optional unit normalisation.

    Parameters
    ----------
    layers : list of (kernel, bias or None, activation name)
    normalize : bool
        Whether the output rows are scaled to unit L2 norm, as
        ``keras.layers.UnitNormalization`` (and sktriplet's ``L2Normalization``)
        does.
    start : (kernel, bias) or None
        A linear map of the input added to the last layer's output, before the
        normalisation (the default encoder at few rows a class).
    """

    def __init__(self, layers: list, normalize: bool, start=None) -> None:
        self.layers = layers
        self.normalize = normalize
        self.start = start
        self._cast = {}

    @classmethod
    def from_keras(cls, model) -> DenseForward | None:
        """Extract the weights of ``model``, or None if it is not a dense stack.

        A dense stack is a sequence of ``Dense`` layers, each optionally followed
        by a ``BatchNormalization`` (folded into its weights, as inference
        computes it) and an ``Activation``, and optionally ended by a unit
        normalisation; Sequential and functional models within it count as
        their layers (a user's stack, wrapped with the normalisation).  A
        ``Dense`` layer on the input whose output is added to the stack's, before
        the normalisation, is the ``start``.
        """
        start, chain = _start_and_chain(model, list(_flat_layers(model)))
        if chain is None:
            return None
        layers, normalize = [], False
        for layer in chain:
            kind = type(layer).__name__
            module = type(layer).__module__
            if not module.startswith(("keras.", "sktriplet.")) or normalize:
                return None
            if kind == "InputLayer":
                continue
            activation = getattr(getattr(layer, "activation", None), "__name__", None)
            if kind == "Dense":
                if activation not in _ACTIVATIONS:
                    return None
                weights = [np.asarray(w) for w in layer.get_weights()]
                bias = weights[1] if len(weights) > 1 else None
                layers.append((weights[0], bias, activation))
            elif kind == "BatchNormalization":
                if not layers or layers[-1][2] != "linear":
                    return None
                folded = _fold_batch_norm(layers[-1], layer)
                if folded is None:
                    return None
                layers[-1] = folded
            elif kind == "Activation":
                if not layers or layers[-1][2] != "linear":
                    return None
                if activation not in _ACTIVATIONS:
                    return None
                layers[-1] = (*layers[-1][:2], activation)
            elif kind in _NORMALIZATIONS and tuple(np.ravel(layer.axis)) in {
                (-1,),
                (1,),
            }:
                normalize = True
            else:
                return None
        if not layers:
            return None
        if start is not None:
            if getattr(getattr(start, "activation", None), "__name__", None) != (
                "linear"
            ):
                return None
            start = tuple(np.asarray(w) for w in start.get_weights())
            if len(start) != 2:
                return None
        return cls(layers, normalize, start)

    def _weights_as(self, dtype: np.dtype) -> tuple:
        """The layers and the start (or None), with their weights cast to
        ``dtype`` (cached per dtype)."""
        if dtype not in self._cast:
            layers = [
                (w.astype(dtype), None if b is None else b.astype(dtype), act)
                for w, b, act in self.layers
            ]
            start = None
            if self.start is not None:
                start = tuple(w.astype(dtype) for w in self.start)
            self._cast[dtype] = layers, start
        return self._cast[dtype]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Embed the rows of ``X``; the output has ``X``'s float dtype."""
        layers, start = self._weights_as(X.dtype)
        h = X
        for w, b, activation in layers:
            h = h @ w
            if b is not None:
                h += b
            h = _ACTIVATIONS[activation](h)
        if start is not None:
            h = h + (X @ start[0] + start[1])
        if self.normalize:
            h = h / np.sqrt(np.maximum(np.sum(h * h, axis=1, keepdims=True), 1e-12))
        return h

    def __getstate__(self) -> dict:
        return {"layers": self.layers, "normalize": self.normalize, "start": self.start}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)
