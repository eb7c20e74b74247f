"""The classic object API: Net(layers=spec) with forward / loss / backward.

The worked examples of the acceptance criteria: a 10 x 5 standardised design
matrix, (a) one-hot two-class labels with a softmax / neg_log_likelihood
output and (b) a real-valued target with a linear / mse output; 100 repeated
forward / loss / backward steps on the same batch halve the loss and the loss
falls steadily, for five seeds each.
"""

import numpy as np
import pytest

import deepff
from deepff import Net

SEEDS = [0, 1, 2, 3, 4]
LEARNING_RATE = 0.1


def _design(seed):
    rng = np.random.default_rng(100 + seed)
    X = rng.normal(size=(10, 5))
    X = (X - X.mean(axis=0)) / X.std(axis=0)            # standardised columns
    return X, rng


def _classification(seed):
    X, rng = _design(seed)
    labels = np.array([0, 1] * 5)
    rng.shuffle(labels)
    y = np.eye(2)[labels]                                # one-hot, (10, 2)
    spec = [
        {"layer_type": "input", "n_features": 5, "batch_size": 10},
        {"layer_type": "fullyconn", "n_neurons": 5, "activation": "relu"},
        {"layer_type": "output", "n_neurons": 2, "activation": "softmax", "loss_type": "neg_log_likelihood"},
    ]
    return spec, X, y


def _regression(seed):
    X, rng = _design(seed)
    y = (X @ rng.normal(size=(5, 1)) + 0.1 * rng.normal(size=(10, 1)))  # real-valued column, (10, 1)
    spec = [
        {"layer_type": "input", "n_features": 5, "batch_size": 10},
        {"layer_type": "fullyconn", "n_neurons": 5, "activation": "relu"},
        {"layer_type": "output", "n_neurons": 1, "activation": "linear", "loss_type": "mse"},
    ]
    return spec, X, y


def _run(spec, X, y, seed, steps=100):
    net = deepff.Net(layers=spec, learning_rate=LEARNING_RATE, seed=seed)
    losses = []
    for _ in range(steps):
        net.forward(X)
        losses.append(net.loss(y))
        net.backward(y)
    return net, np.array(losses)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("problem", [_classification, _regression], ids=["softmax_nll", "linear_mse"])
def test_worked_example_loss_halves_and_falls_steadily(problem, seed):
    spec, X, y = problem(seed)
    _, losses = _run(spec, X, y, seed)
    assert np.isfinite(losses).all()
    assert losses[99] <= 0.5 * losses[0], (losses[0], losses[99])
    non_increasing = np.mean(np.diff(losses) <= 0)
    assert non_increasing >= 0.9, non_increasing


