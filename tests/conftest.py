"""Fixtures shared by the test modules: small data, and parameters for quick fits."""

import os
from types import MappingProxyType

import pytest

# Quiet TensorFlow's C++ start-up log; it says nothing about our code.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "gpu: needs a GPU that the Keras backend sees (skipped without)"
    )
    config.addinivalue_line(
        "markers",
        "backend: runs Keras code whose results depend on the backend; "
        "tests/test_backends.py runs these again on JAX",
    )


# The modules that take longest, longest first: pytest-xdist hands out whole
# files (--dist loadfile) in collection order (--no-loadscope-reorder), and a
# long file handed out last leaves the other workers idle while it runs.  Most
# of these start whole processes (a JAX run of the backend tests, saves and
# loads, the docs build, the launcher, the CLI).
LONGEST_FIRST = (
    "test_training.py",
    "test_backends.py",
    "test_round_trips.py",
    "test_docs.py",
    "test_launch.py",
    "test_cli.py",
    "test_estimator.py",
    "test_distributed.py",
)


def _start_rank(item) -> int:
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_start_rank)  # stable: the order within a file stays
    gpu_tests = [item for item in items if "gpu" in item.keywords]
    if not gpu_tests:
        return
    from sktriplet.keras.devices import gpu_count

    if gpu_count() == 0:
        skip = pytest.mark.skip(reason="no GPU visible to the Keras backend")
        for item in gpu_tests:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def all_digits():
    """The 1797 digits (8x8 pixels as 64 features, scaled to [0, 1]) and their
    labels, read-only: the one place the tests load them."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X.flags.writeable = y.flags.writeable = False
    return X, y


@pytest.fixture(scope="session")
def digits(all_digits):
    """The first 400 digits: small enough for a fit in a second."""
    X, y = all_digits
    return X[:400], y[:400]


@pytest.fixture(scope="session")
def quick():
    """Parameters of a fit that takes about a second: a small network, three
    epochs, a fixed seed, on the CPU (where a fixed seed gives bit-identical
    results).  Read-only: ``{**quick, "epochs": 1}`` changes one."""
    return MappingProxyType(
        dict(epochs=3, hidden_layer_sizes=(32,), random_state=0, device="cpu")
    )


@pytest.fixture(scope="session")
def search_beats_untrained():
    """``check(grid, X, y, params)``: a grid search of TripletEmbedder(**params)
    scores every candidate's held-out MAP@R above the same search on a network
    that never trains (learning rate 1e-12), by more than 0.02; returns the
    search.  A test that checked only that the scores are finite would pass on
    a broken model."""
    from sklearn.model_selection import GridSearchCV

    from sktriplet import TripletEmbedder

    def check(grid, X, y, params):
        search = GridSearchCV(TripletEmbedder(**params), grid, cv=2).fit(X, y)
        untrained = TripletEmbedder(**{**params, "learning_rate": 1e-12})
        baseline = GridSearchCV(untrained, grid, cv=2).fit(X, y)
        scores = search.cv_results_["mean_test_score"]
        floor = baseline.cv_results_["mean_test_score"] + 0.02
        assert (scores > floor).all(), (scores, floor)
        return search

    return check
