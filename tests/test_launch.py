"""Data-parallel training across processes (sktriplet.launch), on one machine:
two local processes joined by JAX's multi-process runtime."""

import os
import re
import signal
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
    # Process 0 fails too once its collective loses process 1, sometimes
    # before the launcher stops it: the line blames process 1 either way.
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "sktriplet launch: process 1 of 2 was killed by SIGKILL; "
    ), run.stderr[-3000:]
    assert "Traceback" not in run.stderr.split("sktriplet launch:")[-1]
    assert time.monotonic() - start < 120
    assert not list(tmp_path.iterdir())  # no process finished the fit


def test_launcher_refuses_a_missing_script_in_one_line(tmp_path):
    run = _launch("--processes", "2", str(tmp_path / "nope.py"), timeout=60)
    assert run.returncode == 2
    assert f"no script at {tmp_path / 'nope.py'}" in run.stderr
    assert "Traceback" not in run.stderr


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(
        "from sktriplet import launch\nprocess, processes = launch.initialize()\n"
        + body
    )
    return str(path)


def test_a_script_that_raises_ends_the_run_at_once_and_says_why(tmp_path):
    """Process 1 raises while process 0 is busy (blocked in a collective in a
    real fit): the run ends within seconds, not when process 0 finishes, and
    the launcher's one line names the process and the exception.  The script
    runs on JAX even when the user's environment names another backend
    (issue 44, item 5)."""
    script = _script(
        tmp_path,
        "import time, keras\n"
        "open(f'{__file__}.{process}.backend', 'w').write(keras.backend.backend())\n"
        "if process == 1:\n"
        "    raise RuntimeError('bad data in process 1')\n"
        "time.sleep(600)\n",
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "sktriplet.launch", "--processes", "2", script],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert time.monotonic() - start < 60
    assert run.returncode == 1
    line = run.stderr.strip().splitlines()[-1]
    assert line == (
        "sktriplet launch: process 1 of 2 exited with status 1 (RuntimeError: "
        "bad data in process 1); stopped the 1 other process on this host."
    ), run.stderr[-3000:]
    assert Path(f"{script}.1.backend").read_text() == "jax"


def test_the_first_process_to_fail_is_blamed_not_the_first_in_the_list(tmp_path):
    """Process 1 is killed; process 0 fails 20 ms later, as a peer does when
    its collective loses process 1.  Both have ended by the launcher's next
    look, and its line names process 1, the cause (CI at ec4af60 named
    process 0, and its 'Connection closed by peer')."""
    script = _script(
        tmp_path,
        "import os, signal, time\n"
        "flag = __file__ + '.killed'\n"
        "if process == 1:\n"
        "    open(flag, 'w').close()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "while not os.path.exists(flag):\n"
        "    time.sleep(0.001)\n"
        "time.sleep(0.02)\n"
        "raise ConnectionError('Connection closed by peer')\n",
    )
    for _ in range(3):
        run = _launch("--processes", "2", script, timeout=120)
        assert run.returncode == 1
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith(
            "sktriplet launch: process 1 of 2 was killed by SIGKILL;"
        ), run.stderr[-3000:]
        os.remove(f"{script}.killed")


