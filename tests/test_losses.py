"""Losses: values against hand formulas, gradients against differences,
sample weights, Huber's delta, fused (from-logits) paths, registry."""

import math

import numpy as np
import pytest
from scipy.special import expit, log_softmax

from deepff import Dense, FeedForward, activations, losses
from deepff.errors import InputError, SpecError

LOSSES = ["neg_log_likelihood", "mse", "mae", "huber", "binary_cross_entropy"]


def _data(loss, n=5, k=3, seed=0):
    """Outputs h and targets y that suit ``loss`` (probabilities for NLL/BCE)."""
    rng = np.random.default_rng(seed)
    if loss == "neg_log_likelihood":
        h = expit(rng.normal(size=(n, k)))
        h /= h.sum(axis=1, keepdims=True)
        y = np.eye(k)[rng.integers(0, k, size=n)]
    elif loss == "binary_cross_entropy":
        h = expit(rng.normal(size=(n, k)))
        y = rng.integers(0, 2, size=(n, k)).astype(float)
    else:
        h = rng.normal(size=(n, k))
        y = rng.normal(size=(n, k))
    return h, y


def test_hand_computed_values():
    h = np.array([[0.5, 0.2, 0.3], [0.1, 0.6, 0.3]])
    y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    nll = losses.get("neg_log_likelihood").value(h, y)
    assert nll == pytest.approx(-(math.log(0.5) + math.log(0.3)) / 2, rel=1e-14)

    hr = np.array([[1.0, 2.0], [0.0, -1.0]])
    yr = np.array([[0.0, 0.0], [0.5, 1.0]])
    # residuals 1, 2, -0.5, -2 over n k = 4 elements
    assert losses.get("mse").value(hr, yr) == pytest.approx((1 + 4 + 0.25 + 4) / 4, rel=1e-14)
    assert losses.get("mae").value(hr, yr) == pytest.approx((1 + 2 + 0.5 + 2) / 4, rel=1e-14)
    # huber delta 1: 0.5, 1*(2-0.5), 0.125, 1.5
    assert losses.get("huber").value(hr, yr) == pytest.approx((0.5 + 1.5 + 0.125 + 1.5) / 4, rel=1e-14)

    hb = np.array([[0.9, 0.2], [0.4, 0.7]])
    yb = np.array([[1.0, 0.0], [1.0, 0.0]])
    bce = -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.3)) / 4
    assert losses.get("binary_cross_entropy").value(hb, yb) == pytest.approx(bce, rel=1e-14)


def test_nll_with_probability_targets():
    h = np.array([[0.25, 0.75]])
    y = np.array([[0.4, 0.6]])
    expected = -(0.4 * math.log(0.25) + 0.6 * math.log(0.75))
    assert losses.get("nll").value(h, y) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("delta, r, per", [(1.0, 0.5, 0.125), (1.0, 3.0, 2.5), (0.5, 0.4, 0.08),
                                           (0.5, 2.0, 0.875), (2.0, -3.0, 4.0), (2.0, 1.0, 0.5)])
def test_huber_delta(delta, r, per):
    loss = losses.get({"name": "huber", "delta": delta})
    assert loss.delta == delta
    h, y = np.array([[r]]), np.array([[0.0]])
    assert loss.value(h, y) == pytest.approx(per, rel=1e-14)
    assert loss.grad(h, y)[0, 0] == pytest.approx(float(np.clip(r, -delta, delta)), rel=1e-14)


@pytest.mark.parametrize("delta", [0, -1.0])
def test_huber_rejects_non_positive_delta(delta):
    with pytest.raises(SpecError, match="delta"):
        losses.get({"name": "huber", "delta": delta})