def test_layers_structure_and_documented_shapes():
    spec, X, y = _classification(0)
    net = Net(layers=spec, learning_rate=0.1, seed=0)
    assert len(net.layers) == 3
    assert isinstance(net.layers[0], deepff.InputLayer) and net.layers[0].n_features == 5
    out = net.forward(X)
    np.testing.assert_array_equal(net.layers[0].h, X.astype(np.float32))
    hidden, output = net.layers[1], net.layers[2]
    for layer, n_in, n_out in [(hidden, 5, 5), (output, 5, 2)]:
        assert layer.W.shape == (n_in, n_out) and layer.w is layer.W
        assert layer.b.shape == (1, n_out)
        assert layer.a.shape == (10, n_out) and layer.h.shape == (10, n_out)
    np.testing.assert_array_equal(net.layers[-1].h, out)
    assert out is not net.layers[-1].h                   # forward returns a copy
    # a and h are what the formulas say
    np.testing.assert_allclose(hidden.a, X @ hidden.W + hidden.b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(hidden.h, np.maximum(hidden.a, 0))
    e = np.exp(output.a - output.a.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(axis=1, keepdims=True), rtol=1e-5)
    assert net.network.dtype == np.float32


def test_backward_is_one_sgd_step():
    spec, X, y = _regression(0)
    net = Net(layers=spec, learning_rate=0.05, dtype="float64", seed=0)
    theta0 = net.network.get_weights()
    net.forward(X)
    net.network.backward(net.network.prepare_targets(y, 10))
    grad = net.network.params.grad.copy()
    net.forward(X)
    net.backward(y)
    np.testing.assert_allclose(net.network.params.theta, theta0 - 0.05 * grad, rtol=1e-14, atol=1e-16)


def test_loss_value_is_the_documented_formula():
    spec, X, y = _regression(1)
    net = Net(layers=spec, dtype="float64", seed=1)
    out = net.forward(X)
    assert net.loss(y) == pytest.approx(np.mean((out - y) ** 2), rel=1e-13)
    spec, X, y = _classification(1)
    net = Net(layers=spec, dtype="float64", seed=1)
    out = net.forward(X)
    assert net.loss(y) == pytest.approx(-np.mean(np.log((out * y).sum(axis=1))), rel=1e-12)
    assert net.loss(y.argmax(axis=1)) == net.loss(y)     # labels work as well as one-hot


def test_learning_rate_property():
    spec, X, y = _regression(0)
    net = Net(layers=spec, learning_rate=0.3)
    assert net.learning_rate == 0.3 and net.optimizer.lr == 0.3
    net.learning_rate = 0.0
    theta = net.network.get_weights()
    net.forward(X)
    net.backward(y)
    np.testing.assert_array_equal(net.network.params.theta, theta)


def test_same_seed_same_run_and_predict():
    spec, X, y = _classification(2)
    a, la = _run(spec, X, y, seed=7, steps=20)
    b, lb = _run(spec, X, y, seed=7, steps=20)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(a.network.get_weights(), b.network.get_weights())
    c, _ = _run(spec, X, y, seed=8, steps=20)
    assert not np.array_equal(a.network.get_weights(), c.network.get_weights())
    pred = a.predict(X)
    assert pred.shape == (10,) and set(pred) <= {0, 1}


def test_classic_and_modern_share_the_engine():
    spec, X, _ = _classification(3)
    classic = Net(layers=spec, seed=5)
    modern = deepff.Network.from_spec(spec, seed=5)
    np.testing.assert_array_equal(classic.network.get_weights(), modern.get_weights())
    np.testing.assert_array_equal(classic.network.predict_output(X), modern.predict_output(X))
    assert "Net(" in repr(classic)


def test_predict_between_forward_and_backward_leaves_the_training_pass_alone():
    spec = [{"layer_type": "input", "n_features": 5},
            {"layer_type": "fullyconn", "n_neurons": 5, "activation": "relu"},
            {"layer_type": "output", "n_neurons": 2, "activation": "softmax",
             "loss_type": "neg_log_likelihood"}]
    rng = np.random.default_rng(0)
    X, X_other = rng.normal(size=(10, 5)), rng.normal(size=(10, 5))
    y = np.eye(2)[(X[:, 0] > 0).astype(int)]
    plain, peeking = deepff.Net(layers=spec, seed=0), deepff.Net(layers=spec, seed=0)
    plain.forward(X)
    loss = plain.loss(y)
    plain.backward(y)
    peeking.forward(X)
    first = peeking.predict(X_other)              # same batch size: same workspace
    peeking.predict(X_other[:7])                  # another batch size
    assert peeking.loss(y) == loss
    peeking.backward(y)
    np.testing.assert_array_equal(peeking.network.get_weights(), plain.network.get_weights())
    np.testing.assert_array_equal(peeking.predict(X_other), plain.predict(X_other))
    assert first.shape == (10,)


@pytest.mark.parametrize("lr", [-0.1, "fast", float("nan")])
def test_the_learning_rate_setter_checks_its_value(lr):
    net = deepff.Net(layers=[{"layer_type": "input", "n_features": 2},
                             {"layer_type": "output", "n_neurons": 1, "activation": "linear",
                              "loss_type": "mse"}], seed=0)
    with pytest.raises(deepff.SpecError, match="learning_rate must be >= 0"):
        net.learning_rate = lr
    assert net.learning_rate == 0.1


def test_the_classic_net_applies_max_norm_after_every_step():
    rng = np.random.default_rng(0)
    spec = [{"layer_type": "input", "n_features": 5},
            {"layer_type": "fullyconn", "n_neurons": 5, "activation": "relu", "max_norm": 0.1},
            {"layer_type": "output", "n_neurons": 2, "activation": "softmax", "loss_type": "nll", "max_norm": 0.1}]
    X = rng.normal(size=(10, 5))
    Y = np.eye(2)[(X[:, 0] > 0).astype(int)]
    net = Net(layers=spec, learning_rate=1.0, seed=0)
    for _ in range(20):
        net.forward(X)
        net.backward(Y)
    norms = [np.linalg.norm(layer.W, axis=0).max() for layer in net.network.layers]
    assert max(norms) <= 0.1 * (1 + 1e-6) and min(norms) > 0.09   # capped, and the cap is reached