def test_a_batch_the_processes_cannot_split_fails_before_training(tmp_path):
    """Three processes and the default batch of 256: a ValueError that says
    what to use, in every process, before model.fit starts."""
    script = _script(
        tmp_path,
        "import keras, numpy as np\n"
        "from sktriplet import TripletEmbedder\n"
        "X = np.random.RandomState(0).normal(size=(300, 4)).astype('float32')\n"
        "emb = TripletEmbedder(epochs=1, strategy=keras.distribution.DataParallel())\n"
        "emb.fit(X, np.arange(300) % 3)\n",
    )
    run = _launch("--processes", "3", script)
    assert run.returncode == 1
    assert (
        "(ValueError: batch_size=256 does not split evenly over the 3 devices of "
        "strategy=DataParallel(...) (3 processes); use a multiple of 3, such as "
        "batch_size=255.)"
    ) in run.stderr, run.stderr[-3000:]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--coordinator", "localhost"],
            "--coordinator must be host:port with a port from 1 to 65535; got "
            "'localhost'",
        ),
        (
            ["--coordinator", "localhost:70000"],
            "--coordinator must be host:port with a port from 1 to 65535",
        ),
        (
            ["--heartbeat-timeout", "-5"],
            "--heartbeat-timeout must be 1 second or more; got -5",
        ),
    ],
)
def test_launcher_arguments_are_checked_before_anything_starts(
    tmp_path, capsys, args, message
):
    from sktriplet import launch

    script = _script(tmp_path, "raise SystemExit('the script must not run')\n")
    with pytest.raises(SystemExit) as exited:
        launch.main(["--processes", "2", *args, script])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_coordinator_port_in_use_is_named_before_anything_starts(tmp_path, capsys):
    import socket

    from sktriplet import launch

    script = _script(tmp_path, "raise SystemExit('the script must not run')\n")
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exited:
            launch.main(
                ["--processes", "2", "--coordinator", f"localhost:{port}", script]
            )
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"the coordinator's port {port} cannot be used on this machine" in err


