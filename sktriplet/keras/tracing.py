"""sktriplet traces deliberately: TensorFlow's retracing warning is not for them.

sktriplet traces one training step per architecture (pooled, see
:func:`~sktriplet.keras.pool.siamese_model_for`) and one inference function
per fitted encoder (:func:`~sktriplet.keras.models.inference_function`).  A
script that fits several architectures, or transforms with several fitted
models, therefore traces the same Python functions several times, which
TensorFlow reports as "N out of the last N calls to ... triggered tf.function
retracing", with advice that does not apply.  :func:`own_traces` drops exactly
those records while the current thread runs sktriplet's Keras code; the user's
own code, in other threads or outside these calls, keeps every warning, and no
log level changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import keras

__all__ = ["own_traces"]

_RETRACING = "triggered tf.function retracing"
_inside = threading.local()


class _OwnTracesFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(_inside, "depth", 0):
            return True
        return _RETRACING not in record.getMessage()


_FILTER = _OwnTracesFilter()
_LOCK = threading.Lock()


@contextmanager
def own_traces() -> Iterator[None]:
    """Run the block without TensorFlow's retracing warning for its traces."""
    if keras.backend.backend() != "tensorflow":
        yield
        return
    logger = logging.getLogger("tensorflow")
    with _LOCK:
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    _inside.depth = getattr(_inside, "depth", 0) + 1
    try:
        yield
    finally:
        _inside.depth -= 1
