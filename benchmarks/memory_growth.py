"""Resident memory growth over many fits in one process.

    python benchmarks/memory_growth.py [--fits 30]

Fits TripletEmbedder repeatedly on a slice of the digits, in a plain loop and in a
GridSearchCV with as many candidates, and prints resident memory (RSS) after each
phase and the growth per fit, measured after a few warm-up fits (the first fits
load TensorFlow and fill its caches).
"""

from __future__ import annotations

import argparse
import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from sktriplet import TripletEmbedder  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fits", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X, y = X[:500] / 16.0, y[:500]
    params = dict(epochs=2, hidden_layer_sizes=(64,), random_state=0)

    for _ in range(args.warmup):
        TripletEmbedder(**params).fit(X, y)
    gc.collect()
    start = rss_mb()
    for _ in range(args.fits):
        TripletEmbedder(**params).fit(X, y)
    gc.collect()
    loop = rss_mb()

    grid = {"margin": list(np.linspace(0.1, 1.0, args.fits))}
    search = GridSearchCV(TripletEmbedder(**params), grid, cv=2, refit=False)
    search.fit(X, y)  # `fits` candidates x 2 folds
    gc.collect()
    searched = rss_mb()

    print(f"RSS after {args.warmup} warm-up fits: {start:.1f} MB")
    print(
        f"{args.fits} fits in a loop: +{loop - start:.1f} MB, "
        f"{(loop - start) / args.fits:.2f} MB per fit"
    )
    n_search = len(grid["margin"]) * 2  # candidates x folds
    print(
        f"GridSearchCV, {len(grid['margin'])} candidates x 2 folds = {n_search} fits: "
        f"+{searched - loop:.1f} MB, {(searched - loop) / n_search:.2f} MB per fit"
    )


if __name__ == "__main__":
    main()
