"""The engine: forward and backward sweeps against hand-written numpy,
the flat parameter buffer, fused vs general paths, prediction, dtypes, seeds."""

import numpy as np
import pytest
from scipy.special import expit, log_softmax, softmax

from deepff import Dense, FeedForward, Network, gradcheck
from deepff.errors import InputError, SpecError


def _data(n=6, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, size=n)


def _net(dtype="float64", seed=0, out_act="softmax", loss="nll", first="tanh"):
    return FeedForward([Dense(5, first, bias_init={"name": "normal", "std": 0.5}),
                        Dense(4, "relu", bias_init={"name": "normal", "std": 0.5}),
                        Dense(3, out_act, bias_init={"name": "normal", "std": 0.5})],
                       loss=loss, n_features=4, dtype=dtype, seed=seed)


# ------------------------------------------------------------- forward/backward
def test_forward_matches_hand_written_numpy():
    net = _net()
    X, _ = _data()
    (W1, b1), (W2, b2), (W3, b3) = [(layer.W, layer.b) for layer in net.layers]
    h1 = np.tanh(X @ W1 + b1)
    a2 = h1 @ W2 + b2
    h2 = np.maximum(a2, 0)
    h3 = softmax(h2 @ W3 + b3, axis=1)
    out = net.forward(net.prepare_inputs(X))
    np.testing.assert_allclose(out, h3, rtol=1e-13)
    np.testing.assert_allclose(net.layers[1].a, a2, rtol=1e-13)
    np.testing.assert_allclose(net.layers[0].h, h1, rtol=1e-13)


@pytest.mark.parametrize("fused", [True, False])
def test_backward_matches_hand_written_backprop(fused):
    net = _net()
    net.allow_fused = fused
    X, labels = _data()
    Y = np.eye(3)[labels]
    n = X.shape[0]
    (W1, b1), (W2, b2), (W3, b3) = [(layer.W.copy(), layer.b.copy()) for layer in net.layers]
    h1 = np.tanh(X @ W1 + b1)
    a2 = h1 @ W2 + b2
    h2 = np.maximum(a2, 0)
    h3 = softmax(h2 @ W3 + b3, axis=1)
    g3 = (h3 - Y) / n                         # dJ/da^3
    g2 = (g3 @ W3.T) * (a2 > 0)               # dJ/da^2
    g1 = (g2 @ W2.T) * (1 - h1 ** 2)          # dJ/da^1
    net.forward(net.prepare_inputs(X), training=True)
    assert net.loss_value(Y) == pytest.approx(-np.mean(np.log(h3[np.arange(n), labels])), rel=1e-12)
    net.backward(Y)
    l1, l2, l3 = net.layers
    for got, want in [(l3.dW, h2.T @ g3), (l3.db, g3.sum(0, keepdims=True)),
                      (l2.dW, h1.T @ g2), (l2.db, g2.sum(0, keepdims=True)),
                      (l1.dW, X.T @ g1), (l1.db, g1.sum(0, keepdims=True))]:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)


# ---------------------------------------------------------- fused vs general path
def _fused_vs_general(net, X, y, w=None):
    Xp = net.prepare_inputs(X)
    Y = net.prepare_targets(y, X.shape[0])
    result = {}
    for fused in (True, False):
        net.allow_fused = fused
        net.forward(Xp, training=True)
        J = net.loss_value(Y, w)
        net.backward(Y, w)
        result[fused] = (J, net.params.grad.copy())
    net.allow_fused = True
    return result


@pytest.mark.parametrize("weighted", [False, True])
def test_fused_and_general_agree_softmax_nll(weighted):
    net = _net()
    X, y = _data(n=9)
    w = np.random.default_rng(1).uniform(0.2, 2.0, size=9) if weighted else None
    assert net.fused
    r = _fused_vs_general(net, X, y, w)
    assert r[True][0] == pytest.approx(r[False][0], rel=1e-10)
    np.testing.assert_allclose(r[True][1], r[False][1], rtol=1e-10, atol=1e-14)
    assert np.abs(r[True][1]).max() > 1e-3


