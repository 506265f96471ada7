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
from .sampling import rows_by_label

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
# sample_size="auto": every sample is a query up to this many; beyond, the
# estimate of _estimated_means, whose cost is about 2 * AUTO_SAMPLE_SIZE rows
# of distances to every sample.  The user guide's "Scoring at scale" gives
# the error measured.
AUTO_SAMPLE_SIZE = 1000
_NAMES = ("ap", "rp", "p1")  # AP@R, R-precision, precision@1


def _retrieval_scores(X, y, metric: str, sample_size, random_state) -> dict:
    """The mean AP@R, R-precision and precision@1 of leave-one-out retrieval
    (``{"ap": ..., "rp": ..., "p1": ...}``), exact up to ``sample_size``
    queries, else estimated (:func:`_estimated_means`).

    ``y`` is one label per sample, or a multi-label indicator matrix (dense
    or sparse, one column per label), where a sample is relevant to a query
    when they share at least one label.  Queries that no other sample is
    relevant to (``R = 0``) are left out.
    """
    X, y = check_X_y(
        X, y, dtype=[np.float64, np.float32], y_numeric=False, multi_output=True
    )
    y = indicator_or_labels(y)
    labels = _Labels(y)
    eligible = np.flatnonzero(labels.eligible())
    if not len(eligible):
        raise ValueError(
            "Retrieval metrics need at least one label shared by two or more "
            + (
                f"samples; no two of the {len(y)} samples given share a label."
                if y.ndim == 2
                else f"samples; every one of the {len(y)} labels given is unique."
            )
        )
    if sample_size is None or len(eligible) <= sample_size:
        scores = _scores_of(X, None, None, labels, metric)
        return {name: float(np.nanmean(s)) for name, s in zip(_NAMES, scores)}
    return _estimated_means(X, labels, eligible, metric, sample_size, random_state)


def _estimated_means(X, labels, eligible, metric, sample_size, random_state):
    """The means over the ``eligible`` queries, estimated from ``sample_size``
    of them with a control variate, unbiased.

    Every eligible query is first ranked against a fixed sample of
    ``sample_size`` samples only (the database), which is cheap and gives a
    noisy but closely correlated proxy of its scores; the exact scores of a
    class-stratified sample of ``sample_size`` queries, each ranked against
    every sample, then correct the proxies' mean by their mean difference
    (weighted by each class's size over its sample's).  The proxy takes out
    most of the spread of the scores between queries, which a plain sample of
    queries would keep.
    """
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    queries, weights = _stratified(labels, eligible, sample_size, rng)
    database, _ = _stratified(labels, np.arange(labels.n), sample_size, rng)
    proxy = _scores_of(X, eligible, database, labels, metric)
    exact = _scores_of(X, queries, None, labels, metric)
    at = np.searchsorted(eligible, queries)
    weights = weights / weights.sum()
    means = {}
    for name, p, e in zip(_NAMES, proxy, exact):
        p = np.nan_to_num(p)  # no relevant sample in the database: proxy 0
        means[name] = float(np.mean(p) + np.dot(weights, e - p[at]))
    return means


def _scores_of(X, rows, columns, labels, metric: str) -> tuple:
    """AP@R, R-precision and precision@1 of each query ``rows`` (None: every
    sample) ranked against the samples ``columns`` (None: every sample), NaN
    where no other of them is relevant; a chunk of queries at a time, in
    memory of a few times ``_WORKING_MEMORY_MB`` whatever ``n`` and ``R``."""
    n = labels.n
    queries = np.arange(n) if rows is None else rows
    database = None if columns is None else np.asarray(columns)
    position = None
    if database is not None:  # where each query is among the columns, or -1
        position = np.full(n, -1)
        position[database] = np.arange(len(database))

    def reduce(distances: np.ndarray, start: int) -> tuple:
        chunk = queries[start : start + len(distances)]
        return _score_chunk(distances, chunk, labels, database, position)

    # Distances as scikit-learn computes them, in chunks of _WORKING_MEMORY_MB.
    chunks = pairwise_distances_chunked(
        X if rows is None else X[rows],
        None
        if rows is None and columns is None
        else (X if columns is None else X[database]),
        reduce_func=reduce,
        metric=metric,
        working_memory=_WORKING_MEMORY_MB,
    )
    parts = list(chunks)
    return tuple(np.concatenate([part[k] for part in parts]) for k in range(3))


