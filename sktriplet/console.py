"""What sktriplet's programs (the ``sktriplet`` command, the demo) share: a quiet start.

TensorFlow writes start-up lines to the process's standard error before its log
settings apply (the oneDNN notice, "Could not find cuda drivers", "failed call to
cuInit" on a machine without a GPU): noise to a user who ran a command, and no
environment variable silences all of them.  :func:`quiet_framework_start` starts
Keras and its backend with standard error captured at the file-descriptor level,
then passes on every line that is not such start-up noise.

This is for programs only: the library never changes a log setting.  A user who
set ``TF_CPP_MIN_LOG_LEVEL`` chose what to see, and gets all of it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable

__all__ = ["quiet_framework_start"]

# The start-up lines of TensorFlow and XLA that say nothing about the user's work.
_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|TF-TRT Warning: Could not find TensorRT"
)


def _start_keras() -> None:
    """Import Keras and its backend, and initialise the backend's devices."""
    import keras

    keras.ops.convert_to_numpy(keras.ops.zeros(1))


def quiet_framework_start(start: Callable[[], None] = _start_keras) -> None:
    """Run ``start`` (by default: start Keras) without its start-up noise.

    When ``TF_CPP_MIN_LOG_LEVEL`` is unset, it is set to 2 for this process (C++
    warnings and notes off) and the lines ``start`` writes to standard error are
    filtered: those matching known start-up noise are dropped, every other one is
    written on.  When the user has set it, ``start`` runs as it is.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        start()
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            start()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            kept = [line for line in text.splitlines() if not _NOISE.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
