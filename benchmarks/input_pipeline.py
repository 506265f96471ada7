"""The training input pipeline: sktriplet's own ``tf.data`` pipeline against the
one Keras builds around a Python generator, side by side in fresh processes.

Keras wraps a generator in ``tf.data.Dataset.from_generator(...).prefetch(AUTOTUNE)``;
sktriplet builds the same dataset with two batches prefetched and autotuning off
(``sktriplet.keras.training._input_of``).  Each run is a fresh interpreter that
fits the digits split of ``run.py`` twice at the defaults (TensorFlow backend) and
reports the first and second fit times and the stall between Keras's
``on_train_end`` and ``fit`` returning (the pipeline's teardown).  The two
pipelines alternate, so that a slow spell of the machine hits both.

    python benchmarks/input_pipeline.py --runs 8
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from isolate import run_job  # noqa: E402

PIPELINES = ("sktriplet", "keras")


def fit_twice(pipeline: str) -> dict:
    import time

    import keras

    from sktriplet import TripletEmbedder
    from sktriplet.keras import training

    if pipeline == "keras":  # hand Keras the generator, as before
        training._input_of = lambda batches: batches()
    from run import scaled_split

    _, (X_train, _, y_train, _) = scaled_split("digits", quick=True)
    marks = {}

    class Teardown(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            marks["end"] = time.perf_counter()

    result = {}
    for name in ("first fit s", "second fit s"):
        start = time.perf_counter()
        emb = TripletEmbedder(random_state=0, callbacks=[Teardown()])
        emb.fit(X_train, y_train)
        done = time.perf_counter()
        result[name] = done - start
        # on_train_end runs last in fit; what follows is the pipeline's teardown
        # and the estimator's commit (a few ms).
        result[name.replace("fit s", "stall s")] = done - marks["end"]
    result["embedding sum"] = float(np.abs(emb.transform(X_train)).sum())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    rows = {p: [] for p in PIPELINES}
    for _ in range(args.runs):
        for pipeline in PIPELINES:
            r = run_job(
                "input_pipeline:fit_twice",
                {"pipeline": pipeline},
                timeout=600,
                threads=args.threads,
                env={"KERAS_BACKEND": "tensorflow"},
            )
            if "failure" in r:
                sys.exit(f"{pipeline}: {r['failure']}")
            rows[pipeline].append(r)
    columns = ("first fit s", "first stall s", "second fit s", "second stall s")
    print(f"digits, defaults, TensorFlow; {args.runs} fresh processes per pipeline")
    print("| pipeline | " + " | ".join(f"{c} (mean, max)" for c in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for pipeline, results in rows.items():
        cells = [
            f"{np.mean([r[c] for r in results]):.2f}, {max(r[c] for r in results):.2f}"
            for c in columns
        ]
        print(f"| {pipeline} | " + " | ".join(cells) + " |")
    means = {p: np.mean([r["first fit s"] for r in rows[p]]) for p in PIPELINES}
    ratio = means["sktriplet"] / means["keras"]
    print(f"\nfirst fit, sktriplet / keras pipeline: {ratio:.2f}")
    same = {r["embedding sum"] for p in PIPELINES for r in rows[p]}
    print("same embeddings from both pipelines:", len(same) == 1)


if __name__ == "__main__":
    main()
