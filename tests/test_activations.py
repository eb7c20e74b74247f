"""Activations: forward against direct formulas, backward against derivatives,
the softmax Jacobian-vector product, dtype preservation, extremes, registry."""

import math

import numpy as np
import pytest
from scipy.special import erf

from deepff import activations
from deepff.errors import SpecError

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


# name -> (forward formula, derivative formula), written independently of the module
FORMULAS = {
    "linear": (lambda a: a, lambda a: np.ones_like(a)),
    "relu": (lambda a: np.where(a > 0, a, 0.0), lambda a: (a > 0).astype(float)),
    "leaky_relu": (lambda a: np.where(a > 0, a, 0.01 * a), lambda a: np.where(a > 0, 1.0, 0.01)),
    "elu": (lambda a: np.where(a > 0, a, np.exp(a) - 1), lambda a: np.where(a > 0, 1.0, np.exp(a))),
    "selu": (
        lambda a: SELU_SCALE * np.where(a > 0, a, SELU_ALPHA * (np.exp(a) - 1)),
        lambda a: SELU_SCALE * np.where(a > 0, 1.0, SELU_ALPHA * np.exp(a)),
    ),
    "softplus": (lambda a: np.log(1 + np.exp(a)), _sig),
    "sigmoid": (_sig, lambda a: _sig(a) * (1 - _sig(a))),
    "tanh": (np.tanh, lambda a: 1 - np.tanh(a) ** 2),
    "gelu": (
        lambda a: 0.5 * a * (1 + erf(a / math.sqrt(2))),
        lambda a: 0.5 * (1 + erf(a / math.sqrt(2))) + a * np.exp(-a * a / 2) / math.sqrt(2 * math.pi),
    ),
    "silu": (lambda a: a / (1 + np.exp(-a)), lambda a: _sig(a) * (1 + a * (1 - _sig(a)))),
    "exp": (lambda a: math.e ** a, lambda a: math.e ** a),
}
ELEMENTWISE = sorted(FORMULAS)
ALL = ELEMENTWISE + ["softmax"]


def _grid():
    """(6, 7) pre-activations spanning both signs, none exactly at a kink."""
    rng = np.random.default_rng(0)
    a = rng.normal(scale=2.0, size=(6, 7))
    a[0, :] = [-8.0, -3.0, -0.7, -1e-3, 2e-3, 0.9, 6.0]
    return a


def _softmax_ref(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


BUILT_IN = sorted({activations.get(n).name for n in activations.names()})   # at import, before tests register


def test_every_built_in_activation_has_a_formula_here():
    """A new activation cannot land without its forward formula (and derivative) in FORMULAS."""
    assert sorted(ALL) == BUILT_IN


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_forward_matches_formula(name):
    a = _grid()
    h = activations.get(name).forward(a)
    np.testing.assert_allclose(h, FORMULAS[name][0](a), rtol=1e-12, atol=1e-15)


def test_gelu_is_exact_erf_form_not_tanh_approximation():
    a = np.array([[-2.0, -0.5, 0.5, 1.5, 3.0]])
    h = activations.get("gelu").forward(a)
    exact = a * 0.5 * (1 + erf(a / np.sqrt(2)))
    approx = 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))
    np.testing.assert_allclose(h, exact, rtol=1e-14)
    assert np.max(np.abs(h - approx)) > 1e-5


def test_selu_constants():
    act = activations.get("selu")
    assert act.alpha == pytest.approx(SELU_ALPHA, rel=1e-15)
    assert act.scale == pytest.approx(SELU_SCALE, rel=1e-15)
    h = act.forward(np.array([[1.0, -1.0, -50.0]]))
    np.testing.assert_allclose(
        h, [[SELU_SCALE, SELU_SCALE * SELU_ALPHA * (math.exp(-1) - 1), -SELU_SCALE * SELU_ALPHA]], rtol=1e-14
    )


def test_softmax_forward_matches_formula_and_rows_sum_to_one():
    a = _grid()
    h = activations.get("softmax").forward(a)
    np.testing.assert_allclose(h, _softmax_ref(a), rtol=1e-13)
    np.testing.assert_allclose(h.sum(axis=1), 1.0, rtol=1e-14)


def test_softmax_is_shift_invariant_and_stable_for_huge_logits():
    a = _grid()
    sm = activations.get("softmax")
    np.testing.assert_allclose(sm.forward(a + 1000.0), sm.forward(a), rtol=1e-12)
    with np.errstate(over="raise", invalid="raise"):
        h = sm.forward(np.array([[1000.0, 0.0, -1000.0]]))
    np.testing.assert_array_equal(h, [[1.0, 0.0, 0.0]])


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_backward_is_g_times_derivative(name):
    a = _grid()
    g = np.random.default_rng(1).normal(size=a.shape)
    act = activations.get(name)
    h = act.forward(a)
    ga = act.backward(a, h, g)
    np.testing.assert_allclose(ga, g * FORMULAS[name][1](a), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ALL)
def test_backward_matches_central_difference_of_forward(name):
    """<g, f(a + eps e_ij)> differences give dJ/da_ij for J = sum(g * f(a))."""
    a = _grid()
    g = np.random.default_rng(2).normal(size=a.shape)
    act = activations.get(name)
    ga = act.backward(a, act.forward(a), g)
    eps = 1e-6
    num = np.empty_like(a)
    for idx in np.ndindex(*a.shape):
        ap, am = a.copy(), a.copy()
        ap[idx] += eps
        am[idx] -= eps
        num[idx] = (np.sum(g * act.forward(ap)) - np.sum(g * act.forward(am))) / (2 * eps)
    np.testing.assert_allclose(ga, num, rtol=1e-6, atol=1e-8)


