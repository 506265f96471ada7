"""The checks of sktriplet._checks on plain arrays: each refusal names the
problem and what to do, each warning fires where it says and only there.  No
Keras; the estimator-level behaviour is in test_validation.py."""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from sktriplet import _checks as checks


def _raises(message, kind=ValueError):
    return pytest.raises(kind, match="^" + re.escape(message) + "$")


def test_paired_embeddings_must_match():
    a, b = np.zeros((3, 2)), np.ones((3, 2))
    assert checks.paired(a, b) == (a, b)
    with _raises("X1 and X2 must hold the same number of samples to compare them "
                 "pairwise; got 3 and 2."):  # fmt: skip
        checks.paired(a, b[:2])


def test_integer_arrays_keep_their_dtype_and_others_become_float():
    floats = [np.float32, np.float64]
    assert checks.read_as(np.zeros(2, np.uint8), floats) is None
    assert checks.read_as(np.zeros(2, np.int64), floats) is None
    assert checks.read_as(np.zeros(2, bool), floats) == floats
    assert checks.read_as(np.zeros(2), floats) == floats
    assert checks.read_as([[1, 2]], floats) == floats


def test_values_beyond_float32_are_refused_and_the_edge_passes():
    largest = float(np.finfo(np.float32).max)
    checks.check_float32_range(np.array([[largest, -largest]]))
    checks.check_float32_range(np.zeros((0, 3)))
    checks.check_float32_range(np.array([[-3e38, 3e38]], np.float32))  # as read
    for bad, low, high in ((np.array([[1.0, 1e39]]), "1", "1e+39"),
                           (np.array([[-1e39, 2.0]]), "-1e+39", "2")):  # fmt: skip
        with _raises(
            f"X holds values beyond float32's range (from {low} to {high}; float32 "
            "holds at most 3.4e+38), and the network computes in float32: its "
            "loss would be NaN. Scale the features, for example with "
            "StandardScaler."
        ):
            checks.check_float32_range(bad)


def test_the_default_encoder_takes_vectors_and_channels_last_images():
    X2, X4 = np.zeros((2, 5)), np.zeros((2, 8, 8, 3))
    assert checks.encoder_input(X2, None) is X2
    assert checks.encoder_input(X4, None) is X4
    gray = np.zeros((2, 8, 8))
    out = checks.encoder_input(gray, None)
    assert out.shape == (2, 8, 8, 1) and np.shares_memory(out, gray)
    odd = np.zeros((2, 3, 4, 5, 6))
    assert checks.encoder_input(odd, lambda: None) is odd  # a user's: any shape
    for X in (np.zeros(4), odd):
        with _raises(
            f"X has {X.ndim} dimensions, shape {X.shape}; the default encoder "
            "takes tabular data of shape (n_samples, n_features) or images of "
            "shape (n_samples, height, width) or (n_samples, height, width, "
            "channels). Reshape X, or pass an encoder that accepts it."
        ):
            checks.encoder_input(X, None)
    with _raises(
        "X has shape (2, 3, 32, 32), which looks like channels-first images (3 "
        "channels of 32x32 pixels); the default encoder takes channels last, "
        "(n_samples, height, width, channels). Use np.moveaxis(X, 1, -1)."
    ):
        checks.encoder_input(np.zeros((2, 3, 32, 32)), None)


@pytest.mark.parametrize(
    "shape, first",
    [((3, 32, 32), True), ((1, 28, 28), True), ((4, 10, 7), True),
     ((3, 4, 4), True), ((32, 32, 3), False), ((4, 4, 4), False),
     ((28, 28, 1), False), ((2, 32, 32), False), ((3, 5, 4), False),
     ((1, 1, 1), False), ((3, 3, 3), False)],
)  # fmt: skip
def test_channels_first_is_told_apart_from_channels_last(shape, first):
    assert checks._looks_channels_first(shape) is first


