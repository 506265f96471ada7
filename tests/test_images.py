"""Image input: the default convolutional encoder, custom backbones, similarity."""

import re

import numpy as np
import pytest

from sktriplet import TripletEmbedder
from sktriplet.metrics import mean_average_precision_at_r

keras = pytest.importorskip("keras")

# Every fit here but the RGB one trains on 256 images (one 256-row batch per
# epoch), so that one traced training step serves them all.
N = 256


@pytest.fixture(scope="module")
def digit_images(all_digits):
    X, y = all_digits
    return X.reshape(-1, 8, 8, 1)[: 2 * N], y[: 2 * N]


@pytest.fixture(scope="module")
def fitted(digit_images):
    X, y = digit_images
    return TripletEmbedder(epochs=60, random_state=0, device="cpu").fit(X[:N], y[:N])


@pytest.mark.backend
def test_images_train_the_default_conv_encoder(digit_images, fitted):
    """On held-out images, the embedding retrieves better than the pixels."""
    X, y = digit_images
    assert fitted.encoder_.name == "conv_encoder"
    E = fitted.transform(X[N:])
    assert E.shape == (len(X) - N, 32)
    flat = X[N:].reshape(len(E), -1)
    raw = mean_average_precision_at_r(flat, y[N:])
    assert mean_average_precision_at_r(E, y[N:]) > raw + 0.05


@pytest.mark.backend
def test_a_refit_replays_the_augmentation(digit_images, fitted):
    # The second fit reuses the first's pooled training model, whose random
    # translation must start again from the seed's state.
    X, y = digit_images
    again = TripletEmbedder(epochs=60, random_state=0, device="cpu").fit(X[:N], y[:N])
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))


@pytest.mark.backend
def test_folds_of_other_images_reuse_the_traced_step_and_their_own_scaling(
    digit_images,
):
    # As the folds of a search: other images, other channel moments, the same
    # pooled model (no new trace), and the result of a model built afresh.
    from sktriplet.keras import pool

    X, y = digit_images
    params = dict(epochs=2, random_state=0, device="cpu")
    TripletEmbedder(**params).fit(X[:N], y[:N])
    pooled = {key: list(models) for key, models in pool._POOL.items()}
    X_b = np.clip(X[N:] * 1.5, 0, 1)  # other moments than the first fold's
    reused = TripletEmbedder(**params).fit(X_b, y[N:])
    assert {key: list(models) for key, models in pool._POOL.items()} == pooled
    pool._POOL.clear()
    fresh = TripletEmbedder(**params).fit(X_b, y[N:])
    np.testing.assert_array_equal(reused.transform(X_b), fresh.transform(X_b))


@pytest.mark.backend
@pytest.mark.parametrize("rows", [1, 3, 200])
def test_transform_runs_the_compiled_encoder_as_the_eager_one(
    digit_images, fitted, rows
):
    # Any number of rows (JAX pads them to a power of two) embeds as the
    # encoder called eagerly in inference mode.
    X, _ = digit_images
    x = X[:rows].astype(np.float32)
    eager = keras.ops.convert_to_numpy(fitted.encoder_(x, training=False))
    np.testing.assert_allclose(fitted.transform(x), eager, rtol=1e-5, atol=1e-6)


@pytest.mark.backend
def test_the_compiled_encoder_is_built_once_and_dropped_with_the_encoder():
    import gc
    import weakref

    from sktriplet.keras.encoders import build_conv_encoder
    from sktriplet.keras.models import embed, inference_function

    encoder = build_conv_encoder((8, 8, 1), 4, True, seed=0)
    embed(encoder, np.zeros((2, 8, 8, 1), np.float32))
    assert inference_function(encoder) is inference_function(encoder)
    alive = weakref.ref(encoder)
    del encoder
    gc.collect()
    assert alive() is None


