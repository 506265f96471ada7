"""ONNX export: a fitted TripletEmbedder as ONNX operators, alone or in a pipeline.

scikit-learn's way to serve a model without Python's ML stack is ONNX, through
``skl2onnx``, which converts scalers, neighbour models and most estimators and
lets a library register a converter for its own.  :func:`register` registers
sktriplet's, after which ``skl2onnx.to_onnx`` converts any pipeline that holds
a fitted :class:`~sktriplet.TripletEmbedder`; :func:`to_onnx` converts the
embedder alone, and ``sktriplet export`` a saved model.

- A dense encoder (the default MLP, or a user's stack of ``Dense``,
  ``BatchNormalization`` and activation layers, as
  :class:`~sktriplet.inference.DenseForward` reads it) becomes ``MatMul``,
  ``Add`` and activation operators written from its fitted weights (batch
  normalisation folded in), then the L2 normalisation, in the input's float
  type (float32 or float64), as ``transform`` computes it.
- Any other encoder (the default convolutional network for images, a
  pretrained backbone) is converted by ``tf2onnx`` from the Keras model in
  inference mode, and its operators are spliced into the graph; it needs the
  TensorFlow backend.  ``transform`` embeds these in float32: a float64 input
  is cast on the way in and out, as there.

Needs the ``onnx`` extra (``pip install "sktriplet[onnx]"``): ``skl2onnx``,
``onnx``, and ``tf2onnx`` for the Keras path; ``onnxruntime`` runs the result.
Importing this module imports none of them.
"""

from __future__ import annotations

import os

import numpy as np

from ._files import writing

__all__ = ["export", "register", "to_onnx"]

ALIAS = "SktripletTripletEmbedder"
# tf2onnx writes operators of at most this opset; the nodes it writes keep
# their meaning in the later opsets skl2onnx targets.
TF2ONNX_MAX_OPSET = 18

_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "linear": None}


def _import_skl2onnx():
    try:
        import skl2onnx
    except ImportError:
        raise ImportError(
            "ONNX export needs skl2onnx and onnx: pip install 'sktriplet[onnx]'"
        ) from None
    return skl2onnx


def register() -> None:
    """Register the TripletEmbedder converter with ``skl2onnx``.

    Call it once before ``skl2onnx.to_onnx`` converts a model that holds a
    TripletEmbedder; calling it again changes nothing.

    >>> import numpy as np, skl2onnx
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sktriplet import TripletEmbedder, onnx
    >>> X = np.random.RandomState(0).normal(size=(40, 4)).astype(np.float32)
    >>> y = np.arange(40) % 2
    >>> pipe = make_pipeline(StandardScaler(), TripletEmbedder(epochs=1,
    ...     hidden_layer_sizes=(8,), n_components=3, random_state=0)).fit(X, y)
    >>> onnx.register()
    >>> model = skl2onnx.to_onnx(pipe, X[:1])
    >>> [output.name for output in model.graph.output]
    ['variable']
    """
    skl2onnx = _import_skl2onnx()
    from .estimator import TripletEmbedder

    skl2onnx.update_registered_converter(
        TripletEmbedder, ALIAS, _shape_calculator, _converter
    )


def to_onnx(estimator, *, dtype=np.float32, target_opset: int | None = None):
    """The fitted TripletEmbedder ``estimator`` alone as an ONNX model.

    Its input ``X`` takes samples of the shape seen in ``fit`` (``dtype``
    float32 or float64); its output ``embedding``, the rows of ``transform``.
    Raises a ``ValueError`` naming what cannot be converted.
    """
    from sklearn.utils.validation import check_is_fitted

    skl2onnx = _import_skl2onnx()
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    check_is_fitted(estimator)
    kind = {
        np.dtype(np.float32): FloatTensorType,
        np.dtype(np.float64): DoubleTensorType,
    }
    if np.dtype(dtype) not in kind:
        raise ValueError(f"dtype must be float32 or float64; got {dtype!r}.")
    register()
    shape = [None, *estimator._sample_shape]
    try:
        model = skl2onnx.to_onnx(
            estimator,
            initial_types=[("X", kind[np.dtype(dtype)](shape))],
            final_types=[("embedding", kind[np.dtype(dtype)]([None, None]))],
            target_opset=target_opset,
        )
    except RuntimeError as exc:  # skl2onnx's own, for a graph it cannot assemble
        raise ValueError(
            "Cannot convert this encoder to ONNX: skl2onnx could not assemble "
            f"the graph tf2onnx wrote for it ({_first_line(exc, 100)})."
        ) from None
    _check(model)
    return model


