"""Keras models: the Siamese training model and the default encoders."""

from __future__ import annotations

import pickle
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from .losses import triplet_loss

__all__ = [
    "CUSTOM_OBJECTS",
    "L2Normalization",
    "SiameseModel",
    "build_conv_encoder",
    "build_mlp_encoder",
    "clone_architecture",
    "copy_encoder",
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
class L2Normalization(keras.layers.UnitNormalization):
    """Scales each row to unit L2 norm, like ``keras.layers.UnitNormalization``.

    The same output, computed in float32, with a gradient that stays finite at
    a row of zeros: ``UnitNormalization`` clips ``rsqrt`` of the squared norm,
    whose gradient at zero is ``0 * inf``, which XLA (and JAX) turn into NaN.
    Clipping the squared norm before ``rsqrt`` avoids the infinity.
    """

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        square_sum = ops.sum(ops.square(x), axis=self.axis, keepdims=True)
        unit = x * ops.rsqrt(ops.maximum(square_sum, 1e-24))
        return ops.cast(unit, self.compute_dtype)  # float32 in sktriplet's models


@keras.saving.register_keras_serializable(package="sktriplet")
class Standardization(keras.layers.Layer):
    """Subtracts each channel's mean and divides by its standard deviation.

    ``keras.layers.Normalization`` given ``mean`` and ``variance`` does the same,
    but holds them as constants of the traced step; here they are
    (non-trainable) weights, so that a model reused for other data, as each fold
    of a search is, takes the new ones with the weights instead of tracing its
    step again.  Computes in float32 whatever the dtype policy: the inputs are
    raw values (0-255 for ``uint8`` images).
    """

    def __init__(self, mean=None, variance=None, **kwargs):
        super().__init__(**kwargs)
        self._initial = (mean, variance)

    def build(self, input_shape):
        channels = (input_shape[-1],)
        self.mean = self.add_weight(
            shape=channels, initializer="zeros", trainable=False, name="mean"
        )
        self.variance = self.add_weight(
            shape=channels, initializer="ones", trainable=False, name="variance"
        )
        for weight, value in zip((self.mean, self.variance), self._initial):
            if value is not None:
                weight.assign(np.asarray(value, dtype="float32").reshape(channels))

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        return (x - self.mean) * ops.rsqrt(ops.maximum(self.variance, 1e-12))

    def get_config(self) -> dict:
        # The moments are weights, saved with the model's weights.
        return super().get_config()


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
        ``"all"``, which then skip sorting and train several times faster.  An
        anchor with more keeps those that follow it in the batch (see
        :func:`sktriplet.keras.triplet_loss`); ``K - 1`` for ``K`` rows per class
        leaves none out.
    """

    def __init__(
        self,
        encoder: keras.Model,
        margin: float = 0.5,
        mining: str = "semihard",
        distance: str = "squared_euclidean",
        seed: int | None = None,
        max_positives: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.mining = mining
        self.distance = distance
        self.seed = seed
        self.max_positives = max_positives
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.active_tracker = keras.metrics.Mean(name="active_fraction")
        # A variable, not a constant of the traced step: see ``reset``.
        self.margin_variable = keras.Variable(
            margin, dtype="float32", trainable=False, name="margin"
        )

    @property
    def margin(self) -> float:
        return float(keras.ops.convert_to_numpy(self.margin_variable))

    def reset(
        self,
        encoder,
        *,
        margin: float,
        seed: int,
        learning_rate: float,
        optimizer_state=None,
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
        self.seed = seed
        state = self.seed_generator.state
        seed_dtype = keras.backend.standardize_dtype(state.dtype)
        state.assign(np.array([seed, 0], dtype=seed_dtype))
        for variable in self.optimizer.variables:
            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
        self.set_optimizer_state(optimizer_state)
        self.optimizer.learning_rate = learning_rate

    def optimizer_state(self) -> list:
        """The optimizer's variables (step count, moments), as numpy arrays."""
        return [keras.ops.convert_to_numpy(v) for v in self.optimizer.variables]

    def set_optimizer_state(self, state) -> None:
        """Continue from ``state``, what :meth:`optimizer_state` returned for a
        model of the same architecture, as ``partial_fit`` does between calls.
        None, or a state of another optimizer, leaves the optimizer as it is."""
        if state is None:
            return
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        if len(state) == len(self.optimizer.variables):
            for variable, value in zip(self.optimizer.variables, state):
                variable.assign(value)

    def call(self, inputs, training=None):
        return self.encoder(inputs, training=training)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        y, y_pred = _gather_replicas(y, y_pred)
        loss, active_fraction = triplet_loss(
            y,
            y_pred,
            self.margin_variable,
            self.mining,
            self.distance,
            self.seed_generator,
            self.max_positives,
        )
        self.active_tracker.update_state(active_fraction)
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
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> SiameseModel:
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


def copy_state(source: keras.Model, target: keras.Model) -> None:
    """Give ``target``, of the same architecture, the weights of ``source`` and
    the states of its random layers (augmentation, dropout), so that it trains
    as ``source`` would: ``get_weights`` leaves those states out."""
    target.set_weights(source.get_weights())
    for mine, theirs in zip(_seed_states(target), _seed_states(source)):
        # A copy: JAX's training step takes over (deletes) the arrays it is given.
        mine.assign(keras.ops.convert_to_numpy(theirs.value))


def _seed_states(model: keras.Model) -> list:
    """The variables of ``model`` that are not weights: the states of its
    random layers, in layer order."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


# Every Keras class sktriplet defines, by its registered name: what a model file
# written by sktriplet may name, and what loading one must know.
CUSTOM_OBJECTS = {
    keras.saving.get_registered_name(cls): cls
    for cls in (L2Normalization, SiameseModel, Standardization)
}


def build_mlp_encoder(
    input_shape: Sequence[int],
    hidden_layer_sizes: Sequence[int],
    n_components: int,
    normalize: bool,
    seed: int,
    batch_norm: bool = True,
    synchronized: bool = False,
) -> keras.Model:
    """The default encoder: a ReLU multilayer perceptron, optionally L2-normalised.

    With ``batch_norm``, each hidden layer is ``Dense`` (no bias), then
    ``BatchNormalization``, then ReLU.  In inference, batch normalisation is an
    affine map, which :class:`sktriplet.inference.DenseForward` folds into the
    ``Dense`` layer before it.  Its running statistics use momentum 0.9, so that
    they settle within tens of steps: small data sets train few.
    ``synchronized`` computes the batch statistics over every replica of a
    ``tf.distribute`` strategy (TensorFlow only), so that training on several
    devices matches training on one.

    Each layer's initializer is seeded from ``seed``, so that the same seed builds
    the same weights in any thread or process, whatever the global Keras seed.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    h = inputs
    for i, width in enumerate(hidden_layer_sizes):
        h = keras.layers.Dense(
            width,
            activation=None if batch_norm else "relu",
            use_bias=not batch_norm,
            kernel_initializer=keras.initializers.HeUniform(seed=seed + i),
            name=f"hidden_{i}",
        )(h)
        if batch_norm:
            h = keras.layers.BatchNormalization(
                momentum=0.9, synchronized=synchronized, name=f"batch_norm_{i}"
            )(h)
            h = keras.layers.Activation("relu", name=f"relu_{i}")(h)
    h = keras.layers.Dense(
        n_components,
        kernel_initializer=keras.initializers.GlorotUniform(
            seed=seed + len(hidden_layer_sizes)
        ),
        name="embedding",
    )(h)
    if normalize:
        h = L2Normalization(name="l2_normalize")(h)
    return keras.Model(inputs, h, name="mlp_encoder")


def build_conv_encoder(
    input_shape: Sequence[int],
    n_components: int,
    normalize: bool,
    seed: int,
    mean: Sequence[float] | None = None,
    variance: Sequence[float] | None = None,
) -> keras.Model:
    """The default image encoder, sized to the images.

    - Standardises each channel with ``mean`` and ``variance`` (those of the
      training images), so that ``uint8`` images in 0-255 and floats in 0-1
      train alike, and ``transform`` applies the same scaling.
    - Shifts each training image by up to an eighth of its height and width
      (``RandomTranslation``, active in training only): no flip or rotation,
      which could change what an image means (a 6 turned over is a 9).
    - Stages of a 3x3 convolution, batch normalisation and ReLU, each followed
      by 2x2 max pooling while the side stays at least 8 pixels, the filters
      doubling from 16 to at most 128.
    - Flattens the last feature map (4 to 7 pixels a side) into the dense
      embedding, which keeps where each feature lies: a global average would
      pool that away.

    Small enough to train on a CPU; for large images pass a pretrained backbone
    (such as ``keras.applications.ResNet50``) as the estimator's ``encoder``.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    h = Standardization(mean, variance, dtype="float32", name="standardize")(inputs)
    h = keras.layers.RandomTranslation(
        0.125, 0.125, fill_mode="nearest", seed=seed, name="shift"
    )(h)
    side, filters, stage = min(input_shape[0], input_shape[1]), 16, 0
    while True:
        h = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=keras.initializers.HeUniform(seed=seed + 1 + stage),
            name=f"conv_{stage}",
        )(h)
        h = keras.layers.BatchNormalization(momentum=0.9, name=f"batch_norm_{stage}")(h)
        h = keras.layers.Activation("relu", name=f"relu_{stage}")(h)
        if side < 8:
            break
        h = keras.layers.MaxPooling2D(2, name=f"pool_{stage}")(h)
        side, filters, stage = side // 2, min(2 * filters, 128), stage + 1
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(
        n_components,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        name="embedding",
    )(h)
    if normalize:
        h = L2Normalization(name="l2_normalize")(h)
    return keras.Model(inputs, h, name="conv_encoder")


def user_encoder(
    given, input_shape, n_components: int | None, normalize: bool
) -> tuple[keras.Model, int]:
    """The network to train from a user's ``encoder`` (a Keras model, copied
    with its weights, or a callable that builds one), checked against the
    data's ``input_shape`` and ``n_components``, L2-normalised with
    ``normalize``; and its embedding size."""
    if isinstance(given, keras.Model):
        try:
            encoder = copy_encoder(given)
        except (ValueError, TypeError, NotImplementedError) as exc:
            name = type(given).__name__
            raise ValueError(
                f"encoder {name} cannot be copied by Keras ({exc}), and "
                "TripletEmbedder trains a copy of the model it is given, never "
                "the model itself. A subclassed keras.Model cannot be copied: "
                f"pass a callable that builds a new one, such as encoder=lambda: "
                f"{name}(...), or a functional or Sequential model."
            ) from None
    else:
        encoder = given()
        if not isinstance(encoder, keras.Model):
            raise TypeError(
                "encoder must be a keras.Model or a callable that returns one; "
                f"the callable returned {type(encoder).__name__}."
            )
    # A Sequential model without an Input, or a subclassed one, has no
    # input shape until called: call it on one of the data's shape.
    encoder = with_defined_input(encoder, input_shape)
    if not _shape_accepts(encoder.input_shape, (None, *input_shape)):
        raise ValueError(
            f"encoder expects inputs of shape {encoder.input_shape}, but X has "
            f"samples of shape {tuple(input_shape)}."
        )
    dim = encoder_output_dim(encoder)
    if dim is None:
        raise ValueError(
            "encoder must output one embedding vector per sample, of shape "
            f"(batch, n_components); its output shape is {encoder.output_shape}. "
            "End it with a pooling or Flatten layer and a Dense layer."
        )
    if n_components is not None and n_components != dim:
        raise ValueError(
            f"n_components={n_components} does not match the encoder's "
            f"output size {dim}; set n_components=None or {dim}."
        )
    if normalize:
        inputs = keras.Input(shape=encoder.input_shape[1:])
        outputs = L2Normalization()(encoder(inputs))
        encoder = keras.Model(inputs, outputs, name="normalized_encoder")
    return encoder, dim


def _shape_accepts(model_shape, data_shape) -> bool:
    """Whether data of ``data_shape`` fits a model input of ``model_shape``."""
    if isinstance(model_shape, list) or len(model_shape) != len(data_shape):
        return False
    return all(m is None or m == d for m, d in zip(model_shape[1:], data_shape[1:]))


def with_defined_input(encoder: keras.Model, input_shape) -> keras.Model:
    """``encoder``, or a functional model around it with an input of
    ``input_shape`` when it has no defined input (a ``Sequential`` without an
    ``Input``, a subclassed model)."""
    try:
        encoder.input_shape  # noqa: B018 - raises when there is none
        return encoder
    except (AttributeError, ValueError):
        inputs = keras.Input(shape=tuple(input_shape))
        return keras.Model(inputs, encoder(inputs), name=f"{encoder.name}_with_input")


def copy_encoder(encoder: keras.Model) -> keras.Model:
    """A new model with the architecture and current weights of ``encoder``.

    The user's model is never trained in place: training the copy leaves it as
    it was, pretrained weights included.
    """
    copy = clone_architecture(encoder)
    copy_state(encoder, copy)
    return copy


def clone_architecture(
    encoder: keras.Model, synchronized_batch_norm: bool = False
) -> keras.Model:
    """A new model with the layers of ``encoder`` and newly initialised weights.

    ``synchronized_batch_norm`` makes every ``BatchNormalization`` compute its
    batch statistics over all replicas of a ``tf.distribute`` strategy, so that
    training on several devices matches training on one.  Only the training twin
    is synchronised: the fitted encoder keeps plain layers, which every backend
    loads.
    """

    def clone(layer):
        return _clone_layer(layer, synchronized=synchronized_batch_norm)

    return keras.models.clone_model(encoder, clone_function=clone, recursive=True)


def _clone_layer(layer, dtype=None, synchronized=False):
    config = layer.get_config()
    # The unit normalisation stays float32, its output being the embedding, and
    # so does the standardisation of raw inputs.
    if dtype is not None and not isinstance(
        layer, (keras.layers.InputLayer, L2Normalization, Standardization)
    ):
        config["dtype"] = dtype
    if synchronized and isinstance(layer, keras.layers.BatchNormalization):
        config["synchronized"] = True
    # The model is the user's own object in memory, so a Lambda layer's function
    # is code the user already runs: Keras' safe mode, meant for files, is off.
    if isinstance(layer, keras.layers.Lambda):
        return type(layer).from_config(config, safe_mode=False)
    return type(layer).from_config(config)


def with_precision(encoder: keras.Model, precision: str) -> keras.Model:
    """``encoder`` computing in ``precision`` ("mixed_float16", "mixed_bfloat16").

    Every layer is rebuilt with that dtype policy (weights stay float32 and are
    copied over), but the unit normalisation, which computes the embedding in
    float32, and a last layer casts the embedding to float32.
    """
    if precision == "float32":
        return encoder
    twin = keras.models.clone_model(
        encoder,
        clone_function=lambda layer: _clone_layer(layer, dtype=precision),
        recursive=True,
    )
    copy_state(encoder, twin)
    outputs = keras.layers.Activation("linear", dtype="float32", name="to_float32")(
        twin.output
    )
    return keras.Model(twin.input, outputs, name=encoder.name)


def encoder_output_dim(encoder: keras.Model) -> int | None:
    """The embedding size of ``encoder``, or None when its output is not 2-D."""
    shape = encoder.output_shape
    if isinstance(shape, list) or len(shape) != 2:
        return None
    return shape[1]


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
