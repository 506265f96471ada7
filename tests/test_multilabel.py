"""Multi-label targets: a binary indicator matrix, as scikit-learn's multi-label
estimators take.  A positive shares a label with its anchor, a negative none."""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_multilabel_classification
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import StandardScaler

from sktriplet import TripletEmbedder, mining
from sktriplet.holdout import validation_split
from sktriplet.metrics import mean_average_precision_at_r, precision_at_1
from sktriplet.sampling import ClassBalancedSampler

# Rows 0-1 share label 0, rows 1-2 label 1, row 3 has label 2 alone, row 4 none.
TOY = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])


def test_positives_share_a_label_and_negatives_none():
    positive, negative = mining._pair_masks(TOY)
    assert sorted(zip(*np.nonzero(positive))) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    # Rows 0 and 2 share no label although both share one with row 1.
    assert negative[0, 2] and negative[2, 0]
    # The row without a label is everyone's negative and nobody's positive.
    assert negative[4, :4].all() and negative[:4, 4].all() and not positive[4].any()
    assert not np.diagonal(negative).any()


def test_every_triplet_of_all_is_valid_under_the_multilabel_rule():
    a, p, n = mining.all_triplets(TOY)
    shares = TOY @ TOY.T > 0
    assert len(a) and shares[a, p].all() and not shares[a, n].any()
    assert not np.isin(4, a)  # no positive, so never an anchor


@pytest.mark.backend
@pytest.mark.parametrize("strategy", ["all", "hard", "semihard"])
def test_keras_loss_matches_the_reference_on_a_multilabel_batch(strategy):
    from keras import ops

    from sktriplet.keras import losses

    labels = np.random.RandomState(0).binomial(1, 0.3, size=(12, 4)).astype("uint8")
    e = np.random.RandomState(1).normal(size=(12, 5)).astype(np.float32)
    d = mining.pairwise_distances(e)
    triplets = mining.mine_triplets(labels, d, strategy)
    expected, _ = mining.triplet_margin_loss(d, triplets, 0.5)
    totals = losses.triplet_hinge_totals(
        labels, losses.distance_matrix(e), 0.5, strategy
    )
    hinge_sum, _, n_triplets = (float(ops.convert_to_numpy(t)) for t in totals)
    assert n_triplets == len(triplets[0]) > 0
    np.testing.assert_allclose(hinge_sum / n_triplets, expected, rtol=1e-4)


def test_batches_hold_groups_of_rows_that_share_a_label():
    Y = np.random.RandomState(0).binomial(1, 0.2, size=(200, 6))
    sampler = ClassBalancedSampler(Y, 24, 4, np.random.RandomState(0))
    k = sampler.samples_per_group
    for batch in sampler.epoch():
        for group in batch[: k * (sampler.n_groups - 1)].reshape(-1, k):
            assert Y[group].all(axis=0).any()  # one label common to the group
    # Rows without a label are drawn (as negatives) in the extra group.
    unlabelled = np.flatnonzero(Y.sum(axis=1) == 0)
    assert np.isin(unlabelled, sampler.epoch()).any()


def test_multilabel_map_at_r_counts_a_shared_label_as_relevant():
    X = [[0.0], [1.0], [2.5], [3.0], [4.5], [9.0]]
    Y = np.array([[1, 0], [1, 1], [0, 1], [1, 0], [0, 1], [0, 0]])
    # Query 0: R=2 (rows 1, 3), ranks 1 (hit) then 2 (miss): AP 0.5.  Query 1:
    # R=4, its 4 nearest all share a label: 1.  Queries 2 and 4: 0.25.  Query
    # 3: 0.  Row 5 shares no label: left out.
    assert mean_average_precision_at_r(X, Y) == pytest.approx(0.4)
    assert mean_average_precision_at_r(X, sp.csr_matrix(Y)) == pytest.approx(0.4)
    assert precision_at_1(X, Y) == pytest.approx(0.4)


def test_one_hot_labels_score_as_the_labels_themselves():
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(60, 3)), rng.randint(0, 4, 60)
    one_hot = np.eye(4, dtype=int)[y]
    assert mean_average_precision_at_r(X, one_hot) == mean_average_precision_at_r(X, y)


