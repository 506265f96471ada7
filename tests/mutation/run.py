"""Mutation testing of sktriplet's numpy core and edges, with mutmut.

    .venv/bin/pip install -e ".[test,mutation]"
    .venv/bin/python tests/mutation/run.py                  # every module
    .venv/bin/python tests/mutation/run.py --only metrics   # one of MODULES

Each module of ``MODULES`` is mutated on its own, in a scratch copy of the
working tree, and only the test files mapped to it run against its mutants
(mutmut runs, of those, the tests that call the mutated function).  The run
prints, per module, the mutants caught (a test failed, hung or crashed), the
survivors listed as equivalent in ``equivalent.toml`` (each with its reason),
the others that survived, and the score: (caught + equivalent) / mutants.
The surviving mutants' diffs go to ``--report`` (default
``mutation-survivors.txt`` in the working directory).

Not run by CI: the whole run takes about half an hour on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomllib  # Python 3.11 and newer (the tool, not the library)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

# module: (the files mutated, the test files that hold them to their behaviour)
MODULES = {
    # Without the tests of memory and of a new process (seconds each, and
    # about resources, not results).
    "metrics": (
        ["sktriplet/metrics.py"],
        ["tests/test_metrics.py", "-k", "not memory and not new_process"],
    ),
    "mining": (["sktriplet/mining.py"], ["tests/test_mining.py"]),
    "sampling": (
        ["sktriplet/sampling.py", "sktriplet/holdout.py"],
        ["tests/test_sampling.py"],
    ),
    # The plan-level tests of the start (not those that build or train one).
    "_geometry": (
        ["sktriplet/_geometry.py"],
        [
            "tests/test_sampling.py",
            "tests/test_few_rows.py",
            "-k",
            "not encoder and not onnx and not held_out and not declines",
        ],
    ),
    "_files": (["sktriplet/_files.py"], ["tests/test_files.py"]),
    "_checks": (["sktriplet/_checks.py"], ["tests/test_checks.py"]),
    "_schema": (["sktriplet/_schema.py"], ["tests/test_schema.py"]),
    "_table": (["sktriplet/_table.py"], ["tests/test_table.py"]),
    # The launcher's tests that run it in this process (the others start it
    # as a command, where mutmut cannot see which function they reach).
    # The converter's ops on dense stacks without training, and the tf2onnx
    # path (and its refusals) on fitted encoders.
    "onnx": (
        ["sktriplet/onnx.py"],
        [
            "tests/test_onnx.py",
            "-k",
            "not dense_encoder_in_onnxruntime and not "
            "pipeline_to_onnx and not cli_export_then",
        ],
    ),  # fmt: skip
    "launch": (
        ["sktriplet/launch.py"],
        ["tests/test_launch.py", "-k", "not two_processes and not lost_process"],
    ),
}
# A mutant is caught when a test fails, hangs past mutmut's timeout or crashes.
CAUGHT = {"killed", "timeout", "segfault"}

# Read in the scratch copy, in-process with mutmut: each mutant's status and,
# for a survivor, its diff.
_RESULTS = r"""
import json, sys
from mutmut.stats import status_by_exit_code
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from pathlib import Path
out = []
for path in sys.argv[1:]:
    data = SourceFileMutationData(path=Path(path))
    data.load()
    for name, code in data.exit_code_by_key.items():
        status = status_by_exit_code[code]
        diff = get_diff_for_mutant(name, path=path) if status != "killed" else ""
        out.append({"name": name, "status": status, "diff": diff})
print(json.dumps(out))
"""


def _scratch_copy(folder: Path) -> None:
    """The working tree's tracked files (as they are now, edits included)."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            target = folder / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _configure(folder: Path, mutated: list[str], tests: list[str]) -> None:
    config = (
        "\n[tool.mutmut]\n"
        'source_paths = ["sktriplet/"]\n'
        f"only_mutate = {json.dumps(mutated)}\n"
        # One process per mutant's tests, without the suite's xdist options.
        'pytest_add_cli_args = ["-n0", "-o", "addopts=", "-p", "no:cacheprovider"]\n'
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        # Test modules import TensorFlow inside tests, never at collection:
        # each mutant's process is forked from one that has not run them.
        'process_isolation = "forkserver"\n'
    )
    with open(folder / "pyproject.toml", "a") as f:
        f.write(config)


