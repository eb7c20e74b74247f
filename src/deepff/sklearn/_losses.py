"""scikit-learn's loss formulas for the estimators (the reported ``loss_`` and the training loss)."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from .. import _kernels
from .. import losses as _losses
from ._common import _activation_object

# ============================================================================
# Engine parts: scikit-learn's losses
# ============================================================================


class _SkLoss(_losses.Loss):
    """A loss in scikit-learn's convention, for the estimators' training loop.

    ``value`` and ``grad_from_logits`` are weighted *sums* over the batch,
    J = sum_i w_i l_i and dJ/da = w_i (h_i - y_i) (canonical link); the loop
    divides the whole gradient buffer by sum_i w_i afterwards, exactly where
    scikit-learn divides. ``reported`` is scikit-learn's own formula for the
    batch loss (a weighted average), used for ``loss_`` and ``loss_curve_``;
    ``objective`` is the average that is consistent with the gradient (the
    L-BFGS objective; the same as ``reported`` except for multi-output squared
    error, where scikit-learn reports the mean over outputs).
    """

    def reported(self, h, y, w=None):
        """scikit-learn's batch loss (float)."""
        raise NotImplementedError

    def objective(self, h, y, w=None):
        """The average loss whose gradient the loop computes (float)."""
        return self.reported(h, y, w)

    def value(self, h, y, w=None):
        """sum_i w_i l_i (float). See :meth:`deepff.losses.Loss.value`."""
        n = h.shape[0] if w is None else float(np.sum(w))
        return self.objective(h, y, w) * n

    def value_from_logits(self, a, y, w=None):
        """See :meth:`deepff.losses.Loss.value_from_logits`."""
        h = np.array(a, copy=True)
        _activation_object(self.fused_activation).forward(h, out=h)
        return self.value(h, y, w)

    def grad_from_logits(self, a, h, y, w=None, out=None):
        """w_i (h_i - y_i): the canonical-link gradient of the weighted sum."""
        g = np.subtract(h, y, out=out)
        if w is not None:
            g *= w.reshape(-1, 1)
        return g


def _average0(a, w):
    """np.average(a, weights=w, axis=0); the unweighted mean as np.mean computes it, minus its wrappers."""
    if w is None:
        total = np.add.reduce(a, axis=0)
        total /= a.shape[0]
        return total
    return np.average(a, weights=w, axis=0)


def _clip_eps(h):
    """np.clip(h, eps, 1 - eps) with eps the machine epsilon of h's dtype (as two ufunc calls)."""
    eps = np.finfo(h.dtype).eps
    p = np.maximum(h, eps)
    return np.minimum(p, 1 - eps, out=p)


def _log_loss_terms(h, y, binary):
    """xlogy(y, p) (+ xlogy(1 - y, 1 - p) when binary), p = clip(h, eps, 1 - eps).

    One compiled pass when numba is there (one log per row for one-hot y);
    the numpy calls otherwise. Either way the same values, which the caller
    reduces with numpy exactly as scikit-learn does.
    """
    eps = np.finfo(h.dtype).eps
    kernel = _kernels.log_loss_terms_kernel() if _kernels.fits(2, h, y) else None
    if kernel is not None:
        out = np.empty_like(h)
        kernel(h, y, h.dtype.type(eps), binary, out)
        return out
    p = _clip_eps(h)
    return xlogy(y, p) + xlogy(1 - y, 1 - p) if binary else xlogy(y, p)


class _SkLogLoss(_SkLoss):
    """Multi-class log-loss on softmax probabilities (scikit-learn's ``log_loss``)."""

    name = "sklearn_log_loss"
    task = "classification"
    fused_activation = "softmax"

    def reported(self, h, y, w=None):
        return -np.add.reduce(_average0(_log_loss_terms(h, y, binary=False), w))


class _SkBinaryLogLoss(_SkLoss):
    """Log-loss of independent logistic outputs, summed over labels (``binary_log_loss``)."""

    name = "sklearn_binary_log_loss"
    task = "classification"
    fused_activation = "sigmoid"

    def reported(self, h, y, w=None):
        return -_average0(_log_loss_terms(h, y, binary=True), w).sum()


class _SkSquaredLoss(_SkLoss):
    """Half squared error (scikit-learn's ``squared_error``)."""

    name = "sklearn_squared_error"
    task = "regression"
    fused_activation = "linear"

    def reported(self, h, y, w=None):
        return 0.5 * _average0((y - h) ** 2, w).mean()

    def objective(self, h, y, w=None):
        return 0.5 * _average0((y - h) ** 2, w).sum()


class _SkPoissonLoss(_SkLoss):
    """Half Poisson deviance with an exp output (scikit-learn's ``poisson``)."""

    name = "sklearn_poisson"
    task = "regression"
    fused_activation = "exp"

    def reported(self, h, y, w=None):
        return _average0(xlogy(y, y / h) - y + h, w).sum()
