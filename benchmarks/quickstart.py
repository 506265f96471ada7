"""The README's quick start, timed with an earlier sktriplet and with this one.

    python benchmarks/quickstart.py                      # against 2f1f4c8
    python benchmarks/quickstart.py --baseline REV --repeats 3

Runs the Python block under "Quick start" in README.md (one fit, then a
``GridSearchCV`` over three margins with ``cv=3``: eleven fits on the digits),
each run in its own fresh interpreter, alternating between sktriplet as it was
at ``--baseline`` (its ``sktriplet/`` from ``git archive``, first on the path)
and sktriplet as it is in this checkout, so that a slow spell of the machine
hits both.  Keras is imported before the clock starts: the time is the block's
own work.  Prints each run's wall time, the best parameters it found, and the
ratio of the medians, from the one run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from isolate import run_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "2f1f4c8"  # main when issue #14 was filed


def quickstart_code(readme: Path = ROOT / "README.md") -> str:
    """The first Python block after the "Quick start" heading."""
    text = readme.read_text()
    section = text[text.index("## Quick start") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def quickstart_job(code: str) -> dict:
    """Run ``code``; its wall time and what it printed (in a fresh interpreter)."""
    import contextlib
    import io

    import keras  # noqa: F401 - imported before the clock, as explained above

    import sktriplet

    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md quick start", "exec"), {})
    return {
        "seconds": time.perf_counter() - start,
        "printed": out.getvalue().strip(),
        "sktriplet": str(Path(sktriplet.__file__).parent),
    }


def baseline_tree(rev: str, folder: str) -> str:
    """``sktriplet/`` as it was at ``rev``, unpacked in ``folder``."""
    archive = Path(folder, "baseline.tar")
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "-o", str(archive), rev, "sktriplet"],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    code = quickstart_code()
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"# README quick start: sktriplet at {args.baseline} and at {head}")
    print(f"{args.threads} threads per pool; each run in its own interpreter.\n")
    print("| run | sktriplet | wall s | printed |")
    print("|---|---|---|---|")
    times = {"baseline": [], "now": []}
    with tempfile.TemporaryDirectory() as folder:
        versions = {
            "baseline": {"PYTHONPATH": baseline_tree(args.baseline, folder)},
            "now": None,
        }
        for i in range(args.repeats):
            for name, env in versions.items():
                row = run_job(
                    "quickstart:quickstart_job",
                    {"code": code},
                    timeout=args.timeout,
                    threads=args.threads,
                    env=env,
                )
                if "failure" in row:
                    print(f"| {i + 1} | {name} | {row['failure']} | |")
                    return 1
                label = args.baseline if name == "baseline" else f"{head} (now)"
                times[name].append(row["seconds"])
                print(
                    f"| {i + 1} | {label} | {row['seconds']:.1f} | {row['printed']} |",
                    flush=True,
                )
    ratio = np.median(times["baseline"]) / np.median(times["now"])
    print(f"\nmedian wall time, {args.baseline} / now: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
