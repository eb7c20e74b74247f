"""The training loop: batching, history, validation, early stopping, class
weights, divergence, determinism, and a real problem."""

import math
import re

import numpy as np
import pytest

import deepff
from _needs import require_module
from deepff import Callback, Dense, DivergenceError, EarlyStopping, InputError, Network, SpecError, Trainer
from deepff.regularizers import Penalty
from deepff.schedules import Plateau
from deepff.training import class_weights


def _blobs(n=60, d=4, k=3, seed=0):
    """A separable k-class problem: class means far apart."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centers = rng.normal(scale=3.0, size=(k, d))
    return centers[y] + rng.normal(size=(n, d)), y


def _clf(seed=0, dropout=0.0, dtype="float32", hidden=8):
    return Network([Dense(hidden, "relu", dropout=dropout), Dense(3, "softmax")], loss="nll", seed=seed,
                   dtype=dtype)


class Recorder(Callback):
    def __init__(self):
        self.events = []
        self.batches = []
        self.thetas = []
        self.grad_norms = []

    def on_train_begin(self, trainer):
        self.events.append("train_begin")

    def on_epoch_begin(self, trainer, epoch):
        self.events.append(f"epoch_begin {epoch}")

    def on_batch_end(self, trainer, step, batch_size, loss):
        self.batches.append((step, batch_size, loss))
        self.grad_norms.append(float(np.linalg.norm(trainer.network.params.grad)))

    def on_epoch_end(self, trainer, record):
        self.events.append(f"epoch_end {record['epoch']}")
        self.thetas.append(trainer.network.params.theta.copy())

    def on_train_end(self, trainer):
        self.events.append("train_end")


# ------------------------------------------------------------------ batching
def test_last_partial_batch_is_used():
    X, y = _blobs(n=10)
    rec = Recorder()
    net = _clf()
    history = net.fit(X, y, epochs=2, batch_size=4, callbacks=[rec])
    assert net.trainer_.step == 6                       # 3 steps per epoch: 4 + 4 + 2
    assert [b[1] for b in rec.batches] == [4, 4, 2, 4, 4, 2]
    assert [b[0] for b in rec.batches] == [1, 2, 3, 4, 5, 6]
    # the epoch loss is the sample-weighted mean of its batch losses
    first = rec.batches[:3]
    assert history["loss"][0] == pytest.approx(sum(m * J for _, m, J in first) / 10, rel=1e-6)
    assert rec.events == ["train_begin", "epoch_begin 0", "epoch_end 1", "epoch_begin 1", "epoch_end 2",
                          "train_end"]


def test_batch_larger_than_data_is_one_full_batch():
    X, y = _blobs(n=10)
    net = _clf()
    net.fit(X, y, epochs=3, batch_size=64)
    assert net.trainer_.step == 3


def test_every_sample_is_seen_once_per_epoch():
    """With a zero learning rate the epoch loss is the full-data training loss."""
    X, y = _blobs(n=10)
    net = _clf(dtype="float64")
    history = net.fit(X, y, epochs=2, batch_size=3, optimizer="sgd", lr=0.0)
    full = net.evaluate(X, y)["loss"]
    assert history["loss"] == pytest.approx([full, full], rel=1e-12)


# ------------------------------------------------------------------- history
def test_history_records():
    X, y = _blobs(n=40)
    Xv, yv = _blobs(n=20, seed=1)
    net = _clf()
    history = net.fit(X, y, epochs=4, batch_size=8, optimizer="sgd", lr=0.05, validation_data=(Xv, yv))
    assert len(history) == 4 and history is net.history_
    assert history["epoch"] == [1, 2, 3, 4]
    for r in history.records:
        assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= set(r)
        assert r["seconds"] >= 0 and 0 <= r["accuracy"] <= 1 and math.isfinite(r["val_loss"])
        assert r["lr"] == pytest.approx(0.05)
    # the last val_loss is the loss of the final weights on the validation data
    ev = net.evaluate(Xv, yv)
    assert history["val_loss"][-1] == pytest.approx(ev["loss"], rel=1e-5)
    assert history["val_accuracy"][-1] == pytest.approx(ev["accuracy"])
    assert history["loss"][-1] < history["loss"][0]
    assert not history.stopped_early and not history.interrupted


def test_regression_history_has_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    net = Network([Dense(1)], loss="mse", seed=0)
    history = net.fit(X, y, epochs=2, batch_size=10)
    assert "accuracy" not in history.records[0]
    ev = net.evaluate(X, y)
    assert {"loss", "mse", "mae", "r2"} <= set(ev)


def test_validation_split():
    X, y = _blobs(n=50)
    net = _clf()
    history = net.fit(X, y, epochs=2, batch_size=8, validation_split=0.2)
    assert net.trainer_.step == 2 * math.ceil(40 / 8)     # 10 samples held out
    assert all(math.isfinite(v) for v in history["val_loss"])
    again = _clf()
    again.fit(X, y, epochs=2, batch_size=8, validation_split=0.2)
    np.testing.assert_array_equal(again.get_weights(), net.get_weights())
    assert again.history_["val_loss"] == history["val_loss"]


@pytest.mark.parametrize("split", [1.0, -0.1, 1.5])
def test_bad_validation_split(split):
    X, y = _blobs(n=20)
    with pytest.raises(InputError, match="validation_split"):
        _clf().fit(X, y, epochs=1, validation_split=split)


# ------------------------------------------------------------ early stopping
def _overfitting_problem():
    """Random labels: training loss falls, validation loss soon rises."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 10))
    y = rng.integers(0, 3, size=40)
    Xv = rng.normal(size=(40, 10))
    yv = rng.integers(0, 3, size=40)
    return X, y, Xv, yv


def test_early_stopping_restores_the_best_epoch():
    X, y, Xv, yv = _overfitting_problem()
    rec = Recorder()
    net = Network([Dense(64, "relu"), Dense(3, "softmax")], loss="nll", seed=0, dtype="float64")
    history = net.fit(X, y, epochs=200, batch_size=8, optimizer="adam", lr=0.01, validation_data=(Xv, yv),
                      early_stopping={"patience": 3}, callbacks=[rec])
    val = history["val_loss"]
    best = int(np.argmin(val))
    assert history.stopped_early
    assert len(val) == best + 1 + 3                       # stopped after 3 epochs without improvement
    assert len(val) < 200 and best < len(val) - 1
    np.testing.assert_array_equal(net.get_weights(), rec.thetas[best])
    assert not np.array_equal(net.get_weights(), rec.thetas[-1])
    assert net.evaluate(Xv, yv)["loss"] == pytest.approx(val[best], rel=1e-12)


