"""The triplet loss with in-batch mining, written only in ``keras.ops``.

``L(a, p, n) = max(d(a, p) - d(a, n) + margin, 0)``, averaged over the triplets that
the chosen mining strategy selects in the batch.  Every function here works on any
Keras backend, with mixed precision (the loss is computed in float32) and under
``tf.distribute`` (the caller scales the loss per replica).

One implementation per miner, each held to its numpy reference in
:mod:`sktriplet.mining` by the tests:

- ``"random"``, ``"hard"`` and ``"semihard"`` fill fixed-size triplet slots
  (:func:`triplet_slots`), one per anchor or per anchor-positive pair, with a
  mask of the valid ones; the loss gathers their distances.
- ``"all"`` never lists its ``O(batch**3)`` triplets, it sums their hinges
  (:func:`_all_triplets_hinge`): over the ``(batch, max_positives, batch)``
  tensor of each anchor's positives against every row when the caller bounds
  the positives per anchor (fast with few), else from one sort of each
  anchor's distances (:func:`~sktriplet.keras.pairs.merge_sorted`), in
  ``O(batch**2)`` memory whatever their number.

``"semihard"`` works on the ``(batch, max_positives, batch)`` tensor of each
anchor's positives against every row: with a class-balanced batch and a bound
on the positives per anchor, as the estimator sets, its cost stays linear in
the positives however few classes share the batch.

:func:`triplet_hinge_totals` is what the training step
(:class:`~sktriplet.keras.SiameseModel`) computes; :func:`triplet_loss` and the
Keras loss :class:`TripletLoss` are its mean.
"""

from __future__ import annotations

import keras
from keras import ops

from ..mining import MINING_STRATEGIES
from .pairs import distance_matrix, merge_sorted, negatives_masked, pair_masks

__all__ = [
    "TripletLoss",
    "distance_matrix",
    "triplet_hinge_totals",
    "triplet_loss",
    "triplet_slots",
]


