"""Retrieval metrics for embeddings: MAP@R, R-precision and precision@1.

Each sample of ``X`` in turn is the query; the other samples, ranked by their
distance to it, are the database (leave-one-out retrieval).  A retrieved sample is
relevant when it has the query's label, and ``R`` is the number of other samples
that have it.  Queries whose label no other sample has (``R = 0``) cannot retrieve
anything relevant and are left out of every metric.

See Musgrave, Belongie and Lim, "A Metric Learning Reality Check", ECCV 2020, for
why MAP@R is more informative than precision@1 or recall@k.

This module is pure numpy and scikit-learn; it never imports Keras.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import pairwise_distances_chunked
from sklearn.utils import check_X_y

from ._checks import indicator_or_labels

__all__ = [
    "RETRIEVAL_METRIC",
    "mean_average_precision_at_r",
    "precision_at_1",
    "r_precision",
]

# For each training distance, the metric that ranks neighbours as it does.
RETRIEVAL_METRIC = {
    "squared_euclidean": "euclidean",
    "euclidean": "euclidean",
    "cosine": "cosine",
}

_WORKING_MEMORY_MB = 16


def _ranked_relevance(X, y, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Relevance of the ``max(R)`` nearest other samples of each query.

    ``y`` is one label per sample, or a multi-label indicator matrix (dense or
    sparse, one column per label), where a sample is relevant to a query when
    they share at least one label.

    Returns
    -------
    relevant : ndarray of bool, shape (n_queries, max_r)
        ``relevant[i, k]``: the ``k``-th nearest neighbour of query ``i`` shares
        its label.  Only queries with ``R >= 1`` are kept.
    r : ndarray of int, shape (n_queries,)
        ``R`` for each kept query.
    """
    X, y = check_X_y(
        X, y, dtype=[np.float64, np.float32], y_numeric=False, multi_output=True
    )
    y = indicator_or_labels(y)
    relevance, r = _label_sharing(y)
    keep = r >= 1
    if not keep.any():
        raise ValueError(
            "Retrieval metrics need at least one label shared by two or more "
            + (
                f"samples; no two of the {len(y)} samples given share a label."
                if y.ndim == 2
                else f"samples; every one of the {len(y)} labels given is unique."
            )
        )
    max_r = int(r.max())

    def nearest_relevance(dist_chunk: np.ndarray, start: int) -> np.ndarray:
        rows = np.arange(start, start + len(dist_chunk))
        dist_chunk[np.arange(len(dist_chunk)), rows] = np.inf  # never retrieve self
        return relevance(rows, nearest(dist_chunk, max_r))

    # Chunks of _WORKING_MEMORY_MB: the distances and their argsort, about
    # three times that at the peak, whatever the number of samples (early
    # stopping scores up to 5000 each epoch, which would otherwise take
    # 5000 x 5000 x 8 bytes twice over).
    chunks = pairwise_distances_chunked(
        X,
        reduce_func=nearest_relevance,
        metric=metric,
        working_memory=_WORKING_MEMORY_MB,
    )
    relevant = np.vstack(list(chunks))
    return relevant[keep], r[keep]


def nearest(distances: np.ndarray, k: int) -> np.ndarray:
    """The columns of the ``k`` smallest ``distances`` of each row, nearest
    first, ties in column order: the first ``k`` of a stable argsort.

    Only the ``k`` nearest are sorted (``argpartition`` finds them), which is
    what makes scoring a few thousand held-out samples cheap beside an epoch
    of training.  Rows with a tie across the ``k``-th distance, where the
    partition could pick another of the tied columns, are sorted whole.

    >>> nearest(np.array([[3.0, 1.0, 2.0, 1.0, 0.5]]), 3)
    array([[4, 1, 3]])
    """
    n = distances.shape[1]
    if k >= n:
        return np.argsort(distances, axis=1, kind="stable")[:, :k]
    part = np.sort(np.argpartition(distances, k - 1, axis=1)[:, :k], axis=1)
    values = np.take_along_axis(distances, part, axis=1)
    order = np.take_along_axis(part, np.argsort(values, axis=1, kind="stable"), 1)
    kth = np.take_along_axis(distances, order[:, -1:], axis=1)
    tied = np.flatnonzero(np.sum(distances <= kth, axis=1) > k)
    if len(tied):
        whole = np.argsort(distances[tied], axis=1, kind="stable")[:, :k]
        order[tied] = whole
    return order