def test_partial_fit_needs_the_same_kind_of_y():
    checks.check_same_kind_of_y(True, True)
    checks.check_same_kind_of_y(False, False)
    with _raises("This TripletEmbedder was fitted on one label per sample y; "
                 "partial_fit needs the same kind of y in each call, here a "
                 "multi-label indicator."):  # fmt: skip
        checks.check_same_kind_of_y(True, False)
    with _raises("This TripletEmbedder was fitted on a multi-label y; partial_fit "
                 "needs the same kind of y in each call, here a 1-D y."):  # fmt: skip
        checks.check_same_kind_of_y(False, True)


def test_a_strategy_cannot_be_pickled():
    checks.refuse_pickling_a_strategy(None)
    with pytest.raises(
        TypeError,
        match="^A TripletEmbedder with a distribution "
        "strategy cannot be pickled: .* which leaves it out.$",
    ):
        checks.refuse_pickling_a_strategy(object())


def test_samples_of_another_shape_are_refused():
    checks.check_fitted_sample_shape(np.zeros((2, 3)), (3,))
    with _raises("X has samples of shape (4,), but TripletEmbedder was fitted on "
                 "samples of shape (3,)."):  # fmt: skip
        checks.check_fitted_sample_shape(np.zeros((2, 4)), (3,))


@pytest.mark.parametrize(
    "value, sizes",
    [((64,), (64,)), ([8, 1], (8, 1)), (np.array([4, 2]), (4, 2)), (5, (5,)),
     ((), ())],
)  # fmt: skip
def test_hidden_layer_sizes_are_positive_integers(value, sizes):
    got = checks.check_hidden_layer_sizes(value)
    assert got == sizes and all(type(s) is int for s in got)
    params = checks.fit_params({"hidden_layer_sizes": value, "margin": 0.5})
    assert params == {"hidden_layer_sizes": sizes, "margin": 0.5}


@pytest.mark.parametrize(
    "value", [(0,), (8, -1), (2.5,), ("8",), (8, None), (True,), (np.True_, 8)]
)
def test_other_hidden_layer_sizes_are_refused(value):
    with _raises("hidden_layer_sizes must be a sequence of positive integers. "
                 f"Received: hidden_layer_sizes={value!r}"):  # fmt: skip
        checks.check_hidden_layer_sizes(value)


def test_a_binary_indicator_is_multi_label_and_a_column_is_raveled():
    Y = np.array([[1, 0], [0, 1], [1, 1]])
    assert checks.indicator_or_labels(Y) is Y
    as_bool = Y.astype(bool)
    assert checks.indicator_or_labels(as_bool) is as_bool
    sparse = sp.csr_matrix(Y)
    assert checks.indicator_or_labels(sparse) is sparse
    column = np.array([[2], [0], [1]])
    np.testing.assert_array_equal(checks.indicator_or_labels(column), [2, 0, 1])
    sparse_column = sp.csr_matrix(np.array([[1], [0]]))
    assert checks.indicator_or_labels(sparse_column) is sparse_column
    flat = np.array([3, 4])
    assert checks.indicator_or_labels(flat) is flat


@pytest.mark.parametrize(
    "y, odd",
    [(np.array([[0, 2], [1, 0]]), "2"), (np.array([[0.5, 1], [1, 0]]), "0.5"),
     (np.array([["a", "b"], ["b", "a"]]), "'a'")],
)  # fmt: skip
def test_any_other_2d_y_is_refused_naming_a_value(y, odd):
    with _raises(
        f"y is 2-D with 2 columns but is not a binary label indicator matrix: it "
        f"holds {odd}. A multi-label y holds only 0 and 1, a column per label (as "
        "MultiLabelBinarizer gives); a y of one label per sample must be 1-D."
    ):
        checks.indicator_or_labels(y)


