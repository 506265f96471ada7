"""sktriplet against its peers: embedding quality, speed and training throughput.

    python benchmarks/run.py            # full run
    python benchmarks/run.py --quick    # under 5 minutes on 2 cores

For each dataset, every method is fitted on the same training split and prints one
row: fit seconds, 1-NN and 5-NN accuracy of a classifier fitted on the training
embedding and scored on the held-out embedding, MAP@R of leave-one-out retrieval
among the held-out samples, seconds to transform the whole held-out set, and
milliseconds to transform one row.  A last row gives sktriplet's ratio to the best
peer in each column (above 1 is better for accuracy and MAP@R, below 1 is better
for times).  All figures come from the one run.

Peers that need the ``bench`` extra (``pip install -e ".[bench]"``) are skipped,
with a note, when it is missing.  Then the training throughput of sktriplet's
default model is reported as a share of this machine's float32 matmul ceiling,
both measured in the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from peers import BUDGET_MATCHED, NEURAL, PEERS  # noqa: E402
from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktriplet.metrics import mean_average_precision_at_r  # noqa: E402

COLUMNS = ["fit s", "1-NN acc", "5-NN acc", "MAP@R", "transform-all s", "one-row ms"]
HIGHER_IS_BETTER = {"1-NN acc", "5-NN acc", "MAP@R"}


def datasets(quick: bool):
    X, y = load_digits(return_X_y=True)
    yield "digits", train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    n = 5000 if quick else 20000
    X, y = make_classification(
        n_samples=n,
        n_features=50,
        n_informative=30,
        n_classes=50,
        n_clusters_per_class=2,
        class_sep=1.5,
        random_state=0,
    )
    name = f"many-class synthetic (n={n})"
    yield name, train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)


def one_row_ms(embed, X, repeats=200) -> float:
    rows = [X[i : i + 1] for i in range(min(repeats, len(X)))]
    embed(rows[0])  # warm up
    times = []
    for row in rows:
        start = time.perf_counter()
        embed(row)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def evaluate(fit, X_train, y_train, X_test, y_test, cfg) -> dict:
    start = time.perf_counter()
    embed = fit(X_train, y_train, cfg)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    E_test = np.asarray(embed(X_test))
    transform_s = time.perf_counter() - start
    E_train = np.asarray(embed(X_train))
    knn = {k: KNeighborsClassifier(n_neighbors=k).fit(E_train, y_train) for k in (1, 5)}
    return {
        "fit s": fit_s,
        "1-NN acc": knn[1].score(E_test, y_test),
        "5-NN acc": knn[5].score(E_test, y_test),
        "MAP@R": mean_average_precision_at_r(E_test, y_test),
        "transform-all s": transform_s,
        "one-row ms": one_row_ms(embed, X_test),
    }


def print_table(name: str, rows: dict) -> None:
    print(f"\n## {name}\n")
    print("| method | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for method, r in rows.items():
        cells = [
            f"{r[c]:.3f}" if c in HIGHER_IS_BETTER else f"{r[c]:.3g}" for c in COLUMNS
        ]
        print(f"| {method} | " + " | ".join(cells) + " |")
    ours = rows["sktriplet"]
    peers = {m: r for m, r in rows.items() if m != "sktriplet"}
    ratios = []
    for c in COLUMNS:
        # Fit time is compared with the neural peers (the others train no
        # network), and no time with raw features, which do nothing.
        if c == "fit s":
            pool = {m: r for m, r in peers.items() if m in NEURAL}
        elif c in HIGHER_IS_BETTER:
            pool = peers
        else:
            pool = {m: r for m, r in peers.items() if m != "raw"}
        if not pool:
            ratios.append("n/a")
            continue
        pick = max if c in HIGHER_IS_BETTER else min
        best = pick(pool, key=lambda m: pool[m][c])
        ratios.append(f"{ours[c] / max(pool[best][c], 1e-12):.3f} ({best})")
    print("| **sktriplet / best peer** | " + " | ".join(ratios) + " |")


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
    from sktriplet.keras.training import steps_per_call
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller synthetic set")
    parser.add_argument("--only", nargs="*", help="run only these methods")
    args = parser.parse_args()
    cfg = dict(dim=32, hidden=256, batch=128, epochs=15, seed=0, threads=2)
    methods = {"sktriplet": "sktriplet", **{m: m for m in PEERS}}
    # Import the frameworks before any timing, so that no method's fit time
    # includes loading a framework that another method has loaded already.
    import keras  # noqa: F401
    from peers import sktriplet

    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    print(f"# sktriplet benchmark ({'quick' if args.quick else 'full'})")
    print(
        f"network peers: MLP {cfg['hidden']} hidden, {cfg['dim']}-d embedding, "
        f"{cfg['epochs']} epochs (or as many as sktriplet's budget, where named), "
        f"batch {cfg['batch']}, seed {cfg['seed']}; sktriplet at its defaults"
    )
    digits = None
    for name, (X_tr, X_te, y_tr, y_te) in datasets(args.quick):
        scaler = StandardScaler().fit(X_tr)
        X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
        digits = digits or (X_tr, y_tr)
        on_digits = name.startswith("digits")
        rows = {}
        for method in methods:
            if args.only and method not in args.only and method != "sktriplet":
                continue
            if method == "LMNN" and not on_digits:
                print(f"(LMNN skipped on {name}: over 10 minutes on 2 cores)")
                continue
            if args.quick and method in BUDGET_MATCHED and not on_digits:
                print(f"({method} skipped on {name} in --quick: the full run has it)")
                continue
            fit = sktriplet if method == "sktriplet" else PEERS[method]
            try:
                rows[method] = evaluate(fit, X_tr, y_tr, X_te, y_te, cfg)
            except ImportError as exc:
                print(f"({method} skipped: {exc}; pip install -e '.[bench]')")
            except Exception as exc:  # an optional peer broken by its dependencies
                if method == "sktriplet" or fit.__module__ != "peers":
                    raise
                print(
                    f"({method} skipped: it failed here: {type(exc).__name__}: {exc})"
                )
            print(f"  done: {method}", file=sys.stderr, flush=True)
        print_table(name, rows)
        neural = [m for m in rows if m in NEURAL]
        if neural:
            print(f"\n(neural peers: {', '.join(neural)})")
            ours = rows["sktriplet"]
            reaching = [m for m in neural if rows[m]["MAP@R"] >= ours["MAP@R"]]
            if reaching:
                fastest = min(reaching, key=lambda m: rows[m]["fit s"])
                print(
                    f"fastest neural peer reaching sktriplet's MAP@R: {fastest}, "
                    f"fit {rows[fastest]['fit s']:.3g} s against sktriplet's "
                    f"{ours['fit s']:.3g} s"
                )
            else:
                print(f"no neural peer reaches sktriplet's MAP@R ({ours['MAP@R']:.3f})")
    emb = training_throughput(*digits)
    transform_speed(emb, digits[0])


if __name__ == "__main__":
    main()
