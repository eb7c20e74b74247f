"""Backprop against central finite differences (deepff.gradcheck), float64.

The main sweep is every activation x every loss x 1, 2, 3 hidden layers x
fused / general chain rule, with the same activation in every layer
(hidden and output) where the loss takes it as an output; where it does not
(a linear output for neg_log_likelihood, say), the output layer gets the
loss's own activation (softmax, sigmoid, exp) and the hidden layers keep
the one under test. Biases start non-zero so that no ReLU pre-activation
sits exactly on the kink.
"""

import copy

import numpy as np
import pytest

import deepff
from deepff import Dense, FeedForward, gradcheck, gradcheck_details, gradcheck_report
from deepff.errors import InputError, SpecError
from deepff.regularizers import Penalty, elastic_net

ACTIVATIONS = ["linear", "relu", "leaky_relu", "elu", "selu", "softplus", "sigmoid", "tanh", "gelu",
               "silu", "exp", "softmax"]
LOSSES = ["neg_log_likelihood", "mse", "mae", "huber", "binary_cross_entropy", "poisson"]
N_FEATURES, WIDTH, N_OUT, N_SAMPLES = 4, 5, 3, 6
BIAS = {"name": "normal", "std": 0.5}
TOL = 1e-6


def _X():
    return np.random.default_rng(0).normal(size=(N_SAMPLES, N_FEATURES))


def _y(loss):
    rng = np.random.default_rng(1)
    if loss == "neg_log_likelihood":
        return rng.integers(0, N_OUT, size=N_SAMPLES)                   # class labels
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, size=(N_SAMPLES, N_OUT)).astype(float)  # 0/1 matrix
    if loss == "poisson":
        return rng.poisson(2.0, size=(N_SAMPLES, N_OUT)).astype(float)  # counts
    return rng.normal(size=(N_SAMPLES, N_OUT))                           # regression targets


def _output_activation(act, loss):
    """``act`` when the loss takes it as the output layer's activation, else the loss's own."""
    try:
        deepff.losses.get(loss).check_output(deepff.activations.get(act))
    except SpecError:
        return deepff.losses.get(loss).fused_activation
    return act


def _net(act, loss, hidden, seed=0, **layer_kw):
    layers = [Dense(WIDTH, act, bias_init=BIAS, **layer_kw) for _ in range(hidden)]
    layers.append(Dense(N_OUT, _output_activation(act, loss), bias_init=BIAS))
    return FeedForward(layers, loss=loss, n_features=N_FEATURES, dtype="float64", seed=seed)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "chain"])
@pytest.mark.parametrize("hidden", [1, 2, 3], ids=lambda d: f"depth{d}")
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradcheck_every_activation_loss_depth(act, loss, hidden, fused):
    net = _net(act, loss, hidden)
    net.allow_fused = fused
    out = _output_activation(act, loss)
    expect_fused = fused and (out, loss) in {("softmax", "neg_log_likelihood"),
                                             ("sigmoid", "binary_cross_entropy"), ("exp", "poisson")}
    assert net.fused == expect_fused
    # three exp layers into a sigmoid saturate it at full input scale (1 - h ~ 1e-7), where the
    # central differences of the chain path lose digits: halve the inputs there
    X = 0.5 * _X() if act == "exp" and out != act else _X()
    err = gradcheck(net, X, _y(loss))
    assert err < TOL


