"""The triplet loss with in-batch mining, written only in ``keras.ops``.

``L(a, p, n) = max(d(a, p) - d(a, n) + margin, 0)``, averaged over the triplets that
the chosen mining strategy selects in the batch.  Every function here works on any
Keras backend, with mixed precision (the loss is computed in float32) and under
``tf.distribute`` (the caller scales the loss per replica).

Memory per batch grows with ``batch**2``: ``"all"`` and ``"semihard"`` never form the
``(batch, batch, batch)`` tensor of every triplet.  When the caller knows that no
anchor has more than ``max_positives`` positives in a batch (a class-balanced batch
of ``K`` rows per class has ``K - 1``), or pairs each anchor with at most that many
of its positives, both work on the ``(batch, max_positives, batch)`` tensor of each
anchor's positives against every row, with no sort: this is the fast path the
estimator takes.  Otherwise both reduce to counting, for every
anchor-positive pair, the negatives that lie nearer than some threshold, which one
sort of each anchor's distances answers (see :func:`_merge_sorted`).

The numpy reference of each miner is :mod:`sktriplet.mining`.
"""

from __future__ import annotations

import keras
from keras import ops

from ..mining import DISTANCES, MINING_STRATEGIES

__all__ = ["TripletLoss", "mine_triplets", "pairwise_distances", "triplet_loss"]


def pairwise_distances(embeddings, distance: str = "squared_euclidean"):
    """Distances between all rows of ``embeddings``, shape ``(batch, batch)``.

    Computed in float32 whatever the compute dtype.  The euclidean distance has a
    finite gradient where two rows coincide.
    """
    e = ops.cast(embeddings, "float32")
    if distance == "cosine":
        e = e / ops.maximum(ops.norm(e, axis=1, keepdims=True), 1e-12)
        return ops.maximum(1.0 - ops.matmul(e, ops.transpose(e)), 0.0)
    sq = ops.sum(ops.square(e), axis=1)
    d2 = sq[:, None] - 2.0 * ops.matmul(e, ops.transpose(e)) + sq[None, :]
    d2 = ops.where(_eye(ops.shape(e)[0]), 0.0, ops.maximum(d2, 0.0))
    if distance == "squared_euclidean":
        return d2
    if distance == "euclidean":
        zero = ops.equal(d2, 0.0)
        return ops.where(zero, 0.0, ops.sqrt(ops.where(zero, 1.0, d2)))
    raise ValueError(f"distance must be one of {DISTANCES}. Received: {distance!r}")


def _eye(n):
    idx = ops.arange(n)
    return ops.equal(idx[:, None], idx[None, :])


def _pair_masks(labels):
    """``positive[i, j]``: same label, ``i != j``; ``negative[i, j]``: other label."""
    labels = ops.reshape(labels, (-1,))
    same = ops.equal(labels[:, None], labels[None, :])
    positive = ops.logical_and(same, ops.logical_not(_eye(ops.shape(labels)[0])))
    return positive, ops.logical_not(same)


def _merge_sorted(values, thresholds):
    """Sort each row of ``values`` together with the same row of ``thresholds``.

    One sort answers, for every threshold, how many values lie below it and
    which they are; this is how ``"semihard"`` and ``"all"`` stay in O(n**2)
    memory.

    Returns
    -------
    merged : (rows, n_values + n_thresholds) float
        The entries of each row in ascending order (a differentiable gather).
    order : same shape, int
        The column each sorted entry came from: ``< n_values`` for a value,
        ``n_values + j`` for threshold ``j``.
    is_value : same shape, bool
    values_before : same shape, int32
        How many values precede each sorted entry.
    """
    both = ops.concatenate([values, thresholds], axis=1)
    order = ops.argsort(ops.stop_gradient(both), axis=1)
    merged = ops.take_along_axis(both, order, axis=1)
    is_value = order < ops.shape(values)[1]
    as_int = ops.cast(is_value, "int32")
    return merged, order, is_value, ops.cumsum(as_int, axis=1) - as_int


def _negatives_masked(distances, negative, margin=0.0):
    """Each anchor's distances, with non-negatives pushed past every threshold."""
    far = ops.stop_gradient(ops.max(distances)) + margin + 1.0
    return ops.where(negative, distances, far)


