"""Class-balanced batches: every batch holds positives and negatives."""

import re

import numpy as np
import pytest

from sktriplet.holdout import validation_split
from sktriplet.sampling import ClassBalancedSampler


def _sampler(y, batch_size=32, k=4, seed=0):
    return ClassBalancedSampler(
        np.asarray(y), batch_size, k, np.random.RandomState(seed)
    )


def _has_positive_and_negative(y_batch):
    counts = np.bincount(y_batch)
    return counts.max() >= 2 and np.count_nonzero(counts) >= 2


def test_many_classes_give_p_by_k_batches():
    y = np.repeat(np.arange(50), 10)
    s = _sampler(y, batch_size=32, k=4)
    assert (s.n_groups, s.samples_per_group, s.batch_rows) == (8, 4, 32)
    for batch in s.epoch():
        counts = np.bincount(y[batch])
        assert sorted(counts[counts > 0].tolist()) == [4] * 8


def test_few_classes_get_more_rows_each():
    y = np.repeat(np.arange(3), 40)
    s = _sampler(y, batch_size=32, k=4)
    assert (s.n_groups, s.samples_per_group) == (3, 10)


def test_classes_are_visited_evenly():
    y = np.repeat(np.arange(20), 5)
    s = _sampler(y, batch_size=8, k=2)
    seen = np.concatenate([y[b] for b in s.epoch()])
    counts = np.bincount(seen, minlength=20)
    assert counts.max() - counts.min() <= 2


def test_tiny_and_unbalanced_classes_still_give_positives():
    y = np.array([0] * 200 + [1] * 2 + [2] * 3)
    s = _sampler(y, batch_size=16, k=4)
    for batch in s.epoch():
        assert _has_positive_and_negative(y[batch])


def test_singleton_classes_fill_a_negative_group():
    y = np.array([0, 0, 0, 0, 1, 2, 3, 4, 5])
    s = _sampler(y, batch_size=8, k=4)
    assert s.n_groups == 2
    batch = s.batch()
    assert np.bincount(y[batch])[0] == 4
    assert len(set(y[batch[4:]].tolist())) == 4  # four distinct singletons


def test_no_class_with_two_samples_raises():
    with pytest.raises(ValueError, match="No class has two or more samples"):
        _sampler([0, 1, 2])


def test_same_seed_same_batches():
    y = np.repeat(np.arange(10), 7)
    np.testing.assert_array_equal(_sampler(y).epoch(), _sampler(y).epoch())
    assert not np.array_equal(_sampler(y).epoch(), _sampler(y, seed=1).epoch())


@pytest.mark.parametrize("strategy", ["stratified", "class_disjoint"])
def test_validation_set_is_capped_and_stratified_rest_goes_back(strategy):
    """MAP@R costs the square of the validation size: at most 5000 are scored."""
    y = np.arange(80_000) % 100
    train, val = validation_split(y, 0.1, strategy, np.random.RandomState(0))
    capped_train, capped_val = validation_split(
        y, 0.1, strategy, np.random.RandomState(0), max_samples=5000
    )
    assert len(val) > 5000
    assert len(capped_val) == 5000 and set(capped_val) <= set(val)
    assert not set(capped_train) & set(capped_val)
    if strategy == "stratified":
        assert len(capped_train) + len(capped_val) == len(y)
    else:  # held-out classes are never trained on
        np.testing.assert_array_equal(capped_train, train)


class _Recording:
    """An array that records which rows are read from it."""

    def __init__(self, X):
        self.X, self.shape, self.read = X, X.shape, set()

    def __getitem__(self, rows):
        self.read.update(np.asarray(rows).tolist())
        return self.X[rows]


