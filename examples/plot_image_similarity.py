"""
=========================================
Image similarity, as in the Keras example
=========================================

The Keras example this library grows from learns image similarity with a Siamese
network and the triplet loss.  Here the 8x8 digit images that ship with
scikit-learn stand in for photographs: passed as an array of shape
``(n_samples, height, width, channels)``, they train the default small
convolutional encoder, and :meth:`~sktriplet.TripletEmbedder.similarity` gives the
example's cosine similarity between pairs of images.

To use a folder of your own images (one sub-folder per class), load it into
arrays first, for example with Keras::

    import keras, numpy as np
    data = keras.utils.image_dataset_from_directory(
        "my_images/", image_size=(64, 64), batch_size=None, shuffle=False
    )
    X = np.stack([image for image, _ in data]) / 255.0
    y = np.array([label for _, label in data])

and for larger images pass a stronger backbone as ``encoder``, such as
``keras.applications.ResNet50(include_top=False, weights="imagenet")`` followed
by pooling and a dense layer, as the Keras example does.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sktriplet import TripletEmbedder
from sktriplet.plotting import plot_neighbors

EPOCHS = int(os.environ.get("SKTRIPLET_EXAMPLE_EPOCHS", 30))

X, y = load_digits(return_X_y=True)
images = (X / 16.0).reshape(-1, 8, 8, 1)
X_train, X_test, y_train, y_test = train_test_split(
    images, y, test_size=0.3, stratify=y, random_state=0
)
emb = TripletEmbedder(epochs=EPOCHS, random_state=0).fit(X_train, y_train)

# %%
# Pairs of held-out images, ranked by similarity: same digits come first.
rng = np.random.RandomState(0)
left, right = rng.randint(0, len(X_test), (2, 200))
similarity = emb.similarity(X_test[left], X_test[right])
order = np.argsort(-similarity)
picked = np.concatenate([order[:5], order[-5:]])

fig, axes = plt.subplots(2, 10, figsize=(10, 2.6))
for col, pair in enumerate(picked):
    for row, side in enumerate((left, right)):
        axes[row, col].imshow(X_test[side[pair], :, :, 0], cmap="gray_r")
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[0, col].set_title(f"{similarity[pair]:.2f}", fontsize=9)
fig.suptitle("most similar pairs (left) and least similar pairs (right)")
fig.tight_layout()
plt.show()

same = y_test[left] == y_test[right]
print(f"mean similarity, same digit: {similarity[same].mean():.2f}")
print(f"mean similarity, other digit: {similarity[~same].mean():.2f}")

# %%
# Each query image with its nearest neighbours in the embedding; a neighbour of
# another digit is titled in red.
plot_neighbors(emb, X_test, queries=[0, 1, 2, 3], n_neighbors=6, labels=y_test)
plt.show()
