"""Numpy reference miners on small hand-checked label vectors."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sktriplet import mining


def _set(triplets):
    return set(zip(*(t.tolist() for t in triplets)))


def test_all_triplets_hand_checked():
    assert _set(mining.all_triplets([0, 0, 1, 1])) == {
        (0, 1, 2),
        (0, 1, 3),
        (1, 0, 2),
        (1, 0, 3),
        (2, 3, 0),
        (2, 3, 1),
        (3, 2, 0),
        (3, 2, 1),
    }


def test_anchor_without_positive_gets_no_triplet():
    x = np.array([[0.0], [1.0], [5.0]])
    d = mining.pairwise_distances(x)
    for strategy in ("all", "hard", "semihard", "random"):
        a, _, _ = mining.mine_triplets([0, 0, 1], d, strategy)
        assert 2 not in a.tolist()


def test_hard_picks_farthest_positive_and_nearest_negative():
    # anchor 0 at 0: positives at 1 and 3, negatives at 1.5 and 4
    x = np.array([[0.0], [1.0], [3.0], [1.5], [4.0]])
    a, p, n = mining.hard_triplets([0, 0, 0, 1, 1], mining.pairwise_distances(x))
    assert (a[0], p[0], n[0]) == (0, 2, 3)


def test_semihard_picks_the_nearest_negative_beyond_the_positive():
    # anchor 0 at 0, positive at 1; negatives at 0.5 (hard), 1.2 and 3 (semi-hard)
    x = np.array([[0.0], [1.0], [0.5], [1.2], [3.0]])
    a, p, n = mining.semihard_triplets([0, 0, 1, 1, 1], mining.pairwise_distances(x))
    assert (0, 1, 3) in _set((a, p, n))


def test_semihard_falls_back_to_the_least_hard_negative():
    # anchor 0 at 0, positive at 2; every negative nearer: 0.5 and 1.0
    x = np.array([[0.0], [2.0], [0.5], [1.0]])
    a, p, n = mining.semihard_triplets([0, 0, 1, 1], mining.pairwise_distances(x))
    assert (0, 1, 3) in _set((a, p, n))


def test_loss_and_active_fraction():
    d = np.array([[0.0, 1.0, 3.0], [1.0, 0.0, 1.2], [3.0, 1.2, 0.0]])
    loss, active = mining.triplet_margin_loss(d, mining.all_triplets([0, 0, 1]), 0.5)
    # (0,1,2): max(1 - 3 + .5, 0) = 0; (1,0,2): max(1 - 1.2 + .5, 0) = 0.3
    assert np.isclose(loss, 0.15) and active == 0.5


labels = st.lists(st.integers(0, 4), min_size=2, max_size=24).map(np.array)


@settings(max_examples=60, deadline=None)
@given(labels, st.integers(0, 2**31 - 1), st.sampled_from(mining.MINING_STRATEGIES))
def test_every_mined_triplet_is_valid(y, seed, strategy):
    rng = np.random.RandomState(seed)
    d = mining.pairwise_distances(rng.normal(size=(len(y), 3)))
    a, p, n = mining.mine_triplets(y, d, strategy, np.random.RandomState(seed))
    assert len(a) == len(p) == len(n)
    assert np.all(y[a] == y[p]) and np.all(a != p) and np.all(y[a] != y[n])


@settings(max_examples=60, deadline=None)
@given(labels, st.integers(0, 2**31 - 1))
def test_semihard_negative_is_semihard_whenever_one_exists(y, seed):
    d = mining.pairwise_distances(np.random.RandomState(seed).normal(size=(len(y), 3)))
    for a, p, n in zip(*mining.semihard_triplets(y, d)):
        farther = (y != y[a]) & (d[a] > d[a, p])
        if farther.any():
            assert d[a, n] == d[a][farther].min()
        else:
            assert d[a, n] == d[a][y != y[a]].max()


@pytest.mark.parametrize(
    "distance, metric",
    [("squared_euclidean", "sqeuclidean"), ("euclidean", "euclidean"),
     ("cosine", "cosine")],
)  # fmt: skip
def test_pairwise_distances_are_scipys_in_float64(distance, metric):
    """Every distance is scipy's to 1e-12, in float64 whatever the input's
    dtype, Euclidean ones exactly 0 on the diagonal; a zero row is at cosine
    distance 1 from all."""
    from scipy.spatial.distance import cdist

    rng = np.random.RandomState(0)
    e = rng.normal(size=(7, 3)).astype(np.float32)
    d = mining.pairwise_distances(e, distance)
    assert d.dtype == np.float64 and d.shape == (7, 7)
    np.testing.assert_allclose(d, cdist(e.astype(np.float64), e, metric), atol=1e-12)
    if distance != "cosine":
        assert (np.diag(d) == 0).all()
    else:
        e[3] = 0
        d = mining.pairwise_distances(e, distance)
        np.testing.assert_allclose(np.delete(d[3], 3), 1.0)


def test_an_unknown_distance_is_named():
    with pytest.raises(ValueError, match=re.escape(
        "distance must be one of ('squared_euclidean', 'euclidean', 'cosine'). "
        "Received: 'manhattan'"
    )):  # fmt: skip
        mining.pairwise_distances(np.zeros((2, 2)), "manhattan")


def test_label_sets_pair_rows_that_share_any_label():
    """With an indicator matrix, rows sharing one label or more are positives,
    rows sharing none negatives; a row that shares a label with every other
    has no negative and anchors nothing."""
    Y = np.array([[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])
    triplets = _set(mining.all_triplets(Y))
    assert {a for a, _, _ in triplets} == {1, 2, 3, 4}
    assert all(Y[a] @ Y[p] > 0 and Y[a] @ Y[n] == 0 for a, p, n in triplets)
    assert (1, 0, 3) in triplets and (3, 4, 1) in triplets
    assert (1, 2, 3) not in triplets  # rows 1 and 2 share no label
    Y_sparse_shape = mining.all_triplets(Y.astype(bool))
    assert _set(Y_sparse_shape) == triplets


def _following(labels, max_positives):
    """Each anchor's positives in the order they follow it, wrapping around."""
    labels = np.asarray(labels)
    n = len(labels)
    kept = np.zeros((n, n), dtype=bool)
    for a in range(n):
        after = [(a + step) % n for step in range(1, n)]
        same = [p for p in after if labels[p] == labels[a]]
        kept[a, same[:max_positives]] = True
    return kept


