"""Numpy reference miners on small hand-checked label vectors."""

import numpy as np
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