def export(estimator, path: str | os.PathLike, **kwargs) -> None:
    """Write :func:`to_onnx` of ``estimator`` to ``path``, replacing the file
    only once it is complete (see :func:`sktriplet.save`).

    Before anything is written, the model passes the ONNX checker and, where
    onnxruntime is installed, embeds one row as ``transform`` does (within
    1e-4); a ``ValueError`` says what failed, and the file is not written.
    """
    model = to_onnx(estimator, **kwargs)
    data = model.SerializeToString()
    _check_runs_as_transform(estimator, data, kwargs.get("dtype", np.float32))
    with writing(path) as f:
        f.write(data)


def _first_line(exc: Exception, most: int) -> str:
    text = f"{type(exc).__name__}: {str(exc).strip()}".splitlines()[0]
    return text if len(text) <= most else text[: most - 3] + "..."


def _check(model) -> None:
    """The ONNX checker's verdict on ``model``, as the documented ValueError."""
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ValueError(
            "Cannot convert this encoder to ONNX: the converted model fails the "
            f"ONNX checker ({_first_line(exc, 160)})."
        ) from None


def _check_runs_as_transform(estimator, data: bytes, dtype) -> None:
    """One row (a fixed draw of the fitted sample shape) through onnxruntime,
    held to ``transform``'s embedding; skipped without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return
    row = np.random.RandomState(0).normal(size=(1, *estimator._sample_shape))
    row = row.astype(dtype)
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: row})[0]
    except Exception as exc:  # onnxruntime raises its own types
        raise ValueError(
            "Cannot convert this encoder to ONNX: onnxruntime refuses the "
            f"converted model ({_first_line(exc, 160)})."
        ) from None
    expected = estimator.transform(row)
    if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-4):
        raise ValueError(
            "Cannot convert this encoder to ONNX: the converted model embeds a "
            "row differently from transform (largest difference "
            f"{float(np.max(np.abs(got - expected))):.3g})."
        )


def _shape_calculator(operator) -> None:
    estimator = operator.raw_operator
    rows = operator.inputs[0].get_first_dimension()
    kind = type(operator.inputs[0].type)
    operator.outputs[0].type = kind([rows, int(estimator.n_components_)])


def _converter(scope, operator, container) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    estimator = operator.raw_operator
    x, out = operator.inputs[0].full_name, operator.outputs[0].full_name
    dtype = (
        np.float64
        if isinstance(operator.inputs[0].type, DoubleTensorType)
        else np.float32
    )
    graph = _Graph(scope, container, dtype)
    forward = estimator._encoder.forward
    if forward is not None:
        h = x
        for kernel, bias, activation in forward.layers:
            h = graph.node("MatMul", h, graph.constant(kernel))
            if bias is not None:
                h = graph.node("Add", h, graph.constant(bias))
            if _ACTIVATIONS[activation] is not None:
                h = graph.node(_ACTIVATIONS[activation], h)
        if forward.start is not None:
            kernel, bias = forward.start
            start = graph.node("MatMul", x, graph.constant(kernel))
            start = graph.node("Add", start, graph.constant(bias))
            h = graph.node("Add", h, start)
        if forward.normalize:
            h = _l2_normalize(graph, h, forward.layers[-1][0].shape[1])
        graph.node("Identity", h, output=out)
        return
    _splice_keras(graph, estimator, x, out)


def _l2_normalize(graph, h: str, width: int) -> str:
    """``h / sqrt(max(sum(h * h, axis=1), 1e-12))``, as DenseForward computes it."""
    squares = graph.node("Mul", h, h)
    # A row sum as a product with ones: the same in every opset.
    norms = graph.node("MatMul", squares, graph.constant(np.ones((width, 1))))
    norms = graph.node("Max", norms, graph.constant(np.array([1e-12])))
    return graph.node("Div", h, graph.node("Sqrt", norms))


class _Graph:
    """Adds nodes and constants of one dtype to a skl2onnx container."""

    def __init__(self, scope, container, dtype) -> None:
        from onnx import TensorProto

        self.scope, self.container, self.dtype = scope, container, np.dtype(dtype)
        self.proto_type = {
            np.dtype(np.float32): TensorProto.FLOAT,
            np.dtype(np.float64): TensorProto.DOUBLE,
        }[self.dtype]

    def name(self, hint: str) -> str:
        return self.scope.get_unique_variable_name(hint)

    def constant(self, value: np.ndarray) -> str:
        value = np.asarray(value, dtype=self.dtype)
        name = self.name("sktriplet_w")
        self.container.add_initializer(
            name, self.proto_type, list(value.shape), value.ravel()
        )
        return name

    def node(self, op_type: str, *inputs: str, output: str | None = None, **attrs):
        output = output or self.name(f"sktriplet_{op_type.lower()}")
        self.container.add_node(
            op_type,
            list(inputs),
            [output],
            name=self.scope.get_unique_operator_name(f"sktriplet_{op_type}"),
            **attrs,
        )
        return output


def _splice_keras(graph, estimator, x: str, out: str) -> None:
    """The encoder's own ONNX graph, by tf2onnx, between ``x`` and ``out``."""
    import keras
    from onnx import TensorProto, helper, numpy_helper

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "Converting this encoder (not a stack of Dense layers) to ONNX goes "
            "through tf2onnx, which needs the TensorFlow backend; this process "
            f"runs Keras on {keras.backend.backend()!r}. Set "
            "KERAS_BACKEND=tensorflow before importing Keras."
        )
    proto = _keras_to_onnx(
        estimator.encoder_, min(graph.container.target_opset, TF2ONNX_MAX_OPSET)
    )
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    model_rank = len(graph_input.type.tensor_type.shape.dim)
    if graph.dtype != np.float32:  # the encoder computes in float32
        x = graph.node("Cast", x, to=TensorProto.FLOAT)
    if model_rank == len(estimator._sample_shape) + 2:  # grayscale: add a channel
        axes = graph.name("sktriplet_axes")
        graph.container.add_initializer(axes, TensorProto.INT64, [1], [-1])
        x = graph.node("Unsqueeze", x, axes)
    names = {"": "", graph_input.name: x}
    final = graph.name("sktriplet_embedding") if graph.dtype != np.float32 else out
    names[graph_output.name] = final

    def renamed(name: str) -> str:
        if name not in names:
            names[name] = graph.name(
                "keras_" + name.replace(":", "_").replace("/", "_")
            )
        return names[name]

    for init in proto.graph.initializer:
        array = numpy_helper.to_array(init)
        tensor = numpy_helper.from_array(array, renamed(init.name))
        graph.container.add_initializer(
            tensor.name, tensor.data_type, list(array.shape), tensor
        )
    for node in proto.graph.node:
        attrs = {}
        for attribute in node.attribute:
            if attribute.type in (
                helper.AttributeProto.GRAPH,
                helper.AttributeProto.GRAPHS,
            ):
                raise ValueError(
                    f"Cannot convert this encoder to ONNX: tf2onnx wrote a "
                    f"{node.op_type} node with a subgraph, which sktriplet does not "
                    "splice into a pipeline."
                )
            attrs[attribute.name] = helper.get_attribute_value(attribute)
        graph.container.add_node(
            node.op_type,
            [renamed(i) for i in node.input],
            [renamed(o) for o in node.output],
            op_domain=node.domain,
            op_version=proto.opset_import[0].version,
            name=graph.scope.get_unique_operator_name("keras_" + node.op_type),
            **attrs,
        )
    if final != out:
        graph.node("Cast", final, output=out, to=graph.proto_type)


