"""What an encoder may be: any built Keras model is accepted or refused clearly,
and a fitted model embeds wherever its weights load."""

import re
import zipfile

import numpy as np
import pytest

from sktriplet import TripletEmbedder, load, save

keras = pytest.importorskip("keras")


class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.out = keras.layers.Dense(8)

    def call(self, inputs):
        return self.out(self.hidden(inputs))


def test_sequential_without_an_input_is_accepted(digits, quick):
    X, y = digits
    encoder = keras.Sequential(
        [keras.layers.Dense(16, activation="gelu"), keras.layers.Dense(8)]
    )
    emb = TripletEmbedder(encoder=encoder, **quick).fit(X, y)
    assert emb.transform(X).shape == (len(X), 8)


def test_a_subclassed_model_built_by_a_callable_is_accepted(digits, quick):
    X, y = digits
    emb = TripletEmbedder(encoder=Subclassed, **quick).fit(X, y)
    assert emb.transform(X).shape == (len(X), 8)


def test_a_subclassed_model_instance_is_refused_with_what_to_do(digits, quick):
    X, y = digits
    msg = "A subclassed keras.Model cannot be copied: pass a callable that builds"
    with pytest.raises(ValueError, match=re.escape(msg)):
        TripletEmbedder(encoder=Subclassed(), **quick).fit(X, y)


def test_model_saved_with_device_gpu_transforms_on_a_machine_without_one(
    digits, tmp_path, quick
):
    """A model trained on a GPU is saved with device="gpu"; a CPU-only machine
    must still embed with it (the image path goes through Keras)."""
    from sktriplet.keras.devices import gpu_count

    if gpu_count():
        pytest.skip("this machine has a GPU")
    X, y = digits
    images = X.reshape(-1, 8, 8, 1)
    emb = TripletEmbedder(**quick).fit(images, y)
    save(emb, tmp_path / "cpu.sktriplet")
    # The file a GPU machine writes: the same, with device="gpu" in its metadata.
    with (
        zipfile.ZipFile(tmp_path / "cpu.sktriplet") as src,
        zipfile.ZipFile(tmp_path / "gpu.sktriplet", "w") as dst,
    ):
        for name in src.namelist():
            data = src.read(name)
            if name == "metadata.json":
                data = data.replace(b'"device": "cpu"', b'"device": "gpu"')
            dst.writestr(name, data)
    restored = load(tmp_path / "gpu.sktriplet")
    assert restored.device == "gpu"
    np.testing.assert_array_equal(restored.transform(images), emb.transform(images))
