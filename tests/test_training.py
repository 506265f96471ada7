"""Training faults, early stopping, history and collapse detection."""

import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from sklearn.datasets import make_classification

from sktriplet import TripletEmbedder
from sktriplet._plan import plan_fit

keras = pytest.importorskip("keras")


@pytest.mark.backend
def test_non_finite_loss_stops_with_a_hint_and_keeps_the_earlier_model(digits, quick):
    X, y = digits
    emb = TripletEmbedder(**quick).fit(X, y)
    before = emb.transform(X)
    # No hidden layer: batch normalisation would absorb the blow-up.
    emb.set_params(learning_rate=1e30, normalize=False, epochs=5, hidden_layer_sizes=())
    with pytest.raises(FloatingPointError, match="Lower learning_rate"):
        emb.fit(X * 1e20, y)
    np.testing.assert_array_equal(emb.transform(X), before)
    assert emb.n_iter_ == 3 and emb.learning_rate == 1e30


def test_non_finite_loss_on_a_first_fit_leaves_it_unfitted(digits, quick):
    X, y = digits
    emb = TripletEmbedder(
        learning_rate=1e30,
        normalize=False,
        **{**quick, "epochs": 5, "hidden_layer_sizes": ()},
    )
    with pytest.raises(FloatingPointError, match="became nan|became inf"):
        emb.fit(X * 1e20, y)
    assert not hasattr(emb, "encoder_")


class _InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_keyboard_interrupt_stops_cleanly_and_warns(digits, quick):
    X, y = digits
    emb = TripletEmbedder(callbacks=[_InterruptAt(1)], **{**quick, "epochs": 10})
    with pytest.warns(UserWarning, match="Training was interrupted"):
        emb.fit(X, y)
    assert emb.n_iter_ == 2  # epochs 0 and 1 ran to their end
    assert emb.transform(X).shape == (400, 32)


class _ScrambleAt(keras.callbacks.Callback):
    """Replaces the encoder's weights with noise once ``epoch`` has been scored:
    the next epoch scores far worse, so the best epoch is not the last."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            rng = np.random.RandomState(0)
            for weight in self.model.encoder.trainable_weights:
                weight.assign(rng.normal(size=weight.shape).astype("float32"))


def test_keyboard_interrupt_keeps_the_best_weights(digits, quick):
    X, y = digits
    callbacks = [_ScrambleAt(3), _InterruptAt(4)]
    emb = TripletEmbedder(
        early_stopping=True, callbacks=callbacks, **{**quick, "epochs": 10}
    )
    with pytest.warns(UserWarning, match="best weights so far"):
        emb.fit(X, y)
    scores = emb.history_["val_map_at_r"]
    assert emb.n_iter_ == 5 and emb.best_epoch_ < 4  # not the last epoch's
    assert emb.best_epoch_ == int(np.argmax(scores))
    # The weights are those of the best epoch: a fit stopped there gives them.
    exact = TripletEmbedder(
        early_stopping=True, **{**quick, "epochs": emb.best_epoch_ + 1}
    ).fit(X, y)
    np.testing.assert_array_equal(emb.transform(X), exact.transform(X))


def test_early_stopping_restores_the_best_epoch(digits, quick):
    X, y = digits
    emb = TripletEmbedder(
        early_stopping=True, n_iter_no_change=2, **{**quick, "epochs": 200}
    )
    emb.fit(X, y)
    scores = emb.history_["val_map_at_r"]
    assert emb.n_iter_ < 200  # it stopped itself
    assert emb.n_iter_ == emb.best_epoch_ + 1 + 2
    assert emb.best_epoch_ == int(np.argmax(scores))
    assert set(emb.history_) == {
        "loss",
        "active_fraction",
        "learning_rate",
        "val_map_at_r",
    }


@pytest.mark.backend
def test_early_stopping_keeps_the_best_weights_not_the_last(digits, quick):
    """The kept weights score the best epoch's validation MAP@R, not the last's."""
    X, y = digits
    emb = TripletEmbedder(
        early_stopping=True, n_iter_no_change=3, **{**quick, "epochs": 60}
    )
    emb.fit(X, y)
    # Refit on the same data with the same seed, stopped at the best epoch.
    exact = TripletEmbedder(
        early_stopping=True,
        n_iter_no_change=1000,
        **{**quick, "epochs": emb.best_epoch_ + 1},
    ).fit(X, y)
    np.testing.assert_array_equal(emb.transform(X), exact.transform(X))


@pytest.mark.parametrize("strategy", ["class_disjoint", "stratified"])
def test_validation_holds_out_whole_classes_or_a_share_of_each(
    digits, monkeypatch, strategy, quick
):
    """The split fit trains and validates on: class-disjoint holds out whole
    classes, which training never sees; stratified a share of every class."""
    from sktriplet import _plan

    splits = []
    original = _plan.validation_split

    def spy(*args, **kwargs):
        splits.append(original(*args, **kwargs))
        return splits[-1]

    monkeypatch.setattr(_plan, "validation_split", spy)
    X, y = digits
    emb = TripletEmbedder(
        early_stopping=True,
        validation_strategy=strategy,
        validation_fraction=0.2,
        **quick,
    ).fit(X, y)
    assert len(emb.history_["val_map_at_r"]) == 3
    ((train, val),) = splits
    train_classes, val_classes = set(y[train]), set(y[val])
    if strategy == "class_disjoint":
        assert val_classes and not train_classes & val_classes
    else:
        assert train_classes == val_classes == set(y)


def test_history_is_plain_data(digits, quick):
    X, y = digits
    emb = TripletEmbedder(**quick).fit(X, y)
    assert type(emb.history_) is dict
    assert all(
        type(v) is list and all(type(x) is float for x in v)
        for v in emb.history_.values()
    )
    assert emb.history_["loss"][-1] < emb.history_["loss"][0]


class _FakeModel:
    """What Plateau reads and writes on a model: its optimizer's rate, the stop."""

    def __init__(self, learning_rate):
        self.optimizer = type("Optimizer", (), {"learning_rate": learning_rate})()
        self.stop_training = False


