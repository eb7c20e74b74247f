"""Denormals are flushed to zero during training steps, and only then (deepff._fpenv)."""

import numpy as np
import pytest

import deepff
from deepff import _fpenv
from deepff.sklearn import MLPRegressor

pytestmark = pytest.mark.skipif(not _fpenv.supported(), reason="flush-to-zero needs x86-64 Linux")

TINY = np.float32(2e-38)   # the smallest normal float32 is 1.18e-38


def denormal_product():
    """5e-39 in IEEE arithmetic (a denormal), 0.0 when denormals are flushed."""
    return float((np.array([TINY]) * np.float32(0.25))[0])


def test_flushes_inside_and_restores_after():
    assert denormal_product() == pytest.approx(5e-39)
    with _fpenv.FlushDenormals():
        assert denormal_product() == 0.0
        assert float(np.float32(5e-39) + np.float32(0)) == 0.0   # denormal inputs read as 0
    assert denormal_product() == pytest.approx(5e-39)


def test_restores_after_an_exception_and_when_nested():
    flush = _fpenv.FlushDenormals()
    with pytest.raises(KeyError):
        with flush:
            raise KeyError("x")
    assert denormal_product() != 0.0
    with flush:
        with _fpenv.FlushDenormals():
            pass
        assert denormal_product() == 0.0       # the inner exit restores the outer's mode
    assert denormal_product() != 0.0


def test_the_environment_variable_turns_it_off(monkeypatch):
    monkeypatch.setenv("DEEPFF_FLUSH_DENORMALS", "0")
    flush = _fpenv.FlushDenormals()
    assert not flush.active
    with flush:
        assert denormal_product() != 0.0


def _tiny_feature_data(n=64):
    """Column 1 is ~1e-19: its weight's gradient g is ~1e-20, so (1 - beta2) g^2 is a denormal."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2)).astype(np.float32)
    X[:, 1] *= np.float32(1e-19)
    y = (X[:, :1] * 2.0 + 0.5).astype(np.float32)
    return X, y


class _Probe(deepff.Callback):
    """Records, at every batch end (user code), what a denormal product gives."""

    def __init__(self):
        self.seen = []

    def on_batch_end(self, trainer, step, batch_size, loss):
        self.seen.append(denormal_product())


def _train(flush, monkeypatch, optimizer="adam"):
    monkeypatch.setenv("DEEPFF_FLUSH_DENORMALS", "1" if flush else "0")
    X, y = _tiny_feature_data()
    net = deepff.Network([deepff.Dense(1, "identity")], loss="mse", n_features=2, seed=0, dtype="float32")
    probe = _Probe()
    trainer = deepff.Trainer(net, optimizer={"name": optimizer, "lr": 0.01}, epochs=3, batch_size=16,
                             callbacks=[probe])
    trainer.fit(X, y)
    return net, trainer, probe


def test_trainer_steps_flush_and_callbacks_do_not(monkeypatch):
    net, trainer, probe = _train(True, monkeypatch)
    v = trainer.optimizer.state["exp_avg_sq"]
    w_tiny = net.params.slices[0]    # W of shape (2, 1): its second entry belongs to the ~1e-19 input
    v_tiny = v[w_tiny][1]
    assert v_tiny == 0.0                                  # (1 - beta2) g^2 ~ 1e-41 became 0
    assert probe.seen and all(s != 0.0 for s in probe.seen)   # user code runs in the caller's mode
    assert denormal_product() != 0.0                      # and the mode is restored after fit

    ieee_net, ieee_trainer, _ = _train(False, monkeypatch)
    v_ieee = ieee_trainer.optimizer.state["exp_avg_sq"][w_tiny][1]
    assert 0.0 < v_ieee < np.finfo(np.float32).tiny       # the same run keeps a denormal without it
    # the weights do not notice: a denormal is far below any weight's last bit
    np.testing.assert_array_equal(net.params.theta, ieee_net.params.theta)


def test_a_diverged_step_restores_the_mode(monkeypatch):
    monkeypatch.setenv("DEEPFF_FLUSH_DENORMALS", "1")
    X, y = _tiny_feature_data()
    net = deepff.Network([deepff.Dense(1, "identity")], loss="mse", n_features=2, seed=0, dtype="float32")
    trainer = deepff.Trainer(net, optimizer={"name": "sgd", "lr": 1e30}, epochs=5, batch_size=16)
    with pytest.raises(deepff.DivergenceError):
        trainer.fit(X, y * 1e6)
    assert denormal_product() != 0.0


def test_sklearn_estimator_steps_flush(monkeypatch):
    X, y = _tiny_feature_data()
    states = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("DEEPFF_FLUSH_DENORMALS", flag)
        est = MLPRegressor(hidden_layer_sizes=(), alpha=0.0, max_iter=3, batch_size=16, random_state=0, tol=0)
        with pytest.warns(Warning):          # ConvergenceWarning: 3 iterations
            est.fit(X, y.ravel())
        assert est.coefs_[0].dtype == np.float32
        states[flag] = (est._optimizer.state["exp_avg_sq"].copy(), est.coefs_[0].copy())
    v_flushed, v_ieee = states["1"][0], states["0"][0]
    assert v_flushed[1] == 0.0 and 0.0 < v_ieee[1] < np.finfo(np.float32).tiny
    np.testing.assert_array_equal(states["1"][1], states["0"][1])
    assert denormal_product() != 0.0


def test_one_instance_entered_twice_restores_once_at_the_outer_exit():
    flush = _fpenv.FlushDenormals()
    with flush:
        with flush:
            assert denormal_product() == 0.0
        assert denormal_product() == 0.0
    assert denormal_product() != 0.0
