"""Cost at scale: sktriplet's default fit beside pytorch-metric-learning's, by n.

    python benchmarks/scaling.py                       # every size, one seed
    python benchmarks/scaling.py --sizes 32000 --trace # with the time to PML's quality
    python benchmarks/scaling.py --params '{"learning_rate_schedule": "constant"}'

The data of issue #30: ``make_classification`` with 64 features (32
informative, 8 redundant), 20 classes of 2 clusters, ``class_sep=1.0``,
``random_state=11``; ``n`` training rows and 2,000 held out, standardised on
the training part.  For each ``n``, sktriplet at its defaults (changed by
``--params``) and pytorch-metric-learning's triplet recipe (TripletMarginLoss
and a semi-hard miner, MPerClassSampler with m=16, batches of 128, the same
256-256-32 MLP, Adam at 1e-3, 15 epochs) each fit in their own fresh process,
one after the other, with the same threads.  Each row gives the fit time, the
epochs, the held-out MAP@R and 1-NN accuracy, and sktriplet's ratios to PML;
for sktriplet also the share of its fit spent scoring the validation set for
early stopping (0 when it is off), and with ``--trace`` the epoch and the time
at which it first passes PML's MAP@R, in a third process (the held-out set
scored after every epoch, that scoring left out of the clock).

Compare only the figures of one run: whole processes on a shared machine run
at different speeds from one run to the next.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

from data import scaling_split as split  # noqa: E402
from isolate import other_load, run_job  # noqa: E402

SIZES = (2_000, 8_000, 32_000, 128_000)
PML = dict(hidden=(256, 256), dim=32, batch=128, m=16, epochs=15)


def _quality(embed, X_tr, X_te, y_tr, y_te) -> dict:
    from sklearn.neighbors import KNeighborsClassifier

    from sktriplet.metrics import mean_average_precision_at_r

    E_tr, E_te = embed(X_tr), embed(X_te)
    knn = KNeighborsClassifier(n_neighbors=1).fit(E_tr, y_tr)
    return {
        "MAP@R": mean_average_precision_at_r(E_te, y_te, sample_size=None),
        "1-NN": float(knn.score(E_te, y_te)),
    }


def _scoring_clock():
    """Count the time early stopping spends scoring the validation set."""
    from sktriplet.keras import callbacks

    clock = {"seconds": 0.0}
    score = callbacks._ValidationMonitor.score

    def timed(self):
        start = time.perf_counter()
        try:
            return score(self)
        finally:
            clock["seconds"] += time.perf_counter() - start

    callbacks._ValidationMonitor.score = timed
    return clock


def sktriplet_job(n: int, seed: int, params: dict, threads: int) -> dict:
    import keras  # noqa: F401 - the framework's import is no part of the fit

    from sktriplet import TripletEmbedder

    X_tr, X_te, y_tr, y_te = split(n)
    clock = _scoring_clock()
    emb = TripletEmbedder(random_state=seed, **params)
    with other_load() as load:
        start = time.perf_counter()
        emb.fit(X_tr, y_tr)
        fit_s = time.perf_counter() - start
    return {
        "fit s": fit_s,
        "epochs": emb.n_iter_,
        "scoring share": clock["seconds"] / fit_s,
        **_quality(emb.transform, X_tr, X_te, y_tr, y_te),
        **load,
    }


def pml_job(n: int, seed: int, threads: int) -> dict:
    import torch  # noqa: F401
    from peers import pytorch_metric_learning

    X_tr, X_te, y_tr, y_te = split(n)
    with other_load() as load:
        start = time.perf_counter()
        embed = pytorch_metric_learning(
            X_tr, y_tr, {**PML, "seed": seed, "threads": threads}
        )
        fit_s = time.perf_counter() - start
    return {
        "fit s": fit_s,
        "epochs": PML["epochs"],
        **_quality(embed, X_tr, X_te, y_tr, y_te),
        **load,
    }


def trace_job(n: int, seed: int, params: dict, target: float) -> dict:
    """The epoch and fit time at which sktriplet first passes ``target``
    held-out MAP@R, the held-out set scored after every epoch (left out of the
    clock)."""
    import keras

    from sktriplet import TripletEmbedder
    from sktriplet.metrics import mean_average_precision_at_r

    X_tr, X_te, y_tr, y_te = split(n)

    class Clock(keras.callbacks.Callback):
        paused, reached, scores = 0.0, None, []

        def on_epoch_end(self, epoch, logs=None):
            pause = time.perf_counter()
            E = keras.ops.convert_to_numpy(self.model.encoder(X_te, training=False))
            score = mean_average_precision_at_r(E, y_te, sample_size=None)
            self.scores.append(round(score, 4))
            if self.reached is None and score >= target:
                self.reached = (epoch + 1, pause - start - self.paused)
            self.paused += time.perf_counter() - pause

    clock = Clock()
    start = time.perf_counter()
    emb = TripletEmbedder(random_state=seed, callbacks=[clock], **params)
    emb.fit(X_tr, y_tr)
    epoch, seconds = clock.reached or (None, None)
    return {
        "epoch": epoch,
        "seconds": seconds,
        "fit s": time.perf_counter() - start - clock.paused,
        "scores": clock.scores,
        "learning_rate": emb.history_.get("learning_rate"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--params", type=json.loads, default={})
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--no-pml", action="store_true", help="sktriplet alone")
    args = parser.parse_args()

    print(f"sktriplet params: {args.params or 'defaults'}; seed {args.seed}; "
          f"{args.threads} threads")  # fmt: skip
    header = (
        f"{'n':>7} | {'sktriplet s':>11} {'epochs':>6} {'MAP@R':>6} {'1-NN':>6} "
        f"{'scoring':>7} | {'PML s':>7} {'MAP@R':>6} {'1-NN':>6} | {'fit ratio':>9} "
        f"{'MAP@R ratio':>11} | load (ours, PML)"
    )
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        common = dict(n=n, seed=args.seed, threads=args.threads)
        ours = run_job(
            "scaling:sktriplet_job",
            {**common, "params": args.params},
            timeout=args.timeout,
            threads=args.threads,
        )
        peer = (
            {"failure": "not run (--no-pml)"}
            if args.no_pml
            else run_job(
                "scaling:pml_job", common, timeout=args.timeout, threads=args.threads
            )
        )
        print(_row(n, ours, peer), flush=True)
        if args.trace and "failure" not in ours:
            target = peer.get("MAP@R", math.inf)
            trace = run_job(
                "scaling:trace_job",
                dict(n=n, seed=args.seed, params=args.params, target=target),
                timeout=args.timeout,
                threads=args.threads,
            )
            print(_trace_line(trace, peer, ours), flush=True)


def _row(n: int, ours: dict, peer: dict) -> str:
    if "failure" in ours:
        return f"{n:>7} | sktriplet: {ours['failure']}"
    left = (
        f"{n:>7} | {ours['fit s']:>11.1f} {ours['epochs']:>6} {ours['MAP@R']:>6.3f} "
        f"{ours['1-NN']:>6.3f} {ours['scoring share']:>7.1%}"
    )
    if "failure" in peer:
        return f"{left} | PML: {peer['failure']}"
    return (
        f"{left} | {peer['fit s']:>7.1f} {peer['MAP@R']:>6.3f} {peer['1-NN']:>6.3f} | "
        f"{ours['fit s'] / peer['fit s']:>9.2f} {ours['MAP@R'] / peer['MAP@R']:>11.2f}"
        f" | {ours.get('other load', 0):.2f}, {peer.get('other load', 0):.2f}"
    )


def _trace_line(trace: dict, peer: dict, ours: dict) -> str:
    if "failure" in trace:
        return f"    trace: {trace['failure']}"
    rates = trace["learning_rate"] or []
    changes = {
        epoch + 1: float(f"{rate:.2g}")
        for epoch, rate in enumerate(rates)
        if epoch == 0 or rate != rates[epoch - 1]
    }
    detail = (
        f"held-out MAP@R by epoch: {trace['scores']}; learning rate from epoch: "
        f"{changes}"
    )
    if "MAP@R" not in peer:
        return f"    {detail}"
    if trace["epoch"] is None:
        return f"    never passes PML's MAP@R ({peer['MAP@R']:.3f}); {detail}"
    return (
        f"    passes PML's MAP@R ({peer['MAP@R']:.3f}) at epoch {trace['epoch']}, "
        f"{trace['seconds']:.1f} s into a fit of {trace['fit s']:.1f} s "
        f"({trace['seconds'] / peer['fit s']:.2f}x PML's fit); {detail}"
    )


if __name__ == "__main__":
    main()
