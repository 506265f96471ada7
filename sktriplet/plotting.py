"""Plots of a fitted TripletEmbedder: training history, embedding map, neighbours.

matplotlib is an optional dependency (``pip install "sktriplet[plot]"``).  Every
function draws on the axes it is given (or on a new figure) and returns the
matplotlib objects, so that users can restyle them.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_embedding", "plot_history", "plot_neighbors"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "sktriplet.plotting needs matplotlib; install it with "
            "pip install matplotlib (or pip install 'sktriplet[plot]')."
        ) from exc
    return plt


def _history_of(estimator_or_history) -> dict:
    if isinstance(estimator_or_history, dict):
        return estimator_or_history
    check_is_fitted(estimator_or_history)
    return estimator_or_history.history_


def plot_history(estimator_or_history, axes=None):
    """Plot the per-epoch loss, active-triplet fraction and validation MAP@R.

    Parameters
    ----------
    estimator_or_history : TripletEmbedder or dict
        A fitted estimator, or its ``history_``.
    axes : sequence of matplotlib Axes, optional
        One per panel (two, or three with ``val_map_at_r``).  New ones are made
        when None.

    Returns
    -------
    fig : matplotlib Figure
    axes : ndarray of Axes
    """
    plt = _pyplot()
    history = _history_of(estimator_or_history)
    panels = [
        ("loss", "triplet loss"),
        ("active_fraction", "active triplets"),
        ("val_map_at_r", "validation MAP@R"),
    ]
    panels = [(key, title) for key, title in panels if key in history]
    if axes is None:
        fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3))
    axes = np.atleast_1d(axes)
    for ax, (key, title) in zip(axes, panels):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", markersize=3)
        ax.set_title(title)
        ax.set_xlabel("epoch")
    fig = axes[0].figure
    fig.tight_layout()
    return fig, axes


def plot_embedding(estimator, X, y, ax=None, *, label=None, **scatter_kwargs):
    """Scatter a 2-D view of the embedding of ``X``, coloured by label.

    Embeddings of more than two dimensions are projected on their first two
    principal components.

    Parameters
    ----------
    estimator : fitted TripletEmbedder
    X : array-like
        The samples to embed.
    y : array-like of shape (n_samples,) or (n_samples, n_labels)
        Labels, or a multi-label indicator matrix (dense or sparse), as in
        ``fit``.
    ax : matplotlib Axes, optional
    label : int, optional
        For a multi-label ``y`` (required there): the column whose samples are
        coloured apart from the others, so that the map shows where the
        samples with that label lie.
    **scatter_kwargs
        Passed to ``ax.scatter``.

    Returns
    -------
    ax : matplotlib Axes
    scatter : matplotlib PathCollection
    """
    from sklearn.decomposition import PCA

    codes, title = _colour_codes(y, label)
    plt = _pyplot()
    E = estimator.transform(X)
    if E.shape[1] > 2:
        E = PCA(n_components=2, random_state=0).fit_transform(E)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    options = {"s": 8, "cmap": "tab10" if codes.max() < 10 else "tab20"}
    options.update(scatter_kwargs)
    scatter = ax.scatter(E[:, 0], E[:, 1], c=codes, **options)
    ax.set_title(f"embedding (first two principal components){title}")
    return ax, scatter


def _colour_codes(y, label) -> tuple[np.ndarray, str]:
    """A colour code per sample and what the title adds: the label of each
    sample, or for a multi-label ``y`` whether it has label ``label``."""
    import scipy.sparse as sp

    Y = y.toarray() if sp.issparse(y) else np.asarray(y)
    if Y.ndim == 2 and Y.shape[1] == 1:
        Y = Y.ravel()
    if Y.ndim == 1:
        if label is not None:
            raise ValueError(
                "label picks a column of a multi-label y; this y holds one label "
                f"per sample. Received: label={label!r}"
            )
        return np.unique(Y, return_inverse=True)[1], ""
    n_labels = Y.shape[1]
    if label is None:
        raise ValueError(
            f"y is a multi-label indicator matrix of {n_labels} labels, which "
            "one colour per sample cannot show: pass label=j to colour the "
            f"samples that have label j (0 <= j < {n_labels}) apart from the "
            "others."
        )
    if not (isinstance(label, (int, np.integer)) and 0 <= label < n_labels):
        raise ValueError(
            f"label must be a column of y, an integer from 0 to {n_labels - 1}. "
            f"Received: label={label!r}"
        )
    return (Y[:, label] != 0).astype(int), f"\nlabel {label} (coloured) and others"


def plot_neighbors(estimator, images, queries, n_neighbors=5, labels=None, axes=None):
    """Show query images next to their nearest neighbours in the embedding.

    Parameters
    ----------
    estimator : fitted TripletEmbedder
    images : ndarray of shape (n_samples, height, width[, channels])
        The database, also the input of ``estimator.transform``.
    queries : sequence of int
        Indices of the query images in ``images``.
    n_neighbors : int, default=5
    labels : array-like of shape (n_samples,), optional
        Shown above each image; a neighbour with another label than its query
        is titled in red.

    Returns
    -------
    fig : matplotlib Figure
    axes : ndarray of Axes, shape (len(queries), n_neighbors + 1)
    """
    from sklearn.neighbors import NearestNeighbors

    plt = _pyplot()
    images = np.asarray(images)
    E = estimator.transform(images)
    nn = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(E)
    _, found = nn.kneighbors(E[np.asarray(queries)])
    if axes is None:
        fig, axes = plt.subplots(
            len(queries),
            n_neighbors + 1,
            figsize=(1.3 * (n_neighbors + 1), 1.4 * len(queries)),
            squeeze=False,
        )
    axes = np.asarray(axes).reshape(len(queries), n_neighbors + 1)
    for row, (query, neighbours) in enumerate(zip(queries, found)):
        # The query itself is its own nearest neighbour: show it first.
        ordered = [query] + [i for i in neighbours if i != query][:n_neighbors]
        for col, index in enumerate(ordered):
            ax = axes[row, col]
            ax.imshow(np.squeeze(images[index]), cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
            if labels is not None:
                wrong = col > 0 and labels[index] != labels[query]
                ax.set_title(str(labels[index]), color="red" if wrong else "black")
        axes[row, 0].set_ylabel("query")
    fig = axes[0, 0].figure
    fig.tight_layout()
    return fig, axes