class _Labels:
    """Who is relevant to whom: ``irrelevant(rows, columns)``, a boolean matrix
    of each query row against the samples ``columns`` (None: all);
    ``eligible()``, which samples some other sample is relevant to; and
    ``strata``, the class of each sample (None for a multi-label ``y``)."""

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

    def irrelevant(self, rows: np.ndarray, columns=None) -> np.ndarray:
        if self.strata is None:
            others = (
                self._transposed if columns is None else self._transposed[:, columns]
            )
            return (self._indicator[rows] @ others).toarray() == 0
        others = self.strata if columns is None else self.strata[columns]
        return others[None, :] != self.strata[rows, None]

    def eligible(self) -> np.ndarray:
        if self.strata is not None:
            return self._counts[self.strata] >= 2
        shared = np.asarray(self._indicator.sum(axis=0)).ravel() >= 2
        return self._indicator @ shared.astype(np.int32) > 0


def _stratified(labels: _Labels, candidates: np.ndarray, size: int, rng) -> tuple:
    """``size`` of the ``candidates`` (all of them when there are no more),
    drawn without replacement, sorted, and the weight of each (its class's
    candidates over its class's draws).  Stratified by class with
    proportional allocation, at least one a class, largest remainders; a
    multi-label ``y``, or more classes than half of ``size``, is drawn
    uniformly (weights 1)."""
    n = len(candidates)
    if n <= size:
        return candidates, np.ones(n)
    if labels.strata is None or len(np.unique(labels.strata[candidates])) > size // 2:
        return np.sort(rng.choice(candidates, size, replace=False)), np.ones(size)
    groups = [candidates[rows] for rows in rows_by_label(labels.strata[candidates])[1]]
    sizes = np.array([len(group) for group in groups])
    share = size * sizes / n
    take = np.maximum(np.floor(share).astype(int), 1)
    extra = size - take.sum()
    if extra > 0:
        take[np.argsort(-(share - np.floor(share)), kind="stable")[:extra]] += 1
    take = np.minimum(take, sizes)
    chosen, weights = [], []
    for group, k in zip(groups, take):
        chosen.append(rng.choice(group, k, replace=False))
        weights.append(np.full(k, len(group) / k))
    chosen, weights = np.concatenate(chosen), np.concatenate(weights)
    order = np.argsort(chosen)
    return chosen[order], weights[order]


def _score_chunk(distances, rows, labels, columns=None, position=None) -> tuple:
    """AP@R, R-precision and precision@1 of each query ``rows[i]`` from its row
    of ``distances`` to the samples ``columns`` (None: every sample; then
    ``position`` says where each sample is among them, -1 where it is not);
    NaN where ``R = 0``.

    Ranks break distance ties by sample order, as a stable sort does.  The
    ``R`` nearest are found by one partition and sorted on integer keys that
    hold the distance's bits, then (float32) the column, or (float64, see
    :func:`_ranked_float64`) whether the sample is irrelevant.
    """
    c, n = distances.shape
    irrelevant = labels.irrelevant(rows, columns)
    own = rows if columns is None else position[rows]
    mine = np.flatnonzero(own >= 0)
    distances[mine, own[mine]] = np.inf  # never retrieve self
    irrelevant[mine, own[mine]] = True
    r = n - irrelevant.sum(axis=1)
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


def _scores(X, y, metric, sample_size, random_state) -> dict:
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

    Scored a chunk of queries at a time, in bounded memory whatever the number
    of samples and of relevant ones; beyond ``sample_size`` samples,
    estimated (see ``sample_size``).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings (or any feature vectors).
    y : array-like of shape (n_samples,) or (n_samples, n_labels)
        Labels, or a multi-label indicator matrix (a sample is relevant when
        it shares a label with the query).
    metric : str, default="euclidean"
        Any metric accepted by :func:`sklearn.metrics.pairwise_distances`.
    sample_size : int, "auto" or None, default="auto"
        None scores every sample as a query, exactly.  An int scores exactly
        up to that many samples; beyond, it estimates the mean without bias
        (as :func:`sklearn.metrics.silhouette_score` samples): every query is
        ranked against a fixed sample of ``sample_size`` samples, a cheap
        proxy of its score, and the exact scores of a class-stratified sample
        of ``sample_size`` queries, each ranked against every sample, correct
        the proxies' mean.  The cost is about ``2 * sample_size`` rows of
        distances.  "auto" is 1000.
    random_state : int, RandomState or None, default=0
        Draws the samples; an int gives the same samples, and the same score,
        for the same ``X`` and ``y`` in every call and process.

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
    return _scores(X, y, metric, sample_size, random_state)["ap"]


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
    return _scores(X, y, metric, sample_size, random_state)["rp"]


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
    return _scores(X, y, metric, sample_size, random_state)["p1"]