def test_losses_refuse_output_activations_whose_values_they_cannot_take():
    """The pairs the sweep replaces: e.g. a linear output with neg_log_likelihood clipped h > 1 to a loss of 0."""
    refused = {(a, lo) for a in ACTIVATIONS for lo in LOSSES if _output_activation(a, lo) != a}
    assert {a for a, lo in refused if lo == "neg_log_likelihood"} == set(ACTIVATIONS) - {"softmax"}
    assert {a for a, lo in refused if lo == "binary_cross_entropy"} == set(ACTIVATIONS) - {"sigmoid", "softmax"}
    assert {a for a, lo in refused if lo == "poisson"} == {"linear", "leaky_relu", "elu", "selu", "tanh", "gelu",
                                                            "silu"}
    assert not {lo for _, lo in refused} & {"mse", "mae", "huber"}
    with pytest.raises(SpecError, match="neg_log_likelihood needs an output layer of probabilities summing to 1, "
                                        "which 'linear' does not give; use the 'softmax' activation"):
        FeedForward([Dense(4, "relu"), Dense(2, "linear")], loss="nll")
    with pytest.raises(SpecError, match="binary_cross_entropy needs outputs in \\[0, 1\\], which 'tanh'"):
        FeedForward([Dense(2, "tanh")], loss="bce")

    class Custom(deepff.activations.Linear):      # a user's activation of unknown range is taken
        name = "custom_identity_for_the_test"
        output_range = None

    assert FeedForward([Dense(2, Custom())], loss="nll").loss.name == "neg_log_likelihood"


def test_sweep_size():
    """12 activations x 6 losses x 3 depths x 2 paths = 432 checks above, and none is left out."""
    assert len(ACTIVATIONS) * len(LOSSES) * 3 * 2 == 432
    assert set(ACTIVATIONS) == set(deepff.activations.REGISTRY.classes)
    assert set(LOSSES) == set(deepff.losses.REGISTRY.classes)


@pytest.mark.parametrize("act, loss", [("softmax", "neg_log_likelihood"), ("sigmoid", "binary_cross_entropy"),
                                       ("tanh", "mse"), ("relu", "huber")])
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_with_sample_weights(act, loss, fused):
    net = _net(act, loss, 2)
    net.allow_fused = fused
    w = np.random.default_rng(2).uniform(0.0, 3.0, size=N_SAMPLES)
    assert gradcheck(net, _X(), _y(loss), sample_weight=w) < TOL


@pytest.mark.parametrize("penalty", [Penalty(l1=0.01), Penalty(l2=0.1), elastic_net(0.05, 0.3),
                                     Penalty(l1=0.02, l2=0.05)], ids=["l1", "l2", "elastic_net", "l1+l2"])
@pytest.mark.parametrize("act, loss", [("softmax", "neg_log_likelihood"), ("elu", "mse")])
def test_gradcheck_with_penalty(penalty, act, loss):
    net = _net(act, loss, 2)
    report = gradcheck_report(net, _X(), _y(loss), penalty=penalty)
    assert max(report.values()) < TOL
    # the penalty really is part of what was checked: the gradient differs without it
    net.forward(net.prepare_inputs(_X()), training=True)
    Y = net.prepare_targets(_y(loss), N_SAMPLES)
    net.backward(Y)
    g0 = net.params.grad.copy()
    penalty.add_grad(net.params)
    assert not np.allclose(net.params.grad, g0)


@pytest.mark.parametrize("act, loss", [("relu", "neg_log_likelihood"), ("tanh", "mse"),
                                       ("sigmoid", "binary_cross_entropy"), ("gelu", "huber")])
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_batch_norm_training_mode(act, loss, fused):
    layers = [Dense(WIDTH, act, batch_norm=True), Dense(WIDTH, act, batch_norm=True, bias_init=BIAS),
              Dense(N_OUT, _output_activation(act, loss), bias_init=BIAS)]
    net = FeedForward(layers, loss=loss, n_features=N_FEATURES, dtype="float64", seed=0)
    net.allow_fused = fused
    # move gamma and beta off their initial 1 and 0 so their gradients are generic
    rng = np.random.default_rng(3)
    for layer in layers[:2]:
        layer.gamma[...] = rng.uniform(0.5, 1.5, size=layer.gamma.shape)
        layer.beta[...] = rng.normal(scale=0.3, size=layer.beta.shape)
    report = gradcheck_report(net, _X(), _y(loss), training=True)
    assert {"layer1.gamma", "layer1.beta", "layer2.gamma", "layer2.beta"} <= set(report)
    assert "layer1.b" not in report
    assert max(report.values()) < TOL


