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

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from isolate import run_job  # noqa: E402
from report import COLUMNS, LOAD, print_table  # noqa: E402
from run import evaluate, method, preload  # noqa: E402
from seeds import parse  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_iris, load_wine  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

DATASETS = {"iris": load_iris, "wine": load_wine, "breast cancer": load_breast_cancer}
METHODS = ("sktriplet", "raw", "NCA", "LMNN")


def splits_job(dataset: str, name: str, splits: int, params: str) -> dict:
    """Every split of ``dataset`` for method ``name``, in a fresh interpreter."""
    preload(name)
    if name == "sktriplet":
        from sktriplet import TripletEmbedder

        changed = parse(params)

        def fit_transform(X, y, cfg):
            emb = TripletEmbedder(random_state=cfg["seed"], **changed)
            return emb.fit(X, y).transform
    else:
        fit_transform = method(name)
    X, y = DATASETS[dataset](return_X_y=True)
    runs = []
    for seed in range(splits):
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=seed
        )
        scaler = StandardScaler().fit(X_tr)
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
        cfg = dict(dim=min(32, X.shape[1]), seed=seed)
        runs.append(evaluate(fit_transform, X_tr, y_tr, X_te, y_te, cfg))
    return {"runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("params", nargs="?", default="defaults")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    print(f"# sktriplet ({args.params}) on data outside the benchmark")
    print(
        f"mean over {args.splits} stratified 70/30 splits (random states 0-"
        f"{args.splits - 1}), scaled on the training part; each method and data "
        "set in its own process"
    )
    for dataset, load in DATASETS.items():
        rows, per_split = {}, {}
        for name in METHODS:
            job = dict(
                dataset=dataset, name=name, splits=args.splits, params=args.params
            )
            result = run_job(
                "more_data:splits_job", job, timeout=args.timeout, threads=args.threads
            )
            if "runs" not in result:
                rows[name] = result
                continue
            runs = result["runs"]
            columns = [
                c for c in [*COLUMNS, LOAD] if all(r.get(c) is not None for r in runs)
            ]
            rows[name] = {c: float(np.mean([r[c] for r in runs])) for c in columns}
            per_split[name] = [r["1-NN acc"] for r in runs]
        X, y = load(return_X_y=True)
        n_classes = len(np.unique(y))
        print_table(
            f"{dataset} ({len(X)} samples, {X.shape[1]} features, {n_classes} classes)",
            rows,
        )
        if "sktriplet" in per_split:
            print(
                "\n1-NN accuracy per split, sktriplet: "
                + " ".join(f"{a:.3f}" for a in per_split["sktriplet"])
            )


if __name__ == "__main__":
    main()
