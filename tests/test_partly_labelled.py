"""Partly labelled y: -1 marks an unlabelled sample, as in sklearn.semi_supervised."""

import re

import numpy as np
import pytest

from sktriplet import TripletEmbedder
from sktriplet._plan import plan_fit
from sktriplet._self_training import _knn_graph, pseudo_labels
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

    from sktriplet.keras.pairs import pair_masks as _pair_masks

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
    y = y.astype(np.int32)
    plan = plan_fit(params, X, y, np.random.RandomState(0))
    assert plan.unlabeled_weight is None
    _, labels = next(plan.batches.blocks(X, y, plan.train_rows))
    assert (labels >= 0).all()  # no views
    low = TripletEmbedder(**quick, unlabeled_weight=0.0, pseudo_label_rounds=0)
    high = TripletEmbedder(**quick, unlabeled_weight=5.0, pseudo_label_rounds=2)
    np.testing.assert_array_equal(
        low.fit(X, y).transform(X), high.fit(X, y).transform(X)
    )


def test_pseudo_labels_only_where_the_spreading_reached_and_neighbours_agree():
    # Two tight clusters with one labelled sample each, and a sample halfway.
    rng = np.random.RandomState(0)
    embedding = np.r_[np.zeros((12, 2)), np.ones((12, 2)), [[0.5, 0.5]]]
    embedding[:24] += rng.normal(scale=0.01, size=(24, 2))
    y = np.full(25, -1)
    y[0], y[12] = 0, 1
    y_pseudo = pseudo_labels(embedding, y)
    assert y_pseudo[0] == 0 and y_pseudo[12] == 1
    assert (y_pseudo[1:12] == 0).sum() > 5  # sample 0 spreads its label
    # Here no other sample counts sample 12 among its 7 nearest neighbours, so
    # its label reaches none of them: they stay unlabelled rather than take
    # class 0, which LabelSpreading's transduction_ gives them.
    assert set(y_pseudo[13:24]) == {-1}
    assert y_pseudo[24] == -1  # its neighbours lie in both clusters


def test_the_spreading_graph_is_that_of_labelspreadings_knn_kernel():
    from sklearn.neighbors import NearestNeighbors

    X = np.random.RandomState(0).normal(size=(50, 4))
    nearest = NearestNeighbors(n_neighbors=10).fit(X).kneighbors(return_distance=False)
    graph = _knn_graph(nearest, 7)(X, X)
    # What kernel="knn" builds: each sample and its 6 nearest others.
    expected = NearestNeighbors(n_neighbors=7).fit(X).kneighbors_graph(X)
    assert (graph != expected).nnz == 0


def test_self_training_trains_again_on_pseudo_labels_holding_out_the_same_rows(
    partly, quick, monkeypatch
):
    from sktriplet import _self_training as self_training
    from sktriplet.keras import training

    plans, rounds = [], []

    def record_plan(plan, X, y, fitted=None):
        plans.append(plan)
        return fit_encoder(plan, X, y, fitted)

    def record_round(embedding, y):
        rounds.append((y, pseudo_labels(embedding, y)))
        return rounds[-1][1]

    fit_encoder = training.fit_encoder
    monkeypatch.setattr(training, "fit_encoder", record_plan)
    monkeypatch.setattr(self_training, "pseudo_labels", record_round)
    X, y = partly
    TripletEmbedder(**quick, early_stopping=True).fit(X, y)
    assert len(plans) == 2 and len(rounds) == 1
    np.testing.assert_array_equal(plans[0].train_rows, plans[1].train_rows)
    np.testing.assert_array_equal(plans[0].validation_rows, plans[1].validation_rows)
    y_in, y_out = rounds[0]
    assert len(y_in) == len(plans[0].train_rows)
    labelled = y_in != -1
    np.testing.assert_array_equal(y_out[labelled], y_in[labelled])
    assert (y_out[~labelled] != -1).sum() > 0.5 * (~labelled).sum()

    plans.clear()
    TripletEmbedder(**quick, pseudo_label_rounds=0).fit(X, y)
    assert len(plans) == 1

    # Above MAX_SELF_TRAINING_SAMPLES training rows, a random share of them is
    # labelled over, the same one for the same random_state.
    rounds.clear()
    monkeypatch.setattr(self_training, "MAX_SELF_TRAINING_SAMPLES", 150)
    fits = [TripletEmbedder(**quick).fit(X, y).transform(X) for _ in range(2)]
    assert [len(y_in) for y_in, _ in rounds] == [150, 150]
    np.testing.assert_array_equal(rounds[0][1], rounds[1][1])
    np.testing.assert_array_equal(*fits)


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
    y_val = y[plan.validation_rows]
    assert len(y_val) and (y_val >= 0).all()
    assert np.isin(np.flatnonzero(y == -1), plan.train_rows).all()


def test_partial_fit_and_grid_search_take_unlabelled_samples(
    partly, quick, search_beats_untrained
):
    X, y = partly
    emb = TripletEmbedder(**quick).partial_fit(X[:200], y[:200])
    emb.partial_fit(X[200:], y[200:])
    assert emb.n_iter_ == 2
    # At 7 labelled rows a class the network starts from the raw geometry,
    # which 3 epochs do not yet improve on: 30 do (held-out MAP@R 0.77 against
    # the start's 0.67).
    search_beats_untrained(
        {"unlabeled_weight": [0.0, 0.3]}, X, y, {**quick, "epochs": 30}
    )


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


def test_pseudo_labels_are_right_and_the_fit_embeds_held_out_data(
    monkeypatch, all_digits
):
    """A quarter of 900 digits labelled: the self-training round labels most
    unlabelled rows with their true class, and the embedding of 400 held-out
    digits retrieves far better than the raw pixels and the untrained network."""
    from sklearn.base import clone

    from sktriplet import _self_training as self_training
    from sktriplet.metrics import mean_average_precision_at_r

    X, y = all_digits
    X_tr, X_te, y_tr, y_te = X[:900], X[900:1300], y[:900], y[900:1300]
    y_part = np.where(np.arange(900) % 4 == 0, y_tr, -1)
    rounds = []

    def record(embedding, y_in):
        rounds.append((y_in, pseudo_labels(embedding, y_in)))
        return rounds[-1][1]

    monkeypatch.setattr(self_training, "pseudo_labels", record)
    params = dict(epochs=30, hidden_layer_sizes=(64,), random_state=0, device="cpu")
    emb = TripletEmbedder(**params).fit(X_tr, y_part)
    (y_in, y_out), *_ = rounds
    taken = (y_in == -1) & (y_out != -1)
    assert taken.sum() > 0.3 * (y_in == -1).sum()
    assert np.mean(y_out[taken] == y_tr[taken]) > 0.95
    untrained = clone(emb).set_params(learning_rate=1e-12).fit(X_tr, y_part)
    baseline = max(untrained.score(X_te, y_te), mean_average_precision_at_r(X_te, y_te))
    assert emb.score(X_te, y_te) > baseline + 0.2
