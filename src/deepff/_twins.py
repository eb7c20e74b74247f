"""Compiled twins of numpy methods: the method's body is the numpy math, the decorator the fast path.

A hot method (ReLU's bias + activation, the derivatives, softmax, the
negative log-likelihood from logits) is written once in numpy, the reference
a reader looks for. :func:`compiled_twin` puts the optional numba kernel
(:mod:`deepff._kernels`) in front of it: ``fast(self, *args)`` runs the kernel
and returns the result when numba is there and takes these arrays, or None,
and then the numpy body runs. Both compute the same values (to the bit for
element-wise passes, to float rounding for row sums; tests/test_kernels.py
checks each).

Prediction takes the numpy methods always: inside :func:`numpy_only` (which
``FeedForward.forward(training=False)`` enters) a twin is never asked for,
so a process that only predicts never imports numba (its import and the
kernels' load cost a new process about 0.3 s), and its outputs do not
depend on whether numba is installed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import numpy as np

__all__ = ["compiled_twin", "numpy_only", "numpy_only_now", "fits"]

_NUMPY_ONLY = contextvars.ContextVar("deepff_numpy_only", default=False)


@contextlib.contextmanager
def numpy_only():
    """Within this context no compiled kernel runs and numba is not imported.

    Decorated methods run their numpy body, and ``deepff._kernels.enabled()``
    is False (so no optimizer kernel and no compiled step either).
    Prediction enters it, and so does a fit too short to pay for loading
    numba (``deepff._fused_step.kernels_for``).
    """
    token = _NUMPY_ONLY.set(True)
    try:
        yield
    finally:
        _NUMPY_ONLY.reset(token)


def numpy_only_now():
    """Whether the caller runs inside :func:`numpy_only`.

    Returns
    -------
    bool
    """
    return _NUMPY_ONLY.get()


def compiled_twin(fast):
    """Decorate a numpy method with its compiled twin.

    Parameters
    ----------
    fast : callable
        ``fast(self, *args, **kwargs) -> result or None``: the compiled
        path, or None when it does not apply (no numba, ``DEEPFF_NUMBA=0``,
        arrays it does not take).

    Returns
    -------
    callable
        The decorator. The decorated method keeps the numpy method as its
        ``numpy`` attribute.
    """
    def decorate(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            result = None if _NUMPY_ONLY.get() else fast(self, *args, **kwargs)
            return method(self, *args, **kwargs) if result is None else result

        run.numpy = method
        return run

    return decorate


_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def fits(ndim, *arrays):
    """Whether kernels can take these arrays: ndarrays of ``ndim`` dimensions, one dtype, float32 or float64.

    Anything else (lists, float16, a 2-D parameter vector, mixed dtypes)
    takes the numpy path, which accepts it or raises its usual error.

    Parameters
    ----------
    ndim : int
    *arrays : object

    Returns
    -------
    bool
    """
    dtype = None
    for x in arrays:  # a plain loop: this runs several times per training step
        if type(x) is not np.ndarray or x.ndim != ndim:
            return False
        if dtype is None:
            dtype = x.dtype
            if dtype not in _DTYPES:
                return False
        elif x.dtype != dtype:
            return False
    return True
