"""TripletEmbedder inside Pipeline, GridSearchCV and cross_val_score; persistence."""

import pickle
import subprocess
import sys
import textwrap

import joblib
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


@pytest.mark.parametrize("dump, load", [(pickle.dumps, pickle.loads), (None, None)])
def test_round_trip_in_the_same_process(digits, tmp_path, dump, load):
    X, y = digits
    emb = TripletEmbedder(**QUICK).fit(X, y)
    if dump is None:
        joblib.dump(emb, tmp_path / "emb.joblib")
        restored = joblib.load(tmp_path / "emb.joblib")
    else:
        restored = load(dump(emb))
    np.testing.assert_array_equal(restored.transform(X), emb.transform(X))
    assert restored.score(X, y) == emb.score(X, y)


@pytest.mark.parametrize("encoder", ["default", "custom"])
def test_pickle_in_one_process_transforms_identically_in_another(
    digits, tmp_path, encoder
):
    X, y = digits
    X = X / 16.0
    params = dict(QUICK)
    if encoder == "custom":
        params.update(encoder=_custom_encoder())
    emb = TripletEmbedder(**params).fit(X, y)
    path = tmp_path / "emb.pkl"
    path.write_bytes(pickle.dumps(emb))
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(
        f"""
        import pickle, numpy as np
        emb = pickle.loads(open({str(path)!r}, "rb").read())
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "E.npy")!r}, emb.transform(X))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "E.npy"), emb.transform(X))


def _custom_encoder():
    """A custom encoder that is not a plain Dense stack: it goes through Keras."""
    import keras

    inputs = keras.Input((64,))
    h = keras.layers.Dense(16, activation="gelu")(inputs)
    h = keras.layers.Dropout(0.1, seed=0)(h)
    return keras.Model(inputs, keras.layers.Dense(8)(h))
