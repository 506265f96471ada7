"""Safe save/load: no code runs on load, damaged files and versions get clear errors.

Round trips of every kind of model, saved in one process and loaded in another,
are in ``test_round_trips.py``.
"""

import json
import os
import re
import stat
import zipfile

import numpy as np
import pytest

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


def _rewrite_member(src, dst, name, change):
    """The zip ``src`` written to ``dst`` (paths or file objects) with its
    member ``name`` replaced by ``change(its bytes)``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            zout.writestr(item, change(data) if item == name else data)


def _json_change(change):
    def rewrite(data):
        value = json.loads(data)
        change(value)
        return json.dumps(value)

    return rewrite


def _rewrite_metadata(src, dst, change):
    _rewrite_member(src, dst, "metadata.json", _json_change(change))


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
    msg = "could not be loaded safely: it names a Lambda layer's Python code"
    with pytest.raises(ValueError, match=re.escape(msg)):
        load(tmp_path / "m.sktriplet")


def test_loaded_image_model_checks_the_sample_shape(tmp_path, digits):
    X, y = digits
    images = X.reshape(-1, 8, 8, 1)[:120]
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


@pytest.mark.parametrize(
    "failure",
    [KeyboardInterrupt(), OSError(28, "No space left on device")],
    ids=["ctrl-c", "disk-full"],
)
def test_failed_save_leaves_the_old_file_whole(
    digits, tmp_path, quick, monkeypatch, failure
):
    """A save over an existing model that is interrupted, or fails, while it
    writes the encoder leaves the old model loadable and no stray file."""
    X, y = digits
    path = tmp_path / "m.sktriplet"
    old = TripletEmbedder(**quick).fit(X, y)
    save(old, path)
    before = path.read_bytes()
    write = zipfile.ZipFile.write

    def failing_write(self, filename, arcname=None, *args, **kwargs):
        if arcname == "encoder.keras":
            self.fp.write(b"half an encoder")  # some bytes reach the disk first
            raise failure
        return write(self, filename, arcname, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "write", failing_write)
    new = TripletEmbedder(**{**quick, "epochs": 1, "random_state": 1}).fit(X, y)
    with pytest.raises(type(failure)):
        save(new, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.sktriplet"]
    np.testing.assert_array_equal(load(path).transform(X), old.transform(X))


def test_save_into_a_missing_folder_or_onto_a_folder_writes_nothing(
    digits, tmp_path, quick
):
    X, y = digits
    emb = TripletEmbedder(**quick).fit(X, y)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        save(emb, tmp_path / "no" / "m.sktriplet")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        save(emb, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_save_keeps_the_permissions_of_the_file_it_replaces(digits, tmp_path, quick):
    X, y = digits
    emb = TripletEmbedder(**quick).fit(X, y)
    path = tmp_path / "m.sktriplet"
    path.write_bytes(b"")
    path.chmod(0o640)
    save(emb, path)
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.fixture(scope="module")
def saved(tmp_path_factory, digits):
    """A small model file, its data and its transform."""
    X, y = digits[0][:120], digits[1][:120]
    emb = TripletEmbedder(epochs=1, hidden_layer_sizes=(8,), random_state=0)
    path = tmp_path_factory.mktemp("saved") / "m.sktriplet"
    save(emb.fit(X, y), path)
    return path, X, emb.transform(X)


def _set(*keys, value):
    def change(meta):
        node = meta
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_set("fitted", "transform", value=1), "the unknown key 'fitted.transform'"),
        (_set("fitted", "_forward", value=None), "the unknown key 'fitted._forward'"),
        (_set("extra", value=1), "the unknown key 'extra'"),
        (_set("params", "fit", value=1), "the unknown key 'params.fit'"),
        (
            _set("fitted", "n_components_", value="8"),
            "'fitted.n_components_' must be an integer >= 1; it holds '8'",
        ),
        (
            _set("fitted", "n_iter_", value=True),
            "'fitted.n_iter_' must be an integer >= 0; it holds True",
        ),
        (
            _set("fitted", "sample_shape", value=[64, -1]),
            "'fitted.sample_shape' must be a list of integers >= 1",
        ),
        (
            _set("fitted", "classes_", value={"dtype": "<M8[s]", "values": [0, 1]}),
            "'fitted.classes_' must be {'dtype': a numpy dtype",
        ),
        (
            _set("fitted", "history_", value={"loss": ["x"]}),
            "'fitted.history_' must be an object of lists of numbers",
        ),
        (
            _set("fitted", "feature_names_in_", value=["a", "b"]),
            "'fitted.feature_names_in_' must be 64 names",
        ),
        (_set("encoder_param", value="pickle"), "'encoder_param' must be one of"),
        (_set("params", "margin", value=-1), "The 'margin' parameter"),
        (
            _set("params", "hidden_layer_sizes", value=["x"]),
            "hidden_layer_sizes must be a sequence of positive integers",
        ),
        (
            _set("fitted", "n_components_", value=4),
            "its encoder maps inputs of shape (None, 64) to (None, 32), but",
        ),
    ],
)
def test_load_reads_the_metadata_against_its_schema(saved, tmp_path, change, message):
    """A model file is untrusted input: a key outside the schema, or a value of
    the wrong type or range, is a ValueError naming the key, before any use."""
    path, _, _ = saved
    _rewrite_metadata(path, tmp_path / "bad.sktriplet", change)
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        load(tmp_path / "bad.sktriplet")
    assert "is not a valid sktriplet model file" in str(raised.value)


def test_missing_metadata_key_is_named(saved, tmp_path):
    path, _, _ = saved
    _rewrite_metadata(path, tmp_path / "bad.sktriplet", lambda m: m.pop("fitted"))
    with pytest.raises(ValueError, match=re.escape("lacks the key 'fitted'")):
        load(tmp_path / "bad.sktriplet")


def test_a_file_that_omits_a_parameter_loads_with_its_default(saved, tmp_path):
    """Files of an earlier sktriplet know fewer parameters: the rest default."""
    path, X, expected = saved
    _rewrite_metadata(
        path, tmp_path / "old.sktriplet", lambda m: m["params"].pop("device")
    )
    restored = load(tmp_path / "old.sktriplet")
    assert restored.device == TripletEmbedder().device
    np.testing.assert_array_equal(restored.transform(X), expected)


def test_a_file_from_before_weight_decay_loads_without_it(saved, tmp_path):
    """Such a file trained without weight decay: continuing it (partial_fit,
    a refit) must not switch decay on."""
    path, X, expected = saved
    _rewrite_metadata(
        path, tmp_path / "old.sktriplet", lambda m: m["params"].pop("weight_decay")
    )
    restored = load(tmp_path / "old.sktriplet")
    assert restored.weight_decay == 0.0
    np.testing.assert_array_equal(restored.transform(X), expected)


def _rewrite_encoder_config(src, dst, change):
    """``src`` with its encoder's Keras config changed by ``change``."""
    import io

    def rewrite_keras_file(data):
        inner = io.BytesIO()
        _rewrite_member(io.BytesIO(data), inner, "config.json", _json_change(change))
        return inner.getvalue()

    _rewrite_member(src, dst, "encoder.keras", rewrite_keras_file)


