"""Peak memory of fitting and transforming a numpy.memmap larger than RAM budget.

    python benchmarks/memmap_memory.py [--rows 1500000] [--features 64]

Writes a float32 memmap of random labelled data to a temporary file, then fits
TripletEmbedder on it for one epoch and transforms it, sampling the process's
anonymous resident memory (RssAnon: what the process itself allocated, as opposed
to file pages the kernel can drop) every 20 ms.  Prints the file size next to the
peak growth of RssAnon during fit and during transform (less the output array,
which transform must return).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--features", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    params = dict(mining="hard", batch_size=1024, epochs=1, random_state=0)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.f32")
        X = np.memmap(
            path, dtype=np.float32, mode="w+", shape=(args.rows, args.features)
        )
        for i in range(0, args.rows, 100_000):
            block = rng.normal(size=(min(100_000, args.rows - i), args.features))
            X[i : i + len(block)] = block
        X.flush()
        y = np.arange(args.rows) % 100
        X = np.memmap(
            path, dtype=np.float32, mode="r", shape=(args.rows, args.features)
        )
        size_mb = X.nbytes / 2**20

        TripletEmbedder(**params).fit(np.asarray(X[:5000]), y[:5000])  # load TF
        base = rss_anon_mb()
        start = time.perf_counter()
        with PeakSampler() as fit_peak:
            emb = TripletEmbedder(**params).fit(X, y)
        fit_s = time.perf_counter() - start
        base_t = rss_anon_mb()
        with PeakSampler() as transform_peak:
            E = emb.transform(X)
        output_mb = E.nbytes / 2**20

    print(f"memmap: {args.rows} x {args.features} float32 = {size_mb:.0f} MB")
    print(
        f"fit (1 epoch, {fit_s:.0f} s): peak RssAnon growth "
        f"{fit_peak.peak - base:.0f} MB ({(fit_peak.peak - base) / size_mb:.2f} x file)"
    )
    print(
        f"transform: peak RssAnon growth {transform_peak.peak - base_t:.0f} MB, of "
        f"which the returned embedding is {output_mb:.0f} MB; the rest "
        f"{transform_peak.peak - base_t - output_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
