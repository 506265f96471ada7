"""Time per training step: plain Keras compilation against the estimator's.

    python benchmarks/step_time.py

Trains the default MLP (64 inputs, 256-256 hidden, 32-d embedding) on
class-balanced 256-row batches (50 classes, 5 rows each) for semi-hard and
all-triplet mining, once without XLA and one step per Keras call (Keras's
defaults), and once as the estimator trains: XLA, eight steps per call.
Prints milliseconds per step (the best of three runs of 400 steps) and their
ratio, from the one run.  (Until abb3017 the first column also used a
sort-based semi-hard loss, since removed: ``docs/step_time.txt`` says which
commit measured what.)

A second table times semi-hard mining with few classes, where each anchor has
many positives in a batch: pairing every one against pairing at most 16, the
ones that follow the anchor in the batch, as ``TripletEmbedder`` does.

A third table breaks the default fit's step on the digits down, on each
installed Keras backend (TensorFlow, JAX, torch), each in its own fresh process:
``--breakdown-only`` prints only that one.  Each part is the difference between
two variants of the same step, timed the same way (see :func:`breakdown_job`).
``--breakdown-only --data scaling`` takes apart the step of a default fit on
128,000 rows of ``scaling.py``'s data instead (20 classes, the noise and the
steps per call that ``fit`` uses there).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from isolate import run_job  # noqa: E402

from sktriplet.mining import SEMIHARD_POSITIVES as _SEMIHARD_POSITIVES  # noqa: E402
from sktriplet.mining import positives_per_anchor  # noqa: E402
from sktriplet.sampling import ClassBalancedSampler  # noqa: E402


def ms_per_step(
    X,
    labels,
    mining,
    *,
    fast: bool,
    positives: int | None = None,
    steps: int = 400,
    repeats: int = 3,
) -> float:
    """Milliseconds per step, the best of ``repeats`` runs of ``steps`` steps.

    ``positives`` caps the positives per anchor of semi-hard mining (``all``
    pairs every one, as ``fit`` does).  ``fast`` compiles as the estimator
    does: XLA, eight steps per call.  The best run, because step times on two
    shared cores jump between two levels, up to twice apart, for
    whole runs at a time.
    """
    import keras

    from sktriplet.keras.encoders import build_mlp_encoder
    from sktriplet.keras.models import SiameseModel

    sampler = ClassBalancedSampler(labels, 256, 4, np.random.RandomState(0))
    rows = np.concatenate([sampler.epoch() for _ in range(steps // 50 + 2)])
    every = sampler.samples_per_group - 1
    model = SiameseModel(
        build_mlp_encoder((X.shape[1],), (256, 256), 32, True, seed=0),
        mining=mining,
        max_positives=(
            min(every, positives or every)
            if mining == "semihard"
            else positives_per_anchor(mining, every + 1)  # as fit
        ),
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        jit_compile=fast,
        steps_per_execution=8 if fast else 1,
    )

    def batches():
        while True:
            for r in rows:
                yield X[r], labels[r]

    return _timed_steps(model, batches(), steps, repeats)


def _timed_steps(
    model, batches, steps: int, repeats: int = 3, warm_up: int = 40
) -> float:
    """Milliseconds per step of ``model.fit`` on ``batches``: best of ``repeats``."""
    model.fit(batches, steps_per_epoch=warm_up, epochs=1, verbose=0)  # trace
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / steps


def breakdown_job(steps: int = 400, data: str = "digits") -> dict:
    """The default fit's step on the digits (or on 128,000 rows of the scaling
    data), taken apart on this process's backend.

    Five variants of the step, each compiled as ``fit`` compiles the default
    MLP (XLA, the steps per call of ``fit`` on these data: the digits' whole
    epoch of 7 batches, or 32) and fed from batches made in advance, so that
    only the last measures the feeding:

    - ``empty``: a one-unit network with a constant loss: Keras's loop, the
      input pipeline and the call, and nothing else;
    - ``sgd``: the default MLP, a cheap loss (no mining), plain SGD: adds the
      forward and backward passes;
    - ``adam``: the same with Adam: adds Adam's work beyond SGD's update;
    - ``full``: the triplet loss with semi-hard mining, as ``fit`` trains;
    - feeding: the estimator's own batch source (sampler, row gather, input
      noise) run on its own, per batch.

    Also returns the model's FLOP per step and this backend's float32 matmul
    ceiling (2048 x 2048, best of 5), for the share of the ceiling.
    """
    import keras
    from keras import ops
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    from sktriplet.keras.encoders import build_mlp_encoder
    from sktriplet.keras.models import SiameseModel

    class CheapLoss(SiameseModel):
        def compute_loss(
            self, x=None, y=None, y_pred=None, sample_weight=None, training=True
        ):
            return ops.mean(ops.square(y_pred))

    from sktriplet._plan import _auto_noise
    from sktriplet.keras.pipeline import steps_per_call

    if data == "digits":
        X, y = load_digits(return_X_y=True)
        X = StandardScaler().fit_transform(X).astype(np.float32)
    else:
        from scaling import split

        X, _, y, _ = split(128_000)
    sampler = ClassBalancedSampler(y, 256, 4, np.random.RandomState(0))
    per_call = steps_per_call(sampler.n_batches)[1]
    warm_up = max(40 // per_call, 1) * per_call  # whole calls
    steps = max(round(steps / per_call), 1) * per_call
    rows = np.concatenate(
        [sampler.epoch() for _ in range(steps // sampler.n_batches + 2)]
    )
    noise = np.random.default_rng(0)
    scale = (_auto_noise(y, False) * X.std(axis=0)).astype(np.float32)

    def made(rows):
        return [
            (X[r] + scale * noise.standard_normal((len(r), 64), np.float32), y[r])
            for r in rows
        ]

    ready = made(rows[: 5 * per_call + 1])

    def replay():
        while True:
            yield from ready

    def build(kind):
        if kind == "empty":
            inputs = keras.Input((64,))
            encoder = keras.Model(inputs, keras.layers.Dense(1)(inputs))
        else:
            encoder = build_mlp_encoder((64,), (256, 256), 32, True, seed=0)
        cls = SiameseModel if kind == "full" else CheapLoss
        model = cls(
            encoder,
            mining="semihard",
            max_positives=positives_per_anchor("semihard", sampler.samples_per_group),
        )
        optimizer = (
            keras.optimizers.SGD(1e-3)
            if kind in ("empty", "sgd")
            else keras.optimizers.Adam(1e-3)
        )
        model.compile(
            optimizer=optimizer, jit_compile=True, steps_per_execution=per_call
        )
        return model

    ms = {
        kind: _timed_steps(build(kind), replay(), steps, warm_up=warm_up)
        for kind in ("empty", "sgd", "adam", "full")
    }
    start = time.perf_counter()
    made(rows[:steps])
    ms["feeding"] = 1000 * (time.perf_counter() - start) / steps

    sizes = [64, 256, 256, 32]
    batch = len(rows[0])
    flops = 3 * 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    a = keras.random.normal((2048, 2048), seed=0)
    ops.convert_to_numpy(ops.matmul(a, a))
    best = np.inf
    for _ in range(5):
        start = time.perf_counter()
        ops.convert_to_numpy(ops.matmul(a, a))
        best = min(best, time.perf_counter() - start)
    return {
        "backend": keras.backend.backend(),
        "per_call": per_call,
        "ms": ms,
        "batch": batch,
        "flops": flops,
        "ceiling": 2 * 2048**3 / best,
    }


BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def print_breakdown(data: str = "digits") -> None:
    print(
        "\n| backend | step + feeding (ms) | Keras loop and call | forward + backward "
        "| Adam beyond SGD | mining | feeding | share of the matmul ceiling |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for backend, module in BACKEND_MODULES.items():
        if importlib.util.find_spec(module) is None:
            print(f"| {backend} | not installed | | | | | | |")
            continue
        r = run_job(
            "step_time:breakdown_job",
            {"data": data},
            timeout=1200,
            threads=os.cpu_count(),
            env={"KERAS_BACKEND": backend},
        )
        if "ms" not in r:
            print(f"| {backend} | {r.get('failure', r.get('skipped'))} | | | | | | |")
            continue
        ms = r["ms"]
        parts = {
            "loop": ms["empty"],
            "forward + backward": ms["sgd"] - ms["empty"],
            "adam": ms["adam"] - ms["sgd"],
            "mining": ms["full"] - ms["adam"],
            "feeding": ms["feeding"],
        }
        total = ms["full"] + ms["feeding"]
        cells = [f"{v:.2f} ({v / total:.0%})" for v in parts.values()]
        share = r["flops"] / (ms["full"] / 1000) / r["ceiling"]
        print(
            f"| {backend} | {total:.2f} | " + " | ".join(cells) + f" | {share:.1%} "
            f"({r['flops'] / 1e6:.0f} MFLOP per {r['batch']}-row step; ceiling "
            f"{r['ceiling'] / 1e9:.0f} GFLOP/s; {data}, {r['per_call']} steps a "
            "call) |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--breakdown-only", action="store_true")
    parser.add_argument(
        "--data",
        choices=("digits", "scaling"),
        default="digits",
        help="the fit whose step --breakdown-only takes apart: the digits, or "
        "128,000 rows of scaling.py's data",
    )
    args = parser.parse_args()
    if args.breakdown_only:
        print_breakdown(args.data)
        return
    rng = np.random.RandomState(0)
    X = rng.normal(size=(20000, 64)).astype(np.float32)
    labels = rng.randint(0, 50, len(X))
    print(
        "| mining | no XLA, 1 step/call (ms) | XLA, 8 steps/call, as fit (ms) "
        "| speed-up |"
    )
    print("|---|---|---|---|")
    for mining in ("semihard", "all"):
        slow = ms_per_step(X, labels, mining, fast=False)
        fast = ms_per_step(X, labels, mining, fast=True)
        print(f"| {mining} | {slow:.2f} | {fast:.2f} | {slow / fast:.1f}x |")
    print(
        f"\n| classes | positives per anchor | semihard, every positive (ms) "
        f"| semihard, at most {_SEMIHARD_POSITIVES}, as fit does (ms) | speed-up |"
    )
    print("|---|---|---|---|---|")
    for n_classes in (2, 10):
        labels = rng.randint(0, n_classes, len(X))
        every = ms_per_step(X, labels, "semihard", fast=True)
        capped = ms_per_step(
            X, labels, "semihard", fast=True, positives=_SEMIHARD_POSITIVES
        )
        print(
            f"| {n_classes} | {256 // n_classes - 1} | {every:.2f} | {capped:.2f} "
            f"| {every / capped:.1f}x |",
            flush=True,
        )
    print_breakdown()


if __name__ == "__main__":
    main()
