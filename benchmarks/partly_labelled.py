"""Partly labelled data: sktriplet given -1 for unlabelled samples, against a
TripletEmbedder trained on the labelled samples alone, supervised UMAP given
the same -1 labels, and LabelSpreading.

    python benchmarks/partly_labelled.py --draws 5

The digits split of ``benchmarks/run.py`` (stratified 70/30, scaled on the
training part); of the training labels a stratified 10% is kept, the rest set
to -1, in ``--draws`` random draws (draw ``k`` also seeds every method).  Each
embedding method embeds the labelled training samples and the held-out ones;
a 1-nearest-neighbour classifier on the labelled embeddings gives the held-out
accuracy, and the held-out embedding its MAP@R.  LabelSpreading (which gives
labels, not an embedding) predicts the held-out samples directly: accuracy
only.  Needs the ``bench`` extra (umap-learn).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from data import scaled_split  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.semi_supervised import LabelSpreading  # noqa: E402

from sktriplet import TripletEmbedder  # noqa: E402
from sktriplet.metrics import mean_average_precision_at_r  # noqa: E402

KEPT = 0.1


def embedders(seed: int) -> dict:
    """name -> fit(X, y_partial, labelled) returning a transform."""

    def sktriplet(X, y, labelled):
        return TripletEmbedder(random_state=seed).fit(X, y).transform

    def labelled_only(X, y, labelled):
        emb = TripletEmbedder(random_state=seed)
        return emb.fit(X[labelled], y[labelled]).transform

    def umap_supervised(X, y, labelled):
        import umap

        model = umap.UMAP(n_components=32, random_state=seed, n_jobs=1)
        return model.fit(X, y).transform

    return {
        "sktriplet (y with -1)": sktriplet,
        "TripletEmbedder, labelled 10% only": labelled_only,
        "UMAP (supervised, y with -1)": umap_supervised,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    _, (X_tr, X_te, y_tr, y_te) = scaled_split("digits", quick=True)
    results: dict[str, list] = {}
    for draw in range(args.draws):
        labelled, _ = train_test_split(
            np.arange(len(y_tr)), train_size=KEPT, stratify=y_tr, random_state=draw
        )
        y_part = np.full(len(y_tr), -1)
        y_part[labelled] = y_tr[labelled]
        for name, fit in embedders(draw).items():
            start = time.perf_counter()
            transform = fit(X_tr, y_part, labelled)
            seconds = time.perf_counter() - start
            E_lab, E_te = transform(X_tr[labelled]), transform(X_te)
            knn = KNeighborsClassifier(n_neighbors=1).fit(E_lab, y_tr[labelled])
            results.setdefault(name, []).append(
                (
                    seconds,
                    knn.score(E_te, y_te),
                    mean_average_precision_at_r(E_te, y_te, sample_size=None),
                )
            )
        for kernel in ("knn", "rbf"):
            start = time.perf_counter()
            spreading = LabelSpreading(kernel=kernel).fit(X_tr, y_part)
            seconds = time.perf_counter() - start
            results.setdefault(f"LabelSpreading ({kernel} kernel)", []).append(
                (seconds, spreading.score(X_te, y_te), np.nan)
            )
        knn = KNeighborsClassifier(n_neighbors=1).fit(X_tr[labelled], y_tr[labelled])
        results.setdefault("raw features", []).append(
            (
                0.0,
                knn.score(X_te, y_te),
                mean_average_precision_at_r(X_te, y_te, sample_size=None),
            )
        )
    print(
        f"# digits, {KEPT:.0%} of the training labels kept (stratified), "
        f"draws 0-{args.draws - 1}: mean ± standard deviation\n"
    )
    print("| method | fit s | held-out 1-NN accuracy | held-out MAP@R |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        runs = np.array(runs)
        mean, sd = runs.mean(axis=0), runs.std(axis=0)
        score = "" if np.isnan(mean[2]) else f"{mean[2]:.3f} ± {sd[2]:.3f}"
        print(f"| {name} | {mean[0]:.2f} | {mean[1]:.3f} ± {sd[1]:.3f} | {score} |")


if __name__ == "__main__":
    main()