def use_os_system(config):
    """Make the first Dense layer of a Keras config name ``os.system`` as its
    activation, as a malicious model file would."""
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Dense":
            layer["config"]["activation"] = {
                "module": "os",
                "class_name": "function",
                "config": "system",
                "registered_name": "system",
            }
            return


def test_a_function_outside_keras_in_the_encoder_is_refused_by_name(saved, tmp_path):
    """A config that names os.system as an activation is refused, and the message
    says what and where, without Keras's internal class paths."""
    path, _, _ = saved
    _rewrite_encoder_config(path, tmp_path / "bad.sktriplet", use_os_system)
    with pytest.raises(ValueError, match="could not be loaded safely") as raised:
        load(tmp_path / "bad.sktriplet")
    message = str(raised.value)
    assert "it names os.system (in layer 'hidden_0')" in message, message
    assert "keras.src" not in message and "<class" not in message, message


def _rewrite_optimizer_state(src, dst, change):
    """``src`` with each array of its optimizer state replaced by ``change(a)``."""
    import io

    def rewrite(data):
        with np.load(io.BytesIO(data)) as npz:
            arrays = [change(npz[f"arr_{i}"]) for i in range(len(npz.files))]
        out = io.BytesIO()
        np.savez(out, *arrays)
        return out.getvalue()

    _rewrite_member(src, dst, "optimizer.npz", rewrite)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda a: a[..., :1] if a.ndim else a,
            "its optimizer state holds arrays of shapes [(64, 1), (64, 1)",
        ),
        (
            lambda a: np.full_like(a, np.nan) if a.dtype.kind == "f" else a,
            "its optimizer state holds values that are not finite (NaN or infinity)",
        ),
    ],
    ids=["wrong shapes", "NaN"],
)
def test_load_checks_the_optimizer_state_against_the_encoder(
    saved, tmp_path, change, message
):
    """Arrays that do not fit the encoder would fail in Keras's variable.assign
    at the next partial_fit, without naming the file; NaN moments would train
    the encoder into NaN without an error (issue 44, item 3)."""
    path, _, _ = saved
    bad = tmp_path / "bad.sktriplet"
    _rewrite_optimizer_state(path, bad, change)
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        load(bad)
    assert str(raised.value).startswith(f"{bad} is not a valid sktriplet model file")


