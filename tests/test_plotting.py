"""sktriplet.plotting returns matplotlib objects users can restyle."""

import re
import sys

import numpy as np
import pytest

from sktriplet import TripletEmbedder

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from sktriplet import plotting  # noqa: E402


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits[0][:200], digits[1][:200]
    emb = TripletEmbedder(
        epochs=3, early_stopping=True, n_iter_no_change=5, random_state=0
    ).fit(X, y)
    return emb, X, y


def test_plot_history_draws_one_panel_per_metric(fitted):
    emb, _, _ = fitted
    fig, axes = plotting.plot_history(emb)
    assert [ax.get_title() for ax in axes] == [
        "triplet loss",
        "active triplets",
        "validation MAP@R",
    ]
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), emb.history_["loss"])


def test_plot_history_accepts_a_plain_history_dict():
    fig, axes = plotting.plot_history({"loss": [3.0, 2.0], "active_fraction": [1, 0.5]})
    assert len(axes) == 2


def test_plot_embedding_colours_by_label(fitted):
    emb, X, y = fitted
    ax, points = plotting.plot_embedding(emb, X, y)
    assert points.get_offsets().shape == (200, 2)
    assert len(np.unique(points.get_array())) == 10


def test_plot_embedding_of_a_multi_label_y_colours_one_chosen_label(fitted):
    """A multi-label y has no one colour per sample: label=j colours the samples
    that have label j apart from the rest, dense or sparse; without it, a clear
    error instead of a meaningless picture."""
    import scipy.sparse as sp

    emb, X, y = fitted
    Y = np.column_stack([y % 2 == 0, y < 5]).astype(np.uint8)
    for given in (Y, sp.csr_matrix(Y)):
        ax, points = plotting.plot_embedding(emb, X, given, label=1)
        np.testing.assert_array_equal(points.get_array(), (y < 5).astype(int))
        assert "label 1" in ax.get_title()
    with pytest.raises(ValueError, match=re.escape("pass label=j to colour")):
        plotting.plot_embedding(emb, X, Y)
    with pytest.raises(ValueError, match=re.escape("Received: label=2")):
        plotting.plot_embedding(emb, X, Y, label=2)
    with pytest.raises(ValueError, match="this y holds one label per sample"):
        plotting.plot_embedding(emb, X, y, label=0)


def test_plot_neighbors_shows_query_then_neighbours(fitted):
    emb, X, y = fitted
    images = X.reshape(-1, 8, 8)
    image_emb = TripletEmbedder(epochs=2, random_state=0).fit(images[..., None], y)
    fig, axes = plotting.plot_neighbors(
        image_emb, images[..., None], [0, 5], n_neighbors=3, labels=y
    )
    assert axes.shape == (2, 4)
    assert axes[0, 0].get_title() == str(y[0])


def test_missing_matplotlib_gets_a_clear_message(fitted, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="sktriplet.plotting needs matplotlib"):
        plotting.plot_history(fitted[0])