def _keras_to_onnx(model, opset: int):
    """``model`` in inference mode (augmentation off) as an ONNX model, by tf2onnx."""
    import onnx
    import tensorflow as tf

    try:
        import tf2onnx
    except ImportError:
        raise ImportError(
            "Converting an encoder that is not a stack of Dense layers to ONNX "
            "needs tf2onnx: pip install 'sktriplet[onnx]'"
        ) from None
    spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="x"),)
    call = tf.function(lambda x: model(x, training=False), input_signature=spec)
    try:
        proto, _ = tf2onnx.convert.from_function(
            call, input_signature=spec, opset=opset
        )
    except Exception as exc:  # tf2onnx raises many types for an op it lacks
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(
            f"tf2onnx could not convert this encoder to ONNX ({type(exc).__name__}: "
            f"{first})."
        ) from None
    # tf2onnx logs a TensorFlow op it cannot convert and keeps it in the graph
    # under its TensorFlow name, which no ONNX runtime runs.
    unknown = sorted(
        {
            node.op_type
            for node in proto.graph.node
            if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type)
        }
    )
    if unknown:
        raise ValueError(
            "Cannot convert this encoder to ONNX: tf2onnx has no ONNX operator "
            f"for TensorFlow's {', '.join(unknown)} (used by one of its layers or "
            "activations, such as gelu's Erfc); use layers that tf2onnx converts."
        )
    return proto