def test_minus_one_in_an_indicator_says_what_a_row_without_labels_is():
    message = (
        "y is a multi-label indicator matrix holding -1. In a multi-label y a row "
        "without a label is a row of zeros (it serves as a negative only); -1 "
        "marks an unlabelled row only in a 1-D y of class labels."
    )
    for y in (np.array([[1, -1], [0, 1]]), sp.csr_matrix(np.array([[1, -1]]))):
        with _raises(message):
            checks.indicator_or_labels(y)
    with pytest.raises(ValueError, match="it holds -1"):  # beside other values
        checks.indicator_or_labels(np.array([[1, -1], [2, 0]]))


@pytest.mark.parametrize(
    "y",
    [[[0, 1], [1]], [["a"], ["b", "c"]], [{"a"}, {"b"}], ({1, 0}, {0, 1}),
     np.array([["a", "b"], ["c"]], dtype=object), [[0, 2], [1, 0]],
     [[0, 1], 1]],
)  # fmt: skip
def test_label_sets_are_refused_with_how_to_make_an_indicator(y):
    with _raises("y holds a collection of labels per sample. A multi-label y is a "
                 "binary indicator matrix, one column per label: pass "
                 "MultiLabelBinarizer().fit_transform(y)."):  # fmt: skip
        checks.refuse_label_sets(y)


@pytest.mark.parametrize(
    "y",
    [[[0, 1], [1, 0]], [(1.0, 0.0), (0.0, 1.0)], [np.array([0, 1]), [1, 1]],
     [1, 2, 3], np.array([[0, 1]]), np.array(["a", "b"], dtype=object), "ab"],
)  # fmt: skip
def test_indicator_rows_and_plain_labels_pass(y):
    checks.refuse_label_sets(y)


def test_minus_one_marks_unlabelled_integer_labels_only():
    np.testing.assert_array_equal(
        checks.unlabelled_rows(np.array([-1, 0, 3])), [True, False, False]
    )
    np.testing.assert_array_equal(
        checks.unlabelled_rows(np.array([-1.0, 2.0])), [True, False]
    )
    np.testing.assert_array_equal(
        checks.unlabelled_rows(np.array([-1.0, 0.5])), [False, False]
    )
    np.testing.assert_array_equal(
        checks.unlabelled_rows(np.array(["a", "b"])), [False, False]
    )
    for y in (np.array(["a", "-1"]), np.array(["a", -1], dtype=object)):
        with pytest.raises(ValueError, match="^y mixes string labels with -1. "):
            checks.unlabelled_rows(y)


def test_score_takes_labels_in_every_form_and_scores_the_labelled():
    E = np.zeros((3, 2))
    y, rows = checks.labels_to_score([2, -1, 2], E)
    np.testing.assert_array_equal(y, [2, 2])
    np.testing.assert_array_equal(rows, [True, False, True])
    y, rows = checks.labels_to_score(np.array([[1], [0], [1]]), E)
    np.testing.assert_array_equal(y, [1, 0, 1])
    assert rows.all()
    Y = sp.coo_matrix(np.array([[1, 0], [0, 1], [1, 1]]))
    y, rows = checks.labels_to_score(Y, E)
    assert sp.isspmatrix_csr(y) and rows.all() and rows.dtype == bool
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        checks.labels_to_score([1, 2], E)


def test_classes_and_codes_of_one_label_per_sample():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classes, codes = checks.check_labels(np.array(["b", "a", "b", "a"]))
    np.testing.assert_array_equal(classes, ["a", "b"])
    np.testing.assert_array_equal(codes, [1, 0, 1, 0])
    assert codes.dtype == np.int32
    classes, codes = checks.check_labels(np.array([5, -1, 5, 7]))
    np.testing.assert_array_equal(classes, [5, 7])
    np.testing.assert_array_equal(codes, [0, -1, 0, 1])
    assert codes.dtype == np.int32
    classes, codes = checks.check_labels(np.array([5, 5, 9]), known=np.array([1, 9]))
    np.testing.assert_array_equal(classes, [1, 5, 9])
    np.testing.assert_array_equal(codes, [1, 1, 2])


