"""Run each benchmark job in its own fresh interpreter, one after another.

One long process that loads TensorFlow, torch, numba and metric-learn in turn
crashed (a segmentation fault on import, issue #18), and its timings depended on
what ran before it: every thread pool stays alive.  Here each job (one method on
one data set, say) runs in a new ``python`` with the same thread settings, and
hands back a JSON-able dict.  A crash, a time-out or an exception becomes a
one-line ``failure`` in that job's result; the caller carries on.  Jobs measure
the machine's load during what they time with :func:`other_load`.

A job is ``"module:function"`` and keyword arguments: the child imports the module
(from ``benchmarks/``, or anywhere on ``PYTHONPATH``), calls the function and
writes what it returns to a file that the parent reads, with ``versions`` added:
the packages the child had loaded.

    python benchmarks/isolate.py JOB_FILE RESULT_FILE   # the child's side
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Every thread pool a benchmarked library may start, set alike for every job.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
# Modules whose versions a reader needs, by the name they are imported as.
VERSIONED = (
    "sktriplet",
    "numpy",
    "sklearn",
    "keras",
    "tensorflow",
    "jax",
    "torch",
    "pytorch_metric_learning",
    "umap",
    "numba",
    "metric_learn",
)


def child_environment(threads: int, extra: dict | None = None) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    path = [str(HERE), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"crashed ({name})"
    return f"crashed (exit status {returncode})"


def run_job(
    task: str, kwargs: dict, *, timeout: float, threads: int, env: dict | None = None
) -> dict:
    """Run ``task(**kwargs)`` in a new interpreter; its result, or a ``failure``.

    ``env`` adds variables to the child's environment (``KERAS_BACKEND``, say).
    """
    with tempfile.TemporaryDirectory() as folder:
        job, result = Path(folder, "job.json"), Path(folder, "result.json")
        job.write_text(json.dumps({"task": task, "kwargs": kwargs}))
        try:
            out = subprocess.run(
                [sys.executable, str(HERE / "isolate.py"), str(job), str(result)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=child_environment(threads, env),
            )
        except subprocess.TimeoutExpired:
            return {"failure": f"timed out after {timeout:.0f} s"}
        if result.exists():
            return json.loads(result.read_text())
        tail = out.stderr.strip().splitlines()[-1:] or [""]
        return {"failure": f"{_describe(out.returncode)}: {tail[0][:200]}".rstrip(": ")}


_SHORTEST_S = 0.5


def _busy_seconds() -> float | None:
    """CPU seconds all processes of this machine have been busy, or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [
        int(f) for f in fields[:8]
    ]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


@contextmanager
def other_load():
    """Measure the share of CPU time other processes took during the block.

    Yields a dict that holds, after the block, ``"other load"``: the machine's
    busy time less this process's own CPU time, over the block's wall time times
    the cores (0 on an idle machine, 0.5 when other processes kept one of two
    cores busy throughout).  Empty where ``/proc/stat`` cannot be read, and for
    a block of under half a second.
    """
    measured: dict = {}
    busy, own, start = _busy_seconds(), time.process_time(), time.perf_counter()
    yield measured
    wall = time.perf_counter() - start
    # The kernel counts busy time in ticks of 10 ms: a block shorter than
    # _SHORTEST_S is left unmeasured rather than measured wrong.
    if busy is not None and wall >= _SHORTEST_S:
        others = (_busy_seconds() - busy) - (time.process_time() - own)
        share = max(others, 0.0) / (wall * os.cpu_count())
        measured["other load"] = min(share, 1.0)


def _versions() -> dict:
    return {
        name: str(getattr(sys.modules[name], "__version__", "?"))
        for name in VERSIONED
        if name in sys.modules
    }


def _child(job_file: str, result_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    module, function = job["task"].split(":")
    try:
        result = getattr(importlib.import_module(module), function)(**job["kwargs"])
    except ImportError as exc:
        result = {"skipped": f"{exc}; pip install -e '.[bench]'"}
    except Exception as exc:  # reported in the job's row, as the issue asks
        result = {"failure": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}
    result["versions"] = _versions()
    Path(result_file).write_text(json.dumps(result))


if __name__ == "__main__":
    _child(*sys.argv[1:3])
