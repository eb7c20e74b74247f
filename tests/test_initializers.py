"""Initializers: the documented scales, in-place filling, dtypes, determinism, defaults."""

import math

import numpy as np
import pytest

from deepff import Dense, FeedForward, initializers
from deepff.errors import SpecError

FAN_IN, FAN_OUT = 300, 500  # 150,000 draws: sample std within ~0.4% of the truth

# name -> ("normal" or "uniform", std or limit)
SCALES = {
    "he_normal": ("normal", math.sqrt(2 / FAN_IN)),
    "he_uniform": ("uniform", math.sqrt(6 / FAN_IN)),
    "glorot_normal": ("normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "glorot_uniform": ("uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    "lecun_normal": ("normal", math.sqrt(1 / FAN_IN)),
    "lecun_uniform": ("uniform", math.sqrt(3 / FAN_IN)),
    "normal": ("normal", 0.01),
    "uniform": ("uniform", 0.05),
}


@pytest.mark.parametrize("name", sorted(SCALES))
def test_documented_scale(name):
    kind, scale = SCALES[name]
    out = np.empty((FAN_IN, FAN_OUT))
    r = initializers.get(name)(np.random.default_rng(0), out, FAN_IN, FAN_OUT)
    assert r is out
    assert abs(out.mean()) < 0.02 * scale
    if kind == "normal":
        assert out.std() == pytest.approx(scale, rel=0.01)
        assert np.abs(out).max() > 3.5 * scale  # unbounded tails, unlike a uniform
    else:
        assert np.abs(out).max() <= scale
        assert np.abs(out).max() > 0.999 * scale
        assert out.std() == pytest.approx(scale / math.sqrt(3), rel=0.01)


def test_normal_and_constant_parameters():
    out = np.empty((200, 200))
    initializers.get({"name": "normal", "std": 0.5, "mean": 2.0})(np.random.default_rng(1), out, 200, 200)
    assert out.mean() == pytest.approx(2.0, abs=0.01)
    assert out.std() == pytest.approx(0.5, rel=0.01)
    initializers.get({"name": "constant", "value": 0.25})(None, out, 200, 200)
    assert (out == 0.25).all()
    initializers.get("zeros")(None, out, 200, 200)
    assert not out.any()


def test_fills_views_in_place_and_keeps_float32():
    buf = np.zeros(20, dtype=np.float32)
    view = buf[4:16].reshape(3, 4)
    initializers.get("glorot_uniform")(np.random.default_rng(2), view, 3, 4)
    assert view.dtype == np.float32
    assert np.count_nonzero(buf[4:16]) == 12
    assert not buf[:4].any() and not buf[16:].any()


@pytest.mark.parametrize("name", sorted(SCALES))
def test_same_seed_same_draws_in_both_dtypes(name):
    init = initializers.get(name)
    a = np.empty((7, 5))
    b = np.empty((7, 5))
    c = np.empty((7, 5), dtype=np.float32)
    init(np.random.default_rng(3), a, 7, 5)
    init(np.random.default_rng(3), b, 7, 5)
    init(np.random.default_rng(3), c, 7, 5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c, a.astype(np.float32))
    d = np.empty((7, 5))
    init(np.random.default_rng(4), d, 7, 5)
    assert not np.array_equal(a, d)


@pytest.mark.parametrize("alias, name", [("xavier_normal", "glorot_normal"),
                                         ("xavier_uniform", "glorot_uniform"), ("zero", "zeros")])
def test_aliases(alias, name):
    assert initializers.get(alias).name == name


@pytest.mark.parametrize("act, init", [("relu", "he_normal"), ("leaky_relu", "he_normal"),
                                       ("elu", "he_normal"), ("gelu", "he_normal"), ("silu", "he_normal"),
                                       ("selu", "lecun_normal"),
                                       ("tanh", "glorot_uniform"), ("sigmoid", "glorot_uniform"),
                                       ("softmax", "glorot_uniform"), ("linear", "glorot_uniform")])
def test_default_for_activation(act, init):
    assert initializers.default_for(act) == init
    assert Dense(4, act).init.name == init


def test_dense_defaults_reach_the_weights():
    """A wide relu layer gets He-normal weights and zero biases by default."""
    net = FeedForward([Dense(400, "relu"), Dense(2, "softmax")], loss="nll", n_features=500,
                      dtype="float64", seed=0)
    W, b = net.layers[0].W, net.layers[0].b
    assert W.std() == pytest.approx(math.sqrt(2 / 500), rel=0.01)
    assert not b.any()
    W2 = net.layers[1].W
    assert np.abs(W2).max() <= math.sqrt(6 / 402)


def test_bias_init_is_used():
    net = FeedForward([Dense(300, "tanh", bias_init={"name": "constant", "value": 0.3})],
                      n_features=2, seed=0)
    np.testing.assert_array_equal(net.layers[0].b, np.full((1, 300), 0.3, dtype=np.float32))


def test_unknown_initializer_lists_choices():
    with pytest.raises(SpecError) as exc:
        initializers.get("kaiming")
    assert "'he_normal'" in str(exc.value) and "kaiming" in str(exc.value)


def test_bad_initializer_parameters():
    with pytest.raises(SpecError):
        initializers.get({"name": "normal", "sigma": 1.0})