def test_each_process_reads_only_its_share_of_every_batch():
    """The shares of two processes, side by side, are the one process's
    batches, noise included; each reads no row of the other's share."""
    from sktriplet.sampling import noisy_blocks

    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(200, 3)), np.arange(200) % 5
    rows = np.arange(200)

    def blocks(share, X=X):
        sampler = _sampler(y, batch_size=40)
        return noisy_blocks(X, y, rows, sampler, np.ones(3), 7, 3, share)

    whole_x, whole_y = next(blocks((0, 1)))
    shares = [_Recording(X), _Recording(X)]
    parts = [next(blocks((i, 2), shares[i])) for i in range(2)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts], 1), whole_x)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts], 1), whole_y)
    assert not shares[0].read & shares[1].read
    with pytest.raises(ValueError, match="does not split evenly over 3 processes"):
        next(blocks((0, 3)))


def test_grouping_tiny_classes_grows_linearly_with_the_classes():
    """Classes of 2 rows: four times the rows (and classes) cost about four
    times as much, not sixteen: the rows are grouped by one sort, not by one
    scan of y per class (classes x rows: 100,000 classes of 2 rows took 23 s
    to fit against 1.7 s in 10 classes at 59823e9, issue 44 item 8)."""
    import time

    def seconds(n):
        y = np.arange(n) % (n // 2)
        times = []
        for _ in range(2):
            start = time.perf_counter()
            sampler = _sampler(y, batch_size=256, k=2)
            times.append(time.perf_counter() - start)
        batch = next(iter(sampler.epoch()))
        assert np.bincount(y[batch]).max() == 2  # both rows of each class drawn
        return min(times)

    small, large = seconds(50_000), seconds(200_000)
    assert large < 8 * small, (small, large)


def test_partly_labelled_batches_pair_distinct_unlabelled_rows_evenly():
    """A quarter of the batch size in pairs (at most the unlabelled rows):
    the labelled rows, then each pair's row twice, distinct within a batch,
    every unlabelled row drawn once before any twice; each pair's two views
    share a code below -1 that no other row has."""
    from sktriplet.sampling import PartlyLabelledSampler

    y = np.concatenate([np.repeat([0, 1, 2], 6), np.full(10, -1)])
    sampler = PartlyLabelledSampler(y, 16, 2, np.random.RandomState(0))
    assert sampler.n_pairs == 4
    np.testing.assert_array_equal(sampler.view_codes, [-2, -3, -4, -5] * 2)
    assert sampler.view_codes.dtype == np.int32
    drawn = []
    for _ in range(5):
        batch = sampler.batch()
        assert len(batch) == sampler.batch_rows
        labelled, first, second = batch[:-8], batch[-8:-4], batch[-4:]
        assert (y[labelled] >= 0).all() and (y[first] == -1).all()
        np.testing.assert_array_equal(first, second)
        assert len(set(first)) == 4
        assert np.bincount(y[labelled]).max() >= 2  # positives among the labelled
        drawn.extend(first.tolist())
    assert sorted(drawn[:10]) == list(range(18, 28))  # each once, then again
    assert sorted(np.bincount(drawn)[18:]) == [2] * 10
    few = PartlyLabelledSampler(np.array([0, 0, 1, 1, -1]), 16, 2,
                                np.random.RandomState(0))  # fmt: skip
    assert few.n_pairs == 1 and few.batch_rows == len(few.batch())


def test_a_stratified_split_holds_out_a_share_of_each_class_it_can():
    """About ``fraction`` of each class, when that leaves two or more on each
    side; classes too small stay whole in training."""
    y = np.repeat([0, 1, 2, 3], [10, 20, 3, 4])
    train, val = validation_split(y, 0.25, "stratified", np.random.RandomState(0))
    np.testing.assert_array_equal(np.bincount(y[val], minlength=4), [2, 5, 0, 0])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(37))
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()
    other = validation_split(y, 0.25, "stratified", np.random.RandomState(1))[1]
    assert not np.array_equal(other, val)


