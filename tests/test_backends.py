"""The tests whose results depend on the Keras backend, run again on JAX.

In a file of its own, so that the parallel test run starts it beside the others.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_core_tests_pass_on_the_jax_backend():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    check = subprocess.run(
        [sys.executable, "-c", "import keras; print(keras.backend.backend())"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert check.stdout.strip() == "jax"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",  # one process: the outer run already fills the cores
            "tests/test_losses.py",
            "tests/test_estimator.py",
            "tests/test_images.py",
            "tests/test_training.py",
            "-m",
            "backend",
            "-k",
            "not resnet",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-3000:]
