"""
===========================================
Multi-label data: samples with several tags
===========================================

A sample can carry several labels at once (a photo tagged "beach" and
"sunset", a document in several topics).  scikit-learn writes such a target as
a binary indicator matrix, one column per label, as
:class:`~sklearn.preprocessing.MultiLabelBinarizer` gives and
:class:`~sklearn.neighbors.KNeighborsClassifier` takes.
:class:`~sktriplet.TripletEmbedder` takes the same matrix: a positive shares at
least one label with its anchor, a negative shares none.  Its ``score`` is then
the multi-label MAP@R, where a retrieved sample is relevant when it shares a
label with the query.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_multilabel_classification
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from sktriplet import TripletEmbedder
from sktriplet.metrics import mean_average_precision_at_r

EPOCHS = int(os.environ.get("SKTRIPLET_EXAMPLE_EPOCHS", 200))

# Documents of 200 words drawn from about three of ten topics each.
X, Y = make_multilabel_classification(
    n_samples=2000,
    n_features=50,
    n_classes=10,
    n_labels=3,
    length=200,
    random_state=0,
)
X_train, X_test, Y_train, Y_test = train_test_split(
    X, Y, test_size=0.25, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
print(f"Y is {Y.shape[0]} x {Y.shape[1]}, {Y.sum(axis=1).mean():.1f} labels a row")

# %%
# Fit on the indicator matrix as it is, then compare a multi-label
# nearest-neighbour classifier and retrieval on the raw features and on the
# embedding.
emb = TripletEmbedder(epochs=EPOCHS, random_state=0).fit(X_train, Y_train)

for name, train, test in [
    ("raw features", X_train, X_test),
    ("embedding", emb.transform(X_train), emb.transform(X_test)),
]:
    knn = KNeighborsClassifier().fit(train, Y_train)
    f1 = f1_score(Y_test, knn.predict(test), average="micro")
    print(
        f"{name:>12}: 5-NN micro-F1 {f1:.3f}, "
        f"MAP@R {mean_average_precision_at_r(test, Y_test):.3f}"
    )

# %%
# How many labels a sample shares with its nearest neighbour, on the raw
# features and on the embedding.
fig, ax = plt.subplots(figsize=(5, 3))
for name, E in [("raw", X_test), ("embedding", emb.transform(X_test))]:
    nearest = KNeighborsClassifier(n_neighbors=2).fit(E, Y_test)
    neighbour = nearest.kneighbors(E, return_distance=False)[:, 1]
    shared = np.sum(Y_test & Y_test[neighbour], axis=1)
    ax.hist(
        shared + (0.2 if name == "embedding" else 0),
        bins=np.arange(0, 7, 0.2),
        label=name,
        alpha=0.7,
    )
ax.set_xlabel("labels shared with the nearest neighbour")
ax.set_ylabel("held-out samples")
ax.legend()
plt.show()
