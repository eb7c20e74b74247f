"""The compiled whole step (deepff._kernels.dense_step_kernel), the engine's fast path (deepff._fused_step).

It must agree with the numpy step (net.forward, the loss, net.backward, the
penalty, the optimizer) that it replaces, through the Trainer (Network.fit)
and through the scikit-learn estimators, and its gradient must be the loss's.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import deepff
from _needs import require_kernels
from deepff import _fused_step, _kernels
from deepff import sklearn as dsk
from deepff.layers import Dense
from deepff.network import FeedForward
from deepff.regularizers import Penalty
from deepff.training import Trainer

require_kernels()


def _data(task, n=230, dtype=np.float64):
    if task == "regression":
        X, y = make_regression(n_samples=n, n_features=7, n_targets=1, noise=3.0, random_state=1)
        y = y / y.std()
    elif task == "multi-output":
        X, y = make_regression(n_samples=n, n_features=7, n_targets=3, noise=3.0, random_state=1)
        y = y / y.std()
    else:
        X, y = load_digits(return_X_y=True)
        X, y = X[:n], y[:n]
        if task == "binary":
            y = y % 2
        elif task == "multilabel":
            y = np.stack([y % 2, y > 4, y % 3 == 0], axis=1).astype(int)
    return StandardScaler().fit_transform(X).astype(dtype), y


def _fit(cls, X, y, engine, monkeypatch, sample_weight=None, **params):
    """Fit with the compiled step, or with it switched off (``engine``)."""
    with monkeypatch.context() as m, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if engine:
            m.setattr(_fused_step, "ENABLED", False)
        return cls(**params).fit(X, y, sample_weight=sample_weight)


CASES = {
    "softmax-relu-adam": ("classification", {}),
    "softmax-relu-sgd-nesterov": ("classification", {"solver": "sgd", "learning_rate_init": 0.05}),
    "softmax-logistic-sgd-plain": ("classification", {"solver": "sgd", "activation": "logistic",
                                                      "nesterovs_momentum": False, "learning_rate_init": 0.1}),
    "softmax-identity-no-momentum": ("classification", {"solver": "sgd", "activation": "identity",
                                                        "momentum": 0.0, "learning_rate_init": 0.01}),
    "three-hidden-layers": ("classification", {"hidden_layer_sizes": (15, 9, 6), "alpha": 1e-2}),
    "per-layer-activations": ("classification", {"hidden_layer_sizes": (12, 8),
                                                 "activation": ["logistic", "relu"]}),
    "binary": ("binary", {"alpha": 0.0}),
    "multilabel": ("multilabel", {"hidden_layer_sizes": (10, 10)}),
    "regression": ("regression", {"solver": "sgd", "learning_rate_init": 0.01}),
    "multi-output-regression": ("multi-output", {"activation": "logistic"}),
    "adaptive": ("classification", {"solver": "sgd", "learning_rate": "adaptive", "tol": 1e-2,
                                    "n_iter_no_change": 1, "learning_rate_init": 0.05}),
    "deepff-schedule": ("classification", {"schedule": "cosine"}),
    "no-shuffle-odd-batches": ("classification", {"shuffle": False, "batch_size": 64}),
    "invscaling": ("classification", {"solver": "sgd", "learning_rate": "invscaling", "power_t": 0.3,
                                      "learning_rate_init": 0.05}),
    "early-stopping": ("classification", {"early_stopping": True, "n_iter_no_change": 3}),
    "class-weight": ("classification", {"class_weight": "balanced"}),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_compiled_step_agrees_with_the_engine(case, compiled_calls, monkeypatch):
    task, params = case
    X, y = _data(task)
    cls = dsk.MLPRegressor if task in ("regression", "multi-output") else dsk.MLPClassifier
    params = {"hidden_layer_sizes": (16,), "max_iter": 12, "random_state": 0, **params}
    fast = _fit(cls, X, y, False, monkeypatch, **params)
    n_fast = compiled_calls["steps"]
    slow = _fit(cls, X, y, True, monkeypatch, **params)
    assert n_fast > 0 and compiled_calls["steps"] == n_fast   # the first fit used the compiled step, the second not
    assert fast.n_iter_ == slow.n_iter_ and fast.t_ == slow.t_
    for a, b in zip(fast.coefs_ + fast.intercepts_, slow.coefs_ + slow.intercepts_, strict=True):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert_allclose(fast.loss_curve_, slow.loss_curve_, rtol=1e-11)
    if params.get("early_stopping"):
        assert_allclose(fast.validation_scores_, slow.validation_scores_, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_sample_weights_and_float32(weighted, compiled_calls, monkeypatch):
    X, y = _data("classification", dtype=np.float32)
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y)) if weighted else None
    params = {"hidden_layer_sizes": (16,), "max_iter": 8, "random_state": 0, "alpha": 1e-3}
    fast = _fit(dsk.MLPClassifier, X, y, False, monkeypatch, sample_weight=w, **params)
    n_fast = compiled_calls["steps"]
    slow = _fit(dsk.MLPClassifier, X, y, True, monkeypatch, sample_weight=w, **params)
    assert n_fast > 0 and compiled_calls["steps"] == n_fast   # the first fit used the compiled step, the second not
    assert fast.coefs_[0].dtype == np.float32
    for a, b in zip(fast.coefs_ + fast.intercepts_, slow.coefs_ + slow.intercepts_, strict=True):
        assert_allclose(a, b, rtol=2e-4, atol=1e-5)
    assert_allclose(fast.loss_curve_, slow.loss_curve_, rtol=1e-5)


def test_weights_change_the_compiled_fit(compiled_calls, monkeypatch):
    """The kernel reads the weights: weighting one class changes the fit; doubling all does not (alpha 0)."""
    X, y = _data("classification")
    params = {"hidden_layer_sizes": (16,), "max_iter": 5, "random_state": 0, "alpha": 0.0}
    fits = []
    for w in (None, np.full(len(y), 2.0), np.where(y == 3, 5.0, 1.0)):
        before = compiled_calls["steps"]
        fits.append(_fit(dsk.MLPClassifier, X, y, False, monkeypatch, sample_weight=w, **params))
        assert compiled_calls["steps"] > before                     # each fit took the compiled step
    plain, doubled, skewed = fits
    assert_allclose(doubled.coefs_[0], plain.coefs_[0], rtol=1e-12, atol=1e-15)
    assert not np.allclose(skewed.coefs_[0], plain.coefs_[0])


def test_a_batch_of_zero_weight_is_the_engines_error(compiled_calls, monkeypatch):
    """Not a silent NaN fit reported as "non-finite parameter weights": the engine's ZeroDivisionError."""
    X, y = _data("classification", n=60)
    w = np.ones(len(y))
    w[:10] = 0
    for engine in (False, True):
        with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
            _fit(dsk.MLPClassifier, X, y, engine, monkeypatch, sample_weight=w, batch_size=10, shuffle=False,
                 hidden_layer_sizes=(4,), max_iter=2)
    assert compiled_calls["steps"] == 0     # the check runs before the kernel


