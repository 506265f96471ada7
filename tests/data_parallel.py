"""One fit of a data-parallel test, as a script: run in one process (python
data_parallel.py OUT NAME), or as each process of ``python -m sktriplet.launch``.

Writes OUT/NAME-<process>.npz: the loss of each epoch and the embedding of the
first 300 rows, after ``fit`` and after a ``partial_fit`` that follows it.
Trains data-parallel when JAX sees several devices (several processes, or
``--xla_force_host_platform_device_count`` in one).  With
``--die-after-epoch K``, the last process kills itself at the end of epoch K,
as a lost host would.
"""

import argparse
import os
import signal
import sys

import numpy as np

from sktriplet import launch


def main() -> None:
    process, processes = launch.initialize()

    import jax
    import keras
    from sklearn.datasets import make_classification

    from sktriplet import TripletEmbedder

    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("name")
    parser.add_argument("--die-after-epoch", type=int)
    args = parser.parse_args()

    X, y = make_classification(
        2048, n_features=16, n_informative=8, n_classes=8, random_state=0
    )
    X = X.astype(np.float32)

    class Die(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == args.die_after_epoch and process == processes - 1:
                os.kill(os.getpid(), signal.SIGKILL)

    parallel = jax.device_count() > 1
    emb = TripletEmbedder(
        hidden_layer_sizes=(64,),
        epochs=4 if args.die_after_epoch is None else 100,
        learning_rate_schedule="constant",
        random_state=0,
        strategy=keras.distribution.DataParallel() if parallel else None,
        callbacks=[Die()],
    )
    emb.fit(X, y)
    embedding = emb.transform(X[:300])
    emb.partial_fit(X[:512], y[:512])  # goes on, data-parallel too
    np.savez(
        os.path.join(args.out, f"{args.name}-{process}.npz"),
        loss=emb.history_["loss"],
        embedding=embedding,
        continued=emb.transform(X[:300]),
    )


if __name__ == "__main__":
    main()
    sys.exit(0)
