"""The benchmark suite's one entry: each benchmark, the question it answers, and
where the docs keep its figures.

    python benchmarks/index.py                     # the list
    python benchmarks/index.py few_rows --rows 3   # run one, with its arguments

Every script in ``benchmarks/`` is either listed here or one of the ``SHARED``
modules the others import (the peers, fresh processes, the data splits).  A
benchmark's output goes to standard output; its figures are copied, with the
command that produced them, into the docs file named (``docs/benchmarks.rst``
and the user guide quote them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Modules the benchmarks share, not benchmarks themselves.
SHARED = {
    "peers": "the peers sktriplet is measured against, behind one interface",
    "isolate": "each job in a fresh interpreter; crashes and time-outs reported",
    "data": "the data sets and splits that several benchmarks use",
    "report": "the result columns and the tables that print them, with ratios",
}

# name: (the question it answers, the docs file that keeps its output)
BENCHMARKS = {
    "run": (
        "Quality, speed and throughput against every peer, on the digits and "
        "the many-class set (--quick: the quality gates).",
        "docs/benchmark_quick.txt, docs/benchmark_full.txt",
    ),
    "seeds": (
        "How do the held-out MAP@R and 1-NN spread over random states, at the "
        "defaults or with parameters changed (how the defaults were chosen)?",
        "docs/seeds.txt",
    ),
    "few_rows": (
        "At 3-30 rows a class, does the embedding feed a 1-NN classifier at "
        "least as well as raw features and NCA?",
        "docs/few_rows.txt",
    ),
    "more_data": (
        "Do the defaults hold on data they were not tuned on?",
        "docs/more_data.txt",
    ),
    "multilabel": (
        "Multi-label y: against raw features, PCA, NCA and the label powerset.",
        "docs/multilabel.txt",
    ),
    "partly_labelled": (
        "Partly labelled y: against the labelled rows alone, UMAP and LabelSpreading.",
        "docs/partly_labelled.txt",
    ),
    "images": (
        "The default image encoder against the same pixels flattened.",
        "docs/images.txt",
    ),
    "scaling": (
        "Cost and quality at 2,000-128,000 rows beside pytorch-metric-learning.",
        "docs/scaling.txt, docs/stopping.txt",
    ),
    "scoring": (
        "Does scoring (MAP@R, score) cost a bounded multiple of one pass over "
        "the distances, in bounded memory?",
        "docs/scoring.txt",
    ),
    "step_time": (
        "Time per training step: plain Keras compilation against the estimator's.",
        "docs/step_time.txt",
    ),
    "input_pipeline": (
        "The training input pipeline against two others.",
        "docs/input_pipeline.txt",
    ),
    "first_fit": (
        "A script's first fit, with and without the persistent XLA cache.",
        "docs/first_fit.txt",
    ),
    "quickstart": (
        "The README's quick start, timed with an earlier sktriplet and this one.",
        "docs/quickstart.txt",
    ),
    "data_parallel": (
        "One process against two local processes of one data-parallel fit.",
        "docs/data_parallel.txt",
    ),
    "onnx_latency": (
        "Serving latency: onnxruntime on the exported model beside transform.",
        "docs/onnx_latency.txt",
    ),
    "memory_growth": (
        "Does resident memory grow over many fits in one process?",
        "docs/benchmarks.rst",
    ),
    "memmap_memory": (
        "Peak memory of fitting and transforming a memmap larger than the budget.",
        "docs/benchmarks.rst",
    ),
    "batch_memory": (
        "Peak memory of a fit by mining strategy and batch size.",
        "docs/benchmarks.rst",
    ),
    "gpu_check": (
        "On a GPU: speed and results against the CPU, and mixed precision.",
        "docs/user_guide.rst (GPUs)",
    ),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        width = max(map(len, BENCHMARKS))
        lines = [
            f"{name:<{width}}  {question}\n{'':<{width}}  -> {docs}"
            for name, (question, docs) in BENCHMARKS.items()
        ]
        script = f"benchmarks/{Path(__file__).name}"
        lines.append(f"\nrun one: python {script} NAME [its arguments]")
        try:
            print("\n".join(lines), flush=True)
        except BrokenPipeError:  # | head: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    name, *rest = argv
    if name not in BENCHMARKS:
        print(
            f"error: no benchmark {name!r}; one of: {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    return subprocess.call([sys.executable, str(HERE / f"{name}.py"), *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
