"""Data-parallel training across processes (sktriplet.launch), on one machine:
two local processes joined by JAX's multi-process runtime."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")

WORKER = str(Path(__file__).with_name("data_parallel.py"))


def _run(command, timeout=300, xla_flags=""):
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": xla_flags,
           "TF_CPP_MIN_LOG_LEVEL": "3"}  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env
    )


def _launch(*args, timeout=300):
    return _run([sys.executable, "-m", "sktriplet.launch", *args], timeout)


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """The worker's fit as two processes; in one process over two devices (the
    same partition of every batch); in one process on one device."""
    out = tmp_path_factory.mktemp("data_parallel")
    two = _launch("--processes", "2", WORKER, str(out), "processes")
    assert two.returncode == 0, two.stderr[-3000:]
    flag = "--xla_force_host_platform_device_count=2"
    devices = _run([sys.executable, WORKER, str(out), "devices"], xla_flags=flag)
    assert devices.returncode == 0, devices.stderr[-3000:]
    one = _run([sys.executable, WORKER, str(out), "one"])
    assert one.returncode == 0, one.stderr[-3000:]
    names = ("processes-0", "processes-1", "devices-0", "one-0")
    return {name: np.load(out / f"{name}.npz") for name in names}


def test_two_processes_train_exactly_as_one_process_on_two_devices(fits):
    """Each process reads its half of every batch, and Keras assembles the
    global batch, whose triplets are mined together: the fit, and a
    partial_fit after it, are bit for bit those of a single process that lays
    each batch over two devices."""
    for process in ("processes-0", "processes-1"):
        for key in ("loss", "embedding", "continued"):
            np.testing.assert_array_equal(fits[process][key], fits["devices-0"][key])


def test_two_processes_lose_as_one_device_does(fits):
    """Against one device, only the order of float sums differs (the
    gradients' all-reduce), which Adam amplifies where a gradient is near 0:
    the losses per epoch agree to 2e-3."""
    np.testing.assert_allclose(
        fits["processes-0"]["loss"], fits["one-0"]["loss"], rtol=2e-3
    )


def test_a_lost_process_stops_the_fit_with_an_error_that_names_it(tmp_path):
    start = time.monotonic()
    args = (WORKER, str(tmp_path), "lost", "--die-after-epoch", "1")
    run = _launch("--processes", "2", *args)
    assert run.returncode == 1
    message = "process 1 of 2 was killed by SIGKILL; stopped the 1 other process"
    assert message in run.stderr, run.stderr[-3000:]
    assert "Traceback" not in run.stderr.split("sktriplet launch:")[-1]
    assert time.monotonic() - start < 120
    assert not list(tmp_path.iterdir())  # no process finished the fit


def test_launcher_refuses_a_missing_script_in_one_line(tmp_path):
    run = _launch("--processes", "2", str(tmp_path / "nope.py"), timeout=60)
    assert run.returncode == 2
    assert f"no script at {tmp_path / 'nope.py'}" in run.stderr
    assert "Traceback" not in run.stderr
