"""Optional fused optimizer kernels, compiled with numba when it is installed.

The numpy code in :mod:`deepff.optimizers` is the readable reference: Adam's
update there is about a dozen whole-buffer passes (m, v, the bias
corrections, the square root, the division...). This module does the same
arithmetic in ONE pass over the flat parameter buffer, which matters when
the buffer is large and the matrix products are small. It is used only when

* numba can be imported (``pip install "deepff[fast]"``), and
* the environment variable ``DEEPFF_NUMBA`` is not ``0``.

Results agree with the numpy path to float rounding (the kernel keeps the
scalars in float64); tests/test_kernels.py checks that.
"""

from __future__ import annotations

import math
import os

__all__ = ["enabled", "adam_kernel"]

_CACHE = {}


def enabled():
    """Whether fused kernels may be used (numba importable, not disabled).

    Returns
    -------
    bool
    """
    if os.environ.get("DEEPFF_NUMBA", "1") == "0":
        return False
    if "numba" not in _CACHE:
        try:
            import numba  # noqa: F401

            _CACHE["numba"] = True
        except Exception:  # not installed, or broken against this numpy
            _CACHE["numba"] = False
    return _CACHE["numba"]


def _adam(theta, grad, m, v, vmax, b1, b2, step_size, inv_sqrt_bc2, eps, weight_decay,
          decay_factor, amsgrad, decoupled):
    # One pass of PyTorch's Adam/AdamW over the flat buffer (see optimizers.Adam).
    for i in range(theta.shape[0]):
        g = grad[i]
        if decoupled:
            theta[i] = theta[i] * decay_factor              # theta *= 1 - lr * wd
        elif weight_decay != 0.0:
            g = g + weight_decay * theta[i]                 # d = g + wd * theta
        m[i] = b1 * m[i] + (1.0 - b1) * g                   # m = b1 m + (1 - b1) d
        v[i] = b2 * v[i] + (1.0 - b2) * g * g               # v = b2 v + (1 - b2) d^2
        vi = v[i]
        if amsgrad:
            if vi > vmax[i]:
                vmax[i] = vi                                # vmax = max(vmax, v)
            vi = vmax[i]
        den = math.sqrt(vi) * inv_sqrt_bc2 + eps            # sqrt(v / bc2) + eps
        theta[i] = theta[i] - step_size * m[i] / den        # theta -= lr / bc1 * m / den


def adam_kernel():
    """Return the compiled one-pass Adam kernel, or None without numba.

    Returns
    -------
    callable or None
        ``kernel(theta, grad, m, v, vmax, b1, b2, step_size, inv_sqrt_bc2,
        eps, weight_decay, decay_factor, amsgrad, decoupled)`` updating the
        1-D arrays theta, m, v (and vmax when amsgrad) of shape (n_params,)
        in place.
    """
    if not enabled():
        return None
    if "adam" not in _CACHE:
        import numba

        _CACHE["adam"] = numba.njit(cache=True, nogil=True, error_model="numpy")(_adam)
    return _CACHE["adam"]
