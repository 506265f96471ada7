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

import json
import math
import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import keras
import numpy as np

from .._warnings import user_stacklevel
from ..inference import DenseForward, embed_in_chunks
from ..metrics import mean_average_precision_at_r
from ..sampling import unblock
from . import devices
from .encoders import build_encoder, clone_architecture, copy_encoder, copy_state
from .models import SiameseModel, embed
from .tracing import own_traces

__all__ = [
    "Plateau",
    "Progress",
    "TrainingResult",
    "fit_encoder",
    "run_training",
    "siamese_model_for",
    "steps_per_call",
]


# Epochs of this many batches or more run 32 steps per call, shorter ones 8.
LONG_EPOCH = 64
# The adaptive schedule cuts the learning rate this many times at most
# (to 0.3 ** 3, about 1/37, of the initial rate) and stops at the next plateau
# (docs/stopping.txt measures the epochs below it).
ADAPTIVE_CUTS = 3

# Idle Siamese models, by architecture, ready to be reset and trained again.
_POOL: OrderedDict[str, list] = OrderedDict()
_POOL_LOCK = threading.Lock()
_POOL_KEYS = 8  # architectures kept; the least recently used is dropped
# The most bytes of training batches handed to TensorFlow's input pipeline at
# once (see _input_of); a few such blocks are in memory during a fit.
BLOCK_BYTES = 4 * 2**20


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


def steps_per_call(
    n_batches: int, most: int | None = None, whole_epochs: bool = True
) -> tuple[int, int]:
    """Steps per epoch and steps per call (Keras's ``steps_per_execution``).

    Running several steps per call saves Keras's per-step overhead, which
    dominates on small models: 8 steps a call, and 32 for epochs of
    ``LONG_EPOCH`` batches or more (``docs/scaling.txt`` compares the fits),
    at most ``most``.  Keras runs whole calls, so an
    epoch of at least one call's batches is rounded to the nearest whole
    number of calls (it changes by at most half a call), and a shorter one
    runs whole, in one call, with ``whole_epochs``, else one step per call.
    A traced step is reused by the fits whose value here is the same (the pool
    of :func:`siamese_model_for` is keyed by it): on data of 8 to
    ``LONG_EPOCH - 1`` batches, or of ``LONG_EPOCH`` or more, whatever its
    size, such as the folds of a cross-validation and the final refit; below,
    on data of the same number of batches.  A single epoch (``partial_fit``)
    saves little by running in one call, and its parts of different sizes
    share one step per call.

    >>> steps_per_call(3), steps_per_call(7), steps_per_call(13), steps_per_call(300)
    ((3, 3), (7, 7), (16, 8), (288, 32))
    >>> steps_per_call(3, whole_epochs=False), steps_per_call(300, most=8)
    ((3, 1), (304, 8))
    """
    per_call = 32 if n_batches >= LONG_EPOCH else 8
    if most is not None:
        per_call = min(per_call, most)
    if n_batches < per_call:
        per_call = n_batches if whole_epochs else 1
    return max(round(n_batches / per_call), 1) * per_call, per_call


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
    return result


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


class _Watchdog(keras.callbacks.Callback):
    """Stops training when the loss turns NaN or infinite; logs each epoch's
    learning rate.

    Keras reports after each call of ``steps_per_execution`` steps, so training
    stops at the end of the call in which the loss turned.
    """

    def __init__(self, result: TrainingResult) -> None:
        super().__init__()
        self._result = result
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:  # the rate this epoch trained with, for History
            logs["learning_rate"] = _learning_rate(self.model.optimizer)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._result.non_finite = (self._epoch, batch, float(loss))
            self.model.stop_training = True


class Progress:
    """Whether each new value of a monitored quantity improves on the best so
    far by more than ``tol`` times the gain so far (the best against the first
    value): the ``tol`` of scikit-learn's ``MLPClassifier``, made relative, so
    that one number serves a loss and a score of any scale, and a gain counts
    for less as training has gained more.  The first value, and any gain while
    nothing has been gained yet, is an improvement.

    >>> progress = Progress(0.1)
    >>> [progress.improves(v) for v in (0.5, 0.3, 0.29, 0.27, 0.27)]
    [True, True, False, True, False]
    >>> progress.best
    0.27
    """

    def __init__(self, tol: float, maximize: bool = False) -> None:
        self.tol = tol
        self.maximize = maximize
        self.first = self.best = None

    def improves(self, value: float) -> bool:
        if self.best is None:
            self.first = self.best = value
            return True
        sign = 1 if self.maximize else -1
        gain = sign * (value - self.best)
        if gain > 0 and gain > self.tol * sign * (self.best - self.first):
            self.best = value
            return True
        return False