def test_early_stopping_without_restore_keeps_the_last_weights():
    X, y, Xv, yv = _overfitting_problem()
    rec = Recorder()
    net = Network([Dense(64, "relu"), Dense(3, "softmax")], loss="nll", seed=0, dtype="float64")
    net.fit(X, y, epochs=200, batch_size=8, optimizer="adam", lr=0.01, validation_data=(Xv, yv),
            early_stopping=EarlyStopping(patience=3, restore_best=False), callbacks=[rec])
    np.testing.assert_array_equal(net.get_weights(), rec.thetas[-1])


def test_early_stopping_min_delta_and_monitor_loss():
    X, y = _blobs(n=30)
    net = _clf()
    history = net.fit(X, y, epochs=50, batch_size=10, optimizer="sgd", lr=0.01,
                      early_stopping={"monitor": "loss", "patience": 2, "min_delta": 10.0})
    assert history.stopped_early and len(history) == 3    # nothing improves by 10


def test_early_stopping_needs_validation_data():
    X, y = _blobs(n=20)
    with pytest.raises(InputError, match="val_loss"):
        _clf().fit(X, y, epochs=2, early_stopping=True)


def test_early_stopping_on_accuracy_in_a_regression_says_there_is_none():
    """Adding validation data (the general advice) cannot help a regression: say what can."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    net = Network([Dense(4, "relu"), Dense(1)], loss="mse", seed=0)
    net.build(3)
    before = net.get_weights()
    with pytest.raises(InputError, match="this run is a regression, which has no accuracy; monitor 'val_loss'"):
        net.fit(X, X.sum(1), epochs=2, validation_split=0.2, early_stopping={"monitor": "val_accuracy"})
    np.testing.assert_array_equal(net.get_weights(), before)     # refused before the first step


# ------------------------------------------------------------- class weights
def test_balanced_class_weights_formula():
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 0])
    w = class_weights(labels, "balanced", 3)
    counts = np.array([7, 2, 3])
    np.testing.assert_allclose(w, (12 / (3 * counts))[labels], rtol=1e-15)
    np.testing.assert_allclose(np.bincount(labels, weights=w), [4, 4, 4])   # every class weighs n / k


def test_balanced_class_weights_match_sklearn():
    cw = require_module("sklearn.utils.class_weight", area="scikit-learn")
    labels = np.random.default_rng(0).choice(4, p=[0.6, 0.25, 0.1, 0.05], size=200)
    expected = cw.compute_class_weight("balanced", classes=np.arange(4), y=labels)
    np.testing.assert_allclose(class_weights(labels, "balanced", 4), expected[labels], rtol=1e-14)


def test_class_weight_dict_and_errors():
    labels = np.array([0, 1, 2, 1])
    np.testing.assert_array_equal(class_weights(labels, {1: 5.0}, 3), [1.0, 5.0, 1.0, 5.0])
    assert class_weights(labels, None, 3) is None
    with pytest.raises(InputError, match="class 3"):
        class_weights(labels, {3: 2.0}, 3)
    with pytest.raises(InputError, match="balanced"):
        class_weights(labels, "auto", 3)
    with pytest.raises(InputError, match="class True; valid classes are 0..2"):   # not taken for class 1
        class_weights(labels, {True: 5.0}, 3)


def test_class_weight_in_fit_equals_the_sample_weights():
    X, y = _blobs(n=30)
    y[:20] = 0                                           # imbalanced
    a = _clf(dtype="float64")
    a.fit(X, y, epochs=3, batch_size=8, class_weight="balanced")
    b = _clf(dtype="float64")
    b.fit(X, y, epochs=3, batch_size=8, sample_weight=class_weights(y, "balanced", 3))
    np.testing.assert_array_equal(a.get_weights(), b.get_weights())
    c = _clf(dtype="float64")
    c.fit(X, y, epochs=3, batch_size=8)
    assert not np.array_equal(a.get_weights(), c.get_weights())


def test_history_is_a_read_only_mapping_of_names_to_per_epoch_values():
    X, y = _blobs(n=30)
    history = _clf().fit(X, y, epochs=3, batch_size=8)
    assert list(history) == history.keys() and history.keys()[:2] == ["epoch", "loss"]
    assert "loss" in history and "val_loss" not in history and 0 not in history   # `in` used to hang
    assert history["epoch"] == [1, 2, 3] and len(history) == 3
    with pytest.raises(KeyError, match="'val_loss': no epoch recorded it; recorded: 'epoch', 'loss'"):
        history["val_loss"]
    with pytest.raises(TypeError, match=r"indexed by name.*history.records\[i\]"):
        history[0]
    assert deepff.History()["loss"] == []                       # an empty history has no names yet


def test_class_weight_on_a_regression_is_refused_not_ignored():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    net = Network([Dense(1, "linear")], loss="mse", seed=0)
    with pytest.raises(InputError, match="task is regression.*sample_weight"):
        net.fit(X, X.sum(axis=1), epochs=1, class_weight={0: 2.0})
    assert getattr(net, "trainer_", None) is None   # nothing was trained


# ---------------------------------------------------------------- divergence
def test_divergence_raises_with_a_helpful_message_and_finite_weights():
    X, y = _blobs(n=64, d=5)
    X = X * 1e6
    net = Network([Dense(8, "relu"), Dense(3, "softmax")], loss="nll", seed=0)
    with np.errstate(all="ignore"), pytest.raises(DivergenceError) as exc:
        net.fit(X, y, epochs=5, batch_size=16, optimizer="sgd", lr=1e3)
    msg = str(exc.value)
    assert "epoch 1" in msg and "step" in msg and "lower learning rate" in msg
    assert isinstance(exc.value, FloatingPointError) and isinstance(exc.value, deepff.DeepffError)
    assert np.isfinite(net.get_weights()).all()


def test_divergence_at_an_epoch_boundary_leaves_finite_weights():
    X = np.random.default_rng(0).normal(size=(32, 5)) * 1e6
    y = (X[:, 0] > 0).astype(int)
    net = Network([Dense(8, "relu"), Dense(8, "relu"), Dense(2, "softmax")], loss="nll", seed=9)
    with np.errstate(all="ignore"), pytest.raises(DivergenceError):
        net.fit(X, y, epochs=10, batch_size=32, optimizer="sgd", lr=1e3)   # one step per epoch
    assert np.isfinite(net.get_weights()).all()



def test_an_update_that_overflows_on_the_last_step_is_divergence_not_a_finished_fit():
    """The loss is checked before each update: an epoch's last update would otherwise end the fit with NaN weights."""
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(int)
    net = Network([Dense(4, "relu"), Dense(2, "softmax")], loss="nll", seed=0)
    seen = []

    class Watch(deepff.Callback):
        def on_epoch_end(self, trainer, record):
            seen.append(np.isfinite(trainer.network.params.theta).all())

    with np.errstate(all="ignore"), pytest.raises(DivergenceError, match="weights became NaN or infinite at "
                                                                        "epoch 1, step 1"):
        net.fit(X, y, epochs=1, batch_size=20, optimizer="sgd", lr=1e308, callbacks=[Watch()])
    assert seen == []                               # no callback (a checkpoint, say) saw those weights
    assert np.isfinite(net.get_weights()).all()