def test_kernel_refuses_a_scratch_buffer_too_small():
    a = _kernel_args(0, [3, 1], False, _lossargs(0, 1))
    a["scratch"] = a["scratch"][:-1]
    with pytest.raises(ValueError, match="scratch buffer too small"):
        _run(_kernels.dense_step_kernel(), a, a["theta"])


def test_partial_fit_and_warm_start_use_it(compiled_calls, monkeypatch):
    X, y = _data("classification")
    params = {"hidden_layer_sizes": (16,), "random_state": 0}
    ests = []
    for engine in (False, True):
        with monkeypatch.context() as m:
            if engine:
                m.setattr(_fused_step, "ENABLED", False)
            est = dsk.MLPClassifier(**params)
            for start in range(0, 200, 50):
                est.partial_fit(X[start:start + 50], y[start:start + 50], classes=np.arange(10))
            ests.append(est)
    fast, slow = ests
    assert compiled_calls["steps"] > 0
    for a, b in zip(fast.coefs_ + fast.intercepts_, slow.coefs_ + slow.intercepts_, strict=True):
        assert_allclose(a, b, rtol=1e-10, atol=1e-13)


OTHER_PATHS = {
    "dropout": {"dropout": 0.2},
    "batch_norm": {"batch_norm": True},
    "gelu": {"activation": "gelu"},
    "tanh": {"activation": "tanh"},          # numba's scalar tanh is slower than numpy's vector tanh
    "tanh-in-one-layer": {"hidden_layer_sizes": (8, 8), "activation": ["relu", "tanh"]},
    "rmsprop": {"solver": "rmsprop"},
}


