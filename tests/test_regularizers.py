"""Weight penalties, max-norm and gradient clipping on hand-computed numbers."""

import math

import numpy as np
import pytest

from deepff import Dense, FeedForward
from deepff.errors import SpecError
from deepff.params import ParamBuffer
from deepff.regularizers import Penalty, apply_max_norm, clip_grad_norm, elastic_net


def _buffer():
    """W1 = [[1, -2], [3, 0]], b1 = [5, -6], W2 = [[-1], [0.5]], b2 = [7]."""
    buf = ParamBuffer([("W1", (2, 2), "weight"), ("b1", (1, 2), "bias"),
                       ("W2", (2, 1), "weight"), ("b2", (1, 1), "bias")], np.float64)
    buf.theta[:] = [1, -2, 3, 0, 5, -6, -1, 0.5, 7]
    return buf


def test_l1_value_and_grad():
    buf = _buffer()
    p = Penalty(l1=0.1)
    assert p.value(buf) == pytest.approx(0.1 * (1 + 2 + 3 + 0 + 1 + 0.5), rel=1e-14)
    buf.grad[:] = 1.0
    p.add_grad(buf)
    np.testing.assert_allclose(buf.grad, [1.1, 0.9, 1.1, 1.0, 1, 1, 0.9, 1.1, 1])  # sign(0) = 0


def test_l2_value_and_grad():
    buf = _buffer()
    p = Penalty(l2=0.2)
    assert p.value(buf) == pytest.approx(0.5 * 0.2 * (1 + 4 + 9 + 0 + 1 + 0.25), rel=1e-14)
    buf.grad[:] = 0.0
    p.add_grad(buf)
    np.testing.assert_allclose(buf.grad, [0.2, -0.4, 0.6, 0, 0, 0, -0.2, 0.1, 0])


def test_biases_are_not_penalised():
    buf = _buffer()
    p = Penalty(l1=1.0, l2=1.0)
    v = p.value(buf)
    buf.theta[4:6] = [100.0, -100.0]
    buf.theta[8] = 1e3
    assert p.value(buf) == v
    buf.grad[:] = 0.0
    p.add_grad(buf)
    assert buf.grad[4] == buf.grad[5] == buf.grad[8] == 0.0


def test_batch_norm_scale_and_shift_are_not_penalised():
    net = FeedForward([Dense(3, "relu", batch_norm=True), Dense(2)], n_features=2, dtype="float64", seed=0)
    net.layers[0].gamma[...] = 10.0
    net.layers[0].beta[...] = -10.0
    weights = np.concatenate([net.layers[0].W.ravel(), net.layers[1].W.ravel()])
    p = Penalty(l1=0.3, l2=0.7)
    assert p.value(net.params) == pytest.approx(0.3 * np.abs(weights).sum() + 0.35 * (weights ** 2).sum(),
                                                rel=1e-13)


def test_elastic_net_split():
    p = elastic_net(0.2, l1_ratio=0.25)
    assert p.l1 == pytest.approx(0.05) and p.l2 == pytest.approx(0.15)
    buf = _buffer()
    assert p.value(buf) == pytest.approx(0.05 * 7.5 + 0.5 * 0.15 * 15.25, rel=1e-14)
    assert elastic_net(0.2, 1.0).l2 == 0 and elastic_net(0.2, 0.0).l1 == 0
    with pytest.raises(SpecError, match="l1_ratio"):
        elastic_net(0.1, 1.5)


def test_inactive_penalty():
    assert not Penalty().active and Penalty(l2=1e-4).active
    assert Penalty().value(_buffer()) == 0.0


@pytest.mark.parametrize("kw", [{"l1": -0.1}, {"l2": -1}, {"l1": "0.1"}, {"l2": True}, {"l1": float("nan")}])
def test_bad_coefficients(kw):
    with pytest.raises(SpecError):
        Penalty(**kw)


def test_penalty_gradient_matches_difference_quotient():
    buf = _buffer()
    buf.theta[3] = 0.25                      # keep every weight off the |w| kink
    p = Penalty(l1=0.3, l2=0.7)
    buf.grad[:] = 0.0
    p.add_grad(buf)
    eps = 1e-6
    for i in range(buf.size):
        t0 = buf.theta[i]
        buf.theta[i] = t0 + eps
        jp = p.value(buf)
        buf.theta[i] = t0 - eps
        jm = p.value(buf)
        buf.theta[i] = t0
        assert buf.grad[i] == pytest.approx((jp - jm) / (2 * eps), rel=1e-7, abs=1e-9)


