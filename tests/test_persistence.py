"""Safe save/load: no code runs on load, damaged files and versions get clear errors."""

import json
import re
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sktriplet import TripletEmbedder, load, save
from sktriplet.persistence import FORMAT_VERSION

keras = pytest.importorskip("keras")

QUICK = dict(epochs=2, hidden_layer_sizes=(16,), random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0)[:200], y[:200]


def _encoder():
    inputs = keras.Input((64,))
    h = keras.layers.Dense(16, activation="gelu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(4)(h))


@pytest.mark.parametrize("kind", ["default", "keras_model"])
def test_round_trip_reproduces_transform_exactly(digits, tmp_path, kind):
    X, y = digits
    params = dict(QUICK, encoder=_encoder()) if kind == "keras_model" else QUICK
    emb = TripletEmbedder(**params).fit(X, np.array(list("abcdefghij"))[y])
    save(emb, tmp_path / "m.sktriplet")
    restored = load(tmp_path / "m.sktriplet")
    np.testing.assert_array_equal(restored.transform(X), emb.transform(X))
    np.testing.assert_array_equal(restored.classes_, emb.classes_)
    assert restored.history_ == emb.history_
    assert restored.n_components_ == emb.n_components_
    params = {k: v for k, v in emb.get_params().items() if k != "encoder"}
    assert {k: restored.get_params()[k] for k in params} == params


def test_loaded_estimator_can_be_refitted(digits, tmp_path):
    X, y = digits
    emb = TripletEmbedder(encoder=_encoder(), **QUICK).fit(X, y)
    save(emb, tmp_path / "m.sktriplet")
    restored = load(tmp_path / "m.sktriplet")
    # The encoder parameter, a Keras model, is stored with its weights: refitting
    # the loaded estimator is refitting the original.
    np.testing.assert_array_equal(
        restored.fit(X, y).transform(X), emb.fit(X, y).transform(X)
    )


def test_pandas_feature_names_survive(digits, tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = digits
    df = pd.DataFrame(X, columns=[f"p{i}" for i in range(64)])
    emb = TripletEmbedder(**QUICK).fit(df, y)
    save(emb, tmp_path / "m.sktriplet")
    np.testing.assert_array_equal(
        load(tmp_path / "m.sktriplet").feature_names_in_, df.columns
    )


def test_unfitted_estimator_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        save(TripletEmbedder(), tmp_path / "m.sktriplet")


def test_damaged_file_gets_a_clear_error(digits, tmp_path):
    X, y = digits
    save(TripletEmbedder(**QUICK).fit(X, y), tmp_path / "m.sktriplet")
    data = (tmp_path / "m.sktriplet").read_bytes()
    (tmp_path / "cut.sktriplet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="is not a readable sktriplet model file"):
        load(tmp_path / "cut.sktriplet")


def test_other_file_gets_a_clear_error(tmp_path):
    (tmp_path / "x.sktriplet").write_text("hello")
    with pytest.raises(ValueError, match="is not a readable sktriplet model file"):
        load(tmp_path / "x.sktriplet")


def _rewrite_metadata(src, dst, change):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "metadata.json":
                meta = json.loads(data)
                change(meta)
                data = json.dumps(meta)
            zout.writestr(item, data)


def test_newer_format_version_gets_a_clear_error(digits, tmp_path):
    X, y = digits
    save(TripletEmbedder(**QUICK).fit(X, y), tmp_path / "m.sktriplet")
    _rewrite_metadata(
        tmp_path / "m.sktriplet",
        tmp_path / "new.sktriplet",
        lambda m: m.update(format_version=FORMAT_VERSION + 1),
    )
    msg = f"format version {FORMAT_VERSION + 1}; this sktriplet reads versions up to"
    with pytest.raises(ValueError, match=re.escape(msg)):
        load(tmp_path / "new.sktriplet")


def test_code_in_a_model_file_is_refused(digits, tmp_path):
    """A Lambda layer would run code on load: safe mode refuses it."""
    X, y = digits
    inputs = keras.Input((64,))
    out = keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Dense(4)(inputs))
    emb = TripletEmbedder(encoder=keras.Model(inputs, out), **QUICK).fit(X, y)
    save(emb, tmp_path / "m.sktriplet")
    with pytest.raises(ValueError, match="could not be loaded safely"):
        load(tmp_path / "m.sktriplet")


def test_image_model_round_trip(tmp_path):
    X, y = load_digits(return_X_y=True)
    images = (X / 16.0).reshape(-1, 8, 8, 1)[:120]
    emb = TripletEmbedder(epochs=1, random_state=0).fit(images, y[:120])
    save(emb, tmp_path / "m.sktriplet")
    restored = load(tmp_path / "m.sktriplet")
    np.testing.assert_array_equal(restored.transform(images), emb.transform(images))
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        restored.transform(np.zeros((2, 8, 9, 1)))


def test_runtime_objects_in_params_are_not_stored(digits, tmp_path):
    """A strategy, like callbacks, is a runtime object: saved as None, not an error."""
    tf = pytest.importorskip("tensorflow")
    X, y = digits
    strategy = tf.distribute.get_strategy()  # the default strategy, one device
    emb = TripletEmbedder(strategy=strategy, **QUICK).fit(X, y)
    save(emb, tmp_path / "m.sktriplet")
    restored = load(tmp_path / "m.sktriplet")
    assert restored.strategy is None and restored.callbacks is None
    np.testing.assert_array_equal(restored.transform(X), emb.transform(X))