@pytest.mark.parametrize("maximize", [False, True])
def test_plateau_lowers_the_rate_every_patience_epochs_then_stops(maximize):
    from sktriplet.keras.callbacks import Plateau

    plateau = Plateau(
        tol=0.05,
        monitor="val_map_at_r" if maximize else "loss",
        maximize=maximize,
        patience=2,
        factor=0.5,
        reductions=2,
    )
    model = _FakeModel(1.0)
    plateau.set_model(model)
    # Improvements (by more than tol times the gain so far: 0.05 * 0.2 after
    # 0.8), then a loss that stalls: 0.795 and 0.791 are no improvement.  A
    # score to maximize: the same, negated.
    losses = [1.0, 0.8, 0.795, 0.791, 0.5, 0.6, 0.5, 0.5, 0.5, 0.5, 0.5]
    rates, stopped_at = [], None
    for epoch, loss in enumerate(losses):
        logs = {"val_map_at_r": -loss} if maximize else {"loss": loss}
        plateau.on_epoch_end(epoch, logs)
        rates.append(model.optimizer.learning_rate)
        if model.stop_training and stopped_at is None:
            stopped_at = epoch
    # Stalls after 0.8 (epochs 2, 3: halved), improves at 4, then stalls from
    # epoch 5: halved after 2 epochs, again after 4, stopped after 6 = 2 * (2 + 1).
    assert rates == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.125]
    assert stopped_at == 10


@pytest.mark.parametrize("stops", [True, False])
def test_plateau_cuts_the_rate_at_most_cuts_times_then_stops(stops):
    """Improvements between plateaus reset the count of cuts per plateau, but
    not the cuts in all: at the lowest rate, a plateau stops training (with
    ``stops``; else the rate stays there)."""
    from sktriplet.keras.callbacks import Plateau

    plateau = Plateau(0.01, patience=2, factor=0.5, reductions=2, cuts=2,
                      stops=stops)  # fmt: skip
    model = _FakeModel(1.0)
    plateau.set_model(model)
    losses = [1.0, 0.5, 0.5, 0.5, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1]
    rates, stopped_at = [], None
    for epoch, loss in enumerate(losses):
        plateau.on_epoch_end(epoch, {"loss": loss})
        rates.append(model.optimizer.learning_rate)
        if model.stop_training and stopped_at is None:
            stopped_at = epoch
    # Cut after epochs 3 and 6 (2 epochs after the improvements at 1 and 4);
    # after the improvement at 7, a third plateau: stopped at epoch 9.
    assert rates == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]
    assert stopped_at == (9 if stops else None)


