"""Where Keras runs: counting GPUs, placing work on the CPU or a GPU, and
training data-parallel across processes.

Works on every Keras backend; nothing here initialises a GPU at import time.
"""

from __future__ import annotations

from contextlib import contextmanager

import keras

__all__ = [
    "check_global_batch",
    "distributed",
    "gpu_count",
    "is_distribution",
    "placement",
    "process_share",
]


def is_distribution(strategy) -> bool:
    """Whether ``strategy`` is a ``keras.distribution.Distribution`` (such as
    ``DataParallel``), Keras's own engine, rather than a ``tf.distribute``
    strategy."""
    kinds = (keras.distribution.DataParallel, keras.distribution.ModelParallel)
    return isinstance(strategy, kinds)


def process_share(strategy) -> tuple[int, int]:
    """``(index, count)``: this process among those a Keras distribution spans
    (JAX's multi-process runtime), ``(0, 1)`` for anything else.  Each process
    reads only its share of every global batch."""
    if not is_distribution(strategy):
        return 0, 1
    import jax

    return jax.process_index(), jax.process_count()


def check_global_batch(strategy, batch_size: int) -> None:
    """Refuse a batch that a Keras distribution cannot split evenly over its
    devices (one share a device, each process feeding its own), before any
    process starts training: inside ``model.fit`` it fails with Keras's
    sharding traceback in every process."""
    if not is_distribution(strategy):
        return
    import jax

    devices, processes = jax.device_count(), jax.process_count()
    if batch_size % devices:
        fits = max(batch_size // devices, 1) * devices
        raise ValueError(
            f"batch_size={batch_size} does not split evenly over the {devices} "
            f"devices of strategy={type(strategy).__name__}(...) ({processes} "
            f"process{'es' if processes > 1 else ''}); use a multiple of "
            f"{devices}, such as batch_size={fits}."
        )


@contextmanager
def distributed(strategy):
    """The scope a fit runs in: a Keras distribution's, for the model's
    variables and for ``fit``, which assembles the processes' shares of each
    batch into the global batch (each process feeds its own share, as
    :func:`process_share` says, so Keras shards nothing itself); nothing for a
    ``tf.distribute`` strategy, whose scope covers building the model only."""
    if not is_distribution(strategy):
        yield
        return
    if keras.backend.backend() != "jax":
        raise ValueError(
            f"strategy={type(strategy).__name__}(...), a keras.distribution, "
            "trains on Keras's JAX backend only; the backend is "
            f"{keras.backend.backend()!r}. Set KERAS_BACKEND=jax (python -m "
            "sktriplet.launch does), or on TensorFlow use a tf.distribute "
            "strategy such as tf.distribute.MirroredStrategy()."
        )
    sharding = strategy.auto_shard_dataset
    strategy.auto_shard_dataset = False
    try:
        with strategy.scope():
            yield
    finally:
        strategy.auto_shard_dataset = sharding


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
