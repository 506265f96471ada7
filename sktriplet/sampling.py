"""Class-balanced batch sampling: where the rows of each training batch are chosen.

A triplet needs an anchor, a positive of the same class and a negative of another
class, so a batch of rows drawn uniformly at random can hold no positive at all when
classes are many or small.  :class:`ClassBalancedSampler` builds every batch from
``P`` classes times ``K`` rows per class (the "PK" layout of Hermans et al., 2017),
which guarantees positives and negatives in every batch.

This module is pure numpy; it never imports Keras.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import UNLABELLED

__all__ = [
    "BatchPlan",
    "ClassBalancedSampler",
    "PartlyLabelledSampler",
    "noisy_blocks",
    "rows_by_label",
    "unblock",
]


class _CyclingPool:
    """Hands out the items of ``items`` in shuffled order, reshuffling when spent.

    Every item is handed out once before any item is handed out twice, so rows of
    small and large classes are all used evenly over an epoch.
    """

    def __init__(self, items: np.ndarray, rng: np.random.RandomState) -> None:
        self._items = np.asarray(items)
        self._rng = rng
        self._order = rng.permutation(self._items)
        self._pos = 0

    def take(self, k: int, distinct: bool = False) -> np.ndarray:
        """The next ``k`` items; with ``distinct``, no item twice (``k <= len``)."""
        out = []
        while k > 0:
            if self._pos == len(self._order):
                order = self._rng.permutation(self._items)
                if distinct and out:
                    # Items already in this draw go to the end of the new cycle.
                    seen = np.isin(order, np.concatenate(out))
                    order = np.concatenate([order[~seen], order[seen]])
                self._order = order
                self._pos = 0
            chunk = self._order[self._pos : self._pos + k]
            self._pos += len(chunk)
            k -= len(chunk)
            out.append(chunk)
        return np.concatenate(out)


def rows_by_label(y) -> tuple[np.ndarray, list]:
    """The distinct labels of a 1-D ``y`` and the rows of each, in row order.

    One stable sort groups them all: a scan of ``y`` per label would cost
    labels x rows (minutes for 100,000 classes).

    >>> labels, rows = rows_by_label(np.array([2, 0, 2, 1, 0]))
    >>> labels.tolist(), [r.tolist() for r in rows]
    ([0, 1, 2], [[1, 4], [3], [0, 2]])
    """
    labels, counts = np.unique(y, return_counts=True)
    return labels, np.split(np.argsort(y, kind="stable"), np.cumsum(counts)[:-1])


def _members(y) -> dict:
    """The rows of each class of ``y`` (class codes ``0 .. n - 1``), or of each
    label of a multi-label indicator matrix, where a row with several labels
    is a member of each."""
    y = np.asarray(y)
    if y.ndim == 2:
        columns = (np.flatnonzero(y[:, c]) for c in range(y.shape[1]))
        return {c: rows for c, rows in enumerate(columns) if len(rows)}
    return dict(zip(*rows_by_label(y)))


def _unpaired(y, members: dict, eligible: list) -> np.ndarray:
    """The rows in no class (or label) of two rows or more: those of the
    single-row classes in class order; in a multi-label ``y``, the rows with
    no label of two rows or more, in row order."""
    if np.ndim(y) == 2:
        paired = np.zeros(len(y), dtype=bool)
        for c in eligible:
            paired[members[c]] = True
        return np.flatnonzero(~paired)
    lone = [rows[0] for rows in members.values() if len(rows) == 1]
    return np.array(lone, dtype=np.intp)


class _Sampler:
    """What both samplers share: they are built from the labels, the batch
    size, the least rows per class and a random state; an epoch is
    ``n_batches`` of ``batch()``, as many as make up the samples, rounded to
    the nearest, at least one."""

    n_groups: int
    samples_per_group: int
    batch_rows: int

    def __init__(
        self,
        y: np.ndarray,
        batch_size: int,
        samples_per_class: int,
        random_state: np.random.RandomState,
    ) -> None:
        y = np.asarray(y)
        self._lay_out(y, batch_size, samples_per_class, random_state)
        self.n_batches = max(round(len(y) / self.batch_rows), 1)

    def _lay_out(self, y, batch_size, samples_per_class, random_state) -> None:
        """Set ``n_groups``, ``samples_per_group`` and ``batch_rows``, and the
        pools that ``batch()`` draws from."""
        raise NotImplementedError

    def batch(self) -> np.ndarray:
        raise NotImplementedError

    def epoch(self) -> np.ndarray:
        """Row indices of one epoch, shape ``(n_batches, batch_rows)``."""
        return np.stack([self.batch() for _ in range(self.n_batches)])


class ClassBalancedSampler(_Sampler):
    """Draws batches of ``n_groups`` classes times ``samples_per_group`` rows.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        Integer class labels, ``0 .. n_classes - 1``, or a multi-label
        indicator matrix: a group is then the rows of one label (a row with
        several labels can be drawn for each).
    batch_size : int
        Upper bound on the rows per batch.  The batch holds
        ``n_groups * samples_per_group <= batch_size`` rows.
    samples_per_class : int
        The least number of rows drawn per class (``K``).  When there are fewer
        classes than ``batch_size // samples_per_class``, every class in the
        batch gets more rows so that the batch stays full.
    random_state : numpy.random.RandomState
        The only source of randomness.

    Attributes
    ----------
    n_groups : int
        Class groups per batch (``P``).
    samples_per_group : int
        Rows per group (``K`` after filling the batch).
    batch_rows : int
        Rows per batch, ``n_groups * samples_per_group``.

    Notes
    -----
    Classes with a single sample cannot provide a positive pair.  They are pooled
    into one extra group of distinct singleton rows, so that they still serve as
    negatives for the other classes; so are the rows of a multi-label ``y``
    that have no label, or only labels of a single row.

    Examples
    --------
    >>> import numpy as np
    >>> from sktriplet.sampling import ClassBalancedSampler
    >>> y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    >>> sampler = ClassBalancedSampler(y, batch_size=6, samples_per_class=2,
    ...                                random_state=np.random.RandomState(0))
    >>> sampler.n_groups, sampler.samples_per_group
    (3, 2)
    >>> batches = sampler.epoch()
    >>> batches.shape  # 10 samples: 2 batches of 6, the nearest to 10
    (2, 6)
    >>> np.bincount(y[batches[0]]).tolist()
    [2, 2, 2]
    """

    def _lay_out(self, y, batch_size, samples_per_class, random_state) -> None:
        members = _members(y)
        eligible = [c for c, rows in members.items() if len(rows) >= 2]
        singletons = _unpaired(y, members, eligible)
        if not eligible:
            raise ValueError(
                "No class has two or more samples, so no positive pair exists; "
                "a triplet needs at least one class with two or more samples."
            )
        n_extra = 1 if len(singletons) else 0
        # At least two groups, so that every batch holds negatives.
        n_groups = min(len(eligible) + n_extra, max(batch_size // samples_per_class, 2))
        self.n_groups = n_groups
        self.samples_per_group = max(batch_size // n_groups, 1)
        self.batch_rows = self.n_groups * self.samples_per_group

        self._n_class_groups = n_groups - n_extra
        self._classes = _CyclingPool(np.array(eligible), random_state)
        self._rows = {c: _CyclingPool(members[c], random_state) for c in eligible}
        self._singletons = _CyclingPool(singletons, random_state) if n_extra else None

    def batch(self) -> np.ndarray:
        """Row indices of one batch, shape ``(batch_rows,)``, grouped by class."""
        k = self.samples_per_group
        groups = [
            self._rows[c].take(k)
            for c in self._classes.take(self._n_class_groups, distinct=True)
        ]
        if self._singletons is not None:
            groups.append(self._singletons.take(k))
        return np.concatenate(groups)


class PartlyLabelledSampler(_Sampler):
    """Batches of labelled rows in the layout of :class:`ClassBalancedSampler`,
    followed by two views of each of ``n_pairs`` unlabelled rows.

    ``y`` holds class codes, and ``-1`` for an unlabelled row (as
    ``sklearn.semi_supervised``).  About half of each batch is unlabelled:
    ``n_pairs`` distinct unlabelled rows, drawn evenly over an epoch, each
    twice (the training noise, or the encoder's augmentation, makes the two
    copies two views of one row).  :attr:`view_codes` labels the copies: the
    two views of a row share a code below -1, which no other row has, so that
    they are each other's only positive.

    Examples
    --------
    >>> import numpy as np
    >>> from sktriplet.sampling import PartlyLabelledSampler
    >>> y = np.array([0, 0, 1, 1, -1, -1, -1, -1])
    >>> sampler = PartlyLabelledSampler(y, batch_size=8, samples_per_class=2,
    ...                                 random_state=np.random.RandomState(0))
    >>> batch = sampler.batch()
    >>> sorted(y[batch[:4]].tolist()), y[batch[4:]].tolist()
    ([0, 0, 1, 1], [-1, -1, -1, -1])
    >>> batch[4:6].tolist() == batch[6:].tolist(), sampler.view_codes.tolist()
    (True, [-2, -3, -2, -3])
    """

    def _lay_out(self, y, batch_size, samples_per_class, random_state) -> None:
        self._labelled_rows = np.flatnonzero(y != UNLABELLED)
        unlabelled = np.flatnonzero(y == UNLABELLED)
        self.n_pairs = min(batch_size // 4, len(unlabelled))
        self._labelled = ClassBalancedSampler(
            y[self._labelled_rows],
            batch_size - 2 * self.n_pairs,
            samples_per_class,
            random_state,
        )
        self.n_groups = self._labelled.n_groups
        self.samples_per_group = self._labelled.samples_per_group
        self.batch_rows = self._labelled.batch_rows + 2 * self.n_pairs
        self._unlabelled = _CyclingPool(unlabelled, random_state)
        codes = -2 - np.arange(self.n_pairs)
        self.view_codes = np.concatenate([codes, codes]).astype(np.int32)

    def batch(self) -> np.ndarray:
        """Row indices of one batch: labelled rows, then the pairs' rows twice."""
        pairs = self._unlabelled.take(self.n_pairs, distinct=True)
        labelled = self._labelled_rows[self._labelled.batch()]
        return np.concatenate([labelled, pairs, pairs])