class Plateau(keras.callbacks.Callback):
    """Lowers the learning rate, then stops, as the training loss stops improving.

    After each epoch, the epoch's ``monitor`` value (the mean loss; or a
    validation score, with ``maximize``) counts as an improvement as
    :class:`Progress` says, with ``tol``.  Every ``patience`` epochs
    without one, the learning rate is multiplied by ``factor``; with ``stops``,
    training stops after ``patience * (reductions + 1)`` epochs without one,
    or, with ``cuts``, once ``patience`` epochs pass without one at the lowest
    rate, reached after ``cuts`` cuts in all (``initial * factor ** cuts``):
    below it an epoch hardly moves the weights.
    The amount of training thus follows the data, without holding any out: an
    easy data set settles in tens of epochs, a hard one keeps improving for
    longer.  It is Keras's ``ReduceLROnPlateau`` (with its ``min_lr``) and
    ``EarlyStopping`` in one counter, as scikit-learn's ``MLPClassifier`` does
    with ``learning_rate="adaptive"`` and ``n_iter_no_change``.  Where early
    stopping on a validation score decides when to stop, ``stops=False``
    leaves it to that (the rate then stays at the lowest).
    """

    def __init__(
        self,
        tol: float,
        *,
        monitor: str = "loss",
        maximize: bool = False,
        patience: int = 5,
        factor: float = 0.3,
        reductions: int = 2,
        cuts: int | None = None,
        stops: bool = True,
    ) -> None:
        super().__init__()
        self.monitor = monitor
        self._progress = Progress(tol, maximize)
        self.patience = patience
        self.factor = factor
        self.reductions = reductions
        self.cuts = cuts
        self.stops = stops
        self._best_epoch = -1  # no value yet: epochs count from before the first
        self._cuts = 0  # rate cuts since the last improvement
        self._total = 0  # rate cuts in all

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value):
            # Not measured this epoch (a validation score every few epochs);
            # the watchdog handles a non-finite loss.
            return
        if self._progress.improves(value):
            self._best_epoch, self._cuts = epoch, 0
            return
        # Epochs since the last improvement, measured or not.
        waited = epoch - self._best_epoch
        due = waited // self.patience - self._cuts
        if self.cuts is not None:
            left = self.cuts - self._total
            if due > left and self.stops:  # a plateau at the lowest rate
                self.model.stop_training = True
                return
            due = min(due, left)
        if self.stops and waited >= self.patience * (self.reductions + 1):
            self.model.stop_training = True
        elif due > 0:
            self._cuts += due
            self._total += due
            optimizer = self.model.optimizer
            optimizer.learning_rate = _learning_rate(optimizer) * self.factor**due


class CosineDecay(keras.callbacks.Callback):
    """Sets each epoch's learning rate on a half cosine from ``initial`` to 0
    over ``epochs``, as ``keras.optimizers.schedules.CosineDecay`` does by step:
    ``initial * (1 + cos(pi * epoch / epochs)) / 2``, so that the last epoch
    still trains, at a small rate.
    """

    def __init__(self, initial: float, epochs: int) -> None:
        super().__init__()
        self.initial = initial
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        rate = self.initial * (1 + math.cos(math.pi * epoch / self.epochs)) / 2
        self.model.optimizer.learning_rate = rate