def test_gradcheck_batch_norm_evaluation_mode():
    layers = [Dense(WIDTH, "tanh", batch_norm=True), Dense(N_OUT, "softmax")]
    net = FeedForward(layers, loss="nll", n_features=N_FEATURES, dtype="float64", seed=0)
    layers[0].running_mean[...] = 0.3
    layers[0].running_var[...] = 2.0
    assert gradcheck(net, _X(), _y("neg_log_likelihood"), training=False) < TOL


@pytest.mark.parametrize("act, loss", [("relu", "neg_log_likelihood"), ("sigmoid", "mse"),
                                       ("selu", "binary_cross_entropy")])
def test_gradcheck_with_dropout(act, loss):
    layers = [Dense(WIDTH, act, bias_init=BIAS, dropout=0.4), Dense(WIDTH, act, bias_init=BIAS, dropout=0.2),
              Dense(N_OUT, _output_activation(act, loss), bias_init=BIAS)]
    net = FeedForward(layers, loss=loss, n_features=N_FEATURES, dtype="float64", seed=0)
    X, y = _X(), _y(loss)
    assert gradcheck(net, X, y) < TOL
    # the masks are live: two training passes without replaying the generator give
    # different losses, so the check above only passes because the masks were held fixed
    Xp, Y = net.prepare_inputs(X), net.prepare_targets(y, N_SAMPLES)
    net.forward(Xp, training=True)
    assert (layers[0]._workspace(N_SAMPLES).mask == 0).any()
    j1 = net.loss_value(Y)
    net.forward(Xp, training=True)
    assert net.loss_value(Y) != j1


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    """The check can fail: a tanh whose backward uses 1 - h instead of 1 - h^2."""
    net = _net("tanh", "mse", 2)
    assert gradcheck(net, _X(), _y("mse")) < TOL
    monkeypatch.setattr(deepff.activations.Tanh, "backward",
                        lambda self, a, h, g, out=None: np.multiply(g, 1 - h, out=out))
    assert gradcheck(net, _X(), _y("mse")) > 1e-3


def test_gradcheck_detects_a_missing_bias_gradient(monkeypatch):
    net = _net("sigmoid", "mse", 1)
    original = Dense.backward_linear

    def no_bias(self, g_z, input_grad=True):
        out = original(self, g_z, input_grad)
        self.db[...] = 0
        return out

    monkeypatch.setattr(Dense, "backward_linear", no_bias)
    report = gradcheck_report(net, _X(), _y("mse"))
    assert report["layer1.b"] > 0.5 and report["layer1.W"] < TOL


def test_report_names_every_parameter_array():
    net = _net("tanh", "mse", 2)
    report = gradcheck_report(net, _X(), _y("mse"))
    assert list(report) == ["layer1.W", "layer1.b", "layer2.W", "layer2.b", "layer3.W", "layer3.b"]
    assert gradcheck(net, _X(), _y("mse")) == max(report.values())


def test_gradcheck_leaves_the_network_unchanged():
    layers = [Dense(WIDTH, "relu", batch_norm=True), Dense(WIDTH, "relu", dropout=0.3, bias_init=BIAS),
              Dense(N_OUT, "softmax")]
    net = FeedForward(layers, loss="nll", n_features=N_FEATURES, dtype="float64", seed=0)
    theta = net.get_weights()
    buffers = copy.deepcopy(net.buffers())
    rng_state = copy.deepcopy(net.dropout_rng.bit_generator.state)
    gradcheck(net, _X(), _y("neg_log_likelihood"))
    np.testing.assert_array_equal(net.params.theta, theta)
    for k, v in net.buffers().items():
        np.testing.assert_array_equal(v, buffers[k])
    assert net.dropout_rng.bit_generator.state == rng_state


