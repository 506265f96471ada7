"""The Siamese training model, and what moves Keras models in and out of a process."""

from __future__ import annotations

import pickle
import threading
import weakref

import keras
import numpy as np
from keras import ops

from ..inference import CHUNK_ROWS, DenseForward, embed_in_chunks
from . import devices
from .encoders import copy_state, encoder_output_dim
from .layers import L2Normalization, RandomShift, Standardization
from .losses import triplet_hinge_totals
from .pairs import distance_matrix
from .tracing import own_traces

__all__ = [
    "CUSTOM_OBJECTS",
    "PickledModel",
    "SiameseModel",
    "as_numpy",
    "chunk_embedder",
    "embed",
    "embedder",
    "inference_function",
]


def _scale_per_replica(loss):
    """Divide ``loss`` by the replicas of a ``tf.distribute`` strategy.

    Each replica's gradients are summed across replicas, so each replica's loss is
    its share of the global mean.  Only the TensorFlow backend distributes this way.
    """
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss / replicas


def _gather_replicas(*tensors):
    """Under ``tf.distribute``, each tensor of every replica, concatenated.

    Each replica then mines triplets over the global batch, as one device would;
    with the loss divided per replica and the gradients summed across replicas,
    training matches a single device.  A no-op elsewhere.
    """
    if keras.backend.backend() != "tensorflow":
        return tensors
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tensors
    return tuple(context.all_gather(t, axis=0) for t in tensors)


