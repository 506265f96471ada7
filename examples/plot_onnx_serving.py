"""
=====================================
Serving a fitted pipeline with ONNX
=====================================

A pipeline that scales, embeds and classifies can be served without Python's
ML stack: ``skl2onnx`` converts it to ONNX once :func:`sktriplet.onnx.register`
has taught it the :class:`~sktriplet.TripletEmbedder`, and ``onnxruntime`` (or
any ONNX runtime) runs it.  Here we fit on the digits, convert, and compare the
runtime's labels and embeddings with scikit-learn's on the held-out split.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime as ort
import skl2onnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sktriplet.onnx
from sktriplet import TripletEmbedder

EPOCHS = int(os.environ.get("SKTRIPLET_EXAMPLE_EPOCHS", 50))

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
pipe = make_pipeline(
    StandardScaler(),
    TripletEmbedder(epochs=EPOCHS, random_state=0),
    KNeighborsClassifier(n_neighbors=3),
).fit(X_train, y_train)

# %%
# Convert the whole pipeline, and run it in onnxruntime
sktriplet.onnx.register()
model = skl2onnx.to_onnx(pipe, X_train[:1].astype(np.float32))
session = ort.InferenceSession(model.SerializeToString())
labels = session.run(None, {"X": X_test.astype(np.float32)})[0]
print(f"ONNX accuracy {np.mean(labels == y_test):.3f}")
print(f"same labels as the pipeline: {np.mean(labels == pipe.predict(X_test)):.3f}")

# %%
# The embedder alone: input X, output embedding
scaled = pipe[0].transform(X_test).astype(np.float32)
embedder = ort.InferenceSession(sktriplet.onnx.to_onnx(pipe[1]).SerializeToString())
onnx_embedding = embedder.run(None, {"X": scaled})[0]
gap = np.abs(onnx_embedding - pipe[1].transform(scaled))
print(f"largest gap between onnxruntime and transform: {gap.max():.1e}")

fig, ax = plt.subplots(figsize=(5, 3))
ax.hist(gap.ravel(), bins=40)
ax.set_xlabel("|onnxruntime - transform| per coordinate")
ax.set_ylabel("count")
fig.tight_layout()
plt.show()