@pytest.fixture(scope="module")
def multilabel_split():
    X, Y = make_multilabel_classification(
        n_samples=900,
        n_features=20,
        n_classes=5,
        n_labels=2,
        length=100,
        random_state=0,
    )
    X_tr, X_te, Y_tr, Y_te = train_test_split(X, Y, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), Y_tr, Y_te


@pytest.mark.backend
def test_a_multilabel_fit_retrieves_rows_that_share_a_label(multilabel_split, quick):
    X_tr, X_te, Y_tr, Y_te = multilabel_split
    emb = TripletEmbedder(**{**quick, "epochs": 20}).fit(X_tr, Y_tr)
    untrained = TripletEmbedder(**{**quick, "epochs": 1, "learning_rate": 1e-9})
    baseline = untrained.fit(X_tr, Y_tr).score(X_te, Y_te)
    raw = mean_average_precision_at_r(X_te, Y_te)
    assert emb.score(X_te, Y_te) > max(raw, baseline) + 0.03
    assert emb.classes_.tolist() == [0, 1, 2, 3, 4]


def test_sparse_and_dense_indicators_fit_alike(multilabel_split, quick):
    X_tr, X_te, Y_tr, _ = multilabel_split
    dense = TripletEmbedder(**quick).fit(X_tr, Y_tr).transform(X_te)
    sparse = TripletEmbedder(**quick).fit(X_tr, sp.csr_matrix(Y_tr)).transform(X_te)
    np.testing.assert_array_equal(dense, sparse)


def test_partial_fit_and_early_stopping_take_a_multilabel_y(multilabel_split, quick):
    X_tr, X_te, Y_tr, _ = multilabel_split
    emb = TripletEmbedder(**quick).partial_fit(X_tr[:300], Y_tr[:300])
    emb.partial_fit(X_tr[300:], Y_tr[300:])
    assert emb.n_iter_ == 2
    stopped = TripletEmbedder(**{**quick, "early_stopping": True}).fit(X_tr, Y_tr)
    assert "val_map_at_r" in stopped.history_


def test_grid_search_scores_folds_with_the_multilabel_map_at_r(
    multilabel_split, quick, search_beats_untrained
):
    X_tr, _, Y_tr, _ = multilabel_split
    search_beats_untrained({"margin": [0.2, 0.5]}, X_tr, Y_tr, quick)


@pytest.mark.parametrize(
    "y, message",
    [
        (np.array([[0, 2], [1, 0], [1, 1], [0, 1]]), "not a binary label indicator"),
        (np.array([[1, -1], [1, 0], [0, 1], [-1, 1]]), "holding -1"),
        (np.array([["a", "b"], ["b", "a"], ["a", "a"], ["b", "b"]]), "holds 'a'"),
        (np.array([[1, 0], [1, 1], [1, 0], [1, 1]]), "Every sample has label 0"),
        (np.array([[1, 0], [0, 1], [0, 0], [0, 0]]), "no label of the 2 columns"),
    ],
)
def test_bad_indicator_matrices_are_refused_with_what_is_wrong(y, message):
    X = np.random.RandomState(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match=re.escape(message)):
        TripletEmbedder(epochs=1).fit(X, y)


@pytest.mark.parametrize(
    "label_sets",
    [[["a", "b"], ["b"], ["a"], ["a", "c"]], [{0, 1}, {1}, {0}, {0, 2}]],
)
def test_label_sets_are_refused_with_how_to_make_an_indicator(label_sets):
    X = np.random.RandomState(0).normal(size=(4, 3))
    with pytest.raises(ValueError, match=re.escape("MultiLabelBinarizer()")):
        TripletEmbedder(epochs=1).fit(X, label_sets)


def test_partial_fit_keeps_to_one_kind_and_number_of_labels(multilabel_split, quick):
    X_tr, _, Y_tr, _ = multilabel_split
    emb = TripletEmbedder(**quick).partial_fit(X_tr, Y_tr)
    with pytest.raises(ValueError, match="fitted on a multi-label y"):
        emb.partial_fit(X_tr, Y_tr.argmax(axis=1))
    with pytest.raises(ValueError, match="y has 4 label columns"):
        emb.partial_fit(X_tr, Y_tr[:, :4])


