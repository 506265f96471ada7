"""TripletEmbedder inside Pipeline, GridSearchCV and cross_val_score; persistence."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktriplet import TripletEmbedder

QUICK = dict(epochs=3, hidden_layer_sizes=(32,), random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


def test_pipeline_into_a_classifier(digits):
    X, y = digits
    pipe = make_pipeline(
        StandardScaler(), TripletEmbedder(**QUICK), KNeighborsClassifier()
    )
    assert pipe.fit(X, y).score(X, y) > 0.8


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_over_margin_picks_by_score(digits, n_jobs):
    X, y = digits
    search = GridSearchCV(
        make_pipeline(StandardScaler(), TripletEmbedder(**QUICK)),
        {"tripletembedder__margin": [0.1, 0.5, 1.0]},
        cv=3,
        n_jobs=n_jobs,
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.all((0 < scores) & (scores <= 1))
    best = search.cv_results_["params"][int(np.argmax(scores))]
    assert search.best_params_ == best


def test_grid_search_is_the_same_with_one_or_two_jobs(digits):
    X, y = digits
    results = [
        cross_val_score(
            make_pipeline(StandardScaler(), TripletEmbedder(**QUICK)),
            X,
            y,
            cv=2,
            n_jobs=n_jobs,
        )
        for n_jobs in (1, 2)
    ]
    np.testing.assert_array_equal(*results)