def test_plateau_counts_epochs_between_scores_taken_every_few_epochs():
    """A validation score every 3 epochs (NaN between): the rate is cut once
    ``patience`` epochs have passed without an improvement, scored or not."""
    from sktriplet.keras.callbacks import Plateau

    plateau = Plateau(0.01, monitor="val_map_at_r", maximize=True, patience=2,
                      factor=0.5, stops=False)  # fmt: skip
    model = _FakeModel(1.0)
    plateau.set_model(model)
    nan = float("nan")
    scores = [nan, nan, 0.5, nan, nan, 0.5, nan, nan, 0.5]
    rates = []
    for epoch, score in enumerate(scores):
        plateau.on_epoch_end(epoch, {"val_map_at_r": score})
        rates.append(model.optimizer.learning_rate)
    # Best at epoch 2; at epoch 5, 3 epochs later: one cut (patience 2); at
    # epoch 8, 6 later: two more (after 4 and 6).
    assert rates == [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.125]


def test_early_stopping_scores_every_few_epochs_and_the_last():
    """Above 10000 rows the default MLP's validation set is scored every k
    epochs (k from the plan: the scoring costs the square of its rows), and
    after the last epoch; the others hold NaN in history_."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(12_000, 4)).astype(np.float32)
    y = np.arange(len(X)) % 10
    params = dict(hidden_layer_sizes=(), n_components=2, epochs=5, random_state=0)
    emb = TripletEmbedder(learning_rate_schedule="constant", **params)
    plan = plan_fit(emb.get_params(), X, y, np.random.RandomState(0))
    assert plan.score_every == 3  # 1200 ** 2 / 10800 / 60, rounded up
    scores = emb.fit(X, y).history_["val_map_at_r"]
    assert np.isnan([scores[0], scores[1], scores[3]]).all()
    assert np.isfinite([scores[2], scores[4]]).all()
    assert emb.best_epoch_ in (2, 4)


def test_adaptive_schedule_stops_once_the_loss_settles_and_logs_the_rate():
    # Two far-apart blobs: the loss reaches zero in a few epochs and stays.
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.normal(0, 1, (40, 4)), rng.normal(20, 1, (40, 4))])
    y = np.repeat([0, 1], 40)
    params = dict(epochs=60, hidden_layer_sizes=(8,), random_state=0)
    adaptive = TripletEmbedder(**params).fit(X, y)
    assert 15 <= adaptive.n_iter_ < 60
    rates = adaptive.history_["learning_rate"]
    assert len(rates) == adaptive.n_iter_
    assert rates[0] == pytest.approx(adaptive.learning_rate)
    assert rates[-1] == pytest.approx(adaptive.learning_rate * 0.3**2)
    constant = TripletEmbedder(learning_rate_schedule="constant", **params).fit(X, y)
    assert constant.n_iter_ == 60
    assert (
        constant.history_["learning_rate"]
        == [pytest.approx(constant.learning_rate)] * 60
    )


def test_tol_decides_how_long_the_adaptive_schedule_trains(digits, quick):
    """tol says what counts as progress: the same fit with a larger tol cuts the
    rate and stops sooner; with tol=0 any fall of the loss counts."""
    X, y = digits
    params = {**quick, "epochs": 150, "learning_rate_schedule": "adaptive"}
    loose = TripletEmbedder(tol=0.2, **params).fit(X, y)
    strict = TripletEmbedder(tol=0.0, **params).fit(X, y)
    assert loose.n_iter_ + 10 <= strict.n_iter_ < 150, (loose.n_iter_, strict.n_iter_)


@pytest.mark.backend
def test_fits_on_data_of_different_sizes_reuse_one_traced_step():
    # The folds of a 3-fold search on 480 rows (320 rows, 10 batches of 32)
    # and its refit on all of them (15 batches) both run 8 steps per call:
    # they train the same pooled model, whose traced step Keras keeps.
    from sktriplet.keras import pool

    X, y = make_classification(
        480, n_features=20, n_informative=10, n_classes=10, random_state=0
    )
    params = dict(epochs=1, hidden_layer_sizes=(24,), batch_size=32, random_state=0)
    TripletEmbedder(**params).fit(X[:320], y[:320])
    keys = [k for k in pool._POOL if '"units": 24' in k]
    (key,) = keys
    (model,) = pool._POOL[key]
    train_function = model.train_function
    TripletEmbedder(**params).fit(X, y)
    assert [k for k in pool._POOL if '"units": 24' in k] == keys
    assert pool._POOL[key] == [model]
    assert model.train_function is train_function


def test_partial_fit_parts_of_different_batch_counts_reuse_one_traced_step():
    # Parts of 1, 2 and 4 batches: one epoch each, one step per call, so one
    # pooled model (a fit would run each epoch in one call, a step per count).
    from sktriplet.keras import pool

    X, y = make_classification(
        1000, n_features=20, n_informative=10, n_classes=10, random_state=0
    )
    emb = TripletEmbedder(hidden_layer_sizes=(23,), random_state=0)
    for part in (slice(0, 300), slice(0, 600), slice(0, 1000)):
        emb.partial_fit(X[part], y[part])
    assert len([k for k in pool._POOL if '"units": 23' in k]) == 1


def test_small_data_of_nearby_sizes_trains_on_one_batch_shape(digits):
    # batch_size="auto" is a power of two below 256 samples: parts of 130 to
    # 255 rows share one batch shape, hence one compiled step (the pool's key
    # and XLA's cache), instead of compiling one each in partial_fit.
    X, y = digits
    params = TripletEmbedder().get_params()
    steps = set()
    for n in (130, 170, 255):
        y_n = y[:n].astype(np.int32)
        plan = plan_fit(params, X[:n], y_n, np.random.RandomState(0))
        x, _ = next(plan.batches.blocks(X[:n], y_n, plan.train_rows))
        steps.add((x.shape[1:], plan.max_positives))
    assert len(steps) == 1
    (((rows, _), _),) = steps
    assert 64 < rows <= 128


class _Collapse(keras.callbacks.Callback):
    """Zeroes the kernels of the layers that give the embedding (and of the
    linear start it is added to, at few rows a class): every sample maps to one
    point."""

    def on_train_end(self, logs=None):
        for layer in self.model.encoder.layers:
            if layer.name in ("embedding", "start"):
                layer.kernel.assign(np.zeros(layer.kernel.shape))


def test_collapse_is_detected_and_explained(digits, quick):
    X, y = digits
    emb = TripletEmbedder(callbacks=[_Collapse()], **quick)
    with pytest.warns(UserWarning, match="The embedding collapsed"):
        emb.fit(X, y)


def test_collapse_advice_names_only_what_the_user_can_change(digits, quick):
    X, y = digits
    emb = TripletEmbedder(callbacks=[_Collapse()], **quick)
    with pytest.warns(UserWarning, match="The embedding collapsed") as record:
        emb.fit(X, y)
    (message,) = [str(w.message) for w in record if "collapsed" in str(w.message)]
    assert "learning_rate (now 0.01)" in message
    assert "mining" not in message  # already "semihard", the advised value
    assert "scale the features" not in message.lower()  # they are in [0, 1]
    with pytest.warns(UserWarning, match="use mining='semihard' \\(now 'hard'\\)"):
        emb.set_params(mining="hard").fit(X, y)


def test_collapse_on_unscaled_features_advises_scaling(all_digits, quick):
    # At this size the default MLP's batch statistics overflow float32 (60 rows
    # a class: the MLP alone, without the linear start of fewer rows).
    X, y = all_digits[0][:600], all_digits[1][:600]
    with pytest.warns(UserWarning, match=r"Scale the features \(they reach 1e\+20"):
        TripletEmbedder(**quick).fit(X * 1e20, y)


def test_no_collapse_warning_on_healthy_training(digits, recwarn, quick):
    X, y = digits
    TripletEmbedder(**quick).fit(X, y)
    assert not [w for w in recwarn if "collapsed" in str(w.message)]


def test_user_callbacks_are_called(digits, quick):
    X, y = digits
    seen = []
    cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))
    TripletEmbedder(callbacks=[cb], **quick).fit(X, y)
    assert seen == [0, 1, 2]


def test_transform_from_threads_matches_serial(digits, quick):
    X, y = digits
    emb = TripletEmbedder(**quick).fit(X, y)
    chunks = np.array_split(X, 8)
    serial = [emb.transform(c) for c in chunks]

    def work(i):
        for _ in range(4):
            emb.transform(chunks[i])
        return emb.transform(chunks[i])

    for a, b in zip(serial, _in_threads(work, len(chunks))):
        np.testing.assert_array_equal(a, b)


def test_two_fits_in_threads_do_not_disturb_each_other(digits, quick):
    X, y = digits
    params = [dict(quick, random_state=0), dict(quick, random_state=1, margin=0.2)]
    serial = [TripletEmbedder(**p).fit(X, y).transform(X) for p in params]

    def work(i):
        return TripletEmbedder(**params[i]).fit(X, y).transform(X)

    for a, b in zip(serial, _in_threads(work, 2)):
        np.testing.assert_array_equal(a, b)


def _in_threads(work, n):
    """``[work(0), ..., work(n - 1)]``, each call in its own thread, all at once."""
    results = [None] * n

    def run(i):
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_verbose_fit_shows_progress_and_default_is_silent(digits, capfd, quick):
    X, y = digits
    TripletEmbedder(**quick).fit(X, y)
    assert "loss" not in capfd.readouterr().out
    TripletEmbedder(verbose=1, **quick).fit(X, y)
    out = capfd.readouterr().out
    assert "Epoch 1/3" in out and "loss:" in out and "active_fraction:" in out


def test_device_cpu_trains_like_auto_on_a_cpu_machine(digits, quick):
    from sktriplet.keras.devices import gpu_count

    if gpu_count():
        pytest.skip("this machine has a GPU, which device='auto' chooses")
    X, y = digits
    auto = TripletEmbedder(**{**quick, "device": "auto"}).fit(X, y).transform(X)
    cpu = TripletEmbedder(**quick).fit(X, y).transform(X)
    np.testing.assert_array_equal(auto, cpu)


@pytest.mark.gpu
@pytest.mark.backend
def test_training_on_the_gpu_matches_the_cpu_closely(digits, quick):
    """The same seed on either device: float32 sums in another order, so close,
    not bit-identical; and the fitted model transforms on the CPU as well."""
    X, y = digits
    gpu = TripletEmbedder(**{**quick, "device": "gpu"}).fit(X, y)
    cpu = TripletEmbedder(**quick).fit(X, y)
    np.testing.assert_allclose(gpu.transform(X), cpu.transform(X), atol=0.05)
    gpu.set_params(device="cpu")
    np.testing.assert_allclose(gpu.transform(X), cpu.transform(X), atol=0.05)


def test_device_gpu_without_a_gpu_is_a_clear_error(digits, quick):
    from sktriplet.keras.devices import gpu_count

    if gpu_count():
        pytest.skip("this machine has a GPU")
    X, y = digits
    with pytest.raises(ValueError, match="device='gpu' was asked for, but Keras"):
        TripletEmbedder(**{**quick, "device": "gpu"}).fit(X, y)


@pytest.mark.backend
def test_partial_fit_continues_training_and_accepts_new_classes(digits, quick):
    X, y = digits
    first = y < 5
    emb = TripletEmbedder(**quick)
    emb.partial_fit(X[first], y[first])
    assert emb.n_iter_ == 1 and emb.classes_.tolist() == [0, 1, 2, 3, 4]
    before = emb.score(X, y)
    for _ in range(4):
        emb.partial_fit(X, y)
    assert emb.n_iter_ == 5 and emb.classes_.tolist() == list(range(10))
    assert len(emb.history_["loss"]) == 5
    # No schedule across calls: each trains at the given rate.
    assert emb.history_["learning_rate"] == [pytest.approx(emb.learning_rate)] * 5
    assert emb.score(X, y) > before
    # Adam's step count runs on across the calls: two batches each (about
    # 200 rows in batches of 128, then 400 rows in batches of 250).
    state = emb._encoder.optimizer_state
    (steps,) = [v for v in state if v.dtype.kind == "i" and v.ndim == 0]
    assert steps == 10


@pytest.mark.parametrize("model", ["newly built", "reused from the pool"])
def test_partial_fit_trains_at_learning_rate_after_a_schedule_lowered_it(
    digits, quick, model, monkeypatch
):
    """The optimizer state that partial_fit continues holds the rate the
    fit's schedule ended at; the call trains at learning_rate all the same,
    whether its Keras model is built anew (as in a process that loaded the
    model) or taken from the pool (issue 44, item 2)."""
    from collections import OrderedDict

    from sktriplet.keras import pool

    X, y = digits
    emb = TripletEmbedder(**{**quick, "learning_rate_schedule": "cosine"}).fit(X, y)
    assert emb.history_["learning_rate"][-1] < emb.learning_rate / 2
    for _ in range(2):
        if model == "newly built":
            monkeypatch.setattr(pool, "_POOL", OrderedDict())
        emb.partial_fit(X, y)
        assert emb.history_["learning_rate"][-1] == pytest.approx(emb.learning_rate)


def test_partial_fit_validates_its_parameters_on_every_call(digits, quick):
    X, y = digits
    emb = TripletEmbedder(**quick).partial_fit(X, y)
    emb.set_params(margin=-1.0)
    with pytest.raises(ValueError, match="'margin' parameter"):
        emb.partial_fit(X, y)


def test_partial_fit_rejects_another_feature_count(digits, quick):
    X, y = digits
    emb = TripletEmbedder(**quick).partial_fit(X, y)
    before = emb.transform(X)
    with pytest.raises(ValueError, match="X has 10 features"):
        emb.partial_fit(X[:, :10], y)
    np.testing.assert_array_equal(emb.transform(X), before)


@pytest.mark.parametrize("dtype, cols", [("float32", 64), ("uint8", 256)])
def test_memmap_is_streamed_not_copied(tmp_path, dtype, cols):
    """Fitting and transforming a memmap allocate far less than its size, for
    a uint8 memmap (images, say) as for a float32 one: neither is converted.
    The peak of the process's anonymous memory is polled during both, so that
    a copy freed before ``fit`` returns counts too."""
    code = f"""