@keras.saving.register_keras_serializable(package="sktriplet")
class SiameseModel(keras.Model):
    """An embedding network trained with the triplet loss on labelled batches.

    ``L(A, P, N) = max(d(f(A), f(P)) - d(f(A), f(N)) + margin, 0)``, averaged over
    the triplets that ``mining`` selects in each batch of ``(x, labels)``.  Unlike
    the Keras example it grows from, the anchor, positive and negative are not
    three inputs: they are mined among the rows of each batch, so one forward pass
    of the encoder serves every triplet of the batch.

    Train it with ``model.fit(x, labels)`` where each batch holds several rows per
    class (see :class:`sktriplet.sampling.ClassBalancedSampler`).  Besides
    ``loss``, it tracks ``active_fraction``: the share of selected triplets that
    still violate the margin.

    Parameters
    ----------
    encoder : keras.Model
        The embedding network ``f``.
    margin : float, default=0.5
    mining : {"random", "all", "hard", "semihard"}, default="semihard"
    distance : {"squared_euclidean", "euclidean", "cosine"}, default="squared_euclidean"
    seed : int, optional
        Seed of the randomness of ``mining="random"``.
    max_positives : int, optional
        The most positives each anchor is paired with by ``"semihard"`` and
        ``"all"``: an anchor with more keeps those that follow it in the batch (see
        :func:`sktriplet.keras.triplet_loss`); ``K - 1`` for ``K`` rows per class
        leaves none out.
    unlabeled_weight : float, optional
        For partly labelled data: the weight of the triplets whose anchor is
        one of two views of an unlabelled row (a label below -1, shared by the
        two views only; see :class:`sktriplet.sampling.PartlyLabelledSampler`)
        against those of labelled anchors.  None when every row is labelled.
    """

    def __init__(
        self,
        encoder: keras.Model,
        margin: float = 0.5,
        mining: str = "semihard",
        distance: str = "squared_euclidean",
        seed: int | None = None,
        max_positives: int | None = None,
        unlabeled_weight: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.mining = mining
        self.distance = distance
        self.seed = seed
        self.max_positives = max_positives
        # None: every row labelled.  Else the weight of the triplets whose
        # anchor is a view of an unlabelled row (labels below -1).
        self.unlabeled_weight_variable = None
        if unlabeled_weight is not None:
            self.unlabeled_weight_variable = keras.Variable(
                unlabeled_weight, dtype="float32", trainable=False, name="unlabeled"
            )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.active_tracker = keras.metrics.Mean(name="active_fraction")
        # A variable, not a constant of the traced step: see ``reset``.
        self.margin_variable = keras.Variable(
            margin, dtype="float32", trainable=False, name="margin"
        )

    @property
    def margin(self) -> float:
        return float(keras.ops.convert_to_numpy(self.margin_variable))

    @property
    def unlabeled_weight(self) -> float | None:
        weight = self.unlabeled_weight_variable
        return None if weight is None else float(keras.ops.convert_to_numpy(weight))

    def reset(
        self,
        encoder,
        *,
        margin: float,
        seed: int,
        learning_rate: float,
        optimizer_state=None,
        unlabeled_weight: float | None = None,
    ) -> None:
        """Make this model train exactly as a newly built one around ``encoder``
        (of the same architecture) would.

        Sets the encoder's weights and the states of its random layers (such as
        augmentation) from ``encoder``, the margin, the seed of the random mining
        and the learning rate, and zeroes the optimizer's state, or sets it to
        ``optimizer_state`` (see :meth:`set_optimizer_state`).  A model reused
        this way keeps its traced training step: refitting builds no new graph,
        which keeps repeated fits from growing the process's memory.
        """
        copy_state(encoder, self.encoder)
        self.margin_variable.assign(margin)
        if unlabeled_weight is not None:
            self.unlabeled_weight_variable.assign(unlabeled_weight)
        self.seed = seed
        state = self.seed_generator.state
        seed_dtype = keras.backend.standardize_dtype(state.dtype)
        state.assign(np.array([seed, 0], dtype=seed_dtype))
        for variable in self.optimizer.variables:
            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
        self.set_optimizer_state(optimizer_state, learning_rate)

    def optimizer_state(self) -> list:
        """The optimizer's variables (step count, moments), as numpy arrays."""
        return [keras.ops.convert_to_numpy(v) for v in self.optimizer.variables]

    def set_optimizer_state(self, state, learning_rate: float) -> None:
        """Continue from ``state``, what :meth:`optimizer_state` returned for a
        model of the same architecture, as ``partial_fit`` does between calls,
        at ``learning_rate``: the rate is the caller's, never the one a
        schedule had reached when the state was taken, so that a newly built
        model and a reused one train alike.  None, or a state of another
        optimizer (another number of variables), keeps the optimizer's state;
        a state whose arrays do not fit its variables is refused."""
        if state is not None:
            if not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)
            variables = self.optimizer.variables
            if len(state) == len(variables):
                shapes = [tuple(np.shape(v)) for v in state]
                expected = [tuple(v.shape) for v in variables]
                if shapes != expected:
                    raise ValueError(
                        "The optimizer state to continue from does not fit this "
                        f"encoder: its arrays have shapes {shapes}, the "
                        f"optimizer's variables {expected}."
                    )
                for variable, value in zip(variables, state):
                    variable.assign(value)
        self.optimizer.learning_rate = learning_rate

    def call(self, inputs, training=None):
        return self.encoder(inputs, training=training)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        y, y_pred = _gather_replicas(y, y_pred)
        weight = views = None
        if self.unlabeled_weight_variable is not None:
            views = ops.reshape(y, (-1,)) < -1  # see PartlyLabelledSampler
            # 1 for a labelled anchor, the variable's value for a view.
            weight = 1.0 + ops.cast(views, "float32") * (
                self.unlabeled_weight_variable - 1.0
            )
        hinge_sum, n_active, n_triplets = triplet_hinge_totals(
            y,
            distance_matrix(y_pred, self.distance),
            self.margin_variable,
            self.mining,
            self.seed_generator,
            self.max_positives,
            weight,
            views,
        )
        n_triplets = ops.maximum(n_triplets, 1.0)
        loss = hinge_sum / n_triplets  # triplet_loss
        self.active_tracker.update_state(n_active / n_triplets)
        for extra in self.losses:  # regularisers of the encoder
            loss = loss + ops.cast(extra, loss.dtype)
        return _scale_per_replica(loss)

    def get_config(self) -> dict:
        return {
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "margin": self.margin,
            "mining": self.mining,
            "distance": self.distance,
            "seed": self.seed,
            "max_positives": self.max_positives,
            "unlabeled_weight": self.unlabeled_weight,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> SiameseModel:
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


# Every Keras class sktriplet defines, by its registered name: what a model file
# written by sktriplet may name, and what loading one must know.
CUSTOM_OBJECTS = {
    keras.saving.get_registered_name(cls): cls
    for cls in (L2Normalization, RandomShift, SiameseModel, Standardization)
}


class PickledModel:
    """Pickles a Keras model so that unpickling imports this module first.

    A model with sktriplet's layers unpickles only once they are registered,
    which importing this module does; a bare Keras model in a pickle would be
    rebuilt before anything imported it.  Unpickled, it is the model itself.
    """

    def __init__(self, model) -> None:
        self.model = model

    def __reduce__(self):
        return _unpickle_model, (pickle.dumps(self.model),)


def _unpickle_model(data: bytes):
    return pickle.loads(data)  # noqa: S301 - the caller chose to unpickle


def as_numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def embed(encoder: keras.Model, X, device: str = "auto") -> np.ndarray:
    """The embeddings of ``X`` by ``encoder`` in inference mode, on ``device``,
    in chunks (see :func:`sktriplet.inference.embed_in_chunks`), through the
    compiled :func:`inference_function`.

    Not ``predict``, which costs tens of milliseconds per call in overhead, and
    which early stopping would pay every epoch.
    """
    return embed_in_chunks(
        X, chunk_embedder(encoder, device), encoder_output_dim(encoder), np.float32
    )


def embedder(encoder: keras.Model, device: str = "auto"):
    """How :class:`~sktriplet.fitted.FittedEncoder` embeds with ``encoder``: the
    function of one chunk of rows, and the dtype chunks are cast to (None:
    the rows' own) -- the numpy pass of a dense stack
    (:class:`~sktriplet.inference.DenseForward`), else :func:`chunk_embedder`."""
    forward = DenseForward.from_keras(encoder)
    if forward is not None:
        return forward, None
    return chunk_embedder(encoder, device), np.float32


def chunk_embedder(encoder: keras.Model, device: str = "auto"):
    """A function that embeds one float32 chunk of rows by ``encoder`` in
    inference mode, on ``device``, as numpy (what
    :func:`~sktriplet.inference.embed_in_chunks` calls chunk by chunk)."""
    with own_traces():
        forward = inference_function(encoder)

    def embed_chunk(chunk):
        with devices.placement(device, inference=True), own_traces():
            return as_numpy(forward(chunk))

    return embed_chunk


# The compiled inference function of each encoder, dropped with the encoder.
_INFERENCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INFERENCE_LOCK = threading.Lock()


def inference_function(encoder: keras.Model):
    """``encoder`` in inference mode as a compiled function of a float32 batch,
    built once per encoder and reused while it lives.

    An eager call of a Keras model spends milliseconds on bookkeeping, which
    dominates when a service embeds a few rows at a time; compiled, it does
    not (``docs/benchmarks.rst`` has the one-row timings).
    On TensorFlow it is a ``tf.function`` traced once for any number of rows.
    On JAX it is a ``jax.jit`` of the model's stateless call, given the
    weights at each call (so that it follows training); as JAX compiles once
    per shape, the rows are padded to the next power of two, which keeps the
    shapes few whatever the batch sizes.  Elsewhere it is the eager call.
    """
    with _INFERENCE_LOCK:
        forward = _INFERENCE.get(encoder)
    if forward is None:
        # The function holds the encoder weakly: the cache must not keep it.
        forward = _compile_inference(weakref.ref(encoder))
        with _INFERENCE_LOCK:
            forward = _INFERENCE.setdefault(encoder, forward)
    return forward


def _compile_inference(encoder_ref):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def call(x):
            return encoder_ref()(x, training=False)

        try:
            shape = tuple(encoder_ref().input_shape)
            spec = tf.TensorSpec((None, *shape[1:]), tf.float32)
        except (AttributeError, TypeError, ValueError):  # no single input shape
            return tf.function(call, reduce_retracing=True)
        return tf.function(call, input_signature=[spec])
    if backend == "jax":
        import jax

        @jax.jit
        def stateless(trainable, non_trainable, x):
            model = encoder_ref()
            return model.stateless_call(trainable, non_trainable, x, training=False)[0]

        def call(x):
            model, rows = encoder_ref(), len(x)
            padded = min(1 << max(rows - 1, 0).bit_length(), max(CHUNK_ROWS, rows))
            if padded != rows:
                padding = np.zeros((padded - rows, *x.shape[1:]), x.dtype)
                x = np.concatenate([x, padding])
            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            return stateless(trainable, non_trainable, x)[:rows]

        return call
    return lambda x: encoder_ref()(x, training=False)
