"""Scoring at scale: MAP@R's time and memory beside one pass over the distances.

Question: does scoring cost a bounded multiple of one pass over the distances,
in bounded memory, at any size and any number of classes, and how far is the
default (exact up to 2000 samples, then a fixed class-stratified sample of
2000 queries) from the exact score?

Each case runs in its own fresh interpreter (``--case N CLASSES``), on float32
data of 32 dimensions with class offsets, and reports, measured in that one
process:

- ``MAP@R s`` and ``+MB``: the default ``mean_average_precision_at_r``, its
  time and the growth of the process's resident memory at its peak (polled
  every 5 ms while it runs);
- ``score s`` and ``+MB``: a fitted ``TripletEmbedder``'s ``score`` on the
  same rows (a small fit on 2000 of them; transform included), the same way;
- ``pass s``: one full pass of ``pairwise_distances_chunked`` with a
  row-minimum reduce, scikit-learn's default working memory; beyond
  ``--full-pass-up-to`` rows, a pass over 20,000 query rows scaled to ``n``
  (the pass is linear in the query rows), marked ``~``;
- ``ratio``: MAP@R's time over the pass's, and the score's;
- ``exact`` and ``error``: the exact MAP@R (``sample_size=None``) and the
  default's difference from it, up to ``--exact-up-to`` rows.

    python benchmarks/scoring.py                        # 10,000 to 1,000,000 rows
    python benchmarks/scoring.py --sizes 20000 --classes 2 20 --seeds 0 1 2
    python benchmarks/scoring.py --search     # a GridSearchCV's share of scoring
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time

import numpy as np

QUERY_ROWS = 20_000  # the slice a scaled pass measures


def _data(n: int, classes: int, seed: int):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, classes, n)
    offsets = 0.5 * rng.normal(size=(classes, 32))
    return (rng.normal(size=(n, 32)) + offsets[y]).astype(np.float32), y


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _measured(call):
    """``call()``'s value, seconds, and the growth of the process's resident
    memory at its peak during the call (polled every 5 ms)."""
    before, peak, done = _rss_mb(), [0.0], threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.005)

    poller = threading.Thread(target=poll)
    poller.start()
    start = time.perf_counter()
    try:
        value = call()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        poller.join()
    return value, seconds, max(peak[0], _rss_mb()) - before


def case(n: int, classes: int, seed: int, exact_up_to: int, full_pass_up_to: int):
    from sklearn.metrics import pairwise_distances_chunked

    from sktriplet import TripletEmbedder
    from sktriplet.metrics import mean_average_precision_at_r

    X, y = _data(n, classes, seed)
    fitted = TripletEmbedder(
        epochs=2, hidden_layer_sizes=(64,), random_state=seed, device="cpu"
    ).fit(X[:2000], y[:2000])
    fitted.score(X[:100], y[:100])  # the first call's one-off costs
    row = {"n": n, "classes": classes, "seed": seed}
    row["map"], row["map_s"], row["map_mb"] = _measured(
        lambda: mean_average_precision_at_r(X, y)
    )
    row["score"], row["score_s"], row["score_mb"] = _measured(
        lambda: fitted.score(X, y)
    )
    queries = X if n <= full_pass_up_to else X[:QUERY_ROWS]
    start = time.perf_counter()
    for _ in pairwise_distances_chunked(
        queries, X, reduce_func=lambda d, s: d.min(axis=1)
    ):
        pass
    row["pass_s"] = (time.perf_counter() - start) * n / len(queries)
    row["pass_scaled"] = len(queries) < n
    if n <= exact_up_to:
        row["exact"] = mean_average_precision_at_r(X, y, sample_size=None)
    return row


def search() -> None:
    """The search of issue #45: GridSearchCV over two margins, cv=2, on 40,000
    rows of a standardised 2-class make_classification (32 features): the
    share of its time spent scoring, and the process's peak RSS."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import GridSearchCV
    from sklearn.preprocessing import StandardScaler

    from sktriplet import TripletEmbedder

    X, y = make_classification(40_000, n_features=32, n_informative=16, random_state=0)
    X = StandardScaler().fit_transform(X)
    start = time.perf_counter()
    grid = {"margin": [0.2, 0.5]}
    found = GridSearchCV(TripletEmbedder(random_state=0), grid, cv=2).fit(X, y)
    total = time.perf_counter() - start
    results = found.cv_results_
    fits = results["mean_fit_time"].sum() * 2
    scoring = results["mean_score_time"].sum() * 2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"search {total:.1f} s: 4 fits {fits:.1f} s, 4 scores {scoring:.1f} s "
        f"({100 * scoring / total:.1f}% of the search), refit and the rest "
        f"{total - fits - scoring:.1f} s; peak RSS {peak:.2f} GB; scores "
        + " ".join(f"{v:.4f}" for v in results["mean_test_score"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000, 1_000_000]
    )
    parser.add_argument("--classes", type=int, nargs="+", default=[2, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--exact-up-to", type=int, default=30_000)
    parser.add_argument("--full-pass-up-to", type=int, default=100_000)
    parser.add_argument("--case", type=int, nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--search", action="store_true", help="time issue #45's grid search instead"
    )
    args = parser.parse_args()
    if args.search:
        search()
        return
    if args.case:
        n, classes, seed = args.case
        print(
            json.dumps(case(n, classes, seed, args.exact_up_to, args.full_pass_up_to))
        )
        return
    print(
        "| n | classes | seed | MAP@R | MAP@R s | +MB | score s | +MB | pass s "
        "| MAP@R / pass | score / pass | exact | error |"
    )
    print("|" + "---|" * 13)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for n in args.sizes:
        for classes in args.classes:
            for seed in args.seeds:
                command = [sys.executable, __file__, "--case", str(n), str(classes),
                           str(seed), "--exact-up-to", str(args.exact_up_to),
                           "--full-pass-up-to", str(args.full_pass_up_to)]  # fmt: skip
                done = subprocess.run(command, capture_output=True, text=True, env=env)
                if done.returncode:
                    tail = done.stderr.strip().splitlines()[-1:] or ["?"]
                    print(f"| {n} | {classes} | {seed} | failed: {tail[0]} |")
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                scaled = "~" if r["pass_scaled"] else ""
                exact = (
                    f"{r['exact']:.4f} | {r['map'] - r['exact']:+.4f}"
                    if "exact" in r
                    else "- | -"
                )
                print(
                    f"| {n} | {classes} | {seed} | {r['map']:.4f} | {r['map_s']:.1f} "
                    f"| {r['map_mb']:.0f} | {r['score_s']:.1f} | {r['score_mb']:.0f} "
                    f"| {scaled}{r['pass_s']:.1f} | {r['map_s'] / r['pass_s']:.2f} "
                    f"| {r['score_s'] / r['pass_s']:.2f} | {exact} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
