"""Embedding networks: the default encoders, a user's encoder, and their copies.

Where the network that ``fit`` trains is built: :func:`build_encoder` chooses
the default multilayer perceptron for tabular data, the default convolutional
network for images, or wraps a user's model, and sets its precision.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras

from .._warnings import user_stacklevel
from .layers import L2Normalization, RandomShift, Standardization

__all__ = [
    "build_conv_encoder",
    "build_encoder",
    "build_mlp_encoder",
    "clone_architecture",
    "copy_encoder",
    "copy_state",
    "user_encoder",
    "with_precision",
]


def build_encoder(plan) -> tuple[keras.Model, int]:
    """The network that ``plan`` (an :class:`~sktriplet._plan.EncoderPlan`)
    names, in its precision, and its embedding size."""
    if plan.given is not None:
        encoder, n_components = user_encoder(
            plan.given, plan.input_shape, plan.n_components, plan.normalize
        )
    elif len(plan.input_shape) == 3:
        n_components = plan.n_components
        encoder = build_conv_encoder(
            plan.input_shape,
            n_components,
            plan.normalize,
            plan.seed,
            *plan.channel_moments,
        )
    else:
        n_components = plan.n_components
        encoder = build_mlp_encoder(
            plan.input_shape,
            plan.hidden_layer_sizes,
            n_components,
            plan.normalize,
            plan.seed,
            start=plan.start,
        )
    if plan.normalize and n_components == 1:
        # Valid (scikit-learn's own checks fit with n_components=1), but rarely
        # what the user meant.
        warnings.warn(
            "An embedding of size 1 with normalize=True maps every sample to "
            "-1 or +1; use n_components >= 2 or normalize=False.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return with_precision(encoder, plan.precision), n_components


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


def build_mlp_encoder(
    input_shape: Sequence[int],
    hidden_layer_sizes: Sequence[int],
    n_components: int,
    normalize: bool,
    seed: int,
    batch_norm: bool = True,
    synchronized: bool = False,
    start=None,
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

    ``start``, a ``(kernel, bias)`` pair (:mod:`sktriplet._geometry`), adds a
    linear layer ``start`` of those weights on the input to the MLP's output,
    whose last layer then starts at zero: the network starts as that linear
    map and learns a correction of it (without hidden layers, the encoder is
    that linear map).
    """
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    if start is not None:
        linear = keras.layers.Dense(n_components, name="start")
        h = linear(inputs)
        linear.set_weights(list(start))
        if hidden_layer_sizes:
            correction = _hidden_layers(
                inputs, hidden_layer_sizes, seed, batch_norm, synchronized
            )
            correction = keras.layers.Dense(
                n_components, kernel_initializer="zeros", name="embedding"
            )(correction)
            h = keras.layers.Add(name="start_plus_correction")([h, correction])
        if normalize:
            h = L2Normalization(name="l2_normalize")(h)
        return keras.Model(inputs, h, name="mlp_encoder")
    h = _hidden_layers(inputs, hidden_layer_sizes, seed, batch_norm, synchronized)
    h = _embedding_head(h, n_components, normalize, seed + len(hidden_layer_sizes))
    return keras.Model(inputs, h, name="mlp_encoder")


def _hidden_layers(inputs, hidden_layer_sizes, seed, batch_norm, synchronized):
    """The MLP's hidden layers on ``inputs``, the initializer of layer ``i``
    seeded with ``seed + i``."""
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
    return h


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
      (``RandomTranslation``, as :class:`~sktriplet.keras.layers.RandomShift`,
      which lets Keras compile the step on JAX; active in training only): no
      flip or rotation, which could change what an image means (a 6 turned
      over is a 9).
    - Stages of a 3x3 convolution and ReLU, each halving the side while it
      stays at least 8 pixels, the filters doubling (up to 128).  A stage
      whose input is 16 pixels a side or more halves it with a stride-2
      convolution, which computes a quarter of the positions of a large
      feature map; the others with 2x2 max pooling.
    - The large maps are where a stage costs most, so images of 16 pixels or
      more start at 8 filters; smaller images, two cheap stages, start at 32.
    - Only the last stage, on a map under 8 pixels a side, is
      batch-normalised; the others carry a bias (the standardised input and
      He initialisation keep the scale there).  Batch normalisation is a
      large share of a small network's step on a CPU, and on the larger maps
      it bought nothing (``docs/images.txt``).
    - Flattens the last feature map (4 to 7 pixels a side) into the dense
      embedding, which keeps where each feature lies: a global average would
      pool that away.

    Small enough to train on a CPU; for large images pass a pretrained backbone
    (such as ``keras.applications.ResNet50``) as the estimator's ``encoder``.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    h = Standardization(mean, variance, dtype="float32", name="standardize")(inputs)
    h = RandomShift(0.125, 0.125, fill_mode="nearest", seed=seed, name="shift")(h)
    side = min(input_shape[0], input_shape[1])
    filters, stage = (8 if side >= 16 else 32), 0
    while True:
        strided = side >= 16
        h = keras.layers.Conv2D(
            filters,
            3,
            strides=2 if strided else 1,
            padding="same",
            use_bias=strided or side >= 8,
            kernel_initializer=keras.initializers.HeUniform(seed=seed + 1 + stage),
            name=f"conv_{stage}",
        )(h)
        if not strided and side < 8:
            h = keras.layers.BatchNormalization(
                momentum=0.9, name=f"batch_norm_{stage}"
            )(h)
        h = keras.layers.Activation("relu", name=f"relu_{stage}")(h)
        if side < 8:
            break
        if not strided:
            h = keras.layers.MaxPooling2D(2, name=f"pool_{stage}")(h)
        side, filters, stage = side // 2, min(2 * filters, 128), stage + 1
    h = keras.layers.Flatten(name="flatten")(h)
    h = _embedding_head(h, n_components, normalize, seed)
    return keras.Model(inputs, h, name="conv_encoder")


def _embedding_head(h, n_components: int, normalize: bool, seed: int):
    """The last layers of the default encoders: the dense embedding, seeded,
    then the unit normalisation with ``normalize``."""
    h = keras.layers.Dense(
        n_components,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        name="embedding",
    )(h)
    return L2Normalization(name="l2_normalize")(h) if normalize else h


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