@pytest.mark.parametrize("name", LOSSES)
def test_grad_matches_central_difference(name):
    h, y = _data(name)
    loss = losses.get(name)
    g = loss.grad(h, y)
    eps = 1e-6
    num = np.empty_like(h)
    for idx in np.ndindex(*h.shape):
        hp, hm = h.copy(), h.copy()
        hp[idx] += eps
        hm[idx] -= eps
        num[idx] = (loss.value(hp, y) - loss.value(hm, y)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", LOSSES)
def test_grad_matches_closed_form(name):
    h, y = _data(name)
    n, k = h.shape
    closed = {
        "neg_log_likelihood": -y / h / n,
        "mse": 2 * (h - y) / (n * k),
        "mae": np.sign(h - y) / (n * k),
        "huber": np.clip(h - y, -1, 1) / (n * k),
        "binary_cross_entropy": (h - y) / (h * (1 - h)) / (n * k),
    }[name]
    np.testing.assert_allclose(losses.get(name).grad(h, y), closed, rtol=1e-12)


@pytest.mark.parametrize("name", LOSSES)
def test_sample_weights_scale_per_sample_terms(name):
    h, y = _data(name)
    n = h.shape[0]
    loss = losses.get(name)
    per = np.array([loss.value(h[i:i + 1], y[i:i + 1]) for i in range(n)])  # each a mean over 1 row
    w = np.array([0.0, 1.0, 2.0, 0.5, 3.0])
    # J_w = (1/n) sum_i w_i l_i: the denominator stays n, weights are not renormalised
    assert loss.value(h, y, w) == pytest.approx(float(np.dot(w, per)) / n, rel=1e-12)
    assert loss.value(h, y, np.full(n, 2.0)) == pytest.approx(2 * loss.value(h, y), rel=1e-13)
    assert loss.value(h, y, np.ones(n)) == pytest.approx(loss.value(h, y), rel=1e-14)
    g, gw = loss.grad(h, y), loss.grad(h, y, w)
    np.testing.assert_allclose(gw, g * w[:, None], rtol=1e-13, atol=1e-16)
    assert not gw[0].any()  # zero weight, zero gradient


def test_grad_out_argument():
    h, y = _data("mse")
    out = np.empty_like(h)
    r = losses.get("mse").grad(h, y, out=out)
    assert r is out
    np.testing.assert_allclose(out, 2 * (h - y) / h.size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nll_general_path_clips_and_stays_consistent(dtype):
    """h = 0 for the true class: a finite value and a zero gradient at the clip."""
    h = np.array([[0.0, 1.0], [0.5, 0.5]], dtype=dtype)
    y = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=dtype)
    loss = losses.get("neg_log_likelihood")
    eps = 1e-15 if dtype == np.float64 else 1e-7
    assert loss.value(h, y) == pytest.approx((-math.log(eps) - math.log(0.5)) / 2, rel=1e-6)
    g = loss.grad(h, y)
    assert np.isfinite(g).all() and g[0, 0] == 0.0
    assert g[1, 0] == pytest.approx(-1 / (0.5 * 2), rel=1e-6)


def test_nll_from_logits_equals_general_path_and_logsumexp():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 4))
    y = np.eye(4)[rng.integers(0, 4, size=6)]
    w = rng.uniform(0.5, 2.0, size=6)
    loss = losses.get("neg_log_likelihood")
    h = np.exp(log_softmax(a, axis=1))
    assert loss.value_from_logits(a, y, w) == pytest.approx(loss.value(h, y, w), rel=1e-12)
    expected = -np.dot(w, (y * log_softmax(a, axis=1)).sum(axis=1)) / 6
    assert loss.value_from_logits(a, y, w) == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(loss.grad_from_logits(a, h, y, w), (h - y) * w[:, None] / 6, rtol=1e-14)


def test_nll_from_logits_is_finite_for_huge_logits():
    a = np.array([[800.0, -800.0, 0.0], [-900.0, 900.0, 1.0]])
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v = losses.get("neg_log_likelihood").value_from_logits(a, y)
    assert v == pytest.approx((1600.0 + 1800.0) / 2, rel=1e-14)


