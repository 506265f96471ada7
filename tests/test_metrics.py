"""Retrieval metrics on hand-computed examples."""

import re

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


def _reference(X, y, metric):
    """MAP@R, R-precision and precision@1 by the definition, one query at a
    time: every other sample ranked by a stable sort of its distance."""
    from sklearn.metrics import pairwise_distances

    D = pairwise_distances(X, metric=metric)
    Y = np.asarray(y)
    share = (Y @ Y.T > 0) if Y.ndim == 2 else Y[:, None] == Y[None, :]
    everyone = np.arange(len(D))
    return tuple(np.nanmean(_per_query(D, share, everyone, everyone), axis=1))


def _sets():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 3))
    y = rng.randint(0, 4, 400)
    Y = (rng.rand(400, 5) < 0.3).astype(int)
    return [
        (X, y, "euclidean"),
        (X.astype(np.float32), y, "euclidean"),
        (X, y, "cosine"),
        (np.round(X), y, "euclidean"),  # many equal distances
        (np.round(X * 2), y, "manhattan"),
        (X, Y, "euclidean"),  # multi-label
        (X, rng.randint(0, 150, 400), "euclidean"),  # classes of one sample
    ]


@pytest.mark.parametrize("X, y, metric", _sets())
def test_exact_scores_match_the_definition(X, y, metric):
    """Below sample_size every query is scored, and the chunked reduction
    (partition, integer keys, the tie fallback) gives what ranking each
    query by a stable sort gives, to 1e-12."""
    expected = _reference(X, y, metric)
    got = [
        f(X, y, metric=metric, sample_size=None)
        for f in (mean_average_precision_at_r, r_precision, precision_at_1)
    ]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert mean_average_precision_at_r(X, y, metric=metric) == got[0]  # "auto"


def test_a_sampled_score_is_fixed_and_near_the_exact_one():
    """Beyond sample_size, a fixed class-stratified sample of queries, each
    against the whole set: the same score in every call, and close to the
    exact one; another random_state draws other queries."""
    rng = np.random.RandomState(1)
    y = rng.randint(0, 3, 3000)
    X = rng.normal(size=(3000, 4)) + y[:, None]
    exact = mean_average_precision_at_r(X, y, sample_size=None)
    first = mean_average_precision_at_r(X, y, sample_size=600)
    assert first == mean_average_precision_at_r(X, y, sample_size=600)
    assert abs(first - exact) < 0.02, (first, exact)
    other = mean_average_precision_at_r(X, y, sample_size=600, random_state=1)
    assert other != first and abs(other - exact) < 0.02


def test_sampled_estimate_is_unbiased_over_draws():
    """The mean of many draws' estimates is the exact score: the weights undo
    the stratified sample's unequal rates (a class of 90% of the rows)."""
    rng = np.random.RandomState(2)
    y = (rng.rand(1000) < 0.1).astype(int)
    X = rng.normal(size=(1000, 2)) + 0.8 * y[:, None]
    exact = mean_average_precision_at_r(X, y, sample_size=None)
    draws = [
        mean_average_precision_at_r(X, y, sample_size=50, random_state=seed)
        for seed in range(60)
    ]
    spread = np.std(draws) / np.sqrt(len(draws))
    assert abs(np.mean(draws) - exact) < 4 * spread + 1e-3, (np.mean(draws), exact)


