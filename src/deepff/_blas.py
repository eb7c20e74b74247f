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
"""

from __future__ import annotations

import ctypes

import numpy as np

__all__ = ["gemms"]

# (single, double) precision CBLAS gemm with 64-bit integers, as numpy's BLAS may name them
_SYMBOLS = (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_"), ("cblas_sgemm64_", "cblas_dgemm64_"))
_FOUND = {}


def gemms():
    """The addresses of numpy's single and double precision ``gemm``, looked up once per process.

    Returns
    -------
    ndarray of shape (3,), int64
        The address of ``cblas_sgemm`` and of ``cblas_dgemm`` in the libraries
        numpy's extension module loaded, then 1 if they were found (0: both
        addresses are 0 and the kernels use ``np.dot``). An array, not a
        ctypes function, because numba reads an array's type in a
        fraction of a microsecond and a ctypes function's in several.
    """
    if "gemms" not in _FOUND:
        found = np.zeros(3, dtype=np.int64)
        try:
            from numpy._core import _multiarray_umath

            lib = ctypes.CDLL(_multiarray_umath.__file__)
            for s_name, d_name in _SYMBOLS:
                if hasattr(lib, s_name) and hasattr(lib, d_name):
                    found[:] = (ctypes.cast(getattr(lib, s_name), ctypes.c_void_p).value,
                                ctypes.cast(getattr(lib, d_name), ctypes.c_void_p).value, 1)
                    break
        except (ImportError, OSError, AttributeError):
            pass
        _FOUND["gemms"] = found
    return _FOUND["gemms"]
