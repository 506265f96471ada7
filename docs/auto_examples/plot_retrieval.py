"""
=======================================
Similarity search with NearestNeighbors
=======================================

An embedding is made for retrieval: index the embedded database once with
:class:`~sklearn.neighbors.NearestNeighbors`, then embed each query and look up
its neighbours.  Here the database is the training digits and the queries the
held-out ones; we measure precision at k, the share of the k retrieved images
that show the query's digit.
"""

import os

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from sktriplet import TripletEmbedder

EPOCHS = int(os.environ.get("SKTRIPLET_EXAMPLE_EPOCHS", 50))

X, y = load_digits(return_X_y=True)
X_db, X_query, y_db, y_query = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_db)
X_db, X_query = scaler.transform(X_db), scaler.transform(X_query)
emb = TripletEmbedder(epochs=EPOCHS, random_state=0).fit(X_db, y_db)

ks = [1, 5, 10, 20, 50]
fig, ax = plt.subplots(figsize=(5, 3.5))
for name, db, queries in [
    ("raw features", X_db, X_query),
    ("embedding", emb.transform(X_db), emb.transform(X_query)),
]:
    index = NearestNeighbors(n_neighbors=max(ks)).fit(db)
    _, found = index.kneighbors(queries)
    hits = y_db[found] == y_query[:, None]
    precision = [hits[:, :k].mean() for k in ks]
    print(name, " ".join(f"P@{k}={p:.3f}" for k, p in zip(ks, precision)))
    ax.plot(ks, precision, marker="o", label=name)
ax.set_xlabel("k retrieved")
ax.set_ylabel("precision at k")
ax.legend()
fig.tight_layout()
plt.show()
