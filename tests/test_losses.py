"""The Keras loss is held to the numpy reference miners on fixed embeddings."""

import re

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.backend

from sktriplet import mining  # noqa: E402
from sktriplet.keras import losses  # noqa: E402

LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3], dtype=np.int32)


def _embeddings(seed=0, n=None, dim=5):
    n = len(LABELS) if n is None else n
    return np.random.RandomState(seed).normal(size=(n, dim)).astype(np.float32)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize("distance", mining.DISTANCES)
def test_distance_matrix_matches_reference(distance):
    e = _embeddings()
    expected = mining.pairwise_distances(e, distance)
    np.testing.assert_allclose(
        _np(losses.distance_matrix(e, distance)), expected, atol=1e-5
    )


@pytest.mark.parametrize("strategy", ["hard", "semihard"])
@pytest.mark.parametrize("distance", mining.DISTANCES)
def test_triplet_slots_match_reference(strategy, distance):
    e = _embeddings(seed=1)
    d = mining.pairwise_distances(e, distance)
    expected = set(zip(*mining.mine_triplets(LABELS, d, strategy)))
    a, p, n, valid = (_np(t) for t in losses.triplet_slots(LABELS, d, strategy))
    assert set(zip(a[valid], p[valid], n[valid])) == expected


def test_random_triplets_are_valid_and_cover_every_anchor():
    d = mining.pairwise_distances(_embeddings())
    a, p, n, valid = (_np(t) for t in losses.triplet_slots(LABELS, d, "random", seed=3))
    # Anchor 8 is the only sample of class 3: it has no positive.
    assert valid.tolist() == [True] * 8 + [False]
    a, p, n = a[valid], p[valid], n[valid]
    assert np.all(LABELS[a] == LABELS[p]) and np.all(a != p)
    assert np.all(LABELS[a] != LABELS[n])


def test_random_triplets_vary_with_the_seed():
    labels = np.repeat(np.arange(4), 8).astype(np.int32)
    d = mining.pairwise_distances(_embeddings(n=32))
    picks = {
        tuple(_np(losses.triplet_slots(labels, d, "random", seed=s)[2]))
        for s in range(3)
    }
    assert len(picks) == 3


def test_all_triplets_are_never_listed():
    d = mining.pairwise_distances(_embeddings())
    with pytest.raises(ValueError, match=re.escape("Received: mining='all'")):
        losses.triplet_slots(LABELS, d, "all")


@pytest.mark.parametrize("strategy", ["all", "hard", "semihard"])
@pytest.mark.parametrize("distance", mining.DISTANCES)
@pytest.mark.parametrize("margin", [0.1, 0.5, 2.0])
def test_loss_matches_reference(strategy, distance, margin):
    e = _embeddings(seed=2)
    d = mining.pairwise_distances(e, distance)
    triplets = mining.mine_triplets(LABELS, d, strategy)
    expected_loss, expected_active = mining.triplet_margin_loss(d, triplets, margin)
    totals = losses.triplet_hinge_totals(
        LABELS, losses.distance_matrix(e, distance), margin, strategy
    )
    hinge_sum, n_active, n_triplets = (float(_np(t)) for t in totals)
    assert n_triplets == len(triplets[0])
    np.testing.assert_allclose(hinge_sum / n_triplets, expected_loss, rtol=1e-4)
    np.testing.assert_allclose(n_active / n_triplets, expected_active, atol=1e-6)
    loss = losses.triplet_loss(LABELS, e, margin, strategy, distance)
    np.testing.assert_allclose(_np(loss), expected_loss, rtol=1e-4, atol=1e-6)


# Classes of 6, 4 and 2 rows, interleaved: each anchor's following positives
# wrap around the batch.
MANY = np.array([0, 1, 0, 2, 0, 1, 0, 2, 1, 0, 1, 0], dtype=np.int32)


def test_following_positives_are_the_next_ones_of_the_class():
    kept = mining.following_positives(MANY, 2)
    # Row 4 (class 0) is followed by rows 6 and 9 of its class; row 11 wraps to 0, 2.
    assert np.flatnonzero(kept[4]).tolist() == [6, 9]
    assert np.flatnonzero(kept[11]).tolist() == [0, 2]
    # Row 3 has one positive, which it keeps; every row is kept by as many anchors.
    assert np.flatnonzero(kept[3]).tolist() == [7]
    assert kept[MANY == 0].sum(axis=0)[MANY == 0].tolist() == [2] * 6
    np.testing.assert_array_equal(
        mining.following_positives(MANY, None), mining.following_positives(MANY, 5)
    )


@pytest.mark.parametrize("strategy", ["all", "semihard"])
@pytest.mark.parametrize("max_positives", [1, 2, 3, None])
def test_loss_with_fewer_positives_than_the_batch_holds(strategy, max_positives):
    """Pairing each anchor with fewer positives than it has matches the reference."""
    e = _embeddings(seed=5, n=len(MANY))
    d = mining.pairwise_distances(e)
    triplets = mining.mine_triplets(MANY, d, strategy, max_positives=max_positives)
    expected_loss, _ = mining.triplet_margin_loss(d, triplets, 0.5)
    loss = losses.triplet_loss(MANY, e, 0.5, strategy, max_positives=max_positives)
    np.testing.assert_allclose(_np(loss), expected_loss, rtol=1e-4, atol=1e-6)
    # Fewer positives than the largest class holds is a different loss.
    every = mining.mine_triplets(MANY, d, strategy)
    assert (len(triplets[0]) < len(every[0])) == (max_positives is not None)