@pytest.mark.backend
def test_random_shift_draws_and_shifts_as_random_translation():
    from sktriplet.keras.layers import RandomShift

    x = np.random.RandomState(0).rand(4, 8, 8, 1).astype(np.float32)
    args = dict(height_factor=0.125, width_factor=0.125, fill_mode="nearest")
    ours = RandomShift(**args, seed=3)
    theirs = keras.layers.RandomTranslation(**args, seed=3)
    shifted = keras.ops.convert_to_numpy(ours(x, training=True))
    expected = keras.ops.convert_to_numpy(theirs(x, training=True))
    np.testing.assert_array_equal(shifted, expected)
    assert not np.allclose(shifted, x)  # it did shift
    inference = keras.ops.convert_to_numpy(ours(x, training=False))
    np.testing.assert_array_equal(inference, x)


@pytest.mark.backend
def test_the_image_encoder_lets_keras_compile_the_step_where_the_backend_can():
    # Keras's RandomTranslation would keep the JAX step uncompiled (op by op,
    # several times slower); TensorFlow has no XLA kernel for its op.
    from sktriplet.keras.encoders import build_conv_encoder
    from sktriplet.keras.models import SiameseModel

    model = SiameseModel(build_conv_encoder((8, 8, 1), 4, True, seed=0))
    model.compile(optimizer="adam")  # jit_compile="auto"
    assert model.jit_compile == (keras.backend.backend() == "jax")


def test_images_of_another_shape_are_refused(fitted):
    msg = "X has samples of shape (8, 9, 1), but TripletEmbedder was fitted on"
    with pytest.raises(ValueError, match=re.escape(msg)):
        fitted.transform(np.zeros((2, 8, 9, 1)))


def test_five_dimensional_x_names_the_shapes_the_default_encoder_takes():
    with pytest.raises(ValueError, match=re.escape("X has 5 dimensions")):
        TripletEmbedder(epochs=1).fit(np.zeros((10, 4, 4, 1, 1)), np.arange(10) % 2)


def test_grayscale_images_without_a_channel_axis_train_as_with_one(digit_images):
    X, y = digit_images
    params = dict(epochs=2, random_state=0, device="cpu")
    with_channel = TripletEmbedder(**params).fit(X[:N], y[:N])
    without = TripletEmbedder(**params).fit(X[:N, :, :, 0], y[:N])
    np.testing.assert_array_equal(
        without.transform(X[N:, :, :, 0]), with_channel.transform(X[N:])
    )
    msg = "X has samples of shape (8, 8, 1), but TripletEmbedder was fitted on"
    with pytest.raises(ValueError, match=re.escape(msg)):
        without.transform(X[:2])


def test_uint8_images_are_standardised_by_the_encoder(digit_images):
    X, y = digit_images
    X8 = np.round(X * 255).astype(np.uint8)
    emb = TripletEmbedder(epochs=2, random_state=0, device="cpu").fit(X8[:N], y[:N])
    layer = emb.encoder_.get_layer("standardize")
    mean = X8[:N].mean()
    np.testing.assert_allclose(np.ravel(layer.mean), [mean], rtol=1e-5)
    # transform casts uint8 chunks as fit did: the same embedding as float32.
    np.testing.assert_array_equal(
        emb.transform(X8[N:]), emb.transform(X8[N:].astype(np.float32))
    )


def test_rgb_images_train_and_channels_first_ones_are_refused():
    """RGB images train: 40 held-out images retrieve their class better than
    with the untrained network; channels-first ones get an error."""
    from sklearn.base import clone

    rng = np.random.RandomState(0)
    y_all = np.arange(80) % 2
    X_all = rng.uniform(size=(80, 8, 8, 3)).astype(np.float32)
    X_all[y_all == 1, :, :, 0] += 0.3  # the classes differ in the red channel
    X, y, X_te, y_te = X_all[:40], y_all[:40], X_all[40:], y_all[40:]
    emb = TripletEmbedder(epochs=10, random_state=0).fit(X, y)
    assert emb.transform(X).shape == (40, 32)
    assert emb.encoder_.get_layer("standardize").mean.shape[-1] == 3
    untrained = clone(emb).set_params(learning_rate=1e-12).fit(X, y)
    assert emb.score(X_te, y_te) > untrained.score(X_te, y_te) + 0.1
    msg = "X has shape (40, 3, 8, 8), which looks like channels-first images"
    with pytest.raises(ValueError, match=re.escape(msg)):
        TripletEmbedder(epochs=1).fit(np.moveaxis(X, -1, 1), y)