import threading, time
import numpy as np, sys
from sktriplet import TripletEmbedder
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
peak, polling = 0.0, True
def poll():
    global peak
    while polling:
        peak = max(peak, anon())
        time.sleep(0.001)
rows, cols = 300_000, {cols}
path = {str(tmp_path / "X.bin")!r}
X = np.memmap(path, {dtype!r}, "w+", shape=(rows, cols))
rng = np.random.RandomState(0)
for i in range(0, rows, 50_000):
    X[i:i + 50_000] = np.clip(100 + 30 * rng.normal(size=(50_000, cols)), 0, 255)
X.flush()
X = np.memmap(path, {dtype!r}, "r", shape=(rows, cols))
y = np.arange(rows) % 50
params = dict(mining="hard", batch_size=1024, epochs=1, random_state=0)
# A warm-up fit of 64 batches or more: it traces the step of 32 steps a call
# that the fit below runs, whose compiled code is no copy of the data.
TripletEmbedder(**params).fit(np.asarray(X[:65536]), y[:65536])
base = anon()
poller = threading.Thread(target=poll)
poller.start()
E = TripletEmbedder(**params).fit(X, y).transform(X)
polling = False
poller.join()
print((max(peak, anon()) - base - E.nbytes / 2**20) / (X.nbytes / 2**20))
"""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    share = float(out.stdout.strip().splitlines()[-1])
    print(f"fit + transform kept {share:.2f} x the memmap's size")
    assert share < 0.5, f"fit + transform kept {share:.2f} x the memmap's size"


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.backend
def test_mixed_precision_trains_with_float32_outputs(digits, precision):
    X, y = digits
    emb = TripletEmbedder(precision=precision, epochs=6, random_state=0).fit(X, y)
    inner = [layer for layer in emb.encoder_.layers if layer.name == "hidden_0"]
    assert inner and inner[0].dtype_policy.name == precision
    raw = np.asarray(emb.encoder_(X[:5].astype(np.float32), training=False))
    assert raw.dtype == np.float32
    assert np.isfinite(emb.history_["loss"]).all()
    # Normalised in float32, not rounded to 16 bits after: unit norm to 1e-6
    # (a unit vector rounded to float16 is off by up to about 1e-3).
    E = emb.transform(X)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-6)
    # The same weights computing in float32 embed within 16-bit rounding.
    from sktriplet.keras.encoders import _clone_layer

    exact = keras.models.clone_model(
        emb.encoder_, clone_function=lambda layer: _clone_layer(layer, "float32")
    )
    exact.set_weights(emb.encoder_.get_weights())
    E32 = np.asarray(exact(X.astype(np.float32), training=False))
    assert 0 < np.abs(E - E32).max() < 0.05
    reference = TripletEmbedder(epochs=6, random_state=0).fit(X, y)
    assert emb.score(X, y) > reference.score(X, y) - 0.05


@pytest.mark.parametrize(
    "n_samples, partial, expected",
    [(10_001, False, True), (10_000, False, False), (10_001, True, False)],
)
def test_early_stopping_auto_turns_on_for_large_fits_only(n_samples, partial, expected):
    """ "auto" holds out a validation set when fit gets more than 10000 samples
    (under the adaptive schedule)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_samples, 4)).astype(np.float32)
    y = np.arange(n_samples) % 10
    emb = TripletEmbedder(hidden_layer_sizes=(), n_components=2, epochs=1,
                          learning_rate_schedule="adaptive")  # fmt: skip
    assert emb.early_stopping == "auto"
    (emb.partial_fit if partial else emb.fit)(X, y)
    assert ("val_map_at_r" in emb.history_) is expected
    assert (emb.best_epoch_ is not None) is expected


