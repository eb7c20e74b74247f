"""Optimizers against independent scalar transcriptions of the published algorithms.

The references below work on plain python floats, one parameter at a time,
written from the algorithm boxes of the PyTorch documentation (SGD, Adagrad,
RMSprop, Adam, AdamW). They share no code with deepff.optimizers.
"""

import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from _adam_cases import bias_corrections
from _needs import require_kernels
from deepff import optimizers
from deepff.errors import ModelFileError, SpecError
from deepff.optimizers import LBFGS, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

# J(theta) = 0.5 * sum(C * (theta - M)^2), grad = C * (theta - M).
# The minimum M is away from 0 on purpose: with M = 0 the gradient would be
# proportional to theta, coupled weight decay would only rescale C, and the
# scale-invariant adaptive methods (Adagrad, RMSprop, Adam) would hardly
# notice a wrong weight-decay term.
C = [0.5, 1.0, 2.0, 3.0, 0.25]
M = [0.3, -0.4, 1.5, -0.8, 0.6]
THETA0 = [1.0, -2.0, 0.5, -0.1, 3.0]
N_STEPS = 5


# ------------------------------------------------------------------------ references
def ref_sgd(theta0, c, target, steps, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    out = []
    for th, ci, mi in zip(theta0, c, target, strict=True):
        buf = None
        for _ in range(steps):
            g = ci * (th - mi)
            g = g + weight_decay * th
            if momentum != 0:
                if buf is None:
                    buf = g
                else:
                    buf = momentum * buf + (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            th = th - lr * g
        out.append(th)
    return out


def ref_adagrad(theta0, c, target, steps, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                initial_accumulator_value=0.0, eps=1e-10):
    out = []
    for th, ci, mi in zip(theta0, c, target, strict=True):
        s = initial_accumulator_value
        for t in range(1, steps + 1):
            g = ci * (th - mi) + weight_decay * th
            clr = lr / (1 + (t - 1) * lr_decay)
            s = s + g * g
            th = th - clr * g / (math.sqrt(s) + eps)
        out.append(th)
    return out


def ref_rmsprop(theta0, c, target, steps, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                momentum=0.0, centered=False):
    out = []
    for th, ci, mi in zip(theta0, c, target, strict=True):
        v = 0.0
        gave = 0.0
        b = 0.0
        for _ in range(steps):
            g = ci * (th - mi) + weight_decay * th
            v = alpha * v + (1 - alpha) * g * g
            vt = v
            if centered:
                gave = alpha * gave + (1 - alpha) * g
                vt = vt - gave * gave
            if momentum > 0:
                b = momentum * b + g / (math.sqrt(vt) + eps)
                th = th - lr * b
            else:
                th = th - lr * g / (math.sqrt(vt) + eps)
        out.append(th)
    return out


def ref_adam(theta0, c, target, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
             amsgrad=False, decoupled=False):
    b1, b2 = betas
    out = []
    for th, ci, mi in zip(theta0, c, target, strict=True):
        m = 0.0
        v = 0.0
        vmax = 0.0
        for t in range(1, steps + 1):
            g = ci * (th - mi)
            if decoupled:
                th = th * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * th
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            mhat = m / (1 - b1**t)
            if amsgrad:
                vmax = max(vmax, v)
                vhat = vmax / (1 - b2**t)
            else:
                vhat = v / (1 - b2**t)
            th = th - lr * mhat / (math.sqrt(vhat) + eps)
        out.append(th)
    return out


def ref_adamw(theta0, c, target, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
              amsgrad=False):
    return ref_adam(theta0, c, target, steps, lr, betas, eps, weight_decay, amsgrad, decoupled=True)


REFS = {"sgd": ref_sgd, "adagrad": ref_adagrad, "rmsprop": ref_rmsprop, "adam": ref_adam, "adamw": ref_adamw}

# (name, hyperparameters). Betas with a small beta2 make the AMSGrad maximum
# actually bind within a few steps (see test_every_flag_changes_the_result).
CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.2}),
    ("sgd", {"lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.2}),
    ("adagrad", {"lr": 0.5}),
    ("adagrad", {"lr": 0.5, "lr_decay": 0.3}),
    ("adagrad", {"lr": 0.5, "weight_decay": 0.2}),
    ("adagrad", {"lr": 0.5, "initial_accumulator_value": 0.7, "eps": 1e-3}),
    ("rmsprop", {"lr": 0.05}),
    ("rmsprop", {"lr": 0.05, "alpha": 0.9, "centered": True}),
    ("rmsprop", {"lr": 0.05, "momentum": 0.7}),
    ("rmsprop", {"lr": 0.05, "weight_decay": 0.2}),
    ("rmsprop", {"lr": 0.02, "alpha": 0.8, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    ("adam", {"lr": 0.1}),
    ("adam", {"lr": 0.1, "betas": (0.8, 0.9), "eps": 1e-3}),
    ("adam", {"lr": 0.1, "weight_decay": 0.2}),
    ("adam", {"lr": 0.1, "betas": (0.5, 0.3), "amsgrad": True}),
    ("adam", {"lr": 0.1, "betas": (0.5, 0.3), "amsgrad": True, "weight_decay": 0.2}),
    ("adamw", {"lr": 0.1}),
    ("adamw", {"lr": 0.1, "weight_decay": 0.3}),
    ("adamw", {"lr": 0.1, "betas": (0.5, 0.3), "amsgrad": True, "weight_decay": 0.3}),
]


def case_id(case):
    name, kw = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items() if k != "lr") if len(kw) > 1 else name


def gradient(theta):
    return np.asarray(C, dtype=theta.dtype) * (theta - np.asarray(M, dtype=theta.dtype))


def run(opt, theta, steps):
    for _ in range(steps):
        opt.step(theta, gradient(theta))
    return theta


# --------------------------------------------------------------------------- math
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_scalar_reference(case):
    name, kw = case
    opt = optimizers.get({"name": name, **kw})
    theta = run(opt, np.array(THETA0), N_STEPS)
    expected = REFS[name](THETA0, C, M, N_STEPS, **kw)
    assert_allclose(theta, expected, rtol=1e-12, atol=0)
    assert opt.t == N_STEPS


@pytest.mark.parametrize("case", [c for c in CASES if len(c[1]) > 1 or c[0] == "adamw"], ids=case_id)
def test_every_flag_changes_the_result(case):
    # Guards the reference test against flags that happen to have no effect
    # on the test problem (e.g. an AMSGrad maximum that never binds).
    name, kw = case
    plain = {k: v for k, v in kw.items() if k == "lr"}
    if name == "adamw":
        plain["weight_decay"] = 0.0
    a = run(optimizers.get({"name": name, **kw}), np.array(THETA0), N_STEPS)
    b = run(optimizers.get({"name": name, **plain}), np.array(THETA0), N_STEPS)
    assert np.max(np.abs(a - b)) > 1e-6


def test_amsgrad_maximum_binds():
    kw = {"lr": 0.1, "betas": (0.5, 0.3)}
    a = run(Adam(amsgrad=True, **kw), np.array(THETA0), N_STEPS)
    b = run(Adam(**kw), np.array(THETA0), N_STEPS)
    assert np.max(np.abs(a - b)) > 1e-3


def test_adamw_with_zero_decay_is_adam():
    kw = {"lr": 0.1, "betas": (0.8, 0.9)}
    a = run(AdamW(weight_decay=0.0, **kw), np.array(THETA0), N_STEPS)
    b = run(Adam(**kw), np.array(THETA0), N_STEPS)
    assert_array_equal(a, b)


def test_lr_is_read_at_every_step():
    # Schedules overwrite opt.lr between steps: the new value must be used.
    theta = np.array(THETA0)
    opt = SGD(lr=0.1, momentum=0.9)
    lrs = [0.1, 0.05, 0.2]
    for lr in lrs:
        opt.lr = lr
        opt.step(theta, gradient(theta))
    expected = []
    for th, ci, mi in zip(THETA0, C, M, strict=True):
        buf = None
        for lr in lrs:
            g = ci * (th - mi)
            buf = g if buf is None else 0.9 * buf + g
            th = th - lr * buf
        expected.append(th)
    assert_allclose(theta, expected, rtol=1e-12)


def test_adagrad_lr_decay_first_step_uses_lr():
    theta = np.array([1.0])
    Adagrad(lr=0.5, lr_decay=10.0).step(theta, np.array([2.0]))
    # s = 4, step = 0.5 * 2 / (2 + 1e-10)
    assert_allclose(theta, [1.0 - 0.5 * 2.0 / (2.0 + 1e-10)], rtol=1e-15)


# ---------------------------------------------------------------------- contract
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_grad_not_modified(case):
    name, kw = case
    opt = optimizers.get({"name": name, **kw})
    theta = np.array(THETA0)
    for _ in range(3):
        grad = gradient(theta)
        saved = grad.copy()
        opt.step(theta, grad)
        assert_array_equal(grad, saved)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_state_dict_round_trip_is_bit_identical(case):
    name, kw = case
    straight = run(optimizers.get({"name": name, **kw}), np.array(THETA0), 6)

    first = optimizers.get({"name": name, **kw})
    theta = run(first, np.array(THETA0), 3)
    state = first.state_dict()
    # The dict must survive .npz + JSON: arrays apart, the rest JSON-able.
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    scalars = json.loads(json.dumps({k: v for k, v in state.items() if k not in arrays}))
    assert all(a.shape == theta.shape for a in arrays.values())
    second = optimizers.get(name)  # default hyperparameters: load must restore them
    second.load_state_dict({**scalars, **arrays})
    assert second.get_config() == first.get_config()
    run(second, theta, 3)
    assert_array_equal(theta, straight)


def test_state_dict_is_a_copy():
    opt = Adam(lr=0.1)
    theta = run(opt, np.array(THETA0), 2)
    state = opt.state_dict()
    before = state["exp_avg"].copy()
    run(opt, theta, 1)
    assert_array_equal(state["exp_avg"], before)


def test_state_dict_contents():
    opt = Adam(lr=0.1, betas=(0.8, 0.9), amsgrad=True)
    assert opt.state_dict() == {"name": "adam", "step": 0, "lr": 0.1, "beta1": 0.8, "beta2": 0.9,
                                "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True}
    run(opt, np.array(THETA0), 2)
    opt.lr = 0.01
    state = opt.state_dict()
    assert state["step"] == 2 and state["lr"] == 0.01
    assert set(state) >= {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}


def test_load_state_dict_rejects_other_optimizer():
    state = run_state = SGD(lr=0.1, momentum=0.9)
    run(run_state, np.array(THETA0), 2)
    with pytest.raises(ModelFileError, match="sgd"):
        Adam().load_state_dict(state.state_dict())
    partial = run_state.state_dict()
    del partial["momentum_buffer"]
    with pytest.raises(ModelFileError, match="momentum_buffer"):
        SGD(momentum=0.9).load_state_dict(partial)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_get_config_rebuilds(case):
    name, kw = case
    opt = optimizers.get({"name": name, **kw})
    clone = type(opt)(**opt.get_config())
    assert clone.get_config() == opt.get_config()
    assert json.loads(json.dumps(opt.get_config())) == opt.get_config()
    a = run(opt, np.array(THETA0), 3)
    b = run(clone, np.array(THETA0), 3)
    assert_array_equal(a, b)


def test_reset_starts_afresh():
    opt = RMSprop(lr=0.05, momentum=0.5, centered=True)
    run(opt, np.array(THETA0), 4)
    opt.reset()
    assert opt.t == 0 and opt.state == {}
    a = run(opt, np.array(THETA0), 3)
    b = run(RMSprop(lr=0.05, momentum=0.5, centered=True), np.array(THETA0), 3)
    assert_array_equal(a, b)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_float32_stays_float32(case):
    name, kw = case
    opt = optimizers.get({"name": name, **kw})
    theta32 = run(opt, np.array(THETA0, dtype=np.float32), N_STEPS)
    assert theta32.dtype == np.float32
    for key, value in opt.state_dict().items():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32, key
    theta64 = run(optimizers.get({"name": name, **kw}), np.array(THETA0), N_STEPS)
    assert_allclose(theta32, theta64, rtol=1e-4, atol=1e-5)


def test_updates_in_place_and_returns_none():
    theta = np.array(THETA0)
    alias = theta
    assert Adam(lr=0.1).step(theta, gradient(theta)) is None
    assert alias is theta and not np.array_equal(theta, THETA0)


def test_state_reused_between_steps():
    opt = Adam(lr=0.1)
    theta = run(opt, np.array(THETA0), 1)
    ids = {k: id(v) for k, v in opt.state.items()}
    run(opt, theta, 2)
    assert {k: id(v) for k, v in opt.state.items()} == ids


@pytest.mark.parametrize("name", ["adam", "adagrad", "sgd"])
def test_state_arrays_start_off_each_others_page_offsets(name):
    # theta and grad take 0 and 1 KiB into a page (ParamBuffer); the state arrays the slots after
    opt = optimizers.get({"name": name, "momentum": 0.9} if name == "sgd" else name)
    theta = np.zeros(50000, np.float32)
    opt.step(theta, np.ones_like(theta))
    offsets = [a.ctypes.data % 4096 for a in opt.state.values()]
    assert offsets == [2048, 3072][:len(opt.state)] and len(opt.state) >= 1


def test_adagrad_state_starts_at_the_initial_accumulator_value():
    opt = Adagrad(lr=0.5, initial_accumulator_value=0.7)
    opt.step(np.zeros(4), np.full(4, 2.0))
    assert_array_equal(opt.state["sum"], np.full(4, 0.7 + 4.0))


def test_shape_or_dtype_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        SGD().step(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="same shape"):
        SGD().step(np.zeros(3), np.zeros(3, dtype=np.float32))


def test_full_batch_flags():
    for name in ("sgd", "adagrad", "rmsprop", "adam", "adamw"):
        assert optimizers.get(name).full_batch is False
    assert optimizers.get("lbfgs").full_batch is True


# ---------------------------------------------------------------- registry/errors
def test_names_and_get():
    assert {"sgd", "adagrad", "rmsprop", "adam", "adamw", "lbfgs"} <= set(optimizers.names())
    assert isinstance(optimizers.get("ADAM"), Adam)
    assert isinstance(optimizers.get("l-bfgs-b"), LBFGS)
    opt = optimizers.get({"name": "sgd", "lr": 0.3, "momentum": 0.5})
    assert isinstance(opt, SGD) and opt.lr == 0.3 and opt.momentum == 0.5
    assert optimizers.get(opt) is opt
    assert isinstance(opt, Optimizer)


def test_defaults_match_pytorch():
    assert Adam().get_config() == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
                                   "weight_decay": 0.0, "amsgrad": False}
    assert AdamW().weight_decay == 0.01
    assert Adagrad().get_config() == {"lr": 0.01, "lr_decay": 0.0, "weight_decay": 0.0,
                                      "initial_accumulator_value": 0.0, "eps": 1e-10}
    assert RMSprop().get_config() == {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0,
                                      "momentum": 0.0, "centered": False}


def test_unknown_name_lists_choices():
    with pytest.raises(SpecError) as err:
        optimizers.get("adamx")
    for name in ("'adam'", "'adamw'", "'sgd'", "'rmsprop'", "'adagrad'", "'lbfgs'"):
        assert name in str(err.value)


def test_unknown_hyperparameter():
    with pytest.raises(SpecError, match="optimizer 'adam' has no parameter 'beta1'; valid parameters: 'amsgrad', "):
        optimizers.get({"name": "adam", "beta1": 0.9})


BAD = [
    ("sgd", {"lr": -0.1}, "lr"),
    ("sgd", {"lr": float("nan")}, "lr"),
    ("sgd", {"lr": "0.1"}, "lr"),
    ("sgd", {"momentum": -0.5}, "momentum"),
    ("sgd", {"momentum": 1.0}, "momentum"),
    ("sgd", {"dampening": 1.5}, "dampening"),
    ("sgd", {"nesterov": True}, "nesterov"),
    ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov"),
    ("sgd", {"nesterov": "yes", "momentum": 0.9}, "nesterov"),
    ("sgd", {"weight_decay": -1e-4}, "weight_decay"),
    ("adagrad", {"lr_decay": -1}, "lr_decay"),
    ("adagrad", {"eps": 0.0}, "eps"),
    ("adagrad", {"initial_accumulator_value": -1}, "initial_accumulator_value"),
    ("rmsprop", {"alpha": 1.0}, "alpha"),
    ("rmsprop", {"alpha": -0.1}, "alpha"),
    ("rmsprop", {"eps": -1e-8}, "eps"),
    ("rmsprop", {"momentum": 2}, "momentum"),
    ("rmsprop", {"centered": 1}, "centered"),
    ("adam", {"betas": (0.9, 1.0)}, r"betas\[1\]"),
    ("adam", {"betas": (-0.1, 0.999)}, r"betas\[0\]"),
    ("adam", {"betas": (0.9,)}, "betas"),
    ("adam", {"betas": 0.9}, "betas"),
    ("adam", {"eps": 0}, "eps"),
    ("adam", {"amsgrad": None}, "amsgrad"),
    ("adamw", {"weight_decay": -0.01}, "weight_decay"),
    ("adamw", {"lr": True}, "lr"),
    ("lbfgs", {"max_iter": 0}, "max_iter"),
    ("lbfgs", {"max_fun": 1.5}, "max_fun"),
    ("lbfgs", {"tol": -1e-4}, "tol"),
    ("lbfgs", {"history": 0}, "history"),
]


@pytest.mark.parametrize("name,kw,param", BAD, ids=[f"{n}-{p}-{i}" for i, (n, _, p) in enumerate(BAD)])
def test_bad_hyperparameters(name, kw, param):
    with pytest.raises(SpecError, match=param) as err:
        optimizers.get({"name": name, **kw})
    message = str(err.value)
    assert name in message
    assert any(word in message for word in ("must be", "needs"))


def test_error_message_gives_range():
    with pytest.raises(SpecError, match=r"adam betas\[1\] must be in \[0, 1\), got 1.0"):
        Adam(betas=(0.9, 1.0))
    with pytest.raises(SpecError, match=r"sgd lr must be >= 0, got -1"):
        SGD(lr=-1)
    with pytest.raises(SpecError, match=r"adam eps must be > 0, got 0"):
        Adam(eps=0)


# ------------------------------------------------------------------------ L-BFGS
def test_lbfgs_minimises_quadratic():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(8, 8))
    H = A @ A.T + 8 * np.eye(8)
    b = rng.normal(size=8)
    calls = []

    def fun(x):
        calls.append(1)
        return 0.5 * x @ H @ x - b @ x, H @ x - b

    theta0 = np.zeros(8, dtype=np.float32)
    theta, n_iter, n_fun = LBFGS(tol=1e-10, ftol=1e-15).minimize(fun, theta0)
    assert theta.dtype == np.float64 and theta.shape == (8,)
    assert_allclose(theta, np.linalg.solve(H, b), rtol=1e-7, atol=1e-9)
    assert 1 <= n_iter <= 200 and n_fun == len(calls)
    assert_array_equal(theta0, 0)


def test_lbfgs_minimises_rosenbrock():
    def fun(x):
        f = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        g = np.zeros_like(x)
        g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
        g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
        return f, g

    opt = LBFGS(max_iter=1000, tol=1e-9, ftol=1e-15)
    theta, n_iter, n_fun = opt.minimize(fun, np.array([-1.2, 1.0, -0.5, 0.8]))
    assert_allclose(theta, np.ones(4), atol=1e-5)
    assert opt.converged is True
    assert n_fun >= n_iter > 10


def test_lbfgs_respects_max_iter():
    def fun(x):
        return float(np.sum(x**4)), 4 * x**3

    opt = LBFGS(max_iter=3, tol=1e-12)
    _, n_iter, _ = opt.minimize(fun, np.full(5, 3.0))
    assert n_iter == 3 and opt.converged is False


def test_lbfgs_step_raises_type_error():
    with pytest.raises(TypeError, match="full-batch.*minimize"):
        LBFGS().step(np.zeros(2), np.zeros(2))


def test_lbfgs_config_and_state():
    opt = optimizers.get({"name": "lbfgs", "max_iter": 50, "history": 5})
    assert opt.get_config()["max_iter"] == 50 and opt.get_config()["history"] == 5
    assert LBFGS(**opt.get_config()).get_config() == opt.get_config()
    other = LBFGS()
    other.load_state_dict(opt.state_dict())
    assert other.get_config() == opt.get_config()


# ------------------------------------------------------------------------ scikit-learn's conventions as options
# Each option is held to scikit-learn on both twins of the rule: the compiled kernel (proven to have run,
# once a step, by the kernel_calls fixture of tests/conftest.py) and the numpy reference (use_kernel=False).

PATHS = ["compiled", "numpy"]


def _on_path(path, *opts):
    """Make ``opts`` take ``path``: the compiled kernel (skips without numba, fails in CI) or the numpy rule."""
    if path == "compiled":
        require_kernels()
    for opt in opts:
        opt.use_kernel = path == "compiled"
    return opts


def _took(path, kernel_calls, kernel, steps):
    """Assert that the compiled kernel ran once per step on the compiled path, and never on the numpy one."""
    assert dict(kernel_calls) == ({kernel: steps} if path == "compiled" else {})


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("momentum", [0.9, 0.0, 1.0])
def test_sgd_lr_in_velocity_is_sklearns_sgd(momentum, nesterov, path, kernel_calls):
    """scikit-learn's own SGDOptimizer (one array per parameter) is the reference, a changing rate included."""
    skopt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(3, 4)), rng.normal(size=4)]
    params = [p.copy() for p in parts]   # scikit-learn updates these arrays in place
    ref = skopt.SGDOptimizer(params, learning_rate_init=0.05, momentum=momentum, nesterov=nesterov)
    theta = np.concatenate([p.ravel() for p in parts])
    (opt,) = _on_path(path, SGD(lr=0.05, momentum=momentum, nesterov=nesterov, lr_in_velocity=True))
    for t in range(8):
        grads = [np.sin(3 * p) + 0.5 * p for p in params]
        ref.update_params(params, grads)
        opt.step(theta, np.concatenate([g.ravel() for g in grads]))
        if t == 3:   # invscaling or adaptive: the old rates stay in the velocity
            ref.learning_rate = opt.lr = 0.01
        assert_allclose(theta, np.concatenate([p.ravel() for p in params]), rtol=1e-14, atol=1e-15)
    _took(path, kernel_calls, "sgd_kernel", 8)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("betas,eps", [((0.9, 0.999), 1e-8), ((0.8, 0.99), 1e-2)])
