"""The optional numba kernels give the numpy reference's results.

The optimizer and ReLU kernels do the numpy path's operations in the same
order and dtype (Adam's float32 sqrt(v) / sqrt(bc2) excepted: a float64
product by the reciprocal, which rounds the same), so they must agree bit
for bit; softmax and the fused
negative log-likelihood use a different exp / summation order, so they
agree to float rounding. Every comparison runs the numpy path by setting
``DEEPFF_NUMBA=0``, the switch users have, and counts the kernels' calls
(the ``kernel_calls`` fixture of tests/conftest.py): a kernel that silently
stopped running would otherwise compare numpy with numpy.

Without numba these tests skip locally and fail in CI (tests/_needs.py);
with ``DEEPFF_NUMBA=0`` (the user's switch) they skip everywhere.
"""

import numpy as np
import pytest

import deepff
from _adam_cases import bias_corrections
from _needs import require_kernels
from deepff import _fused_step, _kernels, activations, losses
from deepff.optimizers import SGD, Adam, AdamW

require_kernels()


def test_refresh_rereads_the_environment(monkeypatch):
    assert _kernels.enabled()
    monkeypatch.setenv("DEEPFF_NUMBA", "0")
    assert _kernels.enabled()          # read once, cached
    _kernels.refresh()
    assert not _kernels.enabled() and _kernels.softmax_kernels() is None
    monkeypatch.delenv("DEEPFF_NUMBA")
    _kernels.refresh()
    assert _kernels.enabled() and _kernels.softmax_kernels() is not None

OPT_CASES = [
    (Adam, {}),
    (Adam, {"weight_decay": 0.01}),
    (Adam, {"amsgrad": True}),
    (Adam, {"betas": (0.8, 0.99), "eps": 1e-6, "lr": 0.01}),
    (AdamW, {}),
    (AdamW, {"weight_decay": 0.1, "amsgrad": True}),
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.1, "weight_decay": 0.01}),
    (SGD, {"lr": 0.1, "momentum": 0.9}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.001}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "lr_in_velocity": True}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "lr_in_velocity": True, "weight_decay": 0.01}),
    (SGD, {"lr": 0.1, "momentum": 0.0, "nesterov": True, "lr_in_velocity": True}),
    (Adam, {"fold_bias_correction": True}),
    (Adam, {"fold_bias_correction": True, "amsgrad": True, "weight_decay": 0.01}),
    (AdamW, {"fold_bias_correction": True}),
]


@pytest.fixture(autouse=True)
def _reread_environment():
    _kernels.refresh()
    yield
    _kernels.refresh()  # monkeypatch has restored DEEPFF_NUMBA by now


def _numpy_path(monkeypatch):
    monkeypatch.setenv("DEEPFF_NUMBA", "0")
    _kernels.refresh()
    assert not _kernels.enabled()


def _ran(calls, *names):
    """Assert that each named kernel ran since the last check; then count afresh."""
    idle = [name for name in names if not calls[name]]
    assert not idle, f"kernels never called: {idle} (calls: {dict(calls)})"
    calls.clear()


