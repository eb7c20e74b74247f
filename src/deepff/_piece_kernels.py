"""Compiled kernels for single pieces of the numpy engine, outside the whole step.

The numpy step (:class:`deepff.training.Trainer` on networks the whole
compiled step does not take: dropout, batch norm, tanh layers...) runs each
layer's pieces as numpy calls; where numba is installed, these kernels do a
piece in one pass instead: ReLU's bias and activation, the ReLU, tanh and
logistic derivatives, and the negative log-likelihood's sum from the softmax
row passes. The same rules as in :mod:`deepff._kernels` hold: the same
operations in the same order and dtype as the numpy path (the same bits),
except the loss sum, which is accumulated in float64 and agrees to rounding;
tests/test_kernels.py checks both.

They live apart from :mod:`deepff._kernels` because the whole step does not
call them: numba invalidates a cached function only when its own file
changes, so the step's callees share its file, and these need not.
"""

from __future__ import annotations

import numpy as np

from ._kernels import compiled, enabled

__all__ = ["bias_relu_kernel", "relu_backward_kernel", "tanh_backward_kernel", "sigmoid_backward_kernel",
           "nll_kernel"]


def _bias_relu(z, b, h):
    # a = z + b, written back into z (it is the layer's a^l), and h = max(a, 0)
    # in one pass; a NaN in a stays NaN in h, as with np.maximum.
    zero = z.dtype.type(0)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            a = z[i, j] + b[0, j]
            z[i, j] = a
            h[i, j] = zero if a <= zero else a      # +0.0 for -0.0, as np.maximum gives


def _relu_backward(g, h, out):
    # dJ/da = g o [h > 0], as g times a 0/1 factor (so NaN and inf behave as in numpy)
    zero, one = g.dtype.type(0), g.dtype.type(1)
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            out[i, j] = g[i, j] * (one if h[i, j] > zero else zero)


def _nll_from_shifted(e, m, a, y, w, weighted):
    # sum_i w_i (lse_i sum_j y_ij - sum_j y_ij a_ij), with e_ij = exp(a_ij - m_i)
    # so that lse_i = m_i + log sum_j e_ij; accumulated in float64 (the caller
    # divides by n)
    total = 0.0
    for i in range(a.shape[0]):
        s = 0.0
        ys = 0.0
        ya = 0.0
        for j in range(a.shape[1]):
            s += e[i, j]
            ys += y[i, j]
            ya += y[i, j] * np.float64(a[i, j])
        per = (np.log(s) + m[i]) * ys - ya
        total += w[i] * per if weighted else per
    return total


def _tanh_backward(g, h, out):
    # dJ/da = g o (1 - h^2)
    one = g.dtype.type(1)
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            x = h[i, j]
            out[i, j] = g[i, j] * (one - x * x)


def _sigmoid_backward(g, h, out):
    # dJ/da = (g o h) o (1 - h)
    one = g.dtype.type(1)
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            x = h[i, j]
            out[i, j] = (g[i, j] * x) * (one - x)


def bias_relu_kernel():
    """Return the compiled fused bias + ReLU forward, or None without numba.

    Returns
    -------
    callable or None
        ``kernel(z, b, h)`` with z, h of shape (n_samples, n_units) and b of
        shape (1, n_units): z becomes a = z + b and h = max(a, 0).
    """
    return compiled("bias_relu", _bias_relu) if enabled() else None


def relu_backward_kernel():
    """Return the compiled ReLU backward, or None without numba.

    Returns
    -------
    callable or None
        ``kernel(g, h, out)``, all of shape (n_samples, n_units):
        out = g o [h > 0] (out may be g).
    """
    return compiled("relu_backward", _relu_backward) if enabled() else None


def nll_kernel():
    """Return the compiled negative log-likelihood sum from shifted exponentials, or None.

    Returns
    -------
    callable or None
        ``kernel(e, m, a, y, w, weighted)`` with e = exp(a - m) and logits a,
        targets y of shape (n_samples, n_outputs), row maxima m and weights w
        of shape (n_samples,) (w ignored unless ``weighted``); returns
        sum_i w_i (logsumexp(a_i) sum_j y_ij - y_i . a_i) as a float.
    """
    return compiled("nll", _nll_from_shifted) if enabled() else None


def tanh_backward_kernel():
    """Return the compiled tanh derivative, or None without numba.

    Returns
    -------
    callable or None
        ``kernel(g, h, out)``, all of shape (n_samples, n_units):
        out = g o (1 - h^2).
    """
    return compiled("tanh_backward", _tanh_backward) if enabled() else None


def sigmoid_backward_kernel():
    """Return the compiled logistic derivative, or None without numba.

    Returns
    -------
    callable or None
        ``kernel(g, h, out)``, all of shape (n_samples, n_units):
        out = (g o h) o (1 - h).
    """
    return compiled("sigmoid_backward", _sigmoid_backward) if enabled() else None
