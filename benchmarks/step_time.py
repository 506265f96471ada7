"""Time per training step: the sort-based loss against the estimator's fast path.

    python benchmarks/step_time.py

Trains the default MLP (64 inputs, 256-256 hidden, 32-d embedding) on
class-balanced 256-row batches (50 classes, 5 rows each) for every mining
strategy that sorts, once with the sort-based loss, no XLA and one step per
Keras call (the estimator before this path existed), and once as the estimator
trains now: sort-free over each anchor's positives, XLA, eight steps per call.
Prints milliseconds per step (the best of three runs of 400 steps) and their
ratio, from the one run.

A second table times semi-hard mining with few classes, where each anchor has
many positives in a batch: pairing every one against pairing at most 16, the
ones that follow the anchor in the batch, as ``TripletEmbedder`` does.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from sktriplet.estimator import _SEMIHARD_POSITIVES  # noqa: E402
from sktriplet.keras.models import SiameseModel, build_mlp_encoder  # noqa: E402
from sktriplet.sampling import ClassBalancedSampler  # noqa: E402


def ms_per_step(
    X,
    labels,
    mining,
    *,
    fast: bool,
    positives: int | None = None,
    steps: int = 400,
    repeats: int = 3,
) -> float:
    """Milliseconds per step, the best of ``repeats`` runs of ``steps`` steps.

    ``positives`` caps the positives per anchor.  The best run, because step
    times on two shared cores jump between two levels, up to twice apart, for
    whole runs at a time.
    """
    sampler = ClassBalancedSampler(labels, 256, 4, np.random.RandomState(0))
    rows = np.concatenate([sampler.epoch() for _ in range(steps // 50 + 2)])
    every = sampler.samples_per_group - 1
    model = SiameseModel(
        build_mlp_encoder((X.shape[1],), (256, 256), 32, True, seed=0),
        mining=mining,
        max_positives=min(every, positives or every) if fast else None,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        jit_compile=fast,
        steps_per_execution=8 if fast else 1,
    )

    def batches():
        while True:
            for r in rows:
                yield X[r], labels[r]

    data = batches()
    model.fit(data, steps_per_epoch=40, epochs=1, verbose=0)  # trace, warm up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / steps


def main() -> None:
    rng = np.random.RandomState(0)
    X = rng.normal(size=(20000, 64)).astype(np.float32)
    labels = rng.randint(0, 50, len(X))
    print(
        "| mining | sort, no XLA, 1 step/call (ms) | sort-free, XLA, 8/call (ms) "
        "| speed-up |"
    )
    print("|---|---|---|---|")
    for mining in ("semihard", "all"):
        slow = ms_per_step(X, labels, mining, fast=False)
        fast = ms_per_step(X, labels, mining, fast=True)
        print(f"| {mining} | {slow:.2f} | {fast:.2f} | {slow / fast:.1f}x |")
    print(
        f"\n| classes | positives per anchor | semihard, every positive (ms) "
        f"| semihard, at most {_SEMIHARD_POSITIVES}, as fit does (ms) | speed-up |"
    )
    print("|---|---|---|---|---|")
    for n_classes in (2, 10):
        labels = rng.randint(0, n_classes, len(X))
        every = ms_per_step(X, labels, "semihard", fast=True)
        capped = ms_per_step(
            X, labels, "semihard", fast=True, positives=_SEMIHARD_POSITIVES
        )
        print(
            f"| {n_classes} | {256 // n_classes - 1} | {every:.2f} | {capped:.2f} "
            f"| {every / capped:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
