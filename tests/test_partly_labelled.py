"""Partly labelled y: -1 marks an unlabelled sample, as in sklearn.semi_supervised."""

import re

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from sktriplet import TripletEmbedder
from sktriplet._plan import plan_fit
from sktriplet.sampling import PartlyLabelledSampler


@pytest.fixture(scope="module")
def partly(digits):
    """The digits with every third sample's label kept, the others -1."""
    X, y = digits
    y_part = np.where(np.arange(len(y)) % 3 == 0, y, -1)
    return X, y_part


@pytest.mark.backend
def test_views_are_negatives_of_views_but_never_of_a_labelled_anchor():
    from keras import ops

    from sktriplet.keras.losses import _pair_masks

    # Rows 0-1: class 0; rows 2-3: two views of one unlabelled row (code -2);
    # rows 4-5: views of another (-3).
    labels = np.array([0, 0, -2, -2, -3, -3], dtype=np.int32)
    views = labels < -1
    positive, negative = (
        ops.convert_to_numpy(m) for m in _pair_masks(labels, ops.array(views))
    )
    assert sorted(zip(*np.nonzero(positive))) == [
        (0, 1), (1, 0), (2, 3), (3, 2), (4, 5), (5, 4),
    ]  # fmt: skip
    assert not negative[:2, 2:].any()  # an unlabelled row may share the class
    assert negative[2, [0, 1, 4, 5]].all() and not negative[2, 3]


def test_batches_mix_labelled_rows_and_pairs_of_views(partly):
    _, y = partly
    sampler = PartlyLabelledSampler(y, 64, 4, np.random.RandomState(0))
    batch = sampler.batch()
    n = sampler.n_pairs
    assert n == 16 and len(batch) == sampler.batch_rows
    assert (y[batch[: -2 * n]] >= 0).all() and (y[batch[-2 * n :]] == -1).all()
    np.testing.assert_array_equal(batch[-2 * n : -n], batch[-n:])
    assert len(set(batch[-n:])) == n


def test_unlabeled_weight_changes_nothing_without_unlabelled_samples(digits, quick):
    X, y = digits
    params = TripletEmbedder(**quick).get_params()
    plan = plan_fit(params, X, y.astype(np.int32), np.random.RandomState(0))
    assert plan.unlabeled_weight is None
    _, labels = next(plan.batches())
    assert (labels >= 0).all()  # no views
    low = TripletEmbedder(**quick, unlabeled_weight=0.0).fit(X, y).transform(X)
    high = TripletEmbedder(**quick, unlabeled_weight=5.0).fit(X, y).transform(X)
    np.testing.assert_array_equal(low, high)


@pytest.mark.backend
def test_unlabelled_samples_train_through_their_weight(partly, quick):
    X, y = partly
    fits = {
        w: TripletEmbedder(**quick, unlabeled_weight=w).fit(X, y) for w in (0.0, 1.0)
    }
    assert fits[0.0].classes_.tolist() == list(range(10))  # -1 is no class
    assert not np.allclose(fits[0.0].transform(X), fits[1.0].transform(X))


def test_score_leaves_unlabelled_samples_out(partly, quick):
    X, y = partly
    emb = TripletEmbedder(**quick).fit(X, y)
    labelled = y != -1
    assert emb.score(X, y) == emb.score(X[labelled], y[labelled])


def test_early_stopping_holds_out_labelled_samples_only(partly, quick):
    X, y = partly
    params = TripletEmbedder(**quick, early_stopping=True).get_params()
    plan = plan_fit(params, X, y.astype(np.int32), np.random.RandomState(0))
    X_val, y_val, _ = plan.validation
    assert len(y_val) and (y_val >= 0).all()
    assert np.isin(np.flatnonzero(y == -1), plan.train_rows).all()


def test_partial_fit_and_grid_search_take_unlabelled_samples(partly, quick):
    X, y = partly
    emb = TripletEmbedder(**quick).partial_fit(X[:200], y[:200])
    emb.partial_fit(X[200:], y[200:])
    assert emb.n_iter_ == 2
    search = GridSearchCV(
        TripletEmbedder(**quick), {"unlabeled_weight": [0.0, 0.3]}, cv=2
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize(
    "y, message",
    [
        (np.array([-1, -1, -1, -1]), "Every one of the 4 samples is unlabelled"),
        (np.array(["a", "a", "b", -1], dtype=object), "mixes string labels with -1"),
        (np.array(["a", "a", "b", "-1"]), "mixes string labels with -1"),
        (np.array([0, 1, -1, -1]), "at least one class with two or more samples"),
    ],
)
def test_bad_partly_labelled_y_is_refused_with_what_is_wrong(y, message):
    X = np.random.RandomState(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match=re.escape(message)):
        TripletEmbedder(epochs=1).fit(X, y)