def _same_bits_with_and_without_kernels(run, monkeypatch, calls, kernel):
    """``run()`` -> (theta, optimizer state), once compiled and once on numpy; assert equal bits."""
    theta_k, state_k = run()
    _ran(calls, kernel)
    _numpy_path(monkeypatch)
    theta_n, state_n = run()
    assert not calls                  # the numpy side ran no kernel
    np.testing.assert_array_equal(theta_k, theta_n)
    assert set(state_k) == set(state_n)
    for name in state_n:
        np.testing.assert_array_equal(state_k[name], state_n[name])
    return state_k


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cls,kwargs", OPT_CASES, ids=[f"{c.__name__}-{k}" for c, k in OPT_CASES])
def test_fused_optimizer_step_is_bit_identical_to_numpy(cls, kwargs, dtype, monkeypatch, kernel_calls):
    rng = np.random.default_rng(0)
    theta0 = rng.normal(size=1000).astype(dtype)
    fused, ref = cls(**kwargs), cls(**kwargs)
    a, b = theta0.copy(), theta0.copy()
    for step in range(20):
        fused.step(a, (np.sin(3 * a) + 0.5 * a).astype(dtype))
        with monkeypatch.context() as mp:
            _numpy_path(mp)
            ref.step(b, (np.sin(3 * b) + 0.5 * b).astype(dtype))
        _kernels.refresh()
        if step == 10:  # a schedule changes lr between steps
            fused.lr = ref.lr = fused.lr * 0.5
    assert a.dtype == np.dtype(dtype)
    assert not np.array_equal(a, theta0)  # the kernel really updated theta ...
    assert dict(kernel_calls) == {"sgd_kernel" if cls is SGD else "adam_kernel": 20}   # ... once a step, and
    np.testing.assert_array_equal(a, b)
    for name in fused.state:
        np.testing.assert_array_equal(fused.state[name], ref.state[name])


def test_use_kernel_false_takes_the_numpy_path(monkeypatch):
    calls = []
    real = _kernels.sgd_kernel
    monkeypatch.setattr(_kernels, "sgd_kernel", lambda: calls.append(1) or real())
    opt = SGD(lr=0.1)
    opt.use_kernel = False
    opt.step(np.ones(4), np.ones(4))
    assert calls == []
    SGD(lr=0.1).step(np.ones(4), np.ones(4))
    assert calls == [1]


def _activation_inputs(dtype):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(33, 17)).astype(dtype)
    z[0, :3] = [0.0, -0.0, np.nan]
    z[1, :2] = [np.inf, -np.inf]
    b = rng.normal(size=(1, 17)).astype(dtype)
    b[0, :3] = [0.0, -0.0, 0.0]          # -0.0 + -0.0 reaches ReLU as -0.0
    g = rng.normal(size=(33, 17)).astype(dtype)
    g[2, :2] = [np.nan, np.inf]
    return z, b, g


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_relu_kernels_are_bit_identical_to_numpy(dtype, monkeypatch, kernel_calls):
    relu = activations.get("relu")
    z, b, g = _activation_inputs(dtype)
    za, ha = z.copy(), np.empty_like(z)
    relu.forward_biased(za, b, out=ha)
    ga = relu.backward(za, ha, g, out=np.empty_like(g))
    _ran(kernel_calls, "bias_relu_kernel", "relu_backward_kernel")
    _numpy_path(monkeypatch)
    zb, hb = z.copy(), np.empty_like(z)
    relu.forward_biased(zb, b, out=hb)
    gb = relu.backward(zb, hb, g, out=np.empty_like(g))
    assert not kernel_calls
    np.testing.assert_array_equal(za, zb)   # a = z + b written back
    np.testing.assert_array_equal(ha, hb)   # NaN stays NaN, inf stays inf
    np.testing.assert_array_equal(ga, gb)   # NaN * 0 is NaN in both
    assert np.isnan(ha[0, 2]) and ha[1, 0] == np.inf and ha[1, 1] == 0
    assert za[0, 1] == 0 and np.signbit(za[0, 1])                         # a = -0.0 ...
    assert np.array_equal(np.signbit(ha), np.signbit(hb)) and not np.signbit(ha[0, 1])  # ... h = +0.0