def test_bce_from_logits_equals_general_path_and_is_finite_for_huge_logits():
    rng = np.random.default_rng(6)
    a = rng.normal(scale=3.0, size=(5, 3))
    y = rng.integers(0, 2, size=(5, 3)).astype(float)
    loss = losses.get("binary_cross_entropy")
    h = expit(a)
    assert loss.value_from_logits(a, y) == pytest.approx(loss.value(h, y), rel=1e-10)
    np.testing.assert_allclose(loss.grad_from_logits(a, h, y), (h - y) / a.size, rtol=1e-14)
    big = np.array([[1000.0, -1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v = loss.value_from_logits(big, np.array([[0.0, 1.0]]))
    assert v == pytest.approx(1000.0, rel=1e-14)  # (1000 + 1000) / 2


def test_integer_labels_equal_one_hot_through_the_network():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(8, 4))
    labels = rng.integers(0, 3, size=8)
    net = FeedForward([Dense(5, "tanh"), Dense(3, "softmax")], loss="neg_log_likelihood",
                      n_features=4, dtype="float64", seed=0)
    Y_lab = net.prepare_targets(labels, 8)
    Y_hot = net.prepare_targets(np.eye(3)[labels], 8)
    np.testing.assert_array_equal(Y_lab, Y_hot)
    np.testing.assert_array_equal(net.prepare_targets(labels.reshape(-1, 1), 8), Y_hot)
    Xp = net.prepare_inputs(X)
    for fused in (True, False):
        net.allow_fused = fused
        h = net.forward(Xp).copy()
        expected = -np.mean(np.log(h[np.arange(8), labels]))
        assert net.loss_value(Y_lab) == pytest.approx(expected, rel=1e-12)
        assert net.loss_value(Y_hot) == net.loss_value(Y_lab)


def test_nll_targets_must_be_probability_rows():
    """The fused gradient (h - y)/n assumes rows summing to 1: other rows are refused, not mis-trained."""
    net = FeedForward([Dense(5, "tanh"), Dense(3, "softmax")], loss="nll", n_features=4, dtype="float64", seed=0)
    soft = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])
    np.testing.assert_array_equal(net.prepare_targets(soft, 2), soft)          # soft labels are fine
    for bad, match in (([[1, 1, 0], [0, 1, 0]], "row 0 sums to 2;.*binary_cross_entropy"),
                       ([[1, 0, 0], [0, 0, 0]], "row 1 sums to 0;"),
                       ([[1.5, -0.5, 0], [0, 1, 0]], "negative entry")):
        with pytest.raises(InputError, match=match):
            net.prepare_targets(np.array(bad, dtype=float), 2)
    f32 = FeedForward([Dense(3, "softmax")], loss="nll", n_features=4, dtype="float32", seed=0)
    third = np.full((2, 3), np.float32(1 / 3))                                 # sums to 1 within rounding
    assert f32.prepare_targets(third, 2).dtype == np.float32


def test_poisson_value_from_logits_agrees_with_its_gradient_at_extreme_logits():
    """y log y - y a - y + e^a, unclipped: J keeps falling as a grows more negative, with slope -y."""
    loss = losses.get("poisson")
    y = np.array([[1.0, 3.0]])
    for a0 in (-40.0, -60.0, 0.5):
        a = np.array([[a0, a0]])
        expected = np.mean(y * np.log(y) - y * a - y + np.exp(a))
        assert loss.value_from_logits(a, y) == pytest.approx(expected, rel=1e-13)
        step = 1e-4
        numeric = (loss.value_from_logits(a + [[step, 0]], y) - loss.value_from_logits(a - [[step, 0]], y)) / (2 * step)
        analytic = loss.grad_from_logits(a, np.exp(a), y)[0, 0]
        assert numeric == pytest.approx(analytic, rel=1e-6)
    with np.errstate(over="raise"):
        assert loss.value_from_logits(np.array([[1000.0, 0.0]]), y) == math.inf


