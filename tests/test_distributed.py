"""Searches on a real dask.distributed cluster; tf.distribute on two logical CPUs."""

import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from sktriplet import TripletEmbedder


def test_grid_search_on_a_dask_cluster_matches_one_process(digits):
    distributed = pytest.importorskip("distributed")
    X, y = digits[0][:240], digits[1][:240]
    grid = {"margin": [0.05, 0.5, 2.0], "mining": ["semihard", "hard"]}
    estimator = TripletEmbedder(epochs=3, hidden_layer_sizes=(32,), random_state=0)
    serial = GridSearchCV(estimator, grid, cv=2, n_jobs=1).fit(X, y)

    # One thread per worker process, so that TensorFlow does not oversubscribe.
    worker_env = {
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=worker_env,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with joblib.parallel_backend("dask"):
            spread = GridSearchCV(estimator, grid, cv=2, n_jobs=-1).fit(X, y)
        workers_used = len(client.scheduler_info()["workers"])
    assert workers_used == 2
    assert spread.best_params_ == serial.best_params_
    np.testing.assert_allclose(
        spread.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )


MIRRORED = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
two_cpus = [tf.config.LogicalDeviceConfiguration()] * 2
tf.config.set_logical_device_configuration(cpu, two_cpus)
import numpy as np
from sklearn.datasets import load_digits, make_classification
from sktriplet import TripletEmbedder
from sktriplet.keras import build_mlp_encoder
X, y = load_digits(return_X_y=True)
X, y = (X / 16)[:400], y[:400]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
for case in sys.argv[1:]:
    mining, layers = case.split("-")
    # A given encoder trains without XLA (the default MLP's is compiled with
    # XLA, which a strategy turns off): the comparison is of the distribution
    # alone.  With batch normalisation, synchronised across replicas, the
    # moments are sums over replicas, rounded differently from one device's:
    # a looser tolerance.
    bn = layers == "batch_norm"
    encoder = lambda: build_mlp_encoder(
        (64,), (32,), 32, False, seed=0, batch_norm=bn, synchronized=bn
    )
    params = dict(epochs=4, encoder=encoder, random_state=0, mining=mining)
    one = TripletEmbedder(**params).fit(X, y)
    two = TripletEmbedder(strategy=strategy, **params).fit(X, y)
    # Losses per epoch agree to 1e-5 (unsynchronised moments would give losses
    # 10% apart).  The embeddings agree to 1e-3: the replicas' gradients are
    # summed in another order than one device's, and after four epochs of
    # semi-hard mining, whose choice of negative flips on such rounding, they
    # drift by about 2e-4.
    np.testing.assert_allclose(
        two.history_["loss"], one.history_["loss"], rtol=1e-3 if bn else 1e-5
    )
    np.testing.assert_allclose(
        two.transform(X), one.transform(X), atol=1e-2 if bn else 1e-3
    )
    print("same", case)
# An epoch of 8 batches or more, which runs several steps per call without a
# strategy, trains under one too.
X, y = make_classification(2600, n_features=20, n_informative=10, n_classes=10)
encoder = lambda: build_mlp_encoder((20,), (32,), 32, False, seed=0)
TripletEmbedder(epochs=1, encoder=encoder, strategy=strategy).fit(X, y)
print("trained 10 batches")
"""


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    """Semi-hard and all-triplets mining, with plain layers and with
    synchronised batch normalisation: one interpreter, whose two logical CPUs
    must be set before TensorFlow starts."""
    pytest.importorskip("tensorflow")
    cases = ["semihard-plain", "all-plain", "semihard-batch_norm"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    out = subprocess.run(
        [sys.executable, "-c", MIRRORED, *cases],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == [
        *(word for c in cases for word in ("same", c)),
        *("trained", "10", "batches"),
    ]