def test_a_processs_cpp_stack_dump_is_left_out_of_the_launchers_output(tmp_path):
    """When a peer on another host is lost, JAX's runtime aborts the process
    with glog's "Check failure stack trace" and its frames; the launcher
    keeps the fatal line, which says why, drops the stack, and ends with its
    own line (issue 44, item 5)."""
    script = _script(
        tmp_path,
        "import os, sys\n"
        "if process == 0:\n"
        "    sys.stderr.write('F0000 coordination: Terminating process because the "
        "service detected missing heartbeats\\n*** Check failure stack trace: ***\\n"
        "    @     0x7f0000000001  absl::log_internal::LogMessage::Die()\\n"
        "    @     0x7f0000000002  tsl::CoordinationServiceAgent::Heartbeat()\\n')\n"
        "    sys.stderr.flush()\n"
        "    os.abort()\n"
        "import time; time.sleep(600)\n",
    )
    run = _launch("--processes", "2", script, timeout=120)
    assert run.returncode == 1
    assert "Check failure stack trace" not in run.stderr, run.stderr[-3000:]
    assert "    @ " not in run.stderr
    # The fatal line stays; the other process may say its own before the
    # launcher stops it (it sees the coordinator go within milliseconds).
    assert "service detected missing heartbeats" in run.stderr, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("sktriplet launch: process 0 of 2 was killed by SIGABRT")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_when_one_process_fails_the_launcher_stops_the_others(tmp_path, capsys):
    """The launcher itself, in this process, over plain Python processes:
    process 1 exits with status 3 while process 0 sleeps; the run ends at
    once with status 1, process 0 is gone (not left to sleep on, an orphan),
    and the line names process 1 and its status (issue 46: removing the call
    that stops the others passed every test)."""
    from sktriplet import launch

    script = tmp_path / "worker.py"
    script.write_text(
        "import os, sys, time\n"
        f"folder = {str(tmp_path)!r}\n"
        "me = os.environ['SKTRIPLET_PROCESS_ID']\n"
        "open(os.path.join(folder, me + '.pid'), 'w').write(str(os.getpid()))\n"
        "if me == '1':\n"
        "    while not os.path.exists(os.path.join(folder, '0.pid')):\n"
        "        time.sleep(0.01)\n"
        "    sys.exit(3)\n"
        "time.sleep(600)\n"
    )
    start = time.monotonic()
    code = launch.run([sys.executable, str(script)], 2, [0, 1], "localhost:1", 30)
    assert code == 1
    assert time.monotonic() - start < 30
    pid = int((tmp_path / "0.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "process 0 was left running"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "sktriplet launch: process 1 of 2 exited with status 3; stopped the 1 "
        "other process on this host."
    )


def test_every_process_that_succeeds_makes_the_run_succeed(tmp_path):
    """Each process gets its id, the process count, the coordinator and the
    heartbeat in its environment, and runs on JAX; all exit 0: status 0."""
    from sktriplet import launch

    script = tmp_path / "worker.py"
    script.write_text(
        "import os, json\n"
        "keys = ['SKTRIPLET_PROCESS_ID', 'SKTRIPLET_PROCESSES', "
        "'SKTRIPLET_COORDINATOR', 'SKTRIPLET_HEARTBEAT_TIMEOUT', 'KERAS_BACKEND']\n"
        f"path = os.path.join({str(tmp_path)!r}, os.environ[keys[0]] + '.json')\n"
        "json.dump([os.environ[k] for k in keys], open(path, 'w'))\n"
    )
    code = launch.run([sys.executable, str(script)], 3, [0, 2], "host0:7", 12)
    assert code == 0
    import json

    for process in (0, 2):
        seen = json.loads((tmp_path / f"{process}.json").read_text())
        assert seen == [str(process), "3", "host0:7", "12", "jax"]
    assert not (tmp_path / "1.json").exists()


@pytest.mark.parametrize(
    "code, said",
    [(-9, "was killed by SIGKILL"), (-6, "was killed by SIGABRT"),
     (-200, "was killed by signal 200"), (3, "exited with status 3")],
)  # fmt: skip
def test_a_process_end_is_said_in_words(code, said):
    from sktriplet import launch

    assert launch._status(code) == said


def test_the_reason_a_process_wrote_is_quoted_once(tmp_path):
    from sktriplet import launch

    (tmp_path / "process-1.txt").write_text("ValueError: bad y\n")
    (tmp_path / "process-2.txt").write_text("  \n")
    assert launch._reason(str(tmp_path), 1) == " (ValueError: bad y)"
    assert launch._reason(str(tmp_path), 2) == ""
    assert launch._reason(str(tmp_path), 0) == ""  # it wrote nothing


class _Err:
    def __init__(self):
        import io

        self.buffer = io.BytesIO()


def test_forwarded_output_drops_the_cpp_stack_and_keeps_the_rest(monkeypatch):
    import io
    import threading

    from sktriplet import launch

    lines = [
        b"F0000 fatal: peer lost\n",
        b"*** Check failure stack trace: ***\n",
        b"    @     0x7f01  Die()\n",
        b"\n",
        b"    @     0x7f02  Heartbeat()\n",
        b"after the stack\n",
        b"    @ indented user text\n",
    ]
    err = _Err()
    monkeypatch.setattr(sys, "stderr", err)
    launch._forward(io.BytesIO(b"".join(lines)), threading.Event())
    assert err.buffer.getvalue() == (
        b"F0000 fatal: peer lost\nafter the stack\n    @ indented user text\n"
    )
    silenced = threading.Event()
    silenced.set()
    err = _Err()
    monkeypatch.setattr(sys, "stderr", err)
    stream = io.BytesIO(b"noise\n")
    launch._forward(stream, silenced)
    assert err.buffer.getvalue() == b"" and stream.closed


def test_forwarded_output_goes_to_a_text_stderr_without_a_buffer(monkeypatch):
    import io
    import threading

    from sktriplet import launch

    text = io.StringIO()
    monkeypatch.setattr(sys, "stderr", text)
    launch._forward(io.BytesIO(b"caf\xc3\xa9 \xff\n"), threading.Event())
    assert text.getvalue() == "café \ufffd\n"


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    from sktriplet import launch

    stubborn = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stubborn.stdout.readline() == b"ready\n"
    start = time.monotonic()
    launch._stop({0: stubborn, 1: polite}, grace=1.0)
    assert 0.9 < time.monotonic() - start < 10
    assert stubborn.returncode == -signal.SIGKILL
    assert polite.returncode == -signal.SIGTERM
    stubborn.stdout.close()


def test_a_script_that_raises_writes_why_and_exits_at_once(tmp_path, monkeypatch):
    """The launched script's excepthook: the usual traceback, then the
    exception's first line (at most 300 characters) for the launcher, and
    status 1 without waiting on JAX's shutdown."""
    from sktriplet import launch

    reason = tmp_path / "why.txt"
    monkeypatch.setenv(launch.FAILURE, str(reason))
    shown, exits = [], []
    monkeypatch.setattr(sys, "excepthook", lambda *a: shown.append(a[0]))
    monkeypatch.setattr(launch.os, "_exit", exits.append)
    launch._exit_at_once_on_failure()
    sys.excepthook(ValueError, ValueError("bad\nsecond line"), None)
    assert shown == [ValueError] and exits == [1]
    assert reason.read_text() == "ValueError: bad"
    sys.excepthook(KeyError, KeyError("x" * 400), None)
    assert reason.read_text() == ("KeyError: '" + "x" * 400)[:300]
    monkeypatch.delenv(launch.FAILURE)
    sys.excepthook(RuntimeError, RuntimeError("no file named"), None)
    assert exits == [1, 1, 1]


def test_initialize_outside_the_launcher_is_one_process(monkeypatch):
    from sktriplet import launch

    monkeypatch.delenv(launch.PROCESSES, raising=False)
    assert launch.initialize() == (0, 1)
    monkeypatch.setenv(launch.PROCESSES, "2")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(RuntimeError, match="^" + re.escape(
        "Data-parallel training across processes runs on Keras's JAX backend; "
        "KERAS_BACKEND is 'tensorflow'. Unset it, or set it to 'jax'."
    ) + "$"):  # fmt: skip
        launch.initialize()


@pytest.mark.parametrize(
    "args, message",
    [(["--processes", "0"], "--processes must be 1 or more; got 0"),
     (["--processes", "2", "--process-id", "2"],
      "--process-id must be between 0 and 1; got 2"),
     (["--processes", "2", "--process-id", "-1"],
      "--process-id must be between 0 and 1; got -1"),
     (["--processes", "2", "--process-id", "1"],
      "--process-id needs --coordinator, the host:port of process 0"),
     (["--processes", "2", "--coordinator", ":80"],
      "--coordinator must be host:port with a port from 1 to 65535; got ':80'"),
     (["--processes", "2", "--coordinator", "h:0"],
      "--coordinator must be host:port with a port from 1 to 65535; got 'h:0'"),
     (["--processes", "2", "--coordinator", "h:x"],
      "--coordinator must be host:port with a port from 1 to 65535; got 'h:x'"),
     (["--processes", "2", "--heartbeat-timeout", "0"],
      "--heartbeat-timeout must be 1 second or more; got 0")],
)  # fmt: skip
def test_each_bad_argument_is_one_line_before_anything_starts(
    tmp_path, capsys, args, message
):
    from sktriplet import launch

    script = _script(tmp_path, "raise SystemExit('the script must not run')\n")
    with pytest.raises(SystemExit) as exited:
        launch.main([*args, script])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)


