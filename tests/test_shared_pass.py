"""The compiled step's work shared with OpenBLAS's worker thread (deepff._kernel_source._update, _gather).

An optimizer pass of at least SHARE_MIN entries runs half on the step's
thread and half on the worker of numpy's OpenBLAS, through its
``gotoblas_pthread`` (deepff._blas.gemms finds them), and so does the gather
of a batch of at least SHARE_MIN values. The pass must give the bits of the
pass on one thread, for every optimizer and dtype the step takes, with
denormals flushed as the step's own thread flushes them; the gather must
copy the batch's rows; and both must go to the pool only when the work is
long and OpenBLAS runs two threads or more.
"""

import ctypes
import platform

import numpy as np
import pytest

from _needs import require_kernels
from deepff import _blas, _kernel_source, _kernels
from deepff._fpenv import FlushDenormals
from deepff.optimizers import SGD, Adam, AdamW

require_kernels()

OPTIMIZERS = {
    "adam": lambda: Adam(lr=0.01),
    "adam, bias correction folded": lambda: Adam(lr=0.01, fold_bias_correction=True),
    "adamw amsgrad": lambda: AdamW(lr=0.01, amsgrad=True, weight_decay=0.05),
    "adam with l2 decay": lambda: Adam(lr=0.01, weight_decay=0.01),
    "sgd nesterov": lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd dampened": lambda: SGD(lr=0.05, momentum=0.9, dampening=0.5),
}


def _numpy_ships_scipy_openblas():
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return blas.get("name") == "scipy-openblas"


@pytest.fixture(scope="module")
def update():
    _kernels.step_function()
    return _kernel_source._nb_update


@pytest.fixture(scope="module")
def pool():
    found = _blas.gemms()
    if found[3] == 0:
        if _numpy_ships_scipy_openblas() and platform.machine().lower() in ("x86_64", "amd64"):
            pytest.fail("numpy ships scipy-openblas on x86-64, but its pool was not found")
        pytest.skip("numpy's BLAS lends no OpenBLAS pool here: the pass runs on one thread")
    return found


def _problem(make, n, dtype, seed=0):
    """[theta, grad, s1, s2, s3], the optimizer's code and hyper, after a few of its steps (states not zero)."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(n).astype(dtype)
    opt = make()
    for _ in range(3):
        opt.step(theta, (rng.standard_normal(n) * 0.1).astype(dtype))
    states, scalars, flags = opt.kernel_args(theta)
    hyper = np.zeros(_kernels.STEP_HYPER, dtype)
    hyper[:len(scalars)], hyper[9:9 + len(flags)] = scalars, flags
    states = [s.copy() for s in states] + [np.zeros(0, dtype)] * (3 - len(states))
    grad = (rng.standard_normal(n) * 0.1).astype(dtype)
    code = _kernels.STEP_OPTIMIZERS["adam" if isinstance(opt, Adam) else "sgd"]
    return [theta, grad, *states], code, hyper


def _c_int(value):
    box = ctypes.c_int(value)
    return box, ctypes.addressof(box)


# a "pool" that runs nothing: libc's getpid takes no arguments and ignores gotoblas_pthread's
_RUNS_NOTHING = ctypes.cast(ctypes.CDLL(None).getpid, ctypes.c_void_p).value


def test_the_pool_is_numpys_openblas_and_its_thread_counts(pool):
    """gemms()[3:6]: gotoblas_pthread and the live thread counts of the library whose gemm the step calls."""
    from numpy._core import _multiarray_umath

    lib = ctypes.CDLL(_multiarray_umath.__file__)
    threads = next(getattr(lib, n) for n in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                                             "openblas_get_num_threads") if hasattr(lib, n))
    running = ctypes.c_int.from_address(int(pool[4])).value
    assert running == threads() >= 1
    assert ctypes.c_int.from_address(int(pool[5])).value >= running
    assert pool[3] == ctypes.cast(lib.gotoblas_pthread, ctypes.c_void_p).value


def test_a_pool_in_another_library_than_the_gemms_is_not_taken(pool):
    """The step calls numpy's gemm; the pool (and the thread counts it reads) must be that library's own."""
    from numpy._core import _multiarray_umath

    lib = ctypes.CDLL(_multiarray_umath.__file__)
    assert tuple(_blas._pool(lib, int(pool[0]))) == tuple(pool[3:])
    assert tuple(_blas._pool(lib, _RUNS_NOTHING)) == (0, 0, 0)      # a "gemm" in the C library


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_a_shared_pass_gives_the_bits_of_one_thread(update, pool, make, dtype):
    n = _kernels.SHARE_MIN * 3 + 37                      # (halves of unequal, odd lengths)
    arrays, code, hyper = _problem(make, n, dtype)
    start = [a.copy() for a in arrays]
    twins = [a.copy() for a in arrays]
    for _ in range(3):
        update(pool, *arrays, code, hyper)               # shared (the pool found, OpenBLAS at 2 threads)
        update(pool[:3].copy(), *twins, code, hyper)     # the gemm addresses only: one thread
    for a, b in zip(arrays, twins, strict=True):
        np.testing.assert_array_equal(a, b)
    half = n // 2
    assert np.all(arrays[0][:half] != start[0][:half]) and np.all(arrays[0][half:] != start[0][half:])


@pytest.mark.parametrize("name, least", [("adam", 1), ("sgd nesterov", 2)])
def test_a_long_pass_goes_to_the_pool_and_a_short_one_does_not(update, pool, name, least):
    """With a pool that runs nothing, a shared pass leaves theta as it was; a short one still moves it.

    Adam's pass is shared from SHARE_MIN entries, SGD's (cheaper an entry) from twice as many.
    """
    blas = pool.copy()
    blas[3] = _RUNS_NOTHING
    for n, shared in ((least * _kernels.SHARE_MIN, True), (least * _kernels.SHARE_MIN - least, False)):
        arrays, code, hyper = _problem(OPTIMIZERS[name], n, np.float32)
        before = arrays[0].copy()
        update(blas, *arrays, code, hyper)
        assert np.array_equal(arrays[0], before) == shared, n


@pytest.mark.parametrize("slot", [4, 5], ids=["openblas set to one thread", "a pool of one thread"])
def test_one_openblas_thread_keeps_the_pass_on_this_thread(update, pool, slot):
    """blas[4] and blas[5] point at OpenBLAS's thread counts: at 1 the pool is not asked (it would hang there)."""
    blas = pool.copy()
    blas[3] = _RUNS_NOTHING
    box, blas[slot] = _c_int(1)
    arrays, code, hyper = _problem(OPTIMIZERS["adam"], 2 * _kernels.SHARE_MIN, np.float32)
    before = arrays[0].copy()
    update(blas, *arrays, code, hyper)
    assert not np.array_equal(arrays[0], before)        # this thread ran the pass
    box.value = 2                                       # (and at 2, with this fake pool, nothing runs it)
    before = arrays[0].copy()
    update(blas, *arrays, code, hyper)
    assert np.array_equal(arrays[0], before)


