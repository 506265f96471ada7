"""Pairs within a batch, written only in ``keras.ops``: their distances, which
of them are positives and negatives, and the merged sort of each anchor's
distances with thresholds that the ``"all"`` miner sums hinges from.  What
:mod:`sktriplet.keras.losses` builds its triplets on.
"""

from __future__ import annotations

from keras import ops

from ..mining import DISTANCES

__all__ = ["distance_matrix", "eye", "merge_sorted", "negatives_masked", "pair_masks"]


def distance_matrix(embeddings, distance: str = "squared_euclidean"):
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
    d2 = ops.where(eye(ops.shape(e)[0]), 0.0, ops.maximum(d2, 0.0))
    if distance == "squared_euclidean":
        return d2
    if distance == "euclidean":
        zero = ops.equal(d2, 0.0)
        return ops.where(zero, 0.0, ops.sqrt(ops.where(zero, 1.0, d2)))
    raise ValueError(f"distance must be one of {DISTANCES}. Received: {distance!r}")


def eye(n):
    idx = ops.arange(n)
    return ops.equal(idx[:, None], idx[None, :])


def pair_masks(labels, views=None):
    """``positive[i, j]``: same label, ``i != j``; ``negative[i, j]``: other label.

    ``labels`` of shape ``(batch, n_labels)`` with ``n_labels > 1`` is a
    multi-label indicator: rows that share a label are positives, rows that
    share none negatives (as :func:`sktriplet.mining._pair_masks`).

    ``views`` (bool, one per row) marks the views of unlabelled rows: they are
    negatives of each other (but of their twin) and of labelled rows only for
    a view's anchor, never for a labelled anchor, whose class they may share.
    """
    if len(labels.shape) == 2 and labels.shape[1] != 1:
        indicator = ops.cast(labels, "float32")
        same = ops.matmul(indicator, ops.transpose(indicator)) > 0.5
    else:
        labels = ops.reshape(labels, (-1,))
        same = ops.equal(labels[:, None], labels[None, :])
    other = ops.logical_not(eye(ops.shape(labels)[0]))
    negative = ops.logical_and(ops.logical_not(same), other)
    if views is not None:
        allowed = ops.logical_or(views[:, None], ops.logical_not(views)[None, :])
        negative = ops.logical_and(negative, allowed)
    return ops.logical_and(same, other), negative


def merge_sorted(values, thresholds):
    """Sort each row of ``values`` together with the same row of ``thresholds``.

    One sort answers, for every threshold, how many values lie below it and
    which they are; this is how ``"all"`` stays in O(n**2) memory.

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


def negatives_masked(distances, negative, margin=0.0):
    """Each anchor's distances, with non-negatives pushed past every threshold."""
    far = ops.stop_gradient(ops.max(distances)) + margin + 1.0
    return ops.where(negative, distances, far)
