"""Triplet mining: where the triplets of a batch are chosen (numpy reference).

Every miner takes the labels of a batch (and, when it looks at the geometry, the
pairwise distances of its embeddings) and returns ``(anchor_idx, positive_idx,
negative_idx)``: three integer arrays of equal length, one entry per triplet.  That
triple is exactly the input of :func:`triplet_margin_loss`.

These functions are the reference implementation.  The Keras loss in
:mod:`sktriplet.keras.losses` mines the same triplets with ``keras.ops`` inside the
training step, and the test suite holds it to these functions on fixed inputs.
This module is pure numpy; it never imports Keras.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DISTANCES",
    "MINING_STRATEGIES",
    "all_triplets",
    "following_positives",
    "hard_triplets",
    "mine_triplets",
    "pairwise_distances",
    "positives_per_anchor",
    "random_triplets",
    "semihard_triplets",
    "triplet_margin_loss",
]

DISTANCES = ("squared_euclidean", "euclidean", "cosine")
MINING_STRATEGIES = ("random", "all", "hard", "semihard")

Triplets = tuple[np.ndarray, np.ndarray, np.ndarray]

# The most positives ``"semihard"`` pairs each anchor with in training (see
# ``positives_per_anchor``): ``benchmarks/step_time.py`` and
# ``benchmarks/seeds.py`` measure the speed and quality of this choice.
SEMIHARD_POSITIVES = 16


def positives_per_anchor(mining: str, rows_per_class: int) -> int | None:
    """The positives each anchor is paired with in a batch of ``rows_per_class``
    rows of its class (see :func:`following_positives`); None pairs every one.

    ``"semihard"`` pairs at most :data:`SEMIHARD_POSITIVES`, those following
    the anchor in the batch: its cost grows with ``batch * positives * batch``,
    and with few classes a batch holds many rows of each (two classes in 256
    rows: 127 positives).  ``"all"`` pairs every one: bounded (on the fast
    ``(batch, positives, batch)`` path) up to ``SEMIHARD_POSITIVES``, beyond
    that None (the sorted ``O(batch**2)`` path, whose memory does not grow with
    them).  The other strategies pair every one.

    >>> positives_per_anchor("semihard", 4), positives_per_anchor("semihard", 128)
    (3, 16)
    >>> positives_per_anchor("all", 4), positives_per_anchor("all", 128) is None
    (3, True)
    """
    every = max(rows_per_class - 1, 1)
    if mining == "semihard":
        return min(every, SEMIHARD_POSITIVES)
    if mining == "all" and every <= SEMIHARD_POSITIVES:
        return every
    return None


def pairwise_distances(embeddings: np.ndarray, distance: str = "squared_euclidean"):
    """Distances between all rows of ``embeddings``, shape ``(n, n)``.

    Parameters
    ----------
    embeddings : ndarray of shape (n, d)
    distance : {"squared_euclidean", "euclidean", "cosine"}
        ``"cosine"`` is ``1 - cos(angle)``, in ``[0, 2]``.

    Examples
    --------
    >>> import numpy as np
    >>> pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0]]), "euclidean")
    array([[0., 5.],
           [5., 0.]])
    """
    e = np.asarray(embeddings, dtype=np.float64)
    if distance == "cosine":
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        return np.maximum(1.0 - e @ e.T, 0.0)
    sq = np.sum(e * e, axis=1)
    d2 = np.maximum(sq[:, None] - 2.0 * (e @ e.T) + sq[None, :], 0.0)
    np.fill_diagonal(d2, 0.0)
    if distance == "squared_euclidean":
        return d2
    if distance == "euclidean":
        return np.sqrt(d2)
    raise ValueError(f"distance must be one of {DISTANCES}. Received: {distance!r}")


def _pair_masks(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``positive[i, j]``: same label, ``i != j``; ``negative[i, j]``: other label.

    ``labels`` is one label per row, or a multi-label indicator matrix of shape
    ``(n, n_labels)``: rows that share at least one label are positives, rows
    that share none negatives (a row without a label is a negative of every
    other row and the positive of none).
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        indicator = labels.astype(np.int32)
        same = indicator @ indicator.T > 0
    else:
        same = labels[:, None] == labels[None, :]
    other = ~np.eye(len(labels), dtype=bool)
    return same & other, ~same & other


def following_positives(labels: np.ndarray, max_positives: int | None) -> np.ndarray:
    """Each anchor's positives, at most ``max_positives`` of them: the ones that
    follow it in the batch, wrapping around to the start.

    Returns the ``(n, n)`` mask ``positive[a, p]``.  With a batch of ``K`` rows
    per class in random order, every row is then the positive of as many
    anchors, and the work of mining over each anchor's positives stays
    ``O(n * max_positives * n)`` however few classes share the batch.

    Examples
    --------
    >>> following_positives([0, 0, 0, 1], 1).astype(int)
    array([[0, 1, 0, 0],
           [0, 0, 1, 0],
           [1, 0, 0, 0],
           [0, 0, 0, 0]])
    """
    positive, _ = _pair_masks(labels)
    if max_positives is None:
        return positive
    n = len(positive)
    after = (np.arange(n)[None, :] - np.arange(n)[:, None]) % n
    # Positives ranked by how far they follow the anchor: keep the first ones.
    rank = np.argsort(np.where(positive, after, n), axis=1, kind="stable")
    kept = np.zeros_like(positive)
    np.put_along_axis(kept, rank[:, :max_positives], True, axis=1)
    return kept & positive


def _valid_anchors(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    return np.flatnonzero(positive.any(axis=1) & negative.any(axis=1))


def _as_triplets(a, p, n) -> Triplets:
    return tuple(np.asarray(v, dtype=np.intp) for v in (a, p, n))


def all_triplets(labels: np.ndarray, max_positives: int | None = None) -> Triplets:
    """Every valid triplet: ``labels[a] == labels[p] != labels[n]``, ``a != p``.

    With ``max_positives``, only each anchor's :func:`following_positives`.

    Examples
    --------
    >>> a, p, n = all_triplets([0, 0, 1])
    >>> list(zip(a.tolist(), p.tolist(), n.tolist()))
    [(0, 1, 2), (1, 0, 2)]
    """
    _, negative = _pair_masks(labels)
    positive = following_positives(labels, max_positives)
    a, p, n = np.nonzero(positive[:, :, None] & negative[:, None, :])
    return _as_triplets(a, p, n)


def random_triplets(
    labels: np.ndarray, random_state: np.random.RandomState
) -> Triplets:
    """One uniformly random positive and negative per valid anchor (the seed's scheme).

    Examples
    --------
    >>> import numpy as np
    >>> a, p, n = random_triplets([0, 0, 1, 1], np.random.RandomState(0))
    >>> a.tolist(), p.tolist()
    ([0, 1, 2, 3], [1, 0, 3, 2])
    """
    positive, negative = _pair_masks(labels)
    anchors = _valid_anchors(positive, negative)
    p = [random_state.choice(np.flatnonzero(positive[i])) for i in anchors]
    n = [random_state.choice(np.flatnonzero(negative[i])) for i in anchors]
    return _as_triplets(anchors, p, n)


def hard_triplets(labels: np.ndarray, distances: np.ndarray) -> Triplets:
    """Per anchor, the farthest positive and the closest negative (batch hard).

    Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [3.0], [1.5], [4.0]])
    >>> a, p, n = hard_triplets([0, 0, 0, 1, 1], pairwise_distances(x))
    >>> p.tolist(), n.tolist()
    ([2, 2, 0, 4, 3], [3, 3, 4, 1, 2])
    """
    positive, negative = _pair_masks(labels)
    distances = np.asarray(distances)
    anchors = _valid_anchors(positive, negative)
    p = np.argmax(np.where(positive, distances, -np.inf), axis=1)
    n = np.argmin(np.where(negative, distances, np.inf), axis=1)
    return _as_triplets(anchors, p[anchors], n[anchors])


def semihard_triplets(
    labels: np.ndarray, distances: np.ndarray, max_positives: int | None = None
) -> Triplets:
    """Per anchor-positive pair, the closest negative farther than the positive.

    Schroff, Kalenichenko and Philbin, "FaceNet", 2015.  When every negative of
    the anchor is at most as far as the positive, the pair falls back to the
    farthest of those negatives: the least hard of the hard ones.  With
    ``max_positives``, only each anchor's :func:`following_positives` pair.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0], [1.0], [0.4], [2.2]])
    >>> a, p, n = semihard_triplets([0, 0, 1, 1], pairwise_distances(x))
    >>> list(zip(a.tolist(), p.tolist(), n.tolist()))
    [(0, 1, 3), (1, 0, 3), (2, 3, 1), (3, 2, 0)]
    """
    positive, negative = _pair_masks(labels)
    distances = np.asarray(distances)
    kept = following_positives(labels, max_positives)
    triplets = []
    for a in _valid_anchors(positive, negative):
        negatives = np.flatnonzero(negative[a])
        an_dist = distances[a, negatives]
        for p in np.flatnonzero(kept[a]):
            farther = an_dist > distances[a, p]
            if farther.any():
                choice = np.flatnonzero(farther)[np.argmin(an_dist[farther])]
            else:
                choice = np.argmax(an_dist)
            triplets.append((a, p, negatives[choice]))
    if not triplets:
        return _as_triplets([], [], [])
    return _as_triplets(*zip(*triplets))


def mine_triplets(
    labels: np.ndarray,
    distances: np.ndarray | None = None,
    mining: str = "semihard",
    random_state: np.random.RandomState | None = None,
    max_positives: int | None = None,
) -> Triplets:
    """Dispatch to the miner named by ``mining`` (one of :data:`MINING_STRATEGIES`).

    ``max_positives`` limits ``"all"`` and ``"semihard"`` to each anchor's
    :func:`following_positives`.
    """
    if mining == "all":
        return all_triplets(labels, max_positives)
    if mining == "random":
        return random_triplets(labels, random_state or np.random.RandomState(0))
    if mining == "hard":
        return hard_triplets(labels, distances)
    if mining == "semihard":
        return semihard_triplets(labels, distances, max_positives)
    raise ValueError(
        f"mining must be one of {MINING_STRATEGIES}. Received: mining={mining!r}"
    )


def triplet_margin_loss(
    distances: np.ndarray, triplets: Triplets, margin: float
) -> tuple[float, float]:
    """Mean of ``max(d(a, p) - d(a, n) + margin, 0)`` over ``triplets``.

    Returns
    -------
    loss : float
        The mean hinge over the triplets (0 when there is none).
    active_fraction : float
        The fraction of triplets that still violate the margin.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.array([[0.0, 1.0, 1.25], [1.0, 0.0, 3.0], [1.25, 3.0, 0.0]])
    >>> triplet_margin_loss(d, (np.array([0, 1]), np.array([1, 0]),
    ...                         np.array([2, 2])), margin=0.5)
    (0.125, 0.5)
    """
    a, p, n = triplets
    if len(a) == 0:
        return 0.0, 0.0
    ap_dist = distances[a, p]
    an_dist = distances[a, n]
    hinge = np.maximum(ap_dist - an_dist + margin, 0.0)
    return float(np.mean(hinge)), float(np.mean(hinge > 0))
