"""
==============================================
Mixed tabular data: a pandas ColumnTransformer
==============================================

``TripletEmbedder`` is an ordinary scikit-learn transformer: after a
:class:`~sklearn.compose.ColumnTransformer` that scales the numeric columns and
one-hot encodes the categorical ones, it learns an embedding that a
nearest-neighbour classifier uses.  With ``set_output(transform="pandas")`` the
embedding comes back as a DataFrame with named columns.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from sktriplet import TripletEmbedder

EPOCHS = int(os.environ.get("SKTRIPLET_EXAMPLE_EPOCHS", 40))

# A small synthetic customer table: the segment depends on income, age and region.
rng = np.random.RandomState(0)
n = 1200
df = pd.DataFrame(
    {
        "income": rng.lognormal(10, 0.5, n),
        "age": rng.randint(18, 80, n),
        "visits": rng.poisson(3, n),
        "region": rng.choice(["north", "south", "east", "west"], n),
    }
)
score = np.log(df["income"]) / 2 + df["age"] / 40 + (df["region"] == "north")
segment = pd.cut(score, 4, labels=["bronze", "silver", "gold", "platinum"])

X_train, X_test, y_train, y_test = train_test_split(
    df, segment.astype(str), test_size=0.3, random_state=0, stratify=segment
)
columns = ColumnTransformer(
    [
        ("numeric", StandardScaler(), ["income", "age", "visits"]),
        ("region", OneHotEncoder(sparse_output=False), ["region"]),
    ]
)
embedder = TripletEmbedder(n_components=8, epochs=EPOCHS, random_state=0)
pipe = make_pipeline(columns, embedder, KNeighborsClassifier(n_neighbors=5))
pipe.fit(X_train, y_train)
print(f"held-out accuracy: {pipe.score(X_test, y_test):.3f}")

# %%
# The embedding step alone, with pandas output.
embed = make_pipeline(columns, embedder).set_output(transform="pandas")
E = embed.transform(X_test)
print(E.head())

fig, ax = plt.subplots(figsize=(5, 4))
for name in ["bronze", "silver", "gold", "platinum"]:
    rows = (y_test == name).to_numpy()
    ax.scatter(E.iloc[rows, 0], E.iloc[rows, 1], s=8, label=name)
ax.set_xlabel(E.columns[0])
ax.set_ylabel(E.columns[1])
ax.legend(title="segment")
fig.tight_layout()
plt.show()
