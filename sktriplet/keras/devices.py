"""Where Keras runs: counting GPUs and placing work on the CPU or a GPU.

Works on every Keras backend; nothing here initialises a GPU at import time.
"""

from __future__ import annotations

from contextlib import contextmanager

import keras

__all__ = ["gpu_count", "placement"]


def gpu_count() -> int:
    """GPUs the current Keras backend can use."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        try:
            return len(jax.devices("gpu"))
        except RuntimeError:  # no GPU platform
            return 0
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    return 0


@contextmanager
def placement(device: str, *, inference: bool = False):
    """Run the enclosed Keras work on ``device``: "auto", "cpu" or "gpu".

    With ``inference``, "gpu" on a machine without one runs where Keras chooses:
    a model trained on a GPU embeds anywhere its weights load (a saved model
    keeps its ``device``), while training that asked for a GPU fails clearly.
    """
    if device == "gpu" and gpu_count() == 0:
        if not inference:
            raise ValueError(
                f"device='gpu' was asked for, but Keras (backend "
                f"{keras.backend.backend()!r}) sees no GPU. Use device='auto' or "
                "'cpu', or install a GPU build of the backend (for TensorFlow: "
                "pip install 'sktriplet[cuda]')."
            )
        device = "auto"
    if device == "auto":
        yield
        return
    with keras.device("gpu:0" if device == "gpu" else "cpu:0"):
        yield