def test_the_default_schedule_is_a_cosine_decay_on_large_data():
    """Above 10000 samples the "auto" schedule decays the rate on a half cosine
    over round(60 * sqrt(1600 / rows per class)) epochs (at most ``epochs``),
    without early stopping; below, it is the adaptive schedule."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(10_001, 4)).astype(np.float32)
    y = np.arange(len(X)) % 10
    params = dict(hidden_layer_sizes=(), n_components=2, random_state=0)
    emb = TripletEmbedder(epochs=4, **params).fit(X, y)
    assert emb.n_iter_ == 4 and "val_map_at_r" not in emb.history_
    np.testing.assert_allclose(
        emb.history_["learning_rate"], [1e-2, 0.853553e-2, 0.5e-2, 0.146447e-2],
        rtol=1e-5,
    )  # fmt: skip
    plan = plan_fit(TripletEmbedder(epochs=1000, **params).get_params(), X, y,
                    np.random.RandomState(0))  # fmt: skip
    assert (plan.schedule, plan.epochs) == ("cosine", 76)  # 1000 rows a class
    small = plan_fit(TripletEmbedder(**params).get_params(), X[:10_000], y[:10_000],
                     np.random.RandomState(0))  # fmt: skip
    assert (small.schedule, small.epochs) == ("adaptive", 200)


def test_early_stopping_auto_trains_on_when_classes_are_too_small_to_validate():
    """Many classes of a few samples each leave nothing to hold out: "auto" then
    trains on all the data and warns why, where early_stopping=True raises."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(10_200, 4)).astype(np.float32)
    y = np.arange(len(X)) % 2_040  # five samples per class
    params = dict(hidden_layer_sizes=(), n_components=2, epochs=1, random_state=0,
                  learning_rate_schedule="adaptive")  # fmt: skip
    msg = (
        "early_stopping='auto' holds out a validation set above 10000 samples, "
        "but not in this fit: early_stopping needs a validation set"
    )
    with pytest.warns(UserWarning, match=re.escape(msg)):
        emb = TripletEmbedder(**params).fit(X, y)
    assert "val_map_at_r" not in emb.history_ and emb.best_epoch_ is None
    with pytest.raises(ValueError, match="early_stopping needs a validation set"):
        TripletEmbedder(early_stopping=True, **params).fit(X, y)


