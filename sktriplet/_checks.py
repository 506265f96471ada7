"""Checks of the data and parameters given to ``TripletEmbedder``, in plain numpy.

Each check raises a ``ValueError`` that names the problem and what to do, or
warns about a fit that runs but rarely does what the user meant.  This module
never imports Keras.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets

from ._warnings import user_stacklevel
from .mining import DISTANCES, MINING_STRATEGIES

# TripletEmbedder's _parameter_constraints, checked by scikit-learn's
# _fit_context and set_params.
PARAMETER_CONSTRAINTS: dict = {
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
    "learning_rate_schedule": [StrOptions({"auto", "adaptive", "cosine", "constant"})],
    "input_noise": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
    "weight_decay": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
    "unlabeled_weight": [Interval(Real, 0, None, closed="left")],
    "pseudo_label_rounds": [Interval(Integral, 0, None, closed="left")],
    "early_stopping": [StrOptions({"auto"}), "boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "validation_strategy": [StrOptions({"stratified", "class_disjoint"})],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "callbacks": [list, None],
    "precision": [StrOptions({"float32", "mixed_bfloat16", "mixed_float16"})],
    "strategy": [HasMethods(["scope"]), None],
    "device": [StrOptions({"auto", "cpu", "gpu"})],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def fit_data(estimator, X, y, warm_start: bool) -> tuple:
    """``(X, y)`` validated for ``fit`` (``validate_data``, which also sets or
    checks the features seen), ``X`` as the encoder takes it, and the shape of
    one sample as given."""
    from sklearn.utils.validation import validate_data

    refuse_label_sets(y)
    X, y = validate_data(
        estimator,
        X,
        y,
        dtype=read_as(X, [np.float32, np.float64]),
        ensure_min_samples=2,
        allow_nd=True,
        multi_output=True,  # a multi-label indicator; see check_labels
        reset=not warm_start,
    )
    if warm_start:
        check_fitted_sample_shape(X, estimator._sample_shape)
    check_float32_range(X)
    return encoder_input(X, estimator.encoder), y, X.shape[1:]


def transform_data(estimator, X) -> np.ndarray:
    """``X`` validated for ``transform`` against the features and the shape of
    sample seen in ``fit``, as the encoder takes it (float64 or float32 kept)."""
    from sklearn.utils.validation import validate_data

    X = validate_data(
        estimator,
        X,
        reset=False,
        dtype=read_as(X, [np.float64, np.float32]),
        allow_nd=True,
    )
    check_fitted_sample_shape(X, estimator._sample_shape)
    return encoder_input(X, estimator.encoder)


def fit_params(params: dict) -> dict:
    """The estimator's ``get_params()`` as the plan reads them, checked beyond
    ``_parameter_constraints``."""
    return {
        **params,
        "hidden_layer_sizes": check_hidden_layer_sizes(params["hidden_layer_sizes"]),
    }


def paired(E1: np.ndarray, E2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Refuse embeddings of different numbers of samples to compare pairwise."""
    if E1.shape != E2.shape:
        raise ValueError(
            f"X1 and X2 must hold the same number of samples to compare them "
            f"pairwise; got {len(E1)} and {len(E2)}."
        )
    return E1, E2


def read_as(X, floats: list):
    """The ``dtype`` that ``validate_data`` converts ``X`` to.

    An integer numpy array (a ``uint8`` memmap of images, say) keeps its dtype:
    converting it to float would copy it whole, four or eight times its size.
    Training batches and ``transform`` chunks are cast to float as they are read.
    Anything else becomes the first of ``floats`` unless it is one of them.
    """
    if isinstance(X, np.ndarray) and X.dtype.kind in "iu":
        return None
    return floats


def check_float32_range(X: np.ndarray) -> None:
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