@dataclass(frozen=True)
class BatchPlan:
    """How a fit draws its training batches, as plain data.

    ``partly_labelled`` picks the :class:`PartlyLabelledSampler` over the
    :class:`ClassBalancedSampler`; both draw batches of ``batch_size`` rows
    with ``samples_per_class`` rows of each class, from the seed
    ``sampler_seed``.  ``noise_scale`` (one standard deviation per feature, or
    None) and ``noise_seed`` give the noise added to every batch.
    ``n_batches`` is an epoch's batches.
    """

    partly_labelled: bool
    batch_size: int
    samples_per_class: int
    sampler_seed: int
    noise_scale: np.ndarray | None
    noise_seed: int
    n_batches: int = 0

    def sampler(self, labels: np.ndarray):
        """A new sampler over ``labels``: each one draws the same batches."""
        kind = PartlyLabelledSampler if self.partly_labelled else ClassBalancedSampler
        return kind(
            labels,
            self.batch_size,
            self.samples_per_class,
            np.random.RandomState(self.sampler_seed),
        )

    def blocks(self, X, labels, rows, block: int = 1, share=(0, 1)):
        """The endless batches of the rows ``rows`` of ``(X, labels)``, in
        blocks of ``block``: :func:`noisy_blocks` with a new sampler, so that
        every call replays the same sequence, whatever ``block`` is, and
        ``share`` of each."""
        sampler = self.sampler(labels[rows])
        return noisy_blocks(
            X, labels, rows, sampler, self.noise_scale, self.noise_seed, block, share
        )