def test_the_launcher_runs_every_process_with_the_script_and_its_arguments(
    tmp_path, monkeypatch
):
    """On one host, processes 0..n-1 and a free port on localhost; with
    --process-id, that one process and the coordinator given (its port is
    checked only where process 0 binds it)."""
    from sktriplet import launch

    runs = []
    monkeypatch.setattr(launch, "run", lambda *a: runs.append(a) or 7)
    script = _script(tmp_path, "")
    assert launch.main(["--processes", "3", script, "--lr", "0.1"]) == 7
    command, processes, ids, coordinator, heartbeat = runs[-1]
    assert command == [sys.executable, script, "--lr", "0.1"]
    assert (processes, ids, heartbeat) == (3, [0, 1, 2], 30)
    host, port = coordinator.split(":")
    assert host == "localhost" and 0 < int(port) < 65536
    import socket

    with socket.socket() as s:
        s.bind(("localhost", int(port)))  # free
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        launch.main(["--processes", "2", "--process-id", "1", "--coordinator",
                     f"host0:{busy}", "--heartbeat-timeout", "5", script])  # fmt: skip
    assert runs[-1][1:] == (2, [1], f"host0:{busy}", 5)


def test_ctrl_c_stops_every_process_and_ends_with_130(tmp_path, monkeypatch):
    import queue

    from sktriplet import launch

    class Interrupted(queue.Queue):
        def get(self, *args, **kwargs):
            raise KeyboardInterrupt

    monkeypatch.setattr(launch.queue, "Queue", Interrupted)
    script = tmp_path / "sleep.py"
    script.write_text(
        "import os, time\n"
        f"open(os.path.join({str(tmp_path)!r}, os.environ['SKTRIPLET_PROCESS_ID']),"
        " 'w').write(str(os.getpid()))\n"
        "time.sleep(600)\n"
    )
    start = time.monotonic()
    assert launch.run([sys.executable, str(script)], 2, [0, 1], "h:1", 30) == 130
    assert time.monotonic() - start < 30