def encoder_input(X: np.ndarray, encoder) -> np.ndarray:
    """``X`` as the ``encoder`` parameter takes it: a user's encoder any shape;
    the default one vectors, or channels-last images, where grayscale images
    without a channel axis get one (a view: a memmap stays on disk)."""
    if encoder is not None:
        return X
    if X.ndim not in (2, 3, 4):
        raise ValueError(
            f"X has {X.ndim} dimensions, shape {X.shape}; the default encoder "
            "takes tabular data of shape (n_samples, n_features) or images of "
            "shape (n_samples, height, width) or (n_samples, height, width, "
            "channels). Reshape X, or pass an encoder that accepts it."
        )
    shape = X.shape
    if X.ndim == 4 and _looks_channels_first(shape[1:]):
        # The default encoder would read them as images a few pixels wide.
        raise ValueError(
            f"X has shape {shape}, which looks like channels-first images "
            f"({shape[1]} channels of {shape[2]}x{shape[3]} pixels); the default "
            "encoder takes channels last, (n_samples, height, width, channels). "
            "Use np.moveaxis(X, 1, -1)."
        )
    return X[..., np.newaxis] if X.ndim == 3 else X


def _looks_channels_first(shape: tuple) -> bool:
    """Whether images of ``shape`` are likelier channels-first than last: 1, 3
    or 4 leading values, and the last axis either no channel count or, with
    the middle one, square pixels that the channels-last reading would not give.

    >>> _looks_channels_first((3, 32, 32)), _looks_channels_first((3, 4, 4))
    (True, True)
    >>> _looks_channels_first((32, 32, 3)), _looks_channels_first((4, 4, 4))
    (False, False)
    """
    first, height, last = shape
    if first not in (1, 3, 4):
        return False
    return last not in (1, 3, 4) or (height == last and first != height)


def check_same_kind_of_y(multilabel: bool, fitted_multilabel: bool) -> None:
    """``partial_fit`` continues a fit on the same kind of ``y``."""
    if multilabel != fitted_multilabel:
        raise ValueError(
            "This TripletEmbedder was fitted on "
            + ("a multi-label" if not multilabel else "one label per sample")
            + " y; partial_fit needs the same kind of y in each call, here "
            + ("a multi-label indicator." if multilabel else "a 1-D y.")
        )


def refuse_pickling_a_strategy(strategy) -> None:
    if strategy is not None:
        raise TypeError(
            "A TripletEmbedder with a distribution strategy cannot be pickled: "
            "the strategy is bound to this process's devices. Call "
            "set_params(strategy=None) first (it only matters for fit), or "
            "write the model with sktriplet.save, which leaves it out."
        )


def check_fitted_sample_shape(X: np.ndarray, fitted_shape: tuple) -> None:
    if X.shape[1:] != fitted_shape:
        raise ValueError(
            f"X has samples of shape {X.shape[1:]}, but TripletEmbedder was "
            f"fitted on samples of shape {fitted_shape}."
        )


def check_hidden_layer_sizes(value) -> tuple[int, ...]:
    sizes = np.ravel(np.asarray(value, dtype=object))
    # A bool is an Integral, but (True,) is no layer width.
    if not all(
        isinstance(s, Integral) and not isinstance(s, (bool, np.bool_)) and s >= 1
        for s in sizes
    ):
        raise ValueError(
            "hidden_layer_sizes must be a sequence of positive integers. "
            f"Received: hidden_layer_sizes={value!r}"
        )
    return tuple(int(s) for s in sizes)


def indicator_or_labels(y):
    """``y`` as one label per sample (a column vector is raveled), or as a
    multi-label indicator matrix (dense or sparse, only 0 and 1, a column per
    label); any other 2-D ``y`` is refused, naming what is wrong."""
    if y.ndim != 2:
        return y
    if y.shape[1] == 1 and not sp.issparse(y):
        return y.ravel()
    values = np.unique(y.data if sp.issparse(y) else y)
    if values.dtype.kind in "iufb" and np.all(np.isin(values, (0, 1))):
        return y
    if -1 in values and np.all(np.isin(values, (-1, 0, 1))):
        raise ValueError(
            "y is a multi-label indicator matrix holding -1. In a multi-label "
            "y a row without a label is a row of zeros (it serves as a negative "
            "only); -1 marks an unlabelled row only in a 1-D y of class labels."
        )
    odd = values[~np.isin(values, (0, 1))] if values.dtype.kind in "iufb" else values
    odd = np.asarray(odd[0]).tolist()
    raise ValueError(
        f"y is 2-D with {y.shape[1]} columns but is not a binary label "
        f"indicator matrix: it holds {odd!r}. A multi-label y holds only 0 "
        "and 1, a column per label (as MultiLabelBinarizer gives); a y of one "
        "label per sample must be 1-D."
    )


