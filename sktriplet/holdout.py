"""The rows held out for early stopping: a share of each class, or whole classes.

:func:`validation_split` splits the training rows of a fit in two; the plan
(:mod:`sktriplet._plan`) calls it when early stopping is on.  This module is
pure numpy; it never imports Keras.
"""

from __future__ import annotations

import numpy as np

from .sampling import rows_by_label

__all__ = ["validation_split"]


def validation_split(
    y: np.ndarray,
    fraction: float,
    strategy: str,
    random_state: np.random.RandomState,
    max_samples: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into training and validation rows for early stopping.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        Integer class labels, or a multi-label indicator matrix (split at
        random: it has no classes to stratify by or to hold out).
    fraction : float
        Share of the rows (``"stratified"``) or of the classes
        (``"class_disjoint"``) to hold out.
    strategy : {"stratified", "class_disjoint"}
        ``"stratified"`` holds out about ``fraction`` of each class's rows, never
        fewer than two of a class nor leaving fewer than two for training.
        ``"class_disjoint"`` holds out whole classes, which measures retrieval of
        classes never seen in training (open-set retrieval).
    random_state : numpy.random.RandomState
    max_samples : int, optional
        The most rows held out (MAP@R, scored every epoch, costs the square of
        their number).  A stratified split gives the rest back to training; a
        class-disjoint one leaves it out, so that no held-out class is trained
        on.

    Returns
    -------
    train_idx, val_idx : ndarray of int
    """
    y = np.asarray(y)
    if y.ndim == 2:
        return _multilabel_split(y, fraction, strategy, random_state, max_samples)
    classes, counts = np.unique(y, return_counts=True)
    if strategy == "class_disjoint":
        candidates = random_state.permutation(classes[counts >= 2])
        n_hold = min(max(int(round(fraction * len(classes))), 1), len(classes) - 2)
        held = candidates[: max(n_hold, 0)]
        val_mask = np.isin(y, held)
    else:
        val_mask = np.zeros(len(y), dtype=bool)
        for rows, n_c in zip(rows_by_label(y)[1], counts):
            n_val = int(round(fraction * n_c))
            if n_val >= 2 and n_c - n_val >= 2:
                rows = random_state.permutation(rows)
                val_mask[rows[:n_val]] = True
    if np.bincount(y[val_mask]).max(initial=0) < 2 or len(np.unique(y[~val_mask])) < 2:
        raise ValueError(
            f"early_stopping needs a validation set with two or more samples of some "
            f"class and a training set of two or more classes; with "
            f"validation_fraction={fraction} and validation_strategy={strategy!r} "
            f"the {len(y)} samples of {len(classes)} classes give none. Raise "
            "validation_fraction, gather more samples per class, or set "
            "early_stopping=False."
        )
    train_idx, val_idx = np.flatnonzero(~val_mask), np.flatnonzero(val_mask)
    if max_samples is None or len(val_idx) <= max_samples:
        return train_idx, val_idx
    keep = np.zeros(len(val_idx), dtype=bool)
    keep[random_state.choice(len(val_idx), max_samples, replace=False)] = True
    if strategy == "stratified":
        train_idx = np.sort(np.concatenate([train_idx, val_idx[~keep]]))
    return train_idx, val_idx[keep]


def _multilabel_split(y, fraction, strategy, random_state, max_samples):
    """A random ``fraction`` of the rows of a multi-label indicator ``y``
    (at most ``max_samples``), as :func:`validation_split`."""
    if strategy == "class_disjoint":
        raise ValueError(
            "validation_strategy='class_disjoint' holds out whole classes, which "
            "a multi-label y does not have (a sample has several labels); use "
            "validation_strategy='stratified', which holds out a random share "
            "of the samples."
        )
    n_val = int(round(fraction * len(y)))
    if max_samples is not None:
        n_val = min(n_val, max_samples)
    order = random_state.permutation(len(y))
    train_idx, val_idx = np.sort(order[n_val:]), np.sort(order[:n_val])
    if y[val_idx].sum(axis=0).max(initial=0) < 2 or y[train_idx].sum(0).max() < 2:
        raise ValueError(
            f"early_stopping needs a validation set and a training set that each "
            f"hold two or more samples of some label; validation_fraction="
            f"{fraction} of the {len(y)} samples gives none. Raise "
            "validation_fraction or set early_stopping=False."
        )
    return train_idx, val_idx
