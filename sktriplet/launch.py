"""Data-parallel training across processes, on Keras's own engine.

One fit can span several processes, one per host or several on one host: each
process runs the same script, reads only its share of every training batch,
and the network trains on the whole global batch, mined together, as
``keras.distribution.DataParallel`` lays it out over JAX's multi-process
runtime.  Every process ends with the same fitted estimator.

Start the processes with this module; in the script, call :func:`initialize`
before anything else runs on JAX::

    # train.py
    import keras
    from sktriplet import TripletEmbedder, launch

    launch.initialize()  # joins the other processes
    emb = TripletEmbedder(strategy=keras.distribution.DataParallel())
    emb.fit(X, y)        # the same X and y (a memmap, say) in every process

    # on one machine, two processes:
    python -m sktriplet.launch --processes 2 train.py
    # on two hosts, the same command on each, with its own --process-id:
    python -m sktriplet.launch --processes 2 --process-id 0 \\
        --coordinator host0:12355 train.py

The launcher runs the script under ``KERAS_BACKEND=jax``, whatever the
environment says.  It checks its arguments, and that the coordinator's port is
free on the host of process 0, before it starts anything.  When a process
fails, whatever the others are blocked in (a collective, JAX's shutdown
barrier), the launcher stops the others on its host within seconds and exits
with one line that names the process and why it failed (the exception a script
raised, or the signal or status it ended with); the processes on other hosts
stop within ``--heartbeat-timeout`` seconds, when JAX's runtime misses the lost
one.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["initialize", "main"]

# What the launcher tells each process.
COORDINATOR = "SKTRIPLET_COORDINATOR"
PROCESSES = "SKTRIPLET_PROCESSES"
PROCESS_ID = "SKTRIPLET_PROCESS_ID"
HEARTBEAT = "SKTRIPLET_HEARTBEAT_TIMEOUT"
FAILURE = "SKTRIPLET_FAILURE_FILE"  # where a process writes why it failed


def initialize() -> tuple[int, int]:
    """Join the processes that ``python -m sktriplet.launch`` started; returns
    ``(process_id, processes)``.

    Call it first, before any JAX computation.  On the CPU the processes
    exchange gradients through gloo.  Outside the launcher (no
    ``SKTRIPLET_PROCESSES`` in the environment) it does nothing and returns
    ``(0, 1)``.
    """
    if PROCESSES not in os.environ:
        return 0, 1
    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        raise RuntimeError(
            "Data-parallel training across processes runs on Keras's JAX "
            f"backend; KERAS_BACKEND is {os.environ['KERAS_BACKEND']!r}. "
            "Unset it, or set it to 'jax'."
        )
    import jax

    _exit_at_once_on_failure()
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    processes, process_id = int(os.environ[PROCESSES]), int(os.environ[PROCESS_ID])
    jax.distributed.initialize(
        coordinator_address=os.environ[COORDINATOR],
        num_processes=processes,
        process_id=process_id,
        heartbeat_timeout_seconds=int(os.environ.get(HEARTBEAT, 30)),
    )
    return process_id, processes


def _exit_at_once_on_failure() -> None:
    """End this process as soon as the script raises, with status 1: an
    interpreter that exits normally first waits in JAX's shutdown barrier for
    the other processes, which may themselves wait for this one in a
    collective, so the run would never end.  The reason goes to the launcher
    in one line (the traceback to stderr, as usual)."""
    hook = sys.excepthook

    def excepthook(kind, value, traceback):
        hook(kind, value, traceback)
        reason = f"{kind.__name__}: {value}".strip().splitlines()[0]
        try:
            with open(os.environ[FAILURE], "w") as f:
                f.write(reason[:300])
        except (KeyError, OSError):
            pass
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)

    sys.excepthook = excepthook


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _stop(processes: dict, grace: float = 5.0) -> None:
    """Terminate the processes still running; kill those that outlast ``grace``."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes.values():
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def run(command: list[str], processes: int, ids: list[int], coordinator: str,
        heartbeat: int) -> int:  # fmt: skip
    """Run ``command`` as the processes ``ids`` of ``processes``; stop them all
    when one fails.  Returns the exit status: 0 when every one succeeded."""
    with tempfile.TemporaryDirectory(prefix="sktriplet-launch-") as reasons:
        return _run(command, processes, ids, coordinator, heartbeat, reasons)