@pytest.mark.parametrize("params", OTHER_PATHS.values(), ids=OTHER_PATHS.keys())
def test_what_it_does_not_cover_takes_the_engine(params, compiled_calls, monkeypatch):
    X, y = _data("classification", n=120)
    _fit(dsk.MLPClassifier, X, y, False, monkeypatch, **{"hidden_layer_sizes": (8,), "max_iter": 2,
                                                         "random_state": 0, **params})
    assert compiled_calls["steps"] == 0


def test_poisson_and_sparse_take_the_engine(compiled_calls, monkeypatch):
    X, y = _data("regression", n=120)
    _fit(dsk.MLPRegressor, X, np.exp(y), False, monkeypatch, loss="poisson", max_iter=2, random_state=0)
    _fit(dsk.MLPRegressor, sp.csr_matrix(X), y, False, monkeypatch, max_iter=2, random_state=0)
    assert compiled_calls["steps"] == 0
    _fit(dsk.MLPRegressor, X, y, False, monkeypatch, max_iter=2, random_state=0)
    assert compiled_calls["steps"] > 0


# ----------------------------------------------------------------------------
# the kernel on its own: its gradient is the loss's (finite differences)
# ----------------------------------------------------------------------------

def _lossargs(out_code, code, l2=0.0, per_sample=False, half=False):
    """The kernel's lossargs: c and gc of the output's loss, N's code, the penalty, a slot for its value."""
    c = 0.5 if half else 1.0
    return np.array([c, 2 * c if out_code == 2 else 1.0, code, l2, float(per_sample), 0.0, 0.0, 1.0])


def _kernel_args(out_code, acts, weighted, lossargs, seed=0):
    rng = np.random.default_rng(seed)
    n, dims = 9, [4, 5, 3, 2 if out_code != 2 else 1]
    X = rng.normal(size=(n + 3, dims[0]))
    if out_code == 0:
        Y = np.eye(dims[-1])[rng.integers(0, dims[-1], n + 3)]
    elif out_code == 1:
        Y = rng.integers(0, 2, (n + 3, dims[-1])).astype(float)
    else:
        Y = rng.normal(size=(n + 3, dims[-1]))
    W = rng.uniform(0.5, 2.0, n + 3)
    idx = rng.permutation(n + 3)[:n].astype(np.int64)
    sizes = [(dims[i], dims[i + 1]) for i in range(len(dims) - 1)]
    woff, boff, pos = [], [], 0
    for i, o in sizes:
        woff.append(pos)
        boff.append(pos + i * o)
        pos += i * o + o
    theta = rng.normal(size=pos) * 0.8
    mask = np.zeros(pos)
    for (i, o), s in zip(sizes, woff):
        mask[s:s + i * o] = 1
    d = np.array(dims, dtype=np.int64)
    return dict(X=X, Y=Y, W=W, weighted=weighted, idx=idx, theta=theta, mask=mask, dims=d,
                woff=np.array(woff, dtype=np.int64), boff=np.array(boff, dtype=np.int64),
                acts=np.array(acts + [0], dtype=np.int64), out_code=out_code,
                scratch=np.empty(_kernels.step_scratch_size(n, dims)), lossargs=lossargs)


def _run(kernel, a, theta):
    """(loss at theta, the normalised gradient): plain SGD with lr 1 moves theta by -gradient."""
    t = theta.copy()
    vel = np.zeros_like(t)
    hyper = np.zeros(_kernels.STEP_HYPER)
    hyper[0], hyper[2] = 1.0, 1.0                     # SGD: lr 1, no momentum, no dampening, no flags
    loss = kernel(a["X"], a["Y"], a["W"], a["weighted"], a["idx"], t, np.empty_like(t), a["mask"], a["dims"],
                  a["woff"], a["boff"], a["acts"], a["out_code"], a["scratch"], a["lossargs"], 1, vel, vel, vel, hyper)
    return loss, theta - t


