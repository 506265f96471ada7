"""The training run: Keras ``fit`` with sktriplet's watchdog, schedule, validation
and interrupts.

The estimator hands over a :class:`~sktriplet._plan.FitPlan`;
:func:`fit_encoder` builds the network it names (or copies a fitted one), takes a
compiled :class:`~sktriplet.keras.SiameseModel` around it from a pool, and
:func:`run_training` trains, stops on a non-finite loss, lowers the learning
rate and then stops when the training loss stops improving (:class:`Plateau`),
stops early when the validation MAP@R stops improving, restores the best
weights, turns Ctrl-C into a clean stop, and returns what happened as plain
data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import keras
import numpy as np

from .._warnings import user_stacklevel
from ..inference import embed_in_chunks
from . import devices
from .callbacks import (
    ADAPTIVE_CUTS,
    CosineDecay,
    Plateau,
    _ValidationMonitor,
    _Watchdog,
)
from .encoders import build_encoder, copy_encoder
from .models import embedder
from .pipeline import input_of, steps_per_call
from .pool import siamese_model_for
from .tracing import own_traces

__all__ = ["TrainingResult", "fit_encoder", "run_training"]


@dataclass
class TrainingResult:
    """What a training run did, and what it trained, as plain data: the
    encoder (a ``keras.Model``), the size of its embedding and the optimizer's
    state at the end (what ``partial_fit`` continues)."""

    history: dict = field(default_factory=dict)
    best_epoch: int | None = None
    non_finite: tuple | None = None  # (epoch, batch, loss value) of the first bad loss
    interrupted: bool = False
    model: keras.Model | None = None
    n_components: int = 0
    optimizer_state: list | None = None
    # The embeddings of the plan's check_rows and label_rows (or None).
    check_embedding: np.ndarray | None = None
    label_embedding: np.ndarray | None = None


def fit_encoder(plan, X, y, fitted=None) -> TrainingResult:
    """Build the network of ``plan`` (a :class:`~sktriplet._plan.FitPlan`), or
    copy the ``fitted`` encoder that it continues (anything with its
    ``model``, ``n_components`` and ``optimizer_state``, such as a
    :class:`~sktriplet.fitted.FittedEncoder`), and train it on the rows of
    ``(X, y)`` (``y`` class codes) with the triplet loss.

    The returned result holds the trained model and the optimizer's state at
    the end beside what the run did.  Raises a ``FloatingPointError`` when the
    loss turned NaN or infinite.
    """
    if fitted is not None:  # partial_fit continues it
        encoder, n_components = copy_encoder(fitted.model), fitted.n_components
        optimizer_state = fitted.optimizer_state
    else:
        (encoder, n_components), optimizer_state = build_encoder(plan.encoder), None
    # Several steps per call fail under tf.distribute (TensorFlow asks for a
    # placeholder of the multi-step loop): one step per call there.
    most = 1 if plan.strategy is not None else None
    steps_per_epoch, steps_per_execution = steps_per_call(
        plan.batches.n_batches, most, whole_epochs=plan.epochs > 1
    )
    validation = None
    if plan.validation_rows is not None:
        rows = plan.validation_rows
        validation = (X[rows], y[rows], plan.metric, n_components)
    devices.check_global_batch(plan.strategy, plan.batches.batch_size)
    share = devices.process_share(plan.strategy)
    with (
        own_traces(),
        devices.placement(plan.device),
        devices.distributed(plan.strategy),
        siamese_model_for(encoder, plan, optimizer_state, steps_per_execution) as model,
    ):
        result = run_training(
            model,
            lambda k: plan.batches.blocks(X, y, plan.train_rows, k, share),
            steps_per_epoch=steps_per_epoch,
            epochs=plan.epochs,
            validation=validation,
            score_every=plan.score_every,
            patience=plan.patience,
            tol=plan.tol,
            plateau=_schedule(plan),
            callbacks=plan.callbacks,
            verbose=plan.verbose,
        )
        encoder.set_weights(model.encoder.get_weights())
        optimizer_state = model.optimizer_state()
    if result.non_finite is not None:
        epoch, batch, value = result.non_finite
        raise FloatingPointError(
            f"The triplet loss became {value} at epoch {epoch}, batch {batch}, "
            "and training stopped; the estimator keeps its earlier state. Lower "
            f"learning_rate (now {plan.learning_rate}), scale the features "
            "(for example with StandardScaler), or keep normalize=True."
        )
    result.model, result.n_components = encoder, n_components
    result.optimizer_state = optimizer_state
    result.check_embedding, result.label_embedding = _embeddings(
        encoder, n_components, X, plan
    )
    return result


def _embeddings(encoder, n_components: int, X, plan) -> list:
    """The embeddings by the trained ``encoder`` that ``plan`` asks for, as
    :class:`~sktriplet.fitted.FittedEncoder` would compute them: of its
    ``check_rows`` (on any device), and of its ``label_rows`` (on the plan's;
    of every row of X unless they are a share), each None when not asked."""
    wanted = [(plan.check_rows, "auto"), (plan.label_rows, plan.device)]
    if plan.label_rows is not None and not plan.label_share:
        wanted[1] = (slice(None), plan.device)
    embeddings = []
    for rows, device in wanted:
        if rows is None:
            embeddings.append(None)
            continue
        embed_chunk, chunk_dtype = embedder(encoder, device)
        embeddings.append(
            embed_in_chunks(X[rows], embed_chunk, n_components, chunk_dtype)
        )
    return embeddings


def _schedule(plan) -> keras.callbacks.Callback | None:
    """The plan's learning-rate schedule: the cosine decay over its epochs, or
    the adaptive one, on the validation score where there is one (early
    stopping then decides the stop), else on the training loss; None for a
    constant rate."""
    if plan.schedule == "cosine":
        return CosineDecay(plan.learning_rate, plan.epochs)
    if plan.schedule != "adaptive":
        return None
    if plan.validation_rows is not None:
        return Plateau(
            plan.tol,
            monitor="val_map_at_r",
            maximize=True,
            cuts=ADAPTIVE_CUTS,
            stops=False,
        )
    return Plateau(plan.tol, cuts=ADAPTIVE_CUTS)


def run_training(
    model,
    blocks,
    *,
    steps_per_epoch: int,
    epochs: int,
    validation=None,
    score_every: int = 1,
    patience: int | None = None,
    tol: float = 0.0,
    plateau: Plateau | None = None,
    callbacks=None,
    verbose: int = 0,
) -> TrainingResult:
    """Train ``model`` on ``batches``; see the module docstring.

    Parameters
    ----------
    model : SiameseModel, compiled
    blocks : callable
        ``blocks(k)`` returns a new iterator of blocks of ``k`` ``(x, labels)``
        batches (arrays with a first axis of ``k``), the same sequence of
        batches each time whatever ``k``, ``steps_per_epoch * epochs`` batches
        at least.
    validation : tuple (X_val, y_val, metric, n_components), optional
        Held-out data whose MAP@R is computed every ``score_every`` epochs, in
        the embedding of ``n_components``.
    patience : int, optional
        With ``validation``: epochs without improvement before stopping.
    tol : float
        With ``validation``: what counts as an improvement (see
        :class:`Progress`).
    plateau : Plateau, optional
        Lowers the learning rate, then stops, as the training loss settles.
    callbacks : list of keras.callbacks.Callback, optional
        Passed through to ``model.fit``.
    """
    result = TrainingResult()
    watchdog = _Watchdog(result)
    monitor = None
    if validation is not None:
        X_val, y_val, metric, width = validation
        monitor = _ValidationMonitor(
            model.encoder,
            width,
            X_val,
            y_val,
            metric,
            patience,
            tol,
            result,
            score_every,
        )
    history = keras.callbacks.History()
    # History comes before the user's callbacks, so that an epoch they interrupt
    # at its end is recorded like the weights it produced.
    # The plateau comes after the monitor, whose score it may watch.
    own = [c for c in (watchdog, monitor, plateau) if c is not None]
    all_callbacks = [*own, history, *(callbacks or [])]
    opened = []

    def tracked_blocks(k):
        opened.append(blocks(k))
        return opened[-1]

    try:
        model.fit(
            input_of(tracked_blocks, steps_per_epoch * epochs),
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            shuffle=False,  # the sampler already shuffles, with our own RNG
            callbacks=all_callbacks,
            verbose=verbose,
        )
    except KeyboardInterrupt:
        result.interrupted = True
        warnings.warn(
            "Training was interrupted; the estimator keeps the "
            + ("best weights so far." if monitor else "weights reached so far."),
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    finally:
        # Keras's input pipeline outlives fit and keeps the generators it was
        # given; closing them frees the sampler and row indices they hold.
        for iterator in opened:
            try:
                iterator.close()
            except ValueError:
                # Still running in the pipeline's prefetch thread, which a fit
                # that stopped early leaves fetching the next batch: the
                # pipeline drops it when it is torn down.
                pass
    if monitor is not None and result.non_finite is None:
        monitor.restore_best()
    result.history = {
        key: [float(v) for v in values] for key, values in history.history.items()
    }
    return result
