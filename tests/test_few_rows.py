"""Few labelled rows a class (issue #47): the default MLP starts from the raw
geometry of the training rows, and the 1-NN classifier fed by the embedding
does at least as well as on the raw features."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from sktriplet import TripletEmbedder
from sktriplet._geometry import FEW_ROWS_PER_CLASS, START_SCALE, principal_start
from sktriplet._plan import AUTO_INPUT_NOISE, FEW_ROWS_INPUT_NOISE, plan_fit


def _params(**changed):
    params = TripletEmbedder().get_params()
    params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    return {**params, **changed}


def _classes(rows_per_class: int, n_classes: int = 4, n_features: int = 6):
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(n_classes), rows_per_class)
    return rng.normal(size=(len(y), n_features)), y


# The principal start --------------------------------------------------------


def test_the_start_keeps_the_distances_of_the_training_rows():
    X, _ = _classes(5, n_features=10)  # 20 rows, rank 10
    kernel, bias = principal_start(X, np.arange(len(X)), 12, seed=0)
    Z = (X @ kernel + bias) / START_SCALE

    def distances(A):
        return np.linalg.norm(A[:, None] - A[None], axis=2)

    np.testing.assert_allclose(distances(Z), distances(X), atol=1e-4)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-4)  # centred
    np.testing.assert_array_equal(kernel[:, 10:], 0)  # past the features


def test_past_the_rank_of_few_rows_the_axes_fill_the_rest_of_the_space():
    X, _ = _classes(1, n_classes=3, n_features=8)  # 3 rows: rank 2
    kernel, _ = principal_start(X, np.arange(3), 5, seed=0)
    axes = kernel / START_SCALE
    np.testing.assert_allclose(axes.T @ axes, np.eye(5), atol=1e-6)
    # New rows keep their distances to the training rows in the first 5 axes
    # only up to the rest of the space; the training rows keep all of theirs.
    Z = X @ kernel / START_SCALE
    np.testing.assert_allclose(
        np.linalg.norm(Z[0] - Z[1]), np.linalg.norm(X[0] - X[1]), rtol=1e-6
    )


def test_the_start_is_fixed_by_its_seed_and_copes_with_constant_rows():
    X, _ = _classes(30, n_classes=2)
    first = principal_start(X, np.arange(60), 4, seed=3)
    second = principal_start(X, np.arange(60), 4, seed=3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    kernel, bias = principal_start(np.ones((6, 3)), np.arange(6), 3, seed=0)
    axes = kernel / START_SCALE
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(np.ones((1, 3)) @ kernel + bias, 0, atol=1e-5)


def _recording(X):
    """``X`` as an array that records, in ``.read``, each index it is read by."""

    class Recorder(np.ndarray):
        read = []

        def __getitem__(self, index):
            self.read.append(np.asarray(index))
            return np.asarray(self)[index]

    return X.view(Recorder)


def test_the_start_reads_a_bounded_sample_of_many_rows(monkeypatch):
    from sktriplet import _geometry

    monkeypatch.setattr(_geometry, "MAX_START_ROWS", 50)
    X = _recording(_classes(100, n_classes=2)[0])
    principal_start(X, np.arange(200), 3, seed=0)
    assert [np.size(index) for index in X.read] == [50]


# When fit starts from it -----------------------------------------------------


@pytest.mark.parametrize(
    "rows_per_class, starts",
    [(FEW_ROWS_PER_CLASS - 1, True), (FEW_ROWS_PER_CLASS, False)],
)
def test_the_mlp_starts_from_the_raw_geometry_below_the_few_rows_bound(
    rows_per_class, starts
):
    X, y = _classes(rows_per_class)
    plan = plan_fit(_params(), X, y, np.random.RandomState(0))
    assert (plan.encoder.start is not None) is starts
    noise = FEW_ROWS_INPUT_NOISE if starts else AUTO_INPUT_NOISE
    expected = noise * X.std(axis=0)
    np.testing.assert_allclose(plan.batches.noise_scale, expected, rtol=1e-6)


def test_unlabelled_rows_do_not_count_as_rows_of_a_class():
    X, y = _classes(FEW_ROWS_PER_CLASS + 20)
    y[::2] = -1  # 35 labelled rows a class
    plan = plan_fit(_params(), X, y, np.random.RandomState(0))
    assert plan.encoder.start is not None
    assert plan.encoder.start[0].shape == (X.shape[1], 32)


@pytest.mark.parametrize(
    "case",
    ["partial_fit", "user encoder", "images"],
)
def test_only_a_full_fit_of_the_default_mlp_starts_from_the_raw_geometry(case):
    X, y = _classes(5)
    params, partial = _params(), False
    if case == "partial_fit":  # one chunk does not tell the size of the classes
        partial = True
    elif case == "user encoder":
        params = _params(encoder=lambda: None)
    else:
        X = X.reshape(len(X), 3, 2, 1)[..., [0, 0, 0]]  # 3x2 RGB images
    plan = plan_fit(params, X, y, np.random.RandomState(0), partial=partial)
    assert plan.encoder.start is None


def test_the_encoder_starts_as_the_linear_map_and_serves_it_in_numpy():
    from sktriplet.inference import DenseForward
    from sktriplet.keras import build_mlp_encoder

    X, _ = _classes(5, n_features=10)
    start = principal_start(X, np.arange(len(X)), 8, seed=0)
    encoder = build_mlp_encoder((10,), (16, 8), 8, True, seed=0, start=start)
    linear = X.astype(np.float32) @ start[0] + start[1]
    expected = linear / np.linalg.norm(linear, axis=1, keepdims=True)
    np.testing.assert_allclose(
        np.asarray(encoder(X.astype(np.float32), training=False)), expected, atol=1e-6
    )
    # Trained weights everywhere: the numpy forward pass computes the same.
    rng = np.random.RandomState(1)
    encoder.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in encoder.get_weights()])
    forward = DenseForward.from_keras(encoder)
    assert forward is not None and forward.start is not None
    np.testing.assert_allclose(
        forward(X.astype(np.float32)),
        np.asarray(encoder(X.astype(np.float32), training=False)),
        atol=1e-5,
    )


def test_without_hidden_layers_the_encoder_is_the_start_alone():
    from sktriplet.keras import build_mlp_encoder

    X, _ = _classes(5, n_features=10)
    start = principal_start(X, np.arange(len(X)), 4, seed=0)
    encoder = build_mlp_encoder((10,), (), 4, False, seed=0, start=start)
    np.testing.assert_allclose(
        np.asarray(encoder(X.astype(np.float32))),
        X.astype(np.float32) @ start[0] + start[1],
        rtol=1e-5,
    )


@pytest.mark.parametrize("where", ["inside the stack", "of two stacks"])
def test_dense_forward_declines_other_sums(where):
    import keras

    from sktriplet.inference import DenseForward

    inputs = keras.Input((4,))
    a = keras.layers.Dense(3)(inputs)
    b = keras.layers.Dense(3)(inputs)
    if where == "inside the stack":
        h = keras.layers.Dense(3)(keras.layers.Add()([a, b]))
    else:
        h = keras.layers.Add()([keras.layers.Dense(3)(a), keras.layers.Dense(3)(b)])
    assert DenseForward.from_keras(keras.Model(inputs, h)) is None


# What it is for --------------------------------------------------------------


@pytest.mark.parametrize("rows_per_class", [3, 5])
def test_held_out_1nn_on_the_embedding_is_at_least_that_of_raw_features(
    rows_per_class,
):
    """The digits, the first rows of each class training (issue #47's
    protocol), the rest held out; mean over three random states.  Before the
    start, the embedding's 1-NN trailed the raw features' by 0.04 and 0.03."""
    X, y = load_digits(return_X_y=True)
    train = np.concatenate([np.flatnonzero(y == c)[:rows_per_class] for c in range(10)])
    test = np.setdiff1d(np.arange(len(y)), train)
    scaler = StandardScaler().fit(X[train])
    X_tr, X_te = scaler.transform(X[train]), scaler.transform(X[test])

    def accuracy(E_tr, E_te):
        knn = KNeighborsClassifier(n_neighbors=1).fit(E_tr, y[train])
        return knn.score(E_te, y[test])

    embedded = []
    for seed in range(3):
        emb = TripletEmbedder(random_state=seed, device="cpu").fit(X_tr, y[train])
        embedded.append(accuracy(emb.transform(X_tr), emb.transform(X_te)))
    assert np.mean(embedded) >= accuracy(X_tr, X_te)


def test_onnx_computes_the_start_as_transform_does():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    from sktriplet.onnx import to_onnx

    X, y = _classes(5, n_features=10)
    emb = TripletEmbedder(epochs=2, hidden_layer_sizes=(8,), random_state=0).fit(X, y)
    assert emb._encoder.forward.start is not None
    session = ort.InferenceSession(
        to_onnx(emb).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    X32 = X.astype(np.float32)
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: X32})
    np.testing.assert_allclose(onnx_out, emb.transform(X32), atol=1e-5)


# What the plan measures of the raw features (held to it by mutation testing) --


def test_the_start_is_float32_and_computed_in_float64_from_any_input():
    X, _ = _classes(5, n_features=10)
    start64 = principal_start(X, np.arange(20), 12, seed=0)
    start32 = principal_start(X.astype(np.float32), np.arange(20), 12, seed=0)
    start_of_32 = principal_start(
        X.astype(np.float32).astype(np.float64), np.arange(20), 12, seed=0
    )
    for a, b, c in zip(start64, start32, start_of_32):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(b, c)  # float32 rows read as float64


@pytest.mark.parametrize(
    "X",
    [
        np.ones((6, 3)),  # constant rows
        np.tile([1.0, 2.0, 5.0], (6, 1)),  # identical rows of different values
        np.array([[1.0, 2.0, 5.0]]),  # one row
    ],
)
def test_rows_without_spread_start_from_orthonormal_axes_without_warnings(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel, bias = principal_start(X, np.arange(len(X)), 3, seed=0)
    axes = kernel / START_SCALE
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(X[:1] @ kernel + bias, 0, atol=1e-4)


@pytest.mark.parametrize("scale", [1e-5, 1.0, 1e5])
def test_two_rows_or_rows_of_any_scale_keep_their_distances(scale):
    # Fewer axes than features: only the principal ones keep the distances.
    X = np.random.RandomState(0).normal(size=(20, 30)) * scale
    for n_rows, n_components in ((2, 3), (20, 19)):
        Z = X[:n_rows]
        kernel, bias = principal_start(Z, np.arange(n_rows), n_components, seed=0)
        mapped = (Z @ kernel + bias) / START_SCALE
        np.testing.assert_allclose(
            np.linalg.norm(mapped[0] - mapped[1:], axis=1),
            np.linalg.norm(Z[0] - Z[1:], axis=1),
            rtol=1e-4,
        )


def test_a_share_of_many_rows_is_drawn_without_repeats_by_the_seed(monkeypatch):
    from sktriplet import _geometry

    monkeypatch.setattr(_geometry, "MAX_START_ROWS", 50)
    X = _recording(_classes(100, n_classes=2)[0])
    read = X.read
    starts = [principal_start(X, np.arange(200), 3, seed=s) for s in (1, 1, 2)]
    assert all(len(np.unique(rows)) == 50 for rows in read)
    np.testing.assert_array_equal(read[0], read[1])
    assert not np.array_equal(read[0], read[2])
    np.testing.assert_array_equal(starts[0][0], starts[1][0])


def test_the_randomised_principal_axes_of_wide_data_follow_the_seed():
    # 600 rows of 100 features, 10 axes: scikit-learn picks its randomised
    # solver, whose draws the seed fixes.
    X = np.random.RandomState(0).normal(size=(600, 100))
    first, second = (principal_start(X, np.arange(600), 10, seed=4) for _ in "ab")
    np.testing.assert_array_equal(first[0], second[0])


def test_sample_inputs_say_whether_rows_are_one_sample_and_their_largest_value():
    from sktriplet._geometry import sample_inputs

    rows = np.arange(3)
    assert sample_inputs(np.tile([1.0, -2.0], (3, 1)), rows) == (True, 2.0)
    assert sample_inputs(np.array([[0.1, 0.2], [0.1, 0.3], [0.0, 0.2]]), rows) == (
        False,
        0.3,
    )
    images = np.tile(np.arange(8.0).reshape(2, 2, 2), (3, 1, 1, 1))
    assert sample_inputs(images, rows) == (True, 7.0)
    images[1, 0, 0, 0] = -9.0
    assert sample_inputs(images, rows) == (False, 9.0)