def _label_sharing(y):
    """``relevance(rows, columns)``: whether each of ``rows`` shares a label
    with the samples in its row of ``columns`` (never with itself); and ``R``,
    how many other samples share a label with each."""
    if y.ndim == 2:  # a multi-label indicator, dense or sparse
        indicator = sp.csr_matrix(y, dtype=np.int32)
        transposed = indicator.T.tocsc()

        def shares(rows):
            out = (indicator[rows] @ transposed).toarray() > 0
            out[np.arange(len(rows)), rows] = False
            return out

        def relevance(rows, columns):
            return np.take_along_axis(shares(rows), columns, axis=1)

        chunks = range(0, y.shape[0], 1024)
        r = [shares(np.arange(i, min(i + 1024, y.shape[0]))).sum(1) for i in chunks]
        return relevance, np.concatenate(r)
    _, codes, counts = np.unique(y, return_inverse=True, return_counts=True)

    def relevance(rows, columns):
        return (codes[columns] == codes[rows, None]) & (columns != rows[:, None])

    return relevance, counts[codes] - 1


def _within_r(relevant: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``relevant`` with every rank past each query's ``R`` set to False."""
    return relevant & (np.arange(relevant.shape[1]) < r[:, None])


def mean_average_precision_at_r(X, y, *, metric: str = "euclidean") -> float:
    """Mean average precision at R (MAP@R) of leave-one-out retrieval.

    For a query with ``R`` other samples of its label, ``AP@R = (1/R) *
    sum_{k <= R} P(k) * rel(k)``, where ``P(k)`` is the precision among the
    ``k`` nearest neighbours and ``rel(k)`` says whether the ``k``-th is
    relevant.  MAP@R averages this over the queries.  It is 1 only when, for
    every query, all same-label samples are nearer than any other sample.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings (or any feature vectors).
    y : array-like of shape (n_samples,)
        Labels.
    metric : str, default="euclidean"
        Any metric accepted by :func:`sklearn.metrics.pairwise_distances`.

    Returns
    -------
    float
        MAP@R in ``[0, 1]``, higher is better.

    Examples
    --------
    >>> from sktriplet.metrics import mean_average_precision_at_r
    >>> X = [[0.0], [1.0], [2.5], [3.0], [4.5], [9.0]]
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> round(mean_average_precision_at_r(X, y), 4)
    0.2917
    """
    relevant, r = _ranked_relevance(X, y, metric)
    hits = _within_r(relevant, r)
    precision_at_k = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    return float(np.mean(np.sum(precision_at_k * hits, axis=1) / r))


def r_precision(X, y, *, metric: str = "euclidean") -> float:
    """Mean R-precision: the share of relevant samples among the ``R`` nearest.

    Parameters and the meaning of ``R`` are as in
    :func:`mean_average_precision_at_r`.

    Examples
    --------
    >>> from sktriplet.metrics import r_precision
    >>> X = [[0.0], [1.0], [2.5], [3.0], [4.5], [9.0]]
    >>> round(r_precision(X, [0, 0, 1, 0, 1, 1]), 4)
    0.3333
    """
    relevant, r = _ranked_relevance(X, y, metric)
    return float(np.mean(np.sum(_within_r(relevant, r), axis=1) / r))


def precision_at_1(X, y, *, metric: str = "euclidean") -> float:
    """Share of queries whose nearest other sample has the query's label.

    This is the leave-one-out accuracy of a 1-nearest-neighbour classifier,
    counted over the queries whose label some other sample shares.

    Examples
    --------
    >>> from sktriplet.metrics import precision_at_1
    >>> X = [[0.0], [1.0], [2.5], [3.0], [4.5], [9.0]]
    >>> precision_at_1(X, [0, 0, 1, 0, 1, 1])
    0.5
    """
    relevant, _ = _ranked_relevance(X, y, metric)
    return float(np.mean(relevant[:, 0]))