# --------------------------------------------------------------- determinism
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_same_seed_bit_identical_after_fit(dropout):
    X, y = _blobs(n=50)
    runs = []
    for seed in (5, 5, 6):
        net = _clf(seed=seed, dropout=dropout)
        net.fit(X, y, epochs=3, batch_size=8, optimizer="adam", lr=0.01)
        runs.append(net.get_weights())
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_dropout_changes_the_trajectory():
    X, y = _blobs(n=50)
    a, b = _clf(seed=5), _clf(seed=5, dropout=0.3)
    a.fit(X, y, epochs=2, batch_size=8)
    b.fit(X, y, epochs=2, batch_size=8)
    assert not np.array_equal(a.get_weights(), b.get_weights())


def test_dtypes_after_fit():
    X, y = _blobs(n=20)
    n32 = _clf()
    n32.fit(X.astype(np.int64), y, epochs=1)
    assert n32.dtype == np.float32 and n32.get_weights().dtype == np.float32
    n64 = _clf(dtype="float64")
    n64.fit(X.astype(np.float32), y, epochs=1)
    assert n64.get_weights().dtype == np.float64 and n64.predict_output(X).dtype == np.float64


def test_resume_from_state_dict_is_bit_identical():
    X, y = _blobs(n=30)
    straight = _clf(seed=2, dropout=0.2)
    straight.fit(X, y, epochs=4, batch_size=8, optimizer="adam", lr=0.01)
    first = _clf(seed=2, dropout=0.2)
    first.fit(X, y, epochs=2, batch_size=8, optimizer="adam", lr=0.01)
    state = first.trainer_.state_dict()
    resumed = _clf(seed=99, dropout=0.2)
    resumed.build(4)
    resumed.fit(X, y, epochs=4, batch_size=8, optimizer="adam", lr=0.01, resume_state=state)
    np.testing.assert_array_equal(resumed.get_weights(), straight.get_weights())
    assert resumed.history_["loss"] == straight.history_["loss"]


def test_warm_start_continues_the_same_trainer():
    X, y = _blobs(n=20)
    net = _clf()
    net.fit(X, y, epochs=2, batch_size=10, optimizer="adam")
    trainer = net.trainer_
    net.fit(X, y, epochs=3, batch_size=10, warm_start=True)
    assert net.trainer_ is trainer and trainer.epoch == 5 and trainer.step == 10
    assert net.trainer_.optimizer.t == 10


# ------------------------------------------------------- penalties, clipping
def test_l2_regularization_shrinks_weights():
    X, y = _blobs(n=60)
    plain, reg = _clf(dtype="float64"), _clf(dtype="float64")
    plain.fit(X, y, epochs=20, batch_size=10, optimizer="sgd", lr=0.05)
    history = reg.fit(X, y, epochs=20, batch_size=10, optimizer="sgd", lr=0.05, regularization={"l2": 0.5})
    w_plain = np.concatenate([layer.W.ravel() for layer in plain.layers])
    w_reg = np.concatenate([layer.W.ravel() for layer in reg.layers])
    assert np.linalg.norm(w_reg) < 0.8 * np.linalg.norm(w_plain)
    # the reported loss includes the penalty: it exceeds the plain data loss
    assert history["loss"][-1] > reg.evaluate(X, y)["loss"]


def test_clip_norm_bounds_every_step():
    X, y = _blobs(n=40)
    X = X * 10
    rec = Recorder()
    net = _clf(dtype="float64")
    net.fit(X, y, epochs=2, batch_size=8, optimizer="sgd", lr=0.01, clip_norm=0.5, callbacks=[rec])
    assert max(rec.grad_norms) <= 0.5 + 1e-9
    assert max(rec.grad_norms) > 0.49                     # clipping was active


def test_trainer_rejects_bad_settings():
    net = _clf()
    net.build(4)
    for kw in ({"epochs": 0}, {"batch_size": 0}, {"batch_size": 2.5}, {"clip_norm": -1.0}):
        with pytest.raises(SpecError):
            Trainer(net, **kw)


def test_trainer_used_directly():
    X, y = _blobs(n=24)
    net = _clf(dtype="float64")
    net.build(4)
    Xp, Y = net.prepare_inputs(X), net.prepare_targets(y, 24)
    trainer = Trainer(net, optimizer={"name": "sgd", "lr": 0.1}, epochs=3, batch_size=5)
    history = trainer.fit(Xp, Y)
    assert trainer.step == 3 * 5 and trainer.epoch == 3 and len(history) == 3