def mine_triplets(labels, distances, mining: str = "semihard", seed=None):
    """Indices of the triplets that ``mining`` selects in a batch.

    Parameters
    ----------
    labels : tensor of shape (batch,)
    distances : tensor of shape (batch, batch)
        Pairwise distances of the batch's embeddings.
    mining : {"random", "hard", "semihard"}
        ``"all"`` selects ``O(batch**3)`` triplets, which are never listed: see
        :func:`triplet_loss`.
    seed : int or keras.random.SeedGenerator, optional
        Randomness for ``"random"``.

    Returns
    -------
    anchor_idx, positive_idx, negative_idx : int tensors of equal length
        ``batch`` triplets for ``"random"`` and ``"hard"`` (one per anchor),
        ``batch**2`` for ``"semihard"`` (one per anchor-positive pair).
    valid : bool tensor of the same length
        Whether each slot is a real triplet (an anchor without a positive or a
        negative in the batch, or a pair that is no positive pair, is not).
    """
    distances = ops.stop_gradient(distances)
    positive, negative = _pair_masks(labels)
    has_both = ops.logical_and(ops.any(positive, axis=1), ops.any(negative, axis=1))
    n = ops.shape(distances)[0]
    anchors = ops.arange(n)
    if mining == "random":
        # The argmax of uniform noise over a mask is a uniform pick from it.
        noise_p = keras.random.uniform(ops.shape(distances), seed=seed)
        noise_n = keras.random.uniform(ops.shape(distances), seed=seed)
        random_p = ops.argmax(ops.where(positive, noise_p, -1.0), axis=1)
        random_n = ops.argmax(ops.where(negative, noise_n, -1.0), axis=1)
        return anchors, random_p, random_n, has_both
    if mining == "hard":
        far = ops.max(distances) + 1.0
        hardest_p = ops.argmax(ops.where(positive, distances, -1.0), axis=1)
        hardest_n = ops.argmin(ops.where(negative, distances, far), axis=1)
        return anchors, hardest_p, hardest_n, has_both
    if mining == "semihard":
        # Sorted together with each anchor's negatives, every positive distance
        # is followed by the semi-hard negative; when none is farther, the last
        # negative is the least hard of the hard ones.
        masked = _negatives_masked(distances, negative)
        _, order, is_value, values_before = _merge_sorted(masked, distances)
        rows = ops.repeat(anchors[:, None], 2 * n, axis=1)
        # The anchor's negatives by rank: sorted_negatives[a, r] is the column
        # of its r-th nearest (threshold entries land in a spare column n).
        rank_col = ops.where(is_value, values_before, n)
        sorted_negatives = ops.scatter(
            ops.reshape(ops.stack([rows, rank_col], axis=-1), (-1, 2)),
            ops.reshape(ops.where(is_value, order, 0), (-1,)),
            (n, n + 1),
        )[:, :n]
        n_negatives = ops.sum(ops.cast(negative, "int32"), axis=1, keepdims=True)
        slot = ops.minimum(values_before, ops.maximum(n_negatives - 1, 0))
        chosen = ops.take_along_axis(sorted_negatives, slot, axis=1)
        p = ops.where(is_value, 0, order - n)
        is_positive = ops.take_along_axis(positive, p, axis=1)
        valid = ops.logical_and(
            ops.logical_and(ops.logical_not(is_value), is_positive), has_both[:, None]
        )
        flat = lambda t: ops.reshape(t, (-1,))  # noqa: E731
        return flat(rows), flat(p), flat(chosen), flat(valid)
    raise ValueError(
        f"mining must be one of {MINING_STRATEGIES}. Received: mining={mining!r}"
    )


def _positive_columns(positive, max_positives: int):
    """Each anchor's positives as columns: ``(batch, max_positives)`` indices and
    whether each slot holds a positive (anchors with fewer positives are padded).

    An anchor with more positives keeps the ``max_positives`` that follow it in
    the batch, wrapping around (:func:`sktriplet.mining.following_positives`).
    """
    n = ops.shape(positive)[0]
    idx = ops.arange(n)
    after = ops.mod(idx[None, :] - idx[:, None], n)  # 1 for the next row, ...
    # Nearer followers rank higher; non-positives rank last (0).
    priority = ops.where(positive, ops.cast(n - after, "float32"), 0.0)
    _, columns = ops.top_k(priority, k=max_positives)
    return columns, ops.take_along_axis(positive, columns, axis=1)


