"""
=====================================================
Partly labelled data: a few labels, many more samples
=====================================================

Labels are often scarce: a few hundred labelled samples among thousands.  Mark
the unlabelled ones with ``-1`` in ``y``, as :mod:`sklearn.semi_supervised`
does, and :class:`~sktriplet.TripletEmbedder` trains on both: the labelled
samples through the triplet loss, the unlabelled ones through a
self-supervised term (two noisy copies of a sample are each other's positive),
weighted by ``unlabeled_weight``.  Then comes a round of self-training
(``pseudo_label_rounds=1``): the unlabelled samples that the embedding places
confidently in one class take that class as a pseudo-label, and the encoder is
trained again.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from sktriplet import TripletEmbedder
from sktriplet.metrics import mean_average_precision_at_r

EPOCHS = int(os.environ.get("SKTRIPLET_EXAMPLE_EPOCHS", 200))

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# Keep 10% of the training labels; the rest become -1.
labelled, _ = train_test_split(
    np.arange(len(y_train)), train_size=0.1, stratify=y_train, random_state=0
)
y_partial = np.full(len(y_train), -1)
y_partial[labelled] = y_train[labelled]
print(f"{len(labelled)} labelled samples, {np.sum(y_partial == -1)} unlabelled")

# %%
# Train on the labelled samples alone, then on all of them without and with
# self-training, and compare a 1-NN classifier (its reference set: the
# labelled samples) and MAP@R on the held-out samples.
fits = {
    "labelled only": TripletEmbedder(epochs=EPOCHS, random_state=0).fit(
        X_train[labelled], y_train[labelled]
    ),
    "-1 rows, no pseudo-labels": TripletEmbedder(
        epochs=EPOCHS, pseudo_label_rounds=0, random_state=0
    ).fit(X_train, y_partial),
    "-1 rows, one round": TripletEmbedder(epochs=EPOCHS, random_state=0).fit(
        X_train, y_partial
    ),
}
for name, emb in fits.items():
    knn = KNeighborsClassifier(n_neighbors=1)
    knn.fit(emb.transform(X_train[labelled]), y_train[labelled])
    E = emb.transform(X_test)
    print(
        f"{name:>25}: 1-NN accuracy {knn.score(E, y_test):.3f}, "
        f"MAP@R {mean_average_precision_at_r(E, y_test):.3f}"
    )

# %%
# The training history (of the last round, for self-training): the loss counts
# the labelled triplets with weight 1 and the self-supervised ones with
# ``unlabeled_weight``.
fig, ax = plt.subplots(figsize=(5, 3))
for name, emb in fits.items():
    ax.plot(emb.history_["loss"], label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.legend()
plt.show()
