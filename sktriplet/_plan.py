"""What ``fit`` hands to the Keras package: the network to build and how to train it.

:func:`plan_fit` turns the estimator's validated parameters and data into a
:class:`FitPlan`, plain data: the validation split, the network, the batches,
the mining and the schedule.  :func:`sktriplet.keras.training.fit_encoder`
builds the network and trains it from that plan alone.  This module never
imports Keras.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import _self_training
from ._checks import UNLABELLED
from ._geometry import (
    FEW_ROWS_PER_CLASS,
    channel_moments,
    noise_scale,
    principal_start,
    sample_inputs,
)
from ._warnings import user_stacklevel
from .holdout import validation_split
from .metrics import RETRIEVAL_METRIC
from .mining import positives_per_anchor
from .sampling import BatchPlan

__all__ = ["EncoderPlan", "FitPlan", "plan_fit"]

DEFAULT_N_COMPONENTS = 32
AUTO_BATCH_SIZE = 256
# Above this many samples, "auto" turns early stopping on (under the adaptive
# or constant schedule) and the schedule to a cosine decay.
AUTO_EARLY_STOPPING_SAMPLES = 10_000
# The "auto" schedule's cosine decay on large data runs COSINE_EPOCHS *
# sqrt(COSINE_ROWS_PER_CLASS / rows per class) epochs: an epoch shows each
# class more examples when classes are larger, and teaches more.  Fitted to
# three measurements (docs/scaling.txt): the many-class set (320 rows a class)
# needs about 128 epochs, the scaling data at 32000 rows (1600 a class) reach
# their quality in 60, and at 128000 rows (6400 a class) gain nothing from 45
# over 30.
COSINE_EPOCHS = 60
COSINE_ROWS_PER_CLASS = 1_600
MAX_VALIDATION_SAMPLES = 5_000
CHECK_ROWS = 1_000  # training rows the collapse check embeds
# Early stopping scores the default MLP's validation set every k epochs, k the
# validation rows squared over the training rows over this (MAP@R costs the
# square of the held-out rows; an epoch, the training rows): on this 2-core
# machine, scoring then takes at most about a tenth of the fit
# (benchmarks/scaling.py gives the share; docs/stopping.txt).
SCORING_RATIO = 60
# "auto" input noise of the default MLP: AUTO_INPUT_NOISE up to
# NOISE_ROWS_PER_CLASS rows a class, and AUTO_INPUT_NOISE *
# sqrt(NOISE_ROWS_PER_CLASS / rows per class) above: the more samples a class
# has, the less its training samples need spreading out.  Fitted on the scaling
# data (docs/scaling.txt): at 1600 rows a class no lower level helped, at 6400
# half the level did best.
AUTO_INPUT_NOISE = 0.5
NOISE_ROWS_PER_CLASS = 1_600
# Below FEW_ROWS_PER_CLASS, where the MLP starts from the raw geometry, "auto"
# is this level: at 0.5 the held-out 1-NN accuracy trailed raw features or NCA
# on the digits at 10 rows a class and the wine at 5, at 0.25 nowhere, at a
# cost in MAP@R at most sizes (docs/few_rows.txt).
FEW_ROWS_INPUT_NOISE = 0.25
# "auto" weight decay of the default MLP (Adam's, decoupled).  Measured on the
# scaling data from 2000 to 128000 rows, the digits and the many-class sets
# (docs/scaling.txt): 0.1 gained at every size; 0.3 gained more at 8000 rows
# and lost at 32000; sparing the batch normalisation's scale and shift lost.
AUTO_WEIGHT_DECAY = 0.1
_SEED_RANGE = np.iinfo(np.int32).max


@dataclass(frozen=True)
class EncoderPlan:
    """The network to build for samples of ``input_shape``.

    ``given`` is the user's ``encoder`` (a Keras model or a callable), or None
    for the default one: a multilayer perceptron of ``hidden_layer_sizes`` for
    vectors, a convolutional network for images, which standardises each channel
    with ``channel_moments`` (mean, variance).  ``start``, the ``(kernel,
    bias)`` of :func:`~sktriplet._geometry.principal_start`, makes the MLP
    start from the raw geometry (few rows a class); None otherwise.
    """

    given: Any
    input_shape: tuple
    n_components: int | None
    hidden_layer_sizes: tuple
    normalize: bool
    precision: str
    seed: int
    channel_moments: tuple[np.ndarray, np.ndarray] | None = None
    start: tuple[np.ndarray, np.ndarray] | None = None


@dataclass(frozen=True)
class FitPlan:
    """A training run, as plain data.

    ``encoder`` is the :class:`EncoderPlan` of the network to build, or None
    when the run continues a fitted encoder (``partial_fit``).  ``batches``
    says how the training batches of ``train_rows`` are drawn; an epoch is
    ``batches.n_batches`` of them.  ``validation_rows`` are the rows held out
    for early stopping (or None), scored with the retrieval ``metric`` every
    ``score_every`` epochs (and after the last).  ``schedule`` names the
    learning-rate schedule (see ``TripletEmbedder``; ``"constant"`` in
    ``partial_fit``).  ``unlabeled_weight`` weighs the self-supervised
    triplets of unlabelled rows against the others; None when every row is
    labelled.  ``strategy`` and ``callbacks`` are the user's parameters, passed
    through.  After training, the run embeds ``check_rows`` (a sample of the
    training rows, for the collapse check, with ``check_inputs`` measured of
    them and ``raw_features``, whether the default MLP takes them as they are)
    and, for a self-training round, ``label_rows`` (or None): of ``X[label_rows]``
    when ``label_share`` (a random share of the training rows), else of all of
    ``X``.
    """

    encoder: EncoderPlan | None
    train_rows: np.ndarray
    validation_rows: np.ndarray | None
    batches: BatchPlan
    epochs: int
    margin: float
    unlabeled_weight: float | None
    mining: str
    distance: str
    max_positives: int | None
    seed: int
    learning_rate: float
    weight_decay: float
    schedule: str
    metric: str
    score_every: int
    patience: int
    tol: float
    xla: bool
    device: str
    strategy: Any
    loss_scaling: bool
    callbacks: list | None
    verbose: int
    check_rows: np.ndarray | None = None
    check_inputs: tuple[bool, float] = (False, 0.0)
    raw_features: bool = False
    label_rows: np.ndarray | None = None
    label_share: bool = False


def plan_fit(
    params: dict, X, y, rng, *, partial=False, continues=False, split=None, label=False
) -> FitPlan:
    """The training run that the estimator's ``params`` ask for on ``(X, y)``.

    ``X`` is what the encoder takes, ``y`` integer class codes; ``params`` are
    the estimator's ``get_params()``, validated, with ``hidden_layer_sizes`` as
    a tuple of ints.  Raises a ``ValueError`` when ``batch_size`` exceeds the
    training rows.
    ``partial`` plans one epoch at the given learning rate (``partial_fit``),
    ``continues`` the training of a fitted encoder, when there is one (no
    network to plan).  ``split``, the ``(train_rows, validation_rows)`` of an
    earlier plan, keeps its rows (a self-training round, whose ``y`` holds
    pseudo-labels that must not be held out).  ``label`` asks the run to
    embed the training rows for a round of self-training: all of them, or a
    random share of ``MAX_SELF_TRAINING_SAMPLES``.  Draws every seed from
    ``rng``, in a fixed order.
    """
    schedule, epochs = _schedule(params, y, partial)
    if split is None:
        split = _validation_rows(params, y, rng, partial, schedule)
    train_idx, val_idx = split
    batch_size = params["batch_size"]
    if batch_size == "auto":
        batch_size = auto_batch_size(len(train_idx))
    elif batch_size > len(train_idx):
        raise ValueError(
            f"batch_size={batch_size} is larger than the {len(train_idx)} "
            "samples given; use a batch_size of at most n_samples, or "
            'batch_size="auto".'
        )
    # What X's kind decides, before X's statistics are measured (_geometry).
    default_dense = params["encoder"] is None and X.ndim == 2
    score_every = _score_every(train_idx, val_idx, default_dense)
    # XLA fuses the small ops of the loss and of our own MLP; a user's encoder,
    # and tf.distribute, keep Keras's choice.
    xla = default_dense and params["strategy"] is None
    encoder = None
    if not continues:
        encoder = _encoder_plan(params, X, y, train_idx, rng, partial)
    sampler_seed = int(rng.randint(_SEED_RANGE))
    level = params["input_noise"]
    if level == "auto":
        level = _auto_noise(y[train_idx], partial) if default_dense else 0.0
    scale = noise_scale(X, train_idx, level)
    weight_decay = params["weight_decay"]
    if weight_decay == "auto":
        weight_decay = AUTO_WEIGHT_DECAY if default_dense else 0.0
    batches = BatchPlan(
        partly_labelled=y.ndim == 1 and bool(np.any(y[train_idx] == UNLABELLED)),
        batch_size=batch_size,
        samples_per_class=params["samples_per_class"],
        sampler_seed=sampler_seed,
        noise_scale=scale,
        noise_seed=int(rng.randint(_SEED_RANGE)),
    )
    sampler = batches.sampler(y[train_idx])
    batches = replace(batches, n_batches=sampler.n_batches)
    seed = int(rng.randint(_SEED_RANGE))
    check_rows = train_idx[:CHECK_ROWS]
    label_rows, label_share = None, False
    if label:
        label_rows = train_idx
        label_share = len(train_idx) > _self_training.MAX_SELF_TRAINING_SAMPLES
        if label_share:
            # A random share: the neighbour search grows with the square.
            most = _self_training.MAX_SELF_TRAINING_SAMPLES
            label_rows = np.sort(rng.choice(train_idx, most, replace=False))
    return FitPlan(
        encoder=encoder,
        train_rows=train_idx,
        validation_rows=val_idx,
        batches=batches,
        # partial_fit trains one epoch at the given rate: no schedule.
        epochs=epochs,
        schedule=schedule,
        margin=params["margin"],
        unlabeled_weight=(
            params["unlabeled_weight"] if batches.partly_labelled else None
        ),
        mining=params["mining"],
        distance=params["distance"],
        # In a multi-label batch an anchor's positives may lie in any group.
        max_positives=positives_per_anchor(
            params["mining"],
            sampler.batch_rows if y.ndim == 2 else sampler.samples_per_group,
        ),
        seed=seed,
        learning_rate=params["learning_rate"],
        weight_decay=float(weight_decay),
        metric=RETRIEVAL_METRIC[params["distance"]],
        score_every=score_every,
        patience=params["n_iter_no_change"],
        tol=params["tol"],
        xla=xla,
        device=params["device"],
        strategy=params["strategy"],
        loss_scaling=params["precision"] == "mixed_float16",
        callbacks=params["callbacks"],
        verbose=params["verbose"],
        check_rows=check_rows,
        check_inputs=sample_inputs(X, check_rows),
        raw_features=default_dense,
        label_rows=label_rows,
        label_share=label_share,
    )


def auto_batch_size(n_samples: int) -> int:
    """``batch_size="auto"``: 256, or for fewer samples the largest power of
    two they fill.

    Each batch shape is compiled once per process, so powers of two keep the
    shapes few: the folds of a search on small data, or the parts of different
    sizes given to ``partial_fit``, share a compiled step instead of compiling
    one each (about a second).

    >>> auto_batch_size(1797), auto_batch_size(200), auto_batch_size(130)
    (256, 128, 128)
    """
    return min(AUTO_BATCH_SIZE, 1 << (max(n_samples, 1).bit_length() - 1))


def _schedule(params: dict, y, partial: bool) -> tuple[str, int]:
    """The learning-rate schedule and the epochs of a fit on the class codes
    ``y``: ``"auto"`` is the adaptive schedule up to
    ``AUTO_EARLY_STOPPING_SAMPLES`` and above, a cosine decay whose length
    falls with the rows of each class; ``partial_fit`` runs one epoch at a
    constant rate.

    >>> params = {"learning_rate_schedule": "auto", "epochs": 200}
    >>> _schedule(params, np.arange(1_797) % 10, False)
    ('adaptive', 200)
    >>> _schedule(params, np.arange(128_000) % 20, False)
    ('cosine', 30)
    >>> _schedule(params, np.arange(16_000) % 50, False)
    ('cosine', 134)
    """
    if partial:
        return "constant", 1
    schedule, epochs = params["learning_rate_schedule"], params["epochs"]
    if schedule != "auto":
        return schedule, epochs
    if len(y) <= AUTO_EARLY_STOPPING_SAMPLES:
        return "adaptive", epochs
    budget = round(COSINE_EPOCHS * _class_size_factor(y, COSINE_ROWS_PER_CLASS))
    return "cosine", max(1, min(epochs, budget))


def _rows_per_class(y) -> float:
    """The mean number of labelled rows in a class (a label's column, when
    ``y`` is a multi-label indicator matrix)."""
    if y.ndim == 2:
        return max(float(y.sum()) / y.shape[1], 1.0)
    labelled = y[y != UNLABELLED]
    return max(len(labelled) / max(len(np.unique(labelled)), 1), 1.0)


def _class_size_factor(y, reference: float) -> float:
    """``sqrt(reference / r)``, ``r`` the mean rows of a class of ``y``: how
    the epochs of the cosine decay and the input noise scale with class size."""
    return math.sqrt(reference / _rows_per_class(y))


def _auto_noise(y, partial: bool) -> float:
    """The "auto" input noise of the default MLP trained on the class codes
    ``y``: ``FEW_ROWS_INPUT_NOISE`` for small classes, then it falls as the
    classes grow; ``partial_fit``, whose chunks do not tell the size of the
    data, keeps ``AUTO_INPUT_NOISE``.

    >>> digits, large = np.arange(1_797) % 10, np.arange(128_000) % 20
    >>> _auto_noise(digits, False), _auto_noise(large, False), _auto_noise(large, True)
    (0.5, 0.25, 0.5)
    >>> _auto_noise(np.arange(300) % 10, False), _auto_noise(np.arange(300) % 10, True)
    (0.25, 0.5)
    """
    if partial:
        return AUTO_INPUT_NOISE
    if _few_rows(y):
        return FEW_ROWS_INPUT_NOISE
    return AUTO_INPUT_NOISE * min(1.0, _class_size_factor(y, NOISE_ROWS_PER_CLASS))


def _few_rows(y) -> bool:
    """Whether the classes of ``y`` are small enough for the default MLP to
    start from the raw geometry (:mod:`sktriplet._geometry`)."""
    return _rows_per_class(y) < FEW_ROWS_PER_CLASS


def _validation_rows(params: dict, y, rng, partial: bool, schedule: str):
    """Training and validation rows; no validation rows without early stopping,
    nor under "auto" for a cosine schedule (whose length is set in advance) or
    when classes are too small to hold any out (training then runs on all the
    data for ``epochs``, and a warning says so)."""
    every = np.arange(len(y))
    early_stopping = params["early_stopping"]
    if (
        y.ndim == 2
        and params["validation_strategy"] == "class_disjoint"
        and early_stopping is not False
    ):
        # Whether "auto" holds rows out depends on the data's size: refuse the
        # combination at any size, not only where it would be used.
        raise ValueError(
            "validation_strategy='class_disjoint' holds out whole classes, which "
            "a multi-label y does not have (a sample has several labels); use "
            "validation_strategy='stratified', which holds out a random share "
            "of the samples, or early_stopping=False."
        )
    if early_stopping == "auto":
        if partial or len(y) <= AUTO_EARLY_STOPPING_SAMPLES or schedule == "cosine":
            return every, None
    elif not early_stopping:
        return every, None
    # Unlabelled rows cannot be scored: only labelled ones are held out.
    labelled = every if y.ndim == 2 else np.flatnonzero(y != UNLABELLED)
    try:
        train_idx, val_idx = validation_split(
            y[labelled],
            params["validation_fraction"],
            params["validation_strategy"],
            rng,
            MAX_VALIDATION_SAMPLES,
        )
        if len(labelled) == len(y):
            return train_idx, val_idx
        train_idx = np.union1d(labelled[train_idx], np.setdiff1d(every, labelled))
        return train_idx, labelled[val_idx]
    except ValueError as exc:
        if early_stopping != "auto":
            raise
        warnings.warn(
            f"early_stopping='auto' holds out a validation set above "
            f"{AUTO_EARLY_STOPPING_SAMPLES} samples, but not in this fit: {exc} "
            f"Training runs up to epochs={params['epochs']} on every sample.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return every, None


def _score_every(train_idx, val_idx, default_dense: bool) -> int:
    """Every how many epochs early stopping scores the validation set: each
    epoch for a user's encoder or images (an epoch costs far more than the
    scoring there), else as ``SCORING_RATIO`` says.

    >>> n = np.arange
    >>> _score_every(n(28_800), n(3_200), True), _score_every(n(9), n(1), True)
    (6, 1)
    """
    if val_idx is None or not default_dense:
        return 1
    return max(1, math.ceil(len(val_idx) ** 2 / len(train_idx) / SCORING_RATIO))


def _encoder_plan(params: dict, X, y, train_idx, rng, partial: bool) -> EncoderPlan:
    seed = int(rng.randint(_SEED_RANGE - 100))
    given = params["encoder"]
    n_components = params["n_components"]
    if given is None:
        n_components = n_components or DEFAULT_N_COMPONENTS
    default_images = given is None and X.ndim == 4
    start = None
    # partial_fit's first chunk does not tell the size of the classes.
    if given is None and X.ndim == 2 and not partial:
        if _few_rows(y[train_idx]):
            start = principal_start(X, train_idx, n_components, seed)
    return EncoderPlan(
        given=given,
        input_shape=X.shape[1:],
        n_components=n_components,
        hidden_layer_sizes=params["hidden_layer_sizes"],
        normalize=params["normalize"],
        precision=params["precision"],
        seed=seed,
        channel_moments=channel_moments(X, train_idx) if default_images else None,
        start=start,
    )
