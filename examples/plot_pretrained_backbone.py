"""
===============================================
The Keras example's recipe: a ResNet50 backbone
===============================================

The Keras example this library grows from embeds photographs with ResNet50,
pretrained on ImageNet, whose layers are frozen up to ``conv5_block1_out``;
pooling and dense layers on top give the embedding.  The same network passed
as ``encoder`` trains inside :class:`~sktriplet.TripletEmbedder`, which copies
it (the model passed in is left as it is), mines the triplets from the labels
and trains only the layers left trainable.

This page runs offline: it uses ImageNet weights only when Keras already has
them on this machine (``~/.keras/models``), and otherwise builds ResNet50 with
``weights=None``, randomly initialised, so the figure below shows the recipe
running, not what pretrained weights give.  On your machine, call
``keras.applications.ResNet50(weights="imagenet", ...)`` once to fetch them.
As stand-in photographs, the 8x8 digits are upsampled to 32x32 RGB images,
ResNet50's smallest input.
"""

import os
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import zoom
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from sktriplet import TripletEmbedder

EPOCHS = int(os.environ.get("SKTRIPLET_EXAMPLE_EPOCHS", 10))
WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_HOME = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
cached = (KERAS_HOME / "models" / WEIGHTS_FILE).exists()
weights = "imagenet" if cached else None
print(f"ResNet50 weights: {weights or 'none (random initialisation)'}")


def resnet_encoder():
    """The Keras example's embedding network, on 32x32 RGB images."""
    base = keras.applications.ResNet50(
        weights=weights, input_shape=(32, 32, 3), include_top=False
    )
    trainable = False
    for layer in base.layers:  # frozen up to conv5_block1_out, as the example
        trainable = trainable or layer.name == "conv5_block1_out"
        layer.trainable = trainable
    inputs = keras.Input((32, 32, 3))
    # ResNet50's own scaling of 0-255 RGB input.
    h = base(keras.applications.resnet50.preprocess_input(inputs))
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dense(256, activation="relu")(h)
    h = keras.layers.BatchNormalization()(h)
    return keras.Model(inputs, keras.layers.Dense(64)(h), name="resnet_encoder")


# %%
# Digits as 32x32 RGB images in 0-255, 600 of them to keep the page quick.
X, y = load_digits(return_X_y=True)
X, y = X[:600], y[:600]
images = np.stack([zoom(d.reshape(8, 8) / 16.0, 4, order=1) for d in X])
images = np.repeat(255 * np.clip(images, 0, 1)[..., None], 3, axis=-1)
X_train, X_test, y_train, y_test = train_test_split(
    images.astype(np.float32), y, test_size=0.3, stratify=y, random_state=0
)

emb = TripletEmbedder(encoder=resnet_encoder, epochs=EPOCHS, random_state=0)
emb.fit(X_train, y_train)
knn = KNeighborsClassifier(n_neighbors=1).fit(emb.transform(X_train), y_train)
print(f"held-out 1-NN accuracy: {knn.score(emb.transform(X_test), y_test):.3f}")

# %%
# The training loss and the learning rate of each epoch.
fig, (loss_ax, rate_ax) = plt.subplots(1, 2, figsize=(8, 3))
loss_ax.plot(emb.history_["loss"])
loss_ax.set(xlabel="epoch", ylabel="triplet loss")
rate_ax.plot(emb.history_["learning_rate"])
rate_ax.set(xlabel="epoch", ylabel="learning rate")
fig.tight_layout()
plt.show()
