"""Keras layers of sktriplet's encoders: unit normalisation, standardisation and
random shifts of images."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

__all__ = ["L2Normalization", "RandomShift", "Standardization"]


@keras.saving.register_keras_serializable(package="sktriplet")
class L2Normalization(keras.layers.UnitNormalization):
    """Scales each row to unit L2 norm, like ``keras.layers.UnitNormalization``.

    The same output, computed in float32, with a gradient that stays finite at
    a row of zeros: ``UnitNormalization`` clips ``rsqrt`` of the squared norm,
    whose gradient at zero is ``0 * inf``, which XLA (and JAX) turn into NaN.
    Clipping the squared norm before ``rsqrt`` avoids the infinity.
    """

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        square_sum = ops.sum(ops.square(x), axis=self.axis, keepdims=True)
        unit = x * ops.rsqrt(ops.maximum(square_sum, 1e-24))
        return ops.cast(unit, self.compute_dtype)  # float32 in sktriplet's models


@keras.saving.register_keras_serializable(package="sktriplet")
class Standardization(keras.layers.Layer):
    """Subtracts each channel's mean and divides by its standard deviation.

    ``keras.layers.Normalization`` given ``mean`` and ``variance`` does the same,
    but holds them as constants of the traced step; here they are
    (non-trainable) weights, so that a model reused for other data, as each fold
    of a search is, takes the new ones with the weights instead of tracing its
    step again.  Computes in float32 whatever the dtype policy: the inputs are
    raw values (0-255 for ``uint8`` images).
    """

    def __init__(self, mean=None, variance=None, **kwargs):
        super().__init__(**kwargs)
        self._initial = (mean, variance)

    def build(self, input_shape):
        channels = (input_shape[-1],)
        self.mean = self.add_weight(
            shape=channels, initializer="zeros", trainable=False, name="mean"
        )
        self.variance = self.add_weight(
            shape=channels, initializer="ones", trainable=False, name="variance"
        )
        for weight, value in zip((self.mean, self.variance), self._initial):
            if value is not None:
                weight.assign(np.asarray(value, dtype="float32").reshape(channels))

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        return (x - self.mean) * ops.rsqrt(ops.maximum(self.variance, 1e-12))

    def get_config(self) -> dict:
        # The moments are weights, saved with the model's weights.
        return super().get_config()


@keras.saving.register_keras_serializable(package="sktriplet")
class RandomShift(keras.layers.RandomTranslation):
    """``keras.layers.RandomTranslation`` that lets Keras compile the training
    step on JAX.

    Keras's preprocessing layers declare that they cannot run in a compiled
    step (``supports_jit = False``), so Keras runs a model that holds one op by
    op on JAX, several times slower, although the translation itself is
    ``keras.ops`` there.  This layer declares the truth per backend: on
    TensorFlow its op (``ImageProjectiveTransformV3``) has no XLA kernel, and
    the step stays uncompiled as before; elsewhere the step compiles.  The
    same arguments, random draws and output as ``RandomTranslation``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.supports_jit = keras.backend.backend() != "tensorflow"
