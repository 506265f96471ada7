"""The pool of compiled Siamese models: fitting again reuses a traced step.

Models are kept by architecture (:func:`_architecture_key`: the layers and what
the traced step depends on) and reset before each use, so that a grid search,
which fits hundreds of times, traces each training step once per process.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from contextlib import contextmanager, nullcontext

import keras

from . import devices
from .encoders import clone_architecture, copy_state
from .models import SiameseModel

__all__ = ["siamese_model_for"]

# Idle Siamese models, by architecture, ready to be reset and trained again.
_POOL: OrderedDict[str, list] = OrderedDict()
_POOL_LOCK = threading.Lock()
_POOL_KEYS = 8  # architectures kept; the least recently used is dropped


def _architecture_key(encoder, *step) -> str | None:
    """What a traced training step depends on: the layers, and ``step`` (mining,
    distance, positives per anchor, XLA, steps per call, device, unlabelled
    rows, weight decay: Keras traces it as a constant).

    Initializers and seeds are left out (``reset`` overwrites the weights they
    drew, and the states of the random layers).
    None when the encoder has no config to compare (a subclassed model).
    """

    def strip(value):
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if not k.endswith("initializer") and k != "seed"
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    try:
        config = strip(keras.saving.serialize_keras_object(encoder))
        return json.dumps([config, *step, keras.backend.backend()])
    except (NotImplementedError, TypeError, ValueError):
        return None


@contextmanager
def siamese_model_for(
    encoder, plan, optimizer_state=None, steps_per_execution: int = 1
):
    """A compiled SiameseModel that trains like a new one built around ``encoder``
    with the loss, optimizer and placement of ``plan`` (a
    :class:`~sktriplet._plan.FitPlan`).

    Models are pooled by architecture and reset before each use, so that fitting
    again, as a grid search does hundreds of times, reuses the traced training
    step instead of tracing a new one: each trace keeps a few MB in TensorFlow
    for the life of the process.  The model trains a twin of ``encoder``
    (``encoder`` is left as it is); copy the weights back from
    ``model.encoder`` when training ends.  Each thread gets its own model.

    Under a ``tf.distribute`` strategy, or with float16 loss scaling, a new
    model is built (inside the strategy's scope) and not pooled.
    ``optimizer_state`` (from :meth:`SiameseModel.optimizer_state`) continues
    an earlier run's optimizer instead of starting it afresh.

    The plan's ``xla`` and ``steps_per_execution`` go to ``model.compile``: on
    small models, compiling the step with XLA and running several steps per
    call save most of the time per step (see :func:`steps_per_call`;
    ``benchmarks/step_time.py`` measures it).
    """
    jit_compile = True if plan.xla else "auto"
    strategy = plan.strategy
    pooled = strategy is None and not plan.loss_scaling
    key = (
        _architecture_key(
            encoder,
            plan.mining,
            plan.distance,
            plan.max_positives,
            jit_compile,
            steps_per_execution,
            plan.device,
            plan.unlabeled_weight is not None,
            plan.weight_decay,
        )
        if pooled
        else None
    )
    model = None
    with _POOL_LOCK:
        if key is not None and _POOL.get(key):
            model = _POOL[key].pop()
            _POOL.move_to_end(key)
    if model is not None:
        model.reset(
            encoder,
            margin=plan.margin,
            seed=plan.seed,
            learning_rate=plan.learning_rate,
            optimizer_state=optimizer_state,
            unlabeled_weight=plan.unlabeled_weight,
        )
    else:
        with strategy.scope() if strategy is not None else nullcontext():
            twin = encoder if key is None and strategy is None else None
            if twin is None:
                # Under a Keras distribution the step sees the global batch
                # as one array: batch norm needs no synchronising there.
                twin = clone_architecture(
                    encoder,
                    synchronized_batch_norm=strategy is not None
                    and not devices.is_distribution(strategy),
                )
                copy_state(encoder, twin)
            model = SiameseModel(
                twin,
                margin=plan.margin,
                mining=plan.mining,
                distance=plan.distance,
                seed=plan.seed,
                max_positives=plan.max_positives,
                unlabeled_weight=plan.unlabeled_weight,
            )
            # Decoupled decay of every weight, batch normalisation's included.
            optimizer = keras.optimizers.Adam(
                plan.learning_rate, weight_decay=plan.weight_decay or None
            )
            if plan.loss_scaling:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            model.compile(
                optimizer=optimizer,
                jit_compile=jit_compile,
                steps_per_execution=steps_per_execution,
            )
            # Built now, its variables exist before the step is traced: else
            # TensorFlow traces the step twice, to let the first trace create
            # them (a first fit's largest cost after XLA's compile).
            model.optimizer.build(model.trainable_variables)
            model.set_optimizer_state(optimizer_state, plan.learning_rate)
    try:
        yield model
    finally:
        if key is not None:
            with _POOL_LOCK:
                _POOL.setdefault(key, []).append(model)
                _POOL.move_to_end(key)
                while len(_POOL) > _POOL_KEYS:
                    _POOL.popitem(last=False)