def test_sampled_score_is_the_same_in_a_new_process():
    import subprocess
    import sys

    code = (
        "import numpy as np; from sktriplet.metrics import "
        "mean_average_precision_at_r as m; rng = np.random.RandomState(1); "
        "y = rng.randint(0, 3, 3000); X = rng.normal(size=(3000, 4)) + y[:, None]; "
        "print(repr(m(X, y, sample_size=600)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    rng = np.random.RandomState(1)
    y = rng.randint(0, 3, 3000)
    X = rng.normal(size=(3000, 4)) + y[:, None]
    assert float(out.stdout) == mean_average_precision_at_r(X, y, sample_size=600)


def test_two_classes_of_12000_rows_score_in_bounded_memory():
    """R of 6,000 for every query: the relevance of all of them and its
    cumulative sums (n x R, 17 bytes each) took 1.2 GB at 59823e9; the
    chunked reduction keeps a few working-memory chunks whatever n and R
    (issue 45)."""
    import tracemalloc

    rng = np.random.RandomState(0)
    y = np.arange(12_000) % 2
    X = (rng.normal(size=(12_000, 8)) + y[:, None]).astype(np.float32)
    tracemalloc.start()
    try:
        score = mean_average_precision_at_r(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MB"
    assert 0.5 < score < 1


@pytest.mark.parametrize("bad", [0, -3, 2.5, "all", True])
def test_sample_size_is_checked(bad):
    with pytest.raises(ValueError, match="sample_size must be a positive integer"):
        mean_average_precision_at_r(X_LINE, Y_LINE, sample_size=bad)


def _per_query(D, share, rows, columns):
    """AP@R, R-precision and precision@1 of each query ``rows[i]`` against the
    samples ``columns`` by the definition: the others ranked by a stable sort
    of their distance, ties in sample order; NaN where R = 0."""
    out = np.full((3, len(rows)), np.nan)
    for i, q in enumerate(rows):
        others = columns[columns != q]
        order = others[np.argsort(D[q, others], kind="stable")]
        relevant = share[q, order]
        r = int(relevant.sum())
        if r == 0:
            continue
        hits = relevant[:r]
        out[0, i] = np.sum(np.cumsum(hits) / np.arange(1, r + 1) * hits) / r
        out[1, i] = hits.sum() / r
        out[2, i] = float(relevant[0])
    return out


def _small_integer_case(rng, dtype):
    """A few points on a tiny integer grid, so that most distances tie, with
    class labels or (one case in three) label sets."""
    n = rng.randint(3, 26)
    X = rng.randint(0, 3, size=(n, rng.randint(1, 3))).astype(dtype)
    if rng.rand() < 1 / 3:
        y = (rng.rand(n, 3) < 0.4).astype(int)
        share = (y @ y.T) > 0
    else:
        y = rng.randint(0, rng.randint(2, 5), n)
        share = y[:, None] == y[None, :]
    return X, y, share


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_are_ranked_in_sample_order_for_every_query(dtype):
    """The stated rule, "ties in sample order, as a stable sort does", held
    query by query on 150 small integer-valued sets (most distances tie,
    across rank R too), for every query against every sample and for a
    subset of queries against a subset of samples (the estimate's proxy)."""
    from sklearn.metrics import pairwise_distances

    from sktriplet.metrics import _Labels, _scores_of

    rng = np.random.RandomState(0)
    for _ in range(150):
        X, y, share = _small_integer_case(rng, dtype)
        n, labels = len(X), _Labels(y)
        D = pairwise_distances(X)
        everyone = np.arange(n)
        got = np.array(_scores_of(X, None, None, labels, "euclidean"))
        expected = _per_query(D, share, everyone, everyone)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        rows = np.sort(rng.choice(n, rng.randint(1, n + 1), replace=False))
        columns = np.sort(rng.choice(n, rng.randint(2, n + 1), replace=False))
        got = np.array(_scores_of(X, rows, columns, labels, "euclidean"))
        expected = _per_query(D, share, rows, columns)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        if np.isnan(_per_query(D, share, everyone, everyone)[0]).all():
            continue
        means = [
            f(X, y, sample_size=None)
            for f in (mean_average_precision_at_r, r_precision, precision_at_1)
        ]
        np.testing.assert_allclose(
            means, np.nanmean(_per_query(D, share, everyone, everyone), axis=1),
            rtol=0, atol=1e-12,
        )  # fmt: skip


def test_text_labels_score_as_their_integer_codes():
    rng = np.random.RandomState(0)
    X, codes = rng.normal(size=(60, 3)), rng.randint(0, 3, 60)
    words = np.array(["cat", "dog", "emu"], dtype=object)[codes]
    for f in (mean_average_precision_at_r, r_precision, precision_at_1):
        assert f(X, words) == f(X, codes)


@pytest.mark.parametrize(
    "y, message",
    [(np.arange(4), "every one of the 4 labels given is unique."),
     (np.eye(4, dtype=int), "no two of the 4 samples given share a label.")],
)  # fmt: skip
def test_labels_no_two_samples_share_are_named(y, message):
    with pytest.raises(ValueError, match=re.escape(
        "Retrieval metrics need at least one label shared by two or more "
        "samples; " + message
    )):  # fmt: skip
        mean_average_precision_at_r(np.zeros((4, 2)), y)


def test_a_label_set_shared_by_exactly_two_samples_makes_both_queries():
    """Rows 0 and 1 share label 0 (and only they); row 2's label is its
    own: queries 0 and 1 only, each with R = 1, each retrieving the other
    first."""
    X = np.array([[0.0], [1.0], [3.0]])
    Y = np.array([[1, 0], [1, 0], [0, 1]])
    assert mean_average_precision_at_r(X, Y) == precision_at_1(X, Y) == 1.0


def test_a_sample_size_of_every_query_is_exact():
    rng = np.random.RandomState(3)
    y = rng.randint(0, 4, 80)
    X = rng.normal(size=(80, 3)) + y[:, None]
    exact = mean_average_precision_at_r(X, y, sample_size=None)
    assert mean_average_precision_at_r(X, y, sample_size=80) == exact
    assert mean_average_precision_at_r(X, y, sample_size=79) != exact


def test_a_small_sample_corrects_its_proxy_to_the_exact_score():
    """With a database of 40 samples, the proxy scores are far from the exact
    ones; the correction by 40 exact queries brings the mean of 20 draws
    within 0.01 of the exact score (rows of classes of one sample are left
    out, as in the exact score)."""
    rng = np.random.RandomState(4)
    y = np.concatenate([rng.randint(0, 2, 1500), 10 + np.arange(100)])
    X = rng.normal(size=(1600, 3)) + 0.7 * (y[:, None] % 10)
    exact = mean_average_precision_at_r(X, y, sample_size=None)
    draws = [
        mean_average_precision_at_r(X, y, sample_size=40, random_state=s)
        for s in range(20)
    ]
    assert abs(np.mean(draws) - exact) < 0.01, (np.mean(draws), exact)


@pytest.mark.parametrize("f", [mean_average_precision_at_r, r_precision,
                               precision_at_1])  # fmt: skip
def test_every_metric_samples_by_its_own_sample_size_and_random_state(f):
    rng = np.random.RandomState(5)
    y = rng.randint(0, 3, 400)
    X = rng.normal(size=(400, 3)) + y[:, None]
    exact = f(X, y, sample_size=None)
    assert f(X, y, sample_size=30) != exact
    assert f(X, y, sample_size=30) == f(X, y, sample_size=30, random_state=0)
    assert f(X, y, sample_size=30, random_state=1) != f(X, y, sample_size=30)
    assert np.isfinite(f(X, y, sample_size=1))


def test_the_stratified_sample_allocates_by_class_size():
    """size 10 of classes of 50, 30, 15 and 5 rows: shares 5, 3, 1.5 and 0.5;
    at least one a class, then largest remainders: 5, 3, 1, 1; each class's
    weight its rows over its draws; distinct, sorted rows."""
    from sktriplet.metrics import _Labels, _stratified

    y = np.repeat([0, 1, 2, 3], [50, 30, 15, 5])
    labels = _Labels(y)
    rows, weights = _stratified(labels, np.arange(100), 10, np.random.RandomState(0))
    assert len(np.unique(rows)) == 10 and (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(np.bincount(y[rows], minlength=4), [5, 3, 1, 1])
    np.testing.assert_array_equal(weights, np.array([10, 10, 15, 5])[y[rows]])
    # Shares 4.5, 2.7, 1.35, 0.45 of 9: floors 4, 2, 1, 1 (at least one) and
    # the one left to the largest remainder (0.7, class 1).
    rows, _ = _stratified(labels, np.arange(100), 9, np.random.RandomState(0))
    np.testing.assert_array_equal(np.bincount(y[rows], minlength=4), [4, 3, 1, 1])
    every, ones = _stratified(labels, np.arange(100), 100, np.random.RandomState(0))
    np.testing.assert_array_equal(every, np.arange(100))
    np.testing.assert_array_equal(ones, np.ones(100))


def test_many_classes_or_label_sets_are_sampled_uniformly():
    from sktriplet.metrics import _Labels, _stratified

    for y in (np.arange(100) % 6, (np.random.RandomState(0).rand(100, 3) < 0.5)):
        rows, weights = _stratified(
            _Labels(y.astype(int)), np.arange(100), 10, np.random.RandomState(0)
        )
        assert len(np.unique(rows)) == 10 and (np.diff(rows) > 0).all()
        np.testing.assert_array_equal(weights, np.ones(10))


def test_left_over_draws_go_to_the_first_classes_of_equal_remainders():
    """20 classes of 3 rows, 50 draws: 2.5 a class, 2 each and 10 left over,
    which the largest remainders share; all equal, the first 10 classes take
    them (a stable sort, whatever the number of classes)."""
    from sktriplet.metrics import _Labels, _stratified

    y = np.repeat(np.arange(20), 3)
    rows, _ = _stratified(_Labels(y), np.arange(60), 50, np.random.RandomState(0))
    np.testing.assert_array_equal(np.bincount(y[rows]), [3] * 10 + [2] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiny_distances_rank_by_their_values(dtype):
    """Distances of 1e-8 and 3e-8 (below float32's resolution near 1) still
    rank the nearer first."""
    X = np.array([[0.0], [3e-8], [1e-8], [5.0], [5.0]], dtype=dtype)
    y = np.array([0, 1, 0, 1, 2])
    assert precision_at_1(X[:3], y[:3], sample_size=None) == 1.0
    expected = _reference(X, y, "euclidean")
    got = [
        f(X, y, sample_size=None)
        for f in (mean_average_precision_at_r, r_precision, precision_at_1)
    ]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
