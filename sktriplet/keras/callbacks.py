"""The callbacks of a training run: the loss watchdog, the learning-rate
schedules and early stopping on a validation score.

Keras has the pieces (``ReduceLROnPlateau``, ``EarlyStopping`` with
``restore_best_weights``, ``optimizers.schedules.CosineDecay``); these differ
where sktriplet needs it: :class:`Progress` counts an improvement relative to
the gain so far (one ``tol`` for a loss and a score of any scale), the
adaptive schedule is the plateau and the stop in one counter, the cosine decay
runs by epoch (so that ``partial_fit``'s epochs and a fit's agree), and the
monitor scores MAP@R of the embedding, which no Keras metric computes.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from ..inference import DenseForward, embed_in_chunks
from ..metrics import mean_average_precision_at_r
from .models import embed

__all__ = ["ADAPTIVE_CUTS", "CosineDecay", "Plateau", "Progress"]

# The adaptive schedule cuts the learning rate this many times at most
# (to 0.3 ** 3, about 1/37, of the initial rate) and stops at the next plateau
# (docs/stopping.txt measures the epochs below it).
ADAPTIVE_CUTS = 3


class _Watchdog(keras.callbacks.Callback):
    """Stops training when the loss turns NaN or infinite; logs each epoch's
    learning rate.

    Keras reports after each call of ``steps_per_execution`` steps, so training
    stops at the end of the call in which the loss turned.
    """

    def __init__(self, result) -> None:  # a TrainingResult
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
