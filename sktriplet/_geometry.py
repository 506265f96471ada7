"""What the plan measures of the raw features: each feature's spread (the unit
of the input noise), the channel moments of images (their standardisation),
and the principal axes the default encoder starts from when classes are small.

With a few labelled rows a class, a network trained from random weights learns
a geometry that separates its training rows but places new rows worse than
the raw features do: held-out 1-NN accuracy fell below plain 1-NN on the
features (issue #47, ``docs/few_rows.txt``).  Below ``FEW_ROWS_PER_CLASS``
labelled rows a class, the default MLP therefore adds its output to a linear
map that starts as the principal axes of the training rows (centred, as PCA
does): at the start the embedding is the raw geometry, and the MLP, whose last
layer starts at zero, learns a correction of it.

This module is numpy and scikit-learn only; the plan carries the start to the
Keras package, which sets it as the weights of the encoder's ``start`` layer.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FEW_ROWS_PER_CLASS",
    "START_SCALE",
    "channel_moments",
    "noise_scale",
    "principal_start",
    "sample_inputs",
    "spread_rows",
]

SPREAD_ROWS = 10_000  # rows that estimate each feature's spread

# Below this many labelled rows a class (the mean), the default MLP starts from
# the raw geometry.  At 50 rows a class and above, the digits gained nothing
# from it (docs/few_rows.txt); the quality gates (80 rows a class and more)
# keep the plain MLP.
FEW_ROWS_PER_CLASS = 50
# The start's principal axes have this length.  The embedding is normalised, so
# the length changes only how fast Adam's steps (about ``learning_rate`` per
# weight) turn the start away from the raw geometry: a twentieth as fast as
# from unit axes.  Chosen among 10, 20 and 40 in exploratory runs on the
# digits at 3-30 rows a class (a script not kept; not in docs/few_rows.txt).
START_SCALE = 20.0
# The principal axes are fitted on at most this many training rows.
MAX_START_ROWS = 10_000


def principal_start(X, rows, n_components: int, seed: int):
    """The ``(kernel, bias)`` of the linear map that starts at the principal
    axes of ``X[rows]``: ``(x - mean) @ axes * START_SCALE``, as float32.

    The first axes are the principal ones (PCA, seeded by ``seed``); past the
    rank of the rows, orthonormal axes of the rest of the feature space fill
    the ``n_components`` (new rows keep their distances there); past the number
    of features, the kernel's columns are zero.

    >>> X = np.random.RandomState(0).normal(size=(12, 5))
    >>> kernel, bias = principal_start(X, np.arange(6), 7, seed=0)
    >>> kernel.shape, bias.shape, kernel.dtype
    ((5, 7), (7,), dtype('float32'))
    >>> gram = kernel.T @ kernel / START_SCALE**2
    >>> bool(np.allclose(gram[:5, :5], np.eye(5), atol=1e-5))
    True
    >>> float(abs(kernel[:, 5:]).max())
    0.0
    """
    from sklearn.decomposition import PCA

    rng = np.random.RandomState(seed)
    if len(rows) > MAX_START_ROWS:
        rows = np.sort(rng.choice(rows, MAX_START_ROWS, replace=False))
    sample = np.asarray(X[rows], dtype=np.float64)
    n_features = sample.shape[1]
    width = min(n_components, n_features)
    mean, axes = sample.mean(axis=0), np.zeros((n_features, 0))
    if len(sample) > 1 and np.ptp(sample, axis=0).max() > 0:
        pca = PCA(min(width, len(sample)), random_state=seed).fit(sample)
        # Axes with (numerically) no variance are left to the completion below.
        variance = pca.explained_variance_
        axes = pca.components_[variance > 1e-12 * variance.max()].T
    rank = axes.shape[1]
    if rank < width:
        # Orthonormal axes of the complement: a seeded Gaussian draw with the
        # principal axes projected out.
        draw = rng.normal(size=(n_features, width - rank))
        draw -= axes @ (axes.T @ draw)
        axes = np.hstack([axes, np.linalg.qr(draw)[0]])
    kernel = np.zeros((n_features, n_components))
    kernel[:, :width] = axes * START_SCALE
    bias = -mean @ kernel
    return kernel.astype(np.float32), bias.astype(np.float32)


def spread_rows(rows: np.ndarray) -> np.ndarray:
    """At most ``SPREAD_ROWS`` evenly spaced ones of ``rows``, which estimate
    the spread of the features (X is never copied whole)."""
    return rows[:: max(len(rows) // SPREAD_ROWS, 1)]


def noise_scale(X, rows: np.ndarray, level: float) -> np.ndarray | None:
    """Standard deviation of the training noise of each input feature, or None
    when ``level`` is 0.

    ``level`` is in units of each feature's spread over the training ``rows``
    (see :func:`spread_rows`), so that the noise means the same whatever the
    units of ``X``.
    """
    if level == 0:
        return None
    spread = np.std(X[spread_rows(rows)], axis=0, dtype=np.float64)
    return (level * spread).astype(np.float32)


def channel_moments(X, rows: np.ndarray, chunk: int = 256):
    """Mean and variance of each channel of the images ``X[spread_rows(rows)]``,
    read ``chunk`` images at a time (memory stays bounded for any image size).

    >>> images = np.stack([np.full((3, 3, 1), 1.0), np.full((3, 3, 1), 3.0)])
    >>> mean, variance = channel_moments(images, np.arange(2))
    >>> mean.tolist(), variance.tolist()
    ([2.0], [1.0])
    """
    rows = spread_rows(rows)
    total = np.zeros(X.shape[-1])
    squares = np.zeros(X.shape[-1])
    for i in range(0, len(rows), chunk):
        images = X[rows[i : i + chunk]].astype(np.float64)
        total += images.sum(axis=(0, 1, 2))
        squares += np.square(images).sum(axis=(0, 1, 2))
    count = len(rows) * X.shape[1] * X.shape[2]
    mean = total / count
    return mean, np.maximum(squares / count - mean**2, 0.0)


def sample_inputs(X, rows: np.ndarray) -> tuple[bool, float]:
    """What the collapse check (:func:`sktriplet._checks.warn_if_collapsed`)
    needs of the inputs ``X[rows]``: whether they are all one sample (whose
    embeddings are one point without any collapse), and the largest absolute
    value among them (its advice to scale the features quotes it).

    >>> sample_inputs(np.array([[1.0, -3.0], [1.0, -3.0]]), np.arange(2))
    (True, 3.0)
    """
    flat = np.asarray(X[rows]).reshape(len(rows), -1)
    identical = bool(np.ptp(flat, axis=0).max(initial=0) == 0)
    return identical, float(np.abs(flat).max(initial=0.0))