def _gradient(f, x, jit=False):
    """The gradient of the scalar ``f`` at ``x`` on the current backend, with
    ``jit`` compiled by XLA (``tf.function(jit_compile=True)``, ``jax.jit``)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        grad = jax.jit(jax.grad(f)) if jit else jax.grad(f)
        return np.asarray(grad(x))
    if backend == "tensorflow":
        import tensorflow as tf

        variable = tf.Variable(x)

        def grad():
            with tf.GradientTape() as tape:
                value = f(variable)
            return tape.gradient(value, variable)

        return (tf.function(grad, jit_compile=True) if jit else grad)().numpy()
    pytest.skip(f"no gradient helper for the {backend} backend")


@pytest.mark.parametrize(
    "strategy, max_positives", [("all", None), ("all", 2), ("semihard", 2)]
)
def test_gradient_matches_explicit_triplets(strategy, max_positives):
    """The loss has the gradient of the plain mean over the triplets it mines."""
    x = _embeddings(seed=4)
    d = mining.pairwise_distances(x)
    a, p, n = mining.mine_triplets(LABELS, d, strategy, max_positives=max_positives)
    size = len(LABELS)

    def explicit(e):
        flat = keras.ops.reshape(losses.distance_matrix(e), (-1,))
        ap = keras.ops.take(flat, a * size + p)
        an = keras.ops.take(flat, a * size + n)
        return keras.ops.mean(keras.ops.relu(ap - an + 0.5))

    def loss(e):
        return losses.triplet_loss(
            LABELS, e, 0.5, strategy, max_positives=max_positives
        )

    np.testing.assert_allclose(_gradient(loss, x), _gradient(explicit, x), atol=1e-5)


def test_semihard_gradient_is_finite_under_xla_with_tied_distances():
    """One-dimensional unit embeddings tie every distance at 0 or 4.

    XLA may round a recomputed distance differently from the one the miner
    compared; a gradient that matched floats (``min``'s) turned NaN there.
    """
    labels = np.repeat(np.arange(3), 6).astype(np.int32)

    def loss(w):
        e = w / keras.ops.norm(w, axis=1, keepdims=True)
        return losses.triplet_loss(labels, e, 0.5, max_positives=5)

    grad = _gradient(loss, _embeddings(seed=0, n=18, dim=1), jit=True)
    assert np.isfinite(grad).all()


def test_loss_is_zero_without_valid_triplets():
    labels = np.array([0, 1, 2], np.int32)
    d = losses.distance_matrix(_embeddings(n=3))
    totals = losses.triplet_hinge_totals(labels, d, 0.5, "semihard")
    assert [float(_np(t)) for t in totals] == [0.0, 0.0, 0.0]
    assert float(_np(losses.triplet_loss(labels, _embeddings(n=3)))) == 0.0


def test_loss_is_float32_for_float16_embeddings():
    loss = losses.triplet_loss(LABELS, _embeddings().astype(np.float16))
    assert _np(loss).dtype == np.float32


def test_triplet_loss_class_round_trips_its_config():
    loss = losses.TripletLoss(margin=0.3, mining="hard", distance="cosine", seed=7)
    clone = losses.TripletLoss.from_config(loss.get_config())
    assert (clone.margin, clone.mining, clone.distance, clone.seed) == (
        0.3,
        "hard",
        "cosine",
        7,
    )
    e = _embeddings()
    np.testing.assert_allclose(_np(clone(LABELS, e)), _np(loss(LABELS, e)))


def test_l2_normalization_has_a_finite_gradient_at_zero_under_xla():
    """``UnitNormalization``'s gradient at a zero row is NaN under XLA; ours is
    finite, with the same output."""
    from sktriplet.keras.layers import L2Normalization

    x = np.vstack([np.zeros((1, 4)), _embeddings(n=3, dim=4)]).astype(np.float32)
    layer = L2Normalization()

    def total(v):
        return keras.ops.sum(layer(v) * np.arange(4.0, dtype=np.float32))

    assert np.isfinite(_gradient(total, x, jit=True)).all()
    expected = keras.layers.UnitNormalization()(x)
    np.testing.assert_allclose(_np(layer(x)), _np(expected), atol=1e-6)


def test_triplet_loss_trains_a_keras_model_through_compile_and_fit(digits):
    """``model.compile(loss=TripletLoss())`` and a plain ``fit``: on held-out
    rows, the trained network retrieves same-class rows far better than the
    same network untrained."""
    from sktriplet.metrics import mean_average_precision_at_r

    X, y = digits
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(
                64, "relu", kernel_initializer=keras.initializers.HeUniform(seed=0)
            ),
            keras.layers.Dense(
                16, kernel_initializer=keras.initializers.GlorotUniform(seed=1)
            ),
            keras.layers.UnitNormalization(),
        ]
    )
    before = mean_average_precision_at_r(_np(model(X[300:])), y[300:])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=losses.TripletLoss())
    history = model.fit(X[:300], y[:300], batch_size=100, epochs=15, verbose=0)
    after = mean_average_precision_at_r(_np(model(X[300:])), y[300:])
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert after > before + 0.2, (before, after)
