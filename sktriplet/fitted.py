"""The fitted encoder: what ``fit`` brings back from Keras, and all done with it after.

:class:`FittedEncoder` holds the trained Keras model, the size of its
embedding and the optimizer's state at the end of training.  Everything that
embeds after training goes through :meth:`FittedEncoder.embed`: ``transform``,
the self-training rounds, early stopping's scoring and the collapse check.
A dense stack (the default MLP, or a user's ``Dense`` /
``BatchNormalization`` / activation layers) embeds through its numpy forward
pass (:class:`~sktriplet.inference.DenseForward`), any other encoder through
its compiled Keras function; both in chunks.

This module imports Keras only when an encoder that is not a dense stack
embeds, and when one is pickled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .inference import DenseForward, embed_in_chunks

__all__ = ["FittedEncoder"]


class FittedEncoder:
    """A trained encoder.

    Parameters
    ----------
    model : keras.Model
        The encoder: samples in, embeddings of ``n_components`` out.
    n_components : int
        The size of the embedding.
    optimizer_state : list of ndarray or None
        Adam's step count and moments at the end of training, which
        ``partial_fit`` continues; None to continue with a new optimizer.
    """

    def __init__(
        self, model: Any, n_components: int, optimizer_state: list | None = None
    ) -> None:
        self.model = model
        self.n_components = int(n_components)
        self.optimizer_state = optimizer_state
        # None when the model is not a stack of dense layers.
        self.forward = DenseForward.from_keras(model)

    @classmethod
    def of(cls, result) -> FittedEncoder:
        """The encoder a training run trained (a
        :class:`~sktriplet.keras.training.TrainingResult`)."""
        return cls(result.model, result.n_components, result.optimizer_state)

    def embed(self, X, device: str = "auto") -> np.ndarray:
        """The embeddings of the rows of ``X`` (float64 for float64 ``X``,
        else float32), a chunk at a time: a dense stack on the CPU in numpy,
        other encoders through Keras on ``device``."""
        embed_chunk, chunk_dtype = self.forward, None
        if embed_chunk is None:
            from .keras.models import chunk_embedder

            embed_chunk, chunk_dtype = chunk_embedder(self.model, device), np.float32
        return embed_in_chunks(X, embed_chunk, self.n_components, chunk_dtype)

    def __getstate__(self) -> dict:
        # Unpickling must register sktriplet's Keras classes before the model
        # is rebuilt: see PickledModel.
        from .keras.models import PickledModel

        return {
            "model": PickledModel(self.model),
            "n_components": self.n_components,
            "optimizer_state": self.optimizer_state,
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        kind = "dense stack" if self.forward is not None else "Keras model"
        return f"FittedEncoder({kind}, n_components={self.n_components})"
