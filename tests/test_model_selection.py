"""TripletEmbedder inside Pipeline, GridSearchCV and cross_val_score; persistence."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktriplet import TripletEmbedder


def test_pipeline_into_a_classifier(digits, quick):
    """Held out, the classifier on the learned embedding beats the same
    pipeline whose network is left untrained (learning rate 1e-12), which at
    20 rows a class is the raw geometry the network starts from, and the
    classifier on the scaled features."""
    X, y = digits
    trained = make_pipeline(
        StandardScaler(),
        TripletEmbedder(**{**quick, "epochs": 30}),
        KNeighborsClassifier(n_neighbors=1),
    )
    untrained = clone(trained).set_params(tripletembedder__learning_rate=1e-12)
    raw = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1))
    accuracy = trained.fit(X[:200], y[:200]).score(X[200:], y[200:])
    baseline = untrained.fit(X[:200], y[:200]).score(X[200:], y[200:])
    raw_accuracy = raw.fit(X[:200], y[:200]).score(X[200:], y[200:])
    assert accuracy > max(baseline, raw_accuracy), (
        accuracy,
        baseline,
        raw_accuracy,
    )


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_over_margin_picks_by_score(digits, n_jobs, quick):
    X, y = digits
    search = GridSearchCV(
        make_pipeline(StandardScaler(), TripletEmbedder(**quick)),
        {"tripletembedder__margin": [0.1, 0.5, 1.0]},
        cv=3,
        n_jobs=n_jobs,
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    best = search.cv_results_["params"][int(np.argmax(scores))]
    assert search.best_params_ == best
    # Each score is the held-out MAP@R of its fold, as score() computes it.
    first_fold = next(iter(KFold(3).split(X, y)))
    refit = clone(search.estimator).set_params(**search.cv_results_["params"][0])
    train, test = first_fold
    assert search.cv_results_["split0_test_score"][0] == pytest.approx(
        refit.fit(X[train], y[train]).score(X[test], y[test])
    )


def test_grid_search_is_the_same_with_one_or_two_jobs(digits, quick):
    X, y = digits
    results = [
        cross_val_score(
            make_pipeline(StandardScaler(), TripletEmbedder(**quick)),
            X,
            y,
            cv=2,
            n_jobs=n_jobs,
        )
        for n_jobs in (1, 2)
    ]
    np.testing.assert_array_equal(*results)
