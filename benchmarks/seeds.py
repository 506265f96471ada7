"""sktriplet's held-out quality across random states, at the defaults or with
parameters changed: how the defaults were chosen.

    python benchmarks/seeds.py digits --seeds 8
    python benchmarks/seeds.py digits --seeds 8 defaults input_noise=0
    python benchmarks/seeds.py synthetic --seeds 1 input_noise=0.3

Uses the splits of ``benchmarks/run.py`` (digits: stratified 70/30; synthetic:
the 20000-sample many-class set, 80/20; both scaled).  Each ``name=value``
argument is one configuration (several, comma-separated, in one argument);
``defaults``, or no argument, is the defaults.  Prints, per configuration, the
MAP@R and 1-NN accuracy of every random state and their mean, the median fit
time, and the epochs each fit ran.
"""

from __future__ import annotations

import argparse
import ast
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from data import scaled_split  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

from sktriplet import TripletEmbedder  # noqa: E402
from sktriplet.metrics import mean_average_precision_at_r  # noqa: E402


def parse(config: str) -> dict:
    """``"a=1,b=(2, 3)"`` as keyword arguments: ``{"a": 1, "b": (2, 3)}``."""
    if config == "defaults":
        return {}
    call = ast.parse(f"f({config})", mode="eval").body
    if call.args:
        raise ValueError(f"expected name=value pairs, got {config!r}")
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=["digits", "synthetic"])
    parser.add_argument("configs", nargs="*", default=["defaults"])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument(
        "--quick", action="store_true", help="the 5000-sample set of run.py --quick"
    )
    args = parser.parse_intermixed_args()
    _, (X_tr, X_te, y_tr, y_te) = scaled_split(args.dataset, quick=args.quick)
    print(
        "| parameters | MAP@R per seed | mean | 1-NN per seed | mean | fit s "
        "| epochs run |"
    )
    print("|---|---|---|---|---|---|---|")
    for config in args.configs:
        scores, accuracies, times, epochs = [], [], [], []
        for seed in range(args.seeds):
            start = time.perf_counter()
            emb = TripletEmbedder(random_state=seed, **parse(config))
            emb.fit(X_tr, y_tr)
            times.append(time.perf_counter() - start)
            epochs.append(emb.n_iter_)
            E_tr, E_te = emb.transform(X_tr), emb.transform(X_te)
            scores.append(mean_average_precision_at_r(E_te, y_te, sample_size=None))
            knn = KNeighborsClassifier(n_neighbors=1).fit(E_tr, y_tr)
            accuracies.append(knn.score(E_te, y_te))
        print(
            f"| {config} "
            f"| {' '.join(f'{s:.3f}' for s in scores)} | {np.mean(scores):.3f} "
            f"| {' '.join(f'{a:.3f}' for a in accuracies)} | {np.mean(accuracies):.4f} "
            f"| {np.median(times):.1f} | {' '.join(map(str, epochs))} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
