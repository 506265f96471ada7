"""Peak memory of fitting and transforming a numpy.memmap larger than RAM budget.

    python benchmarks/memmap_memory.py [--rows 1500000] [--features 64 256]

Writes a float32 and a uint8 memmap of random labelled data (of the same size at
the defaults) to temporary files, then, each in its own process, fits
TripletEmbedder on one for an epoch (early stopping at its default: on, above
10000 rows) and transforms it, sampling the process's anonymous resident memory
(RssAnon: what the process itself allocated, as opposed to file pages the kernel
can drop) every 20 ms.  Prints the file size next to the peak growth of RssAnon
during fit and during transform (less the output array, which transform must
return).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from isolate import run_job  # noqa: E402

from sktriplet import TripletEmbedder  # noqa: E402


def rss_anon_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


class PeakSampler:
    def __init__(self):
        self.peak = rss_anon_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_anon_mb())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon_mb())


def measure(dtype: str, rows: int, features: int) -> dict:
    """Fit one epoch on, then transform, a memmap of ``dtype``; the peaks."""
    rng = np.random.RandomState(0)
    # Defaults otherwise: above 10000 rows, early stopping holds out and scores
    # up to 5000 rows every epoch.
    params = dict(mining="hard", batch_size=1024, epochs=1, random_state=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.bin")
        X = np.memmap(path, dtype=dtype, mode="w+", shape=(rows, features))
        for i in range(0, rows, 100_000):
            block = rng.normal(size=(min(100_000, rows - i), features))
            if np.dtype(dtype).kind == "u":  # pixel-like values in 0-255
                block = np.clip(128 + 40 * block, 0, 255)
            X[i : i + len(block)] = block
        X.flush()
        y = np.arange(rows) % 100
        X = np.memmap(path, dtype=dtype, mode="r", shape=(rows, features))

        warm = np.asarray(X[:20000])  # load TF and trace, as the real fit will
        TripletEmbedder(**params).fit(warm, y[:20000])
        base = rss_anon_mb()
        start = time.perf_counter()
        with PeakSampler() as fit_peak:
            emb = TripletEmbedder(**params).fit(X, y)
        fit_s = time.perf_counter() - start
        base_t = rss_anon_mb()
        with PeakSampler() as transform_peak:
            E = emb.transform(X)
    return {
        "file MB": X.nbytes / 2**20,
        "fit s": fit_s,
        "early stopping": "val_map_at_r" in emb.history_,
        "fit MB": fit_peak.peak - base,
        "transform MB": transform_peak.peak - base_t - E.nbytes / 2**20,
        "output MB": E.nbytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument(
        "--features",
        type=int,
        nargs=2,
        default=[64, 256],
        metavar=("FLOAT32", "UINT8"),
        help="columns of the float32 and of the uint8 memmap (default: 64 and "
        "256, files of the same size)",
    )
    args = parser.parse_args()
    print("| memmap | file MB | fit s | fit peak MB (x file) | transform MB |")
    print("|---|---|---|---|---|")
    for dtype, features in zip(("float32", "uint8"), args.features):
        job = dict(dtype=dtype, rows=args.rows, features=features)
        r = run_job("memmap_memory:measure", job, timeout=3600, threads=os.cpu_count())
        if "failure" in r:
            print(f"| {dtype} | {r['failure']} | | | |")
            continue
        stops = "early stopping on" if r["early stopping"] else "no early stopping"
        print(
            f"| {args.rows} x {features} {dtype} ({stops}) | {r['file MB']:.0f} | "
            f"{r['fit s']:.0f} | {r['fit MB']:.0f} ({r['fit MB'] / r['file MB']:.2f}) "
            f"| {r['transform MB']:.0f} beyond the {r['output MB']:.0f} MB output |"
        )


if __name__ == "__main__":
    main()