def refuse_label_sets(y) -> None:
    """Refuse ``y`` given as one list (or set) of labels per sample, saying how
    to turn it into the indicator matrix that multi-label ``y`` must be.

    Lists of equal length that hold only 0 and 1 are rows of an indicator
    matrix, as scikit-learn reads them (``MultiLabelBinarizer().fit_transform(
    y).tolist()``); any other list of label lists is refused, whatever the
    lengths of its lists.
    """
    if not isinstance(y, (list, tuple)) and not (
        isinstance(y, np.ndarray) and y.dtype == object
    ):
        return
    collection = (list, tuple, set, frozenset, np.ndarray)
    rows = [v for v in y if isinstance(v, collection)]
    if not rows:
        return
    indicator_rows = (
        len(rows) == len(y)
        and not any(isinstance(v, (set, frozenset)) for v in rows)
        and len({len(v) for v in rows}) == 1
        and all(
            isinstance(x, (Integral, float, np.floating)) and x in (0, 1)
            for v in rows
            for x in v
        )
    )
    if not indicator_rows:
        raise ValueError(
            "y holds a collection of labels per sample. A multi-label y is "
            "a binary indicator matrix, one column per label: pass "
            "MultiLabelBinarizer().fit_transform(y)."
        )


UNSCALED = 1e6  # a feature this large was not scaled
UNLABELLED = -1  # the code of an unlabelled sample, as in sklearn.semi_supervised


