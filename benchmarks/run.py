"""sktriplet against its peers: embedding quality, speed and training throughput.

    python benchmarks/run.py            # full run
    python benchmarks/run.py --quick    # under 5 minutes on 2 cores

For each dataset, every method is fitted on the same training split and prints one
row: fit seconds (the first fit in the process; for the methods that train a
network also a second fit of the same data in the same process, which pays no
start-up cost such as tracing a training step), 1-NN and 5-NN accuracy of a
classifier fitted on the training embedding and scored on the held-out
embedding, MAP@R of leave-one-out retrieval among the held-out samples,
seconds to transform the whole held-out set, and milliseconds to transform one
row.  A last row gives sktriplet's ratio to the best
peer in each column (above 1 is better for accuracy and MAP@R, below 1 is better
for times).  All figures come from the one run.

Each method runs on each data set in its own fresh interpreter, strictly one
after another, with the same thread settings (``--threads``, every core by
default): one process that loaded every framework in turn crashed, and its
timings depended on what ran before.  A method that crashes, times out
(``--timeout``) or raises is reported in its row, and the run goes on.  Each row
also gives the share of the CPUs that other processes took during its fit, and
the versions of the packages it used are listed under each table.

Peers that need the ``bench`` extra (``pip install -e ".[bench]"``) are skipped,
with a note, when it is missing.  Then the training throughput of sktriplet's
default model is reported as a share of this machine's float32 matmul ceiling,
both measured in the run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from data import DATASETS, scaled_split  # noqa: E402
from isolate import other_load, run_job  # noqa: E402
from peers import BUDGET_MATCHED, NEURAL, PEERS  # noqa: E402
from report import (  # noqa: E402
    holds_figures,
    mean_row,
    measured,
    print_spread,
    print_table,
    print_versions,
)
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

from sktriplet.metrics import mean_average_precision_at_r  # noqa: E402

DEFAULT_DATASETS = ("digits", "synthetic")


def method(name: str):
    """The fit function of a method: sktriplet, a peer, or ``module:function``."""
    if name == "sktriplet":
        from peers import sktriplet

        return sktriplet
    if ":" in name:
        import importlib

        module, function = name.split(":")
        return getattr(importlib.import_module(module), function)
    return PEERS[name]


def one_row_ms(embed, X, repeats=200) -> float:
    rows = [X[i : i + 1] for i in range(min(repeats, len(X)))]
    embed(rows[0])  # warm up
    times = []
    for row in rows:
        start = time.perf_counter()
        embed(row)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def evaluate(fit, X_train, y_train, X_test, y_test, cfg, second=False) -> dict:
    with other_load() as load:
        start = time.perf_counter()
        embed = fit(X_train, y_train, cfg)
        fit_s = time.perf_counter() - start
    second_s = None
    if second:  # as a search's later fits: the same data, the same process
        start = time.perf_counter()
        embed = fit(X_train, y_train, cfg)
        second_s = time.perf_counter() - start
    start = time.perf_counter()
    E_test = np.asarray(embed(X_test))
    transform_s = time.perf_counter() - start
    E_train = np.asarray(embed(X_train))
    knn = {k: KNeighborsClassifier(n_neighbors=k).fit(E_train, y_train) for k in (1, 5)}
    return {
        "fit s": fit_s,
        "second fit s": second_s,
        "1-NN acc": knn[1].score(E_test, y_test),
        "5-NN acc": knn[5].score(E_test, y_test),
        "MAP@R": mean_average_precision_at_r(E_test, y_test, sample_size=None),
        "transform-all s": transform_s,
        "one-row ms": one_row_ms(embed, X_test),
        **load,
    }


def preload(name: str) -> None:
    """Import the framework of method ``name`` before any timing: a fit's time is
    not its framework's import (every method runs in a new process)."""
    if name == "sktriplet" or name.startswith("seed recipe"):
        import keras  # noqa: F401
    elif name.startswith("pytorch"):
        import torch  # noqa: F401


def evaluate_job(dataset: str, name: str, quick: bool, cfg: dict) -> dict:
    """One row of the table, computed in a fresh interpreter (see ``isolate``)."""
    preload(name)
    _, (X_train, X_test, y_train, y_test) = scaled_split(dataset, quick)
    cfg = {**cfg, "dim": min(cfg["dim"], X_train.shape[1])}
    second = name == "sktriplet" or name in NEURAL
    return evaluate(method(name), X_train, y_train, X_test, y_test, cfg, second)