@pytest.mark.parametrize(
    "y, message",
    [(np.array([-1, -1]), "Every one of the 2 samples is unlabelled (y == -1): "
      "TripletEmbedder needs labelled samples of two classes or more; -1 marks "
      "only the unlabelled ones."),
     (np.array([3, 3, -1]), "TripletEmbedder needs samples of at least two "
      "classes to form triplets; y has 1 class: 3."),
     (np.array(["a", "b", "c"]), "TripletEmbedder needs at least one class with "
      "two or more samples to form a positive pair; each of the 3 classes in y "
      "has a single sample.")],
)  # fmt: skip
def test_labels_that_cannot_form_a_triplet_are_refused(y, message):
    with _raises(message):
        checks.check_labels(y)


def test_many_classes_of_one_sample_warn_and_few_do_not():
    y = np.concatenate([np.repeat(np.arange(10), 3), [10]])  # 1 of 11: fine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checks.check_labels(y)
    y = np.concatenate([np.repeat(np.arange(9), 3), [10, 11]])  # 2 of 11
    with pytest.warns(UserWarning, match=re.escape(
        "2 of the 11 classes in y have a single sample: they serve only as "
        "negatives, never as anchors. Gather more samples per class for a "
        "better embedding."
    )):  # fmt: skip
        checks.check_labels(y)


def test_an_indicator_gives_label_indices_and_a_dense_uint8_matrix():
    Y = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]]))
    classes, codes = checks.check_labels(Y, known=np.arange(3))
    np.testing.assert_array_equal(classes, [0, 1, 2])
    assert codes.dtype == np.uint8 and isinstance(codes, np.ndarray)
    np.testing.assert_array_equal(codes, Y.toarray())


@pytest.mark.parametrize(
    "Y, known, message",
    [(np.array([[1, 0], [0, 1]]), None, "TripletEmbedder needs a label shared by "
      "two or more samples to form a positive pair; no label of the 2 columns "
      "of y is."),
     (np.zeros((2, 2), int), None, "TripletEmbedder needs a label shared by two or "
      "more samples to form a positive pair; no label of the 2 columns of y is."),
     (np.array([[1, 0, 1], [0, 1, 1]]), None, "Every sample has label 2 (column 2 "
      "of y is all ones), so every two samples share a label and no negative "
      "exists. Drop that column."),
     (np.array([[1, 0], [1, 1]]), np.arange(3), "y has 2 label columns, but this "
      "TripletEmbedder was fitted on 3; partial_fit needs the same labels in each "
      "call.")],
)  # fmt: skip
def test_indicators_that_cannot_form_a_triplet_are_refused(Y, known, message):
    with _raises(message):
        checks.check_labels(Y, known)


_PARAMS = {"encoder": None, "learning_rate": 0.01, "mining": "semihard", "margin": 0.5}


def _collapse(X, E, params):
    """The collapse check on embeddings ``E`` of the rows ``X``, with what the
    plan measures of them (the default MLP takes 2-D rows as they are)."""
    from sktriplet._geometry import sample_inputs

    raw_features = params["encoder"] is None and X.ndim == 2
    inputs = sample_inputs(X, np.arange(len(X)))
    checks.warn_if_collapsed(E, params, inputs, raw_features)


def test_a_collapsed_embedding_warns_with_the_likeliest_cause_first():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    E = np.ones((3, 2))
    with pytest.warns(UserWarning, match="^" + re.escape(
        "The embedding collapsed: training drew every sample to nearly one point, "
        "where the loss is stuck at the margin. Lower learning_rate (now 0.01), or "
        "lower the margin (now 0.5)."
    ) + "$"):  # fmt: skip
        _collapse(X, E, _PARAMS)
    with pytest.warns(UserWarning, match=re.escape(
        "margin. Scale the features (they reach 2e+07; for example with "
        "StandardScaler), lower learning_rate (now 0.01), use mining='semihard' "
        "(now 'hard'), or lower the margin (now 0.5)."
    )):  # fmt: skip
        _collapse(X * 1e7, E, {**_PARAMS, "mining": "hard"})
    with pytest.warns(UserWarning, match=re.escape("Lower learning_rate")):
        _collapse(X * 1e7, E, {**_PARAMS, "encoder": len})
    with pytest.warns(UserWarning, match=re.escape("Lower learning_rate")):
        _collapse(np.ones((3, 2, 2)) * np.arange(3)[:, None, None]
                                 * 1e7, E, _PARAMS)  # fmt: skip
    tiny = np.zeros((3, 2))
    tiny[0, 0] = 1e-10  # spread 1e-10 around 0: collapsed all the same
    with pytest.warns(UserWarning, match="collapsed"):
        _collapse(X, tiny, _PARAMS)


