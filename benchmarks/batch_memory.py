"""Peak memory of a fit by mining strategy and batch size, with two classes.

    python benchmarks/batch_memory.py [--batches 256 512 768]

Two classes put half of each batch in each class: the case where a strategy that
lists each anchor's positives against the batch would hold a
``(batch, batch / 2, batch)`` tensor, growing with the cube of the batch.  Each
(strategy, batch size) fit runs in its own fresh process (see ``isolate.py``),
on 4 batches of 32-feature data, for 2 epochs; the figure is the peak growth of
the process's anonymous resident memory (RssAnon) during the fit, over the
memory it held with Keras loaded, sampled every 20 ms.  A last column forces
``"all"`` onto that cube, as ``fit`` did for any number of positives before
it took the sorted path beyond 16: the two side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from isolate import run_job  # noqa: E402
from memmap_memory import PeakSampler, rss_anon_mb  # noqa: E402

# Column: (mining, whether "all" is forced onto the (batch, positives, batch)
# cube it took for any number of positives before it switched to the sorted path).
STRATEGIES = {
    "semihard": ("semihard", False),
    "all": ("all", False),
    "hard": ("hard", False),
    "all on the cube (former path)": ("all", True),
}


def measure(mining: str, batch: int, cube: bool = False) -> dict:
    import keras  # noqa: F401  (loaded before the baseline)
    import numpy as np

    from sktriplet import TripletEmbedder, _plan

    if cube:  # every positive on the cube, as fit did for "all" before

        def every_positive(mining, rows_per_class):
            return max(rows_per_class - 1, 1)

        _plan.positives_per_anchor = every_positive

    rng = np.random.RandomState(0)
    X = rng.normal(size=(4 * batch, 32)).astype(np.float32)
    y = np.arange(4 * batch) % 2
    params = dict(mining=mining, batch_size=batch, epochs=2, random_state=0)
    base = rss_anon_mb()
    with PeakSampler() as peak:
        TripletEmbedder(**params).fit(X, y)
    return {"fit MB": peak.peak - base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="*", default=[256, 512, 768])
    args = parser.parse_args()
    print("peak RssAnon growth during fit, MB (2 classes, each fit in its own process)")
    print("| batch | " + " | ".join(STRATEGIES) + " | all / semihard |")
    print("|---" * (len(STRATEGIES) + 2) + "|")
    for batch in args.batches:
        row = {}
        for column, (mining, cube) in STRATEGIES.items():
            r = run_job(
                "batch_memory:measure",
                dict(mining=mining, batch=batch, cube=cube),
                timeout=1200,
                threads=os.cpu_count(),
            )
            row[column] = r.get("fit MB", r.get("failure"))
        cells = [f"{v:.0f}" if isinstance(v, float) else str(v) for v in row.values()]
        ratio = (
            f"{row['all'] / row['semihard']:.2f}"
            if all(isinstance(row[m], float) for m in ("all", "semihard"))
            else ""
        )
        print(f"| {batch} | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main()