@pytest.mark.parametrize(
    "mining, n_classes, expected",
    [("semihard", 2, 16), ("semihard", 8, 7), ("all", 2, None), ("all", 8, 7)],
)
def test_semihard_pairs_each_anchor_with_at_most_16_positives(
    digits, monkeypatch, mining, n_classes, expected, quick
):
    """Two classes in 64-row batches give 31 positives per anchor: semi-hard
    mining, whose cost grows with them, pairs 16 (every one when there are
    fewer); "all" pairs every one, on the sorted path that never builds the
    (batch, positives, batch) cube when they are many, on the cube (no sort)
    when they are few."""
    from sktriplet.keras import training

    seen = []
    original = training.siamese_model_for

    def spy(encoder, plan, *args):
        seen.append(plan.max_positives)
        return original(encoder, plan, *args)

    monkeypatch.setattr(training, "siamese_model_for", spy)
    X, y = digits
    TripletEmbedder(**{**quick, "epochs": 1}, batch_size=64, mining=mining).fit(
        X, y % n_classes
    )
    assert seen == [expected]


def test_tensorflow_reads_batches_through_a_pipeline_without_autotuning(digits):
    """Keras's own pipeline around a generator prefetches with AUTOTUNE, whose
    teardown stalls some fits (benchmarks/input_pipeline.py); ours prefetches,
    autotuning off, takes blocks of batches and yields the batches in order."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the pipeline is TensorFlow's")
    from sktriplet.keras.pipeline import input_of

    asked = []

    def blocks(k):
        asked.append(k)
        for start in range(0, 7, k):
            ids = np.arange(start, start + k)
            yield (
                np.broadcast_to(ids[:, None, None], (k, 4, 2)).astype(np.float32),
                (np.tile(np.arange(4), (k, 1))),
            )

    dataset = input_of(blocks, batches_needed=5)
    assert dataset.options().autotune.enabled is False
    assert [int(x[0, 0]) for x, _ in dataset.take(5)] == [0, 1, 2, 3, 4]
    assert asked[-1] == 5  # tiny batches: as many per block as the fit needs


_FITS_OF_SEVERAL_ARCHITECTURES = """
import sys
import numpy as np, tensorflow as tf, keras
from sktriplet import TripletEmbedder

