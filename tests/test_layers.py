"""Dense layers: construction checks, shapes, dropout, batch normalisation, max-norm."""

import numpy as np
import pytest

from deepff import Dense, FeedForward, InputLayer
from deepff.errors import SpecError
from deepff.layers import _BN_EPS


def _X(n=8, d=4, seed=0, scale=1.0, shift=0.0):
    return np.random.default_rng(seed).normal(loc=shift, scale=scale, size=(n, d))


# ------------------------------------------------------------------ construction
@pytest.mark.parametrize("units", [0, -3, 2.5, "4", True, None])
def test_units_must_be_positive_int(units):
    with pytest.raises(SpecError, match="units"):
        Dense(units)


def test_units_accepts_numpy_integer():
    assert Dense(np.int64(3)).units == 3


@pytest.mark.parametrize("p", [1.0, 1.5, -0.1, "0.5", None])
def test_dropout_range(p):
    with pytest.raises(SpecError, match="dropout"):
        Dense(3, dropout=p)


@pytest.mark.parametrize("c", [0, -1.0, "2"])
def test_max_norm_must_be_positive(c):
    with pytest.raises(SpecError, match="max_norm"):
        Dense(3, max_norm=c)


def test_config_round_trip():
    layer = Dense(7, {"name": "leaky_relu", "slope": 0.2}, init="he_uniform",
                  bias_init={"name": "constant", "value": 0.1}, dropout=0.25, batch_norm=True, max_norm=3.0)
    cfg = layer.get_config()
    assert cfg == {"units": 7, "activation": {"name": "leaky_relu", "slope": 0.2}, "init": "he_uniform",
                   "bias_init": {"name": "constant", "value": 0.1}, "dropout": 0.25, "batch_norm": True,
                   "max_norm": 3.0}
    assert Dense.from_config(cfg).get_config() == cfg


def test_input_layer():
    layer = InputLayer(5)
    assert layer.n_features == layer.units == 5 and layer.h is None


def test_shapes_after_forward_and_backward():
    net = FeedForward([Dense(5, "relu"), Dense(3, "softmax")], loss="nll", n_features=4,
                      dtype="float64", seed=0)
    l1, l2 = net.layers
    assert l1.W.shape == (4, 5) and l1.b.shape == (1, 5) and l1.w is l1.W
    assert l2.W.shape == (5, 3) and l2.b.shape == (1, 3)
    X = _X(n=7)
    net.forward(X, training=True)
    assert l1.a.shape == l1.h.shape == (7, 5) and l2.a.shape == l2.h.shape == (7, 3)
    assert l1.h_in is X
    net.backward(np.eye(3)[[0, 1, 2, 0, 1, 2, 0]])
    assert l1.dW.shape == (4, 5) and l1.db.shape == (1, 5)


def test_batch_norm_layer_has_scale_and_shift_instead_of_bias():
    layer = Dense(3, "relu", batch_norm=True)
    assert layer.param_specs(4) == [("W", (4, 3), "weight"), ("gamma", (1, 3), "scale"),
                                    ("beta", (1, 3), "shift")]
    net = FeedForward([layer], n_features=4, seed=0)
    assert layer.b is None and layer.db is None
    np.testing.assert_array_equal(layer.gamma, 1)
    np.testing.assert_array_equal(layer.beta, 0)
    np.testing.assert_array_equal(layer.running_mean, 0)
    np.testing.assert_array_equal(layer.running_var, 1)
    assert net.params.kinds == ["weight", "scale", "shift"]


# ----------------------------------------------------------------------- dropout
def _dropout_net(p, units=400, dtype="float64", seed=0):
    # sigmoid with a positive bias keeps every h strictly positive, so a zero
    # in the output can only come from the mask
    return FeedForward([Dense(units, "sigmoid", dropout=p, bias_init={"name": "constant", "value": 1.0}),
                        Dense(2, "softmax")], loss="nll", n_features=10, dtype=dtype, seed=seed)


