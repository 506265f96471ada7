"""ONNX export: onnxruntime gives what transform gives, alone and in a pipeline."""

import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from sktriplet import TripletEmbedder
from sktriplet import onnx as sk_onnx

ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")


def _run(model, X):
    """The pipeline's outputs, by whatever names skl2onnx gave them."""
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: X})


def _embed(model, X):
    """What a serving client does with ``to_onnx``'s model: feed ``X`` and ask
    for ``embedding`` by the names its docs promise."""
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(["embedding"], {"X": X})


@pytest.fixture(scope="module")
def split(digits):
    X, y = digits
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def _dense_stack_with_batch_norm():
    import keras

    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(24),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("tanh"),
            keras.layers.Dense(6),
        ]
    )


@pytest.mark.parametrize("encoder", ["default", "dense stack with batch norm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_dense_encoder_in_onnxruntime_matches_transform(split, quick, encoder, dtype):
    X_train, X_test, y_train, _ = split
    given = None if encoder == "default" else _dense_stack_with_batch_norm
    emb = TripletEmbedder(**quick, encoder=given).fit(X_train, y_train)
    assert emb._encoder.forward is not None  # written as ONNX operators
    (out,) = _embed(sk_onnx.to_onnx(emb, dtype=dtype), X_test.astype(dtype))
    expected = emb.transform(X_test.astype(dtype))
    assert out.dtype == expected.dtype == dtype
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert np.abs(expected).max() > 0.1  # not a zero embedding on both sides


def test_the_default_image_encoder_in_onnxruntime_matches_transform():
    """The convolutional encoder goes through tf2onnx, with augmentation off;
    grayscale images without a channel axis get one, as in transform."""
    pytest.importorskip("tf2onnx")
    rng = np.random.RandomState(0)
    X = rng.rand(90, 12, 12).astype(np.float32)
    y = np.arange(90) % 3
    X[y == 1, :6] += 0.5
    emb = TripletEmbedder(epochs=2, random_state=0, device="cpu").fit(X[:60], y[:60])
    assert emb._encoder.forward is None
    for dtype in (np.float32, np.float64):
        (out,) = _embed(sk_onnx.to_onnx(emb, dtype=dtype), X[60:].astype(dtype))
        expected = emb.transform(X[60:].astype(dtype))
        assert out.dtype == dtype
        np.testing.assert_allclose(out, expected, atol=1e-5)


def test_a_pipeline_to_onnx_predicts_the_pipelines_labels(split, quick):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, X_test, y_train, y_test = split
    pipe = make_pipeline(
        StandardScaler(), TripletEmbedder(**quick), KNeighborsClassifier(3)
    ).fit(X_train, y_train)
    sk_onnx.register()
    model = skl2onnx.to_onnx(pipe, X_train[:1].astype(np.float32))
    labels = _run(model, X_test.astype(np.float32))[0]
    np.testing.assert_array_equal(labels, pipe.predict(X_test))
    assert np.mean(labels == y_test) > 0.8  # a trained embedding, not noise


def test_export_refuses_an_unfitted_model_and_other_dtypes(quick, digits):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        sk_onnx.to_onnx(TripletEmbedder())
    emb = TripletEmbedder(**quick).fit(*digits)
    with pytest.raises(ValueError, match="dtype must be float32 or float64; got"):
        sk_onnx.to_onnx(emb, dtype=np.int64)


def test_cli_export_then_onnxruntime_in_fresh_processes(digits, quick, tmp_path):
    """save in this process; `sktriplet export` in another; onnxruntime, with
    no sktriplet nor TensorFlow imported, in a third."""
    from sktriplet import save

    X, y = digits
    emb = TripletEmbedder(**quick).fit(X, y)
    save(emb, tmp_path / "m.sktriplet")
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    export = subprocess.run(
        [sys.executable, "-m", "sktriplet.cli", "export", str(tmp_path / "m.sktriplet"),
         "--output", str(tmp_path / "m.onnx")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    assert "m.onnx" in export.stdout
    script = (
        "import sys, numpy as np, onnxruntime as ort;"
        f"s = ort.InferenceSession({str(tmp_path / 'm.onnx')!r});"
        f"np.save({str(tmp_path / 'E.npy')!r}, s.run(['embedding'], {{'X': np.load("
        f"{str(tmp_path / 'X.npy')!r})}})[0]);"
        "assert 'tensorflow' not in sys.modules and 'sktriplet' not in sys.modules"
    )
    serve = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True
    )
    assert serve.returncode == 0, serve.stderr
    np.testing.assert_allclose(
        np.load(tmp_path / "E.npy"), emb.transform(X.astype(np.float32)), atol=1e-5
    )


def test_cli_export_of_a_missing_model_is_one_line(tmp_path, capsys):
    from sktriplet.cli import main

    assert main(["export", str(tmp_path / "nope.sktriplet"), "--output",
                 str(tmp_path / "m.onnx")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"sktriplet export: error: no such file: {tmp_path / 'nope.sktriplet'}"
    )
    assert not (tmp_path / "m.onnx").exists()


def _gelu_encoder():
    import keras

    inputs = keras.Input((64,))
    h = keras.layers.Dense(8, activation="gelu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(4)(h))


def _lstm_encoder():
    import keras

    inputs = keras.Input((64,))
    h = keras.layers.LSTM(4)(keras.layers.Reshape((8, 8))(inputs))
    return keras.Model(inputs, h)


@pytest.mark.parametrize(
    "encoder, message",
    [
        (_gelu_encoder, "tf2onnx has no ONNX operator for TensorFlow's Erfc"),
        (_lstm_encoder, "skl2onnx could not assemble the graph tf2onnx wrote"),
    ],
    ids=["gelu", "lstm"],
)
def test_an_encoder_onnx_cannot_run_is_refused_before_a_file_is_written(
    digits, quick, tmp_path, capsys, encoder, message
):
    """tf2onnx keeps an op it cannot convert (gelu's Erfc) in a graph that
    onnxruntime refuses, and skl2onnx fails on an LSTM's graph with its own
    RuntimeError: both are the documented ValueError, and ``sktriplet export``
    says it in one line and writes nothing (issue 44, item 6)."""
    from sktriplet import save
    from sktriplet.cli import main

    emb = TripletEmbedder(encoder=encoder(), **quick).fit(*digits)
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        sk_onnx.to_onnx(emb)
    assert str(raised.value).startswith("Cannot convert this encoder to ONNX: ")
    save(emb, tmp_path / "m.sktriplet")
    capsys.readouterr()
    code = main(["export", str(tmp_path / "m.sktriplet"), "--output",
                 str(tmp_path / "m.onnx")])  # fmt: skip
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("sktriplet export: error: Cannot convert this encoder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.sktriplet"]


def test_export_checks_one_row_against_transform_before_writing(
    digits, quick, tmp_path, monkeypatch
):
    """A converted model that embeds differently from transform is refused
    before the file is written: the check export makes before it replaces it."""
    emb = TripletEmbedder(**quick).fit(*digits)
    transform = emb.transform
    monkeypatch.setattr(emb, "transform", lambda X: transform(X) + 0.01)
    (tmp_path / "m.onnx").write_bytes(b"the earlier export")
    with pytest.raises(ValueError, match="embeds a row differently from transform"):
        sk_onnx.export(emb, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() == b"the earlier export"


def _dense_fitted(layers, normalize, n_features):
    """A TripletEmbedder fitted, as far as ONNX export sees, with the dense
    stack ``layers`` (no Keras model, no training): the converter's ops are
    held to the numpy forward pass that transform runs."""
    from sktriplet.fitted import FittedEncoder
    from sktriplet.inference import DenseForward

    encoder = FittedEncoder.__new__(FittedEncoder)
    encoder.model, encoder.optimizer_state = None, None
    encoder.forward = DenseForward(layers, normalize)
    encoder.n_components = layers[-1][0].shape[1]
    emb = TripletEmbedder()
    emb._encoder, emb._sample_shape = encoder, (n_features,)
    emb.n_components_, emb.n_features_in_ = encoder.n_components, n_features
    emb.classes_ = np.array([0, 1])
    return emb


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "linear"])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_dense_layer_is_written_as_the_ops_transform_computes(
    activation, normalize, dtype
):
    rng = np.random.RandomState(0)
    layers = [
        (rng.normal(size=(3, 5)), rng.normal(size=5), activation),
        (rng.normal(size=(5, 4)), None, "linear"),
        (rng.normal(size=(4, 2)), rng.normal(size=2), activation),
    ]
    emb = _dense_fitted(layers, normalize, 3)
    X = rng.normal(size=(6, 3)).astype(dtype)
    X[0] = 0  # a row whose embedding may be 0: the norm's floor, not NaN
    emb._encoder.forward.layers[0] = (layers[0][0], np.zeros(5), activation)
    (out,) = _embed(sk_onnx.to_onnx(emb, dtype=dtype), X)
    expected = emb.transform(X)
    assert out.dtype == dtype and out.shape == (6, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    if normalize:  # unit rows, or zero ones (a relu may zero a whole row)
        norms = np.linalg.norm(out, axis=1)
        assert (np.isclose(norms, 1, rtol=1e-5) | (norms == 0)).all()


def test_a_zero_embedding_stays_zero_when_normalized():
    layers = [(np.zeros((2, 3)), None, "linear")]
    emb = _dense_fitted(layers, True, 2)
    (out,) = _embed(sk_onnx.to_onnx(emb), np.ones((2, 2), np.float32))
    assert np.array_equal(out, np.zeros((2, 3), np.float32))


def test_export_writes_a_model_that_runs_as_transform(tmp_path):
    rng = np.random.RandomState(1)
    emb = _dense_fitted([(rng.normal(size=(3, 2)), rng.normal(size=2), "tanh")],
                        False, 3)  # fmt: skip
    sk_onnx.export(emb, tmp_path / "m.onnx", dtype=np.float64)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    assert [i.name for i in session.get_inputs()] == ["X"]
    assert [o.name for o in session.get_outputs()] == ["embedding"]
    X = rng.normal(size=(4, 3))
    np.testing.assert_allclose(session.run(["embedding"], {"X": X})[0],
                               emb.transform(X), atol=1e-12)  # fmt: skip


def test_export_refuses_a_model_that_embeds_otherwise_and_writes_nothing(
    tmp_path, monkeypatch
):
    rng = np.random.RandomState(2)
    emb = _dense_fitted([(rng.normal(size=(3, 2)), None, "linear")], False, 3)
    transform = emb.transform
    monkeypatch.setattr(emb, "transform", lambda X: transform(X) + 0.25)
    with pytest.raises(ValueError, match="^" + re.escape(
        "Cannot convert this encoder to ONNX: the converted model embeds a row "
        "differently from transform (largest difference 0.25)."
    ) + "$"):  # fmt: skip
        sk_onnx.export(emb, tmp_path / "m.onnx")
    monkeypatch.setattr(emb, "transform", lambda X: transform(X) + 5e-5)
    sk_onnx.export(emb, tmp_path / "close.onnx")  # within 1e-4: written
    monkeypatch.setattr(emb, "transform", lambda X: transform(np.vstack([X, X])))
    with pytest.raises(ValueError, match="embeds a row differently"):
        sk_onnx.export(emb, tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["close.onnx"]


def test_a_model_onnxruntime_refuses_is_named(monkeypatch):
    rng = np.random.RandomState(3)
    emb = _dense_fitted([(rng.normal(size=(3, 2)), None, "linear")], False, 3)
    with pytest.raises(ValueError, match="^" + re.escape(
        "Cannot convert this encoder to ONNX: onnxruntime refuses the converted "
        "model (") + "[A-Za-z]+: \\[ONNXRuntimeError\\].{0,130}\\)\\.$"):  # fmt: skip
        sk_onnx._check_runs_as_transform(emb, b"not a model", np.float32)


def test_the_checkers_verdict_is_the_documented_error():
    import onnx

    model = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("NoSuchOp", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    ))  # fmt: skip
    with pytest.raises(ValueError, match="^" + re.escape(
        "Cannot convert this encoder to ONNX: the converted model fails the ONNX "
        "checker (ValidationError: "
    )):  # fmt: skip
        sk_onnx._check(model)


@pytest.mark.parametrize(
    "message, most, line",
    [("short", 20, "ValueError: short"), ("  two\nlines ", 40, "ValueError: two"),
     ("x" * 30, 20, "ValueError: xxxxx..."), ("x" * 8, 20, "ValueError: xxxxxxxx")],
)  # fmt: skip
def test_an_error_is_quoted_by_its_first_line_cut_to_fit(message, most, line):
    got = sk_onnx._first_line(ValueError(message), most)
    assert got == line and len(got) <= most


def test_register_makes_the_estimator_convertible_in_a_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.RandomState(4)
    X = rng.normal(size=(10, 3)).astype(np.float32)
    emb = _dense_fitted([(rng.normal(size=(3, 2)), None, "relu")], True, 3)
    pipe = make_pipeline(StandardScaler().fit(X), emb)
    sk_onnx.register()
    (out,) = _run(skl2onnx.to_onnx(pipe, X[:1]), X)
    np.testing.assert_allclose(out, pipe.transform(X), atol=1e-5)


def test_an_encoder_beyond_dense_layers_needs_the_tensorflow_backend(monkeypatch):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="^" + re.escape(
        "Converting this encoder (not a stack of Dense layers) to ONNX goes "
        "through tf2onnx, which needs the TensorFlow backend; this process runs "
        "Keras on 'jax'. Set KERAS_BACKEND=tensorflow before importing Keras."
    ) + "$"):  # fmt: skip
        sk_onnx._splice_keras(None, None, "x", "out")


def test_without_skl2onnx_the_export_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(ImportError, match="^" + re.escape(
        "ONNX export needs skl2onnx and onnx: pip install 'sktriplet[onnx]'"
    ) + "$"):  # fmt: skip
        sk_onnx.register()


def test_tf2onnx_missing_or_failing_is_said_in_one_line(monkeypatch):
    from types import SimpleNamespace

    pytest.importorskip("tf2onnx")
    import tf2onnx

    model = SimpleNamespace(input_shape=(None, 3))
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(ImportError, match="^" + re.escape(
        "Converting an encoder that is not a stack of Dense layers to ONNX needs "
        "tf2onnx: pip install 'sktriplet[onnx]'"
    ) + "$"):  # fmt: skip
        sk_onnx._keras_to_onnx(model, 13)
    monkeypatch.setitem(sys.modules, "tf2onnx", tf2onnx)
    for error, quoted in ((RuntimeError("  no op\nstack"), "RuntimeError: no op"),
                          (KeyError(), "KeyError: ")):  # fmt: skip

        def fail(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(tf2onnx.convert, "from_function", fail)
        with pytest.raises(ValueError, match="^" + re.escape(
            f"tf2onnx could not convert this encoder to ONNX ({quoted})."
        ) + "$"):  # fmt: skip
            sk_onnx._keras_to_onnx(model, 13)


def test_tensorflow_ops_tf2onnx_left_in_the_graph_are_named(monkeypatch):
    from types import SimpleNamespace

    import onnx

    pytest.importorskip("tf2onnx")
    import tf2onnx

    nodes = [onnx.helper.make_node(op, ["x"], ["y"], domain=domain)
             for op, domain in (("Erfc", ""), ("Relu", ""), ("Foo", "ai.onnx"),
                                ("Bar", "com.microsoft"))]  # fmt: skip
    proto = onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [], []))
    monkeypatch.setattr(tf2onnx.convert, "from_function", lambda *a, **k: (proto, 0))
    with pytest.raises(ValueError, match="^" + re.escape(
        "Cannot convert this encoder to ONNX: tf2onnx has no ONNX operator for "
        "TensorFlow's Erfc, Foo (used by one of its layers or activations, such "
        "as gelu's Erfc); use layers that tf2onnx converts."
    ) + "$"):  # fmt: skip
        sk_onnx._keras_to_onnx(SimpleNamespace(input_shape=(None, 3)), 13)


def test_a_graph_skl2onnx_cannot_assemble_is_one_value_error(monkeypatch):
    rng = np.random.RandomState(5)
    emb = _dense_fitted([(rng.normal(size=(3, 2)), None, "linear")], False, 3)

    def fail(*args, **kwargs):
        raise RuntimeError("Unable to find a shape\ncalculator for x")

    monkeypatch.setattr(skl2onnx, "to_onnx", fail)
    with pytest.raises(ValueError, match="^" + re.escape(
        "Cannot convert this encoder to ONNX: skl2onnx could not assemble the "
        "graph tf2onnx wrote for it (RuntimeError: Unable to find a shape)."
    ) + "$"):  # fmt: skip
        sk_onnx.to_onnx(emb)


def test_the_output_is_declared_n_components_wide_at_the_opset_asked():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.RandomState(6)
    X = rng.normal(size=(5, 3)).astype(np.float32)
    emb = _dense_fitted([(rng.normal(size=(3, 4)), None, "relu")], False, 3)
    sk_onnx.register()
    model = skl2onnx.to_onnx(make_pipeline(StandardScaler().fit(X), emb), X[:1])
    (output,) = model.graph.output
    assert output.type.tensor_type.shape.dim[1].dim_value == 4
    model = sk_onnx.to_onnx(emb, target_opset=15)
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {
        15
    }
