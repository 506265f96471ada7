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

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import pairwise_distances_chunked
from sklearn.utils import check_X_y

from ._checks import indicator_or_labels

__all__ = [
    "AUTO_SAMPLE_SIZE",
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
# sample_size="auto": every query is scored up to this many; beyond it, this
# many queries, drawn once per (X, y) and stratified by class, each against
# the whole set, so that scoring costs a bounded multiple of one distance
# pass.  The user guide's "Scoring at scale" gives the error measured.
AUTO_SAMPLE_SIZE = 2000


class _Scores:
    """Per-query AP@R, R-precision and precision@1, and each query's weight
    in the mean (1 / n for exact scores; the inverse of its class's sampling
    rate, normalised, for an estimate)."""

    def __init__(self, ap, rp, p1, weights) -> None:
        self.ap, self.rp, self.p1, self.weights = ap, rp, p1, weights

    def mean(self, name: str) -> float:
        return float(np.dot(getattr(self, name), self.weights))


def _retrieval_scores(X, y, metric: str, sample_size, random_state) -> _Scores:
    """Leave-one-out retrieval scores of the queries (all of them, or a
    class-stratified sample, see :func:`_queries`), reduced a chunk of
    queries at a time: memory stays within a few times ``_WORKING_MEMORY_MB``
    whatever ``n`` and ``R``, and only three numbers a query are kept.

    ``y`` is one label per sample, or a multi-label indicator matrix (dense
    or sparse, one column per label), where a sample is relevant to a query
    when they share at least one label.
    """
    X, y = check_X_y(
        X, y, dtype=[np.float64, np.float32], y_numeric=False, multi_output=True
    )
    y = indicator_or_labels(y)
    labels = _Labels(y)
    queries, weights = _queries(labels, sample_size, random_state)
    if not len(queries):
        raise ValueError(
            "Retrieval metrics need at least one label shared by two or more "
            + (
                f"samples; no two of the {len(y)} samples given share a label."
                if y.ndim == 2
                else f"samples; every one of the {len(y)} labels given is unique."
            )
        )

    every = len(queries) == len(X)

    def reduce(distances: np.ndarray, start: int) -> tuple:
        rows = queries[start : start + len(distances)]
        return _score_chunk(distances, rows, labels)

    # Distances as scikit-learn computes them, in chunks of _WORKING_MEMORY_MB;
    # every query scored against every sample.
    chunks = pairwise_distances_chunked(
        X if every else X[queries],
        None if every else X,
        reduce_func=reduce,
        metric=metric,
        working_memory=_WORKING_MEMORY_MB,
    )
    parts = list(chunks)
    ap, rp, p1 = (np.concatenate([part[k] for part in parts]) for k in range(3))
    scored = ~np.isnan(ap)  # queries with R = 0 are left out
    weights = weights[scored] / weights[scored].sum()
    return _Scores(ap[scored], rp[scored], p1[scored], weights)


class _Labels:
    """Who is relevant to whom: ``irrelevant(rows)``, a boolean matrix of each
    query row against every sample, and ``r(rows)``, how many other samples
    share a label with each; ``strata``, the class of each sample (None for a
    multi-label ``y``)."""

    def __init__(self, y) -> None:
        self.n = y.shape[0]
        if y.ndim == 2:  # a multi-label indicator, dense or sparse
            self._indicator = sp.csr_matrix(y, dtype=np.int32)
            self._transposed = self._indicator.T.tocsc()
            self.strata = None
        else:
            _, self.strata, self._counts = np.unique(
                y, return_inverse=True, return_counts=True
            )

    def irrelevant(self, rows: np.ndarray) -> np.ndarray:
        if self.strata is None:
            shares = (self._indicator[rows] @ self._transposed).toarray() > 0
            return ~shares
        return self.strata[None, :] != self.strata[rows, None]

    def r(self, rows: np.ndarray) -> np.ndarray:
        if self.strata is not None:
            return self._counts[self.strata[rows]] - 1
        step = max(2**22 // max(self.n, 1), 1)  # a few MB of shares at a time
        return np.concatenate(
            [
                (~self.irrelevant(rows[i : i + step])).sum(axis=1) - 1
                for i in range(0, len(rows), step)
            ]
        ).astype(np.intp)


def _queries(labels: _Labels, sample_size, random_state) -> tuple:
    """The queries to score and their weights.

    Every sample with ``R >= 1`` when there are at most ``sample_size`` of
    them (or ``sample_size`` is None).  Beyond, ``sample_size`` of them drawn
    without replacement by ``random_state`` (an int: the same queries for the
    same ``y`` in every call and process), stratified by class with
    proportional allocation, each weighted by its class's size over its
    sample's, so that the mean is unbiased.  A multi-label ``y``, or more
    classes than half the sample, is sampled uniformly.
    """
    from sklearn.utils import check_random_state

    if labels.strata is not None:
        eligible = np.flatnonzero(labels.r(np.arange(labels.n)) >= 1)
    else:  # R is costly here: sampled rows with R = 0 are dropped later
        eligible = np.arange(labels.n)
    n = len(eligible)
    if sample_size is None or n <= sample_size:
        return eligible, np.ones(n)
    rng = check_random_state(random_state)
    if (
        labels.strata is None
        or len(np.unique(labels.strata[eligible])) > sample_size // 2
    ):
        chosen = np.sort(rng.choice(eligible, sample_size, replace=False))
        return chosen, np.ones(sample_size)
    strata = labels.strata[eligible]
    sizes = np.bincount(strata)
    present = np.flatnonzero(sizes)
    # Proportional allocation, at least one query a class, largest remainders.
    share = sample_size * sizes[present] / n
    take = np.maximum(np.floor(share).astype(int), 1)
    extra = sample_size - take.sum()
    if extra > 0:
        take[np.argsort(-(share - np.floor(share)), kind="stable")[:extra]] += 1
    take = np.minimum(take, sizes[present])
    order = np.argsort(strata, kind="stable")
    groups = np.split(eligible[order], np.cumsum(sizes[present])[:-1])
    chosen, weights = [], []
    for group, k in zip(groups, take):
        chosen.append(rng.choice(group, k, replace=False))
        weights.append(np.full(k, len(group) / k))
    chosen, weights = np.concatenate(chosen), np.concatenate(weights)
    order = np.argsort(chosen)
    return chosen[order], weights[order]


def _score_chunk(distances: np.ndarray, rows: np.ndarray, labels: _Labels) -> tuple:
    """AP@R, R-precision and precision@1 of each query ``rows[i]`` from its row
    of ``distances`` to every sample; NaN where ``R = 0``.

    Ranks break distance ties by sample order, as a stable sort does.  The
    ``R`` nearest are found by one partition and sorted on integer keys that
    hold the distance's bits, then (float32) the column, or (float64, see
    :func:`_ranked_float64`) whether the sample is irrelevant.
    """
    c, n = distances.shape
    r = labels.r(rows)
    irrelevant = labels.irrelevant(rows)
    distances[np.arange(c), rows] = np.inf  # never retrieve self
    irrelevant[np.arange(c), rows] = True
    ap, rp, p1 = np.full(c, np.nan), np.full(c, np.nan), np.full(c, np.nan)
    ok = r >= 1
    if not ok.any():
        return ap, rp, p1
    d, irrelevant, r = distances[ok], irrelevant[ok], r[ok]
    np.maximum(d, 0, out=d)
    d += 0  # -0.0 -> 0.0: non-negative floats order as their bits
    k = min(int(r.max()) + 1, n)  # R nearest, and the next for ties
    rank = np.arange(k)
    if d.dtype == np.float32:
        # The column under the distance's bits: the order of a stable sort,
        # ties included, and the column to look the relevance up by.
        keys = d.view(np.uint32).astype(np.uint64) << np.uint64(32)
        keys |= np.arange(n, dtype=np.uint64)
        window = np.partition(keys, k - 1, axis=1)[:, :k] if k < n else keys
        window.sort(axis=1)
        columns = (window & np.uint64(0xFFFFFFFF)).astype(np.intp)
        relevant = ~np.take_along_axis(irrelevant, columns, axis=1)
    else:
        relevant = _ranked_float64(d, irrelevant, r, k)
    hits = relevant & (rank[None, :] < r[:, None])
    # AP@R: the precision at each hit's rank, summed over the hits, over R.
    found = np.cumsum(hits, axis=1, dtype=np.int32)
    rp[ok] = found[:, -1] / r
    found *= hits
    ap[ok] = (found @ (1.0 / np.arange(1, k + 1))) / r
    p1[ok] = relevant[:, 0]
    return ap, rp, p1


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


def _ranked_float64(d, irrelevant, r, k) -> np.ndarray:
    """Whether the ``k`` nearest of each row of float64 distances ``d`` are
    relevant, nearest first, ties in column order.

    The keys hold the distance's bits and, in the lowest bit, whether the
    sample is irrelevant (the column does not fit beside 63 bits); a row whose
    order hangs on a tie between a relevant and an irrelevant sample (equal
    float64 distances: duplicates, integer data) is ranked by a stable argsort.
    """
    n = d.shape[1]
    keys = d.view(np.uint64) << np.uint64(1)
    keys |= irrelevant
    window = np.partition(keys, k - 1, axis=1)[:, :k] if k < n else keys
    window.sort(axis=1)
    relevant = (window & np.uint64(1)) == 0
    bits = window >> np.uint64(1)
    rank = np.arange(k)
    # Equal distances of a relevant and an irrelevant sample side by side
    # within rank R, or any tie across rank R.
    mixed = (bits[:, 1:] == bits[:, :-1]) & (relevant[:, 1:] != relevant[:, :-1])
    mixed &= rank[None, 1:] <= r[:, None]
    rows = np.arange(len(r))
    boundary = bits[rows, r - 1] == bits[rows, np.minimum(r, k - 1)]
    boundary &= r < k
    for i in np.flatnonzero(mixed.any(axis=1) | boundary):
        order = np.argsort(d[i], kind="stable")[:k]
        relevant[i] = ~irrelevant[i, order]
    return relevant


def _sample_size(sample_size):
    if sample_size == "auto":
        return AUTO_SAMPLE_SIZE
    if sample_size is None or (
        isinstance(sample_size, Integral)
        and not isinstance(sample_size, bool)
        and sample_size >= 1
    ):
        return sample_size
    raise ValueError(
        f'sample_size must be a positive integer, "auto" or None; got {sample_size!r}.'
    )


def _scores(X, y, metric, sample_size, random_state) -> _Scores:
    return _retrieval_scores(X, y, metric, _sample_size(sample_size), random_state)


def mean_average_precision_at_r(
    X, y, *, metric: str = "euclidean", sample_size="auto", random_state=0
) -> float:
    """Mean average precision at R (MAP@R) of leave-one-out retrieval.

        For a query with ``R`` other samples of its label, ``AP@R = (1/R) *
        sum_{k <= R} P(k) * rel(k)``, where ``P(k)`` is the precision among the
        ``k`` nearest neighbours and ``rel(k)`` says whether the ``k``-th is
        relevant.  MAP@R averages this over the queries.  It is 1 only when, for
        every query, all same-label samples are nearer than any other sample.

        Scored a chunk of queries at a time, in bounded memory whatever the
        number of samples and of relevant ones; beyond ``sample_size`` samples,
        estimated from a fixed, class-stratified sample of queries.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings (or any feature vectors).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels, or a multi-label indicator matrix (a sample is relevant when
            it shares a label with the query).
        metric : str, default="euclidean"
            Any metric accepted by :func:`sklearn.metrics.pairwise_distances`.
    {sampling}
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
    return _scores(X, y, metric, sample_size, random_state).mean("ap")


def r_precision(
    X, y, *, metric: str = "euclidean", sample_size="auto", random_state=0
) -> float:
    """Mean R-precision: the share of relevant samples among the ``R`` nearest.

    Parameters, the meaning of ``R`` and the sampling of queries are as in
    :func:`mean_average_precision_at_r`.

    Examples
    --------
    >>> from sktriplet.metrics import r_precision
    >>> X = [[0.0], [1.0], [2.5], [3.0], [4.5], [9.0]]
    >>> round(r_precision(X, [0, 0, 1, 0, 1, 1]), 4)
    0.3333
    """
    return _scores(X, y, metric, sample_size, random_state).mean("rp")


def precision_at_1(
    X, y, *, metric: str = "euclidean", sample_size="auto", random_state=0
) -> float:
    """Share of queries whose nearest other sample has the query's label.

    This is the leave-one-out accuracy of a 1-nearest-neighbour classifier,
    counted over the queries whose label some other sample shares.  The
    sampling of queries is as in :func:`mean_average_precision_at_r`.

    Examples
    --------
    >>> from sktriplet.metrics import precision_at_1
    >>> X = [[0.0], [1.0], [2.5], [3.0], [4.5], [9.0]]
    >>> precision_at_1(X, [0, 0, 1, 0, 1, 1])
    0.5
    """
    return _scores(X, y, metric, sample_size, random_state).mean("p1")
