"""The default image path against the same pixels flattened, side by side.

    python benchmarks/images.py                 # both image sets
    python benchmarks/images.py --seeds 3       # mean over random states

Two image sets that need nothing beyond an install:

- ``digits``: scikit-learn's 8x8 digits as ``(n, 8, 8, 1)`` images in [0, 1];
- ``shifted digits``: each digit upsampled to 24x24 (bilinear) and placed at a
  random position in a 32x32 frame, as ``uint8`` images in 0-255 without a
  channel axis, ``(n, 32, 32)``: the same classes, where the position of a
  stroke no longer says which digit it is.

Each split is stratified 70/30.  ``sktriplet`` is ``TripletEmbedder()`` at its
defaults on the images; every other row gets the pixels flattened and scaled
(``StandardScaler``): sktriplet's default MLP and the peers of
``benchmarks/run.py``.  Each method runs in its own process; the table gives the
columns of ``run.py`` and sktriplet's ratio to the best flat-pixel row, and a
last line the image path's fit time over the flat MLP's.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from isolate import run_job  # noqa: E402
from peers import NEURAL, PEERS  # noqa: E402
from report import mean_row, print_table  # noqa: E402
from run import evaluate, method, preload  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

FLAT_MLP = "sktriplet MLP, flat pixels"
# LMNN takes tens of minutes on a thousand pixel features.
METHODS = ["sktriplet", FLAT_MLP, *(p for p in PEERS if p != "LMNN")]


def digits_images():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).reshape(-1, 8, 8, 1), y


def shifted_digits(size: int = 32, zoom: int = 3, seed: int = 0):
    from scipy.ndimage import zoom as upsample

    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(seed)
    side = 8 * zoom
    images = np.zeros((len(X), size, size), dtype=np.uint8)
    for i, digit in enumerate(X.reshape(-1, 8, 8) / 16.0):
        big = np.clip(upsample(digit, zoom, order=1), 0, 1)
        top, left = rng.randint(0, size - side + 1, 2)
        images[i, top : top + side, left : left + side] = np.round(255 * big)
    return images, y


DATASETS = {"digits": digits_images, "shifted digits": shifted_digits}


def image_job(dataset: str, name: str, seed: int, threads: int) -> dict:
    """One row: ``name`` on ``dataset``'s split, in a fresh interpreter."""
    preload("sktriplet" if name.startswith("sktriplet") else name)
    X, y = DATASETS[dataset]()
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    cfg = dict(dim=32, hidden=256, batch=128, epochs=15, seed=seed, threads=threads)
    if name == "sktriplet":
        from sktriplet import TripletEmbedder

        def fit(X, y, cfg):
            return TripletEmbedder(random_state=cfg["seed"]).fit(X, y).transform

        return evaluate(fit, X_tr, y_tr, X_te, y_te, cfg, second=True)
    scaler = StandardScaler().fit(X_tr.reshape(len(X_tr), -1))
    X_tr, X_te = (scaler.transform(Z.reshape(len(Z), -1)) for Z in (X_tr, X_te))
    fit = method("sktriplet" if name == FLAT_MLP else name)
    second = name == FLAT_MLP or name in NEURAL
    return evaluate(fit, X_tr, y_tr, X_te, y_te, cfg, second=second)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--only", nargs="*", help="run only these methods")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    methods = args.only or METHODS
    print("# the default image path against flat pixels")
    print(
        f"random states 0-{args.seeds - 1}; each method in its own process, "
        f"{args.threads} threads per pool"
    )
    for dataset in args.datasets:
        rows = {}
        for name in methods:
            runs = [
                run_job(
                    "images:image_job",
                    dict(dataset=dataset, name=name, seed=seed, threads=args.threads),
                    timeout=args.timeout,
                    threads=args.threads,
                )
                for seed in range(args.seeds)
            ]
            rows[name] = mean_row(runs)
            print(f"  {rows[name].get('failure', 'done')}: {name}", file=sys.stderr)
        X, _ = DATASETS[dataset]()
        print_table(f"{dataset}: {X.shape[1:]} {X.dtype} images", rows)
        image, flat = rows.get("sktriplet", {}), rows.get(FLAT_MLP, {})
        if "fit s" in image and "fit s" in flat:
            print(
                f"\nfit time, image path / flat MLP: first fit "
                f"{image['fit s'] / flat['fit s']:.2f}, second fit "
                f"{image['second fit s'] / flat['second fit s']:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