REDUCTIONS = {"mean": (0, False), "sample-mean": (2, True), "nll-mean-over-rows": (1, False)}


@pytest.mark.parametrize("reduction", REDUCTIONS.values(), ids=REDUCTIONS.keys())
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("out_code", [0, 1, 2], ids=["softmax-nll", "sigmoid-bce", "linear-squared-error"])
@pytest.mark.parametrize("acts", [[3, 1], [1, 0], [0, 3]], ids=["relu-logistic", "logistic-identity", "identity-relu"])
def test_kernel_gradient_matches_finite_differences(acts, out_code, weighted, reduction):
    kernel = _kernels.dense_step_kernel()
    code, per_sample = reduction
    a = _kernel_args(out_code, acts, weighted, _lossargs(out_code, code, l2=0.3, per_sample=per_sample,
                                                          half=out_code == 2 and per_sample))
    theta = a["theta"]
    _, grad = _run(kernel, a, theta)
    eps = 1e-6
    numeric = np.empty_like(theta)
    for k in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[k] += eps
        tm[k] -= eps
        numeric[k] = (_run(kernel, a, tp)[0] - _run(kernel, a, tm)[0]) / (2 * eps)
    err = np.abs(grad - numeric).max() / max(np.abs(grad).max(), np.abs(numeric).max())
    assert err < 1e-6


@pytest.mark.parametrize("lr", [1.0, 0.3])
@pytest.mark.parametrize("out_code", [0, 1, 2], ids=["softmax-nll", "sigmoid-bce", "linear-squared-error"])
def test_plain_sgd_inside_the_products_moves_theta_as_the_update_pass_does(out_code, lr, monkeypatch):
    """W <- W - lr h^T g inside numpy's gemm (beta = 1) equals dW = h^T g, then theta -= lr grad."""
    from deepff import _blas

    if _blas.gemms()[2] == 0:
        pytest.skip("numpy's BLAS has no 64-bit-integer gemm here: the step never fuses the update")
    a = _kernel_args(out_code, [3, 1], True, _lossargs(out_code, 0))
    hyper = np.zeros(_kernels.STEP_HYPER)
    hyper[0], hyper[2] = lr, 1.0                       # plain SGD: no momentum, no decay, no flags
    moved = {}
    for route in ("inside the product", "an update pass"):
        if route == "an update pass":                  # without numpy's gemm the step keeps the pass
            monkeypatch.setitem(_blas._FOUND, "gemms", np.zeros(3, dtype=np.int64))
        t, grad = a["theta"].copy(), np.full_like(a["theta"], np.nan)
        vel = np.zeros_like(t)
        _kernels.dense_step_kernel()(a["X"], a["Y"], a["W"], a["weighted"], a["idx"], t, grad, a["mask"],
                                     a["dims"], a["woff"], a["boff"], a["acts"], a["out_code"], a["scratch"],
                                     a["lossargs"], 2, vel, vel, vel, hyper)
        moved[route] = (t, grad)
    assert_allclose(moved["inside the product"][0], moved["an update pass"][0], rtol=1e-13, atol=1e-14)
    assert not np.array_equal(moved["inside the product"][0], a["theta"])
    assert np.isnan(moved["inside the product"][1][a["mask"] == 1]).all()      # W's gradient never written
    assert np.isfinite(moved["an update pass"][1]).all()


ADAM_RULES = {"pytorch": {}, "pytorch-amsgrad-decay": {"amsgrad": True, "weight_decay": 0.01},
              "scikit-learn": {"fold_bias_correction": True},
              "scikit-learn-amsgrad-decay": {"fold_bias_correction": True, "amsgrad": True, "weight_decay": 0.01}}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rule", ADAM_RULES.values(), ids=ADAM_RULES.keys())
