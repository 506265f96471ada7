"""Safe save/load: no code runs on load, damaged files and versions get clear errors.

Round trips of every kind of model, saved in one process and loaded in another,
are in ``test_round_trips.py``.
"""

import json
import re
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sktriplet import TripletEmbedder, load, save
from sktriplet.persistence import FORMAT_VERSION

keras = pytest.importorskip("keras")


def _encoder():
    inputs = keras.Input((64,))
    h = keras.layers.Dense(16, activation="gelu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(4)(h))


def test_unfitted_estimator_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        save(TripletEmbedder(), tmp_path / "m.sktriplet")


def test_damaged_file_gets_a_clear_error(digits, tmp_path, quick):
    X, y = digits
    save(TripletEmbedder(**quick).fit(X, y), tmp_path / "m.sktriplet")
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


def test_newer_format_version_gets_a_clear_error(digits, tmp_path, quick):
    X, y = digits
    save(TripletEmbedder(**quick).fit(X, y), tmp_path / "m.sktriplet")
    _rewrite_metadata(
        tmp_path / "m.sktriplet",
        tmp_path / "new.sktriplet",
        lambda m: m.update(format_version=FORMAT_VERSION + 1),
    )
    msg = f"format version {FORMAT_VERSION + 1}; this sktriplet reads versions up to"
    with pytest.raises(ValueError, match=re.escape(msg)):
        load(tmp_path / "new.sktriplet")


def test_code_in_a_model_file_is_refused(digits, tmp_path, quick):
    """A Lambda layer would run code on load: safe mode refuses it."""
    X, y = digits
    inputs = keras.Input((64,))
    out = keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Dense(4)(inputs))
    emb = TripletEmbedder(encoder=keras.Model(inputs, out), **quick).fit(X, y)
    with pytest.warns(UserWarning, match="this file will not load"):
        save(emb, tmp_path / "m.sktriplet")
    with pytest.raises(ValueError, match="could not be loaded safely"):
        load(tmp_path / "m.sktriplet")


def test_loaded_image_model_checks_the_sample_shape(tmp_path):
    X, y = load_digits(return_X_y=True)
    images = (X / 16.0).reshape(-1, 8, 8, 1)[:120]
    emb = TripletEmbedder(epochs=1, random_state=0).fit(images, y[:120])
    save(emb, tmp_path / "m.sktriplet")
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        load(tmp_path / "m.sktriplet").transform(np.zeros((2, 8, 9, 1)))


def test_runtime_objects_in_params_are_not_stored(digits, tmp_path, quick):
    """A strategy, like callbacks, is a runtime object: saved as None, not an error."""
    tf = pytest.importorskip("tensorflow")
    X, y = digits
    strategy = tf.distribute.get_strategy()  # the default strategy, one device
    emb = TripletEmbedder(strategy=strategy, **quick).fit(X, y)
    save(emb, tmp_path / "m.sktriplet")
    restored = load(tmp_path / "m.sktriplet")
    assert restored.strategy is None and restored.callbacks is None
    np.testing.assert_array_equal(restored.transform(X), emb.transform(X))


def test_pickling_with_a_strategy_names_the_way_out(digits, quick):
    """A strategy holds this process's devices: pickling says what to do."""
    import pickle

    tf = pytest.importorskip("tensorflow")
    X, y = digits
    emb = TripletEmbedder(strategy=tf.distribute.get_strategy(), **quick).fit(X, y)
    with pytest.raises(TypeError, match=re.escape("set_params(strategy=None)")):
        pickle.dumps(emb)
    restored = pickle.loads(pickle.dumps(emb.set_params(strategy=None)))
    np.testing.assert_array_equal(restored.transform(X), emb.transform(X))


def test_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nowhere.sktriplet")


def test_foreign_zip_with_a_metadata_file_gets_the_same_message(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("metadata.json", json.dumps({"format": "another program"}))
    msg = f"{tmp_path / 'other.zip'} is not a readable sktriplet model file"
    with pytest.raises(ValueError, match=re.escape(msg)):
        load(tmp_path / "other.zip")


def test_keras_requirement_excludes_releases_with_a_safe_mode_bypass():
    """Load's safety rests on Keras's safe_mode: no Keras with a published bypass
    may be installed with sktriplet."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    (keras_req,) = [
        Requirement(r) for r in requires("sktriplet") if r.startswith("keras")
    ]
    for bypassed in (
        "3.3.0",
        "3.8.0",
        "3.10.0",
        "3.11.3",
        "3.12.3",
        "3.13.2",
        "3.14.1",
        "3.15.0",
    ):
        assert bypassed not in keras_req.specifier, bypassed
    for patched in ("3.12.4", "3.15.1", "3.16.0"):
        assert patched in keras_req.specifier, patched
