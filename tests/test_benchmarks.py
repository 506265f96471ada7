"""The benchmark harness: every method in its own process, failures in their rows."""

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FAULTY = textwrap.dedent(
    """
    import ctypes, time

    def segfault(X, y, cfg):
        ctypes.string_at(0)  # reads address 0: SIGSEGV, as a broken import would

    def hang(X, y, cfg):
        time.sleep(600)
    """
)


def test_a_crash_or_a_hang_is_reported_in_its_row_and_the_run_goes_on(tmp_path):
    (tmp_path / "faulty.py").write_text(FAULTY)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    methods = ["raw", "faulty:segfault", "faulty:hang", "PCA"]
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--datasets",
            "iris",
            "--timeout",
            "10",
            "--no-throughput",
            "--only",
            *methods,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    rows = {
        line.split("|")[1].strip(): line
        for line in out.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| method")
    }
    assert list(rows) == methods
    assert "| crashed (SIGSEGV) |" in rows["faulty:segfault"]
    assert "| timed out after 10 s |" in rows["faulty:hang"]
    header = next(
        line for line in out.stdout.splitlines() if line.startswith("| method")
    )
    accuracy = [c.strip() for c in header.split("|")].index("1-NN acc")
    for method in ("raw", "PCA"):  # before and after the failures: both measured
        cells = [c.strip() for c in rows[method].split("|")]
        assert re.fullmatch(r"0\.\d{3}", cells[accuracy]), rows[method]
    assert re.search(
        r"- PCA: sktriplet [\d.]+, numpy [\d.]+, sklearn [\d.]+", out.stdout
    )


def test_other_load_sees_a_busy_process():
    """While another process keeps a core busy, a sleeping block sees its share."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from isolate import other_load

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it start
        with other_load() as load:
            time.sleep(1.0)
    finally:
        spinner.kill()
    cores = os.cpu_count()
    assert 0.6 / cores <= load["other load"] <= 1.0, load


def test_the_index_lists_every_benchmark_with_a_docs_file_that_exists():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import index
    finally:
        sys.path.pop(0)
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - {"index"}
    assert scripts == set(index.BENCHMARKS) | set(index.SHARED)
    for name, (question, docs) in index.BENCHMARKS.items():
        assert question.strip()
        for path in docs.split(", "):
            path = path.split(" (")[0]
            assert (ROOT / path).is_file(), (name, path)
            text = (ROOT / path).read_text()
            if path.endswith(".rst"):  # the page names the script it quotes
                assert f"{name}.py" in text, (name, path)
