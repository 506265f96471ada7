"""TripletEmbedder: ``fit`` validates (:mod:`._checks`), plans (:mod:`._plan`),
trains in the Keras package (:func:`.keras.training.fit_encoder`, where Keras
is first imported) and commits what comes back."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _checks as checks
from . import _self_training as self_training
from ._plan import plan_fit
from .fitted import FittedEncoder
from .metrics import RETRIEVAL_METRIC, mean_average_precision_at_r

__all__ = ["TripletEmbedder"]


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
        Size of the embedding: None is 32, or ``encoder``'s output size (which
        an int must then match).

    hidden_layer_sizes : tuple of int, default=(256, 256)
        Widths of the hidden layers of the default encoder for tabular data
        (dense, batch normalisation, ReLU); below 50 rows a class, added to a
        linear map started at the rows' principal axes (user guide).

    encoder : keras.Model or callable, default=None
        The embedding network: a Keras model (a copy is trained) or a callable
        that returns a new one.  None builds an MLP, or a convolutional network
        for images.

    margin : float, default=0.5
        The margin of the triplet loss, as in FaceNet and the Keras example.

    mining : {"semihard", "hard", "all", "random"}, default="semihard"
        The triplets of each batch in the loss: per anchor-positive pair (16 at
        most an anchor) the nearest negative beyond the positive; the farthest
        positive and nearest negative; all; one random positive and negative.

    distance : {"squared_euclidean", "euclidean", "cosine"}, \
            default="squared_euclidean"
        The distance between embeddings in the loss, and the metric of ``score``.

    normalize : bool, default=True
        Scale each embedding to unit L2 norm (a last layer of the encoder).

    batch_size : int or "auto", default="auto"
        Rows per training batch: "auto" is 256, or for fewer samples the
        largest power of two they fill (so that fits share compiled steps).

    samples_per_class : int, default=4
        Least rows per class in a batch of ``batch_size // samples_per_class``
        classes (or every class, with more rows each).

    epochs : int, default=200
        The most passes over the training data, as ``MLPClassifier(max_iter)``.

    learning_rate : float, default=1e-2
        Learning rate of the Adam optimiser, at the start of training.

    learning_rate_schedule : {"auto", "adaptive", "cosine", "constant"}, \
            default="auto"
        ``"adaptive"``, as ``MLPClassifier``'s: after 5 epochs without the
        loss improving (see ``tol``) the rate is multiplied by 0.3; after 15,
        training stops.  ``"cosine"``: a half cosine to 0 over ``epochs``.
        ``"auto"``: adaptive up to 10000 samples, above, cosine over
        ``round(60 * sqrt(1600 / r))`` epochs (at most ``epochs``), ``r`` the
        mean rows of a class.  ``partial_fit`` trains at ``learning_rate``.

    input_noise : "auto" or float, default="auto"
        Standard deviation of the Gaussian noise added to training inputs, in
        units of each feature's; "auto" is 0.5 for the default MLP, 0.25 in a
        fit on classes of r < 50 rows, times sqrt(1600 / r) for r > 1600, else 0.

    weight_decay : "auto" or float, default="auto"
        Adam's decoupled weight decay (AdamW's): each step scales the weights by
        ``1 - learning_rate * weight_decay``.  "auto": 0.1 for the default MLP, else 0.

    unlabeled_weight : float, default=0.3
        For partly labelled ``y`` (``-1`` unlabelled): the weight, against 1, of
        triplets whose anchor and positive are noisy copies of one unlabelled row.

    pseudo_label_rounds : int, default=1
        For partly labelled ``y``: rounds of self-training after the fit, each
        labelling the unlabelled samples whose 10 nearest neighbours all share
        their spread label, then training anew (``history_`` is the last
        round's).  ``partial_fit`` never runs it.

    early_stopping : "auto" or bool, default="auto"
        Hold out ``validation_fraction``, score its MAP@R every epoch or few,
        stop after ``n_iter_no_change`` epochs without improvement and keep the
        best weights.  "auto": on above 10000 samples under the adaptive or
        constant schedule (not in ``partial_fit``, nor for classes too small).

    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping (at most 5000).

    validation_strategy : {"stratified", "class_disjoint"}, default="stratified"
        Hold out a share of each class, or whole classes (for unseen classes).

    n_iter_no_change : int, default=10
        Epochs without improvement of the validation score before stopping.

    tol : float, default=1e-2
        An epoch improves (early stopping, the adaptive schedule) when its
        validation score or loss gains more than ``tol`` times its gain since
        the first epoch.

    callbacks : list of keras.callbacks.Callback, default=None
        Passed through to ``keras.Model.fit``.

    precision : {"float32", "mixed_bfloat16", "mixed_float16"}, default="float32"
        Compute precision of the encoder; weights, loss, embeddings stay float32.

    strategy : tf.distribute.Strategy or keras.distribution, default=None
        Train data-parallel, mining over the global batch: a TensorFlow
        strategy (``MirroredStrategy()``: one host's GPUs), or, on JAX,
        ``keras.distribution.DataParallel()`` over :mod:`sktriplet.launch`'s
        processes.

    device : {"auto", "cpu", "gpu"}, default="auto"
        Where training and Keras inference run ("gpu" raises a ``ValueError``
        without one).  Dense encoders embed in numpy, on the CPU.

    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the batches, the split and the mining: an int gives
        bit-identical results on the CPU across calls, threads and processes.

    verbose : int, default=0
        0 is silent; 1 shows a progress bar per epoch; 2 one line per epoch.

    Attributes
    ----------
    encoder_ : keras.Model
        The fitted embedding network.

    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``; for a multi-label ``y``, the indices of
        its label columns.

    n_components_ : int
        Size of the embedding.

    history_ : dict of str to list of float
        Per epoch: ``loss``, ``active_fraction`` (share of mined triplets
        violating the margin), ``learning_rate``, and with ``early_stopping``
        ``val_map_at_r`` (NaN for an epoch not scored).

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

    _parameter_constraints: dict = checks.PARAMETER_CONSTRAINTS

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
        learning_rate_schedule="auto",
        input_noise="auto",
        weight_decay="auto",
        unlabeled_weight=0.3,
        pseudo_label_rounds=1,
        early_stopping="auto",
        validation_fraction=0.1,
        validation_strategy="stratified",
        n_iter_no_change=10,
        tol=1e-2,
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
        self.weight_decay = weight_decay
        self.unlabeled_weight = unlabeled_weight
        self.pseudo_label_rounds = pseudo_label_rounds
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_strategy = validation_strategy
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
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
        X : array-like of shape (n_samples, n_features) or images
            Vectors, or images ``(n_samples, height, width[, channels])``; with
            an ``encoder``, any shape it accepts.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels (``-1`` marks an unlabelled sample in integer labels),
            or a multi-label indicator matrix, dense or sparse: rows that share
            a label are positives, rows that share none negatives.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with self._unchanged_on_failure():
            return self._fit(X, y)

    def partial_fit(self, X, y):
        """Train for one more epoch on ``(X, y)``, from the current weights.

        The first call builds the encoder; later calls continue training it
        and the optimizer's state (also after :func:`sktriplet.load`) on the
        data given, which may hold new classes.  A failed call changes nothing.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            As in ``fit``; the same kind of ``y`` in every call.

        Returns
        -------
        self : object
        """
        with self._unchanged_on_failure():
            self._validate_params()
            return self._fit(X, y, partial=True)

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

    def _fit(self, X, y, partial=False):
        warm_start = partial and hasattr(self, "encoder_")  # continue training it
        # Validate the data, the labels and the parameters that depend on them.
        X, y, sample_shape = checks.fit_data(self, X, y, warm_start)
        params = checks.fit_params(self.get_params(deep=False))
        classes, y_codes = checks.check_labels(y, self.classes_ if warm_start else None)
        multilabel = y_codes.ndim == 2
        if warm_start:
            checks.check_same_kind_of_y(multilabel, getattr(self, "_multilabel", False))
        rng = check_random_state(self.random_state)

        from .keras.training import fit_encoder

        # Plan, then train in the Keras package; self-training rounds train
        # again with unlabelled rows labelled over the embedding just learned.
        rounds = self_training.Rounds(params, y_codes, partial)
        fitted = self._encoder if warm_start else None
        for y_round, split, label in rounds:
            plan = plan_fit(params, X, y_round, rng, partial=partial, split=split,
                            continues=warm_start, label=label)  # fmt: skip
            result = fit_encoder(plan, X, y_round, fitted)
            rounds.trained(plan, result)

        # Commit the fitted state only once training has succeeded.
        history = result.history
        if warm_start:
            history = {k: self.history_.get(k, []) + v for k, v in history.items()}
        self._encoder, self.classes_ = FittedEncoder.of(result), classes
        self._multilabel = multilabel
        self.n_components_ = result.n_components
        self.history_, self.n_iter_ = history, len(history.get("loss", []))
        self.best_epoch_, self._sample_shape = result.best_epoch, sample_shape
        embedded = result.check_embedding
        checks.warn_if_collapsed(embedded, params, plan.check_inputs, plan.raw_features)
        return self

    def __getstate__(self):
        checks.refuse_pickling_a_strategy(self.strategy)
        return super().__getstate__()  # the FittedEncoder pickles its model

    @property
    def encoder_(self):
        """The fitted encoder, a ``keras.Model``: samples in, embeddings out."""
        return self._encoder.model

    def transform(self, X):
        """Embed ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data of the shape seen in ``fit``.

        Returns
        -------
        X_new : ndarray of shape (n_samples, ``n_components_``)
            Float64 for float64 input, else float32 (integer input is cast
            chunk by chunk: a memmap is never copied whole).
        """
        check_is_fitted(self)
        return self._encoder.embed(checks.transform_data(self, X), self.device)

    def similarity(self, X1, X2):
        """Cosine similarity of the embeddings of paired samples, in [-1, 1].

        Parameters
        ----------
        X1, X2 : array-like of the same shape
            ``X1[i]`` is compared with ``X2[i]``.

        Returns
        -------
        similarity : ndarray of shape (n_samples,)
        """
        E1, E2 = checks.paired(self.transform(X1), self.transform(X2))
        norms = np.linalg.norm(E1, axis=1) * np.linalg.norm(E2, axis=1)
        return np.sum(E1 * E2, axis=1) / np.maximum(norms, 1e-12)

    def score(self, X, y):
        """Mean average precision at R of leave-one-out retrieval in the embedding.

        Independent of ``margin``, so that a search over it compares like with
        like (:func:`.metrics.mean_average_precision_at_r`, whose fixed-sample
        estimate it gives beyond 1000 labelled samples).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Held-out data, each row a query against all the others.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            As in ``fit`` (a row is relevant when it shares a label with the
            query); unlabelled samples are left out.

        Returns
        -------
        score : float
            MAP@R in ``[0, 1]``.
        """
        E = self.transform(X)
        y, scored = checks.labels_to_score(y, E)
        metric = RETRIEVAL_METRIC[self.distance]  # as the loss measures
        return mean_average_precision_at_r(E[scored], y, metric=metric)

    @property
    def _n_features_out(self) -> int:
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True  # a multi-label indicator y
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