# ------------------------------------------------------------- real problem
def test_digits_reaches_a_sensible_accuracy():
    datasets = require_module("sklearn.datasets", area="scikit-learn")
    model_selection = require_module("sklearn.model_selection", area="scikit-learn")
    X, y = datasets.load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = model_selection.train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    net = Network([Dense(64, "relu"), Dense(32, "relu"), Dense(10, "softmax")], loss="nll", seed=0)
    history = net.fit(Xtr, ytr, epochs=15, batch_size=32, optimizer="adam", lr=1e-3)
    accuracy = float(np.mean(net.predict(Xte) == yte))
    assert accuracy >= 0.9, accuracy
    assert history["loss"][-1] < 0.3 * history["loss"][0]
    assert net.evaluate(Xte, yte)["accuracy"] == pytest.approx(accuracy)


def test_synthetic_separable_problem_with_sgd():
    X, y = _blobs(n=300, d=5, k=3, seed=3)
    Xte, yte = X[240:], y[240:]
    net = Network([Dense(16, "relu"), Dense(16, "relu"), Dense(3, "softmax")], loss="nll", seed=1)
    net.fit(X[:240], y[:240], epochs=20, batch_size=16, optimizer="sgd", lr=0.05)
    assert np.mean(net.predict(Xte) == yte) >= 0.95


@pytest.mark.parametrize("out,loss,n_classes", [("softmax", "neg_log_likelihood", 3),
                                                ("sigmoid", "binary_cross_entropy", 2)])
def test_running_training_accuracy_counts_each_row_once(out, loss, n_classes):
    """With lr = 0 the weights never move, so the per-step accuracy summed over an
    epoch (shuffled, last batch short) is the accuracy of the network on the whole set."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(203, 4))
    y = rng.integers(0, n_classes, 203)
    units = n_classes if out == "softmax" else 1
    net = deepff.Network([deepff.Dense(6, "tanh"), deepff.Dense(units, out)], loss=loss, seed=3)
    history = net.fit(X, y, epochs=2, batch_size=32, optimizer={"name": "sgd", "lr": 0.0})
    expected = float(np.mean(net.predict(X) == y))
    assert 0 < expected < 1
    assert history["accuracy"] == [pytest.approx(expected, abs=1e-12)] * 2


# ------------------------------------------- objects reused across runs
def test_one_early_stopping_object_configures_independent_runs():
    """A reused EarlyStopping starts clean: no stale best epoch, no foreign weights."""
    X, y = _blobs(n=60)
    es = EarlyStopping(patience=2)
    a = _clf(seed=0)
    a.fit(X, y, epochs=30, optimizer="adam", lr=0.01, validation_split=0.25, early_stopping=es)
    b = _clf(seed=1)
    b.fit(X, y, epochs=5, optimizer="sgd", lr=1e-4, validation_split=0.25, early_stopping=es)
    assert len(b.history_["loss"]) == 5            # its own patience, not a's best loss
    assert not np.array_equal(a.get_weights(), b.get_weights())
    narrow = _clf(seed=1, hidden=4)                # another size: no broadcast error
    narrow.fit(X, y, epochs=2, validation_split=0.25, early_stopping=es)
    assert es.best is None and es.best_theta is None   # the caller's object is untouched
    assert b.trainer_.early_stopping.best_epoch is not None


def test_an_optimizer_object_is_a_template_never_changed():
    X, y = _blobs(n=40)
    opt = deepff.optimizers.Adam(lr=0.01)
    first = _clf().fit(X, y, epochs=3, optimizer=opt)
    second = _clf().fit(X, y, epochs=3, optimizer=opt)
    assert first["loss"] == second["loss"]         # no moments carried from the first run
    assert opt.t == 0 and opt.state == {}
    sgd = deepff.optimizers.SGD(lr=0.1)
    net = _clf()
    net.fit(X, y, epochs=1, optimizer=sgd, lr=0.5)
    assert sgd.lr == 0.1 and net.trainer_.optimizer.lr == 0.5


@pytest.mark.parametrize("lr", [-0.5, "fast", float("nan"), True])
def test_fit_checks_the_learning_rate(lr):
    X, y = _blobs(n=20)
    with pytest.raises(SpecError, match="lr must be >= 0"):
        _clf().fit(X, y, epochs=1, lr=lr)


def test_warm_start_refuses_new_settings_but_takes_a_new_rate():
    X, y = _blobs(n=20)
    net = _clf()
    net.fit(X, y, epochs=1, optimizer="sgd", lr=0.01)
    with pytest.raises(InputError, match="warm_start=True.*optimizer, schedule"):
        net.fit(X, y, epochs=1, optimizer="adam", schedule="cosine", warm_start=True)
    net.fit(X, y, epochs=1, lr=0.05, warm_start=True)
    assert net.trainer_.optimizer.lr == 0.05 and net.trainer_.epoch == 2
    with pytest.raises(SpecError, match="lr must be >= 0"):
        net.fit(X, y, epochs=1, lr=-1.0, warm_start=True)


@pytest.mark.parametrize("bad, match", [
    (dict(validation_split=0.95), "leaves none to train on"),
    (dict(validation_data=(np.zeros((2, 4)),)), "pair"),
    (dict(validation_split="a"), "validation_split"),
])
def test_fit_names_bad_validation_settings(bad, match):
    X, y = _blobs(n=3)
    with pytest.raises(InputError, match=match):
        _clf().fit(X, y, epochs=1, **bad)


def test_a_lengthened_resume_keeps_annealing_over_the_whole_run():
    """cosine without total_steps spans the run: resumed to 4 epochs it does not sit at lr 0."""
    X, y = _blobs(n=40)
    first = _clf()
    first.fit(X, y, epochs=2, batch_size=10, optimizer="sgd", lr=0.1, schedule="cosine")
    state = first.trainer_.state_dict()
    resumed = _clf(seed=5)
    resumed.build(4)
    resumed.fit(X, y, epochs=4, batch_size=10, optimizer="sgd", lr=0.1, schedule="cosine",
                resume_state=state)
    lrs = resumed.history_["lr"]
    straight = _clf()
    straight.fit(X, y, epochs=4, batch_size=10, optimizer="sgd", lr=0.1, schedule="cosine")
    assert lrs[:2] == first.history_["lr"] and lrs[2] > 2 * lrs[1]
    assert lrs[2:] == straight.history_["lr"][2:]   # the same place on the 4-epoch curve
    # resuming to the same length is still exact
    again = _clf(seed=5)
    again.build(4)
    again.fit(X, y, epochs=2, batch_size=10, optimizer="sgd", lr=0.1, schedule="cosine",
              resume_state=state)
    np.testing.assert_array_equal(again.get_weights(), first.get_weights())


def test_lbfgs_stops_after_the_iteration_in_which_stop_was_requested():
    X, y = _blobs(n=60)
    full = _clf(dtype="float64")
    full.fit(X, y, epochs=1, optimizer={"name": "lbfgs", "max_iter": 50})
    net = _clf(dtype="float64")
    with pytest.raises(InputError, match="built network"):
        Trainer(net)
    net.build(4)
    calls = {"n": 0}
    backward = net.backward

    def counting_backward(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            net.trainer_.request_stop()
        return backward(*args, **kwargs)

    net.backward = counting_backward
    trainer = Trainer(net, optimizer={"name": "lbfgs", "max_iter": 50})
    net.trainer_ = trainer
    trainer.fit(net.prepare_inputs(X), net.prepare_targets(y, 60))
    assert trainer.history.interrupted and trainer.stop_requested
    assert trainer.step < full.trainer_.step and trainer.step <= 3


def test_trainer_fit_names_unprepared_arrays():
    X, y = _blobs(n=20)
    net = _clf()
    net.build(4)
    trainer = Trainer(net, epochs=1)
    Xp, Yp = net.prepare_inputs(X), net.prepare_targets(y, 20)
    with pytest.raises(InputError, match=r"Y of shape \(20, 3\).*prepare_targets"):
        trainer.fit(Xp, y)                          # raw labels
    with pytest.raises(InputError, match="dtype float32"):
        trainer.fit(X, Yp)                          # float64 data for a float32 network
    with pytest.raises(InputError, match="sample_weight of shape"):
        trainer.fit(Xp, Yp, sample_weight=[1.0] * 20)
    assert trainer.epoch == 0


def test_balanced_weights_count_only_the_classes_present():
    """3 output units, 2 classes in y: scikit-learn's weights for the classes it sees."""
    cw = require_module("sklearn.utils.class_weight", area="scikit-learn")
    labels = np.array([0, 0, 0, 1])
    expected = cw.compute_class_weight("balanced", classes=np.array([0, 1]), y=labels)
    np.testing.assert_allclose(class_weights(labels, "balanced", 3), expected[labels], rtol=1e-15)


