"""TripletEmbedder: the scikit-learn estimator, where input is validated and fit runs.

Keras is imported inside ``fit`` (and, for encoders that are not plain dense
stacks, inside ``transform``), never when this module is imported.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._stack import user_stacklevel
from .inference import DenseForward
from .metrics import mean_average_precision_at_r
from .mining import DISTANCES, MINING_STRATEGIES
from .sampling import ClassBalancedSampler, noisy_batches, validation_split

__all__ = ["TripletEmbedder"]

_DEFAULT_N_COMPONENTS = 32
_AUTO_BATCH_SIZE = 256
_AUTO_EARLY_STOPPING_SAMPLES = 10_000
_MAX_VALIDATION_SAMPLES = 5_000
_AUTO_INPUT_NOISE = 0.5
# Positives per anchor for semi-hard mining (see ``_max_positives``).  With two
# classes per 256-row batch, 16 rather than 127 made the step several times
# faster (``benchmarks/step_time.py``); on the digits, 16 rather than 24 kept the
# held-out scores (``benchmarks/seeds.py``).  Figures: docs/step_time.txt,
# docs/seeds.txt and the user guide.
_SEMIHARD_POSITIVES = 16
# The adaptive schedule's least improvement of the loss, as a share of the
# margin (see ``learning_rate_schedule``).
_PLATEAU_TOL = 2e-3
# The least gain of the validation MAP@R that counts as an improvement.
_VALIDATION_TOL = 1e-4
_SPREAD_ROWS = 10_000  # rows that estimate each feature's spread
_TRANSFORM_CHUNK = 4096
# The metric that ranks neighbours as each training distance does.
_RETRIEVAL_METRIC = {
    "squared_euclidean": "euclidean",
    "euclidean": "euclidean",
    "cosine": "cosine",
}


class TripletEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Learn an embedding where same-label samples are close, with the triplet loss.

    The embedding network ``f`` is trained on class-balanced batches of the
    labelled data.  Within each batch, triplets of an anchor ``a``, a positive
    ``p`` (same label) and a negative ``n`` (other label) are mined, and the loss
    ``max(d(f(a), f(p)) - d(f(a), f(n)) + margin, 0)`` is averaged over them.
    The learned embedding feeds nearest-neighbour classifiers, retrieval,
    clustering and similarity search.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    n_components : int, default=None
        Size of the embedding.  None means 32 for the default encoder, and the
        output size of ``encoder`` when one is given (an int must then match it).

    hidden_layer_sizes : tuple of int, default=(256, 256)
        Widths of the hidden layers of the default encoder for tabular data,
        each a dense layer, batch normalisation and ReLU.  Ignored when
        ``encoder`` is given.

    encoder : keras.Model or callable, default=None
        The embedding network.  A Keras model is copied, with its weights, and the
        copy is trained: the model passed in is never modified.  A callable is
        called with no argument and must return a new Keras model.  None builds a
        multilayer perceptron from ``hidden_layer_sizes``.

    margin : float, default=0.5
        The margin of the triplet loss, as in FaceNet and the Keras example.

    mining : {"semihard", "hard", "all", "random"}, default="semihard"
        Which triplets of each batch enter the loss: for each anchor-positive pair
        the nearest negative farther than the positive (``"semihard"``); the
        farthest positive and nearest negative of each anchor (``"hard"``); every
        valid triplet (``"all"``); one random positive and negative per anchor
        (``"random"``, the Keras example's scheme).  ``"semihard"`` pairs each
        anchor with at most 16 of its positives, those that follow it in the
        batch: with few classes a batch holds many rows of each, and its cost
        grows with their number.

    distance : {"squared_euclidean", "euclidean", "cosine"}, \
            default="squared_euclidean"
        The distance between embeddings in the loss, and the metric of ``score``.

    normalize : bool, default=True
        Scale each embedding to unit L2 norm (the last layer of the default
        encoder; appended to a given encoder).

    batch_size : int or "auto", default="auto"
        Rows per training batch.  "auto" is 256, or the number of samples when
        there are fewer.

    samples_per_class : int, default=4
        Least number of rows per class in a batch.  Each batch holds
        ``batch_size // samples_per_class`` classes, or every class when there
        are fewer, with more rows each.

    epochs : int, default=200
        The most passes over the training data.  With the default
        ``learning_rate_schedule="adaptive"``, training stops before once the
        training loss has settled, and with early stopping once the validation
        score has; with ``"constant"`` and no early stopping, every pass runs.
        200 is scikit-learn's ``MLPClassifier(max_iter=200)``.

    learning_rate : float, default=1e-2
        Learning rate of the Adam optimiser, at the start of training.

    learning_rate_schedule : {"adaptive", "constant"}, default="adaptive"
        ``"adaptive"`` lowers the learning rate as the training loss settles,
        and stops training when it no longer improves, as scikit-learn's
        ``MLPClassifier(learning_rate="adaptive")`` does: after 5 epochs
        without the epoch's mean loss falling by more than ``0.002 * margin``,
        the rate is multiplied by 0.3; after 15, training stops.  The amount of
        training then follows the data without holding any of it out: an easy
        data set stops within tens of epochs, a hard one trains longer.
        ``"constant"`` keeps ``learning_rate`` and runs ``epochs`` passes
        (fewer with early stopping).  ``partial_fit`` always trains at
        ``learning_rate``.  The rate of each epoch is in ``history_``.

    input_noise : "auto" or float, default="auto"
        Standard deviation of the Gaussian noise added to every training input,
        in units of each feature's standard deviation over the training data:
        each epoch sees each sample with new noise, which keeps the network from
        fitting the training samples too closely.  Never applied in
        ``transform``.  0 turns it off.  "auto" is 0.5 for the default encoder
        on tabular data and 0 for images and for a given ``encoder``.

    early_stopping : "auto" or bool, default="auto"
        Hold out ``validation_fraction`` of the training data, score the
        embedding on it after each epoch (MAP@R), stop when the score has not
        improved for ``n_iter_no_change`` epochs, and keep the weights of the
        best epoch: the amount of training then adapts to the data, and
        ``epochs`` is a budget.  "auto" turns it on when ``fit`` gets more than
        10000 samples, as scikit-learn's histogram gradient boosting does: a
        smaller data set gives a noisier validation score and trains fast
        anyway.  ``partial_fit`` never stops early under "auto", nor does a
        fit whose classes are too small to hold any samples out.

    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping`` is on, up
        to 5000 samples (MAP@R costs the square of their number).  With a
        stratified split, samples beyond 5000 go back to training.

    validation_strategy : {"stratified", "class_disjoint"}, default="stratified"
        How the validation set is held out: a share of each class's samples, or
        whole classes (to select for retrieval of classes never seen in
        training).

    n_iter_no_change : int, default=10
        Epochs without improvement of the validation score before stopping.

    callbacks : list of keras.callbacks.Callback, default=None
        Passed through to ``keras.Model.fit``.

    precision : {"float32", "mixed_bfloat16", "mixed_float16"}, default="float32"
        Compute precision of the encoder.  The mixed policies compute in 16-bit
        floats with float32 weights; the loss and the embeddings stay float32,
        and float16 training scales the loss to avoid underflow.  Faster on
        GPUs with 16-bit units; on CPUs, float32 is usually fastest.

    strategy : tf.distribute.Strategy, default=None
        Train under this TensorFlow distribution strategy, such as
        ``tf.distribute.MirroredStrategy()`` over several GPUs.  Each global
        batch is split across the replicas, the embeddings are gathered back so
        that triplets are mined over the global batch, and the loss is divided
        per replica, so that the result matches one device.

    device : {"auto", "cpu", "gpu"}, default="auto"
        Where training and Keras inference run: "auto" lets Keras choose (a GPU
        when the backend sees one); "gpu" raises a ``ValueError`` when there is
        none.  Dense encoders embed rows in ``transform`` with numpy, on the CPU.

    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the batches, the validation split and the random
        mining.  An int gives bit-identical results on the CPU across calls,
        threads and processes.

    verbose : int, default=0
        0 is silent; 1 shows a progress bar per epoch; 2 one line per epoch.

    Attributes
    ----------
    encoder_ : keras.Model
        The fitted embedding network.

    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``.

    n_components_ : int
        Size of the embedding.

    history_ : dict of str to list of float
        Per-epoch training metrics: ``loss``, ``active_fraction`` (the share of
        mined triplets that still violate the margin) and ``learning_rate``,
        and ``val_map_at_r`` with ``early_stopping``.

    n_iter_ : int
        Number of epochs run.

    best_epoch_ : int or None
        With ``early_stopping``, the epoch (from 0) whose weights were kept.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.neighbors.NeighborhoodComponentsAnalysis : Linear metric learning.

    References
    ----------
    .. [1] F. Schroff, D. Kalenichenko and J. Philbin, "FaceNet: A Unified
       Embedding for Face Recognition and Clustering", CVPR 2015.
    .. [2] A. Hermans, L. Beyer and B. Leibe, "In Defense of the Triplet Loss
       for Person Re-Identification", arXiv:1703.07737, 2017.
    .. [3] K. Musgrave, S. Belongie and S.-N. Lim, "A Metric Learning Reality
       Check", ECCV 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sktriplet import TripletEmbedder
    >>> X, y = load_digits(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X, y, stratify=y, test_size=0.3, random_state=0)
    >>> emb = TripletEmbedder(epochs=10, random_state=0).fit(X_train, y_train)
    >>> emb.transform(X_test).shape
    (540, 32)
    >>> knn = KNeighborsClassifier(n_neighbors=1).fit(emb.transform(X_train), y_train)
    >>> knn.score(emb.transform(X_test), y_test) > 0.95
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "hidden_layer_sizes": ["array-like"],
        "encoder": [callable, None],
        "margin": [Interval(Real, 0, None, closed="neither")],
        "mining": [StrOptions(set(MINING_STRATEGIES))],
        "distance": [StrOptions(set(DISTANCES))],
        "normalize": ["boolean"],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 2, None, closed="left"),
        ],
        "samples_per_class": [Interval(Integral, 2, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "learning_rate_schedule": [StrOptions({"adaptive", "constant"})],
        "input_noise": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "validation_strategy": [StrOptions({"stratified", "class_disjoint"})],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "callbacks": [list, None],
        "precision": [StrOptions({"float32", "mixed_bfloat16", "mixed_float16"})],
        "strategy": [HasMethods(["scope"]), None],
        "device": [StrOptions({"auto", "cpu", "gpu"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        hidden_layer_sizes=(256, 256),
        encoder=None,
        margin=0.5,
        mining="semihard",
        distance="squared_euclidean",
        normalize=True,
        batch_size="auto",
        samples_per_class=4,
        epochs=200,
        learning_rate=1e-2,
        learning_rate_schedule="adaptive",
        input_noise="auto",
        early_stopping="auto",
        validation_fraction=0.1,
        validation_strategy="stratified",
        n_iter_no_change=10,
        callbacks=None,
        precision="float32",
        strategy=None,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.encoder = encoder
        self.margin = margin
        self.mining = mining
        self.distance = distance
        self.normalize = normalize
        self.batch_size = batch_size
        self.samples_per_class = samples_per_class
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.input_noise = input_noise
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_strategy = validation_strategy
        self.n_iter_no_change = n_iter_no_change
        self.callbacks = callbacks
        self.precision = precision
        self.strategy = strategy
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Learn the embedding from labelled data.

        A failed fit leaves the estimator as it was before the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.  With a custom ``encoder``, any shape the encoder
            accepts, such as (n_samples, height, width, channels) images.
        y : array-like of shape (n_samples,)
            Class labels; at least two classes, one of them with two or more
            samples.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with self._unchanged_on_failure():
            return self._fit(X, y)

    def partial_fit(self, X, y):
        """Train for one more epoch on ``(X, y)``, from the current weights.

        The first call builds the encoder, as ``fit`` does with one epoch;
        later calls continue training it on the data given, which may hold
        classes not seen before, and continue the optimizer's state (Adam's
        step count and moments), as ``MLPClassifier.partial_fit`` does.  The
        parameters are validated on every call.  Use it to train on data that
        arrives in parts or does not fit in memory at once.  A failed call
        leaves the estimator as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : object
        """
        with self._unchanged_on_failure():
            self._validate_params()
            if not hasattr(self, "encoder_"):
                return self._fit(X, y, epochs=1)
            return self._fit(X, y, epochs=1, warm_start=True)

    @contextmanager
    def _unchanged_on_failure(self):
        """Restore every attribute if the enclosed code raises (even Ctrl-C)."""
        before = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _cap_validation(self, train_idx, val_idx, rng):
        """At most ``_MAX_VALIDATION_SAMPLES`` held out: MAP@R, scored every
        epoch, costs the square of their number.  A stratified split gives the
        rest back to training; a class-disjoint one leaves it out, so that no
        held-out class is trained on."""
        if len(val_idx) <= _MAX_VALIDATION_SAMPLES:
            return train_idx, val_idx
        keep = np.zeros(len(val_idx), dtype=bool)
        keep[rng.choice(len(val_idx), _MAX_VALIDATION_SAMPLES, replace=False)] = True
        if self.validation_strategy == "stratified":
            train_idx = np.sort(np.concatenate([train_idx, val_idx[~keep]]))
        return train_idx, val_idx[keep]

    def _stops_early(self, n_samples: int, partial: bool) -> bool:
        """Whether this fit holds out a validation set and stops early."""
        if self.early_stopping == "auto":
            return not partial and n_samples > _AUTO_EARLY_STOPPING_SAMPLES
        return bool(self.early_stopping)

    def _fit(self, X, y, epochs=None, warm_start=False):
        # Validate the data, the labels and the parameters that depend on them.
        X, y = validate_data(
            self,
            X,
            y,
            dtype=_read_as(X, [np.float32, np.float64]),
            ensure_min_samples=2,
            allow_nd=True,
            reset=not warm_start,
        )
        if warm_start:
            self._check_fitted_sample_shape(X)
        self._check_sample_shape(X)
        _check_float32_range(X)
        X = self._as_encoder_input(X)
        hidden_layer_sizes = self._check_hidden_layer_sizes()
        classes, y_codes = self._check_labels(y)
        if warm_start:
            classes = np.union1d(self.classes_, classes)
            y_codes = np.searchsorted(classes, y).astype(np.int32)
        rng = check_random_state(self.random_state)

        # Hold out a validation set for early stopping.
        train_idx, val_idx = np.arange(len(X)), None
        if self._stops_early(len(X), partial=epochs is not None):
            try:
                train_idx, val_idx = validation_split(
                    y_codes, self.validation_fraction, self.validation_strategy, rng
                )
            except ValueError:
                # Classes too small to hold any out: "auto" trains on all the
                # data for ``epochs``, as it would below the size threshold.
                if self.early_stopping != "auto":
                    raise
            else:
                train_idx, val_idx = self._cap_validation(train_idx, val_idx, rng)
        batch_size = self._check_batch_size(len(train_idx))

        # Build the encoder (or copy the fitted one), then train it.
        if warm_start:
            from .keras.models import copy_encoder

            encoder, n_components = copy_encoder(self.encoder_), self.n_components_
        else:
            encoder, n_components = self._build_encoder(
                X, train_idx, hidden_layer_sizes, rng
            )
        sampler_seed = int(rng.randint(np.iinfo(np.int32).max))

        def make_sampler():
            # A new sampler replays the same batches: the input can be re-read.
            return ClassBalancedSampler(
                y_codes[train_idx],
                batch_size,
                self.samples_per_class,
                np.random.RandomState(sampler_seed),
            )

        # partial_fit trains one epoch at the given rate: no schedule.
        adaptive = self.learning_rate_schedule == "adaptive" and epochs is None
        epochs = self.epochs if epochs is None else epochs
        result, optimizer_state = self._fit_model(
            encoder,
            X,
            y_codes,
            train_idx,
            val_idx,
            make_sampler,
            rng,
            epochs,
            adaptive,
            # partial_fit continues Adam's step count and moments.
            getattr(self, "_optimizer_state", None) if warm_start else None,
        )
        if result.non_finite is not None:
            epoch, batch, value = result.non_finite
            raise FloatingPointError(
                f"The triplet loss became {value} at epoch {epoch}, batch {batch}, "
                "and training stopped; the estimator keeps its earlier state. Lower "
                f"learning_rate (now {self.learning_rate}), scale the features "
                "(for example with StandardScaler), or keep normalize=True."
            )

        # Commit the fitted state only once training has succeeded.
        self.encoder_ = encoder
        self.classes_ = classes
        self.n_components_ = n_components
        if warm_start:
            result.history = {
                key: self.history_.get(key, []) + values
                for key, values in result.history.items()
            }
        self.history_ = result.history
        self.n_iter_ = len(result.history.get("loss", []))
        self.best_epoch_ = result.best_epoch
        self._optimizer_state = optimizer_state
        self._forward = DenseForward.from_keras(encoder)
        self._warn_if_collapsed(X[train_idx[:1000]])
        return self

    def _check_fitted_sample_shape(self, X) -> None:
        if X.shape[1:] != self._sample_shape:
            raise ValueError(
                f"X has samples of shape {X.shape[1:]}, but TripletEmbedder was "
                f"fitted on samples of shape {self._sample_shape}."
            )

    def _check_sample_shape(self, X) -> None:
        if self.encoder is None and X.ndim not in (2, 3, 4):
            raise ValueError(
                f"X has {X.ndim} dimensions, shape {X.shape}; the default encoder "
                "takes tabular data of shape (n_samples, n_features) or images of "
                "shape (n_samples, height, width) or (n_samples, height, width, "
                "channels). Reshape X, or pass an encoder that accepts it."
            )
        if self.encoder is None and X.ndim == 4:
            _check_channels_last(X.shape)
        self._sample_shape = X.shape[1:]

    def _as_encoder_input(self, X):
        """``X`` as the encoder takes it: grayscale images without a channel
        axis get one (a view: a memmap stays on disk)."""
        if self.encoder is None and X.ndim == 3:
            return X[..., np.newaxis]
        return X

    def _check_hidden_layer_sizes(self) -> tuple[int, ...]:
        sizes = np.ravel(np.asarray(self.hidden_layer_sizes, dtype=object))
        if not all(isinstance(s, Integral) and s >= 1 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive integers. "
                f"Received: hidden_layer_sizes={self.hidden_layer_sizes!r}"
            )
        return tuple(int(s) for s in sizes)

    def _check_labels(self, y) -> tuple[np.ndarray, np.ndarray]:
        check_classification_targets(y)
        classes, y_codes, counts = np.unique(y, return_inverse=True, return_counts=True)
        if len(classes) < 2:
            raise ValueError(
                "TripletEmbedder needs samples of at least two classes to form "
                f"triplets; y has 1 class: {classes[0]!r}."
            )
        if counts.max() < 2:
            raise ValueError(
                "TripletEmbedder needs at least one class with two or more samples "
                f"to form a positive pair; each of the {len(classes)} classes in y "
                "has a single sample."
            )
        n_single = int(np.sum(counts == 1))
        if n_single > 0.1 * len(classes):
            warnings.warn(
                f"{n_single} of the {len(classes)} classes in y have a single "
                "sample: they serve only as negatives, never as anchors. "
                "Gather more samples per class for a better embedding.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return classes, y_codes.astype(np.int32)

    def _max_positives(self, rows_per_class: int) -> int:
        """The positives each anchor is paired with in a batch of
        ``rows_per_class`` rows of its class; None pairs every one on the
        sort-based path.

        ``"all"`` pairs every one.  ``"semihard"`` pairs at most
        ``_SEMIHARD_POSITIVES``, those following the anchor in the batch: its
        cost grows with ``batch * positives * batch``, and with few classes a
        batch holds many rows of each (two classes in 256 rows: 127 positives).
        """
        every = max(rows_per_class - 1, 1)
        if self.mining == "semihard":
            return min(every, _SEMIHARD_POSITIVES)
        # "all" pairs every positive: up to _SEMIHARD_POSITIVES on the fast
        # (batch, positives, batch) path, beyond on the sorted O(batch**2) one,
        # which gives the same loss without the cube.
        return every if every <= _SEMIHARD_POSITIVES else None

    def _check_batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":
            return min(_AUTO_BATCH_SIZE, n_samples)
        if self.batch_size > n_samples:
            raise ValueError(
                f"batch_size={self.batch_size} is larger than the {n_samples} "
                "samples given; use a batch_size of at most n_samples, or "
                'batch_size="auto".'
            )
        return self.batch_size

    def _build_encoder(self, X, train_idx, hidden_layer_sizes, rng):
        """The network to train on ``X[train_idx]``, and its embedding size."""
        from .keras.models import with_precision

        encoder, n_components = self._make_encoder(
            X, train_idx, hidden_layer_sizes, rng
        )
        encoder = with_precision(encoder, self.precision)
        if self.normalize and n_components == 1:
            # Valid (scikit-learn's own checks fit with n_components=1), but
            # rarely what the user meant.
            warnings.warn(
                "An embedding of size 1 with normalize=True maps every sample to "
                "-1 or +1; use n_components >= 2 or normalize=False.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return encoder, n_components

    def _make_encoder(self, X, train_idx, hidden_layer_sizes, rng):
        from .keras import models

        input_shape = X.shape[1:]
        seed = int(rng.randint(np.iinfo(np.int32).max - 100))
        if self.encoder is not None:
            return models.user_encoder(
                self.encoder, input_shape, self.n_components, self.normalize
            )
        n_components = self.n_components or _DEFAULT_N_COMPONENTS
        if len(input_shape) == 3:
            mean, variance = _channel_moments(X, _spread_rows(train_idx))
            encoder = models.build_conv_encoder(
                input_shape, n_components, self.normalize, seed, mean, variance
            )
        else:
            encoder = models.build_mlp_encoder(
                input_shape, hidden_layer_sizes, n_components, self.normalize, seed
            )
        return encoder, n_components

    def _fit_model(
        self,
        encoder,
        X,
        y_codes,
        train_idx,
        val_idx,
        make_sampler,
        rng,
        epochs,
        adaptive,
        optimizer_state,
    ):
        """Train ``encoder`` with the triplet loss; return the training result
        and the optimizer's state at its end."""
        from .keras import devices, training

        noise_scale = self._noise_scale(X, train_idx)
        noise_seed = int(rng.randint(np.iinfo(np.int32).max))

        def batches():
            return noisy_batches(
                X, y_codes, train_idx, make_sampler(), noise_scale, noise_seed
            )

        sampler = make_sampler()
        steps_per_epoch, steps_per_execution = training.steps_per_call(
            sampler.n_batches
        )
        validation = None
        if val_idx is not None:
            metric = _RETRIEVAL_METRIC[self.distance]
            validation = (X[val_idx], y_codes[val_idx], metric)
        with (
            devices.placement(self.device),
            training.siamese_model_for(
                encoder,
                margin=self.margin,
                mining=self.mining,
                distance=self.distance,
                seed=int(rng.randint(np.iinfo(np.int32).max)),
                learning_rate=self.learning_rate,
                max_positives=self._max_positives(sampler.samples_per_group),
                # XLA fuses the small ops of the loss and of our own MLP; a
                # user's encoder, and tf.distribute, keep Keras's choice.
                jit_compile=(
                    True if self._default_dense(X) and self.strategy is None else "auto"
                ),
                steps_per_execution=steps_per_execution,
                device=self.device,
                strategy=self.strategy,
                loss_scaling=self.precision == "mixed_float16",
                optimizer_state=optimizer_state,
            ) as model,
        ):
            result = training.run_training(
                model,
                batches,
                steps_per_epoch=steps_per_epoch,
                epochs=epochs,
                validation=validation,
                patience=self.n_iter_no_change,
                tol=_VALIDATION_TOL,
                plateau=self._plateau(val_idx is not None) if adaptive else None,
                callbacks=self.callbacks,
                verbose=self.verbose,
            )
            encoder.set_weights(model.encoder.get_weights())
            return result, model.optimizer_state()

    def _plateau(self, validates: bool):
        """The adaptive schedule: on the validation score where there is one
        (early stopping then decides the stop), else on the training loss,
        which is in units of the margin, and so is its least change."""
        from .keras.training import Plateau

        if validates:
            return Plateau(
                _VALIDATION_TOL, monitor="val_map_at_r", maximize=True, stops=False
            )
        return Plateau(_PLATEAU_TOL * self.margin)

    def _default_dense(self, X) -> bool:
        """Whether the default multilayer perceptron embeds ``X``."""
        return self.encoder is None and X.ndim == 2

    def _noise_scale(self, X, train_idx) -> np.ndarray | None:
        """Standard deviation of the training noise of each input feature, or
        None without noise.

        Scaled by each feature's spread over the training rows (see
        ``_spread_rows``), so that the noise means the same whatever the units
        of X.
        """
        level = self.input_noise
        if level == "auto":
            level = _AUTO_INPUT_NOISE if self._default_dense(X) else 0.0
        if level == 0:
            return None
        spread = np.std(X[_spread_rows(train_idx)], axis=0, dtype=np.float64)
        return (level * spread).astype(np.float32)

    def _warn_if_collapsed(self, X_sample: np.ndarray) -> None:
        """Warn when training drew every embedding to (nearly) one point."""
        if np.ptp(X_sample.reshape(len(X_sample), -1), axis=0).max(initial=0) == 0:
            return  # identical inputs have identical embeddings: not a collapse
        E = self._embed(X_sample)
        spread = float(np.mean(np.linalg.norm(E - E.mean(axis=0), axis=1)))
        scale = float(np.mean(np.linalg.norm(E, axis=1))) + 1e-12
        if spread < 1e-3 * scale or spread < 1e-9:
            warnings.warn(
                "The embedding collapsed: training drew every sample to nearly one "
                "point, where the loss is stuck at the margin. Lower learning_rate "
                f"(now {self.learning_rate}), use mining='semihard' (now "
                f"{self.mining!r}), or lower the margin (now {self.margin}).",
                UserWarning,
                stacklevel=user_stacklevel(),
            )

    def __getstate__(self):
        if self.strategy is not None:
            # A tf.distribute strategy holds this process's devices and threads.
            raise TypeError(
                "A TripletEmbedder with a tf.distribute strategy cannot be pickled: "
                "the strategy is bound to this process's devices. Call "
                "set_params(strategy=None) first (the strategy only matters for "
                "fit), or write the model with sktriplet.save, which leaves the "
                "strategy out."
            )
        state = dict(super().__getstate__())  # may be self.__dict__ itself
        if "encoder_" in state:  # see PickledModel
            from .keras.models import PickledModel

            state["encoder_"] = PickledModel(state["encoder_"])
        return state

    def transform(self, X):
        """Embed ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data of the shape seen in ``fit``.

        Returns
        -------
        X_new : ndarray of shape (n_samples, ``n_components_``)
            The embedding: float64 for float64 input, float32 otherwise (for
            float32 and for integer input, such as ``uint8`` images, whose
            chunks are cast as they are read: a memmap is never copied whole).
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            reset=False,
            dtype=_read_as(X, [np.float64, np.float32]),
            allow_nd=True,
        )
        self._check_fitted_sample_shape(X)
        return self._embed(self._as_encoder_input(X))

    def similarity(self, X1, X2):
        """Cosine similarity of the embeddings of paired samples.

        The measure of the Keras image-similarity example: 1 for samples
        embedded in the same direction, -1 for opposite ones.

        Parameters
        ----------
        X1, X2 : array-like of the same shape
            ``X1[i]`` is compared with ``X2[i]``.

        Returns
        -------
        similarity : ndarray of shape (n_samples,)
        """
        E1, E2 = self.transform(X1), self.transform(X2)
        if E1.shape != E2.shape:
            raise ValueError(
                f"X1 and X2 must hold the same number of samples to compare them "
                f"pairwise; got {len(E1)} and {len(E2)}."
            )
        norms = np.linalg.norm(E1, axis=1) * np.linalg.norm(E2, axis=1)
        return np.sum(E1 * E2, axis=1) / np.maximum(norms, 1e-12)

    def _embed(self, X: np.ndarray) -> np.ndarray:
        # In chunks, each cast to a float type as it is read, so that memory
        # stays bounded for a memmap of any size and dtype.
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float32
        starts = range(0, len(X), _TRANSFORM_CHUNK)
        if self._forward is not None:
            out = np.empty((len(X), self.n_components_), dtype=dtype)
            for i in starts:
                chunk = X[i : i + _TRANSFORM_CHUNK].astype(dtype, copy=False)
                out[i : i + _TRANSFORM_CHUNK] = self._forward(chunk)
            return out
        from .keras.devices import placement
        from .keras.models import as_numpy

        with placement(self.device, inference=True):
            chunks = [
                as_numpy(
                    self.encoder_(
                        X[i : i + _TRANSFORM_CHUNK].astype(np.float32, copy=False),
                        training=False,
                    )
                )
                for i in starts
            ]
        return np.concatenate(chunks).astype(dtype, copy=False)

    def score(self, X, y):
        """Mean average precision at R of leave-one-out retrieval in the embedding.

        Higher is better, and it does not depend on ``margin``, so that model
        selection over ``margin`` compares like with like.  See
        :func:`sktriplet.metrics.mean_average_precision_at_r`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        score : float
            MAP@R in ``[0, 1]``.
        """
        return mean_average_precision_at_r(
            self.transform(X), y, metric=_RETRIEVAL_METRIC[self.distance]
        )

    @property
    def _n_features_out(self) -> int:
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _spread_rows(train_idx: np.ndarray) -> np.ndarray:
    """At most ``_SPREAD_ROWS`` evenly spaced training rows, which estimate the
    spread of the features (X is never copied whole)."""
    return train_idx[:: max(len(train_idx) // _SPREAD_ROWS, 1)]


def _channel_moments(X: np.ndarray, rows: np.ndarray, chunk: int = 256):
    """Mean and variance of each channel of the images ``X[rows]``, read
    ``chunk`` images at a time (memory stays bounded for any image size)."""
    total = np.zeros(X.shape[-1])
    squares = np.zeros(X.shape[-1])
    for i in range(0, len(rows), chunk):
        images = X[rows[i : i + chunk]].astype(np.float64)
        total += images.sum(axis=(0, 1, 2))
        squares += np.square(images).sum(axis=(0, 1, 2))
    count = len(rows) * X.shape[1] * X.shape[2]
    mean = total / count
    return mean, np.maximum(squares / count - mean**2, 0.0)


def _check_channels_last(shape: tuple) -> None:
    """Refuse images whose channels come first, which the default encoder would
    read as images a few pixels wide."""
    if shape[1] in (1, 3, 4) and shape[3] not in (1, 3, 4):
        raise ValueError(
            f"X has shape {shape}, which looks like channels-first images "
            f"({shape[1]} channels of {shape[2]}x{shape[3]} pixels); the default "
            "encoder takes channels last, (n_samples, height, width, channels). "
            "Use np.moveaxis(X, 1, -1)."
        )


def _check_float32_range(X: np.ndarray) -> None:
    """Refuse values the network, which computes in float32, cannot hold.

    Two reductions over X, no copy: a memmap is read, never loaded whole.
    """
    if X.dtype != np.float64 or X.size == 0:
        return
    largest = float(np.finfo(np.float32).max)
    low, high = float(np.min(X)), float(np.max(X))
    if high > largest or low < -largest:
        raise ValueError(
            f"X holds values beyond float32's range (from {low:.3g} to "
            f"{high:.3g}; float32 holds at most {largest:.3g}), and the network "
            "computes in float32: its loss would be NaN. Scale the features, for "
            "example with StandardScaler."
        )


def _read_as(X, floats: list):
    """The ``dtype`` that ``validate_data`` converts ``X`` to.

    An integer numpy array (a ``uint8`` memmap of images, say) keeps its dtype:
    converting it to float would copy it whole, four or eight times its size.
    Training batches and ``transform`` chunks are cast to float as they are read.
    Anything else becomes the first of ``floats`` unless it is one of them.
    """
    if isinstance(X, np.ndarray) and X.dtype.kind in "iu":
        return None
    return floats