def test_a_relu_subclass_with_its_own_forward_keeps_it():
    class ReLU6(activations.ReLU):
        def forward(self, a, out=None):
            return np.clip(a, 0, 6, out=out)

    net = deepff.FeedForward([deepff.Dense(1, ReLU6())], loss="mse", n_features=1, dtype="float64", seed=0)
    net.layers[0].W[...] = 1
    np.testing.assert_array_equal(net.predict(np.full((2, 1), 100.0)), [6.0, 6.0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_amsgrad_kernel_keeps_nan_in_its_state_as_numpy_does(dtype, monkeypatch, kernel_calls):
    def run():
        opt, theta = Adam(amsgrad=True), np.zeros(3, dtype=dtype)
        with np.errstate(invalid="ignore"):   # inf / inf in the numpy path
            opt.step(theta, np.ones(3, dtype=dtype))
            opt.step(theta, np.array([np.nan, 1, np.inf], dtype=dtype))
        return theta, opt.state

    state = _same_bits_with_and_without_kernels(run, monkeypatch, kernel_calls, "adam_kernel")
    assert np.isnan(state["max_exp_avg_sq"][0])


def test_the_float32_adam_kernel_divides_by_sqrt_bc2_as_numpy_does_over_all_magnitudes():
    # With b1 = b2 = 1 and a zero gradient the moments stay as set, so one pass computes
    # theta - step * (m / (sqrt(v) / c + eps)) for v over 2^18 values spread across float32's range.
    f32 = np.float32
    rng = np.random.default_rng(3)
    v = np.exp2(rng.uniform(-140.0, 127.0, size=1 << 18)).astype(f32) * rng.uniform(1, 2, size=1 << 18).astype(f32)
    v[:4] = [0.0, np.inf, np.nan, np.finfo(f32).max]
    m = rng.uniform(-1, 1, size=v.size).astype(f32)
    kernel = _kernels.adam_kernel()
    for c in bias_corrections()[:8]:
        theta, vmax = np.zeros(v.size, dtype=f32), np.zeros(v.size, dtype=f32)
        mk, vk = m.copy(), v.copy()
        kernel(theta, np.zeros_like(theta), mk, vk, vmax, f32(1), f32(0), f32(1), f32(0), f32(-1), c, f32(1e-8),
               f32(0), f32(1), False, False)
        with np.errstate(invalid="ignore", over="ignore"):
            expected = f32(0) - f32(-1) * (m / (np.sqrt(v) / c + f32(1e-8)))
        np.testing.assert_array_equal(theta.view(np.uint32), expected.view(np.uint32))
        np.testing.assert_array_equal(vk.view(np.uint32), v.view(np.uint32))


def test_the_float32_adam_kernel_divides_for_a_sqrt_bc2_that_adam_never_gives():
    # Above 1 the quotient may fall among float32's subnormals, and the product by the reciprocal
    # may round otherwise: here r / c = 3 2^-150 exactly, a tie the division breaks to even (2^-148)
    # and the product, a hair below it, to 2^-149. The kernel takes the division for such a c.
    f32 = np.float32
    c, v = f32(49 * 2.0 ** 76), f32((147 * 2.0 ** -74) ** 2)
    r = np.sqrt(v)
    assert r / c != f32(np.float64(r) * (1 / np.float64(c)))          # the product would be wrong here
    theta, m = np.zeros(1, dtype=f32), np.full(1, 2.0 ** -30, dtype=f32)
    _kernels.adam_kernel()(theta, np.zeros(1, f32), m, np.array([v]), np.zeros(1, f32), f32(1), f32(0),
                           f32(1), f32(0), f32(-1), c, f32(0), f32(0), f32(1), False, False)
    assert theta[0] == m[0] / (r / c) == f32(2.0 ** 118)      # m / 2^-148 (2^119 by the product)


def dtype_(dtype, value):
    return np.dtype(dtype).type(value)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-14), ("float32", 1e-6)])