def noisy_blocks(
    X,
    labels,
    rows,
    sampler,
    noise_scale=None,
    noise_seed=0,
    block: int = 1,
    share: tuple[int, int] = (0, 1),
):
    """Endless training batches ``(x, labels)`` of the rows ``rows`` of ``X``, in
    blocks of ``block`` batches: ``x`` of shape ``(block, batch_rows, ...)``.

    ``sampler`` (a :class:`ClassBalancedSampler`, or a
    :class:`PartlyLabelledSampler`, over ``labels[rows]``) picks each batch's
    positions in ``rows``; a partly labelled batch's unlabelled rows take the
    sampler's ``view_codes``.  Rows are gathered block by block and cast to
    float32, so that ``X`` (a memmap, say) is never copied whole.  With
    ``noise_scale`` (one standard deviation per feature), Gaussian noise drawn
    from ``noise_seed`` is added to every batch: a new sampler and the same
    seed replay the same batches, whatever ``block`` is (a block may span
    epochs).  One block of many batches costs a caller one hand-over instead
    of many, which is what TensorFlow's input pipeline charges for.

    ``share``, ``(index, count)``: the ``index``-th of ``count`` equal parts of
    each batch, in order, and nothing else is read from ``X``, as a process
    of a data-parallel fit does (its noise is the part of the whole batch's).

    >>> X, y = np.arange(12.0).reshape(6, 2), np.array([0, 0, 0, 1, 1, 1])
    >>> blocks = noisy_blocks(X, y, np.arange(6), ClassBalancedSampler(
    ...     y, 4, 2, np.random.RandomState(0)), block=3)
    >>> x, labels = next(blocks)
    >>> x.dtype, x.shape, labels.shape
    (dtype('float32'), (3, 4, 2), (3, 4))
    """
    noise = np.random.default_rng(noise_seed)
    index, count = share
    part = sampler.batch_rows // count
    if part * count != sampler.batch_rows:
        raise ValueError(
            f"A batch of {sampler.batch_rows} rows does not split evenly over "
            f"{count} processes; use a batch_size that is a multiple of {count}."
        )
    mine = slice(index * part, (index + 1) * part)
    views = getattr(sampler, "view_codes", None)
    pending = np.empty((0, sampler.batch_rows), dtype=np.intp)  # batches' positions
    while True:
        while len(pending) < block:
            pending = np.concatenate([pending, sampler.epoch()])
        batches, pending = rows[pending[:block]], pending[block:]
        y = labels[batches]
        if views is not None:  # the pairs of views of unlabelled rows
            y = y.copy()
            y[:, y.shape[1] - len(views) :] = views
        batches, y = batches[:, mine], y[:, mine]
        x = X[batches.ravel()].astype(np.float32, copy=False)
        x = x.reshape(batches.shape + X.shape[1:])
        if noise_scale is not None:
            # Drawn in batch order, for whole batches: the same numbers as one
            # draw per batch, whatever the block and the share.
            whole = (len(batches), sampler.batch_rows, *X.shape[1:])
            z = noise.standard_normal(whole, dtype=np.float32)
            x = x + noise_scale * z[:, mine]
        yield x, y


def unblock(blocks):
    """The batches of an iterator of blocks of ``(x, labels)`` batches (as
    :func:`noisy_blocks` yields), one at a time, in order."""
    for x, y in blocks:
        yield from zip(x, y)