def test_a_spread_embedding_or_identical_inputs_do_not_warn():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _collapse(X, np.array([[0.0, 1], [1, 0], [3, 3]]), _PARAMS)
        _collapse(np.ones((3, 2)), np.ones((3, 2)), _PARAMS)
        # Points 1e-2 apart at a scale of 1.4: small, but not a collapse.
        _collapse(X, np.array([[1.0, 1], [1.01, 1], [1, 1]]),
                                 _PARAMS)  # fmt: skip


def test_fit_data_validates_and_records_what_fit_saw():
    import pandas as pd

    from sktriplet import TripletEmbedder

    emb = TripletEmbedder()
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    X_in, y, shape = checks.fit_data(emb, X, [0, 1, 0], warm_start=False)
    assert X_in.dtype == np.float64 and X_in.shape == (3, 2) and shape == (2,)
    assert emb.n_features_in_ == 2 and list(emb.feature_names_in_) == ["a", "b"]
    np.testing.assert_array_equal(y, [0, 1, 0])
    X64 = np.zeros((3, 2))
    as_list = checks.fit_data(TripletEmbedder(), X64.tolist(), [0, 1, 0], False)[0]
    assert as_list.dtype == np.float32
    images = np.zeros((4, 5, 6), np.uint8)  # kept uint8, given a channel axis
    X_in, _, shape = checks.fit_data(TripletEmbedder(), images, [0, 1, 0, 1], False)
    assert X_in.dtype == np.uint8 and X_in.shape == (4, 5, 6, 1) and shape == (5, 6)
    Y = np.array([[1, 0], [0, 1], [1, 1]])
    assert checks.fit_data(TripletEmbedder(), X64, Y, False)[1].shape == (3, 2)
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        checks.fit_data(TripletEmbedder(), X64[:1], [0], False)
    with pytest.raises(ValueError, match="beyond float32's range"):
        checks.fit_data(TripletEmbedder(), X64 + 1e39, [0, 1, 0], False)
    with pytest.raises(ValueError, match="collection of labels per sample"):
        checks.fit_data(TripletEmbedder(), X64, [[0, 1], [1], [0]], False)


def test_a_warm_start_keeps_what_fit_saw_and_checks_against_it():
    from sktriplet import TripletEmbedder

    emb = TripletEmbedder()
    checks.fit_data(emb, np.zeros((3, 2)), [0, 1, 0], warm_start=False)
    emb._sample_shape = (2,)
    checks.fit_data(emb, np.ones((3, 2)), [0, 1, 1], warm_start=True)
    assert emb.n_features_in_ == 2
    with pytest.raises(ValueError, match="X has 3 features, but TripletEmbedder is "
                       "expecting 2 features as input"):  # fmt: skip
        checks.fit_data(emb, np.zeros((3, 3)), [0, 1, 0], warm_start=True)
    images = TripletEmbedder()
    checks.fit_data(images, np.zeros((3, 4, 4)), [0, 1, 0], warm_start=False)
    images._sample_shape = (4, 4)
    with _raises("X has samples of shape (4, 2), but TripletEmbedder was fitted on "
                 "samples of shape (4, 4)."):  # fmt: skip
        checks.fit_data(images, np.zeros((3, 4, 2)), [0, 1, 0], warm_start=True)