def test_the_steps_adam_pass_updates_as_the_optimizers_kernel_does(rule, dtype):
    """Given the gradient the step wrote, its update is adam_kernel()'s to the bit.

    The step hands its ``hyper`` slots to the same compiled Adam as
    adam_kernel() (``_kernel_source._adam``), which picks the pass: no division by
    sqrt_bc2 where it is 1 (the bias corrections folded into the rate), a
    product by its float64 reciprocal in float32. That those passes give
    numpy's bits is checked in tests/test_kernels.py (``bit_identical``);
    here, that the step reads its slots as the optimizer's kernel does, for
    both rules.
    """
    from deepff.optimizers import Adam

    a = _kernel_args(0, [3, 1], False, _lossargs(0, 1))
    f = np.dtype(dtype).type
    for key in ("X", "Y", "theta", "mask"):
        a[key] = a[key].astype(dtype)
    a["scratch"] = np.empty(a["scratch"].shape, dtype)     # (casting the old one's garbage could overflow)
    opt, twin = Adam(lr=0.01, **rule), Adam(lr=0.01, **rule)
    t = a["theta"].copy()
    for _ in range(3):
        before, start = t.copy(), t.copy()
        states, scalars, flags = opt.kernel_args(t)
        hyper = np.zeros(_kernels.STEP_HYPER, dtype=dtype)
        hyper[:len(scalars)], hyper[9:9 + len(flags)] = scalars, flags
        moments = [s.copy() for s in states]
        grad = np.empty_like(t)
        _kernels.dense_step_kernel()(a["X"], a["Y"], a["W"], a["weighted"], a["idx"], t, grad, a["mask"],
                                     a["dims"], a["woff"], a["boff"], a["acts"], a["out_code"], a["scratch"],
                                     a["lossargs"], 0, *states, hyper)
        twin_states, twin_scalars, twin_flags = twin.kernel_args(before)
        for s, m in zip(twin_states, moments, strict=True):
            s[:] = m
        _kernels.adam_kernel()(before, grad, *twin_states, *(f(v) for v in twin_scalars), *twin_flags)
        assert (hyper[5] == 1) == bool(rule.get("fold_bias_correction"))
        assert not np.array_equal(t, start)            # the step moved the weights ...
        np.testing.assert_array_equal(t, before)        # ... as the optimizer's own kernel does
        for s, s_twin in zip(states, twin_states, strict=True):
            np.testing.assert_array_equal(s, s_twin)


@pytest.mark.parametrize("out_code, loss", [(0, deepff.losses.NegLogLikelihood), (1, deepff.losses.BinaryCrossEntropy),
                                            (2, deepff.losses.MeanSquaredError)])
@pytest.mark.parametrize("reduction", ["mean", "sample_mean"])
def test_kernel_loss_is_the_engines(out_code, loss, reduction):
    """The returned J is the engine loss's value_from_logits plus the penalty's value, computed by numpy."""
    kernel = _kernels.dense_step_kernel()
    sample_mean = reduction == "sample_mean"
    engine = loss(reduction=reduction, **({"half": sample_mean} if out_code == 2 else {}))
    code = 2 if sample_mean else (1 if out_code == 0 else 0)
    a = _kernel_args(out_code, [3, 1], True, _lossargs(out_code, code, l2=0.3, per_sample=sample_mean,
                                                        half=out_code == 2 and sample_mean))
    loss_value, _ = _run(kernel, a, a["theta"])
    theta, dims = a["theta"], a["dims"]
    h = a["X"][a["idx"]]
    for l in range(3):
        Wl = theta[a["woff"][l]:a["woff"][l] + dims[l] * dims[l + 1]].reshape(dims[l], dims[l + 1])
        z = h @ Wl + theta[a["boff"][l]:a["boff"][l] + dims[l + 1]]
        h = [np.maximum(z, 0), 1 / (1 + np.exp(-z))][l] if l < 2 else z
    w, y = a["W"][a["idx"]], a["Y"][a["idx"]]
    expected = engine.value_from_logits(h, y, w) if out_code < 2 else engine.value(h, y, w)
    sq = sum(float((theta[s:s + dims[i] * dims[i + 1]] ** 2).sum()) for i, s in enumerate(a["woff"]))
    expected += 0.5 * 0.3 * sq / (w.sum() if sample_mean else 1.0)
    assert_allclose(loss_value, expected, rtol=1e-12)
    assert_allclose(a["lossargs"][5], 0.5 * 0.3 * sq / (w.sum() if sample_mean else 1.0), rtol=1e-12)


