"""A script's first fit: with and without TensorFlow's persistent XLA cache.

    python benchmarks/first_fit.py --repeats 3

Each run is a fresh interpreter that fits once, as a script or a command-line
call does, on the digits split of ``benchmarks/run.py``: sktriplet at its
defaults, sktriplet with ``TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=DIR``
(a new temporary ``DIR``, filled by one run before those timed, so that they
find the compiled step on disk), and pytorch-metric-learning, the fastest
neural peer of ``run.py``.  The three alternate, ``--repeats`` times; the table
gives each run and the median fit time over pytorch-metric-learning's.
Needs the ``bench`` extra (torch, pytorch-metric-learning).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from isolate import run_job  # noqa: E402

PEER = "pytorch-metric-learning"
CACHED = "sktriplet, persistent XLA cache"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cfg = dict(dim=32, hidden=256, batch=128, epochs=15, seed=0, threads=args.threads)
    with tempfile.TemporaryDirectory() as cache:
        flags = {"TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={cache}"}
        runs = {"sktriplet": ({}, "sktriplet"), CACHED: (flags, "sktriplet")}
        runs[PEER] = ({}, PEER)

        def job(label):
            env, name = runs[label]
            kwargs = dict(dataset="digits", name=name, quick=True, cfg=cfg)
            return run_job(
                "run:evaluate_job", kwargs, timeout=600, threads=args.threads, env=env
            )

        job(CACHED)  # fills the cache
        times = {label: [] for label in runs}
        for _ in range(args.repeats):
            for label in runs:
                row = job(label)
                if "failure" in row:
                    sys.exit(f"{label}: {row['failure']}")
                times[label].append(row["fit s"])
    print("# first fit in a fresh interpreter, digits split of run.py")
    print(f"{args.threads} threads per pool; {args.repeats} runs each, alternating.\n")
    print("| method | fit s, each run | median / " + PEER + " |")
    print("|---|---|---|")
    peer = np.median(times[PEER])
    for label, values in times.items():
        each = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {label} | {each} | {np.median(values) / peer:.2f} |")


if __name__ == "__main__":
    main()