def test_a_class_disjoint_split_holds_out_whole_classes():
    y = np.repeat(np.arange(10), 4)
    train, val = validation_split(y, 0.3, "class_disjoint", np.random.RandomState(0))
    held = np.unique(y[val])
    assert len(held) == 3 and not set(held) & set(y[train])
    assert len(train) + len(val) == 40
    # At least one class, and two always left to train on.
    _, val = validation_split(y, 0.01, "class_disjoint", np.random.RandomState(0))
    assert len(np.unique(y[val])) == 1
    y3 = np.repeat(np.arange(3), 4)
    _, val = validation_split(y3, 0.9, "class_disjoint", np.random.RandomState(0))
    assert len(np.unique(y3[val])) == 1
    # Classes of one row are never held out: they cannot be scored.
    y_single = np.concatenate([np.repeat([0, 1, 2], 3), [3, 4, 5, 6, 7]])
    for seed in range(5):
        _, val = validation_split(y_single, 0.3, "class_disjoint",
                                  np.random.RandomState(seed))  # fmt: skip
        assert set(y_single[val]) <= {0, 1, 2}


@pytest.mark.parametrize("strategy", ["stratified", "class_disjoint"])
def test_a_split_with_nothing_to_score_says_what_to_change(strategy):
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="^" + re.escape(
        "early_stopping needs a validation set with two or more samples of some "
        "class and a training set of two or more classes; with "
        f"validation_fraction=0.2 and validation_strategy={strategy!r} the 4 "
        "samples of 2 classes give none. Raise validation_fraction, gather more "
        "samples per class, or set early_stopping=False."
    ) + "$"):  # fmt: skip
        validation_split(y, 0.2, strategy, np.random.RandomState(0))


def test_a_multilabel_split_is_a_random_share_of_the_rows():
    rng = np.random.RandomState(0)
    Y = (rng.rand(50, 3) < 0.5).astype(np.uint8)
    train, val = validation_split(Y, 0.2, "stratified", np.random.RandomState(0))
    assert len(val) == 10 and len(train) == 40
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(50))
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()
    _, capped = validation_split(Y, 0.2, "stratified", np.random.RandomState(0), 6)
    assert len(capped) == 6
    with pytest.raises(ValueError, match="^" + re.escape(
        "validation_strategy='class_disjoint' holds out whole classes, which a "
        "multi-label y does not have (a sample has several labels); use "
        "validation_strategy='stratified', which holds out a random share of "
        "the samples."
    ) + "$"):  # fmt: skip
        validation_split(Y, 0.2, "class_disjoint", np.random.RandomState(0))
    lonely = np.eye(6, dtype=np.uint8)[:, :3]
    with pytest.raises(ValueError, match="^" + re.escape(
        "early_stopping needs a validation set and a training set that each hold "
        "two or more samples of some label; validation_fraction=0.5 of the 6 "
        "samples gives none. Raise validation_fraction or set "
        "early_stopping=False."
    ) + "$"):  # fmt: skip
        validation_split(lonely, 0.5, "stratified", np.random.RandomState(0))


def test_the_spread_is_estimated_on_at_most_spread_rows_evenly_spaced():
    from sktriplet._geometry import SPREAD_ROWS, noise_scale, spread_rows

    rows = np.arange(5, 5 + 3 * SPREAD_ROWS)
    picked = spread_rows(rows)
    assert len(picked) == SPREAD_ROWS and (np.diff(picked) == 3).all()
    assert picked[0] == 5
    np.testing.assert_array_equal(spread_rows(np.arange(7)), np.arange(7))
    X = np.stack([np.arange(40.0), 100 * np.arange(40.0)], axis=1)
    assert noise_scale(X, np.arange(40), 0) is None
    scale = noise_scale(X, np.arange(20), 0.5)
    assert scale.dtype == np.float32
    np.testing.assert_allclose(scale, 0.5 * np.std(X[:20], axis=0), rtol=1e-6)


