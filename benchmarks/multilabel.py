"""Multi-label targets: sktriplet on a binary indicator ``y`` against the raw
features, PCA, and NCA and a single-label TripletEmbedder on the label powerset.

    python benchmarks/multilabel.py --seeds 3

Each setting is ``make_multilabel_classification`` data, split 80/20 and scaled
on its training part.  Every method embeds the training rows; a
``KNeighborsClassifier`` (5 neighbours, multi-label) fitted on them predicts the
held-out labels (micro-averaged F1), and the held-out embedding is scored with
the multi-label MAP@R (a retrieved row is relevant when it shares a label with
the query; :mod:`sktriplet.metrics`).  A reference row embeds each row as the
label probabilities of a one-vs-rest logistic regression: a classifier, not an
embedding learner, but its output is what a user could retrieve with instead.
The label powerset turns each distinct
set of labels into one class, the usual way to give a single-label method
multi-label data.  Methods with randomness run once per random state; the table
gives the mean and standard deviation, and each mean as a ratio to the raw
features'.  All methods run in this one process, one after another, so that
the fit-time column compares like with like only roughly: it is the mean over
the random states, each method's first fit included.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.datasets import make_multilabel_classification  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.multiclass import OneVsRestClassifier  # noqa: E402
from sklearn.neighbors import (  # noqa: E402
    KNeighborsClassifier,
    NeighborhoodComponentsAnalysis,
)
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktriplet import TripletEmbedder  # noqa: E402
from sktriplet.metrics import mean_average_precision_at_r  # noqa: E402

SETTINGS = {
    # The setting the multi-label issue names.
    "20 labels, 3 per sample": dict(n_classes=20, n_labels=3),
    # Longer "documents": each sample draws 200 words instead of 50.
    "20 labels, 3 per sample, length 200": dict(n_classes=20, n_labels=3, length=200),
}
DIM = 32
REFERENCE = "reference: logistic regression probabilities"
DETERMINISTIC = ("raw", REFERENCE)  # run once, at the first random state


def powerset(Y: np.ndarray) -> np.ndarray:
    """Each distinct row of ``Y`` (a set of labels) as one class."""
    return np.unique(Y, axis=0, return_inverse=True)[1].ravel()


def methods(seed: int) -> dict:
    """name -> fit(X, Y) returning a transform, for one random state."""

    def raw(X, Y):
        return lambda Z: Z

    def pca(X, Y):
        return PCA(DIM, random_state=seed).fit(X).transform

    def nca_powerset(X, Y):
        nca = NeighborhoodComponentsAnalysis(DIM, max_iter=50, random_state=seed)
        return nca.fit(X, powerset(Y)).transform

    def triplet_powerset(X, Y):
        return TripletEmbedder(random_state=seed).fit(X, powerset(Y)).transform

    def label_probabilities(X, Y):
        model = OneVsRestClassifier(LogisticRegression(max_iter=1000)).fit(X, Y)
        return model.predict_proba

    def sktriplet(X, Y):
        return TripletEmbedder(random_state=seed).fit(X, Y).transform

    return {
        "sktriplet (multi-label y)": sktriplet,
        "raw": raw,
        "PCA": pca,
        "NCA, label powerset": nca_powerset,
        "TripletEmbedder, label powerset": triplet_powerset,
        REFERENCE: label_probabilities,
    }


def evaluate(fit, X_tr, X_te, Y_tr, Y_te) -> tuple[float, float, float]:
    start = time.perf_counter()
    transform = fit(X_tr, Y_tr)
    seconds = time.perf_counter() - start
    E_tr, E_te = transform(X_tr), transform(X_te)
    predicted = KNeighborsClassifier().fit(E_tr, Y_tr).predict(E_te)
    f1 = f1_score(Y_te, predicted, average="micro")
    return seconds, f1, mean_average_precision_at_r(E_te, Y_te, sample_size=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    for name, setting in SETTINGS.items():
        X, Y = make_multilabel_classification(
            n_samples=5000, n_features=50, random_state=0, **setting
        )
        X_tr, X_te, Y_tr, Y_te = train_test_split(X, Y, test_size=0.2, random_state=0)
        scaler = StandardScaler().fit(X_tr)
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
        print(f"\n## {name} (n=5000, 50 features)\n")
        print(
            f"label sets (powerset classes): {len(np.unique(Y, axis=0))}; "
            f"labels per sample {Y.sum(axis=1).mean():.2f}; "
            f"random states 0-{args.seeds - 1}\n"
        )
        print("| method | fit s | micro-F1 (5-NN) | / raw | MAP@R | / raw |")
        print("|---|---|---|---|---|---|")
        results = {}
        for seed in range(args.seeds):
            for method, fit in methods(seed).items():
                if seed and method in DETERMINISTIC:
                    continue  # no randomness
                results.setdefault(method, []).append(
                    evaluate(fit, X_tr, X_te, Y_tr, Y_te)
                )
        raw_f1, raw_map = np.mean(results["raw"], axis=0)[1:]
        for method, runs in results.items():
            runs = np.array(runs)
            mean, sd = runs.mean(axis=0), runs.std(axis=0)
            print(
                f"| {method} | {mean[0]:.2f} | {mean[1]:.3f} ± {sd[1]:.3f} "
                f"| {mean[1] / raw_f1:.3f} | {mean[2]:.3f} ± {sd[2]:.3f} "
                f"| {mean[2] / raw_map:.3f} |"
            )


if __name__ == "__main__":
    main()