def test_dropout_off_in_evaluation():
    net = _dropout_net(0.5)
    X = _X(n=50, d=10)
    p1, p2 = net.predict_output(X), net.predict_output(X)
    np.testing.assert_array_equal(p1, p2)
    l1 = net.layers[0]
    h_ref = 1 / (1 + np.exp(-(X @ l1.W + l1.b)))
    out = net.layers[0].forward(X, training=False)
    np.testing.assert_allclose(out, h_ref, rtol=1e-12)
    h2 = h_ref @ net.layers[1].W + net.layers[1].b
    expected = np.exp(h2 - h2.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p1, expected / expected.sum(axis=1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_in_training_zeroes_p_and_scales_the_rest(p):
    net = _dropout_net(p)
    layer = net.layers[0]
    X = _X(n=500, d=10)
    out = layer.forward(X, training=True, rng=net.dropout_rng)
    h = layer.h                                  # before the mask
    assert (h > 0).all()
    dropped = out == 0
    assert dropped.mean() == pytest.approx(p, abs=0.01)   # 200,000 Bernoulli draws
    np.testing.assert_allclose(out[~dropped], h[~dropped] / (1 - p), rtol=1e-12)
    assert out.mean() == pytest.approx(h.mean(), rel=0.01)  # inverted dropout keeps the mean


def test_dropout_float32_mask():
    net = _dropout_net(0.3, dtype="float32")
    layer = net.layers[0]
    out = layer.forward(_X(n=300, d=10).astype(np.float32), training=True, rng=net.dropout_rng)
    assert out.dtype == np.float32
    assert (out == 0).mean() == pytest.approx(0.3, abs=0.01)
    kept = out != 0
    np.testing.assert_allclose(out[kept], layer.h[kept] / 0.7, rtol=1e-6)


def test_dropout_masks_change_between_passes_and_follow_the_seed():
    X = _X(n=20, d=10)
    a, b = _dropout_net(0.5, units=30), _dropout_net(0.5, units=30)
    first = a.forward(X, training=True).copy()
    second = a.forward(X, training=True).copy()
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(b.forward(X, training=True), first)


def test_dropout_gradient_is_zero_for_dropped_units():
    net = _dropout_net(0.5, units=30)
    X = _X(n=20, d=10)
    net.forward(X, training=True)
    mask = net.layers[0]._workspace(20).mask
    net.backward(np.eye(2)[np.arange(20) % 2])
    # dW^2 = (h^1 after dropout)^T g: rows of h^1 that were dropped contribute nothing
    g2 = net.layers[1]._workspace(20).g
    np.testing.assert_allclose(net.layers[1].dW, (net.layers[0].h * mask).T @ g2, rtol=1e-12)
    # and dJ/da^1 is exactly zero for the dropped units, non-zero for the kept ones
    g1 = net.layers[0]._workspace(20).g
    assert (g1[mask == 0] == 0).all() and (g1[mask != 0] != 0).all()


# ------------------------------------------------------------------- batch norm
def _bn_net(dtype="float64", units=6, seed=0):
    return FeedForward([Dense(units, "linear", batch_norm=True), Dense(2, "softmax")],
                       loss="nll", n_features=4, dtype=dtype, seed=seed)


def test_batch_norm_training_output_is_standardised():
    net = _bn_net()
    layer = net.layers[0]
    X = _X(n=64, scale=3.0, shift=5.0)
    layer.forward(X, training=True)
    a = layer.a                                   # linear activation: h == a
    np.testing.assert_allclose(a.mean(axis=0), 0, atol=1e-12)
    z = X @ layer.W
    np.testing.assert_allclose(a.var(axis=0), z.var(axis=0) / (z.var(axis=0) + _BN_EPS), rtol=1e-12)
    assert np.all(np.abs(a.var(axis=0) - 1) < 1e-4)


def test_batch_norm_gamma_and_beta():
    net = _bn_net()
    layer = net.layers[0]
    layer.gamma[...] = np.arange(1.0, 7.0)
    layer.beta[...] = -np.arange(6.0)
    X = _X(n=32)
    layer.forward(X, training=True)
    z = X @ layer.W
    xhat = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + _BN_EPS)
    np.testing.assert_allclose(layer.a, xhat * np.arange(1.0, 7.0) - np.arange(6.0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.a.mean(axis=0), -np.arange(6.0), atol=1e-12)
    np.testing.assert_allclose(layer.a.std(axis=0), np.arange(1.0, 7.0) * np.sqrt(1 - _BN_EPS / (
        z.var(axis=0) + _BN_EPS)), rtol=1e-12)


def test_batch_norm_running_stats_use_momentum_0_1():
    net = _bn_net()
    layer = net.layers[0]
    X = _X(n=16, shift=2.0)
    z = X @ layer.W
    mu, var_unbiased = z.mean(axis=0), z.var(axis=0, ddof=1)
    layer.forward(X, training=True)
    np.testing.assert_allclose(layer.running_mean[0], 0.1 * mu, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var[0], 0.9 * 1 + 0.1 * var_unbiased, rtol=1e-12)
    layer.forward(X, training=True)
    np.testing.assert_allclose(layer.running_mean[0], 0.19 * mu, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var[0], 0.81 + 0.19 * var_unbiased, rtol=1e-12)
    for _ in range(200):
        layer.forward(X, training=True)
    np.testing.assert_allclose(layer.running_mean[0], mu, rtol=1e-8)
    np.testing.assert_allclose(layer.running_var[0], var_unbiased, rtol=1e-8)


def test_batch_norm_evaluation_uses_running_stats_and_does_not_update_them():
    net = _bn_net()
    layer = net.layers[0]
    layer.running_mean[...] = np.linspace(-1, 1, 6)
    layer.running_var[...] = np.linspace(0.5, 3, 6)
    layer.gamma[...] = 2.0
    layer.beta[...] = 0.5
    X = _X(n=5)
    layer.forward(X, training=False)
    expected = 2.0 * (X @ layer.W - np.linspace(-1, 1, 6)) / np.sqrt(np.linspace(0.5, 3, 6) + _BN_EPS) + 0.5
    np.testing.assert_allclose(layer.a, expected, rtol=1e-12)
    np.testing.assert_array_equal(layer.running_mean[0], np.linspace(-1, 1, 6))
    # one sample in evaluation is fine (no batch statistics needed) and row-independent
    one = layer.forward(X[2:3], training=False).copy()
    np.testing.assert_allclose(one, expected[2:3], rtol=1e-12)


def test_batch_norm_a_one_sample_training_batch_uses_and_keeps_the_running_stats():
    """A singleton batch (a short last batch) has no variance: normalised as in evaluation, stats untouched."""
    net = _bn_net()
    layer = net.layers[0]
    layer.running_mean[...] = np.linspace(-1, 1, 6)
    layer.running_var[...] = np.linspace(0.5, 3, 6)
    x = _X(n=1)
    evaluated = layer.forward(x, training=False).copy()
    trained = layer.forward(x, training=True)
    np.testing.assert_array_equal(trained, evaluated)
    np.testing.assert_array_equal(layer.running_var[0], np.linspace(0.5, 3, 6))
    np.testing.assert_array_equal(layer.running_mean[0], np.linspace(-1, 1, 6))


def test_batch_norm_running_variance_survives_epochs_ending_in_one_sample():
    """65 samples in batches of 32 end each epoch with one sample; the running variance still tracks var(z)."""
    from deepff import Network

    X = _X(n=65, d=4, seed=3)
    net = Network([Dense(4, "linear", batch_norm=True), Dense(2, "softmax")], loss="nll", seed=0,
                  dtype="float64")
    net.fit(X, (X[:, 0] > 0).astype(int), epochs=30, batch_size=32, optimizer="sgd", lr=0.0, shuffle=False)
    layer = net.layers[0]
    ratio = layer.running_var[0] / (X @ layer.W).var(axis=0, ddof=1)
    np.testing.assert_allclose(ratio, 1, atol=0.1)      # 0.63 when the singleton set the variance to 0


def test_batch_norm_float32():
    net = _bn_net(dtype="float32")
    layer = net.layers[0]
    out = layer.forward(_X(n=32).astype(np.float32), training=True)
    assert out.dtype == np.float32 and layer.running_mean.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)


def test_batch_norm_buffers_are_exposed_by_the_network():
    net = _bn_net()
    buffers = net.buffers()
    assert set(buffers) == {"layer1.running_mean", "layer1.running_var"}
    assert buffers["layer1.running_mean"] is net.layers[0].running_mean


# --------------------------------------------------------------------- max-norm
def test_max_norm_is_enforced_by_training():
    from deepff import Network

    rng = np.random.default_rng(0)
    X = rng.normal(scale=5.0, size=(64, 6))
    y = (X[:, 0] > 0).astype(int)
    net = Network([Dense(8, "relu", max_norm=0.5), Dense(2, "softmax", max_norm=1.0)], loss="nll",
                  dtype="float64", seed=0)
    net.fit(X, y, epochs=3, batch_size=16, optimizer="sgd", lr=1.0)
    n1 = np.linalg.norm(net.layers[0].W, axis=0)
    n2 = np.linalg.norm(net.layers[1].W, axis=0)
    assert n1.max() <= 0.5 * (1 + 1e-12) and n2.max() <= 1.0 * (1 + 1e-12)
    assert n1.max() == pytest.approx(0.5, rel=1e-12)   # the constraint was active


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_batch_norm_flag_must_be_a_bool(flag):
    with pytest.raises(SpecError, match="batch_norm must be true or false"):
        Dense(4, batch_norm=flag)