def _learning_rate(optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class _ValidationMonitor(keras.callbacks.Callback):
    """Scores the embedding of a held-out set every ``every`` epochs and after
    the last; keeps the best weights.

    Adds ``val_map_at_r`` to the epoch's logs (so that ``History`` records it;
    NaN for an epoch not scored), stops once ``patience`` epochs have passed
    without an improvement (as :class:`Progress` says, with ``tol``), and
    restores the weights of the
    best epoch when training ends, however it ends.
    """

    def __init__(
        self, encoder, width, X_val, y_val, metric, patience, tol, result, every=1
    ):
        super().__init__()
        self._encoder = encoder
        self._width = width
        self._X_val = X_val.astype(np.float32, copy=False)
        self._y_val = y_val
        self._metric = metric
        self._patience = patience
        self._progress = Progress(tol, maximize=True)
        self._result = result
        self._every = every
        self._best_weights = None
        self._best_epoch = -1

    def score(self) -> float:
        # The weights as they stand: a dense stack embeds in numpy.
        forward = DenseForward.from_keras(self._encoder)
        if forward is not None:
            embedding = embed_in_chunks(self._X_val, forward, self._width)
        else:
            embedding = embed(self._encoder, self._X_val, "auto")
        # Exact (at most 5000 held-out rows): a sampled estimate would move
        # the stopping decisions.
        return mean_average_precision_at_r(
            embedding, self._y_val, metric=self._metric, sample_size=None
        )

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self._every and not last:
            if logs is not None:
                logs["val_map_at_r"] = math.nan
            return
        score = self.score()
        if logs is not None:
            logs["val_map_at_r"] = score
        if self._progress.improves(score):
            self._best_weights = self._encoder.get_weights()
            self._result.best_epoch = self._best_epoch = epoch
        elif self._patience is not None and epoch - self._best_epoch >= self._patience:
            self.model.stop_training = True

    def restore_best(self) -> None:
        if self._best_weights is not None:
            self._encoder.set_weights(self._best_weights)


def _input_of(blocks, batches_needed: int):
    """What ``model.fit`` reads, one batch at a time, from ``blocks(k)`` (blocks
    of ``k`` batches; see :func:`sktriplet.sampling.noisy_blocks`).

    On TensorFlow, a ``tf.data`` pipeline.  It takes blocks of up to
    ``BLOCK_BYTES`` (and no more batches than the fit needs) and splits them
    into batches itself: every hand-over from Python costs the pipeline a call
    into Python, under the GIL, beside the training step on the same cores, so
    fewer and larger ones make the steps faster
    (``benchmarks/input_pipeline.py``).  The next block is prepared while the
    current one trains, and two batches are prefetched, with autotuning off:
    Keras's own pipeline around a generator prefetches with ``AUTOTUNE``, whose
    teardown at the end of ``fit`` stalls in some fresh processes.  Each pass
    over the dataset opens its own ``blocks`` and reads them with
    ``tf.numpy_function``, which is what ``Dataset.from_generator`` does, less
    the bookkeeping that made its epochs about a tenth slower
    (``docs/input_pipeline.txt``).  Under ``tf.distribute`` Keras would also
    re-read a plain generator's first batches, which would shift the batch
    sequence; a dataset built from the replayable ``blocks`` reads the same
    sequence however often it restarts.

    Elsewhere, the batches one by one.
    """
    if keras.backend.backend() != "tensorflow":
        # The backend's trainer reads a Python iterator of batches itself.
        return unblock(blocks(1))
    import tensorflow as tf

    x, y = next(blocks(1))
    per_block = int(min(max(BLOCK_BYTES // max(x.nbytes, 1), 1), batches_needed))
    dtypes = (tf.float32, tf.as_dtype(y.dtype))
    shapes = ((None, *x.shape[1:]), (None, *y.shape[1:]))
    passes = []  # the blocks of each pass over the dataset

    def open_pass(_):
        passes.append(blocks(per_block))
        return np.int64(len(passes) - 1)

    def read(index):
        return next(passes[int(index)])

    def block_of(index):
        block = tf.numpy_function(read, [index], dtypes, stateful=True)
        return tuple(map(tf.ensure_shape, block, shapes))

    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = (
        tf.data.Dataset.from_tensors(np.int64(0))
        .map(lambda z: tf.numpy_function(open_pass, [z], tf.int64, stateful=True))
        .flat_map(lambda i: tf.data.Dataset.from_tensors(i).repeat().map(block_of))
    )
    if per_block > 1:  # prepare the next block while this one trains
        dataset = dataset.prefetch(1)
    # Batches too large to share a block (images, say) are held as before:
    # two prefetched and the one being made.
    return dataset.unbatch().prefetch(2).with_options(options)


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
            _input_of(tracked_blocks, steps_per_epoch * epochs),
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