def test_initialize_joins_the_run_the_launcher_describes(monkeypatch):
    """Gloo for the CPU collectives, then jax.distributed.initialize with the
    coordinator, the process count and id, and the heartbeat from the
    environment (30 s when unset); KERAS_BACKEND unset counts as JAX."""
    import jax

    from sktriplet import launch

    calls = []
    monkeypatch.setattr(jax.config, "update", lambda *a: calls.append(("update", a)))
    monkeypatch.setattr(jax.distributed, "initialize",
                        lambda **kw: calls.append(("initialize", kw)))  # fmt: skip
    monkeypatch.setattr(launch, "_exit_at_once_on_failure", lambda: None)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.delenv(launch.HEARTBEAT, raising=False)
    monkeypatch.setenv(launch.PROCESSES, "4")
    monkeypatch.setenv(launch.PROCESS_ID, "3")
    monkeypatch.setenv(launch.COORDINATOR, "host0:1234")
    assert launch.initialize() == (3, 4)
    assert calls == [
        ("update", ("jax_cpu_collectives_implementation", "gloo")),
        ("initialize", {"coordinator_address": "host0:1234", "num_processes": 4,
                        "process_id": 3, "heartbeat_timeout_seconds": 30}),
    ]  # fmt: skip
    monkeypatch.setenv(launch.HEARTBEAT, "7")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    launch.initialize()
    assert calls[-1][1]["heartbeat_timeout_seconds"] == 7


def test_the_hook_shows_the_traceback_as_python_would(monkeypatch, tmp_path):
    from sktriplet import launch

    seen = []
    monkeypatch.setenv(launch.FAILURE, str(tmp_path / "why.txt"))
    monkeypatch.setattr(sys, "excepthook", lambda *a: seen.append(a))
    monkeypatch.setattr(launch.os, "_exit", lambda code: None)
    launch._exit_at_once_on_failure()
    error, traceback = ValueError("x"), object()
    sys.excepthook(ValueError, error, traceback)
    assert seen == [(ValueError, error, traceback)]


def test_the_launcher_waits_for_every_process_and_blames_a_late_failure(tmp_path):
    """One process succeeds at once and the other fails later: the run waits
    for it (longer than the launcher's half-second look) and fails; when all
    succeed after a while, it waits for all of them."""
    from sktriplet import launch

    script = tmp_path / "w.py"
    script.write_text(
        "import os, sys, time\n"
        "me = os.environ['SKTRIPLET_PROCESS_ID']\n"
        f"folder = {str(tmp_path)!r}\n"
        "time.sleep(0 if me == '0' else 1.2)\n"
        "open(os.path.join(folder, me + '.done'), 'w').close()\n"
        "sys.exit(int(os.environ.get('CODE', '0')) if me == '1' else 0)\n"
    )
    command = [sys.executable, str(script)]
    assert launch.run(command, 2, [0, 1], "h:1", 30) == 0
    assert (tmp_path / "1.done").exists()
    os.environ["CODE"] = "4"
    try:
        assert launch.run(command, 2, [0, 1], "h:1", 30) == 1
    finally:
        del os.environ["CODE"]