@pytest.mark.parametrize("weight", [-1.0, "abc", float("nan"), float("inf"), True])
def test_class_weight_values_are_checked(weight):
    with pytest.raises(InputError, match="class_weight for class 1 must be a finite number >= 0"):
        class_weights(np.array([0, 1]), {1: weight}, 2)


def test_evaluate_weights_every_figure():
    X, y = _blobs(n=40)
    net = _clf(dtype="float64")
    net.fit(X, y, epochs=1, lr=0.01)
    w = np.random.default_rng(1).uniform(0.1, 3.0, 40)
    hits = net.predict(X) == y
    got = net.evaluate(X, y, sample_weight=w)
    assert got["accuracy"] == pytest.approx(np.dot(w, hits) / w.sum(), rel=1e-12)
    assert net.evaluate(X, y)["accuracy"] == pytest.approx(hits.mean(), rel=1e-12)


def test_weighted_regression_report_matches_scikit_learn():
    metrics = require_module("sklearn.metrics", area="scikit-learn")
    rng = np.random.default_rng(0)
    yt, yp, w = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)), rng.uniform(0.1, 2, 30)
    from deepff.metrics import regression_report

    rep = regression_report(yt, yp, w)
    assert rep["mse"] == pytest.approx(metrics.mean_squared_error(yt, yp, sample_weight=w), rel=1e-12)
    assert rep["mae"] == pytest.approx(metrics.mean_absolute_error(yt, yp, sample_weight=w), rel=1e-12)
    assert rep["r2"] == pytest.approx(metrics.r2_score(yt, yp, sample_weight=w), rel=1e-12)
    plain = regression_report(yt, yp)
    assert plain["r2"] == pytest.approx(metrics.r2_score(yt, yp), rel=1e-12)


@pytest.mark.parametrize("clip", [float("inf"), 0.0, "1", True])
def test_trainer_clip_norm_is_checked(clip):
    net = _clf()
    net.build(4)
    with pytest.raises(SpecError, match="clip_norm must be a finite positive number"):
        Trainer(net, clip_norm=clip)


def test_class_weight_reaches_a_single_sigmoid_unit():
    X, y = _blobs(n=40, k=2)
    make = lambda: Network([Dense(4, "relu"), Dense(1, "sigmoid")], loss="bce", seed=0, dtype="float64")  # noqa: E731
    plain, weighted, explicit = make(), make(), make()
    plain.fit(X, y, epochs=2, batch_size=8)
    weighted.fit(X, y, epochs=2, batch_size=8, class_weight={1: 5.0})
    explicit.fit(X, y, epochs=2, batch_size=8, sample_weight=np.where(y == 1, 5.0, 1.0))
    assert not np.array_equal(plain.get_weights(), weighted.get_weights())
    np.testing.assert_array_equal(weighted.get_weights(), explicit.get_weights())
    multi = Network([Dense(2, "sigmoid")], loss="bce", seed=0)
    with pytest.raises(InputError, match="independent labels; pass sample_weight"):
        multi.fit(X, np.c_[y, 1 - y], epochs=1, class_weight="balanced")


def test_evaluate_refuses_weights_that_sum_to_zero():
    X, y = _blobs(n=20)
    net = _clf()
    net.fit(X, y, epochs=1)
    with pytest.raises(InputError, match="sample_weight sums to 0"):
        net.evaluate(X, y, sample_weight=np.zeros(20))


def test_lbfgs_resumed_at_its_minimum_adds_no_history_row():
    X, y = _blobs(n=60)
    net = _clf(dtype="float64")
    net.fit(X, y, epochs=1, optimizer={"name": "lbfgs", "max_iter": 500})
    state = net.trainer_.state_dict()
    again = _clf(seed=3, dtype="float64")
    again.build(4)
    again.fit(X, y, epochs=1, optimizer={"name": "lbfgs", "max_iter": 500}, resume_state=state)
    assert again.history_["epoch"] == net.history_["epoch"]
    np.testing.assert_array_equal(again.get_weights(), net.get_weights())


