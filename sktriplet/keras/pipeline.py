"""The input pipeline: what ``model.fit`` reads, and how many steps a call runs.

:func:`input_of` hands the sampler's blocks of batches to the backend's
trainer (on TensorFlow, a ``tf.data`` pipeline); :func:`steps_per_call` sets
Keras's ``steps_per_execution`` and rounds an epoch to whole calls.
"""

from __future__ import annotations

import keras
import numpy as np

from ..sampling import unblock

__all__ = ["BLOCK_BYTES", "LONG_EPOCH", "input_of", "steps_per_call"]

# Epochs of this many batches or more run 32 steps per call, shorter ones 8.
LONG_EPOCH = 64
# The most bytes of training batches handed to TensorFlow's input pipeline at
# once (see input_of); a few such blocks are in memory during a fit.
BLOCK_BYTES = 4 * 2**20


def steps_per_call(
    n_batches: int, most: int | None = None, whole_epochs: bool = True
) -> tuple[int, int]:
    """Steps per epoch and steps per call (Keras's ``steps_per_execution``).

    Running several steps per call saves Keras's per-step overhead, which
    dominates on small models: 8 steps a call, and 32 for epochs of
    ``LONG_EPOCH`` batches or more (``docs/scaling.txt`` compares the fits),
    at most ``most``.  Keras runs whole calls, so an
    epoch of at least one call's batches is rounded to the nearest whole
    number of calls (it changes by at most half a call), and a shorter one
    runs whole, in one call, with ``whole_epochs``, else one step per call.
    A traced step is reused by the fits whose value here is the same (the pool
    of :func:`siamese_model_for` is keyed by it): on data of 8 to
    ``LONG_EPOCH - 1`` batches, or of ``LONG_EPOCH`` or more, whatever its
    size, such as the folds of a cross-validation and the final refit; below,
    on data of the same number of batches.  A single epoch (``partial_fit``)
    saves little by running in one call, and its parts of different sizes
    share one step per call.

    >>> steps_per_call(3), steps_per_call(7), steps_per_call(13), steps_per_call(300)
    ((3, 3), (7, 7), (16, 8), (288, 32))
    >>> steps_per_call(3, whole_epochs=False), steps_per_call(300, most=8)
    ((3, 1), (304, 8))
    """
    per_call = 32 if n_batches >= LONG_EPOCH else 8
    if most is not None:
        per_call = min(per_call, most)
    if n_batches < per_call:
        per_call = n_batches if whole_epochs else 1
    return max(round(n_batches / per_call), 1) * per_call, per_call


def input_of(blocks, batches_needed: int):
    """What ``model.fit`` reads, one batch at a time, from ``blocks(k)`` (blocks
    of ``k`` batches; see :func:`sktriplet.sampling.noisy_blocks`).

    On TensorFlow, a ``tf.data`` pipeline.  It takes blocks of up to
    ``BLOCK_BYTES`` (and no more batches than the fit needs) and splits them
    into batches itself: every hand-over from Python costs the pipeline a call
    into Python, under the GIL, beside the training step on the same cores, so
    fewer and larger ones make the steps faster
    (``benchmarks/input_pipeline.py``).  The next block is prepared while the
    current one trains, and two batches are prefetched, with autotuning off:
    Keras's own pipeline around a generator prefetches with ``AUTOTUNE``, whose
    teardown at the end of ``fit`` stalls in some fresh processes.  Each pass
    over the dataset opens its own ``blocks`` and reads them with
    ``tf.numpy_function``, which is what ``Dataset.from_generator`` does, less
    the bookkeeping that made its epochs about a tenth slower
    (``docs/input_pipeline.txt``).  Under ``tf.distribute`` Keras would also
    re-read a plain generator's first batches, which would shift the batch
    sequence; a dataset built from the replayable ``blocks`` reads the same
    sequence however often it restarts.

    Elsewhere, the batches one by one.
    """
    if keras.backend.backend() != "tensorflow":
        # The backend's trainer reads a Python iterator of batches itself.
        return unblock(blocks(1))
    import tensorflow as tf

    x, y = next(blocks(1))
    per_block = int(min(max(BLOCK_BYTES // max(x.nbytes, 1), 1), batches_needed))
    dtypes = (tf.float32, tf.as_dtype(y.dtype))
    shapes = ((None, *x.shape[1:]), (None, *y.shape[1:]))
    passes = []  # the blocks of each pass over the dataset

    def open_pass(_):
        passes.append(blocks(per_block))
        return np.int64(len(passes) - 1)

    def read(index):
        return next(passes[int(index)])

    def block_of(index):
        block = tf.numpy_function(read, [index], dtypes, stateful=True)
        return tuple(map(tf.ensure_shape, block, shapes))

    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = (
        tf.data.Dataset.from_tensors(np.int64(0))
        .map(lambda z: tf.numpy_function(open_pass, [z], tf.int64, stateful=True))
        .flat_map(lambda i: tf.data.Dataset.from_tensors(i).repeat().map(block_of))
    )
    if per_block > 1:  # prepare the next block while this one trains
        dataset = dataset.prefetch(1)
    # Batches too large to share a block (images, say) are held as before:
    # two prefetched and the one being made.
    return dataset.unbatch().prefetch(2).with_options(options)