def _run(command, processes, ids, coordinator, heartbeat, reasons) -> int:
    running = {}
    for process_id in ids:
        env = {
            **os.environ,
            "KERAS_BACKEND": "jax",
            COORDINATOR: coordinator,
            PROCESSES: str(processes),
            PROCESS_ID: str(process_id),
            HEARTBEAT: str(heartbeat),
            FAILURE: os.path.join(reasons, f"process-{process_id}.txt"),
        }
        running[process_id] = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    # Once the launcher stops a process, what it prints as it dies (JAX's
    # complaints about the lost one) is noise: the stopped are silenced.
    silenced = {process_id: threading.Event() for process_id in running}
    forwarders = [
        threading.Thread(target=_forward, args=(p.stderr, silenced[i]), daemon=True)
        for i, p in running.items()
    ]
    for forwarder in forwarders:
        forwarder.start()
    # One waiter per process queues it as it ends, so that the launcher blames
    # the first to fail, not the first in its list: once one process dies, its
    # peers fail too (their collectives lose it), often before a poll sees it.
    ended = queue.Queue()
    for process_id, process in running.items():
        waiter = threading.Thread(
            target=lambda i, p: ended.put((i, p.wait())), args=(process_id, process),
            daemon=True,
        )  # fmt: skip
        waiter.start()
    try:
        while running:
            try:
                process_id, code = ended.get(timeout=0.5)
            except queue.Empty:
                continue
            del running[process_id]
            if code == 0:
                continue
            others = len([p for p in running.values() if p.poll() is None])
            for other in running:
                silenced[other].set()
            _stop(running)
            stopped = (
                f"stopped the {others} other process"
                + ("es" if others > 1 else "")
                + " on this host"
                if others
                else "no other process on this host was still running"
            )
            for forwarder in forwarders:  # their last words first
                forwarder.join(timeout=5)
            why = _reason(reasons, process_id)
            print(
                f"sktriplet launch: process {process_id} of {processes} "
                f"{_status(code)}{why}; {stopped}.",
                file=sys.stderr,
            )
            return 1
    except KeyboardInterrupt:
        _stop(running)
        return 130
    return 0


def _forward(stream, silenced: threading.Event) -> None:
    """Copy a process's stderr to the launcher's, without the C++ stack that
    JAX's runtime prints when it aborts a process whose peer was lost (the
    "Check failure stack trace" and its frames: its first line says why, and
    the launcher's own line names the process), and nothing once the process
    is ``silenced``."""
    out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
    in_stack = False
    for line in iter(stream.readline, b""):
        if b"Check failure stack trace" in line:
            in_stack = True
            continue
        if in_stack and (line.startswith(b"    @ ") or not line.strip()):
            continue
        in_stack = False
        if silenced.is_set():
            continue
        if out is not None:
            out.write(line)
            out.flush()
        else:
            sys.stderr.write(line.decode(errors="replace"))
    stream.close()


def _reason(folder: str, process_id: int) -> str:
    """`` (the exception)`` that the process wrote before it ended, or ""."""
    try:
        with open(os.path.join(folder, f"process-{process_id}.txt")) as f:
            reason = f.read().strip()
    except OSError:
        return ""
    return f" ({reason})" if reason else ""


def _coordinator(parser, address: str, binds_here: bool) -> str:
    """``host:port`` checked: a port in 1..65535, free on this machine when
    process 0 runs here (it binds the port)."""
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        parser.error(
            f"--coordinator must be host:port with a port from 1 to 65535; got "
            f"{address!r}"
        )
    if binds_here:
        with socket.socket() as s:
            try:
                s.bind(("", int(port)))
            except OSError as exc:
                parser.error(
                    f"the coordinator's port {port} cannot be used on this machine "
                    f"({exc.strerror}); choose another --coordinator port"
                )
    return address


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sktriplet.launch",
        description="Run a training script as the processes of one data-parallel "
        "fit (see sktriplet.launch.initialize).",
    )
    parser.add_argument(
        "--processes", type=int, required=True, help="processes in the whole fit"
    )
    parser.add_argument(
        "--process-id",
        type=int,
        help="on several hosts: this host's process (0 on the coordinator's "
        "host); without it, all the processes run here",
    )
    parser.add_argument(
        "--coordinator",
        help="host:port of process 0, which the others reach (default: a free "
        "port on this machine, for processes on one host)",
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=int,
        default=30,
        help="seconds after which the processes give up on a lost one (default: 30)",
    )
    parser.add_argument("script", help="the Python script every process runs")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error(f"--processes must be 1 or more; got {args.processes}")
    if args.heartbeat_timeout < 1:
        parser.error(
            f"--heartbeat-timeout must be 1 second or more; got "
            f"{args.heartbeat_timeout}"
        )
    if args.process_id is None:
        ids, coordinator = list(range(args.processes)), args.coordinator
        coordinator = coordinator or f"localhost:{_free_port()}"
    else:
        if not 0 <= args.process_id < args.processes:
            parser.error(
                f"--process-id must be between 0 and {args.processes - 1}; "
                f"got {args.process_id}"
            )
        if args.coordinator is None:
            parser.error("--process-id needs --coordinator, the host:port of process 0")
        ids, coordinator = [args.process_id], args.coordinator
    if not os.path.isfile(args.script):
        parser.error(f"no script at {args.script}")
    if args.coordinator is not None:
        _coordinator(parser, coordinator, binds_here=0 in ids)
    command = [sys.executable, args.script, *args.args]
    return run(command, args.processes, ids, coordinator, args.heartbeat_timeout)


if __name__ == "__main__":
    sys.exit(main())