# ----------------------------------------------------------------------------
# the engine's fast path: Network.fit and the Trainer take it where it applies
# ----------------------------------------------------------------------------

def _trainer_fit(fused, out, loss, optimizer, penalty, weighted, dtype="float64", reduction="mean", monkeypatch=None):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 7)).astype(dtype)
    k = 3
    Y = {"softmax": np.eye(k)[rng.integers(0, k, 300)], "sigmoid": (rng.random((300, k)) > .5) * 1.0,
         "linear": rng.normal(size=(300, k))}[out].astype(dtype)
    w = rng.uniform(0.2, 2.0, 300).astype(dtype) if weighted else None
    net = FeedForward([Dense(16, "relu"), Dense(8, "sigmoid"), Dense(k, out)],
                      loss=deepff.losses.get({"name": loss, "reduction": reduction}), n_features=7, dtype=dtype,
                      seed=1)
    with monkeypatch.context() as m:
        m.setattr(_fused_step, "ENABLED", fused)
        trainer = Trainer(net, optimizer=optimizer, penalty=penalty, epochs=3, batch_size=32)
        history = trainer.fit(X, Y, w)
    return net.params.theta.copy(), history


PAIRS = {"softmax-nll": ("softmax", "nll"), "sigmoid-bce": ("sigmoid", "bce"), "linear-mse": ("linear", "mse")}
OPTIMIZERS = {"sgd": "sgd", "adam": {"name": "adam", "lr": 0.01},
              "nesterov": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}}
PENALTIES = {"none": None, "l2": Penalty(l2=0.01), "l2-per-sample": Penalty(l2=0.1, per_sample=True)}


@pytest.mark.parametrize("penalty", PENALTIES.values(), ids=PENALTIES.keys())
@pytest.mark.parametrize("optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("pair", PAIRS.values(), ids=PAIRS.keys())
def test_trainer_takes_the_compiled_step_and_agrees_with_numpy(pair, optimizer, penalty, compiled_calls, monkeypatch):
    for weighted, reduction in ((False, "mean"), (True, "mean"), (True, "sample_mean")):
        slow = _trainer_fit(False, *pair, optimizer, penalty, weighted, reduction=reduction, monkeypatch=monkeypatch)
        assert compiled_calls["steps"] == 0
        fast = _trainer_fit(True, *pair, optimizer, penalty, weighted, reduction=reduction, monkeypatch=monkeypatch)
        assert compiled_calls["steps"] == 30                        # 3 epochs of 10 batches, every one compiled
        compiled_calls["steps"] = 0
        assert_allclose(fast[0], slow[0], rtol=1e-11, atol=1e-13)
        for a, b in zip(fast[1].records, slow[1].records, strict=True):
            for key in ("loss", "accuracy", "penalty"):
                assert (key in a) == (key in b)
                if key in a:
                    assert_allclose(a[key], b[key], rtol=1e-11, atol=1e-15)


class _GradientNorms(deepff.Callback):
    """||dW^l|| of every layer after every step (a learner's vanishing-gradient plot)."""

    def __init__(self, reads=None):
        self.norms = []
        if reads is not None:
            self.reads_gradients = reads

    def on_batch_end(self, trainer, step, batch_size, loss):
        self.norms.append([np.linalg.norm(layer.dW) for layer in trainer.network.layers])


def _plain_sgd_fit(fused, callbacks, monkeypatch):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(200, 7))
    Y = np.eye(3)[rng.integers(0, 3, 200)]
    net = FeedForward([Dense(16, "relu"), Dense(3, "softmax")], loss="nll", n_features=7, dtype="float64", seed=2)
    net.params.grad[:] = np.nan                          # what no step has written stays NaN
    with monkeypatch.context() as m:
        m.setattr(_fused_step, "ENABLED", fused)
        Trainer(net, optimizer={"name": "sgd", "lr": 0.1}, epochs=2, batch_size=32, callbacks=callbacks).fit(X, Y)
    return net