# ------------------------------------------------ continuing and checking a fit
def test_warm_start_after_early_stopping_trains_the_epochs_asked_for():
    X, y = _blobs(n=30)
    net = _clf(dtype="float64")
    net.fit(X, y, epochs=50, early_stopping={"monitor": "loss", "patience": 1, "min_delta": 10})
    assert net.history_.stopped_early and len(net.history_) == 2
    steps = net.trainer_.step
    history = net.fit(X, y, epochs=5, warm_start=True)     # used to train nothing, silently
    # the carried-over early stopping counts its patience afresh: one more epoch without a
    # 10-point gain, and it stops again (and puts back the best epoch's weights, epoch 1's)
    assert history["epoch"] == [1, 2, 3] and history.stopped_early
    assert net.trainer_.step == steps + 1                  # one epoch of one batch of 30


def test_warm_start_after_a_stop_request_ends_uninterrupted_and_restores_the_best_epoch():
    X, y = _blobs(n=40)
    Xv, yv = _blobs(n=30, seed=1)

    class StopAtStep2(Callback):
        def on_batch_end(self, trainer, step, batch_size, loss):
            if step == 2:
                trainer.request_stop()

    net = _clf(dtype="float64")
    net.fit(X, y, epochs=3, batch_size=8, lr=0.5, validation_data=(Xv, yv), early_stopping={"patience": 50},
            callbacks=[StopAtStep2()])
    assert net.history_.interrupted
    history = net.fit(X, y, epochs=6, warm_start=True, validation_data=(Xv, yv))
    assert not history.interrupted
    best = int(np.argmin(history["val_loss"]))
    assert net.evaluate(Xv, yv)["loss"] == pytest.approx(history["val_loss"][best], rel=1e-9)


@pytest.mark.parametrize("kw, match", [({"epochs": -5}, "epochs must be a positive integer, got -5"),
                                       ({"epochs": 2.7}, "epochs must be a positive integer"),
                                       ({"batch_size": 0}, "batch_size must be a positive integer, got 0")])
def test_warm_start_checks_epochs_and_batch_size(kw, match):
    X, y = _blobs(n=30)
    net = _clf()
    net.fit(X, y, epochs=1)
    with pytest.raises(SpecError, match=match):
        net.fit(X, y, **{"epochs": 1, **kw}, warm_start=True)


def test_warm_start_keeps_the_runs_batch_size_unless_given():
    """fit(warm_start=True) continues the run at its own batch size (it once fell back to 32 silently)."""
    X, y = _blobs(n=30)
    net = _clf(dtype="float64")
    net.fit(X, y, epochs=1, batch_size=8)
    step = net.trainer_.step
    net.fit(X, y, epochs=1, warm_start=True)
    assert net.trainer_.batch_size == 8 and net.trainer_.step == step + 4      # 30 rows: 4 batches of <= 8
    net.fit(X, y, epochs=1, batch_size=15, warm_start=True)
    assert net.trainer_.batch_size == 15 and net.trainer_.step == step + 6
    net.fit(X, y, epochs=1)                                # a new run: fit's default
    assert net.trainer_.batch_size == 32 and net.trainer_.step == 1


def test_warm_start_applies_shuffle():
    X, y = _blobs(n=30)
    a, b = _clf(dtype="float64"), _clf(dtype="float64")
    for net in (a, b):
        net.fit(X, y, epochs=1, batch_size=8)
    a.fit(X, y, epochs=1, batch_size=8, shuffle=False, warm_start=True)
    assert a.trainer_.shuffle is False
    b.fit(X, y, epochs=1, batch_size=8, warm_start=True)
    assert not np.array_equal(a.get_weights(), b.get_weights())


def test_a_fit_refused_for_its_data_leaves_the_network_unbuilt():
    X, y = _blobs(n=30)
    net = _clf()
    with pytest.raises(InputError, match="X has 4 samples but y has 30"):
        net.fit(X.T, y)                                    # a transposed X
    assert not net.built
    net.fit(X, y, epochs=1)                                # the corrected call works
    assert net.n_features == 4


def test_early_stopping_without_validation_is_refused_before_any_step():
    X, y = _blobs(n=30)
    net = _clf()
    net.build(4)
    before = net.get_weights().copy()
    with pytest.raises(InputError, match="monitors 'val_loss', which this run does not compute"):
        net.fit(X, y, epochs=3, early_stopping=True)
    np.testing.assert_array_equal(net.get_weights(), before)


def test_trainer_checks_the_validation_arrays_before_training():
    X, y = _blobs(n=30)
    net = _clf()
    net.build(4)
    Xp, Yp = net.prepare_inputs(X), net.prepare_targets(y, 30)
    before = net.get_weights().copy()
    with pytest.raises(InputError, match="needs validation Y of shape \\(30, 3\\)"):
        Trainer(net, epochs=2).fit(Xp, Yp, validation_data=(Xp, y))     # raw labels
    with pytest.raises(InputError, match="validation_data as \\(X_val, Y_val\\)"):
        Trainer(net, epochs=2).fit(Xp, Yp, validation_data=Xp)
    np.testing.assert_array_equal(net.get_weights(), before)


def test_sample_weight_must_be_one_weight_per_sample():
    X, y = _blobs(n=30)
    with pytest.raises(InputError, match="sample_weight must be 1-D, one weight per sample, got .*\\(15, 2\\)"):
        _clf().fit(X, y, epochs=1, sample_weight=np.ones((15, 2)))
    _clf().fit(X, y, epochs=1, sample_weight=np.ones((30, 1)))     # a column is fine


def test_callbacks_must_be_callback_objects():
    X, y = _blobs(n=30)
    with pytest.raises(SpecError, match="callbacks must be deepff.Callback objects .subclass Callback"):
        _clf().fit(X, y, epochs=1, callbacks=[object()])
    seen = []

    class Count(Callback):
        def on_epoch_end(self, trainer, record):
            seen.append(record["epoch"])

    _clf().fit(X, y, epochs=2, callbacks=Count())                 # a single callback is taken
    assert seen == [1, 2]

    class Duck:                                                   # and any object with every hook
        def __getattr__(self, name):
            if name.startswith("on_"):
                return lambda *args: seen.append(name)
            raise AttributeError(name)

    _clf().fit(X, y, epochs=1, callbacks=(cb for cb in [Duck()]))
    assert seen[2:] == ["on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_train_end"]


