"""Behaviour of TripletEmbedder: one behaviour per test."""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsClassifier

from sktriplet import TripletEmbedder
from sktriplet.metrics import mean_average_precision_at_r


def test_import_does_not_load_the_framework():
    """``import sktriplet`` stays fast: no framework, not even scikit-learn,
    until a public name is used."""
    code = textwrap.dedent(
        """
        import sys, sktriplet
        heavy = ("tensorflow", "keras", "jax", "torch", "sklearn", "scipy")
        print(",".join(m for m in heavy if m in sys.modules))
        sktriplet.TripletEmbedder
        print("sklearn" in sys.modules, "keras" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["", "True False"]


@pytest.mark.backend
def test_toy_problem_pulls_classes_apart():
    """Two interleaved classes (XOR of the signs) become separable in the
    embedding, on points the fit never saw."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(320, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # XOR: no linear map separates it
    X_tr, X_te, y_tr, y_te = X[:160], X[160:], y[:160], y[160:]
    emb = TripletEmbedder(epochs=60, hidden_layer_sizes=(32,), random_state=0)
    E_tr, E_te = emb.fit(X_tr, y_tr).transform(X_tr), emb.transform(X_te)
    raw = mean_average_precision_at_r(X_te, y_te)
    assert mean_average_precision_at_r(E_te, y_te) > raw + 0.2
    assert KNeighborsClassifier(n_neighbors=1).fit(E_tr, y_tr).score(E_te, y_te) > 0.9


def _learns(digits, **params) -> None:
    """Trained on 300 rows, the embedding of 100 others retrieves better than
    the same network untrained (learning rate 1e-12) and than the raw pixels."""
    X, y = digits
    X_train, y_train, X_test, y_test = X[:300], y[:300], X[300:], y[300:]
    trained = TripletEmbedder(epochs=30, random_state=0, **params)
    untrained = clone(trained).set_params(learning_rate=1e-12)
    score = trained.fit(X_train, y_train).score(X_test, y_test)
    baseline = max(
        untrained.fit(X_train, y_train).score(X_test, y_test),
        mean_average_precision_at_r(X_test, y_test),
    )
    assert score > baseline + 0.05, (score, baseline)


@pytest.mark.parametrize("mining", ["semihard", "hard", "all", "random"])
@pytest.mark.backend
def test_every_mining_strategy_learns(digits, mining):
    _learns(digits, mining=mining)


@pytest.mark.parametrize("distance", ["squared_euclidean", "euclidean", "cosine"])
@pytest.mark.backend
def test_every_distance_learns(digits, distance):
    _learns(digits, distance=distance)


def test_fitted_attributes(digits, quick):
    X, y = digits
    emb = TripletEmbedder(n_components=8, **quick).fit(X, y)
    assert emb.n_components_ == 8
    assert emb.n_features_in_ == 64
    np.testing.assert_array_equal(emb.classes_, np.arange(10))
    assert emb.n_iter_ == 3
    assert set(emb.history_) == {"loss", "active_fraction", "learning_rate"}
    assert all(
        len(v) == 3 and all(type(x) is float for x in v) for v in emb.history_.values()
    )


def test_normalize_gives_unit_vectors(digits, quick):
    X, y = digits
    E = TripletEmbedder(**quick).fit(X, y).transform(X)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, rtol=1e-5)
    E = TripletEmbedder(normalize=False, **quick).fit(X, y).transform(X)
    assert not np.allclose(np.linalg.norm(E, axis=1), 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_keeps_float_dtype(digits, dtype, quick):
    X, y = digits
    emb = TripletEmbedder(**quick).fit(X, y)
    assert emb.transform(X.astype(dtype)).dtype == dtype


@pytest.mark.backend
def test_fast_transform_matches_the_keras_model(digits):
    X, y = digits
    emb = TripletEmbedder(hidden_layer_sizes=(32, 16), epochs=2, random_state=0).fit(
        X, y
    )
    assert emb._encoder.forward is not None  # batch normalisation folded in
    keras_out = np.asarray(emb.encoder_(X.astype(np.float32), training=False))
    np.testing.assert_allclose(
        emb.transform(X.astype(np.float32)), keras_out, atol=1e-5
    )


def test_dense_forward_folds_batch_normalization_statistics():
    import keras

    from sktriplet.inference import DenseForward
    from sktriplet.keras import build_mlp_encoder

    encoder = build_mlp_encoder((10,), (16, 8), 4, True, seed=0)
    rng = np.random.RandomState(0)
    for layer in encoder.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            # Statistics and scales far from their initial 0 and 1.
            layer.set_weights([rng.uniform(0.5, 2.0, w.shape) for w in layer.weights])
    X = rng.normal(size=(5, 10)).astype(np.float32)
    forward = DenseForward.from_keras(encoder)
    np.testing.assert_allclose(
        forward(X), np.asarray(encoder(X, training=False)), atol=1e-6
    )


def test_dense_forward_declines_batch_normalization_after_an_activation():
    import keras

    from sktriplet.inference import DenseForward

    inputs = keras.Input((4,))
    h = keras.layers.Dense(3, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(h))
    assert DenseForward.from_keras(model) is None


@pytest.mark.parametrize("param", ["input_noise", "weight_decay"])
def test_auto_regularisation_applies_to_the_default_encoder_only(digits, quick, param):
    """In one process, in turn: a pooled training step traced with one weight
    decay must not serve a fit with another."""
    from sktriplet._plan import AUTO_WEIGHT_DECAY, _auto_noise

    X, y = digits
    # 40 rows a class: the noise of few rows.
    auto = _auto_noise(y, False) if param == "input_noise" else AUTO_WEIGHT_DECAY

    def fit(**params):
        return TripletEmbedder(**quick, **params).fit(X, y).transform(X)

    default = fit()
    assert not np.allclose(default, fit(**{param: 0}))
    np.testing.assert_array_equal(default, fit(**{param: auto}))
    assert not np.allclose(default, fit(**{param: 3 * auto}))

    from sktriplet.keras import build_mlp_encoder

    def encoder():
        return build_mlp_encoder((64,), (16,), 8, False, seed=0)

    np.testing.assert_array_equal(
        fit(encoder=encoder), fit(encoder=encoder, **{param: 0})
    )


def test_input_noise_is_in_units_of_each_feature_spread(digits):
    from sktriplet._geometry import noise_scale

    X, _ = digits
    X = X[:, X.std(axis=0) > 0]
    scaled = X * np.logspace(-3, 3, X.shape[1])
    rows = np.arange(len(X))
    np.testing.assert_allclose(
        noise_scale(scaled, rows, 0.3) / noise_scale(X, rows, 0.3),
        np.logspace(-3, 3, X.shape[1]),
        rtol=1e-4,
    )
    np.testing.assert_allclose(noise_scale(X, rows, 0.3), 0.3 * X.std(axis=0), 1e-5)
    assert noise_scale(X, rows, 0) is None


def test_auto_input_noise_falls_as_the_classes_grow_past_1600_rows():
    from sktriplet._geometry import noise_scale
    from sktriplet._plan import plan_fit

    # 20 classes of 6400 rows each: four times 1600, so half of 0.5.
    X = np.random.RandomState(0).normal(size=(128_000, 3)) * [1.0, 2.0, 4.0]
    y = np.arange(len(X)) % 20
    params = TripletEmbedder().get_params()

    def noise(X, y, partial=False):
        plan = plan_fit(params, X, y, np.random.RandomState(0), partial=partial)
        return plan.batches.noise_scale / noise_scale(X, plan.train_rows, 1.0)

    np.testing.assert_allclose(noise(X, y), 0.25, rtol=1e-6)
    # Up to 1600 rows a class, and in partial_fit, whose chunk says nothing
    # of the data's size, it stays 0.5.
    np.testing.assert_allclose(noise(X[:32_000], y[:32_000]), 0.5, rtol=1e-6)
    np.testing.assert_allclose(noise(X, y, partial=True), 0.5, rtol=1e-6)


def test_same_random_state_is_bit_identical_across_processes(digits, tmp_path, quick):
    X, y = digits
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    code = textwrap.dedent(
        f"""
        import numpy as np
        from sktriplet import TripletEmbedder
        X = np.load({str(tmp_path / "X.npy")!r})
        y = np.load({str(tmp_path / "y.npy")!r})
        emb = TripletEmbedder(**{dict(quick)!r})
        E = emb.fit(X, y).transform(X)
        np.save({str(tmp_path / "E.npy")!r}, E)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    here = TripletEmbedder(**quick).fit(X, y).transform(X)
    np.testing.assert_array_equal(np.load(tmp_path / "E.npy"), here)


@pytest.mark.backend
def test_different_random_states_differ(digits, quick):
    X, y = digits
    a = TripletEmbedder(**quick).fit(X, y).transform(X)
    b = TripletEmbedder(**{**quick, "random_state": 1}).fit(X, y).transform(X)
    assert not np.allclose(a, b)


def test_string_labels(digits, quick):
    X, y = digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    emb = TripletEmbedder(**quick).fit(X, names[y])
    np.testing.assert_array_equal(emb.classes_, np.sort(names))
    E_int = TripletEmbedder(**quick).fit(X, y).transform(X)
    assert emb.transform(X).shape == E_int.shape
    # MAP@R depends on which rows share a label, not on the labels' names.
    assert emb.score(X, names[y]) == emb.score(X, y)


def test_pandas_keeps_feature_names_and_set_output(digits, quick):
    pd = pytest.importorskip("pandas")
    X, y = digits
    df = pd.DataFrame(X, columns=[f"pixel_{i}" for i in range(64)])
    emb = TripletEmbedder(n_components=4, **quick).fit(df, y)
    np.testing.assert_array_equal(emb.feature_names_in_, df.columns)
    names = emb.get_feature_names_out()
    assert names.tolist() == [f"tripletembedder{i}" for i in range(4)]
    out = emb.set_output(transform="pandas").transform(df)
    assert isinstance(out, pd.DataFrame) and out.columns.tolist() == names.tolist()


def test_clone_gives_an_unfitted_copy_with_the_same_params(digits, quick):
    X, y = digits
    emb = TripletEmbedder(margin=0.2, mining="hard", **quick).fit(X, y)
    copy = clone(emb)
    assert copy.get_params() == emb.get_params()
    with pytest.raises(NotFittedError):
        copy.transform(X)


def test_score_does_not_depend_on_margin(digits, quick):
    """score is MAP@R of the embedding, the same function of it for every margin."""
    X, y = digits
    emb = TripletEmbedder(**quick).fit(X, y)
    before = emb.score(X, y)
    emb.margin = 5.0  # changes training only, not how an embedding is scored
    assert emb.score(X, y) == before
    assert before == mean_average_precision_at_r(emb.transform(X), y)


def test_singleton_classes_serve_as_negatives_with_a_warning(digits, quick):
    X, y = digits
    y = y.copy()
    y[:30] = np.arange(100, 130)  # 30 classes of one sample each
    with pytest.warns(
        UserWarning, match="30 of the 40 classes in y have a single sample"
    ):
        emb = TripletEmbedder(**quick).fit(X, y)
    assert emb.transform(X).shape == (400, 32)


@pytest.mark.parametrize("method", ["fit", "partial_fit", "search"])
def test_warnings_point_at_the_users_line(digits, method, quick):
    X, y = digits
    y = y.copy()
    y[:30] = np.arange(100, 130)
    emb = TripletEmbedder(**quick)
    with pytest.warns(UserWarning, match="have a single sample") as caught:
        if method == "search":  # through scikit-learn's and joblib's frames
            from sklearn.model_selection import GridSearchCV

            GridSearchCV(emb, {"margin": [0.5]}, cv=[(np.arange(400),) * 2]).fit(X, y)
        else:
            getattr(emb, method)(X, y)
    ours = [w for w in caught if "single sample" in str(w.message)]
    assert {w.filename for w in ours} == {__file__}


@pytest.mark.backend
def test_failed_fit_keeps_the_earlier_fitted_state(digits, quick):
    X, y = digits
    emb = TripletEmbedder(**quick).fit(X, y)
    before = emb.transform(X)
    message = "needs samples of at least two classes to form triplets; y has 1 class"
    with pytest.raises(ValueError, match=re.escape(message)):
        emb.fit(X[:, :10], np.zeros(len(X)))  # single class: fails after validation
    assert emb.n_features_in_ == 64
    np.testing.assert_array_equal(emb.transform(X), before)


def _small_encoder(n_out=8, n_in=64):
    import keras

    inputs = keras.Input((n_in,))
    h = keras.layers.Dense(16, activation="gelu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(n_out)(h))


@pytest.mark.backend
def test_custom_encoder_is_copied_never_trained_in_place(digits):
    X, y = digits
    encoder = _small_encoder()
    before = [w.copy() for w in encoder.get_weights()]
    emb = TripletEmbedder(encoder=encoder, epochs=3, random_state=0).fit(X, y)
    assert emb.n_components_ == 8 and emb.transform(X).shape == (400, 8)
    for w, b in zip(encoder.get_weights(), before):
        np.testing.assert_array_equal(w, b)
    assert not np.allclose(emb.encoder_.get_weights()[0], before[0])


def test_custom_encoder_survives_clone(digits):
    X, y = digits
    emb = clone(TripletEmbedder(encoder=_small_encoder(), epochs=2, random_state=0))
    assert emb.fit(X, y).transform(X).shape == (400, 8)


def test_encoder_builder_callable(digits):
    X, y = digits
    emb = TripletEmbedder(encoder=_small_encoder, epochs=2, random_state=0).fit(X, y)
    assert emb.n_components_ == 8


def test_encoder_output_size_must_match_n_components(digits):
    X, y = digits
    msg = "n_components=4 does not match the encoder's output size 8"
    with pytest.raises(ValueError, match=re.escape(msg)):
        TripletEmbedder(n_components=4, encoder=_small_encoder(), epochs=2).fit(X, y)


def test_encoder_input_must_fit_the_data(digits):
    X, y = digits
    with pytest.raises(ValueError, match=re.escape("encoder expects inputs of shape")):
        TripletEmbedder(encoder=_small_encoder(n_in=10), epochs=2).fit(X, y)


def test_encoder_builder_must_return_a_model(digits):
    X, y = digits
    with pytest.raises(TypeError, match="the callable returned str"):
        TripletEmbedder(encoder=lambda: "not a model", epochs=2).fit(X, y)


def test_encoder_must_output_one_vector_per_sample(digits):
    import keras

    X, y = digits
    inputs = keras.Input((64,))
    per_pixel = keras.layers.Reshape((64, 1))(inputs)  # (batch, 64, 1): no vector
    msg = "encoder must output one embedding vector per sample, of shape"
    with pytest.raises(ValueError, match=re.escape(msg)):
        TripletEmbedder(encoder=keras.Model(inputs, per_pixel), epochs=1).fit(X, y)


@pytest.mark.backend
def test_integer_input_is_read_as_float32_without_a_whole_copy(digits, quick):
    """uint8 data (pixels, say) trains and embeds as the same values in float32:
    the array is cast chunk by chunk, so a memmap of it is never copied whole."""
    X, y = digits
    pixels = (X[:200] * 16).astype(np.uint8)
    as_uint8 = TripletEmbedder(**quick).fit(pixels, y[:200])
    as_float = TripletEmbedder(**quick).fit(pixels.astype(np.float32), y[:200])
    E = as_uint8.transform(pixels)
    assert E.dtype == np.float32
    np.testing.assert_array_equal(E, as_float.transform(pixels.astype(np.float32)))