def test_softmax_kernel_matches_numpy(dtype, rtol, monkeypatch, kernel_calls):
    rng = np.random.default_rng(2)
    a = (rng.normal(size=(40, 10)) * 30).astype(dtype)  # large logits: the max shift matters
    a[0] = 1000
    fused = activations.get("softmax").forward(a, out=np.empty_like(a))
    _ran(kernel_calls, "softmax_kernels[0]", "softmax_kernels[1]")
    _numpy_path(monkeypatch)
    ref = activations.get("softmax").forward(a, out=np.empty_like(a))
    assert not kernel_calls
    np.testing.assert_allclose(fused, ref, rtol=rtol, atol=1e-30)
    np.testing.assert_allclose(fused.sum(axis=1), 1, rtol=10 * rtol)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_nll_kernel_matches_numpy(dtype, rtol, weighted, monkeypatch, kernel_calls):
    rng = np.random.default_rng(3)
    a = (rng.normal(size=(50, 7)) * 10).astype(dtype)
    y = np.eye(7, dtype=dtype)[rng.integers(0, 7, 50)]
    y[0] = 0.5 * y[0] + 0.5 / 7   # soft targets too
    w = rng.random(50).astype(dtype) if weighted else None
    loss = losses.get("neg_log_likelihood")
    fused = loss.value_from_logits(a, y, w)
    _ran(kernel_calls, "softmax_kernels[0]", "nll_kernel")
    _numpy_path(monkeypatch)
    ref = loss.value_from_logits(a, y, w)
    assert not kernel_calls
    assert fused == pytest.approx(ref, rel=rtol)


def test_training_with_and_without_kernels_agrees(monkeypatch, kernel_calls):
    """A float64 network trained with the per-piece kernels ends where the numpy path does.

    (The whole step in one compiled call, which would take this network, is
    switched off here; tests/test_dense_step.py compares it with the numpy step.)
    """
    monkeypatch.setattr(_fused_step, "ENABLED", False)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 8))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)

    def train():
        net = deepff.Network([deepff.Dense(16, "relu"), deepff.Dense(12, "relu"), deepff.Dense(3, "softmax")],
                             loss="neg_log_likelihood", dtype="float64", seed=0)
        hist = net.fit(X, y, epochs=5, batch_size=32, optimizer={"name": "adam", "lr": 0.01})
        return net.get_weights(), hist["loss"]

    w_fused, loss_fused = train()
    _ran(kernel_calls, "bias_relu_kernel", "relu_backward_kernel", "softmax_kernels[0]", "softmax_kernels[1]",
         "adam_kernel")
    _numpy_path(monkeypatch)
    w_ref, loss_ref = train()
    assert not kernel_calls
    np.testing.assert_allclose(w_fused, w_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(loss_fused, loss_ref, rtol=1e-9)
    assert loss_ref[-1] < loss_ref[0]


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_activation_derivative_kernels_are_bit_identical_to_numpy(name, dtype, monkeypatch, kernel_calls):
    act = activations.get(name)
    rng = np.random.default_rng(6)
    a = rng.normal(size=(40, 9)).astype(dtype)
    h = act.forward(a)
    g = rng.normal(size=a.shape).astype(dtype)
    fused = act.backward(a, h, g, out=np.empty_like(g))
    in_place = g.copy()
    act.backward(a, h, in_place, out=in_place)
    assert dict(kernel_calls) == {f"{name}_backward_kernel": 2}    # both calls were compiled
    kernel_calls.clear()
    _numpy_path(monkeypatch)
    ref = act.backward(a, h, g, out=np.empty_like(g))
    assert not kernel_calls
    np.testing.assert_array_equal(fused, ref)
    np.testing.assert_array_equal(in_place, ref)


def test_nll_kernel_is_not_given_mismatched_shapes():
    """Bad shapes take the numpy path and its error instead of a read past the end."""
    loss = losses.get("neg_log_likelihood")
    a = np.zeros((5, 3))
    y = np.eye(3)[[0, 1, 2, 0, 1]]
    with pytest.raises(ValueError):
        loss.value_from_logits(a, y, w=np.ones(3))
    with pytest.raises(ValueError):
        loss.value_from_logits(a, y[:, :2])


def test_prediction_never_asks_for_a_kernel(tmp_path):
    """A process that only predicts never imports numba, and predictions are the numpy path's own."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, deepff\n"
        "net = deepff.Network([deepff.Dense(8, 'relu'), deepff.Dense(3, 'softmax')], loss='nll', n_features=4, "
        "seed=0)\n"
        "p = net.predict_proba(np.random.default_rng(0).random((5, 4)))\n"
        "print('numba' in sys.modules, np.isclose(p.sum(axis=1), 1).all())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "True"], out.stderr
