"""Pseudo-labels for partly labelled data, spread over a learned embedding.

Self-training, as :class:`sklearn.semi_supervised.SelfTrainingClassifier` does
it for classifiers: after a fit, the unlabelled samples that the embedding
places confidently in one class take that class as a label, and the encoder is
trained again: the estimator plans and runs each of the :class:`Rounds`,
which labels over the embedding each run returns.  Plain numpy and
scikit-learn.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.semi_supervised import LabelSpreading

from ._checks import UNLABELLED

SPREADING_NEIGHBORS = 7  # LabelSpreading's own default
AGREEING_NEIGHBORS = 10
# The most training samples a round labels over: the brute-force neighbour
# search grows with the square of their number.
MAX_SELF_TRAINING_SAMPLES = 50_000


def pseudo_labels(embedding: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` with its confidently placed unlabelled samples labelled.

    The labels spread from the labelled samples over the nearest-neighbour
    graph of ``embedding`` (:class:`~sklearn.semi_supervised.LabelSpreading`,
    knn kernel).  An unlabelled sample takes its spread label when its 10
    nearest neighbours all carry that same spread label; the others stay
    unlabelled (``-1``), as do those the spreading does not reach.
    LabelSpreading's own label distributions are no guide here: on a good
    embedding nearly all of them are certain, including those of whole
    clusters spread the wrong label.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, n_components)
    y : ndarray of shape (n_samples,)
        Integer class codes, ``-1`` for an unlabelled sample.

    Returns
    -------
    y_pseudo : ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> embedding = np.r_[np.zeros((12, 2)), np.ones((12, 2))]
    >>> embedding[1:12] += np.random.RandomState(0).normal(scale=0.01, size=(11, 2))
    >>> embedding[13:] += np.random.RandomState(1).normal(scale=0.01, size=(11, 2))
    >>> y = np.full(24, -1)
    >>> y[0], y[12] = 0, 1
    >>> print(pseudo_labels(embedding, y))
    [0 0 0 0 0 0 0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 1 1 1]
    """
    n_samples = len(y)
    # One neighbour search serves both steps (it is the costly part: brute
    # force in the embedding's dimensions).  kneighbors() without X leaves
    # each sample out of its own neighbours.
    nearest = (
        NearestNeighbors(n_neighbors=min(AGREEING_NEIGHBORS, n_samples - 1))
        .fit(embedding)
        .kneighbors(return_distance=False)
    )
    spreading = LabelSpreading(kernel=_knn_graph(nearest, SPREADING_NEIGHBORS))
    with warnings.catch_warnings():
        # Not converged in max_iter still gives the labels of the graph's
        # clusters, which is all the agreement test below needs.
        warnings.simplefilter("ignore", ConvergenceWarning)
        spreading.fit(embedding, y)
    # A sample the spreading never reached has no label (sklearn gives it the
    # first class): in a directed k-NN graph, a labelled sample no other
    # sample counts among its neighbours spreads its label nowhere.
    reached = spreading.label_distributions_.max(axis=1) > 0
    spread = np.where(reached, spreading.transduction_, UNLABELLED)
    agreed = reached & np.all(spread[nearest] == spread[:, None], axis=1)
    take = (y == UNLABELLED) & agreed
    y_pseudo = y.copy()
    y_pseudo[take] = spread[take]
    return y_pseudo


def _knn_graph(nearest: np.ndarray, n_neighbors: int):
    """LabelSpreading's ``kernel="knn"`` graph, from neighbours already found.

    The same connectivity matrix as ``kneighbors_graph(X, n_neighbors)`` on
    the training samples: each sample and its ``n_neighbors - 1`` nearest
    others.  As a kernel callable: ``LabelSpreading.fit`` calls it once, with
    the samples themselves.
    """
    n_samples = len(nearest)
    columns = np.c_[np.arange(n_samples), nearest[:, : n_neighbors - 1]]
    rows = np.repeat(np.arange(n_samples), columns.shape[1])
    graph = csr_matrix(
        (np.ones(rows.size), (rows, columns.ravel())), shape=(n_samples, n_samples)
    )

    def kernel(X, Y):
        return graph

    return kernel


class Rounds:
    """The training runs of a fit: the first, then up to
    ``pseudo_label_rounds`` of self-training when some rows of the class codes
    ``y_codes`` are unlabelled (never in ``partial_fit``, nor for a
    multi-label ``y``).

    Iterating gives each run's ``(y, split, label)``: the class codes to train
    on, the ``(train_rows, validation_rows)`` to keep (None: the plan draws
    them) and whether the plan asks the run to embed the rows to label.
    After each run, :meth:`trained` labels over the embedding it returned
    (:func:`pseudo_labels`); no other run follows when no row takes a label.
    The next round trains from a new start, holding out the same rows.
    """

    def __init__(self, params: dict, y_codes, partial: bool) -> None:
        partly = y_codes.ndim == 1 and bool(np.any(y_codes == UNLABELLED))
        self._count = params["pseudo_label_rounds"] if partly and not partial else 0
        self._y_codes = y_codes
        self._next = (y_codes, None)

    def __iter__(self):
        for i in range(self._count + 1):
            if self._next is None:
                return
            (y, split), self._next = self._next, None
            yield y, split, i < self._count

    def trained(self, plan, result) -> None:
        """Label over the embedding that the run of ``plan`` returned (of its
        ``label_rows``, see :class:`~sktriplet._plan.FitPlan`), for the next
        run."""
        rows = plan.label_rows
        if rows is None:
            return
        embedding = result.label_embedding
        if not plan.label_share:  # the embedding of every row of X
            embedding = embedding[rows]
        y_round = self._y_codes.copy()
        y_round[rows] = pseudo_labels(embedding, self._y_codes[rows])
        if not np.array_equal(y_round, self._y_codes):
            self._next = (y_round, (plan.train_rows, plan.validation_rows))