@pytest.mark.parametrize("weighted", [False, True])
def test_fused_and_general_agree_sigmoid_bce(weighted):
    net = _net(out_act="sigmoid", loss="binary_cross_entropy")
    X, _ = _data(n=9)
    y = np.random.default_rng(2).integers(0, 2, size=(9, 3))
    w = np.random.default_rng(1).uniform(0.2, 2.0, size=9) if weighted else None
    assert net.fused and net.multi_label
    r = _fused_vs_general(net, X, y, w)
    assert r[True][0] == pytest.approx(r[False][0], rel=1e-10)
    np.testing.assert_allclose(r[True][1], r[False][1], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("scale", [50, 1000])
def test_fused_path_is_finite_for_large_logits_softmax_nll(scale):
    net = _net(first="leaky_relu")      # piecewise linear: scaled inputs give scaled logits
    X, y = _data(n=9)
    X = X * scale
    Xp = net.prepare_inputs(X)
    Y = net.prepare_targets(y, 9)
    net.forward(Xp, training=True)
    a = net.layers[-1].a.copy()
    assert np.abs(a).max() > 0.6 * scale               # really large logits
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        J = net.loss_value(Y)
    assert np.isfinite(J)
    expected = -np.mean(log_softmax(a, axis=1)[np.arange(9), y])
    assert J == pytest.approx(expected, rel=1e-12)
    if scale == 1000:   # p(true class) ~ e^-535: the clipped general path cannot represent it
        net.allow_fused = False
        assert net.loss_value(Y) < 0.5 * J
        net.allow_fused = True
    net.backward(Y)
    assert np.isfinite(net.params.grad).all()
    np.testing.assert_allclose(net.layers[-1].db, (softmax(a, axis=1) - Y).sum(0, keepdims=True) / 9,
                               rtol=1e-12, atol=1e-15)
    assert gradcheck(net, X, y) < 1e-6


@pytest.mark.parametrize("scale", [50, 1000])
def test_fused_path_is_finite_for_large_logits_sigmoid_bce(scale):
    net = _net(out_act="sigmoid", loss="binary_cross_entropy", first="leaky_relu")
    X, _ = _data(n=9)
    X = X * scale
    y = np.random.default_rng(2).integers(0, 2, size=(9, 3)).astype(float)
    Xp = net.prepare_inputs(X)
    net.forward(Xp, training=True)
    a = net.layers[-1].a.copy()
    assert np.abs(a).max() > 0.6 * scale
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        J = net.loss_value(y)
    expected = np.mean(np.logaddexp(0, a) - a * y)
    assert np.isfinite(J) and J == pytest.approx(expected, rel=1e-12)
    net.backward(y)
    np.testing.assert_allclose(net.layers[-1].db, (expit(a) - y).sum(0, keepdims=True) / 27,
                               rtol=1e-12, atol=1e-15)


def test_fused_only_for_canonical_pairs():
    assert not _net(out_act="tanh", loss="mse").fused
    assert not _net(out_act="softplus", loss="poisson").fused
    assert not _net(out_act="softmax", loss="binary_cross_entropy").fused
    net = _net()
    net.allow_fused = False
    assert not net.fused


# ------------------------------------------------------------------ flat buffer
def test_every_parameter_is_a_view_into_the_flat_buffers():
    net = FeedForward([Dense(5, "relu"), Dense(4, "tanh", batch_norm=True), Dense(3, "softmax")],
                      loss="nll", n_features=4, seed=0)
    theta, grad = net.params.theta, net.params.grad
    total = 0
    for layer in net.layers:
        for p, g in [(layer.W, layer.dW), (layer.b, layer.db), (layer.gamma, layer.dgamma),
                     (layer.beta, layer.dbeta)]:
            if p is None:
                continue
            assert np.shares_memory(p, theta) and np.shares_memory(g, grad)
            assert p.shape == g.shape
            total += p.size
    assert total == theta.size == net.n_params() == 4 * 5 + 5 + 5 * 4 + 4 + 4 + 4 * 3 + 3


def test_in_place_change_to_theta_shows_in_the_layers():
    net = _net()
    X, _ = _data()
    before = net.predict_output(X)
    net.params.theta[:] = 0.0
    assert not net.layers[0].W.any() and not net.layers[2].b.any()
    net.params.theta[net.params.slices[0]] = 1.5
    np.testing.assert_array_equal(net.layers[0].W, 1.5)
    net.params.theta *= 2
    np.testing.assert_array_equal(net.layers[0].W, 3.0)
    after = net.predict_output(X)
    np.testing.assert_allclose(after, 1 / 3)           # zero last layer: uniform softmax
    assert not np.allclose(before, after)


def test_backward_overwrites_and_does_not_change_theta():
    net = _net()
    X, y = _data()
    Xp, Y = net.prepare_inputs(X), net.prepare_targets(y, 6)
    theta = net.get_weights()
    net.params.grad[:] = 123.0                         # garbage that must not survive
    net.forward(Xp, training=True)
    net.backward(Y)
    g1 = net.params.grad.copy()
    assert not (g1 == 123.0).any()
    net.forward(Xp, training=True)
    net.backward(Y)
    np.testing.assert_array_equal(net.params.grad, g1)  # not 2 * g1
    np.testing.assert_array_equal(net.params.theta, theta)


def test_backward_overwrites_batch_norm_gradients():
    net = FeedForward([Dense(5, "relu", batch_norm=True), Dense(3, "softmax")], loss="nll",
                      n_features=4, dtype="float64", seed=0)
    X, y = _data()
    Xp, Y = net.prepare_inputs(X), net.prepare_targets(y, 6)
    net.params.grad[:] = 7.0
    net.forward(Xp, training=True)
    net.backward(Y)
    g1 = net.params.grad.copy()
    net.forward(Xp, training=True)
    net.backward(Y)
    np.testing.assert_allclose(net.params.grad, g1, rtol=1e-12)


def test_get_and_set_weights():
    net = _net()
    w = net.get_weights()
    assert not np.shares_memory(w, net.params.theta)
    w[:] = 0.5
    assert not (net.params.theta == 0.5).all()
    theta_id = net.params.theta
    net.set_weights(w)
    assert net.params.theta is theta_id and (net.layers[1].W == 0.5).all()
    with pytest.raises(InputError, match="shape"):
        net.set_weights(w[:-1])


# ------------------------------------------------------------------------ seeds
def test_same_seed_same_initial_weights_different_seed_differs():
    a, b, c = _net(seed=3), _net(seed=3), _net(seed=4)
    np.testing.assert_array_equal(a.get_weights(), b.get_weights())
    assert not np.array_equal(a.get_weights(), c.get_weights())


def test_float32_default_and_float64_on_request():
    n32 = _net(dtype="float32", seed=3)
    n_default = FeedForward([Dense(3, "tanh")], n_features=4)
    assert n_default.dtype == np.float32 and n_default.params.theta.dtype == np.float32
    n64 = _net(dtype="float64", seed=3)
    assert n32.params.theta.dtype == np.float32 and n64.params.theta.dtype == np.float64
    # the same draws, rounded
    np.testing.assert_array_equal(n32.get_weights(), n64.get_weights().astype(np.float32))
    X, _ = _data()
    out = n32.predict_output(X)                        # float64 input into a float32 net
    assert out.dtype == np.float32
    assert n32.layers[0].h.dtype == np.float32
    np.testing.assert_allclose(out, n64.predict_output(X), rtol=1e-5, atol=1e-6)
    assert n32.params.theta.dtype == np.float32


@pytest.mark.parametrize("dtype", ["float16", "int32", "complex128", np.int64])
def test_bad_dtype(dtype):
    with pytest.raises(InputError, match="dtype"):
        FeedForward([Dense(3)], n_features=2, dtype=dtype)


@pytest.mark.parametrize("dtype", ["flaot32", "double-ish"])
def test_unparseable_dtype_string_is_rejected(dtype):
    with pytest.raises(InputError, match="dtype"):
        FeedForward([Dense(3)], n_features=2, dtype=dtype)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed(seed):
    with pytest.raises(SpecError, match="seed"):
        FeedForward([Dense(3)], n_features=2, seed=seed)


def test_bad_layers():
    with pytest.raises(SpecError, match="at least one layer"):
        FeedForward([])
    with pytest.raises(SpecError, match="layer 1"):
        FeedForward([Dense(3), {"units": 2}])
    with pytest.raises(SpecError, match="n_features"):
        FeedForward([Dense(3)], n_features=0)


# ---------------------------------------------------------------------- predict
def test_predict_classification_regression_multilabel():
    X, _ = _data(n=10)
    clf = _net()
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), proba.argmax(axis=1))

    ml = _net(out_act="sigmoid", loss="binary_cross_entropy")
    p = ml.predict_output(X)
    np.testing.assert_array_equal(ml.predict(X), (p >= 0.5).astype(int))

    reg = FeedForward([Dense(5, "tanh"), Dense(1)], loss="mse", n_features=4, dtype="float64", seed=0)
    pred = reg.predict(X)
    assert pred.shape == (10,)
    np.testing.assert_allclose(pred, reg.predict_output(X)[:, 0])
    with pytest.raises(InputError, match="classification"):
        reg.predict_proba(X)