def _changed_lines(diff: str) -> tuple[str, str]:
    lines = diff.splitlines()
    before = " ".join(
        x[1:].strip() for x in lines if x.startswith("-") and not x.startswith("---")
    )
    after = " ".join(
        x[1:].strip() for x in lines if x.startswith("+") and not x.startswith("+++")
    )
    return before, after


def _function(name: str) -> str:
    """``sktriplet.metrics._score_chunk`` from the mutant's name,
    ``sktriplet.metrics.x__score_chunk__mutmut_4``."""
    module, _, rest = name.rpartition(".")
    rest = rest.rpartition("__mutmut_")[0]
    rest = rest[2:] if rest.startswith("x_") else rest
    return f"{module}.{rest.replace('ǁ', '.').strip('.')}"


def _equivalents() -> dict:
    with open(HERE / "equivalent.toml", "rb") as f:
        table = tomllib.load(f)
    return {
        (e["function"], e["before"], e["after"]): e["why"]
        for e in table.get("equivalent", [])
    }


def run_module(module: str, max_children: int) -> dict:
    mutated, tests = MODULES[module]
    with tempfile.TemporaryDirectory(prefix=f"sktriplet-mutation-{module}-") as tmp:
        folder = Path(tmp)
        _scratch_copy(folder)
        _configure(folder, mutated, tests)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
        start = time.monotonic()
        mutmut = [sys.executable, "-m", "mutmut"]
        run = subprocess.run(
            [*mutmut, "run", "--max-children", str(max_children)],
            cwd=folder, env=env, capture_output=True, text=True,
        )  # fmt: skip
        seconds = time.monotonic() - start
        results = subprocess.run(
            [sys.executable, "-c", _RESULTS, *mutated],
            cwd=folder, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if run.returncode != 0 or results.returncode != 0:
            said = (run.stdout + run.stderr).replace("\r", "\n").strip()
            raise RuntimeError(f"mutmut failed on {module}: {said.splitlines()[-1]}")
    mutants = json.loads(results.stdout)
    equivalents = _equivalents()
    counts = {"killed": 0, "equivalent": 0, "survived": 0}
    survivors = []
    for mutant in mutants:
        if mutant["status"] in CAUGHT:
            counts["killed"] += 1
            continue
        key = (_function(mutant["name"]), *_changed_lines(mutant["diff"]))
        if mutant["status"] == "survived" and key in equivalents:
            counts["equivalent"] += 1
            continue
        counts["survived"] += 1
        survivors.append(mutant)
    total = len(mutants)
    score = (counts["killed"] + counts["equivalent"]) / total if total else float("nan")
    return {"module": module, "mutants": total, **counts, "score": score,
            "seconds": seconds, "survivors": survivors}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", nargs="+", choices=list(MODULES), default=list(MODULES)
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--report", default="mutation-survivors.txt")
    args = parser.parse_args(argv)
    rows, start = [], time.monotonic()
    header = ("module", "mutants", "killed", "equiv.", "survived", "score", "time")
    print("{:10} {:>7} {:>7} {:>7} {:>8} {:>6} {:>7}".format(*header))
    with open(args.report, "w") as report:
        for module in args.only:
            try:
                row = run_module(module, args.max_children)
            except RuntimeError as exc:  # the module's tests fail unmutated
                print(f"{module:10} {exc}", flush=True)
                continue
            rows.append(row)
            print(
                f"{module:10} {row['mutants']:7d} {row['killed']:7d} "
                f"{row['equivalent']:7d} {row['survived']:8d} {row['score']:6.1%} "
                f"{row['seconds']:6.0f}s",
                flush=True,
            )
            for mutant in row["survivors"]:
                report.write(
                    f"## {mutant['name']}: {mutant['status']}\n{mutant['diff']}\n\n"
                )
            report.flush()
    total = sum(r["mutants"] for r in rows)
    caught = sum(r["killed"] + r["equivalent"] for r in rows)
    print(
        f"{'all':10} {total:7d} {sum(r['killed'] for r in rows):7d} "
        f"{sum(r['equivalent'] for r in rows):7d} {total - caught:8d} "
        f"{caught / max(total, 1):6.1%} {time.monotonic() - start:6.0f}s"
    )
    print(f"surviving mutants: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