def test_adam_fold_bias_correction_is_sklearns_adam(betas, eps, path, kernel_calls):
    skopt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    rng = np.random.default_rng(1)
    parts = [rng.normal(size=(2, 5)), rng.normal(size=5)]
    params = [p.copy() for p in parts]
    ref = skopt.AdamOptimizer(params, learning_rate_init=0.01, beta_1=betas[0], beta_2=betas[1], epsilon=eps)
    theta = np.concatenate([p.ravel() for p in parts])
    opt, plain = _on_path(path, Adam(lr=0.01, betas=betas, eps=eps, fold_bias_correction=True),
                          Adam(lr=0.01, betas=betas, eps=eps))
    other = theta.copy()
    for _ in range(8):
        grads = [np.sin(3 * p) + 0.5 * p for p in params]
        ref.update_params(params, grads)
        flat = np.concatenate([g.ravel() for g in grads])
        opt.step(theta, flat)
        plain.step(other, flat)
        assert_allclose(theta, np.concatenate([p.ravel() for p in params]), rtol=1e-14, atol=1e-15)
    _took(path, kernel_calls, "adam_kernel", 16)
    if eps == 1e-2:   # the placement matters where sqrt(v) is comparable to eps
        assert not np.allclose(theta, other, rtol=1e-6)