def test_softmax_backward_is_the_jacobian_vector_product():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5, 4))
    g = rng.normal(size=(5, 4))
    sm = activations.get("softmax")
    h = sm.forward(a)
    ga = sm.backward(a, h, g)
    expected = np.empty_like(a)
    for i in range(a.shape[0]):
        J = np.diag(h[i]) - np.outer(h[i], h[i])  # dh_j / da_k, symmetric
        expected[i] = J.T @ g[i]
    np.testing.assert_allclose(ga, expected, rtol=1e-12, atol=1e-15)
    shortcut = g * h * (1 - h)
    assert np.max(np.abs(ga - shortcut)) > 1e-2


@pytest.mark.parametrize("name", ALL)
def test_out_argument_and_in_place_backward(name):
    a = _grid()
    g = np.random.default_rng(4).normal(size=a.shape)
    act = activations.get(name)
    h_ref = act.forward(a)
    ga_ref = act.backward(a, h_ref, g)
    out = np.empty_like(a)
    h = act.forward(a, out=out)
    assert h is out
    np.testing.assert_array_equal(out, h_ref)
    g_inplace = g.copy()
    r = act.backward(a, h_ref, g_inplace, out=g_inplace)
    assert r is g_inplace
    np.testing.assert_allclose(g_inplace, ga_ref, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(a, _grid())  # inputs untouched


@pytest.mark.parametrize("name", ALL)
def test_float32_stays_float32(name):
    a = _grid().astype(np.float32)
    g = np.ones_like(a)
    act = activations.get(name)
    h = act.forward(a)
    assert h.dtype == np.float32
    ga = act.backward(a, h, g)
    assert ga.dtype == np.float32
    np.testing.assert_allclose(h, act.forward(a.astype(np.float64)), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name", [n for n in ALL if n != "exp"])    # e^1000 is inf: see the next test
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_at_plus_minus_1000(name, dtype):
    a = np.array([[-1000.0, -50.0, 0.5, 50.0, 1000.0]], dtype=dtype)
    act = activations.get(name)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        h = act.forward(a)
        ga = act.backward(a, h, np.ones_like(a))
    assert np.isfinite(h).all() and np.isfinite(ga).all()


def test_exp_limits():
    """e^a has no bound: e^1000 is inf (the trainer reports that as divergence), e^-1000 is 0."""
    with np.errstate(over="ignore"):
        h = activations.get("exp").forward(np.array([[-1000.0, 0.0, 1.0, 1000.0]]))
    np.testing.assert_array_equal(h, [[0.0, 1.0, math.e, np.inf]])


def test_sigmoid_and_softplus_limits():
    a = np.array([[-1000.0, 1000.0]])
    np.testing.assert_array_equal(activations.get("sigmoid").forward(a), [[0.0, 1.0]])
    sp = activations.get("softplus").forward(a)
    assert sp[0, 0] == 0.0 and sp[0, 1] == 1000.0
    # softplus(-30) = log1p(e^-30) ~ e^-30, not rounded to zero
    sp30 = activations.get("softplus").forward(np.array([[-30.0]]))[0, 0]
    assert sp30 == pytest.approx(math.exp(-30), rel=1e-12)


@pytest.mark.parametrize(
    "alias, cls",
    [
        ("identity", activations.Linear),
        ("linear", activations.Linear),
        ("logistic", activations.Sigmoid),
        ("swish", activations.SiLU),
        ("ReLU", activations.ReLU),
        ("TANH", activations.Tanh),
    ],
)
def test_aliases_resolve(alias, cls):
    assert type(activations.get(alias)) is cls


def test_get_accepts_config_dict_and_instance():
    act = activations.get({"name": "leaky_relu", "slope": 0.2})
    assert isinstance(act, activations.LeakyReLU) and act.slope == 0.2
    np.testing.assert_allclose(act.forward(np.array([[-1.0, 2.0]])), [[-0.2, 2.0]])
    elu = activations.ELU(alpha=0.5)
    assert activations.get(elu) is elu
    np.testing.assert_allclose(elu.forward(np.array([[-1.0]])), [[0.5 * (math.exp(-1) - 1)]])


@pytest.mark.parametrize("name", ALL)
def test_config_round_trip(name):
    act = activations.get(name)
    assert type(act)(**act.get_config()) == act


def test_unknown_activation_lists_choices():
    with pytest.raises(SpecError) as exc:
        activations.get("relu6")
    msg = str(exc.value)
    assert "relu6" in msg and "valid choices" in msg
    for name in ("relu", "softmax", "gelu", "swish"):
        assert repr(name) in msg
    assert isinstance(exc.value, ValueError)


def test_bad_activation_parameters_raise_spec_error():
    with pytest.raises(SpecError, match="leaky_relu"):
        activations.get({"name": "leaky_relu", "slop": 0.1})
    with pytest.raises(SpecError):
        activations.get(3)


@pytest.mark.parametrize("config", [{"name": "elu", "alpha": float("nan")},
                                    {"name": "leaky_relu", "slope": "steep"},
                                    {"name": "leaky_relu", "slope": float("inf")}])
def test_activation_parameters_are_checked(config):
    with pytest.raises(SpecError, match="must be a finite number"):
        activations.get(config)