def test_poisson_targets_must_not_be_negative():
    net = FeedForward([Dense(2, "exp")], loss="poisson", n_features=3, dtype="float64", seed=0)
    with pytest.raises(InputError, match=r"negative value \(-1\); the poisson loss needs targets >= 0"):
        net.prepare_targets(np.array([[1.0, 2.0], [0.0, -1.0]]), 2)


@pytest.mark.parametrize("alias, name", [("nll", "neg_log_likelihood"),
                                         ("cross_entropy", "neg_log_likelihood"),
                                         ("bce", "binary_cross_entropy"), ("MSE", "mse"),
                                         ("mean_absolute_error", "mae"), ("huber", "huber")])
def test_aliases(alias, name):
    assert losses.get(alias).name == name


def test_tasks_and_fused_pairs():
    assert losses.get("neg_log_likelihood").fused_activation == "softmax"
    assert losses.get("binary_cross_entropy").fused_activation == "sigmoid"
    for name in ("mse", "mae", "huber"):
        loss = losses.get(name)
        assert loss.task == "regression" and loss.fused_activation is None
        with pytest.raises(NotImplementedError):
            loss.value_from_logits(np.zeros((1, 1)), np.zeros((1, 1)))


def test_unknown_loss_lists_choices():
    with pytest.raises(SpecError) as exc:
        losses.get("hinge")
    msg = str(exc.value)
    assert "hinge" in msg and "'neg_log_likelihood'" in msg and "'mse'" in msg


@pytest.mark.parametrize("delta", [0.0, float("inf"), "wide", float("nan")])
def test_huber_delta_is_checked(delta):
    with pytest.raises(SpecError, match="huber delta must be > 0"):
        losses.get({"name": "huber", "delta": delta})


