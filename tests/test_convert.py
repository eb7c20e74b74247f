"""Conversions: scikit-learn's fitted MLPs into deepff.sklearn, deepff networks to and from PyTorch.

About 10 s on 2 cores (scikit-learn fits on digits and diabetes, small torch models).
"""

import re
import warnings

import numpy as np
import pytest
from tests._needs import require_module

import deepff
from deepff.errors import InputError, SpecError

ACTIVATIONS = ["linear", "relu", "leaky_relu", "elu", "selu", "softplus", "sigmoid", "tanh", "gelu", "silu", "exp"]


# -------------------------------------------------------------- scikit-learn
def _sklearn_cases():
    require_module("sklearn", area="scikit-learn conversion")
    from sklearn.datasets import load_diabetes, load_digits
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X, y = load_digits(return_X_y=True)
    X = X / 16
    Xd, yd = load_diabetes(return_X_y=True)
    labels = np.array(["even", "odd"])[y % 2]
    multi = np.column_stack([y % 2, y > 4, y == 3]).astype(int)
    return {
        "classifier": (MLPClassifier(hidden_layer_sizes=(32,), max_iter=15, random_state=0), X, y),
        "binary": (MLPClassifier(hidden_layer_sizes=(24, 12), solver="sgd", learning_rate="invscaling",
                                 max_iter=15, random_state=1), X, labels),
        "multilabel": (MLPClassifier(hidden_layer_sizes=(32,), activation="tanh", max_iter=15, random_state=2),
                       X, multi),
        "regressor": (MLPRegressor(hidden_layer_sizes=(32,), max_iter=40, alpha=1e-3, random_state=3), Xd, yd / 100),
    }


@pytest.mark.parametrize("case", ["classifier", "binary", "multilabel", "regressor"])
def test_from_sklearn_predicts_the_same_and_partial_fit_continues_the_same(case):
    from deepff.sklearn import MLPClassifier, MLPRegressor

    sk, X, y = _sklearn_cases()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # ConvergenceWarning: few epochs on purpose
        sk.fit(X, y)
    ours = deepff.from_sklearn(sk)
    assert type(ours) is (MLPRegressor if case == "regressor" else MLPClassifier)
    assert ours.get_params() == {**ours.get_params(), **{k: v for k, v in sk.get_params().items()
                                                          if k in ours.get_params()}}
    for name in ("n_iter_", "t_", "loss_", "n_layers_", "n_outputs_", "out_activation_", "n_features_in_"):
        assert getattr(ours, name) == getattr(sk, name), name
    assert ours.loss_curve_ == sk.loss_curve_
    if case != "regressor":
        np.testing.assert_array_equal(ours.classes_, sk.classes_)
        assert np.max(np.abs(ours.predict_proba(X) - sk.predict_proba(X))) <= 1e-12
        np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    else:
        assert np.max(np.abs(ours.predict(X) - sk.predict(X))) <= 1e-12
    assert ours.coefs_[0].dtype == np.float64
    # three more epochs on part of the data, each side with its own partial_fit
    before = ours.coefs_[0].copy()
    for start in (0, 100, 200):
        batch = slice(start, start + 250)
        sk.partial_fit(X[batch], y[batch])
        ours.partial_fit(X[batch], y[batch])
    for mine, theirs in zip(ours.coefs_ + ours.intercepts_, sk.coefs_ + sk.intercepts_):
        assert np.max(np.abs(mine - theirs)) <= 1e-9
    assert np.max(np.abs(ours.coefs_[0] - before)) > 1e-7        # the epochs changed the weights
    assert ours.t_ == sk.t_ and ours.loss_ == pytest.approx(sk.loss_, abs=1e-9)


