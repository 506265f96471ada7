"""GPU check: train on the GPU and the CPU, compare speed and results, mixed precision.

    KERAS_BACKEND=jax python benchmarks/gpu_check.py     # or tensorflow / torch

One command, a few minutes, with whichever Keras backend the machine has.  It
fits the default TripletEmbedder on the same synthetic data on the CPU and on the
GPU, prints the time of each and their ratio, checks that the two embeddings
agree (MAP@R within 0.02, and the first epoch's loss within 1e-3 relative), then
trains with mixed_bfloat16 and mixed_float16 on the GPU, and, on TensorFlow with
two or more GPUs, with MirroredStrategy.  It exits non-zero when a check fails or
when no GPU is seen.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktriplet import TripletEmbedder  # noqa: E402
from sktriplet.keras.devices import gpu_count  # noqa: E402


def fit(X, y, **params):
    start = time.perf_counter()
    emb = TripletEmbedder(epochs=20, random_state=0, **params).fit(X, y)
    return emb, time.perf_counter() - start


def main() -> int:
    backend = keras.backend.backend()
    gpus = gpu_count()
    print(f"Keras {keras.__version__}, backend {backend}, GPUs seen: {gpus}")
    if gpus == 0:
        print("FAIL: no GPU seen by this backend")
        return 1
    X, y = make_classification(
        n_samples=20000,
        n_features=64,
        n_informative=40,
        n_classes=20,
        n_clusters_per_class=1,
        class_sep=2.0,
        random_state=0,
    )
    X = StandardScaler().fit_transform(X).astype(np.float32)
    failures = []

    fit(X[:2000], y[:2000], device="cpu")  # warm up both devices
    fit(X[:2000], y[:2000], device="gpu")
    cpu, cpu_s = fit(X, y, device="cpu")
    gpu, gpu_s = fit(X, y, device="gpu")
    cpu_map, gpu_map = cpu.score(X[:4000], y[:4000]), gpu.score(X[:4000], y[:4000])
    print(
        f"fit, 20 epochs: CPU {cpu_s:.1f} s, GPU {gpu_s:.1f} s, "
        f"GPU speed-up {cpu_s / gpu_s:.1f}x"
    )
    print(f"MAP@R: CPU {cpu_map:.3f}, GPU {gpu_map:.3f}")
    first = (cpu.history_["loss"][0], gpu.history_["loss"][0])
    print(f"first-epoch loss: CPU {first[0]:.6f}, GPU {first[1]:.6f}")
    if abs(cpu_map - gpu_map) > 0.02:
        failures.append("CPU and GPU MAP@R differ by more than 0.02")
    if abs(first[0] - first[1]) > 1e-3 * abs(first[0]):
        failures.append("CPU and GPU first-epoch losses differ by more than 1e-3")

    for precision in ("mixed_bfloat16", "mixed_float16"):
        emb, seconds = fit(X, y, device="gpu", precision=precision)
        score = emb.score(X[:4000], y[:4000])
        print(
            f"{precision}: fit {seconds:.1f} s, MAP@R {score:.3f}, "
            f"output dtype {emb.transform(X[:2]).dtype}"
        )
        if not np.isfinite(emb.history_["loss"]).all() or score < gpu_map - 0.05:
            failures.append(f"{precision} training diverged or lost quality")

    if backend == "tensorflow" and gpus >= 2:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        emb, seconds = fit(X, y, strategy=strategy)
        score = emb.score(X[:4000], y[:4000])
        print(
            f"MirroredStrategy over {strategy.num_replicas_in_sync} GPUs: "
            f"fit {seconds:.1f} s, MAP@R {score:.3f}"
        )
        if abs(score - gpu_map) > 0.02:
            failures.append("MirroredStrategy MAP@R differs from one GPU")
    else:
        print("MirroredStrategy: skipped (needs TensorFlow and two GPUs)")

    for failure in failures:
        print("FAIL:", failure)
    print("GPU check passed" if not failures else "GPU check FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