def test_predict_in_chunks_matches_one_pass():
    net = FeedForward([Dense(3, "tanh"), Dense(2, "softmax")], loss="nll", n_features=2,
                      dtype="float64", seed=0)
    X = np.random.default_rng(0).normal(size=(20000, 2))
    out = net.predict_output(X)
    l1, l2 = net.layers
    np.testing.assert_allclose(out, softmax(np.tanh(X @ l1.W + l1.b) @ l2.W + l2.b, axis=1), rtol=1e-12)


def test_predict_before_build_raises():
    net = FeedForward([Dense(3)])
    assert not net.built
    with pytest.raises(InputError, match="fit"):
        net.predict(np.zeros((2, 2)))
    net.build(2)
    assert net.built and net.predict(np.zeros((2, 2))).shape == (2, 3)


def test_predict_output_is_a_fresh_array():
    net = _net()
    X, _ = _data()
    p = net.predict_output(X)
    net.predict_output(X * 2)
    np.testing.assert_allclose(p, net.predict_output(X))
    assert not np.shares_memory(p, net.layers[-1].h)


def test_output_layer_dropout_is_rejected_or_consistent():
    try:
        net = FeedForward([Dense(5, "tanh"), Dense(3, "tanh", dropout=0.5)], loss="mse", n_features=4,
                          dtype="float64", seed=0)
    except SpecError:
        return
    X, _ = _data()
    y = np.random.default_rng(1).normal(size=(6, 3))
    assert gradcheck(net, X, y) < 1e-6