X = np.random.RandomState(0).normal(size=(64, 6)).astype("float32")
y = np.arange(64) % 4


def encoder(width):
    def build():  # not a plain dense stack: transform runs the traced function
        inputs = keras.Input((6,))
        h = keras.layers.Dropout(0.1)(keras.layers.Dense(width)(inputs))
        return keras.Model(inputs, keras.layers.Dense(3)(h))
    return build


for width in range(4, 11):
    emb = TripletEmbedder(encoder=encoder(width), epochs=1, random_state=0)
    emb.fit(X, y).transform(X[: width])
print("USER-CODE", file=sys.stderr, flush=True)
f = tf.function(lambda x: x + 1)
for n in range(8):  # the user's own retracing still warns
    f(tf.zeros((n,)))
"""


def test_repeated_fits_and_transforms_raise_no_retracing_warning():
    """Fitting seven architectures and transforming with each traces sktriplet's
    step and inference function seven times, by design: TensorFlow's
    "triggered tf.function retracing" warning would blame the user.  The user's
    own retracing, after sktriplet's calls, still warns."""
    pytest.importorskip("tensorflow")
    out = subprocess.run(
        [sys.executable, "-c", _FITS_OF_SEVERAL_ARCHITECTURES],
        capture_output=True,
        text=True,
        env=dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="0"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    ours, marker, users = out.stderr.partition("USER-CODE")
    assert marker and "retracing" not in ours, ours[-2000:]
    assert "triggered tf.function retracing" in users, users[-2000:]
