"""One process against two local processes of one data-parallel fit.

    KERAS_BACKEND=jax python benchmarks/data_parallel.py            # n = 32000
    KERAS_BACKEND=jax python benchmarks/data_parallel.py --n 8000 --rounds 1

The scaling data of ``benchmarks/scaling.py`` (n training rows, 2000 held
out).  Each round fits sktriplet at its defaults (but ``--epochs``) on the JAX
backend, in a fresh process, and as the two processes of
``python -m sktriplet.launch --processes 2``, which train on the same global
batches, each reading half of every batch; the two runs alternate.  Each row
gives the median time of an epoch past the first (which compiles), the fit
time, the held-out MAP@R and 1-NN accuracy, and the two-process run's ratios
to the one-process run of its round.  Compare only the figures of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))


def worker(n: int, epochs: int, out: str) -> None:
    """One fit, as a lone process or as each process of the launcher."""
    from sktriplet import launch

    process, processes = launch.initialize()
    import keras
    import numpy as np
    from data import scaling_split as split
    from scaling import _quality

    from sktriplet import TripletEmbedder

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.stamps = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.stamps.append(time.perf_counter())

    X_tr, X_te, y_tr, y_te = split(n)
    clock = Clock()
    strategy = keras.distribution.DataParallel() if processes > 1 else None
    emb = TripletEmbedder(
        epochs=epochs, random_state=0, strategy=strategy, callbacks=[clock]
    )
    start = time.perf_counter()
    emb.fit(X_tr, y_tr)
    fit_s = time.perf_counter() - start
    if process == 0:
        result = {
            "epoch s": float(np.median(np.diff(clock.stamps)[1:])),
            "fit s": fit_s,
            "epochs": emb.n_iter_,
            **_quality(emb.transform, X_tr, X_te, y_tr, y_te),
        }
        with open(out, "w") as f:
            json.dump(result, f)


def _run(command: list[str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([*command, out], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"failure": done.stderr.strip().splitlines()[-1]}
    with open(out) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.n, args.epochs, args.worker)
        return
    me = [os.path.abspath(__file__), "--n", str(args.n), "--epochs", str(args.epochs)]
    one = [sys.executable, *me, "--worker"]
    two = [sys.executable, "-m", "sktriplet.launch", "--processes", "2", *me]
    two.append("--worker")
    print(f"n = {args.n}, {args.epochs} epochs, JAX backend, {os.cpu_count()} cores")
    print("round | processes | epoch s | fit s | MAP@R | 1-NN | epoch ratio")
    for r in range(args.rounds):
        base = _run(one)
        for label, result in (("1", base), ("2", _run(two))):
            if "failure" in result:
                print(f"{r + 1:5d} | {label:>9} | failed: {result['failure']}")
                continue
            ratio = result["epoch s"] / base.get("epoch s", float("nan"))
            print(
                f"{r + 1:5d} | {label:>9} | {result['epoch s']:7.3f} | "
                f"{result['fit s']:5.1f} | {result['MAP@R']:.3f} | "
                f"{result['1-NN']:.3f} | {ratio:.2f}"
            )


if __name__ == "__main__":
    main()