def test_transform_data_checks_against_fit_and_keeps_float64():
    from sktriplet import TripletEmbedder

    emb = TripletEmbedder()
    checks.fit_data(emb, np.zeros((3, 4, 4)), [0, 1, 0], warm_start=False)
    emb._sample_shape = (4, 4)
    out = checks.transform_data(emb, np.zeros((2, 4, 4)))
    assert out.dtype == np.float64 and out.shape == (2, 4, 4, 1)
    assert checks.transform_data(emb, np.zeros((2, 4, 4), np.float32)).dtype == (
        np.float32
    )
    assert checks.transform_data(emb, np.zeros((2, 4, 4), np.uint8)).dtype == np.uint8
    assert checks.transform_data(emb, np.zeros((2, 4, 4)).tolist()).dtype == (
        np.float64
    )
    with _raises("X has samples of shape (4, 5), but TripletEmbedder was fitted on "
                 "samples of shape (4, 4)."):  # fmt: skip
        checks.transform_data(emb, np.zeros((2, 4, 5)))
    assert emb.n_features_in_ == 4  # not reset by transform
    with pytest.raises(ValueError, match="expecting 4 features"):
        checks.transform_data(emb, np.zeros((2, 5, 5)))


def test_channels_first_message_names_height_and_width():
    with pytest.raises(ValueError, match=re.escape("(3 channels of 32x28 pixels)")):
        checks.encoder_input(np.zeros((2, 3, 32, 28)), None)


def test_the_pickling_refusal_says_what_to_do():
    with _raises(
        "A TripletEmbedder with a distribution strategy cannot be pickled: the "
        "strategy is bound to this process's devices. Call set_params(strategy="
        "None) first (it only matters for fit), or write the model with "
        "sktriplet.save, which leaves it out.",
        TypeError,
    ):
        checks.refuse_pickling_a_strategy(object())


def test_an_indicator_of_minus_ones_and_zeros_says_what_a_row_without_labels_is():
    with pytest.raises(ValueError, match="holding -1. In a multi-label y"):
        checks.indicator_or_labels(np.array([[0, -1], [-1, 0]]))


def test_the_string_and_minus_one_message_says_how_to_encode():
    with _raises(
        "y mixes string labels with -1. Unlabelled samples are marked with -1 in "
        "integer labels only, as sklearn.semi_supervised does: encode the labels "
        "as integers (LabelEncoder on the labelled samples) and set the "
        "unlabelled ones to -1."
    ):
        checks.unlabelled_rows(np.array(["a", "-1"]))
    assert checks.unlabelled_rows(np.array(["a", "b"])).dtype == bool


def test_score_labels_refuse_sets_and_keep_a_dense_indicator():
    E = np.zeros((3, 2))
    with pytest.raises(ValueError, match="collection of labels per sample"):
        checks.labels_to_score([[1, 2], [3], [1]], E)
    Y = np.array([[1, 0], [0, 1], [1, 1]])
    y, rows = checks.labels_to_score(Y, E)
    np.testing.assert_array_equal(y, Y)
    assert rows.all()
    column = sp.csr_matrix(np.array([[1], [0], [1]]))
    y, rows = checks.labels_to_score(column, E)
    assert sp.issparse(y) and y.shape == (3, 1)


def test_unlabelled_rows_keep_the_known_classes():
    classes, codes = checks.check_labels(np.array([4, -1, 4, 6]), known=np.array([9]))
    np.testing.assert_array_equal(classes, [4, 6, 9])
    np.testing.assert_array_equal(codes, [0, -1, 0, 1])