def test_from_sklearn_without_the_optimizer_state_would_differ():
    # the test above can fail: continuing with fresh Adam moments gives other weights
    sk, X, y = _sklearn_cases()["classifier"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(X, y)
    ours = deepff.from_sklearn(sk)
    del ours._optimizer                    # partial_fit then starts a new optimizer
    sk.partial_fit(X[:250], y[:250])
    ours.partial_fit(X[:250], y[:250])
    assert np.max(np.abs(ours.coefs_[0] - sk.coefs_[0])) > 1e-6


def test_from_sklearn_lbfgs_and_refusals():
    require_module("sklearn", area="scikit-learn conversion")
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPRegressor

    sk, X, y = _sklearn_cases()["regressor"]
    sk.set_params(solver="lbfgs", max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(X, y)
    ours = deepff.from_sklearn(sk)
    assert np.max(np.abs(ours.predict(X) - sk.predict(X))) <= 1e-12
    # scikit-learn's regressor offers partial_fit with lbfgs (it reruns L-BFGS from the current weights): so does ours
    assert hasattr(sk, "partial_fit") and hasattr(ours, "partial_fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.partial_fit(X, y)
        ours.partial_fit(X, y)
    assert np.max(np.abs(ours.predict(X) - sk.predict(X))) <= 1e-6
    with pytest.raises(InputError, match="not fitted"):
        deepff.from_sklearn(MLPRegressor())
    with pytest.raises(InputError, match="got LogisticRegression"):
        deepff.from_sklearn(LogisticRegression())


# ------------------------------------------------------------------- PyTorch
@pytest.fixture
def torch():
    return require_module("torch", area="PyTorch conversion")


def _network(act, dtype, batch_norm=True, dropout=0.25):
    net = deepff.Network([deepff.Dense(8, act, batch_norm=batch_norm, dropout=dropout), deepff.Dense(6, "tanh"),
                          deepff.Dense(3, "softmax")], loss="neg_log_likelihood", n_features=5, dtype=dtype, seed=0)
    rng = np.random.default_rng(1)
    for layer in net.layers:
        if layer.batch_norm:
            layer.gamma[...] = rng.uniform(0.5, 2, layer.gamma.shape)
            layer.beta[...] = rng.normal(size=layer.beta.shape)
            layer.running_mean[...] = rng.normal(size=layer.running_mean.shape)
            layer.running_var[...] = rng.uniform(0.3, 3, layer.running_var.shape)
        else:
            layer.b[...] = rng.normal(scale=0.5, size=layer.b.shape)
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_to_torch_and_back_give_the_same_outputs(torch, act, dtype):
    # e^a turns a's float32 rounding (which depends on the order each library sums in) into an absolute
    # error that grows with e^a: keep the exp layer's outputs of order 1 there
    X = np.random.default_rng(2).normal(scale=0.5 if act == "exp" else 2.0, size=(64, 5)).astype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-12
    net = _network(act, dtype)
    seq = to = deepff.to_torch(net)
    assert not seq.training and next(seq.parameters()).dtype == getattr(torch, dtype)
    with torch.no_grad():
        out = to(torch.from_numpy(X)).numpy()
    expected = net.predict_output(X)
    assert np.max(np.abs(out - expected)) <= tol
    back = deepff.from_torch(seq, loss="neg_log_likelihood")
    assert back.dtype == net.dtype and back.spec() == net.spec()
    assert np.max(np.abs(back.predict_output(X) - expected)) <= tol
    np.testing.assert_array_equal(back.get_weights(), net.get_weights())


def test_from_torch_takes_a_trained_torch_model_with_biased_batch_norm(torch):
    torch.manual_seed(0)
    seq = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.BatchNorm1d(16), torch.nn.GELU(),
                              torch.nn.Dropout(0.1), torch.nn.Linear(16, 8), torch.nn.LeakyReLU(0.2),
                              torch.nn.Linear(8, 1))
    X = torch.randn(256, 4)
    y = X[:, :1] ** 2 - X[:, 1:2]
    opt = torch.optim.Adam(seq.parameters(), lr=1e-2)
    for _ in range(30):                           # BN's running statistics and every bias move away from 0
        opt.zero_grad()
        torch.nn.functional.mse_loss(seq(X), y).backward()
        opt.step()
    seq.eval()
    net = deepff.from_torch(seq, loss="mse")
    assert net.layers[0].batch_norm and net.layers[0].dropout == pytest.approx(0.1)
    assert net.layers[1].activation.slope == pytest.approx(0.2)
    with torch.no_grad():
        expected = seq(X).numpy()
    assert np.max(np.abs(net.predict_output(X.numpy()) - expected)) <= 1e-6
    history = net.fit(X.numpy(), y.numpy(), epochs=2, batch_size=32)     # ready to train on in deepff
    assert np.isfinite(history.records[-1]["loss"])


def test_unsupported_modules_are_refused_with_name_and_position(torch):
    nn = torch.nn
    cases = [
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Conv1d(1, 1, 1)), "module 2 (Conv1d) is not supported"),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 4)), "module 0 (ReLU) comes before the first Linear"),
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Tanh()), "module 2 (Tanh) is a second activation"),
        (nn.Sequential(nn.Linear(3, 4), nn.GELU(approximate="tanh")), "module 1 (GELU) is not supported"),
        (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), "Linear(5, 2) follows a layer of width 4"),
    ]
    for seq, message in cases:
        with pytest.raises(SpecError, match=re.escape(message)):
            deepff.from_torch(seq)
    with pytest.raises(InputError, match="torch.nn.Sequential"):
        deepff.from_torch(nn.Linear(3, 4))


def test_to_torch_refuses_a_custom_activation(torch):
    class Cube(deepff.activations.Activation):
        name = "cube_for_torch"

        def forward(self, a, out=None):
            return np.power(a, 3, out=out)

        def backward(self, a, h, g, out=None):
            return np.multiply(g, 3 * a * a, out=out)

    net = deepff.Network([deepff.Dense(3, Cube()), deepff.Dense(1)], n_features=2, seed=0)
    with pytest.raises(SpecError, match="layer 1 uses the custom activation 'cube_for_torch'"):
        deepff.to_torch(net)