def test_class_disjoint_validation_needs_one_label_per_sample():
    Y = np.random.RandomState(0).binomial(1, 0.5, size=(40, 3))
    with pytest.raises(ValueError, match="validation_strategy='class_disjoint'"):
        validation_split(Y, 0.2, "class_disjoint", np.random.RandomState(0))


SPARSE_FORMATS = [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.lil_matrix]


def test_score_takes_y_in_every_form_fit_takes(multilabel_split, quick):
    pd = pytest.importorskip("pandas")
    X_tr, X_te, Y_tr, Y_te = multilabel_split
    emb = TripletEmbedder(**quick).fit(X_tr, sp.csr_matrix(Y_tr))
    expected = emb.score(X_te, Y_te)
    for form in [*SPARSE_FORMATS, pd.DataFrame, lambda Y: Y.tolist()]:
        assert emb.score(X_te, form(Y_te)) == expected, form


@pytest.mark.parametrize("to_sparse", [sp.csr_matrix, sp.csc_matrix])
def test_search_scores_a_sparse_y_as_the_dense_one(multilabel_split, quick, to_sparse):
    """GridSearchCV on a sparse indicator y scores every fold, finitely, exactly
    as on the dense y (not NaN with a warning), and cross_val_score gives the
    same fold scores.  scikit-learn's cross_val_score itself refuses a sparse
    y with an error naming it, before any fit."""
    from sklearn.model_selection import cross_val_score
    from sklearn.utils._param_validation import InvalidParameterError

    X_tr, _, Y_tr, _ = multilabel_split
    est = TripletEmbedder(**{**quick, "epochs": 2})
    results = {}
    for name, Y in (("dense", Y_tr), ("sparse", to_sparse(Y_tr))):
        search = GridSearchCV(est, {"margin": [0.2, 0.5]}, cv=2, error_score="raise")
        results[name] = search.fit(X_tr, Y).cv_results_
    for key in ("split0_test_score", "split1_test_score"):
        assert np.isfinite(results["sparse"][key]).all()
        np.testing.assert_array_equal(results["sparse"][key], results["dense"][key])
    folds = cross_val_score(est.set_params(margin=0.5), X_tr, Y_tr, cv=2)
    np.testing.assert_array_equal(
        folds, [results["sparse"][f"split{i}_test_score"][1] for i in (0, 1)]
    )
    with pytest.raises(InvalidParameterError, match="The 'y' parameter"):
        cross_val_score(est, X_tr, to_sparse(Y_tr), cv=2)


def test_equal_length_label_lists_are_refused_as_label_sets():
    """Lists of labels per sample are refused whatever their lengths, with the
    message of the errors page; lists of 0 and 1 are rows of an indicator."""
    X = np.random.RandomState(0).normal(size=(4, 3))
    for label_lists in ([["a", "b"], ["b", "c"], ["a", "c"], ["c", "a"]],
                        [[1, 2], [2, 3], [1, 3], [3, 1]]):  # fmt: skip
        with pytest.raises(ValueError, match="y holds a collection of labels per"):
            TripletEmbedder(epochs=1).fit(X, label_lists)
    rows = [[1, 0], [1, 1], [0, 1], [0, 1]]
    emb = TripletEmbedder(epochs=1, random_state=0)
    np.testing.assert_array_equal(
        emb.fit(X, rows).transform(X),
        TripletEmbedder(epochs=1, random_state=0).fit(X, np.array(rows)).transform(X),
    )


def test_class_disjoint_with_a_multilabel_y_is_refused_at_any_size():
    """Above 10000 samples, early_stopping="auto" turns on: a class-disjoint
    split of a multi-label y is refused there too, not silently dropped."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(10_001, 3)).astype(np.float32)
    Y = rng.binomial(1, 0.5, size=(10_001, 3))
    emb = TripletEmbedder(validation_strategy="class_disjoint", epochs=1)
    with pytest.raises(ValueError, match="validation_strategy='class_disjoint'"):
        emb.fit(X, Y)
    with pytest.raises(ValueError, match="validation_strategy='class_disjoint'"):
        emb.fit(X[:100], Y[:100])