def test_divergence_is_a_value_error():
    assert issubclass(DivergenceError, ValueError) and issubclass(DivergenceError, FloatingPointError)


# ------------------------------------------- what L-BFGS and the weights refuse
def _lbfgs_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    return X, (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize(("layer", "fit_kw", "named"), [
    (Dense(16, "relu"), {"clip_norm": 1.0}, "clip_norm"),
    (Dense(16, "relu"), {"schedule": "cosine"}, "schedule"),
    (Dense(16, "relu", max_norm=0.5), {}, "max_norm (layer 0)"),
    (Dense(16, "relu", dropout=0.5), {}, "dropout (layer 0"),
])
def test_lbfgs_refuses_settings_it_would_ignore(layer, fit_kw, named):
    X, y = _lbfgs_data()
    net = Network([layer, Dense(2, "softmax")], loss="nll", seed=0)
    with pytest.raises(SpecError, match=re.escape(f"takes no {named}")):
        net.fit(X, y, optimizer={"name": "lbfgs", "max_iter": 5}, **fit_kw)


def test_lbfgs_refuses_a_learning_rate():
    X, y = _lbfgs_data()
    net = Network([Dense(4, "relu"), Dense(2, "softmax")], loss="nll", seed=0)
    with pytest.raises(InputError, match="lr does not apply to optimizer 'lbfgs'"):
        net.fit(X, y, optimizer="lbfgs", lr=0.1)


@pytest.mark.parametrize(("kw", "message"), [
    ({"sample_weight": np.zeros(64)}, "sample_weight gives the samples a total weight of 0"),
    ({"class_weight": {0: 0.0, 1: 0.0}}, "class_weight gives the samples a total weight of 0"),
    ({"class_weight": {0: 1e39}}, "class_weight holds values too large for float32"),
    ({"sample_weight": np.full(64, 1e39)}, "sample_weight holds values too large for float32"),
    ({"sample_weight": np.full(64, 1e30), "class_weight": {0: 1e30}}, "sample_weight times class_weight overflows"),
])
def test_fit_refuses_weights_that_train_nothing_or_overflow(kw, message):
    X, y = _lbfgs_data()
    net = Network([Dense(2, "softmax")], loss="nll", seed=0)
    with pytest.raises(InputError, match=re.escape(message)):
        net.fit(X, y, epochs=1, **kw)


def test_targets_too_large_for_float32_are_named_before_training():
    X, _ = _lbfgs_data()
    net = Network([Dense(1, "identity")], loss="mse", seed=0)
    with pytest.raises(InputError, match=r"y holds values too large for float32 \(largest 3.4e\+38\)"):
        net.fit(X, np.full(64, 1e39), epochs=1)
    with pytest.raises(InputError, match="too large for float32"):
        net.fit(X, np.zeros(64), epochs=1, validation_data=(X[:2], [1e39, 0.0]))
    f64 = Network([Dense(1, "identity")], loss="mse", seed=0, dtype="float64")
    f64.fit(X, np.ones(64), epochs=1)
    assert f64.evaluate(X[:2], [1e39, 0.0])["loss"] > 1e70    # float64 holds such targets: no refusal


def test_resume_state_refuses_what_would_not_continue_the_run():
    """The CLI refuses these for --resume; fit(resume_state=...) does too, before training anything."""
    X, y = _blobs(n=30)
    first = _clf(seed=2)
    first.fit(X, y, epochs=2, batch_size=8, optimizer="adam", lr=0.01)
    state = first.trainer_.state_dict()

    def resume(**kw):
        net = _clf(seed=2)
        net.build(4)
        before = net.get_weights()
        with pytest.raises(InputError) as exc:
            net.fit(X, y, **{"epochs": 4, "batch_size": 8, "optimizer": "adam", **kw})
        np.testing.assert_array_equal(net.get_weights(), before)    # refused before anything was restored
        return str(exc.value)

    msg = resume(lr=0.5, resume_state=state)
    assert "learning rate 0.01" in msg and "drop lr" in msg
    msg = resume(epochs=1, resume_state=state)
    assert "has done 2 already" in msg and "at least 2" in msg
    for bad, says in (({}, "lacks 'epoch'"), ("x", "got str"), ({**state, "theta": state["theta"][:-1]},
                                                                  "another architecture")):
        net = _clf(seed=2)
        net.build(4)
        before = net.get_weights()
        with pytest.raises(InputError, match=says):
            net.fit(X, y, epochs=4, resume_state=bad)
        np.testing.assert_array_equal(net.get_weights(), before)    # nothing half-restored
    # the saved run's own lr is fine (the natural call: the original fit's arguments, plus the state)
    ok = _clf(seed=2)
    ok.build(4)
    ok.fit(X, y, epochs=3, batch_size=8, optimizer="adam", lr=0.01, resume_state=state)
    assert ok.trainer_.epoch == 3


class _StopAt(deepff.Callback):
    """Ask the trainer to stop after a given step (a Ctrl-C mid-epoch, as the CLI sees it)."""

    def __init__(self, step):
        self.at = step

    def on_batch_end(self, trainer, step, batch_size, loss):
        if step == self.at:
            trainer.request_stop()


def test_resume_on_other_data_is_refused_unless_on_purpose():
    """A mid-epoch state resumed on other data used to restart that epoch silently."""
    X, y = _blobs(n=30)
    first = _clf(seed=2)
    first.fit(X, y, epochs=3, batch_size=8, optimizer="adam", lr=0.01, callbacks=[_StopAt(5)])
    state = first.trainer_.state_dict()
    assert state["epoch_position"] > 0 and state["data"]["shape"] == [30, 4]

    def resume(X_, y_, **kw):
        net = _clf(seed=2)
        net.build(4)
        before = net.get_weights()
        with pytest.raises(InputError) as exc:
            net.fit(X_, y_, epochs=3, batch_size=8, optimizer="adam", resume_state=state, **kw)
        np.testing.assert_array_equal(net.get_weights(), before)    # refused before anything ran
        return str(exc.value)

    assert "data of shape (30, 4), this data is (24, 4)" in resume(X[:24], y[:24])
    shuffled = np.random.default_rng(1).permutation(30)
    assert "other rows of the same shape (30, 4)" in resume(X[shuffled], y[shuffled])
    relabelled = y.copy()
    relabelled[0] = (y[0] + 1) % 3                                    # the same inputs, one label changed
    assert "other rows of the same shape (30, 4)" in resume(X, relabelled)
    assert "resume_on_new_data=True" in resume(X[:24], y[:24])
    # on purpose: it continues (the interrupted epoch restarts on the new sample count)
    net = _clf(seed=2)
    net.build(4)
    net.fit(X[:24], y[:24], epochs=3, batch_size=8, optimizer="adam", resume_state=state, resume_on_new_data=True)
    assert net.trainer_.epoch == 3
    # on the same data it continues exactly as the uninterrupted run
    whole = _clf(seed=2)
    whole.fit(X, y, epochs=3, batch_size=8, optimizer="adam", lr=0.01)
    same = _clf(seed=2)
    same.build(4)
    same.fit(X, y, epochs=3, batch_size=8, optimizer="adam", resume_state=state)
    np.testing.assert_array_equal(same.get_weights(), whole.get_weights())


@pytest.mark.parametrize("flag", ["shuffle", "warm_start"])
@pytest.mark.parametrize("value", ["no", 0, None, "False"])
def test_boolean_switches_refuse_other_values(flag, value):
    """bool("no") is True: a switch given a string or a number is refused, not guessed."""
    X, y = _blobs(n=20)
    net = _clf()
    with pytest.raises(InputError, match=rf"{flag} must be True or False, got {value!r}"):
        net.fit(X, y, epochs=1, **{flag: value})
    assert not net.built          # refused before anything was built or trained


# ----------------------------------------------------------------------------
# the Trainer's hooks (what the scikit-learn estimators use; general, usable from Network.fit)
# ----------------------------------------------------------------------------

def _regression_trainer(**kwargs):
    net = deepff.FeedForward([Dense(4, "tanh"), Dense(1)], loss="mse", n_features=3, dtype="float64", seed=0)
    return net, Trainer(net, optimizer={"name": "sgd", "lr": 0.05}, batch_size=8, **kwargs)


def test_row_order_decides_the_rows_of_every_batch():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(24, 3)), rng.normal(size=(24, 1))
    orders = [np.arange(24)[::-1].copy(), rng.permutation(24)]
    net, t = _regression_trainer(epochs=2)
    t.row_order = lambda n: orders[t.epoch]
    from deepff import _fused_step

    batches = []
    forward = net.forward

    def record(x, training=False):
        if training:
            batches.append(x.copy())
        return forward(x, training=training)

    net.forward = record
    assert _fused_step.plan(t, X, Y, None, 8) is None            # tanh: the numpy step, whose batches we see
    t.fit(X, Y)
    expected = [X[o[i:i + 8]] for o in orders for i in range(0, 24, 8)]
    assert len(batches) == 6 and all(np.array_equal(b, e) for b, e in zip(batches, expected))


