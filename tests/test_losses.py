"""The Keras loss is held to the numpy reference miners on fixed embeddings."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sktriplet import mining  # noqa: E402
from sktriplet.keras import losses  # noqa: E402

LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3], dtype=np.int32)


def _embeddings(seed=0, n=None, dim=5):
    n = len(LABELS) if n is None else n
    return np.random.RandomState(seed).normal(size=(n, dim)).astype(np.float32)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize("distance", mining.DISTANCES)
def test_pairwise_distances_match_reference(distance):
    e = _embeddings()
    expected = mining.pairwise_distances(e, distance)
    np.testing.assert_allclose(
        _np(losses.pairwise_distances(e, distance)), expected, atol=1e-5
    )


@pytest.mark.parametrize("strategy", ["hard", "semihard"])
@pytest.mark.parametrize("distance", mining.DISTANCES)
def test_mined_triplets_match_reference(strategy, distance):
    e = _embeddings(seed=1)
    d = mining.pairwise_distances(e, distance)
    expected = set(zip(*mining.mine_triplets(LABELS, d, strategy)))
    a, p, n, valid = (_np(t) for t in losses.mine_triplets(LABELS, d, strategy))
    assert set(zip(a[valid], p[valid], n[valid])) == expected


def test_random_triplets_are_valid_and_cover_every_anchor():
    d = mining.pairwise_distances(_embeddings())
    a, p, n, valid = (_np(t) for t in losses.mine_triplets(LABELS, d, "random", seed=3))
    # Anchor 8 is the only sample of class 3: it has no positive.
    assert valid.tolist() == [True] * 8 + [False]
    a, p, n = a[valid], p[valid], n[valid]
    assert np.all(LABELS[a] == LABELS[p]) and np.all(a != p)
    assert np.all(LABELS[a] != LABELS[n])


def test_random_triplets_vary_with_the_seed():
    d = mining.pairwise_distances(_embeddings())
    labels = np.repeat(np.arange(4), 8).astype(np.int32)
    d = mining.pairwise_distances(_embeddings(n=32))
    picks = {
        tuple(_np(losses.mine_triplets(labels, d, "random", seed=s)[2]))
        for s in range(3)
    }
    assert len(picks) == 3


@pytest.mark.parametrize("strategy", ["all", "hard", "semihard"])
@pytest.mark.parametrize("distance", mining.DISTANCES)
@pytest.mark.parametrize("margin", [0.1, 0.5, 2.0])
# None: the sort-based path; 2 (LABELS' largest class less one) and 5: sort-free.
@pytest.mark.parametrize("max_positives", [None, 2, 5])
def test_loss_matches_reference(strategy, distance, margin, max_positives):
    e = _embeddings(seed=2)
    d = mining.pairwise_distances(e, distance)
    triplets = mining.mine_triplets(LABELS, d, strategy)
    expected_loss, expected_active = mining.triplet_margin_loss(d, triplets, margin)
    loss, active = losses.triplet_loss(
        LABELS, e, margin, strategy, distance, max_positives=max_positives
    )
    np.testing.assert_allclose(_np(loss), expected_loss, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(_np(active), expected_active, atol=1e-6)


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
@pytest.mark.parametrize("max_positives", [1, 2, 3])
def test_loss_with_fewer_positives_than_the_batch_holds(strategy, max_positives):
    """Pairing each anchor with fewer positives than it has matches the reference."""
    e = _embeddings(seed=5, n=len(MANY))
    d = mining.pairwise_distances(e)
    triplets = mining.mine_triplets(MANY, d, strategy, max_positives=max_positives)
    expected_loss, expected_active = mining.triplet_margin_loss(d, triplets, 0.5)
    loss, active = losses.triplet_loss(
        MANY, e, 0.5, strategy, max_positives=max_positives
    )
    np.testing.assert_allclose(_np(loss), expected_loss, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(_np(active), expected_active, atol=1e-6)
    # And it is a different loss from pairing every positive.
    every = mining.mine_triplets(MANY, d, strategy)
    assert len(triplets[0]) < len(every[0])


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape"
)
@pytest.mark.parametrize(
    "strategy, max_positives",
    # The O(batch**2) sort-based "all", and the sort-free "all" and "semihard".
    [("all", None), ("all", 2), ("semihard", 2)],
)
def test_gradient_matches_explicit_triplets(strategy, max_positives):
    """The loss has the gradient of the plain mean over the triplets it mines."""
    import tensorflow as tf

    e = tf.Variable(_embeddings(seed=4))
    with tf.GradientTape(persistent=True) as tape:
        loss, _ = losses.triplet_loss(
            LABELS, e, 0.5, strategy, max_positives=max_positives
        )
        d = losses.pairwise_distances(e)
        a, p, n = mining.mine_triplets(LABELS, d.numpy(), strategy)
        ap = tf.gather_nd(d, np.stack([a, p], 1))
        an = tf.gather_nd(d, np.stack([a, n], 1))
        explicit = tf.reduce_mean(tf.nn.relu(ap - an + 0.5))
    np.testing.assert_allclose(
        tape.gradient(loss, e).numpy(), tape.gradient(explicit, e).numpy(), atol=1e-5
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="uses tf.function(jit_compile)"
)
def test_semihard_gradient_is_finite_under_xla_with_tied_distances():
    """One-dimensional unit embeddings tie every distance at 0 or 4.

    XLA may round a recomputed distance differently from the one the miner
    compared; a gradient that matched floats (``min``'s) turned NaN there.
    """
    import tensorflow as tf

    labels = np.repeat(np.arange(3), 6).astype(np.int32)
    w = tf.Variable(_embeddings(seed=0, n=18, dim=1))

    @tf.function(jit_compile=True)
    def gradient():
        with tf.GradientTape() as tape:
            e = tf.math.l2_normalize(w, axis=1)
            loss, _ = losses.triplet_loss(labels, e, 0.5, max_positives=5)
        return tape.gradient(loss, w)

    assert np.isfinite(gradient().numpy()).all()


def test_loss_is_zero_without_valid_triplets():
    loss, active = losses.triplet_loss(np.array([0, 1, 2], np.int32), _embeddings(n=3))
    assert float(_np(loss)) == 0.0 and float(_np(active)) == 0.0


def test_loss_is_float32_for_float16_embeddings():
    loss, _ = losses.triplet_loss(LABELS, _embeddings().astype(np.float16))
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


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="uses tf.function(jit_compile)"
)
def test_l2_normalization_has_a_finite_gradient_at_zero_under_xla():
    """``UnitNormalization``'s gradient at a zero row is NaN under XLA; ours is
    finite, with the same output."""
    import tensorflow as tf

    from sktriplet.keras.models import L2Normalization

    x = tf.Variable(np.vstack([np.zeros((1, 4)), _embeddings(n=3, dim=4)]))
    layer = L2Normalization()

    @tf.function(jit_compile=True)
    def gradient():
        with tf.GradientTape() as tape:
            out = layer(x)
            total = tf.reduce_sum(out * np.arange(4.0))
        return out, tape.gradient(total, x)

    out, grad = gradient()
    expected = keras.layers.UnitNormalization()(x)
    np.testing.assert_allclose(out.numpy(), _np(expected), atol=1e-6)
    assert np.isfinite(grad.numpy()).all()
