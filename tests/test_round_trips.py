"""Every round trip a user makes, across processes: fit and save in one fresh
interpreter, load in another, on TensorFlow and on JAX, in each format.

Loading in the process that saved hides what a user hits: that process has
already imported and registered everything the file names.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from roundtrip import (
    CONTINUED,
    CROSS_BACKEND_FORMATS,
    FORMATS,
    KINDS,
    LABEL_KINDS,
    writes,
)

SCRIPT = Path(__file__).with_name("roundtrip.py")


def _loaded(loaded: Path) -> None:
    """Fail with what the loading process said when it could not load the file."""
    error = Path(f"{loaded}.error.txt")
    if error.exists():
        pytest.fail(f"{loaded.name} did not load: {error.read_text()}")


def _run(command: str, folder: Path, backends: list[str]) -> None:
    """``command`` in a fresh interpreter per backend, side by side (each
    writes its own files): most of their time is spent importing."""
    running = {
        backend: subprocess.Popen(
            [sys.executable, str(SCRIPT), command, str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3"),
        )
        for backend in backends
    }
    for backend, process in running.items():
        _, stderr = process.communicate()
        assert process.returncode == 0, f"{command} on {backend}:\n{stderr[-3000:]}"


def _backends() -> list[str]:
    backends = ["tensorflow"]
    try:
        import jax  # noqa: F401
    except ImportError:
        pass
    else:
        backends.append("jax")
    return backends


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Models saved by one interpreter per backend, loaded by another per backend."""
    folder = tmp_path_factory.mktemp("round_trips")
    _run("save", folder, _backends())
    _run("load", folder, _backends())
    return folder


CASES = [
    (writer, reader, kind, fmt)
    for writer in ("tensorflow", "jax")
    for reader in ("tensorflow", "jax")
    for kind in KINDS
    for fmt in (FORMATS if writer == reader else CROSS_BACKEND_FORMATS)
    if writes(writer, kind)
]


@pytest.mark.parametrize("writer, reader, kind, fmt", CASES)
def test_model_loads_in_a_new_process_and_transforms_as_fitted(
    folder, writer, reader, kind, fmt
):
    if not {writer, reader} <= set(_backends()):
        pytest.skip("JAX is not installed")
    stem = folder / f"{writer}-{kind}"
    loaded = folder / f"{writer}-{kind}.{fmt}.loaded-by-{reader}"
    _loaded(loaded)
    expected = np.load(f"{stem}.fitted.npy")
    got = np.load(f"{loaded}.npy")
    if writer == reader:
        np.testing.assert_array_equal(got, expected)
    else:  # the same weights, another backend's kernels and rounding
        np.testing.assert_allclose(
            got, expected, atol=1e-2 if kind.startswith("mixed") else 1e-5
        )
    assert json.loads(Path(f"{loaded}.json").read_text()) == json.loads(
        Path(f"{stem}.fitted.json").read_text()
    )
    if writer == reader:  # another backend's rounding may reorder near ties
        assert np.load(f"{loaded}.score.npy") == np.load(f"{stem}.score.npy")


# What the loading process trains again, beside the saving process: a user's
# Keras encoder (the ``encoder`` parameter, saved with its weights) refitted;
# each partial_fit-able kind continued in each format.
TRAINED_AGAIN = [
    (backend, kind, fmt, step)
    for backend in ("tensorflow", "jax")
    for kind, fmt, step in [("keras_model", "sktriplet", "refit")]
    + [(kind, fmt, "continued") for kind in CONTINUED + LABEL_KINDS for fmt in FORMATS]
    if writes(backend, kind)
]


@pytest.mark.parametrize("backend, kind, fmt, step", TRAINED_AGAIN)
def test_loaded_model_trains_on_as_the_saved_one(folder, backend, kind, fmt, step):
    """A model loaded in a new process trains exactly as the saving process
    trains its own: ``refit`` refits the original encoder; ``continued``
    (partial_fit) goes on with the same weights and optimizer state (Adam's
    step count and moments, stored in the file)."""
    if backend not in _backends():
        pytest.skip("JAX is not installed")
    stem = folder / f"{backend}-{kind}"
    _loaded(folder / f"{backend}-{kind}.{fmt}.loaded-by-{backend}")
    np.testing.assert_array_equal(
        np.load(f"{stem}.{fmt}.loaded-by-{backend}.{step}.npy"),
        np.load(f"{stem}.{step}.npy"),
    )