def test_metrics_enter_the_record_before_schedule_and_callbacks_see_it():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    net, t = _regression_trainer(epochs=2, schedule=Plateau(monitor="twice_loss"))
    t.metrics = {"twice_loss": lambda trainer, record: 2 * record["loss"]}
    history = t.fit(X, Y)
    assert [r["twice_loss"] for r in history.records] == [2 * r["loss"] for r in history.records]
    assert t.schedule.best_loss == min(r["twice_loss"] for r in history.records)


def test_the_record_holds_the_penalty_part_of_the_loss():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    for fused_case in (False, True):
        net = deepff.FeedForward([Dense(4, "relu" if fused_case else "tanh"), Dense(1)], loss="mse", n_features=3,
                                 dtype="float64", seed=0)
        t = Trainer(net, optimizer="sgd", penalty={"l2": 0.5}, epochs=1, batch_size=16, shuffle=False)
        before = Penalty(l2=0.5).value(net.params)
        record = t.fit(X, Y).records[0]
        assert record["penalty"] == pytest.approx(before, rel=1e-12)   # one batch: the penalty at its start
        assert record["loss"] > record["penalty"] > 0
    net, t = _regression_trainer(epochs=1)
    assert "penalty" not in t.fit(X, Y).records[0]


def test_sparse_inputs_train_as_their_dense_rows_do():
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3)) * (rng.random((30, 3)) > 0.5)
    Y = rng.normal(size=(30, 1))
    fits = []
    for data in (X, sp.csr_matrix(X)):
        net, t = _regression_trainer(epochs=2)
        t.fit(data, Y)
        fits.append(net.params.theta.copy())
    np.testing.assert_array_equal(fits[0], fits[1])
    net, t = _regression_trainer(epochs=1)
    with pytest.raises(InputError, match=r"needs X of shape"):
        t.fit(sp.csc_matrix(X), Y)
    lbfgs = Trainer(net, optimizer="lbfgs")
    with pytest.raises(InputError, match="needs a dense X"):
        lbfgs.fit(sp.csr_matrix(X), Y)


def test_halt_on_divergence_false_trains_on_through_a_non_finite_loss():
    X = np.full((16, 3), 1e200)
    Y = np.ones((16, 1))
    for optimizer in ({"name": "sgd", "lr": 1.0}, {"name": "rmsprop", "lr": 1.0}):   # the compiled and numpy steps
        def network():
            return deepff.FeedForward([Dense(4, "linear"), Dense(1)], loss="mse", n_features=3, dtype="float64",
                                      seed=0)

        net = network()
        t = Trainer(net, optimizer=optimizer, epochs=3, batch_size=8)
        t.halt_on_divergence = False
        history = t.fit(X, Y)
        assert len(history.records) == 3 and not math.isfinite(history.records[-1]["loss"])
        assert t.step == 6 and not np.isfinite(net.params.theta).all()
        with pytest.raises(DivergenceError):
            Trainer(network(), optimizer=optimizer, epochs=3, batch_size=8).fit(X, Y)