def test_channel_moments_read_in_chunks_are_numpys():
    from sktriplet._geometry import channel_moments

    rng = np.random.RandomState(0)
    X = rng.uniform(0, 255, size=(23, 4, 5, 3)).astype(np.uint8)
    rows = np.arange(2, 23)
    mean, variance = channel_moments(X, rows, chunk=4)
    np.testing.assert_allclose(mean, X[rows].mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(variance, X[rows].astype(float).var(axis=(0, 1, 2)),
                               rtol=1e-9)  # fmt: skip
    _, flat = channel_moments(np.full((3, 2, 2, 1), 7.0), np.arange(3))
    assert flat.tolist() == [0.0]


def test_a_plan_replays_the_same_batches_whatever_the_block():
    from sktriplet.sampling import BatchPlan, PartlyLabelledSampler, unblock

    X = np.random.RandomState(0).normal(size=(60, 2))
    labels = np.repeat(np.arange(6), 10)
    plan = BatchPlan(False, 12, 2, sampler_seed=3, noise_scale=np.ones(2, np.float32),
                     noise_seed=5)  # fmt: skip
    rows = np.arange(10, 60)
    one = [b for _, b in zip(range(7), unblock(plan.blocks(X, labels, rows, 1)))]
    three = [b for _, b in zip(range(7), unblock(plan.blocks(X, labels, rows, 3)))]
    for (x1, y1), (x3, y3) in zip(one, three):
        np.testing.assert_array_equal(x1, x3)
        np.testing.assert_array_equal(y1, y3)
    assert all(set(np.unique(y)) <= set(range(1, 6)) for _, y in one)
    plain = BatchPlan(False, 12, 2, 3, None, 5)
    x, y = next(unblock(plain.blocks(X, labels, rows)))
    assert not np.array_equal(x, one[0][0])  # the noise was added
    np.testing.assert_array_equal(y, one[0][1])  # to the same rows
    partly = BatchPlan(True, 8, 2, 3, None, 5)
    y_partly = labels.copy()
    y_partly[::3] = -1
    assert isinstance(partly.sampler(y_partly), PartlyLabelledSampler)
    _, y = next(unblock(partly.blocks(X, y_partly, np.arange(60))))
    np.testing.assert_array_equal(y[-4:], [-2, -3, -2, -3])


def test_rows_of_each_label_stay_in_row_order():
    from sktriplet.sampling import rows_by_label

    y = np.random.RandomState(0).randint(0, 3, 200)
    labels, rows = rows_by_label(y)
    np.testing.assert_array_equal(labels, [0, 1, 2])
    for label, r in zip(labels, rows):
        np.testing.assert_array_equal(r, np.flatnonzero(y == label))


def test_label_sets_are_groups_and_rows_without_a_shared_label_negatives():
    """A multi-label y: each label of two rows or more is a group (a row is
    drawn for each of its labels); rows with no such label form the extra
    group of negatives."""
    Y = np.zeros((12, 4), dtype=np.uint8)
    Y[:5, 0] = 1
    Y[3:8, 1] = 1
    Y[8, 2] = 1  # label 2: one row only
    # rows 8 to 11: no label of two rows or more
    sampler = ClassBalancedSampler(Y, 6, 2, np.random.RandomState(0))
    assert sampler.n_groups == 3 and sampler.samples_per_group == 2
    for _ in range(6):
        batch = sampler.batch()
        first, second, extra = batch[:2], batch[2:4], batch[4:]
        groups = {frozenset(first), frozenset(second)}
        assert all(set(g) <= set(range(5)) or set(g) <= set(range(3, 8))
                   for g in groups)  # fmt: skip
        assert set(extra) <= {8, 9, 10, 11} and len(set(extra)) == 2


def test_an_epoch_is_as_many_batches_as_make_up_the_rows():
    y = np.repeat(np.arange(4), 6)  # 24 rows, batches of 8
    assert _sampler(y, batch_size=8, k=2).n_batches == 3
    assert _sampler(y[:4], batch_size=8, k=2).n_batches == 1  # at least one
    tiny = _sampler(np.repeat(np.arange(5), 2), batch_size=3, k=2)
    assert (tiny.n_groups, tiny.samples_per_group) == (2, 1)


def test_no_class_of_two_says_no_positive_pair_exists():
    with pytest.raises(ValueError, match="^" + re.escape(
        "No class has two or more samples, so no positive pair exists; a "
        "triplet needs at least one class with two or more samples."
    ) + "$"):  # fmt: skip
        _sampler(np.arange(5))


def test_a_partly_labelled_batch_leaves_the_labelled_rows_their_share():
    from sktriplet.sampling import PartlyLabelledSampler

    y = np.concatenate([np.repeat(np.arange(8), 10), np.full(40, -1)])
    sampler = PartlyLabelledSampler(y, 32, 2, np.random.RandomState(0))
    assert sampler.n_pairs == 8
    assert (sampler.n_groups, sampler.samples_per_group) == (8, 2)
    assert sampler.batch_rows == 16 + 16
    # Pairs stay distinct within a batch when the pool wraps around.
    wrap = PartlyLabelledSampler(np.array([0, 0, 1, 1, -1, -1, -1, -1]), 12, 2,
                                 np.random.RandomState(0))  # fmt: skip
    assert wrap.n_pairs == 3
    for _ in range(10):
        pairs = wrap.batch()[-6:-3]
        assert len(set(pairs)) == 3


def test_a_class_disjoint_split_holds_out_classes_of_two_rows():
    y = np.repeat(np.arange(6), 2)
    held = set()
    for seed in range(20):
        _, val = validation_split(y, 0.2, "class_disjoint",
                                  np.random.RandomState(seed))  # fmt: skip
        held |= set(y[val])
    assert held == set(range(6))
    y2 = np.concatenate([np.repeat([0, 1], 2), [2, 3]])  # two classes of two
    train, val = validation_split(y2, 0.25, "class_disjoint", np.random.RandomState(0))
    assert len(np.unique(y2[val])) == 1 and len(np.unique(y2[train])) == 3


def test_a_stratified_split_takes_two_and_leaves_two():
    """At half: a class of 4 gives 2 and keeps 2; one of 3 would give 2 and
    keep 1, so it gives none."""
    y = np.repeat([0, 1], [4, 3])
    _, val = validation_split(y, 0.5, "stratified", np.random.RandomState(0))
    np.testing.assert_array_equal(np.bincount(y[val], minlength=2), [2, 0])


def test_a_held_out_set_of_exactly_max_samples_is_kept_whole():
    y = np.repeat(np.arange(5), 10)
    train, val = validation_split(y, 0.2, "stratified", np.random.RandomState(0))
    again = validation_split(y, 0.2, "stratified", np.random.RandomState(0),
                             max_samples=len(val))  # fmt: skip
    np.testing.assert_array_equal(again[1], val)
    np.testing.assert_array_equal(again[0], train)
    _, capped = validation_split(y, 0.2, "stratified", np.random.RandomState(0), 7)
    assert len(np.unique(capped)) == 7


def test_a_multilabel_split_needs_a_shared_label_on_each_side():
    """Built on the split's own draw: one side's rows share a label, the
    other's rows each have their own; refused either way round."""
    order = np.random.RandomState(0).permutation(8)
    for shared, lonely in ((order[:4], order[4:]), (order[4:], order[:4])):
        Y = np.zeros((8, 5), np.uint8)
        Y[shared, 0] = 1
        Y[lonely, np.arange(1, 5)] = 1
        with pytest.raises(ValueError, match="two or more samples of some label"):
            validation_split(Y, 0.5, "stratified", np.random.RandomState(0))
    Y = np.zeros((8, 2), np.uint8)
    Y[:, 0] = 1
    Y[order[:4], 1] = 1  # each side holds a shared label
    validation_split(Y, 0.5, "stratified", np.random.RandomState(0))


def test_noise_is_added_in_float32_around_the_rows():
    from sktriplet.sampling import noisy_blocks

    X = np.arange(40, dtype=np.float64).reshape(20, 2)
    y = np.repeat(np.arange(4), 5)
    clean = noisy_blocks(X, y, np.arange(20), _sampler(y, 8, 2))
    noisy = noisy_blocks(X, y, np.arange(20), _sampler(y, 8, 2),
                         np.array([0.5, 2.0], np.float32), 3)  # fmt: skip
    x0, _ = next(clean)
    x1, _ = next(noisy)
    assert x0.dtype == x1.dtype == np.float32 and x0.shape == (1, 8, 2)
    z = np.random.default_rng(3).standard_normal((1, 8, 2), dtype=np.float32)
    np.testing.assert_array_equal(x1, x0 + np.array([0.5, 2.0], np.float32) * z)
    default = noisy_blocks(X, y, np.arange(20), _sampler(y, 8, 2),
                           np.array([0.5, 2.0], np.float32))  # fmt: skip
    z0 = np.random.default_rng(0).standard_normal((1, 8, 2), dtype=np.float32)
    np.testing.assert_array_equal(next(default)[0], x0 + np.float32([0.5, 2]) * z0)


def test_a_block_holds_exactly_the_batches_asked_for():
    from sktriplet.sampling import BatchPlan, noisy_blocks

    X, y = np.zeros((20, 2)), np.repeat(np.arange(4), 5)
    blocks = noisy_blocks(X, y, np.arange(20), _sampler(y, 8, 2), block=2)
    assert next(blocks)[0].shape == (2, 8, 2)
    plan = BatchPlan(False, 8, 2, 0, None, 0)
    assert next(plan.blocks(X, y, np.arange(20)))[0].shape == (1, 8, 2)
    sampler = _sampler(y, 8, 2)  # an epoch of 3 batches, a block of exactly 3
    epoch = _sampler(y, 8, 2).epoch()
    x, labels = next(noisy_blocks(np.arange(20.0)[:, None], y, np.arange(20),
                                  sampler, block=sampler.n_batches))  # fmt: skip
    np.testing.assert_array_equal(x[..., 0], epoch.astype(np.float32))


def test_channel_moments_of_integer_images_do_not_overflow():
    from sktriplet._geometry import channel_moments

    X = np.full((300, 2, 2, 1), 250, np.uint8)
    X[::2] = 10
    mean, variance = channel_moments(X, np.arange(300))
    np.testing.assert_allclose(mean, [130.0])
    np.testing.assert_allclose(variance, [120.0**2])


def test_a_multilabel_split_counts_rows_sharing_a_label_on_each_side():
    """Two rows of a label on a side are enough; a row's own count of labels
    does not matter; no held-out row at all is refused in words."""
    order = np.random.RandomState(0).permutation(8)
    Y = np.ones((8, 1), np.uint8)  # one label, on every row
    validation_split(Y, 0.5, "stratified", np.random.RandomState(0))
    two = np.zeros((8, 2), np.uint8)
    two[order[:2], 0] = 1  # exactly two held-out rows share label 0
    two[order[4:6], 1] = 1  # exactly two training rows share label 1
    validation_split(two, 0.5, "stratified", np.random.RandomState(0))
    with pytest.raises(ValueError, match="validation_fraction=0.01 of the 8"):
        validation_split(Y, 0.01, "stratified", np.random.RandomState(0))


def test_the_noise_scale_of_float32_features_is_computed_in_float64():
    from sktriplet._geometry import noise_scale

    rng = np.random.RandomState(0)
    X = (1e4 + rng.normal(size=(5000, 2))).astype(np.float32)
    expected = 0.5 * np.std(X.astype(np.float64), axis=0)
    np.testing.assert_allclose(noise_scale(X, np.arange(5000), 0.5), expected,
                               rtol=1e-6)  # fmt: skip


def test_a_plan_reads_its_share_of_each_batch():
    from sktriplet.sampling import BatchPlan

    X, y = np.arange(40.0)[:, None], np.repeat(np.arange(4), 10)
    plan = BatchPlan(False, 8, 2, 0, None, 0)
    whole, _ = next(plan.blocks(X, y, np.arange(40)))
    half, _ = next(plan.blocks(X, y, np.arange(40), share=(1, 2)))
    np.testing.assert_array_equal(half, whole[:, 4:])