def matmul_ceiling(n: int = 2048, repeats: int = 5) -> float:
    """Float32 matmul FLOP/s of this machine, through TensorFlow as training uses."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    (a @ b).numpy()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        (a @ b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def training_throughput(X, y) -> None:
    """Steady-state FLOP/s of the default model's training steps."""
    import keras

    from sktriplet import TripletEmbedder
    from sktriplet.keras.pipeline import steps_per_call
    from sktriplet.sampling import ClassBalancedSampler

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.stamps = []

        def on_epoch_end(self, epoch, logs=None):
            self.stamps.append(time.perf_counter())

    timer = EpochTimer()
    emb = TripletEmbedder(random_state=0, callbacks=[timer]).fit(X, y)
    # The batches fit trains on: rows per batch and steps per epoch.
    sampler = ClassBalancedSampler(
        np.unique(y, return_inverse=True)[1],
        256,
        emb.samples_per_class,
        np.random.RandomState(0),
    )
    steps, per_call = steps_per_call(sampler.n_batches)
    epochs = np.diff(timer.stamps)[len(timer.stamps) // 4 :]  # past warm-up
    step_s = float(np.median(epochs)) / steps
    sizes = [X.shape[1], *emb.hidden_layer_sizes, emb.n_components_]
    batch = sampler.batch_rows
    # Forward 2*B*sum(fan_in*fan_out); backward twice that.
    flops = 3 * 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    ceiling = matmul_ceiling()
    print("\n## Training throughput (sktriplet default model, digits)\n")
    print(
        f"- steady-state step: {1000 * step_s:.2f} ms for {batch} rows "
        f"({steps} steps per epoch, {per_call} per call)"
    )
    print(f"- model FLOP/s: {flops / step_s / 1e9:.2f} GFLOP/s")
    print(f"- float32 matmul ceiling (2048^2, measured): {ceiling / 1e9:.1f} GFLOP/s")
    print(f"- share of the ceiling: {100 * flops / step_s / ceiling:.1f}%")
    return emb


def numpy_forward(emb, X):
    """A plain numpy forward pass of the fitted encoder's weights.

    Written apart from ``sktriplet.inference``, as the reference it is measured
    against: dense layers, each hidden one followed by batch normalisation
    (folded into the dense weights, as a hand-written forward pass would) and
    ReLU, then unit normalisation.
    """
    model = emb.encoder_
    layers = []
    for i in range(len(emb.hidden_layer_sizes)):
        (kernel,) = model.get_layer(f"hidden_{i}").get_weights()
        bn = model.get_layer(f"batch_norm_{i}")
        gamma, beta, mean, variance = bn.get_weights()
        scale = gamma / np.sqrt(variance + bn.epsilon)
        layers.append((kernel * scale, beta - mean * scale, True))
    layers.append((*model.get_layer("embedding").get_weights(), False))
    h = X
    for kernel, bias, relu in layers:
        h = h @ kernel + bias
        if relu:
            h = np.maximum(h, 0.0)
    return h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)