def test_a_callback_reading_gradients_sees_every_steps_even_with_plain_sgd(compiled_calls, monkeypatch):
    """Plain SGD may move W inside the products, but not while a callback reads layer.dW."""
    fast, slow = _GradientNorms(), _GradientNorms()
    _plain_sgd_fit(True, [fast], monkeypatch)
    assert compiled_calls["steps"] == 14
    _plain_sgd_fit(False, [slow], monkeypatch)
    assert np.isfinite(fast.norms).all()
    assert_allclose(fast.norms, slow.norms, rtol=1e-10)


def test_plain_sgd_leaves_each_epochs_last_gradient(compiled_calls, monkeypatch):
    """Without such a callback, W's gradient is written on each epoch's last step only (as the numpy step leaves it)."""
    quiet = _GradientNorms(reads=False)                  # says it does not read them: W moves inside the products
    fast = _plain_sgd_fit(True, [quiet], monkeypatch)
    slow = _plain_sgd_fit(False, [], monkeypatch)
    assert compiled_calls["steps"] == 14
    # 7 steps an epoch (200 rows, batch 32): W's gradient is NaN until the first epoch's last step writes it
    assert [bool(np.isfinite(n).all()) for n in quiet.norms] == [False] * 6 + [True] * 8
    assert_allclose(fast.params.grad, slow.params.grad, rtol=1e-10, atol=1e-14)
    assert_allclose(fast.params.theta, slow.params.theta, rtol=1e-11, atol=1e-13)


def test_trainer_float32_compiled_step(compiled_calls, monkeypatch):
    fast = _trainer_fit(True, "softmax", "nll", "adam", None, False, dtype="float32", monkeypatch=monkeypatch)
    slow = _trainer_fit(False, "softmax", "nll", "adam", None, False, dtype="float32", monkeypatch=monkeypatch)
    assert compiled_calls["steps"] == 30 and fast[0].dtype == np.float32
    assert_allclose(fast[0], slow[0], rtol=1e-4, atol=1e-5)
    assert_allclose([r["loss"] for r in fast[1].records], [r["loss"] for r in slow[1].records], rtol=1e-5)


def test_network_fit_takes_it_and_what_it_does_not_cover_takes_numpy(compiled_calls, monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 5)), rng.integers(0, 3, 200)

    def fit(hidden="relu", dropout=0.0, **kwargs):
        net = deepff.Network([Dense(8, hidden, dropout=dropout), Dense(3, "softmax")], loss="nll", seed=0)
        net.fit(X, y, epochs=kwargs.pop("epochs", 1), batch_size=50, **kwargs)

    fit(epochs=2)
    assert compiled_calls["steps"] == 8                             # 2 epochs of 4 batches
    compiled_calls["steps"] = 0
    for change in ({"hidden": "tanh"}, {"dropout": 0.2}, {"optimizer": "rmsprop"}, {"clip_norm": 1.0},
                   {"regularization": {"l1": 0.01}}):
        fit(**change)
    assert compiled_calls["steps"] == 0


def test_a_non_finite_loss_leaves_the_weights_and_the_optimizer_as_they_were(compiled_calls, monkeypatch):
    """The compiled step stops before the update, so the trainer reports the divergence as the numpy step does."""
    X = np.full((64, 3), 1e200)
    Y = np.eye(2)[np.arange(64) % 2]
    net = FeedForward([Dense(4, "relu"), Dense(2, "softmax")], loss="nll", n_features=3, dtype="float64", seed=0)
    net.params.theta[...] = 1e200
    before = net.params.theta.copy()
    trainer = Trainer(net, optimizer="adam", epochs=1, batch_size=32)
    with pytest.raises(deepff.DivergenceError, match="the last \\(finite\\) weights were kept"):
        trainer.fit(X, Y)
    assert compiled_calls["steps"] == 1
    assert np.array_equal(net.params.theta, before) and trainer.optimizer.t == 0
