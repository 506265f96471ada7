"""sktriplet's defaults on data they were not tuned on, against the classical peers.

    python benchmarks/more_data.py                      # 5 splits per data set
    python benchmarks/more_data.py input_noise=0.25     # parameters changed

The defaults were chosen on ``benchmarks/run.py``'s two data sets.  This runs
them, untouched, on the small tabular sets that ship with scikit-learn (iris:
3 classes, wine: 3, breast cancer: 2), each split stratified 70/30 and scaled
several times over, and prints per data set the mean over the splits of the
columns of ``run.py``, with sktriplet's ratio to the best peer.  The peers are
the raw features, scikit-learn's NCA and, with the ``bench`` extra, LMNN, each
with as many components as the data has features (at most 32).  Parameters
given as ``name=value,...`` (as for ``benchmarks/seeds.py``) change sktriplet's.

Two classes put many rows of each in a batch, the case where semi-hard mining
pairs each anchor with at most 16 of its positives.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from peers import PEERS  # noqa: E402
from run import COLUMNS, evaluate, print_table  # noqa: E402
from seeds import parse  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_iris, load_wine  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktriplet import TripletEmbedder  # noqa: E402

DATASETS = {"iris": load_iris, "wine": load_wine, "breast cancer": load_breast_cancer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("params", nargs="?", default="defaults")
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    import keras  # noqa: F401  (loaded before any timing)

    params = parse(args.params)

    def sktriplet(X, y, cfg):
        return TripletEmbedder(random_state=cfg["seed"], **params).fit(X, y).transform

    methods = {"sktriplet": sktriplet, **{m: PEERS[m] for m in ("raw", "NCA", "LMNN")}}
    print(f"# sktriplet ({args.params}) on data outside the benchmark")
    print(
        f"mean over {args.splits} stratified 70/30 splits (random states 0-"
        f"{args.splits - 1}), scaled on the training part"
    )
    for name, load in DATASETS.items():
        X, y = load(return_X_y=True)
        runs = {m: [] for m in methods}
        for seed in range(args.splits):
            X_tr, X_te, y_tr, y_te = train_test_split(
                X, y, test_size=0.3, stratify=y, random_state=seed
            )
            scaler = StandardScaler().fit(X_tr)
            X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
            cfg = dict(dim=min(32, X.shape[1]), seed=seed)
            for method, fit in methods.items():
                try:
                    runs[method].append(evaluate(fit, X_tr, y_tr, X_te, y_te, cfg))
                except ImportError as exc:
                    if seed == 0:
                        print(f"({method} skipped: {exc}; pip install -e '.[bench]')")
        rows = {
            m: {c: float(np.mean([r[c] for r in rs])) for c in COLUMNS}
            for m, rs in runs.items()
            if rs
        }
        n_classes = len(np.unique(y))
        print_table(
            f"{name} ({len(X)} samples, {X.shape[1]} features, {n_classes} classes)",
            rows,
        )
        print(
            "\n1-NN accuracy per split, sktriplet: "
            + " ".join(f"{r['1-NN acc']:.3f}" for r in runs["sktriplet"])
        )


if __name__ == "__main__":
    main()
