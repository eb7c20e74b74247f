"""numpy's own BLAS for the compiled step's matrix products.

numba's ``np.dot`` hands a product to scipy's BLAS (``scipy.linalg.cython_blas``).
With the pip wheels that is a second copy of OpenBLAS beside numpy's, with a
second pool of worker threads, and an OpenBLAS worker keeps spinning for
about 0.1 s after its last product. A fit that switches between the two
libraries (numpy products in an evaluation or a scikit-learn score, then the
compiled step's products) runs a while with three busy threads on the cores
meant for two: on the 2-core benchmark machine an epoch at batch 128 ran
10-15% slower right after a numpy product than after a pause. The compiled
step therefore calls numpy's library itself, through its CBLAS ``gemm``,
when that library exports one with 64-bit integers (numpy's wheels ship
scipy-openblas64 with ``scipy_cblas_sgemm64_``); elsewhere (another BLAS,
another platform) it keeps ``np.dot``.

:func:`gemms` finds the functions; ``deepff._kernel_source._product`` (compiled
into the step, so it lives in the step's file, whose change is what
invalidates numba's cache of the step) calls them:
``c <- alpha op(a) op(b) + beta c``, ``op`` transposing when asked, every
array C-contiguous.

The same library's thread pool also takes half of the step's optimizer pass
(``deepff._kernel_source._update``): :func:`gemms` finds OpenBLAS's
``gotoblas_pthread``, which runs a function on the pool's threads, and the
two thread counts the step reads before it asks, since a pool of one thread
would never run its half.
"""

from __future__ import annotations

import ctypes

import numpy as np

__all__ = ["gemms"]

# (single, double) precision CBLAS gemm with 64-bit integers, as numpy's BLAS may name them
_SYMBOLS = (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_"), ("cblas_sgemm64_", "cblas_dgemm64_"))
_FOUND = {}


def gemms():
    """The addresses of numpy's single and double precision ``gemm``, and of its OpenBLAS pool, looked up once.

    Returns
    -------
    ndarray of shape (6,), int64
        The address of ``cblas_sgemm`` and of ``cblas_dgemm`` in the libraries
        numpy's extension module loaded, then 1 if they were found (0: both
        addresses are 0 and the kernels use ``np.dot``). Then, where that
        library is an OpenBLAS with its own thread pool on x86-64 (see
        :func:`_pool`), the addresses of its ``gotoblas_pthread`` (run a
        function on the pool's threads) and of its ``int`` counts
        ``blas_cpu_number`` (the threads it runs now: ``openblas_set_num_threads``
        and threadpoolctl set it) and ``blas_num_threads`` (the pool's size);
        else three zeros. An array, not a ctypes function, because numba reads an
        array's type in a fraction of a microsecond and a ctypes function's in several.
    """
    if "gemms" not in _FOUND:
        found = np.zeros(6, dtype=np.int64)
        try:
            from numpy._core import _multiarray_umath

            lib = ctypes.CDLL(_multiarray_umath.__file__)
            for s_name, d_name in _SYMBOLS:
                if hasattr(lib, s_name) and hasattr(lib, d_name):
                    found[:3] = (_address(getattr(lib, s_name)), _address(getattr(lib, d_name)), 1)
                    found[3:] = _pool(lib, found[0])
                    break
        except (ImportError, OSError, AttributeError, TypeError, ValueError):
            pass            # (what was found stays: a pool not looked up leaves its zeros, one thread's work)
        _FOUND["gemms"] = found
    return _FOUND["gemms"]


def _address(symbol):
    return ctypes.cast(symbol, ctypes.c_void_p).value


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p), ("dli_sname", ctypes.c_char_p),
                ("dli_saddr", ctypes.c_void_p)]


def _library_of(address):
    """The file of the shared library holding ``address`` (the C library's ``dladdr``), or None."""
    info = _DlInfo()
    dladdr = ctypes.CDLL(None).dladdr
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    return info.dli_fname if dladdr(address, ctypes.byref(info)) and info.dli_fname else None


def _pool(lib, gemm):
    """``gotoblas_pthread`` and the addresses of ``blas_cpu_number``, ``blas_num_threads``, or three zeros.

    Only where they live in the same library file as numpy's ``gemm`` at ``gemm``, that library says it is
    OpenBLAS with its own (pthreads) pool and not OpenMP's, and the CPU is x86-64 (the compiled step hands its
    SSE control register to the pool's thread: ``deepff._kernel_source._share``).
    """
    import platform

    names = ("gotoblas_pthread", "blas_cpu_number", "blas_num_threads")
    if platform.machine().lower() not in ("x86_64", "amd64") or not all(hasattr(lib, n) for n in names):
        return 0, 0, 0
    config = next((getattr(lib, c) for c in ("scipy_openblas_get_config64_", "openblas_get_config64_",
                                              "openblas_get_config") if hasattr(lib, c)), None)
    if config is None:
        return 0, 0, 0
    config.restype = ctypes.c_char_p
    text = config() or b""
    addresses = (_address(lib.gotoblas_pthread), ctypes.addressof(ctypes.c_int.in_dll(lib, names[1])),
                 ctypes.addressof(ctypes.c_int.in_dll(lib, names[2])))
    home = _library_of(int(gemm))
    if (not text.startswith(b"OpenBLAS") or b"USE_OPENMP" in text or home is None
            or any(_library_of(a) != home for a in addresses)):
        return 0, 0, 0
    return addresses


