"""The compiled step's matrix products (deepff._blas): numpy's own gemm, or np.dot where it has none."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import deepff
from _needs import require_kernels
from deepff import _blas, _fused_step, _kernel_source, _kernels

require_kernels()


def _numpy_blas_is_scipy_openblas():
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return blas.get("name") == "scipy-openblas" and "USE64BITINT" in blas.get("openblas configuration", "")


def test_numpys_gemm_is_found_where_numpy_ships_scipy_openblas64():
    found = _blas.gemms()
    if not _numpy_blas_is_scipy_openblas():
        pytest.skip("this numpy is not built with scipy-openblas64")
    assert found[2] == 1 and found[0] != 0 and found[1] != 0 and found[0] != found[1]


@pytest.fixture(scope="module")
def product():
    _kernels.dense_step_kernel()           # compiles the step's callees, product among them
    return _kernel_source._nb_product


CASES = {"a b": (False, False), "a^T b": (True, False), "a b^T": (False, True)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("through", ["numpy's gemm", "np.dot"])
def test_product_is_the_matrix_product(product, dtype, trans, through):
    blas = _blas.gemms() if through == "numpy's gemm" else np.zeros(3, dtype=np.int64)
    if through == "numpy's gemm" and blas[2] == 0:
        pytest.skip("numpy's BLAS has no 64-bit-integer gemm here")
    rng = np.random.default_rng(3)
    m, k, n = 37, 19, 11
    ta, tb = trans
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype=dtype)               # every entry must be written (beta = 0)
    product(blas, a, ta, b, tb, c, 1.0, 0.0)
    expected = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    tol = {"rtol": 1e-5 if dtype == np.float32 else 1e-12, "atol": 1e-5}
    assert_allclose(c, expected, **tol)
    c0 = rng.standard_normal((m, n)).astype(dtype)      # c <- alpha op(a) op(b) + beta c (SGD's W - lr h^T g)
    c = c0.copy()
    product(blas, a, ta, b, tb, c, dtype(-0.25), 1.0)
    assert_allclose(c, c0 - 0.25 * expected, **tol)


def test_product_of_views_into_one_buffer(product):
    """The step multiplies slices of theta and scratch: a view's own start, not its buffer's, is read."""
    blas = _blas.gemms()
    rng = np.random.default_rng(4)
    buf = rng.standard_normal(1000)
    a, b = buf[5:5 + 6 * 4].reshape(6, 4), buf[100:100 + 4 * 3].reshape(4, 3)
    c = np.empty(20 + 18)[20:].reshape(6, 3)
    product(blas, a, False, b, False, c, 1.0, 0.0)
    assert_allclose(c, a @ b, rtol=1e-12)


OPTIMIZERS = {"adam": {"name": "adam", "lr": 0.01},
              "plain sgd (W moved inside the product)": {"name": "sgd", "lr": 0.05},
              "sgd with momentum": {"name": "sgd", "lr": 0.05, "momentum": 0.9}}


@pytest.mark.parametrize("optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_fit_through_numpys_gemm_equals_one_through_np_dot(dtype, optimizer, monkeypatch):
    """The two routes to BLAS train the same network (to float rounding), and numpy's is the one taken."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12)).astype(dtype)
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)

    seen = []
    plan = _fused_step.plan

    def spy(*args):
        seen.append(plan(*args))
        return seen[-1]
    monkeypatch.setattr(_fused_step, "plan", spy)

    def fit():
        net = deepff.Network([deepff.Dense(16, "relu"), deepff.Dense(2, "softmax")], loss="neg_log_likelihood",
                             n_features=12, seed=0, dtype=dtype)
        seen.clear()
        net.fit(X, y, epochs=3, batch_size=32, optimizer=optimizer)
        assert seen and seen[0] is not None                  # the compiled step ran
        return net.params.theta.copy()

    found = _blas.gemms().copy()
    through_gemm = fit()
    monkeypatch.setitem(_blas._FOUND, "gemms", np.zeros(3, dtype=np.int64))
    through_dot = fit()
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert_allclose(through_gemm, through_dot, rtol=tol, atol=tol)
    if found[2]:
        assert not np.array_equal(found, _blas.gemms())      # the second fit really took np.dot