def test_nll_takes_probabilities_off_by_rounding_and_rescales_them():
    """float32 softmax rows or 6-decimal probabilities given to a float64 network sum to 1 only within ~1e-6."""
    net = FeedForward([Dense(3, "softmax")], loss="nll", n_features=4, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    p32 = rng.dirichlet(np.ones(3), size=50).astype(np.float32)
    rounded = np.round(rng.dirichlet(np.ones(3), size=50), 6)
    for y in (p32, rounded):
        Y = net.prepare_targets(y, 50)
        np.testing.assert_allclose(Y.sum(axis=1), 1, rtol=0, atol=1e-15)
        np.testing.assert_allclose(Y, y, atol=2e-6)
    with pytest.raises(InputError, match="row 0 sums to 0.99;"):
        net.prepare_targets(np.array([[0.5, 0.3, 0.19]]), 1)


# ------------------------------------------------------------ every loss, by table
BUILT_IN = sorted({losses.get(n).name for n in losses.names()})   # read at import, before any test registers
FUSED = [name for name in BUILT_IN if losses.get(name).fused_activation]

_H = np.array([[1.0, 2.0], [0.5, 4.0]])
_Y = np.array([[2.0, 0.0], [1.0, 4.0]])
_P = np.array([[0.9, 0.1], [0.3, 0.7]])          # probability rows for the classification losses
_T = np.array([[1.0, 0.0], [1.0, 0.0]])
# name -> (h, y, J written out term by term, by hand)
HAND = {
    "neg_log_likelihood": (_P, _T, -(math.log(0.9) + math.log(0.3)) / 2),
    "binary_cross_entropy": (_P, _T, -(math.log(0.9) + math.log(0.9) + math.log(0.3) + math.log(0.3)) / 4),
    "mse": (_H, _Y, ((1 - 2) ** 2 + 2 ** 2 + (0.5 - 1) ** 2 + 0) / 4),
    "mae": (_H, _Y, (1 + 2 + 0.5 + 0) / 4),
    "huber": (_H, _Y, (0.5 + (2 - 0.5) + 0.125 + 0) / 4),
    # y log(y / h) - y + h: (2 log 2 - 2 + 1) + (0 - 0 + 2) + (log 2 - 1 + 0.5) + (4 log 1 - 4 + 4)
    "poisson": (_H, _Y, (2 * math.log(2) - 1 + 2 + math.log(2) - 0.5 + 0) / 4),
}


def test_every_built_in_loss_has_a_hand_computed_value():
    assert sorted(HAND) == BUILT_IN


@pytest.mark.parametrize("name", BUILT_IN)
def test_hand_computed_value(name):
    h, y, expected = HAND[name]
    loss = losses.get(name)
    assert loss.value(h, y) == pytest.approx(expected, rel=1e-14)
    w = np.array([2.0, 0.0])
    row0 = losses.get(name).value(h[:1], y[:1])
    assert loss.value(h, y, w) == pytest.approx(2 * row0 / 2, rel=1e-14)     # (1/n) sum_i w_i l_i, n = 2


@pytest.mark.parametrize("name", FUSED)
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_value_equals_the_general_value(name, weighted):
    """value(f(a), y) == value_from_logits(a, y) with f the loss's fused activation (softmax, sigmoid, exp)."""
    loss = losses.get(name)
    rng = np.random.default_rng(11)
    a = rng.normal(scale=1.5, size=(7, 3))
    y = {"neg_log_likelihood": np.eye(3)[rng.integers(0, 3, 7)],
         "binary_cross_entropy": rng.integers(0, 2, (7, 3)).astype(float),
         "poisson": rng.poisson(2.0, (7, 3)).astype(float)}[name]
    w = rng.uniform(0.5, 2.0, 7) if weighted else None
    h = activations.get(loss.fused_activation).forward(a)
    assert loss.value_from_logits(a, y, w) == pytest.approx(loss.value(h, y, w), rel=1e-12)
    np.testing.assert_allclose(loss.grad_from_logits(a, h, y, w),
                               activations.get(loss.fused_activation).backward(a, h, loss.grad(h, y, w)),
                               rtol=1e-10, atol=1e-15)


def test_poisson_perfect_prediction_is_zero_on_both_paths():
    """J = 0 exactly where h = y (counts with zeros: y log y = 0 at y = 0, and h = e^a -> 0)."""
    loss = losses.get("poisson")
    y = np.array([[1.0, 3.0, 0.5], [2.0, 7.0, 1e-3]])
    assert loss.value(y, y) == pytest.approx(0.0, abs=1e-15)
    assert loss.value_from_logits(np.log(y), y) == pytest.approx(0.0, abs=1e-14)
    zeros = np.array([[0.0, 2.0]])
    assert loss.value_from_logits(np.array([[-50.0, math.log(2.0)]]), zeros) == pytest.approx(0.0, abs=1e-14)
    assert loss.value(np.array([[0.0, 2.0]]), zeros) == pytest.approx(0.0, abs=1e-14)   # h clipped at eps
    assert loss.value(2 * y, y) > 0.1 and loss.value_from_logits(np.log(2 * y), y) > 0.1


# ----------------------------------------------------------------------------
# reduction: which mean of the batch J is (scikit-learn's "sample_mean" among them)
# ----------------------------------------------------------------------------

_PER_ELEMENT = {
    "mse": lambda h, y: (h - y) ** 2,
    "mae": lambda h, y: np.abs(h - y),
    "huber": lambda h, y: np.where(np.abs(h - y) <= 1, 0.5 * (h - y) ** 2, np.abs(h - y) - 0.5),
    "binary_cross_entropy": lambda h, y: -(y * np.log(h) + (1 - y) * np.log1p(-h)),
    "poisson": lambda h, y: np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / h), 0) - y + h,
    "neg_log_likelihood": lambda h, y: -y * np.log(h),
}