def test_gradcheck_refuses_float32():
    net = FeedForward([Dense(N_OUT, "tanh")], loss="mse", n_features=N_FEATURES, seed=0)
    with pytest.raises(InputError, match="float64"):
        gradcheck(net, _X(), _y("mse"))


def test_gradcheck_refuses_a_non_finite_loss():
    # exp stacked three deep overflows for inputs of this size: nothing to check, say so
    net = _net("exp", "mse", 2)
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(InputError, match="overflowed"):
            gradcheck(net, _X() * 30, _y("mse"))


def _cancelling_mae_net():
    """A linear net whose bias gradient is exactly zero: the residuals' signs cancel."""
    X = np.array([[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [1.0, 1.0]])
    y = np.array([0.6, -0.6, 0.8, -0.8])
    net = FeedForward([Dense(1)], loss="mae", n_features=2, dtype="float64", seed=0)
    net.layers[0].W[...] = 0.0
    return net, X, y


def test_zero_true_gradient_is_not_reported_as_noise_over_noise():
    net, X, y = _cancelling_mae_net()
    report = gradcheck_report(net, X, y)
    assert report["layer1.b"] < 1e-6          # it used to be 1.0: rounding noise divided by itself
    assert report["layer1.W"] < 1e-6
    assert gradcheck(net, X, y) < 1e-6


def test_a_wrong_small_gradient_next_to_a_zero_one_is_still_caught(monkeypatch):
    net, X, y = _cancelling_mae_net()
    real = net.backward

    def off_by_a_little(Y, w=None):
        real(Y, w)
        net.params.grad[-1] += 1e-5          # the bias's gradient should be 0

    monkeypatch.setattr(net, "backward", off_by_a_little)
    assert gradcheck_report(net, X, y)["layer1.b"] == pytest.approx(1.0)


def test_details_say_the_absolute_tolerance_decided_a_zero_gradient():
    """relu + mae with cancelling rows: the output bias's true gradient is exactly 0, and atol passes it."""
    X = np.array([[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [1.0, 1.0]])
    y = np.array([0.6, -0.6, 0.8, -0.8])               # residual signs +,-,+,-: they cancel in the mean
    net = FeedForward([Dense(3, "relu", bias_init={"name": "constant", "value": 0.5}), Dense(1)],
                      loss="mae", n_features=2, dtype="float64", seed=0)
    net.layers[1].W[...] = 0.0                          # predictions 0: every residual keeps its sign
    net.layers[1].b[...] = 0.0
    details = gradcheck_details(net, X, y)
    out_b = details["layer2.b"]
    assert out_b["decided_by"] == "atol" and out_b["error"] < 1e-6 and out_b["relative"] > 1e-3
    assert out_b["rms_diff"] <= out_b["atol"] == pytest.approx(100 * np.finfo(float).eps / 1e-6)
    assert gradcheck(net, X, y) < 1e-6
    # With no absolute tolerance, the noise over noise ratio comes back: the relative error decides.
    strict = gradcheck_details(net, X, y, atol=0.0)
    assert strict["layer2.b"]["decided_by"] == "rtol"
    assert strict["layer2.b"]["error"] == strict["layer2.b"]["relative"] > 1e-3
    assert all(d["decided_by"] == "rtol" for name, d in details.items() if name != "layer2.b")


def test_a_wrong_gradient_is_decided_by_the_relative_error(monkeypatch):
    net, X, y = _cancelling_mae_net()
    real = net.backward

    def off(Y, w=None):
        real(Y, w)
        net.params.grad[-1] += 1e-3

    monkeypatch.setattr(net, "backward", off)
    bias = gradcheck_details(net, X, y)["layer1.b"]
    assert bias["decided_by"] == "rtol" and bias["error"] == pytest.approx(1.0)
    assert bias["rms_diff"] == pytest.approx(1e-3, rel=1e-6)
    # a user's own atol above the error lets it through, as numpy.allclose would
    assert gradcheck_details(net, X, y, atol=1e-2)["layer1.b"]["decided_by"] == "atol"


@pytest.mark.parametrize("atol", [-1e-8, float("nan"), "big"])
def test_gradcheck_refuses_a_bad_atol(atol):
    net, X, y = _cancelling_mae_net()
    with pytest.raises(SpecError, match="atol must be >= 0"):
        gradcheck(net, X, y, atol=atol)


@pytest.mark.parametrize("tamper", ["flip", "zero"])
def test_tiny_but_wrong_gradients_are_still_caught(tamper, monkeypatch):
    """Gradients of ~1e-7 (a fit whose residuals are ~3e-7) with the wrong sign, or dropped."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    net = FeedForward([Dense(4, "tanh"), Dense(1)], loss="mse", n_features=3, dtype="float64", seed=1)
    y = net.predict(X) + 3e-7
    assert gradcheck(net, X, y) < 1e-6            # right, although every gradient is tiny
    real = net.backward

    def wrong(Y, w=None):
        real(Y, w)
        if tamper == "flip":
            net.params.grad *= -1
        else:
            net.params.grad[...] = 0

    monkeypatch.setattr(net, "backward", wrong)
    report = gradcheck_report(net, X, y)
    assert report["layer2.W"] == pytest.approx(1.0) and report["layer1.W"] == pytest.approx(1.0), report


def test_gradcheck_takes_a_classic_net_and_a_penalty_dict():
    spec = [{"layer_type": "input", "n_features": 3},
            {"layer_type": "fullyconn", "n_neurons": 4, "activation": "tanh"},
            {"layer_type": "output", "n_neurons": 2, "activation": "softmax",
             "loss_type": "neg_log_likelihood"}]
    net = deepff.Net(layers=spec, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 2, 6)
    assert gradcheck(net, X, y) < 1e-6
    as_dict = gradcheck_report(net.network, X, y, penalty={"l2": 0.1, "l1": 0.01})
    as_object = gradcheck_report(net.network, X, y, penalty=Penalty(l1=0.01, l2=0.1))
    assert as_dict == as_object and max(as_dict.values()) < 1e-6


@pytest.mark.parametrize("bad, error, match", [
    ("unbuilt", deepff.InputError, "no weights yet"),
    ("eps", deepff.SpecError, "eps must be > 0"),
    ("object", deepff.InputError, "checks a deepff network"),
])
def test_gradcheck_names_bad_arguments(bad, error, match):
    net = FeedForward([Dense(2, "softmax")], loss="nll", dtype="float64",
                      n_features=None if bad == "unbuilt" else 3)
    X, y = np.ones((4, 3)), np.array([0, 1, 0, 1])
    with pytest.raises(error, match=match):
        gradcheck(object() if bad == "object" else net, X, y, eps=0.0 if bad == "eps" else 1e-6)


def test_gradcheck_warns_when_a_pre_activation_sits_on_a_relu_kink():
    """A blank input row with zero biases puts ReLU pre-activations at exactly 0, where the central
    difference reads 1/2 and backprop (rightly) 0: the report flags the bias, and a warning says why."""
    from deepff.gradcheck import GradcheckWarning

    net = FeedForward([Dense(8, "relu"), Dense(3, "softmax")], loss="nll", n_features=4, dtype="float64", seed=0)
    X = _X()
    X[3] = 0.0
    with pytest.warns(GradcheckWarning, match="8 pre-activation\\(s\\) of layer1 lie on .* kink of relu at 0"):
        report = gradcheck_report(net, X, _y("neg_log_likelihood"))
    assert report["layer1.b"] > 1e-3 and report["layer1.W"] < TOL
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # off the kink: no warning, and a pass
        assert gradcheck(_net("relu", "neg_log_likelihood", 2), _X(), _y("neg_log_likelihood")) < TOL
