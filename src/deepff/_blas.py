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

:func:`product` is the one place a kernel multiplies matrices:
``c <- alpha op(a) op(b) + beta c``, ``op`` transposing when asked, every
array C-contiguous.
"""

from __future__ import annotations

import ctypes

import numpy as np

__all__ = ["gemms", "product", "compile_caller"]

# (single, double) precision CBLAS gemm with 64-bit integers, as numpy's BLAS may name them
_SYMBOLS = (("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_"), ("cblas_sgemm64_", "cblas_dgemm64_"))
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_FOUND = {}


def gemms():
    """The addresses of numpy's single and double precision ``gemm``, looked up once per process.

    Returns
    -------
    ndarray of shape (3,), int64
        The address of ``cblas_sgemm`` and of ``cblas_dgemm`` in the libraries
        numpy's extension module loaded, then 1 if they were found (0: both
        addresses are 0 and :func:`product` uses ``np.dot``). An array, not a
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


_call_gemm = None   # set by compile_caller(): numba resolves it when it compiles product()


def compile_caller():
    """Define the numba intrinsic that calls a ``cblas_?gemm`` at a run-time address (imports numba)."""
    global _call_gemm
    if _call_gemm is not None:
        return
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def call_gemm(typingctx, address, order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        # cblas_?gemm(order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): the enums
        # as int32, sizes and pointers as int64 (one register either way), alpha and beta of the dtype
        def codegen(context, builder, signature, llargs):
            fnty = ir.FunctionType(ir.VoidType(), [context.get_value_type(t) for t in signature.args[1:]])
            builder.call(builder.inttoptr(llargs[0], fnty.as_pointer()), llargs[1:])
            return context.get_dummy_value()
        return types.void(address, order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), codegen

    _call_gemm = call_gemm


def product(blas, a, trans_a, b, trans_b, c, alpha, beta):
    # c <- alpha op(a) op(b) + beta c for C-contiguous 2-D arrays of one dtype, at most one of a, b
    # transposed (compiled by deepff._kernels; blas is gemms()). Through numpy's BLAS when found, else np.dot.
    if blas[2] == 0:
        if trans_a:
            ab = np.dot(a.T, b)
        elif trans_b:
            ab = np.dot(a, b.T)
        else:
            ab = np.dot(a, b)
        if alpha == 1 and beta == 0:
            c[:, :] = ab
        else:
            c[:, :] = alpha * ab + beta * c
        return
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    ta = np.int32(_TRANS if trans_a else _NO_TRANS)
    tb = np.int32(_TRANS if trans_b else _NO_TRANS)
    lda, ldb, ldc = max(1, a.shape[1]), max(1, b.shape[1]), max(1, n)
    pa, pb, pc = np.int64(a.ctypes.data), np.int64(b.ctypes.data), np.int64(c.ctypes.data)
    al, be = c.dtype.type(alpha), c.dtype.type(beta)
    _call_gemm(blas[0] if c.itemsize == 4 else blas[1], np.int32(_ROW_MAJOR), ta, tb, np.int64(m), np.int64(n),
               np.int64(k), al, pa, np.int64(lda), pb, np.int64(ldb), be, pc, np.int64(ldc))
