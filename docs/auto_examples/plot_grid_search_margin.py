"""
============================================
Choosing the margin and mining with a search
============================================

``TripletEmbedder.score`` is MAP@R of leave-one-out retrieval: higher is better and
it does not depend on the margin, so :class:`~sklearn.model_selection.GridSearchCV`
can compare embeddings trained with different margins and mining strategies
like with like.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktriplet import TripletEmbedder

EPOCHS = int(os.environ.get("SKTRIPLET_EXAMPLE_EPOCHS", 30))

X, y = load_digits(return_X_y=True)
X, y = X[:900], y[:900]

pipe = make_pipeline(StandardScaler(), TripletEmbedder(epochs=EPOCHS, random_state=0))
margins = [0.05, 0.2, 0.5, 1.0]
search = GridSearchCV(
    pipe,
    {
        "tripletembedder__margin": margins,
        "tripletembedder__mining": ["semihard", "hard"],
    },
    cv=3,
)
search.fit(X, y)
print("best:", search.best_params_, f"MAP@R {search.best_score_:.3f}")

# %%
# Cross-validated MAP@R against the margin, one line per mining strategy.
results = search.cv_results_
fig, ax = plt.subplots(figsize=(5, 3.5))
for mining in ["semihard", "hard"]:
    rows = np.flatnonzero(results["param_tripletembedder__mining"] == mining)
    ax.errorbar(
        margins,
        results["mean_test_score"][rows],
        yerr=results["std_test_score"][rows],
        marker="o",
        capsize=3,
        label=mining,
    )
ax.set_xscale("log")
ax.set_xlabel("margin")
ax.set_ylabel("cross-validated MAP@R")
ax.legend(title="mining")
fig.tight_layout()
plt.show()