def test_one_class_in_ten_with_a_single_sample_does_not_warn():
    y = np.concatenate([np.repeat(np.arange(9), 3), [9]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checks.check_labels(y)


def _outside_sktriplet(filename):
    """Whether a warning points at its caller's code, not sktriplet's (the
    test's own file, or, under mutation testing, mutmut's trampoline)."""
    import os

    import sktriplet

    return not filename.startswith(os.path.dirname(sktriplet.__file__))


def test_warnings_point_at_the_callers_line():
    y = np.concatenate([np.repeat(np.arange(5), 3), [10, 11]])
    with pytest.warns(UserWarning) as caught:
        checks.check_labels(y)
    assert _outside_sktriplet(caught[0].filename)
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    with pytest.warns(UserWarning) as caught:
        _collapse(X, np.ones((3, 2)), _PARAMS)
    assert _outside_sktriplet(caught[0].filename)
    assert caught[0].category is UserWarning


def test_an_indicator_without_columns_has_no_shared_label():
    with _raises(
        "TripletEmbedder needs a label shared by two or more samples to form a "
        "positive pair; no label of the 0 columns of y is."
    ):
        checks.check_labels(np.zeros((3, 0), int))


def _around(center, spread, n=100, seed=0):
    """``n`` embeddings at ``center``, each ``spread`` from it on average."""
    rng = np.random.RandomState(seed)
    d = rng.normal(size=(n, len(center)))
    d -= d.mean(axis=0)
    d *= spread / np.mean(np.linalg.norm(d, axis=1))
    return np.asarray(center, float) + d


def test_the_collapse_threshold_is_a_thousandth_of_the_scale_per_row():
    """Rows within 1.3e-3 of the scale (1.41) around their centre are not a
    collapse, rows within 0.7e-3 are; both on 100 rows, where a norm over
    the whole matrix would be 10 times a row's; far from the origin, a
    spread of 0.05 at a scale of 141 is one too."""
    X = np.arange(200.0).reshape(100, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _collapse(X, _around([1, 1], 1.3e-3 * 2**0.5), _PARAMS)
    with pytest.warns(UserWarning, match="collapsed"):
        _collapse(X, _around([1, 1], 0.7e-3 * 2**0.5), _PARAMS)
    with pytest.warns(UserWarning, match="collapsed"):
        _collapse(X, _around([100, 100], 0.05), _PARAMS)
    spread_apart = np.concatenate(
        [_around([3, 1], 1e-4, 50), _around([1, 3], 1e-4, 50)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _collapse(X, spread_apart, _PARAMS)


def test_features_constant_over_samples_are_identical_inputs():
    X = np.tile([0.0, 1.0, 5.0], (4, 1))  # every sample the same, features not
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _collapse(X, np.ones((4, 2)), _PARAMS)


def test_features_of_exactly_a_million_are_not_called_unscaled():
    X = np.array([[0.0, 1e6], [1.0, 0.0], [2.0, 2.0]])
    with pytest.warns(UserWarning, match=re.escape(
        "where the loss is stuck at the margin. Lower learning_rate"
    )):  # fmt: skip
        _collapse(X, np.ones((3, 2)), _PARAMS)


def test_a_users_encoder_takes_images_as_given():
    from sktriplet import TripletEmbedder

    emb = TripletEmbedder(encoder=lambda: None)
    X_in, _, shape = checks.fit_data(emb, np.zeros((3, 4, 4)), [0, 1, 0], False)
    assert X_in.shape == (3, 4, 4) and shape == (4, 4)
    emb._sample_shape = (4, 4)
    assert checks.transform_data(emb, np.zeros((2, 4, 4))).shape == (2, 4, 4)


def test_transform_reads_an_object_array_of_numbers_as_float64():
    from sktriplet import TripletEmbedder

    emb = TripletEmbedder()
    checks.fit_data(emb, np.zeros((3, 2)), [0, 1, 0], warm_start=False)
    emb._sample_shape = (2,)
    out = checks.transform_data(emb, np.array([[1, 2.5], [3, 4]], dtype=object))
    assert out.dtype == np.float64


def test_a_collapse_away_from_the_origin_is_measured_around_its_own_centre():
    X = np.arange(200.0).reshape(100, 2)
    with pytest.warns(UserWarning, match="collapsed"):
        _collapse(X, _around([3, 1], 1e-5), _PARAMS)