# --------------------------------------------------------------------- max-norm
def test_apply_max_norm_caps_large_columns_exactly():
    net = FeedForward([Dense(3, "relu", max_norm=2.0), Dense(2, max_norm=None)], n_features=2,
                      dtype="float64", seed=0)
    W = net.layers[0].W
    W[...] = [[3.0, 0.6, 0.0], [4.0, 0.8, -10.0]]        # column norms 5, 1, 10
    W2_before = net.layers[1].W.copy()
    b_before = net.layers[0].b.copy()
    apply_max_norm(net.layers)
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), [2.0, 1.0, 2.0], rtol=1e-15)
    np.testing.assert_allclose(W[:, 0], [1.2, 1.6], rtol=1e-15)     # direction kept
    np.testing.assert_array_equal(W[:, 1], [0.6, 0.8])              # small column untouched
    np.testing.assert_allclose(W[:, 2], [0.0, -2.0], rtol=1e-15)
    np.testing.assert_array_equal(net.layers[1].W, W2_before)       # no max_norm: untouched
    np.testing.assert_array_equal(net.layers[0].b, b_before)
    assert np.shares_memory(W, net.params.theta)                    # still a view


def test_apply_max_norm_float32_and_zero_column():
    net = FeedForward([Dense(2, max_norm=1.0)], n_features=3, seed=0)
    W = net.layers[0].W
    W[...] = [[0.0, 6.0], [0.0, 0.0], [0.0, 8.0]]
    apply_max_norm(net.layers)
    assert W.dtype == np.float32
    np.testing.assert_array_equal(W[:, 0], 0.0)
    np.testing.assert_allclose(W[:, 1], [0.6, 0.0, 0.8], rtol=1e-6)


# ----------------------------------------------------------------- clip norm
def test_clip_grad_norm_scales_down_large_gradients():
    g = np.array([3.0, 4.0, 0.0, -12.0])       # norm 13
    norm = clip_grad_norm(g, 1.3)
    assert norm == pytest.approx(13.0, rel=1e-15)
    assert np.linalg.norm(g) == pytest.approx(1.3, rel=1e-6)
    np.testing.assert_allclose(g / np.linalg.norm(g), np.array([3.0, 4.0, 0.0, -12.0]) / 13, rtol=1e-14)


@pytest.mark.parametrize("max_norm", [4.999, 4.0, 2.6])
def test_clip_grad_norm_clips_every_norm_above_the_limit(max_norm):
    """Not only far-off norms: 5 > 4.999 is clipped too (a mutant clipping above 2 * max_norm passed before)."""
    g = np.array([3.0, 4.0])                   # norm 5
    assert clip_grad_norm(g, max_norm) == pytest.approx(5.0, rel=1e-15)
    assert np.linalg.norm(g) == pytest.approx(max_norm, rel=1e-6)
    g = np.array([3.0, 4.0])
    clip_grad_norm(g, 5.0)                     # at the limit: untouched
    np.testing.assert_array_equal(g, [3.0, 4.0])


def test_clip_grad_norm_leaves_small_gradients_alone():
    g = np.array([0.3, 0.4])
    assert clip_grad_norm(g, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(g, [0.3, 0.4])
    g32 = np.array([30.0, 40.0], dtype=np.float32)
    clip_grad_norm(g32, 5.0)
    assert g32.dtype == np.float32 and math.isclose(float(np.linalg.norm(g32)), 5.0, rel_tol=1e-6)


def test_a_per_sample_penalty_is_divided_by_the_batch_weight():
    net = FeedForward([Dense(3, "relu"), Dense(2)], n_features=4, dtype="float64", seed=0)
    p, plain = Penalty(l2=0.3, l1=0.1, per_sample=True), Penalty(l2=0.3, l1=0.1)
    w = np.array([0.5, 2.0, 1.5])
    assert p.batch_weight(3, w) == 4.0 and p.batch_weight(3) == 3.0 and plain.batch_weight(3, w) == 1.0
    assert p.value(net.params, 4.0) == pytest.approx(plain.value(net.params) / 4.0, rel=1e-14)
    net.params.grad[...] = 0
    p.add_grad(net.params, 4.0)
    per = net.params.grad.copy()
    net.params.grad[...] = 0
    plain.add_grad(net.params)
    np.testing.assert_allclose(per, net.params.grad / 4.0, rtol=1e-14)
    assert p.get_config() == {"l1": 0.1, "l2": 0.3, "per_sample": True}
    with pytest.raises(SpecError, match="per_sample must be true or false"):
        Penalty(l2=1.0, per_sample="yes")


def test_a_per_sample_penalty_passes_gradcheck_with_weights():
    import deepff

    rng = np.random.default_rng(1)
    net = FeedForward([Dense(4, "tanh"), Dense(2, "linear")], n_features=3, dtype="float64", seed=1)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    assert deepff.gradcheck(net, X, Y, sample_weight=rng.uniform(0.5, 2, 6),
                            penalty=Penalty(l2=0.7, per_sample=True)) < 1e-6
