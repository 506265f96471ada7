"""Every bad input gets the conventional exception with a message naming the problem.

Each case here is a row of the table in docs/errors.rst.
"""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import NotFittedError

from sktriplet import TripletEmbedder

RNG = np.random.RandomState(0)
X = RNG.normal(size=(60, 5))
Y = np.arange(60) % 3


def _with(a, index, value):
    a = a.astype(float)
    a[index] = value
    return a


FIT_CASES = {
    "nan in X": (_with(X, (0, 0), np.nan), Y, ValueError, "Input X contains NaN"),
    "inf in X": (_with(X, (0, 0), np.inf), Y, ValueError, "Input X contains infinity"),
    "nan in y": (X, _with(Y, 0, np.nan), ValueError, "Input y contains NaN"),
    "beyond float32's range": (
        _with(X, (0, 0), 1e39),
        Y,
        ValueError,
        "X holds values beyond float32's range",
    ),
    "continuous y": (
        X,
        RNG.normal(size=60),
        ValueError,
        "Unknown label type: continuous",
    ),
    "single class": (
        X,
        np.full(60, 3),
        ValueError,
        "needs samples of at least two classes to form triplets; y has 1 class: 3.",
    ),
    "single class of strings": (
        X,
        np.full(60, "cat"),
        ValueError,
        "y has 1 class: 'cat'.",
    ),
    "no positive pair": (
        X[:5],
        np.arange(5),
        ValueError,
        "at least one class with two or more samples",
    ),
    "len(y) != len(X)": (X, Y[:-1], ValueError, "inconsistent numbers of samples"),
    "empty X": (X[:0], Y[:0], ValueError, "Found array with 0 sample(s)"),
    "1-D X": (X[:, 0], Y, ValueError, "Expected 2D array, got 1D array instead"),
    "5-D X for the default encoders": (
        X.reshape(60, 5, 1, 1, 1),
        Y,
        ValueError,
        "X has 5 dimensions",
    ),
    "channels-first images": (
        np.zeros((60, 3, 8, 8)),
        Y,
        ValueError,
        "which looks like channels-first images",
    ),
    "channels-first images whose width is a channel count": (
        np.zeros((60, 3, 4, 4)),
        Y,
        ValueError,
        "X has shape (60, 3, 4, 4), which looks like channels-first images (3 "
        "channels of 4x4 pixels)",
    ),
    "strings in X": (
        np.full((60, 5), "a", dtype=object),
        Y,
        ValueError,
        "could not convert string to float",
    ),
    "sparse X": (sp.csr_matrix(X), Y, TypeError, "Sparse data was passed"),
    "y is None": (X, None, ValueError, "requires y to be passed"),
    "one sample": (X[:1], Y[:1], ValueError, "minimum of 2 is required"),
}


@pytest.mark.parametrize("case", FIT_CASES, ids=list(FIT_CASES))
def test_bad_training_data(case, quick):
    X_bad, y_bad, error, message = FIT_CASES[case]
    with pytest.raises(error, match=re.escape(message)):
        TripletEmbedder(**quick).fit(X_bad, y_bad)


PARAM_CASES = {
    "margin <= 0": ({"margin": 0.0}, "margin"),
    "unknown mining": ({"mining": "hardest"}, "mining"),
    "unknown distance": ({"distance": "l1"}, "distance"),
    "epochs = 0": ({"epochs": 0}, "epochs"),
    "n_components = 0": ({"n_components": 0}, "n_components"),
    "n_components not an int": ({"n_components": 2.5}, "n_components"),
    "learning_rate <= 0": ({"learning_rate": -1.0}, "learning_rate"),
    "unknown learning_rate_schedule": (
        {"learning_rate_schedule": "step"},
        "learning_rate_schedule",
    ),
    "batch_size = 1": ({"batch_size": 1}, "batch_size"),
    "samples_per_class = 1": ({"samples_per_class": 1}, "samples_per_class"),
    "validation_fraction = 1": ({"validation_fraction": 1.0}, "validation_fraction"),
    "unknown validation_strategy": (
        {"validation_strategy": "x"},
        "validation_strategy",
    ),
    "n_iter_no_change = 0": ({"n_iter_no_change": 0}, "n_iter_no_change"),
    "encoder not callable": ({"encoder": "resnet"}, "encoder"),
    "callbacks not a list": ({"callbacks": "stop"}, "callbacks"),
    "normalize not a bool": ({"normalize": "yes"}, "normalize"),
    "margin < 0": ({"margin": -1.0}, "margin"),
    "input_noise < 0": ({"input_noise": -0.1}, "input_noise"),
    "input_noise not a number": ({"input_noise": "on"}, "input_noise"),
    "weight_decay < 0": ({"weight_decay": -0.1}, "weight_decay"),
    "weight_decay not a number": ({"weight_decay": "on"}, "weight_decay"),
}