def test_the_pools_thread_flushes_denormals_as_the_steps_thread(update, pool):
    """The worker takes the caller's SSE register for its half: m's denormals become 0 on both halves."""
    if not FlushDenormals().active:
        pytest.skip("no denormal flushing here (not x86-64 Linux, or DEEPFF_FLUSH_DENORMALS=0)")
    n = 2 * _kernels.SHARE_MIN
    arrays, code, hyper = _problem(OPTIMIZERS["adam"], n, np.float32)
    arrays[1][:] = 0                                    # no gradient: m decays by beta1
    arrays[2][:] = np.float32(1.2e-38)                  # just above float32's smallest normal
    runs = {}
    for name, blas, flush in (("shared, flushed", pool, True), ("one thread, flushed", pool[:3].copy(), True),
                              ("one thread", pool[:3].copy(), False)):
        a = [x.copy() for x in arrays]
        if flush:
            with FlushDenormals():
                update(blas, *a, code, hyper)
        else:
            update(blas, *a, code, hyper)
        runs[name] = a[2]
    assert np.all(runs["one thread, flushed"] == 0)     # 0.9 x 1.2e-38 is denormal: flushed
    assert np.all(runs["one thread"] > 0)               # (kept without flushing: the test meets denormals)
    np.testing.assert_array_equal(runs["shared, flushed"], runs["one thread, flushed"])


@pytest.fixture(scope="module")
def gather():
    _kernels.step_function()
    return _kernel_source._nb_gather


def _batch(n, d=300, k=10, dtype=np.float32, seed=0):
    """X, Y (300 rows), n rows idx, and x, y full of NaN: n (d + k) values to gather."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, d)).astype(dtype)
    Y = rng.standard_normal((300, k)).astype(dtype)
    idx = rng.permutation(300)[:n].astype(np.int64)
    return X, Y, idx, np.full((n, d), np.nan, dtype), np.full((n, k), np.nan, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_shared_gather_copies_the_batchs_rows(gather, pool, dtype):
    X, Y, idx, x, y = _batch(129, dtype=dtype)          # 129 x 310 values, over SHARE_MIN; halves 64 and 65 rows
    assert 129 * 310 >= _kernels.SHARE_MIN
    gather(pool, X, Y, idx, x, y)
    np.testing.assert_array_equal(x, X[idx])
    np.testing.assert_array_equal(y, Y[idx])


def test_a_large_batch_is_gathered_with_the_pool_and_a_small_one_is_not(gather, pool):
    blas = pool.copy()
    blas[3] = _RUNS_NOTHING
    for n, shared in ((129, True), (_kernels.SHARE_MIN // 310, False)):
        X, Y, idx, x, y = _batch(n)
        gather(blas, X, Y, idx, x, y)
        assert np.isnan(x).all() == shared and np.isnan(y).all() == shared, n
        if not shared:
            np.testing.assert_array_equal(x, X[idx])
