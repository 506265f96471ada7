"""The triplet loss with in-batch mining, written only in ``keras.ops``.

``L(a, p, n) = max(d(a, p) - d(a, n) + margin, 0)``, averaged over the triplets that
the chosen mining strategy selects in the batch.  Every function here works on any
Keras backend, with mixed precision (the loss is computed in float32) and under
``tf.distribute`` (the caller scales the loss per replica).

Memory per batch grows with ``batch**2``: ``"all"`` and ``"semihard"`` never form the
``(batch, batch, batch)`` tensor of every triplet.  Both reduce to counting, for every
anchor-positive pair, the negatives that lie nearer than some threshold, which one
sort of each row of the distance matrix answers (see :func:`_count_below`).

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


def _rank(x):
    """Position of each entry in its row's ascending order."""
    return ops.argsort(ops.argsort(x, axis=-1), axis=-1)


def _count_below(thresholds, values):
    """``out[i, j] = #{k : values[i, k] < thresholds[i, j]}``, in O(n**2) memory.

    Sorting a row of ``values`` together with a row of ``thresholds`` places each
    threshold after exactly the values below it; subtracting its rank among the
    thresholds alone leaves that count.
    """
    n_values = ops.shape(values)[1]
    both = ops.concatenate([values, thresholds], axis=1)
    return _rank(both)[:, n_values:] - _rank(thresholds)


def _negatives_sorted(distances, negative, margin=0.0):
    """Each anchor's distances with non-negatives pushed past every threshold.

    Returns ``(masked, order)``: ``masked`` holds the distance at negatives and,
    elsewhere, a constant beyond any distance plus ``margin``; ``order`` sorts
    each of its rows ascending.
    """
    far = ops.stop_gradient(ops.max(distances)) + margin + 1.0
    masked = ops.where(negative, distances, far)
    return masked, ops.argsort(ops.stop_gradient(masked), axis=1)


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
        masked, order = _negatives_sorted(distances, negative)
        # In each anchor's sorted negatives, those nearer than the positive come
        # first; the next one is semi-hard, and when there is none the last of
        # them is the least hard of the hard ones.
        n_closer = _count_below(distances, masked)
        n_negatives = ops.sum(ops.cast(negative, "int32"), axis=1, keepdims=True)
        slot = ops.minimum(n_closer, ops.maximum(n_negatives - 1, 0))
        chosen = ops.take_along_axis(order, ops.cast(slot, order.dtype), axis=1)
        valid = ops.logical_and(positive, has_both[:, None])
        flat = lambda t: ops.reshape(t, (-1,))  # noqa: E731
        a = flat(ops.repeat(anchors[:, None], n, axis=1))
        p = flat(ops.repeat(anchors[None, :], n, axis=0))
        return a, p, flat(chosen), flat(valid)
    raise ValueError(
        f"mining must be one of {MINING_STRATEGIES}. Received: mining={mining!r}"
    )


def _all_triplets_hinge(labels, distances, margin):
    """Sum of the hinge over every valid triplet, and the counts, in O(n**2).

    For an anchor-positive pair with threshold ``t = d(a, p) + margin``, the
    triplets that violate the margin are the negatives with ``d(a, n) < t``, and
    their hinges add up to ``count * t - (sum of those d(a, n))``: a count and a
    prefix sum over the anchor's sorted negatives.
    """
    positive, negative = _pair_masks(labels)
    masked, order = _negatives_sorted(distances, negative, margin)
    thresholds = distances + margin
    n_active = ops.where(
        positive, _count_below(ops.stop_gradient(thresholds), masked), 0
    )
    prefix = ops.cumsum(ops.take_along_axis(masked, order, axis=1), axis=1)
    below_sum = ops.take_along_axis(prefix, ops.maximum(n_active - 1, 0), axis=1)
    below_sum = ops.where(n_active > 0, below_sum, 0.0)
    hinge_sum = ops.sum(ops.cast(n_active, "float32") * thresholds - below_sum)
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

    Returns
    -------
    loss : float32 scalar tensor
        The mean hinge over the selected triplets; 0 when the batch holds none.
    active_fraction : float32 scalar tensor
        The fraction of selected triplets that still violate the margin.
    """
    distances = pairwise_distances(embeddings, distance)
    if mining == "all":
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