def test_repr_mentions_layers_and_loss():
    r = repr(_net())
    assert "FeedForward" in r and "neg_log_likelihood" in r and "softmax" in r


def test_pickle_and_deepcopy_keep_the_flat_buffer_views():
    import copy
    import pickle

    rng = np.random.default_rng(0)
    net = FeedForward([Dense(5, "relu", batch_norm=True), Dense(3, "softmax")], loss="nll",
                      n_features=4, seed=0)
    X = rng.normal(size=(8, 4)).astype(np.float32)
    net.forward(X, training=True)  # moves the batch-norm running statistics
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        for layer in clone.layers:
            assert np.shares_memory(layer.W, clone.params.theta)
            assert np.shares_memory(layer.dW, clone.params.grad)
        np.testing.assert_array_equal(clone.params.theta, net.params.theta)
        np.testing.assert_array_equal(clone.layers[0].running_mean, net.layers[0].running_mean)
        assert np.array_equal(clone.predict_output(X), net.predict_output(X))
        clone.params.theta[...] = 0  # an update through the buffer reaches the layers
        assert not clone.layers[0].W.any()
        assert net.layers[0].W.any()


def test_nll_needs_a_unit_per_class():
    for out in ("softmax", "sigmoid"):
        with pytest.raises(SpecError, match="at least 2.*binary_cross_entropy"):
            FeedForward([Dense(8, "relu"), Dense(1, out)], loss="neg_log_likelihood", n_features=3)


def test_a_dense_object_serves_one_place_in_one_network():
    shared = Dense(4, "relu")
    with pytest.raises(SpecError, match="layer 1 is the same Dense object"):
        FeedForward([shared, shared, Dense(1)], n_features=3)
    first = FeedForward([shared, Dense(1)], n_features=3, seed=0)
    before = first.params.theta.copy()
    with pytest.raises(SpecError, match="layer 0 already belongs to a built network"):
        FeedForward([shared, Dense(1)], n_features=5)
    np.testing.assert_array_equal(first.params.theta, before)
    assert first.forward(np.ones((2, 3), first.dtype)).shape == (2, 1)


@pytest.mark.parametrize(("theta", "message"), [
    (np.full(8, np.nan), "contains NaN or infinity"),
    (np.full(8, 1e39), "too large for float32"),
    (np.array(["a"] * 8), "must hold real numbers"),
])
def test_set_weights_refuses_what_no_network_can_hold(theta, message):
    net = Network([Dense(2, "softmax")], loss="nll", seed=0)
    net.build(3)
    before = net.get_weights().copy()
    with pytest.raises(InputError, match=message):
        net.set_weights(theta)
    np.testing.assert_array_equal(net.get_weights(), before)       # left as it was


@pytest.mark.parametrize("batch_size", [0, "x", 2.5])
def test_summary_refuses_a_batch_size_that_is_not_a_positive_integer(batch_size):
    net = Network([Dense(2, "softmax")], loss="nll", seed=0)
    net.build(3)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        net.summary(batch_size=batch_size)
    assert "(7, 2)" in net.summary(batch_size=7)


def test_running_out_of_memory_while_drawing_the_weights_is_a_spec_error(monkeypatch):
    """The flat buffers are mapped lazily, so the first real allocation can be the initial weights' draw."""
    def too_big(self, rng):
        raise MemoryError("Unable to allocate 26.8 GiB")

    monkeypatch.setattr(Dense, "initialize", too_big)
    net = FeedForward([Dense(5, "relu"), Dense(2, "softmax")], loss="nll")
    with pytest.raises(SpecError, match="not enough memory for the 32 parameters"):
        net.build(3)
    assert not net.built


@pytest.mark.parametrize("layers", [None, 3, Dense(2, "softmax")])
def test_layers_that_are_not_a_list_are_a_spec_error(layers):
    with pytest.raises(SpecError, match=r"layers must be a list of deepff.Dense layers, got "):
        FeedForward(layers, loss="nll")
    FeedForward(iter([Dense(2, "softmax")]), loss="nll")      # any iterable of layers is fine