@pytest.mark.parametrize("name", sorted(_PER_ELEMENT))
def test_the_two_reductions_are_the_documented_means(name):
    rng = np.random.default_rng(3)
    h = rng.uniform(0.05, 0.95, (7, 3))
    y = np.eye(3)[rng.integers(0, 3, 7)] if name == "neg_log_likelihood" else rng.uniform(0, 1, (7, 3))
    if name == "neg_log_likelihood":
        h /= h.sum(axis=1, keepdims=True)
    w = rng.uniform(0.2, 3.0, 7)
    per_sample = _PER_ELEMENT[name](h, y).sum(axis=1)
    mean, sample_mean = losses.get(name), losses.get({"name": name, "reduction": "sample_mean"})
    n_terms = 7 if name == "neg_log_likelihood" else 21
    assert mean.value(h, y, w) == pytest.approx(np.dot(w, per_sample) / n_terms, rel=1e-12)
    assert sample_mean.value(h, y, w) == pytest.approx(np.dot(w, per_sample) / w.sum(), rel=1e-12)
    assert sample_mean.value(h, y) == pytest.approx(per_sample.mean(), rel=1e-12)
    # the gradients divide by the same N
    assert_scaled = sample_mean.grad(h, y, w) * w.sum()
    np.testing.assert_allclose(assert_scaled, mean.grad(h, y, w) * n_terms, rtol=1e-12)
    assert sample_mean.get_config()["reduction"] == "sample_mean" and "reduction" not in mean.get_config()


def test_half_squared_error_halves_value_and_gradient():
    rng = np.random.default_rng(4)
    h, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    full, half = losses.get("mse"), losses.get({"name": "mse", "half": True})
    assert half.value(h, y) == pytest.approx(full.value(h, y) / 2, rel=1e-14)
    np.testing.assert_allclose(half.grad(h, y), full.grad(h, y) / 2, rtol=1e-14)
    np.testing.assert_allclose(half.grad(h, y), (h - y) / h.size, rtol=1e-14)   # the residual itself, / N
    assert half.get_config() == {"half": True} and losses.get({"name": "mse", **half.get_config()}).half


@pytest.mark.parametrize("name", ["mse", "neg_log_likelihood", "binary_cross_entropy", "poisson"])
@pytest.mark.parametrize("reduction", ["mean", "sample_mean"])
def test_every_reduction_passes_gradcheck(name, reduction):
    import deepff

    out = {"mse": "linear", "neg_log_likelihood": "softmax", "binary_cross_entropy": "sigmoid", "poisson": "exp"}
    rng = np.random.default_rng(5)
    X = rng.normal(size=(9, 4))
    Y = np.eye(3)[rng.integers(0, 3, 9)] if name == "neg_log_likelihood" else rng.uniform(0, 1, (9, 3))
    for fused in (True, False):
        net = FeedForward([Dense(5, "tanh"), Dense(3, out[name])], loss={"name": name, "reduction": reduction},
                          n_features=4, dtype="float64", seed=2)
        net.allow_fused = fused
        assert deepff.gradcheck(net, X, Y, sample_weight=rng.uniform(0.3, 2, 9)) < 1e-6


def test_reduction_and_half_are_checked():
    with pytest.raises(SpecError, match=r"mse reduction must be one of 'mean', 'sample_mean', got 'sum'"):
        losses.get({"name": "mse", "reduction": "sum"})
    with pytest.raises(SpecError, match=r"mse half must be true or false, got 'yes'"):
        losses.get({"name": "mse", "half": "yes"})


def test_a_sample_mean_of_zero_total_weight_is_an_error_not_a_nan():
    loss = losses.get({"name": "bce", "reduction": "sample_mean"})
    h, y = np.full((3, 1), 0.5), np.ones((3, 1))
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
        loss.value(h, y, np.zeros(3))
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
        loss.grad(h, y, np.zeros(3))