def test_similarity_is_higher_within_a_class(digit_images, fitted):
    X, y = digit_images
    rng = np.random.RandomState(0)
    i, j = rng.randint(N, len(X), (2, 400))
    s = fitted.similarity(X[i], X[j])
    assert s.shape == (400,) and np.all(np.abs(s) <= 1 + 1e-6)
    assert s[y[i] == y[j]].mean() > s[y[i] != y[j]].mean() + 0.3


def test_similarity_needs_paired_inputs(digit_images, fitted):
    X, _ = digit_images
    with pytest.raises(ValueError, match="same number of samples"):
        fitted.similarity(X[:3], X[:4])


@pytest.mark.backend
def test_augmentation_layers_inside_a_custom_encoder(digit_images):
    X, y = digit_images
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.RandomTranslation(0.1, 0.1, seed=0)(inputs)
    h = keras.layers.Conv2D(8, 3, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    encoder = keras.Model(inputs, keras.layers.Dense(8)(h))
    emb = TripletEmbedder(encoder=encoder, epochs=2, random_state=0).fit(X, y)
    # Augmentation is off at inference: transform is deterministic.
    np.testing.assert_array_equal(emb.transform(X[:10]), emb.transform(X[:10]))


def test_resnet50_backbone_with_the_seed_recipe():
    """The Keras example's encoder: ResNet50 frozen up to conv5_block1_out."""

    def resnet_encoder():
        base = keras.applications.ResNet50(
            weights=None, input_shape=(32, 32, 3), include_top=False
        )
        trainable = False
        for layer in base.layers:
            trainable = trainable or layer.name == "conv5_block1_out"
            layer.trainable = trainable
        h = keras.layers.GlobalAveragePooling2D()(base.output)
        h = keras.layers.Dense(16)(h)
        return keras.Model(base.input, h)

    rng = np.random.RandomState(0)
    X = rng.uniform(size=(16, 32, 32, 3)).astype(np.float32)
    y = np.arange(16) % 2
    emb = TripletEmbedder(encoder=resnet_encoder, epochs=1, random_state=0).fit(X, y)
    assert emb.transform(X).shape == (16, 16)
    frozen = emb.encoder_.layers[1].get_layer("conv1_conv")
    assert not frozen.trainable


@pytest.mark.parametrize(
    "shape, maps",
    [
        ((8, 8, 1), [(8, 8, 32), (4, 4, 64)]),
        ((16, 16, 1), [(8, 8, 8), (8, 8, 16), (4, 4, 32)]),
        ((32, 32, 3), [(16, 16, 8), (8, 8, 16), (8, 8, 32), (4, 4, 64)]),
    ],
)
def test_stages_on_16_pixels_or_more_are_strided_convolutions(shape, maps):
    """While the side is 16 pixels or more, a convolution halves it itself (a
    quarter of the positions to compute), starting from 8 filters; smaller
    maps keep every pixel until the pooling.  Only the last stage, on a map
    under 8 pixels, is batch-normalised; the others carry a bias.  Images
    under 16 pixels start from 32 filters."""
    from sktriplet.keras.encoders import build_conv_encoder

    encoder = build_conv_encoder(shape, 32, True, seed=0)
    names = [layer.name for layer in encoder.layers]
    convs = [encoder.get_layer(n) for n in names if n.startswith("conv_")]
    assert [tuple(c.output.shape[1:]) for c in convs] == maps
    for stage, conv in enumerate(convs):
        last = stage == len(convs) - 1
        if not last:
            assert (f"pool_{stage}" in names) == (conv.strides == (1, 1))
        assert (f"batch_norm_{stage}" in names) == last == (not conv.use_bias)