def test_the_failing_process_says_why_and_the_line_counts_the_stopped(tmp_path, capfd):
    """Its own last words (stderr) come first, then the launcher's line with
    the reason it wrote (through the file the launcher gives it), and the
    others stopped, counted."""
    from sktriplet import launch

    script = tmp_path / "w.py"
    script.write_text(
        "import os, sys, time\n"
        "if os.environ['SKTRIPLET_PROCESS_ID'] == '2':\n"
        "    time.sleep(0.5)\n"
        "    sys.stderr.write('worker 2: giving up\\n')\n"
        "    open(os.environ['SKTRIPLET_FAILURE_FILE'], 'w').write('OSError: gone')\n"
        "    sys.exit(1)\n"
        "time.sleep(600)\n"
    )
    assert launch.run([sys.executable, str(script)], 3, [0, 1, 2], "h:1", 30) == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert err[-2:] == [
        "worker 2: giving up",
        "sktriplet launch: process 2 of 3 exited with status 1 (OSError: gone); "
        "stopped the 2 other processes on this host.",
    ]
    script.write_text("import sys; sys.exit(5)\n")
    assert launch.run([sys.executable, str(script)], 1, [0], "h:1", 30) == 1
    assert capfd.readouterr().err.strip().splitlines()[-1] == (
        "sktriplet launch: process 0 of 1 exited with status 5; no other process "
        "on this host was still running."
    )


def test_forwarded_output_may_start_with_indented_or_blank_lines(monkeypatch):
    import io
    import threading

    from sktriplet import launch

    err = _Err()
    monkeypatch.setattr(sys, "stderr", err)
    text = b"\n    @ not a stack\nend\n"
    launch._forward(io.BytesIO(text), threading.Event())
    assert err.buffer.getvalue() == text


def test_help_names_the_command_and_says_what_each_argument_is(capsys):
    from sktriplet import launch

    with pytest.raises(SystemExit) as exited:
        launch.main(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for said in (
        "usage: python -m sktriplet.launch",
        "Run a training script as the processes of one data-parallel fit (see "
        "sktriplet.launch.initialize).",
        "--processes PROCESSES processes in the whole fit",
        "--process-id PROCESS_ID on several hosts: this host's process (0 on the "
        "coordinator's host); without it, all the processes run here",
        "--coordinator COORDINATOR host:port of process 0, which the others reach "
        "(default: a free port on this machine, for processes on one host)",
        "--heartbeat-timeout HEARTBEAT_TIMEOUT seconds after which the processes "
        "give up on a lost one (default: 30)",
        "script the Python script every process runs",
        "args its arguments",
    ):
        assert said in text, said


def test_the_smallest_valid_arguments_run(tmp_path, monkeypatch, capsys):
    from sktriplet import launch

    runs = []
    monkeypatch.setattr(launch, "run", lambda *a: runs.append(a) or 0)
    script = _script(tmp_path, "")
    launch.main(["--processes", "1", "--heartbeat-timeout", "1", script])
    assert runs[-1][1:3] == (1, [0]) and runs[-1][4] == 1
    import socket

    with socket.socket() as s:  # a port free here, for process 0 to bind
        s.bind(("", 0))
        free = s.getsockname()[1]
    for coordinator in (f"[::1]:{free}", f"localhost:{free}"):
        launch.main(["--processes", "2", "--process-id", "0", "--coordinator",
                     coordinator, script])  # fmt: skip
        assert runs[-1][2:4] == ([0], coordinator)
    for port in (1, 65535):
        launch.main(["--processes", "2", "--process-id", "1", "--coordinator",
                     f"h:{port}", script])  # fmt: skip
    with pytest.raises(SystemExit):
        launch.main(["--processes", "2", "--process-id", "1", "--coordinator",
                     "h:65536", script])  # fmt: skip
    assert "got 'h:65536'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        launch.main([script])
    assert "the following arguments are required: --processes" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        launch.main(["--processes", "2", str(tmp_path / "none.py")])
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"error: no script at {tmp_path / 'none.py'}")
    )


def test_a_free_port_is_one_the_system_chose():
    from sktriplet import launch

    port = launch._free_port()
    assert 1024 < port < 65536
    import socket

    with socket.socket() as s:
        s.bind(("localhost", port))


def test_a_clean_exit_is_said_too():
    from sktriplet import launch

    assert launch._status(0) == "exited with status 0"