def _first_argmin(values):
    """``argmin`` over the last axis (the first index of the smallest value).

    As two plain reductions, a ``min`` and a ``min`` of the indices where it is
    reached: on XLA's CPU backend ``argmin`` over the last axis of the
    ``(batch, positives, batch)`` cube cost ten times as much.  The equality
    compares entries of one tensor with their own minimum, which no rounding
    changes.
    """
    smallest = ops.min(values, axis=-1, keepdims=True)
    size = ops.shape(values)[-1]
    index = ops.arange(size, dtype="int32")
    return ops.min(ops.where(values == smallest, index, size), axis=-1)


def _per_positive_hinge(labels, distances, margin, mining, max_positives):
    """Hinge sum and counts of ``"semihard"`` or ``"all"`` over each anchor's
    ``max_positives`` positives, on a ``(batch, max_positives, batch)`` tensor.
    """
    positive, negative = _pair_masks(labels)
    columns, is_positive = _positive_columns(positive, max_positives)
    ap = ops.take_along_axis(distances, columns, axis=1)  # (batch, max_positives)
    neg = negative[:, None, :]
    if mining == "all":
        pairs = ops.logical_and(is_positive[:, :, None], neg)
        hinges = ops.relu(ap[:, :, None] - distances[:, None, :] + margin)
        violation = ops.where(pairs, hinges, 0.0)
        n_pos = ops.sum(ops.cast(is_positive, "float32"), axis=1)
        n_neg = ops.sum(ops.cast(negative, "float32"), axis=1)
        return (
            ops.sum(violation),
            ops.sum(ops.cast(violation > 0, "float32")),
            ops.sum(n_pos * n_neg),
        )
    # Semi-hard: the nearest negative farther than the positive; when none is
    # farther, the farthest negative (the least hard of the hard ones).  The
    # choice is made on indices and the distance gathered, so that the gradient
    # never depends on comparing recomputed floats (XLA may round a fused
    # recomputation differently).
    chosen_from = ops.stop_gradient(distances)
    farther = ops.logical_and(
        neg, chosen_from[:, None, :] > ops.stop_gradient(ap)[:, :, None]
    )
    beyond = ops.max(chosen_from) + 1.0
    nearest_farther = _first_argmin(ops.where(farther, chosen_from[:, None, :], beyond))
    farthest = ops.argmax(ops.where(negative, chosen_from, -1.0), axis=1)
    negative_columns = ops.where(
        ops.any(farther, axis=2), nearest_farther, farthest[:, None]
    )
    chosen = ops.take_along_axis(distances, negative_columns, axis=1)
    has_negative = ops.any(negative, axis=1)
    valid = ops.logical_and(is_positive, has_negative[:, None])
    hinge = ops.where(valid, ops.relu(ap - chosen + margin), 0.0)
    return (
        ops.sum(hinge),
        ops.sum(ops.cast(hinge > 0, "float32")),
        ops.sum(ops.cast(valid, "float32")),
    )


def _all_triplets_hinge(labels, distances, margin):
    """Sum of the hinge over every valid triplet, and the counts, in O(n**2).

    For an anchor-positive pair with threshold ``t = d(a, p) + margin``, the
    triplets that violate the margin are the negatives with ``d(a, n) < t``, and
    their hinges add up to ``count * t - (sum of those d(a, n))``: a count and a
    prefix sum over the anchor's negatives sorted together with the thresholds.
    """
    positive, negative = _pair_masks(labels)
    n = ops.shape(distances)[0]
    masked = _negatives_masked(distances, negative, margin)
    merged, order, is_value, values_before = _merge_sorted(masked, distances + margin)
    value_entries = ops.where(is_value, merged, 0.0)
    sum_before = ops.cumsum(value_entries, axis=1) - value_entries
    p = ops.where(is_value, 0, order - n)
    is_pair = ops.logical_and(
        ops.logical_not(is_value), ops.take_along_axis(positive, p, axis=1)
    )
    n_active = ops.where(is_pair, values_before, 0)
    hinge = ops.cast(n_active, "float32") * merged - sum_before
    hinge_sum = ops.sum(ops.where(is_pair, hinge, 0.0))
    n_pos = ops.sum(ops.cast(positive, "float32"), axis=1)
    n_neg = ops.sum(ops.cast(negative, "float32"), axis=1)
    n_triplets = ops.sum(n_pos * n_neg)
    return hinge_sum, ops.sum(ops.cast(n_active, "float32")), n_triplets