@pytest.mark.parametrize("case", PARAM_CASES, ids=list(PARAM_CASES))
def test_invalid_parameter(case, quick):
    params, name = PARAM_CASES[case]
    with pytest.raises(ValueError, match=f"The '{name}' parameter of TripletEmbedder"):
        TripletEmbedder(**{**quick, **params}).fit(X, Y)


def test_hidden_layer_sizes_of_positive_integers_only(quick):
    with pytest.raises(
        ValueError, match="hidden_layer_sizes must be a sequence of positive"
    ):
        TripletEmbedder(**{**quick, "hidden_layer_sizes": (16, 0)}).fit(X, Y)


def test_embedding_of_size_one_with_normalize_warns(quick):
    with pytest.warns(UserWarning, match="embedding of size 1 with normalize=True"):
        TripletEmbedder(n_components=1, **quick).fit(X, Y)


def test_batch_larger_than_the_data(quick):
    with pytest.raises(
        ValueError, match=re.escape("batch_size=100 is larger than the 60")
    ):
        TripletEmbedder(batch_size=100, **quick).fit(X, Y)


@pytest.fixture(scope="module")
def fitted(quick):
    return TripletEmbedder(**quick).fit(X, Y)


def test_transform_with_the_wrong_number_of_features(fitted):
    msg = "X has 4 features, but TripletEmbedder is expecting 5 features as input"
    with pytest.raises(ValueError, match=re.escape(msg)):
        fitted.transform(X[:, :4])


@pytest.mark.parametrize("method", ["transform", "score"])
def test_use_before_fit(method):
    args = (X,) if method == "transform" else (X, Y)
    with pytest.raises(
        NotFittedError, match="This TripletEmbedder instance is not fitted"
    ):
        getattr(TripletEmbedder(), method)(*args)


def test_transform_rejects_nan(fitted):
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.transform(_with(X, (1, 1), np.nan))


def test_validation_set_too_small_for_early_stopping(quick):
    with pytest.raises(ValueError, match="early_stopping needs a validation set"):
        TripletEmbedder(early_stopping=True, validation_fraction=0.01, **quick).fit(
            X, Y
        )


finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    hnp.arrays(
        np.float64, st.tuples(st.integers(2, 30), st.integers(1, 4)), elements=finite
    ),
    st.data(),
)
def test_any_labelled_finite_data_fits_or_gets_a_value_error(quick, X_any, data):
    """Random data either trains to a finite embedding or fails with a clear error."""
    y_any = np.asarray(
        data.draw(st.lists(st.integers(0, 3), min_size=len(X_any), max_size=len(X_any)))
    )
    emb = TripletEmbedder(n_components=2, **quick)
    try:
        emb.fit(X_any, y_any)
    except ValueError as exc:
        # Only the two label checks can refuse finite data of 2 to 30 rows.
        expected = (
            "TripletEmbedder needs samples of at least two classes",
            "TripletEmbedder needs at least one class with two or more samples",
        )
        assert str(exc).startswith(expected), str(exc)
        return
    E = emb.transform(X_any)
    assert E.shape == (len(X_any), 2) and np.all(np.isfinite(E))
