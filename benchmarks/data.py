"""The data sets the benchmarks share, each split as its benchmarks use it.

- :data:`DATASETS` and :func:`scaled_split`: the digits, the many-class
  synthetic set and the iris of ``run.py`` (and ``seeds.py``,
  ``partly_labelled.py``, ``input_pipeline.py``);
- :func:`scaling_split`: the 20-class data of ``scaling.py`` (and
  ``data_parallel.py``) at any size;
- :data:`SMALL_SETS` and :func:`few_rows_split`: scikit-learn's small tabular
  sets at a few rows a class (``few_rows.py``).
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
)
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

SCALING_HELD_OUT = 2_000


def _digits(quick):
    X, y = load_digits(return_X_y=True)
    return "digits", train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def _synthetic(quick):
    n = 5000 if quick else 20000
    X, y = make_classification(
        n_samples=n,
        n_features=50,
        n_informative=30,
        n_classes=50,
        n_clusters_per_class=2,
        class_sep=1.5,
        random_state=0,
    )
    name = f"many-class synthetic (n={n})"
    return name, train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)


def _iris(quick):  # tiny: for checking the harness itself
    X, y = load_iris(return_X_y=True)
    return "iris", train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


DATASETS = {"digits": _digits, "synthetic": _synthetic, "iris": _iris}


def scaled_split(key: str, quick: bool):
    """The split of data set ``key``, scaled on its training part, and its name."""
    name, (X_tr, X_te, y_tr, y_te) = DATASETS[key](quick)
    scaler = StandardScaler().fit(X_tr)
    return name, (scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te)


def scaling_split(n: int):
    """The data of ``benchmarks/scaling.py`` (issue #30): ``n`` training rows
    and ``SCALING_HELD_OUT`` held-out ones of 20 classes, standardised."""
    X, y = make_classification(
        n + SCALING_HELD_OUT,
        n_features=64,
        n_informative=32,
        n_redundant=8,
        n_classes=20,
        n_clusters_per_class=2,
        class_sep=1.0,
        random_state=11,
    )
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=SCALING_HELD_OUT, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_tr)
    return (
        scaler.transform(X_tr).astype(np.float32),
        scaler.transform(X_te).astype(np.float32),
        y_tr,
        y_te,
    )


SMALL_SETS = {
    "digits": load_digits,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
}


def few_rows_split(X, y, k: int, seed: int, split: str):
    """``k`` rows of each class to train on (its first ``k``, or ``k`` drawn at
    random by ``seed``), the rest held out; scaled on the training rows."""
    rng = np.random.RandomState(seed)
    rows = [np.flatnonzero(y == c) for c in np.unique(y)]
    if split == "first":
        train = np.concatenate([r[:k] for r in rows])
    else:
        train = np.concatenate([rng.choice(r, k, replace=False) for r in rows])
    test = np.setdiff1d(np.arange(len(y)), train)
    scaler = StandardScaler().fit(X[train])
    return scaler.transform(X[train]), scaler.transform(X[test]), y[train], y[test]
