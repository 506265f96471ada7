"""Serving-speed inference: a numpy forward pass of a fitted dense encoder.

``keras.Model.predict`` spends milliseconds per call on bookkeeping, which dominates
when a service embeds a few rows at a time.  When the fitted encoder is a plain
stack of ``Dense`` layers (the default MLP, or any user model of that shape),
:class:`DenseForward` holds its weights as numpy arrays and embeds rows with a few
matrix products, with no framework in the way.

This module is pure numpy; it reads a Keras model's layers but never imports Keras.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DenseForward"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0, out=x),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
}


_NORMALIZATIONS = ("UnitNormalization", "L2Normalization")


class DenseForward:
    """Numpy forward pass of ``Dense`` layers, then an optional unit normalisation.

    Parameters
    ----------
    layers : list of (kernel, bias or None, activation name)
    normalize : bool
        Whether the output rows are scaled to unit L2 norm, as
        ``keras.layers.UnitNormalization`` (and sktriplet's ``L2Normalization``)
        does.
    """

    def __init__(self, layers: list, normalize: bool) -> None:
        self.layers = layers
        self.normalize = normalize
        self._cast = {}

    @classmethod
    def from_keras(cls, model) -> DenseForward | None:
        """Extract the weights of ``model``, or None if it is not a dense stack."""
        layers, normalize = [], False
        for layer in model.layers:
            kind = type(layer).__name__
            module = type(layer).__module__
            if not module.startswith(("keras.", "sktriplet.")) or normalize:
                return None
            if kind == "InputLayer":
                continue
            if kind == "Dense":
                activation = getattr(layer.activation, "__name__", None)
                if activation not in _ACTIVATIONS:
                    return None
                weights = [np.asarray(w) for w in layer.get_weights()]
                bias = weights[1] if len(weights) > 1 else None
                layers.append((weights[0], bias, activation))
            elif kind in _NORMALIZATIONS and tuple(np.ravel(layer.axis)) in {
                (-1,),
                (1,),
            }:
                normalize = True
            else:
                return None
        return cls(layers, normalize) if layers else None

    def _weights_as(self, dtype: np.dtype) -> list:
        """The layers with their weights cast to ``dtype`` (cached per dtype)."""
        if dtype not in self._cast:
            self._cast[dtype] = [
                (w.astype(dtype), None if b is None else b.astype(dtype), act)
                for w, b, act in self.layers
            ]
        return self._cast[dtype]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Embed the rows of ``X``; the output has ``X``'s float dtype."""
        h = X
        for w, b, activation in self._weights_as(X.dtype):
            h = h @ w
            if b is not None:
                h += b
            h = _ACTIVATIONS[activation](h)
        if self.normalize:
            h = h / np.sqrt(np.maximum(np.sum(h * h, axis=1, keepdims=True), 1e-12))
        return h

    def __getstate__(self) -> dict:
        return {"layers": self.layers, "normalize": self.normalize}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)
