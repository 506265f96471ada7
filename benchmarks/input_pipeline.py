"""The training input pipeline: sktriplet's own ``tf.data`` pipeline against
two others, side by side in fresh processes.

- ``sktriplet``: blocks of batches (up to ``pipeline.BLOCK_BYTES``) from one
  call into Python each, split into batches by ``tf.data``, the next block
  prepared while the current one trains; autotuning off
  (``sktriplet.keras.pipeline.input_of``).
- ``from_generator``: the same blocks read through
  ``tf.data.Dataset.from_generator`` (sktriplet's pipeline until the blocks
  were read with ``tf.numpy_function`` directly).
- ``one batch per hand-over``: the same pipeline taking one batch per call into
  Python, prefetching two (sktriplet's pipeline until the blocks).
- ``keras``: the batch generator handed to Keras, which wraps it in
  ``tf.data.Dataset.from_generator(...).prefetch(AUTOTUNE)``.

Each run is a fresh interpreter that fits a split of ``run.py`` (or, as
``scaling8000``, say, the training rows of ``scaling.py`` at that size) twice
at the defaults (TensorFlow backend) and reports the first and second fit times and
the stall between Keras's ``on_train_end`` and ``fit`` returning (the
pipeline's teardown).  The pipelines alternate, so that a slow spell of the
machine hits each.  The batches are the same in all three, so the embeddings
must be too.

    python benchmarks/input_pipeline.py --runs 8 --data digits synthetic
    python benchmarks/input_pipeline.py --runs 3 --data scaling8000 scaling32000
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from isolate import run_job  # noqa: E402

from sktriplet.sampling import unblock  # noqa: E402

PIPELINES = ("sktriplet", "from_generator", "one batch per hand-over", "keras")


def _batches(blocks):
    return unblock(blocks(1))


def _one_batch_per_hand_over(blocks, batches_needed):
    import tensorflow as tf

    x, y = next(_batches(blocks))
    signature = (
        tf.TensorSpec(x.shape, tf.float32),
        tf.TensorSpec(y.shape, tf.as_dtype(y.dtype)),
    )
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = tf.data.Dataset.from_generator(
        lambda: _batches(blocks), output_signature=signature
    )
    return dataset.prefetch(2).with_options(options)


def _from_generator(blocks, batches_needed):
    import tensorflow as tf

    from sktriplet.keras.pipeline import BLOCK_BYTES

    x, y = next(blocks(1))
    per_block = int(min(max(BLOCK_BYTES // max(x.nbytes, 1), 1), batches_needed))
    signature = (
        tf.TensorSpec((None, *x.shape[1:]), tf.float32),
        tf.TensorSpec((None, *y.shape[1:]), tf.as_dtype(y.dtype)),
    )
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = tf.data.Dataset.from_generator(
        lambda: blocks(per_block), output_signature=signature
    )
    if per_block > 1:
        dataset = dataset.prefetch(1)
    return dataset.unbatch().prefetch(2).with_options(options)


def _training_rows(data: str):
    if data.startswith("scaling"):
        from scaling import split

        X_train, _, y_train, _ = split(int(data[len("scaling") :]))
        return X_train, y_train
    from data import scaled_split

    _, (X_train, _, y_train, _) = scaled_split(data, quick=True)
    return X_train, y_train


def fit_twice(pipeline: str, data: str) -> dict:
    import time

    import keras

    from sktriplet import TripletEmbedder
    from sktriplet.keras import training

    if pipeline == "keras":  # hand Keras the batch generator
        training.input_of = lambda blocks, batches_needed: _batches(blocks)
    elif pipeline == "one batch per hand-over":
        training.input_of = _one_batch_per_hand_over
    elif pipeline == "from_generator":
        training.input_of = _from_generator
    X_train, y_train = _training_rows(data)
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
    parser.add_argument("--data", nargs="+", default=["digits"])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument(
        "--pipelines",
        nargs="+",
        choices=PIPELINES[1:],
        default=PIPELINES[1:],
        help="the pipelines to compare with sktriplet's (default: all)",
    )
    args = parser.parse_args()
    for data in args.data:
        report(data, args.runs, args.threads, ("sktriplet", *args.pipelines))


def report(data: str, runs: int, threads: int, pipelines=PIPELINES) -> None:
    rows = {p: [] for p in pipelines}
    for _ in range(runs):
        for pipeline in pipelines:
            r = run_job(
                "input_pipeline:fit_twice",
                {"pipeline": pipeline, "data": data},
                timeout=600,
                threads=threads,
                env={"KERAS_BACKEND": "tensorflow"},
            )
            if "failure" in r:
                sys.exit(f"{pipeline}: {r['failure']}")
            rows[pipeline].append(r)
    columns = ("first fit s", "first stall s", "second fit s", "second stall s")
    print(f"\n## {data}, defaults, TensorFlow; {runs} fresh processes per pipeline\n")
    print("| pipeline | " + " | ".join(f"{c} (mean, max)" for c in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for pipeline, results in rows.items():
        cells = [
            f"{np.mean([r[c] for r in results]):.2f}, {max(r[c] for r in results):.2f}"
            for c in columns
        ]
        print(f"| {pipeline} | " + " | ".join(cells) + " |")
    print()
    for column in ("first fit s", "second fit s"):
        means = {p: np.mean([r[column] for r in rows[p]]) for p in pipelines}
        print(
            f"{column[:-2]}, sktriplet / each pipeline (means): "
            + ", ".join(f"{p} {means['sktriplet'] / means[p]:.2f}" for p in pipelines)
        )
    same = {r["embedding sum"] for p in pipelines for r in rows[p]}
    print("same embeddings from every pipeline:", len(same) == 1)


if __name__ == "__main__":
    main()