def test_the_options_round_trip_and_old_configs_load():
    for opt in (SGD(lr=0.1, momentum=0.5, nesterov=True, lr_in_velocity=True), Adam(fold_bias_correction=True)):
        theta = np.ones(3)
        opt.step(theta, np.full(3, 0.5))
        again = type(opt)(**opt.get_config())
        assert again.get_config() == opt.get_config()
        restored = type(opt)()
        restored.load_state_dict(opt.state_dict())
        a, b = theta.copy(), theta.copy()
        opt.step(a, np.full(3, 0.25))
        restored.step(b, np.full(3, 0.25))
        assert_array_equal(a, b)
    # configs and state dicts written before the options existed
    assert "lr_in_velocity" not in SGD().get_config() and "fold_bias_correction" not in Adam().get_config()
    old = SGD(lr=0.1, momentum=0.9).state_dict()
    restored = SGD()
    restored.load_state_dict(old)
    assert restored.lr_in_velocity is False and restored.momentum == 0.9
    with pytest.raises(SpecError, match="dampening"):
        SGD(momentum=0.9, dampening=0.1, lr_in_velocity=True)
    with pytest.raises(SpecError, match="momentum"):
        SGD(momentum=1.0)                       # 1 only with the rate inside the velocity


def test_a_float32_quotient_rounds_as_the_float64_product_by_the_reciprocal_does():
    # The compiled Adam pass (deepff._kernels; tests/test_kernels.py runs it) forms sqrt(v) / sqrt(bc2) in
    # float32 as fl32(fl64(r * fl64(1 / c))): a product instead of a division. _kernel_source._adam gives the
    # reason it rounds as fl32(r / c) does; this checks it, with numpy alone, on every float32 r in [1, 2)
    # (a quotient's last bits repeat in every binade of r) against many c.
    r = (np.arange(1 << 23, dtype=np.uint32) | np.uint32(0x3F800000)).view(np.float32)
    r64 = r.astype(np.float64)
    for c in bias_corrections():
        quotient = r / c
        product = (r64 * (1.0 / np.float64(c))).astype(np.float32)
        mismatched = np.flatnonzero(quotient.view(np.uint32) != product.view(np.uint32))
        assert mismatched.size == 0, (c, r[mismatched[:3]])
    special = np.array([0.0, np.inf, np.nan, 1.8e19, 3.7e-23, np.float32(2.0 ** -63)], dtype=np.float32)
    for c in bias_corrections():
        with np.errstate(over="ignore"):
            product = (special.astype(np.float64) * (1.0 / np.float64(c))).astype(np.float32)
        assert_array_equal(product.view(np.uint32), (special / c).view(np.uint32))