def unlabelled_rows(y) -> np.ndarray:
    """Which samples of a 1-D ``y`` are unlabelled: those equal to -1 in
    integer (or integral float) labels, as ``sklearn.semi_supervised`` marks
    them.  String labels mixed with -1 are refused: there -1 could be a label."""
    if y.dtype.kind in "iu" or (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
        return y == UNLABELLED
    if y.dtype.kind in "OUS" and np.any(y.astype(str) == str(UNLABELLED)):
        raise ValueError(
            "y mixes string labels with -1. Unlabelled samples are marked with "
            "-1 in integer labels only, as sklearn.semi_supervised does: encode "
            "the labels as integers (LabelEncoder on the labelled samples) and "
            "set the unlabelled ones to -1."
        )
    return np.zeros(len(y), dtype=bool)


def labels_to_score(y, E: np.ndarray) -> tuple:
    """``y`` as ``score`` takes it, for the embeddings ``E``: in every form that
    ``fit`` takes (dense, any scipy sparse format, pandas; a multi-label
    indicator or one label per sample), and the rows to score (the labelled
    ones, see :func:`unlabelled_rows`)."""
    from sklearn.utils.validation import check_consistent_length

    refuse_label_sets(y)
    y = y.tocsr() if sp.issparse(y) else np.asarray(y)
    check_consistent_length(E, y)
    if y.ndim == 2 and y.shape[1] == 1 and not sp.issparse(y):
        y = y.ravel()
    if y.ndim != 1:
        return y, np.ones(len(E), dtype=bool)
    labelled = ~unlabelled_rows(y)
    return y[labelled], labelled


def check_labels(y, known=None) -> tuple[np.ndarray, np.ndarray]:
    """The classes of ``y`` (joined with the ``known`` ones) and ``y`` as int32
    codes into them; refuses labels that cannot form a triplet.

    A multi-label indicator ``y`` (see :func:`indicator_or_labels`) gives its
    label indices as classes and itself as a dense ``uint8`` matrix; ``known``
    must then be the label indices of the same number of labels.  Unlabelled
    samples of a 1-D ``y`` (see :func:`unlabelled_rows`) keep the code
    :data:`UNLABELLED`; the classes are those of the labelled ones.
    """
    y = indicator_or_labels(y)
    if y.ndim == 2:
        return _check_indicator(y, known)
    unlabelled = unlabelled_rows(y)
    if unlabelled.all():
        raise ValueError(
            f"Every one of the {len(y)} samples is unlabelled (y == -1): "
            "TripletEmbedder needs labelled samples of two classes or more; "
            "-1 marks only the unlabelled ones."
        )
    if unlabelled.any():
        classes, codes = check_labels(y[~unlabelled], known)
        y_codes = np.full(len(y), UNLABELLED, dtype=np.int32)
        y_codes[~unlabelled] = codes
        return classes, y_codes
    check_classification_targets(y)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(
            "TripletEmbedder needs samples of at least two classes to form "
            f"triplets; y has 1 class: {classes[:1].tolist()[0]!r}."
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
    if known is not None:
        classes = np.union1d(known, classes)
    return classes, np.searchsorted(classes, y).astype(np.int32)


def _check_indicator(y, known) -> tuple[np.ndarray, np.ndarray]:
    indicator = (y.toarray() if sp.issparse(y) else np.asarray(y)).astype(np.uint8)
    n_labels = indicator.shape[1]
    if known is not None and len(known) != n_labels:
        raise ValueError(
            f"y has {n_labels} label columns, but this TripletEmbedder was "
            f"fitted on {len(known)}; partial_fit needs the same labels in each "
            "call."
        )
    counts = indicator.sum(axis=0)
    if counts.max(initial=0) < 2:
        raise ValueError(
            "TripletEmbedder needs a label shared by two or more samples to "
            f"form a positive pair; no label of the {n_labels} columns of y is."
        )
    everywhere = np.flatnonzero(counts == len(indicator))
    if len(everywhere):
        raise ValueError(
            f"Every sample has label {int(everywhere[0])} (column "
            f"{int(everywhere[0])} of y is all ones), so every two samples share "
            "a label and no negative exists. Drop that column."
        )
    return np.arange(n_labels), indicator


def warn_if_collapsed(
    E: np.ndarray, params: dict, inputs: tuple[bool, float], raw_features: bool
) -> None:
    """Warn when training drew every embedding ``E`` of a sample of the training
    rows to (nearly) one point; ``inputs`` says whether those rows are all one
    sample and their largest absolute value
    (:func:`sktriplet._geometry.sample_inputs`), ``raw_features`` whether the
    default MLP took them as they are; ``params`` are the estimator's, named in
    the advice, which leads with the likeliest cause."""
    identical, largest = inputs
    if identical:
        return  # identical inputs have identical embeddings: not a collapse
    spread = float(np.mean(np.linalg.norm(E - E.mean(axis=0), axis=1)))
    scale = float(np.mean(np.linalg.norm(E, axis=1))) + 1e-12
    if not (spread < 1e-3 * scale or spread < 1e-9):
        return
    advice = []
    if raw_features and largest > UNSCALED:
        # The default MLP takes the raw features, and beyond about 1e18 its
        # batch statistics overflow float32 (images are standardised per
        # channel first).
        advice.append(
            f"scale the features (they reach {largest:.3g}; for example with "
            "StandardScaler)"
        )
    advice.append(f"lower learning_rate (now {params['learning_rate']})")
    if params["mining"] != "semihard":
        advice.append(f"use mining='semihard' (now {params['mining']!r})")
    advice.append(f"lower the margin (now {params['margin']})")
    text = ", ".join(advice[:-1]) + f", or {advice[-1]}."
    warnings.warn(
        "The embedding collapsed: training drew every sample to nearly one "
        "point, where the loss is stuck at the margin. " + text[0].upper() + text[1:],
        UserWarning,
        stacklevel=user_stacklevel(),
    )