@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=12),
    st.one_of(st.none(), st.integers(1, 5)),
)
@settings(max_examples=200, deadline=None)
def test_following_positives_are_the_next_ones_in_the_batch(labels, max_positives):
    np.testing.assert_array_equal(
        mining.following_positives(labels, max_positives),
        _following(labels, max_positives),
    )


def test_all_and_semihard_keep_only_the_following_positives():
    labels = [0, 1, 0, 1, 0, 1, 0]
    d = mining.pairwise_distances(np.arange(7.0)[:, None])
    kept = _following(labels, 1)
    for strategy in ("all", "semihard"):
        a, p, _ = mining.mine_triplets(labels, d, strategy, max_positives=1)
        assert kept[a, p].all() and len(set(zip(a, p))) == kept.sum()
        direct = getattr(mining, f"{strategy}_triplets")
        args = (labels, 1) if strategy == "all" else (labels, d, 1)
        assert _set(direct(*args)) == _set(
            mining.mine_triplets(labels, d, strategy, max_positives=1)
        )


@pytest.mark.parametrize(
    "mining_, rows, expected",
    [("semihard", 1, 1), ("semihard", 4, 3), ("semihard", 17, 16),
     ("semihard", 128, 16), ("all", 2, 1), ("all", 17, 16), ("all", 18, None),
     ("hard", 4, None), ("random", 4, None)],
)  # fmt: skip
def test_positives_per_anchor(mining_, rows, expected):
    assert mining.positives_per_anchor(mining_, rows) == expected


def test_a_negative_as_far_as_the_positive_is_not_semihard():
    """Semi-hard means strictly farther than the positive: a negative at the
    same distance is not: the farther one is chosen."""
    x = np.array([[0.0], [1.0], [-1.0], [3.0]])
    d = mining.pairwise_distances(x, "euclidean")
    a, p, n = mining.semihard_triplets([0, 0, 1, 1], d)
    assert (0, 1, 3) in set(zip(a.tolist(), p.tolist(), n.tolist()))


def test_mine_triplets_dispatches_and_names_an_unknown_strategy():
    labels = [0, 0, 1, 1, 2]
    d = mining.pairwise_distances(np.arange(5.0)[:, None])
    assert _set(mining.mine_triplets(labels, d)) == _set(
        mining.semihard_triplets(labels, d)
    )  # semihard by default
    random = mining.mine_triplets(labels, d, "random")
    assert _set(random) == _set(mining.mine_triplets(labels, d, "random"))
    assert _set(mining.mine_triplets(labels, d, "hard")) == _set(
        mining.hard_triplets(labels, d)
    )
    with pytest.raises(ValueError, match=re.escape(
        "mining must be one of ('random', 'all', 'hard', 'semihard'). "
        "Received: mining='easy'"
    )):  # fmt: skip
        mining.mine_triplets(labels, d, "easy")


def test_no_triplet_has_zero_loss_and_one_has_its_hinge():
    d = np.array([[0.0, 1.0, 1.25], [1.0, 0.0, 3.0], [1.25, 3.0, 0.0]])
    empty = (np.array([], int),) * 3
    assert mining.triplet_margin_loss(d, empty, margin=0.5) == (0.0, 0.0)
    one = (np.array([0]), np.array([1]), np.array([2]))
    assert mining.triplet_margin_loss(d, one, margin=0.5) == (0.25, 1.0)


def test_rows_sharing_many_labels_are_positives():
    """Two rows sharing 256 labels: the count of shared labels must not wrap
    around in the indicator's uint8."""
    Y = np.zeros((3, 300), dtype=np.uint8)
    Y[:2, :256] = 1
    Y[2, 299] = 1
    assert _set(mining.all_triplets(Y)) == {(0, 1, 2), (1, 0, 2)}


def test_an_anchor_without_a_negative_anchors_nothing_in_any_miner():
    Y = np.array([[1, 1], [1, 0], [0, 1], [0, 1]])  # row 0 shares with all
    d = mining.pairwise_distances(np.arange(4.0)[:, None])
    for strategy in ("random", "hard", "semihard"):
        a, _, _ = mining.mine_triplets(Y, d, strategy)
        assert 0 not in set(a.tolist()) and len(a)
