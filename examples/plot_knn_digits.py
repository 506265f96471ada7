"""
==================================================
k-nearest neighbours on the digits, raw vs learned
==================================================

A :class:`~sktriplet.TripletEmbedder` learns a 32-dimensional embedding of the
8x8 handwritten digits in which images of the same digit lie close together.
We compare a nearest-neighbour classifier and retrieval (MAP@R) on the raw pixels
with the same on the embedding, then look at the training history and at a 2-D
map of the embedding.
"""

import os

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from sktriplet import TripletEmbedder
from sktriplet.metrics import mean_average_precision_at_r
from sktriplet.plotting import plot_embedding, plot_history

EPOCHS = int(os.environ.get("SKTRIPLET_EXAMPLE_EPOCHS", 50))

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# Fit the embedding on the training part only.
emb = TripletEmbedder(epochs=EPOCHS, early_stopping=True, random_state=0)
emb.fit(X_train, y_train)

for name, train, test in [
    ("raw features", X_train, X_test),
    ("embedding", emb.transform(X_train), emb.transform(X_test)),
]:
    knn = KNeighborsClassifier(n_neighbors=1).fit(train, y_train)
    print(
        f"{name:>12}: 1-NN accuracy {knn.score(test, y_test):.3f}, "
        f"MAP@R {mean_average_precision_at_r(test, y_test):.3f}"
    )

# %%
# The history: the loss falls, fewer mined triplets violate the margin, and the
# validation MAP@R (held out inside ``fit`` by ``early_stopping``) rises.
plot_history(emb)
plt.show()

# %%
# A 2-D view of the held-out embedding, coloured by digit.
ax, points = plot_embedding(emb, X_test, y_test)
ax.legend(*points.legend_elements(), title="digit", fontsize=7, loc="best")
plt.show()