def triplet_loss(
    labels,
    embeddings,
    margin: float = 0.5,
    mining: str = "semihard",
    distance: str = "squared_euclidean",
    seed=None,
    max_positives: int | None = None,
):
    """Triplet margin loss of a batch, with the triplets mined inside it.

    ``L(a, p, n) = max(d(a, p) - d(a, n) + margin, 0)``, averaged over the
    triplets that ``mining`` selects (see :mod:`sktriplet.mining`).

    Parameters
    ----------
    labels : tensor of shape (batch,)
    embeddings : tensor of shape (batch, dim)
    margin : float
    mining : {"random", "all", "hard", "semihard"}
    distance : {"squared_euclidean", "euclidean", "cosine"}
    seed : int or keras.random.SeedGenerator, optional
        Randomness for ``mining="random"``.
    max_positives : int, optional
        The most positives of each anchor that ``"semihard"`` and ``"all"`` pair
        with it: an anchor with more keeps the ones that follow it in the batch,
        wrapping around (:func:`sktriplet.mining.following_positives`).  With it,
        both take a sort-free path several times faster, whose cost grows with
        ``max_positives``; ``K - 1`` for ``K`` rows per class leaves none out.

    Returns
    -------
    loss : float32 scalar tensor
        The mean hinge over the selected triplets; 0 when the batch holds none.
    active_fraction : float32 scalar tensor
        The fraction of selected triplets that still violate the margin.
    """
    distances = pairwise_distances(embeddings, distance)
    if max_positives is not None and mining in ("all", "semihard"):
        hinge_sum, n_active, n_triplets = _per_positive_hinge(
            labels, distances, margin, mining, max_positives
        )
    elif mining == "all":
        hinge_sum, n_active, n_triplets = _all_triplets_hinge(labels, distances, margin)
    else:
        a, p, n, valid = mine_triplets(labels, distances, mining, seed)
        flat = ops.reshape(distances, (-1,))
        size = ops.shape(distances)[0]
        ap_dist = ops.take(flat, a * size + p)
        an_dist = ops.take(flat, a * size + n)
        hinge = ops.where(valid, ops.relu(ap_dist - an_dist + margin), 0.0)
        hinge_sum = ops.sum(hinge)
        n_active = ops.sum(ops.cast(hinge > 0, "float32"))
        n_triplets = ops.sum(ops.cast(valid, "float32"))
    n_triplets = ops.maximum(n_triplets, 1.0)
    return hinge_sum / n_triplets, n_active / n_triplets


@keras.saving.register_keras_serializable(package="sktriplet")
class TripletLoss(keras.losses.Loss):
    """Triplet margin loss with in-batch mining, as a Keras loss.

    ``y_true`` holds the integer labels of the batch, ``y_pred`` its embeddings.
    Use it to train any Keras embedding model with ``model.compile(loss=...)``;
    :class:`sktriplet.keras.SiameseModel` uses :func:`triplet_loss` directly so
    that it can also track the fraction of active triplets.

    Parameters
    ----------
    margin : float, default=0.5
    mining : {"random", "all", "hard", "semihard"}, default="semihard"
    distance : {"squared_euclidean", "euclidean", "cosine"}, default="squared_euclidean"
    seed : int, optional
        Seed of the randomness used by ``mining="random"``.
    """

    def __init__(
        self,
        margin: float = 0.5,
        mining: str = "semihard",
        distance: str = "squared_euclidean",
        seed: int | None = None,
        name: str = "triplet_loss",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.margin = margin
        self.mining = mining
        self.distance = distance
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)

    def call(self, y_true, y_pred):
        loss, _ = triplet_loss(
            y_true,
            y_pred,
            self.margin,
            self.mining,
            self.distance,
            self._seed_generator,
        )
        return loss

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            margin=self.margin,
            mining=self.mining,
            distance=self.distance,
            seed=self.seed,
        )
        return config
