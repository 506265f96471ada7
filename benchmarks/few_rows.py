"""Few labelled rows per class: does the embedding help the 1-NN classifier it
feeds, against the raw (scaled) features and scikit-learn's NCA?

    python benchmarks/few_rows.py          # digits and wine, defaults
    python benchmarks/few_rows.py --datasets digits --rows 3 5 defaults epochs=50

For each data set, rows per class ``k`` and random state ``s``: the first ``k``
rows of each class train (``--split random``: ``k`` drawn at random, seeded by
``s``), every other row is held out.  ``StandardScaler`` is fitted on the
training rows.  Raw, NCA (defaults, ``random_state=s``) and sktriplet
(``random_state=s``, defaults or the ``name=value`` configurations given) are
scored on the held-out rows: 1-NN
accuracy (the 1-NN fitted on the training rows' embeddings) and MAP@R of the
held-out rows among themselves.  Prints one row per data set and ``k``, with the
mean over the random states; the figures in ``docs/few_rows.txt`` come from it.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from data import SMALL_SETS, few_rows_split  # noqa: E402
from seeds import parse  # noqa: E402
from sklearn.neighbors import (  # noqa: E402
    KNeighborsClassifier,
    NeighborhoodComponentsAnalysis,
)

from sktriplet import TripletEmbedder  # noqa: E402
from sktriplet.metrics import mean_average_precision_at_r  # noqa: E402


def scores(E_tr, E_te, y_tr, y_te) -> tuple[float, float]:
    """Held-out 1-NN accuracy and MAP@R."""
    knn = KNeighborsClassifier(n_neighbors=1).fit(E_tr, y_tr)
    return knn.score(E_te, y_te), mean_average_precision_at_r(
        E_te, y_te, sample_size=None
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", default=["defaults"])
    parser.add_argument("--datasets", nargs="+", default=["digits", "wine"])
    parser.add_argument("--rows", nargs="+", type=int, default=[3, 5, 10, 30])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--split",
        choices=["first", "random"],
        default="first",
        help="train on the first k rows of each class (the same rows for every "
        "random state), or on k drawn by each random state",
    )
    parser.add_argument("--no-peers", action="store_true", help="leave raw and NCA out")
    args = parser.parse_intermixed_args()
    methods = ([] if args.no_peers else ["raw", "NCA"]) + args.configs
    print(
        "| data | rows/class | "
        + " | ".join(f"{m} 1-NN" for m in methods)
        + " | "
        + " | ".join(f"{m} MAP@R" for m in methods)
        + " | sktriplet fit s |"
        + ("" if args.no_peers else " 1-NN over the better peer | MAP@R over it |")
    )
    print("|" + "---|" * (2 + 2 * len(methods) + (1 if args.no_peers else 3)))
    for name in args.datasets:
        X, y = SMALL_SETS[name](return_X_y=True)
        for k in args.rows:
            acc = {m: [] for m in methods}
            mapr = {m: [] for m in methods}
            times = []
            for seed in range(args.seeds):
                X_tr, X_te, y_tr, y_te = few_rows_split(X, y, k, seed, args.split)
                for m in methods:
                    if m == "raw":
                        embed = lambda Z: Z  # noqa: E731
                    elif m == "NCA":
                        nca = NeighborhoodComponentsAnalysis(random_state=seed)
                        embed = nca.fit(X_tr, y_tr).transform
                    else:
                        start = time.perf_counter()
                        emb = TripletEmbedder(random_state=seed, **parse(m))
                        embed = emb.fit(X_tr, y_tr).transform
                        times.append(time.perf_counter() - start)
                    a, r = scores(embed(X_tr), embed(X_te), y_tr, y_te)
                    acc[m].append(a)
                    mapr[m].append(r)
            print(
                f"| {name} | {k} | "
                + " | ".join(f"{np.mean(acc[m]):.3f}" for m in methods)
                + " | "
                + " | ".join(f"{np.mean(mapr[m]):.3f}" for m in methods)
                + f" | {np.median(times) if times else float('nan'):.1f} |"
                + ("" if args.no_peers else _margins(acc, mapr, methods[2])),
                flush=True,
            )


def _margins(acc: dict, mapr: dict, ours: str) -> str:
    """How far the first configuration's means lead the better of raw and NCA."""
    lead = [
        np.mean(score[ours]) - max(np.mean(score["raw"]), np.mean(score["NCA"]))
        for score in (acc, mapr)
    ]
    return f" {lead[0]:+.4f} | {lead[1]:+.4f} |"


if __name__ == "__main__":
    main()