def transform_speed(emb, X) -> None:
    """transform against a numpy forward pass of the same weights, and Keras."""
    import keras

    big = np.tile(X, (max(1, 100_000 // len(X)), 1)).astype(np.float32)
    timings = {}
    for name, f in {
        "transform": emb.transform,
        "numpy forward": lambda Z: numpy_forward(emb, Z),
    }.items():
        f(big[:1000])
        start = time.perf_counter()
        f(big)
        timings[name] = time.perf_counter() - start
    keras_out = keras.ops.convert_to_numpy(emb.encoder_(big[:2000]))
    gap = float(np.abs(emb.transform(big[:2000]) - keras_out).max())
    reference_gap = float(np.abs(numpy_forward(emb, big[:2000]) - keras_out).max())
    print("\n## transform speed (default model, digits)\n")
    print(f"- one row: {one_row_ms(emb.transform, X):.3f} ms")
    print(
        f"- {len(big)} rows: transform {len(big) / timings['transform']:.3g} rows/s, "
        f"numpy forward of the same weights "
        f"{len(big) / timings['numpy forward']:.3g} rows/s: ratio "
        f"{timings['numpy forward'] / timings['transform']:.2f}"
    )
    print(
        f"- largest difference from the Keras model's output: {gap:.2g} "
        f"(numpy forward: {reference_gap:.2g})"
    )


def throughput_job() -> dict:
    """The throughput and transform sections, in a fresh interpreter."""
    _, (X_tr, _, y_tr, _) = scaled_split("digits", quick=False)
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        emb = training_throughput(X_tr, y_tr)
        transform_speed(emb, X_tr)
    return {"text": text.getvalue()}


def time_to_quality_job(dataset: str, quick: bool, seed: int, target: float) -> dict:
    """The epoch and the fit time at which sktriplet's default fit first reaches
    held-out MAP@R ``target``, in a fresh interpreter.

    The held-out set is scored after every epoch; the scoring time is left out
    of the clock.
    """
    preload("sktriplet")
    import keras

    from sktriplet import TripletEmbedder

    _, (X_train, X_test, y_train, y_test) = scaled_split(dataset, quick)
    X_test = X_test.astype(np.float32)

    class Clock(keras.callbacks.Callback):
        paused, reached = 0.0, None

        def on_epoch_end(self, epoch, logs=None):
            if self.reached is not None:
                return
            pause = time.perf_counter()
            E = keras.ops.convert_to_numpy(self.model.encoder(X_test, training=False))
            if mean_average_precision_at_r(E, y_test, sample_size=None) >= target:
                self.reached = (epoch + 1, pause - start - self.paused)
            self.paused += time.perf_counter() - pause

    clock = Clock()
    start = time.perf_counter()
    emb = TripletEmbedder(random_state=seed, callbacks=[clock]).fit(X_train, y_train)
    fit_s = time.perf_counter() - start - clock.paused
    epoch, seconds = clock.reached or (None, None)
    return {"epoch": epoch, "seconds": seconds, "fit s": fit_s, "epochs": emb.n_iter_}


def print_time_to_quality(key: str, rows: dict, args) -> None:
    """When sktriplet first reaches the best peer's held-out MAP@R."""
    peers = {m: r for m, r in measured(rows).items() if m != "sktriplet"}
    if "sktriplet" not in measured(rows) or not peers:
        return
    best = max(peers, key=lambda m: peers[m]["MAP@R"])
    target = peers[best]["MAP@R"]
    r = run_job(
        "run:time_to_quality_job",
        dict(dataset=key, quick=args.quick, seed=0, target=target),
        timeout=args.timeout,
        threads=args.threads,
    )
    if not holds_figures(r):
        print(f"time to the best peer's MAP@R: {r.get('failure') or r['skipped']}")
    elif r["epoch"] is None:
        print(f"sktriplet never reaches the best peer's MAP@R ({target:.3f}, {best})")
    else:
        print(
            f"sktriplet first reaches the best peer's MAP@R ({target:.3f}, {best}) "
            f"at epoch {r['epoch']}, {r['seconds']:.3g} s into a fit of "
            f"{r['fit s']:.3g} s ({r['epochs']} epochs; the same defaults and seed "
            "in a new process, scored after each epoch, scoring time left out)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller synthetic set")
    parser.add_argument(
        "--only", nargs="*", help="run only these methods (sktriplet too if named)"
    )
    parser.add_argument(
        "--datasets",
        nargs="*",
        choices=list(DATASETS),
        default=list(DEFAULT_DATASETS),
        help="data sets (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds per method and data set"
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="threads of every pool"
    )
    parser.add_argument(
        "--no-throughput", action="store_true", help="skip the throughput section"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="random states 0..N-1 per method: the table gives the means, and a "
        "second table the mean and standard deviation of each",
    )
    args = parser.parse_args()
    cfg = dict(dim=32, hidden=256, batch=128, epochs=15, seed=0, threads=args.threads)
    methods = args.only if args.only else ["sktriplet", *PEERS]
    print(f"# sktriplet benchmark ({'quick' if args.quick else 'full'})")
    print(
        f"network peers: MLP {cfg['hidden']} hidden, {cfg['dim']}-d embedding, "
        f"{cfg['epochs']} epochs (or as many as sktriplet's budget, where named), "
        f"batch {cfg['batch']}, "
        + (f"seed {cfg['seed']}" if args.seeds == 1 else f"seeds 0-{args.seeds - 1}")
        + "; sktriplet at its defaults. "
        f"Each method in its own process, {args.threads} threads per pool."
    )
    ours_failed = False
    for key in args.datasets:
        name = DATASETS[key](args.quick)[0]
        on_digits = key == "digits"
        rows, runs = {}, {}
        for method_name in methods:
            if method_name == "LMNN" and not on_digits:
                print(f"(LMNN skipped on {name}: over 10 minutes on 2 cores)")
                continue
            if args.quick and method_name in BUDGET_MATCHED and not on_digits:
                print(
                    f"({method_name} skipped on {name} in --quick: the full run has it)"
                )
                continue
            runs[method_name] = [
                run_job(
                    "run:evaluate_job",
                    dict(
                        dataset=key,
                        name=method_name,
                        quick=args.quick,
                        cfg={**cfg, "seed": seed},
                    ),
                    timeout=args.timeout,
                    threads=args.threads,
                )
                for seed in range(args.seeds)
            ]
            rows[method_name] = mean_row(runs[method_name])
            outcome = rows[method_name].get("failure", "done")
            print(f"  {outcome}: {method_name}", file=sys.stderr, flush=True)
        ours_failed |= "failure" in rows.get("sktriplet", {})
        print_table(name, rows)
        if args.seeds > 1:
            print_spread(runs)
        print_versions(rows)
        ok = measured(rows)
        neural = [m for m in ok if m in NEURAL]
        if neural and "sktriplet" in ok:
            print(f"\n(neural peers: {', '.join(neural)})")
            ours = ok["sktriplet"]
            reaching = [m for m in neural if ok[m]["MAP@R"] >= ours["MAP@R"]]
            if reaching:
                fastest = min(reaching, key=lambda m: ok[m]["fit s"])
                print(
                    f"fastest neural peer reaching sktriplet's MAP@R: {fastest}, "
                    f"fit {ok[fastest]['fit s']:.3g} s against sktriplet's "
                    f"{ours['fit s']:.3g} s"
                )
            else:
                print(f"no neural peer reaches sktriplet's MAP@R ({ours['MAP@R']:.3f})")
        print_time_to_quality(key, rows, args)
    if not args.no_throughput:
        result = run_job(
            "run:throughput_job", {}, timeout=args.timeout, threads=args.threads
        )
        print(result.get("text") or f"\n(throughput: {result.get('failure')})")
    return 1 if ours_failed else 0


if __name__ == "__main__":
    sys.exit(main())
