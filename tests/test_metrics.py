"""Retrieval metrics on hand-computed examples."""

import numpy as np
import pytest

from sktriplet.metrics import mean_average_precision_at_r, precision_at_1, r_precision

# Points on a line; R = 2 for every query.  Nearest-first relevance of each query
# within its first R neighbours (worked out by hand):
#   q0 [1, 0]  q1 [1, 0]  q2 [0, 0]  q3 [0, 0]  q4 [0, 1]  q5 [1, 0]
X_LINE = np.array([[0.0], [1.0], [2.5], [3.0], [4.5], [9.0]])
Y_LINE = np.array([0, 0, 1, 0, 1, 1])


def test_map_at_r_hand_computed():
    # AP@R: q0 1/2, q1 1/2, q2 0, q3 0, q4 (1/2)(1/2), q5 1/2
    expected = (0.5 + 0.5 + 0 + 0 + 0.25 + 0.5) / 6
    assert mean_average_precision_at_r(X_LINE, Y_LINE) == pytest.approx(expected)


def test_r_precision_hand_computed():
    assert r_precision(X_LINE, Y_LINE) == pytest.approx(4 / 12)


def test_precision_at_1_hand_computed():
    assert precision_at_1(X_LINE, Y_LINE) == pytest.approx(3 / 6)


def test_perfect_clusters_score_one():
    X = np.array([[0.0], [0.1], [0.2], [10.0], [10.1]])
    y = np.array(["a", "a", "a", "b", "b"])
    for metric in (mean_average_precision_at_r, r_precision, precision_at_1):
        assert metric(X, y) == 1.0


def test_map_at_r_rewards_the_order_within_r():
    """Same R-precision, but the relevant neighbour ranked first scores higher."""
    y = np.array([0, 0, 0, 1, 1, 1])
    first = np.array([[0.0], [1.0], [3.0], [2.0], [50.0], [51.0]])  # q0: rel, non-rel
    second = np.array([[0.0], [2.0], [30.0], [1.0], [50.0], [51.0]])  # q0: non-rel, rel
    assert mean_average_precision_at_r(first, y) > mean_average_precision_at_r(
        second, y
    )


def test_queries_without_a_same_label_sample_are_left_out():
    X = np.array([[0.0], [0.1], [5.0]])
    assert mean_average_precision_at_r(X, [0, 0, 1]) == 1.0


def test_all_unique_labels_raise():
    with pytest.raises(ValueError, match="every one of the 3 labels given is unique"):
        mean_average_precision_at_r([[0.0], [1.0], [2.0]], [0, 1, 2])


def test_cosine_metric_ranks_by_angle():
    X = np.array([[1.0, 0.0], [10.0, 0.5], [0.0, 1.0], [0.4, 10.0]])
    y = [0, 0, 1, 1]
    assert mean_average_precision_at_r(X, y, metric="cosine") == 1.0
    assert mean_average_precision_at_r(X, y, metric="euclidean") < 1.0


def test_map_at_r_memory_stays_bounded_on_thousands_of_samples():
    """Early stopping scores 5000 held-out samples every epoch: the distances
    are ranked in chunks, never as one 5000 x 5000 matrix (200 MB, twice)."""
    import tracemalloc

    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(5000, 32)), np.arange(5000) % 50
    tracemalloc.start()
    try:
        mean_average_precision_at_r(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MB"