def triplet_slots(
    labels,
    distances,
    mining: str = "semihard",
    *,
    seed=None,
    max_positives=None,
    views=None,
):
    """The triplets that ``mining`` selects in a batch, as fixed-size slots.

    Parameters
    ----------
    labels : tensor of shape (batch,) or (batch, n_labels)
        One label per row, or a multi-label indicator (a positive shares a
        label with its anchor, a negative none).
    distances : tensor of shape (batch, batch)
        Pairwise distances of the batch's embeddings.
    mining : {"random", "hard", "semihard"}
        ``"all"`` selects ``O(batch**3)`` triplets, which are never listed: see
        :func:`triplet_hinge_totals`.
    seed : int or keras.random.SeedGenerator, optional
        Randomness for ``"random"``.
    max_positives : int, optional
        For ``"semihard"``: the most positives each anchor is paired with, those
        that follow it in the batch, wrapping around
        (:func:`sktriplet.mining.following_positives`).  None pairs every one.

    Returns
    -------
    anchor_idx, positive_idx, negative_idx : int tensors of equal length
        ``batch`` slots for ``"random"`` and ``"hard"`` (one per anchor),
        ``batch * max_positives`` for ``"semihard"`` (one per anchor and
        positive).
    valid : bool tensor of the same length
        Whether each slot holds a real triplet (an anchor without a positive or
        a negative in the batch, or padding, does not).
    """
    distances = ops.stop_gradient(distances)
    positive, negative = pair_masks(labels, views)
    has_both = ops.logical_and(ops.any(positive, axis=1), ops.any(negative, axis=1))
    anchors = ops.arange(ops.shape(distances)[0])
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
        return _semihard_slots(distances, positive, negative, max_positives)
    raise ValueError(
        f"mining must be one of {[m for m in MINING_STRATEGIES if m != 'all']} "
        f"for triplet slots. Received: mining={mining!r}"
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


def _first_argmin(values, smallest):
    """The first index of ``smallest`` (the minimum of ``values`` over the last
    axis, kept as an axis of 1) along the last axis.

    As a plain ``min`` of the indices where it is reached: on XLA's CPU
    backend ``argmin`` over the last axis of the ``(batch, positives, batch)``
    cube costs far more (``benchmarks/step_time.py`` and
    ``docs/step_time.txt`` have the figures).  The equality compares entries of
    one tensor with their own minimum, which no rounding changes.
    """
    size = ops.shape(values)[-1]
    index = ops.arange(size, dtype="int32")
    return ops.min(ops.where(values == smallest, index, size), axis=-1)


def _semihard_slots(distances, positive, negative, max_positives):
    """Per anchor and each of its ``max_positives`` positives, the nearest
    negative farther than the positive; when none is farther, the farthest
    negative (the least hard of the hard ones).

    Works on the ``(batch, max_positives, batch)`` tensor of positives against
    rows, in two passes: the nearest distance beyond each positive's, then its
    first index (a row that is not a farther negative counts as ``beyond``
    every distance, so the nearest is ``beyond`` exactly when there is none).
    The choice is made on indices, so that the loss gathers the distances and
    its gradient never depends on comparing recomputed floats (XLA may round a
    fused recomputation differently).
    """
    n = ops.shape(distances)[0]
    if max_positives is None:
        max_positives = max(n - 1, 1) if isinstance(n, int) else ops.maximum(n - 1, 1)
    columns, is_positive = _positive_columns(positive, max_positives)
    ap = ops.take_along_axis(distances, columns, axis=1)  # (batch, max_positives)
    beyond = ops.max(distances) + 1.0
    negatives = ops.where(negative, distances, beyond)[:, None, :]
    farther = ops.where(negatives > ap[:, :, None], negatives, beyond)
    nearest = ops.min(farther, axis=-1, keepdims=True)
    farthest = ops.argmax(ops.where(negative, distances, -1.0), axis=1)
    negative_columns = ops.where(
        nearest[..., 0] < beyond, _first_argmin(farther, nearest), farthest[:, None]
    )
    valid = ops.logical_and(is_positive, ops.any(negative, axis=1)[:, None])
    anchors = ops.broadcast_to(ops.arange(n)[:, None], ops.shape(columns))
    flat = lambda t: ops.reshape(t, (-1,))  # noqa: E731
    return flat(anchors), flat(columns), flat(negative_columns), flat(valid)


def _all_triplets_hinge(
    labels, distances, margin, max_positives=None, weight=None, views=None
):
    """Hinge sum and counts of every valid triplet, each anchor paired with at
    most ``max_positives`` of its positives (None: every one).

    With ``max_positives``, on the ``(batch, max_positives, batch)`` tensor of
    each anchor's positives against every row: no sort, which XLA runs slowly
    on a CPU, but memory that grows with the positives.  Without, from one sort
    per anchor (:func:`_sorted_all_triplets_hinge`).  The same sums either way.
    """
    if max_positives is None:
        return _sorted_all_triplets_hinge(labels, distances, margin, weight, views)
    positive, negative = pair_masks(labels, views)
    columns, is_positive = _positive_columns(positive, max_positives)
    ap = ops.take_along_axis(distances, columns, axis=1)  # (batch, max_positives)
    pairs = ops.logical_and(is_positive[:, :, None], negative[:, None, :])
    hinges = ops.relu(ap[:, :, None] - distances[:, None, :] + margin)
    violation = ops.where(pairs, hinges, 0.0)
    n_pos = ops.sum(ops.cast(is_positive, "float32"), axis=1)
    n_neg = ops.sum(ops.cast(negative, "float32"), axis=1)
    active = ops.cast(violation > 0, "float32")
    if weight is not None:  # per anchor
        return (
            ops.sum(ops.sum(violation, axis=(1, 2)) * weight),
            ops.sum(ops.sum(active, axis=(1, 2)) * weight),
            ops.sum(n_pos * n_neg * weight),
        )
    return ops.sum(violation), ops.sum(active), ops.sum(n_pos * n_neg)


def _sorted_all_triplets_hinge(labels, distances, margin, weight=None, views=None):
    """Sum of the hinge over every valid triplet, and the counts, in O(n**2).

    For an anchor-positive pair with threshold ``t = d(a, p) + margin``, the
    triplets that violate the margin are the negatives with ``d(a, n) < t``, and
    their hinges add up to ``count * t - (sum of those d(a, n))``: a count and a
    prefix sum over the anchor's negatives sorted together with the thresholds.
    """
    positive, negative = pair_masks(labels, views)
    n = ops.shape(distances)[0]
    masked = negatives_masked(distances, negative, margin)
    merged, order, is_value, values_before = merge_sorted(masked, distances + margin)
    value_entries = ops.where(is_value, merged, 0.0)
    sum_before = ops.cumsum(value_entries, axis=1) - value_entries
    p = ops.where(is_value, 0, order - n)
    is_pair = ops.logical_and(
        ops.logical_not(is_value), ops.take_along_axis(positive, p, axis=1)
    )
    n_active = ops.cast(ops.where(is_pair, values_before, 0), "float32")
    hinge = ops.where(is_pair, n_active * merged - sum_before, 0.0)
    n_pos = ops.sum(ops.cast(positive, "float32"), axis=1)
    n_neg = ops.sum(ops.cast(negative, "float32"), axis=1)
    if weight is not None:  # per anchor: the rows of the sort
        hinge, n_active = hinge * weight[:, None], n_active * weight[:, None]
        n_neg = n_neg * weight
    return ops.sum(hinge), ops.sum(n_active), ops.sum(n_pos * n_neg)


def triplet_hinge_totals(
    labels,
    distances,
    margin,
    mining: str,
    seed=None,
    max_positives=None,
    anchor_weight=None,
    views=None,
):
    """The hinge ``max(d(a, p) - d(a, n) + margin, 0)`` over the triplets that
    ``mining`` selects in a batch of pairwise ``distances`` (see
    :func:`distance_matrix`): its sum, the number of triplets where it is
    positive (active), and the number of triplets, each a float32 scalar.

    The training step divides the first two by the third: the loss and the
    fraction of active triplets.  ``anchor_weight``, one float per row, weighs
    each triplet (in the three totals) by its anchor's weight; ``views`` marks
    the views of unlabelled rows (see :func:`~sktriplet.keras.pairs.pair_masks`).
    Other arguments as :func:`triplet_loss`.
    """
    if mining == "all":
        return _all_triplets_hinge(
            labels, distances, margin, max_positives, anchor_weight, views
        )
    a, p, n, valid = triplet_slots(
        labels, distances, mining, seed=seed, max_positives=max_positives, views=views
    )
    flat = ops.reshape(distances, (-1,))
    size = ops.shape(distances)[0]
    ap_dist = ops.take(flat, a * size + p)
    an_dist = ops.take(flat, a * size + n)
    hinge = ops.where(valid, ops.relu(ap_dist - an_dist + margin), 0.0)
    active, valid = ops.cast(hinge > 0, "float32"), ops.cast(valid, "float32")
    if anchor_weight is not None:
        weight = ops.take(anchor_weight, a)
        hinge, active, valid = hinge * weight, active * weight, valid * weight
    return ops.sum(hinge), ops.sum(active), ops.sum(valid)


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
    labels : tensor of shape (batch,) or (batch, n_labels)
        As for :func:`triplet_slots`.
    embeddings : tensor of shape (batch, dim)
    margin : float
    mining : {"random", "all", "hard", "semihard"}
    distance : {"squared_euclidean", "euclidean", "cosine"}
    seed : int or keras.random.SeedGenerator, optional
        Randomness for ``mining="random"``.
    max_positives : int, optional
        For ``"semihard"`` and ``"all"``: the most positives each anchor is
        paired with, those that follow it in the batch (see
        :func:`triplet_slots`).  Their cost grows with
        ``batch * max_positives * batch``; None pairs every positive (``"all"``
        then sorts instead, in ``batch ** 2`` memory).

    Returns
    -------
    loss : float32 scalar tensor
        The mean hinge over the selected triplets; 0 when the batch holds none.
    """
    distances = distance_matrix(embeddings, distance)
    hinge_sum, _, n_triplets = triplet_hinge_totals(
        labels, distances, margin, mining, seed, max_positives
    )
    return hinge_sum / ops.maximum(n_triplets, 1.0)


@keras.saving.register_keras_serializable(package="sktriplet")
class TripletLoss(keras.losses.Loss):
    """Triplet margin loss with in-batch mining, as a Keras loss.

    ``y_true`` holds the integer labels of the batch (or a multi-label
    indicator of shape ``(batch, n_labels)``), ``y_pred`` its embeddings:
    ``model.compile(loss=TripletLoss())`` trains any Keras embedding model, on
    batches that hold several rows per class.  It computes
    :func:`triplet_loss`, the loss of sktriplet's own training step.

    Parameters
    ----------
    margin : float, default=0.5
    mining : {"random", "all", "hard", "semihard"}, default="semihard"
    distance : {"squared_euclidean", "euclidean", "cosine"}, default="squared_euclidean"
    max_positives : int, optional
        See :func:`triplet_loss`.
    seed : int, optional
        Seed of the randomness used by ``mining="random"``.
    """

    def __init__(
        self,
        margin: float = 0.5,
        mining: str = "semihard",
        distance: str = "squared_euclidean",
        max_positives: int | None = None,
        seed: int | None = None,
        name: str = "triplet_loss",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.margin = margin
        self.mining = mining
        self.distance = distance
        self.max_positives = max_positives
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)

    def call(self, y_true, y_pred):
        if len(y_true.shape) != 2 or y_true.shape[1] == 1:  # one label per row
            y_true = ops.reshape(y_true, (-1,))
        return triplet_loss(
            y_true,
            y_pred,
            self.margin,
            self.mining,
            self.distance,
            self._seed_generator,
            self.max_positives,
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "margin": self.margin,
            "mining": self.mining,
            "distance": self.distance,
            "max_positives": self.max_positives,
            "seed": self.seed,
        }