def test_save_through_a_link_replaces_the_file_it_names(saved, tmp_path):
    """A model path that is a symbolic link stays a link: the file it names is
    the one replaced, and no stale copy is left behind (issue 44, item 4)."""
    path, X, expected = saved
    real = tmp_path / "models" / "real.sktriplet"
    real.parent.mkdir()
    real.write_bytes(b"an older model")
    link = tmp_path / "current.sktriplet"
    link.symlink_to(real)
    save(load(path), link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    np.testing.assert_array_equal(load(real).transform(X), expected)
    assert sorted(os.listdir(real.parent)) == ["real.sktriplet"]


def test_save_onto_a_pipe_writes_through_it_and_leaves_the_pipe(saved, tmp_path):
    """A target that is no regular file (a pipe here; a device such as
    /dev/full alike) is written directly, never replaced by a regular file:
    renaming over a device node would take it from every program (item 4)."""
    import threading

    path, X, expected = saved
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(
        target=lambda: received.append(pipe.read_bytes()), daemon=True
    )
    reader.start()
    save(load(path), pipe)
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    copy = tmp_path / "copy.sktriplet"
    copy.write_bytes(received[0])
    np.testing.assert_array_equal(load(copy).transform(X), expected)


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda data: data[: len(data) // 2],
            "its encoder.keras is not a Keras archive",
        ),
        ("model.weights.h5", "its encoder.keras could not be read ("),
    ],
    ids=["truncated archive", "damaged weights"],
)
def test_a_damaged_encoder_is_named_as_damage_not_as_code(
    saved, tmp_path, damage, message
):
    """The message names the user's file and the damage, never a temporary
    file the user did not give, nor Lambda layers (issue 44, item 7)."""
    import io

    path, _, _ = saved
    if isinstance(damage, str):  # truncate one member of the Keras archive

        def truncate_member(data, member=damage):
            out = io.BytesIO()
            _rewrite_member(io.BytesIO(data), out, member, lambda d: d[: len(d) // 3])
            return out.getvalue()

        damage = truncate_member
    bad = tmp_path / "bad.sktriplet"
    _rewrite_member(path, bad, "encoder.keras", damage)
    with pytest.raises(ValueError) as raised:
        load(bad)
    text = str(raised.value)
    assert text.startswith(f"{bad} is not a readable sktriplet model file: "), text
    assert message in text and "damaged or truncated" in text, text
    assert "Lambda" not in text and "/tmp" not in text.replace(str(bad), ""), text
