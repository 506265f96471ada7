"""Serving latency: onnxruntime running the exported model beside ``transform``.

    python benchmarks/onnx_latency.py

Fits sktriplet's default encoder on the digits (64 features, scaled) and the
default image encoder on 28x28 grayscale images, exports each with
:func:`sktriplet.onnx.to_onnx` (float32) and times, in one process, the median
of many calls embedding one row and 1,000 rows: ``TripletEmbedder.transform``
(numpy for the dense encoder, the compiled Keras function for images), and an
``onnxruntime`` session (CPU, its default threads).  Also the largest gap
between the two outputs.  The table gives the median per call of each and
their ratio; compare only within one run.  Needs the ``onnx`` extra.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def median_seconds(call, repeats: int) -> float:
    call()  # warm up: traces, allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def fitted_models():
    from sklearn.datasets import load_digits

    from sktriplet import TripletEmbedder

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    dense = TripletEmbedder(random_state=0, epochs=20).fit(X, y)
    rng = np.random.RandomState(0)
    images = rng.rand(1_000, 28, 28).astype(np.float32)
    labels = np.arange(1_000) % 10
    for k in range(10):  # a bright band per class, so that training has a signal
        images[labels == k, 2 * k : 2 * k + 3] += 1.0
    conv = TripletEmbedder(random_state=0, epochs=2).fit(images, labels)
    return {
        "dense MLP (digits)": (dense, np.resize(X, (1_000, 64))),
        "conv net (28x28 images)": (conv, images),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    import onnxruntime as ort

    from sktriplet.onnx import to_onnx

    print("| encoder | rows | transform (ms) | onnxruntime (ms) | ratio | max gap |")
    print("|---|---|---|---|---|---|")
    for name, (emb, X) in fitted_models().items():
        session = ort.InferenceSession(
            to_onnx(emb).SerializeToString(), providers=["CPUExecutionProvider"]
        )
        gap = np.abs(session.run(None, {"X": X})[0] - emb.transform(X)).max()
        for rows in (1, 1_000):
            part = X[:rows]
            ours = median_seconds(partial(emb.transform, part), args.repeats)
            theirs = median_seconds(
                partial(session.run, None, {"X": part}), args.repeats
            )
            print(
                f"| {name} | {rows} | {ours * 1e3:.3f} | {theirs * 1e3:.3f} | "
                f"{theirs / ours:.2f} | {gap:.1e} |"
            )


if __name__ == "__main__":
    main()
