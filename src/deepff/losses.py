"""Loss functions J(h, y) and their gradients dJ/dh, with one contract.

Shapes: the network output ``h`` and the target ``y`` are both
(n_samples, n_outputs); class labels are turned into one-hot rows before
they reach a loss. ``w`` is an optional (n_samples,) array of sample
weights (``None`` means all ones).

Every loss is a *mean over the mini-batch*, J = (1/N) sum_i w_i sum_j l(h_ij, y_ij),
and ``reduction`` (an argument of every loss) says which mean:

* ``"mean"`` (the default): N = n for ``neg_log_likelihood``
  (J = -(1/n) sum_i w_i sum_j y_ij log h_ij) and N = n k, the mean over all
  n * k elements, for ``mse``, ``mae``, ``huber``, ``binary_cross_entropy``
  and ``poisson``. Weights scale rows; N does not depend on them.
* ``"sample_mean"``: N = sum_i w_i (n when unweighted), the per-sample loss
  summed over the k outputs and averaged with the weights. This is
  scikit-learn's convention for its MLPs (``deepff.sklearn`` uses it, with
  ``MeanSquaredError(half=True)`` for its squared error); a batch whose
  weights sum to 0 has no such mean (ZeroDivisionError, as numpy's
  ``np.average`` raises).

Methods (the same on every loss):

``value(h, y, w=None) -> float``
    J.
``grad(h, y, w=None, out=None) -> g_h``
    dJ/dh, (n_samples, n_outputs), the 1/N included.

Canonical pairs are *fused*: for softmax + neg_log_likelihood,
sigmoid + binary_cross_entropy and exp + poisson the engine skips the
activation's backward and asks the loss for dJ/da directly from the
logits ``a``:

``value_from_logits(a, y, w=None) -> float``
    J computed with log-sum-exp, finite for any logits.
``grad_from_logits(a, h, y, w=None, out=None) -> g_a``
    w_i (h - y) / N for all three pairs.

In the general (non-fused) path h is clipped (eps = 1e-7, 1e-15 in
float64): to [eps, 1] for NLL, [eps, 1 - eps] for BCE, [eps, inf) for
poisson, and the gradient is zero where the clip is active, so value and
gradient always agree.

A loss also checks what reaches it: :meth:`Loss.check_output` the output
layer's activation (a linear output cannot feed neg_log_likelihood), and
:meth:`Loss.check_targets` the prepared targets (rows of probabilities
for NLL, y >= 0 for poisson).
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels, _piece_kernels
from ._twins import compiled_twin, fits
from .checks import real
from .errors import InputError, SpecError
from .registry import Registry

__all__ = [
    "Loss",
    "NegLogLikelihood",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "Huber",
    "BinaryCrossEntropy",
    "PoissonDeviance",
    "get",
    "register",
    "names",
]


class Loss:
    """Base class of losses; see the module docstring for the contract.

    Parameters
    ----------
    reduction : {"mean", "sample_mean"}, default "mean"
        Which mean of the batch J is (the module docstring gives N for
        each); every built-in loss takes it.

    Attributes
    ----------
    name : str
        Registry name.
    task : {"classification", "regression"}
        What the loss is for; decides what ``predict`` returns.
    fused_activation : str or None
        Name of the output activation whose pairing with this loss has a
        fused gradient.
    """

    name = "loss"
    task = "regression"
    fused_activation = None
    REDUCTIONS = ("mean", "sample_mean")
    #: under reduction "mean", N is n (one term per row: the NLL) rather than n k (one per element)
    mean_over_rows = False

    def __init__(self, reduction="mean"):
        if reduction not in self.REDUCTIONS:
            raise SpecError(f"{self.name} reduction must be one of {', '.join(map(repr, self.REDUCTIONS))}, "
                            f"got {reduction!r}")
        self.reduction = reduction

    def denominator(self, h, w=None):
        """N, the number the weighted sum of the batch's terms is divided by (see the module docstring).

        Parameters
        ----------
        h : ndarray of shape (n_samples, n_outputs)
        w : ndarray of shape (n_samples,), optional

        Returns
        -------
        float

        Raises
        ------
        ZeroDivisionError
            Under ``"sample_mean"``, when the weights sum to 0.
        """
        if getattr(self, "reduction", "mean") == "mean":
            return float(h.shape[0] if self.mean_over_rows else h.size)
        return float(h.shape[0]) if w is None else weight_total(w)

    def value(self, h, y, w=None):
        """Return the scalar loss J.

        Parameters
        ----------
        h : ndarray of shape (n_samples, n_outputs)
            Network outputs.
        y : ndarray of shape (n_samples, n_outputs)
            Targets.
        w : ndarray of shape (n_samples,), optional
            Sample weights.

        Returns
        -------
        float
        """
        raise NotImplementedError

    def grad(self, h, y, w=None, out=None):
        """Return dJ/dh.

        Parameters
        ----------
        h, y : ndarray of shape (n_samples, n_outputs)
        w : ndarray of shape (n_samples,), optional
        out : ndarray of shape (n_samples, n_outputs), optional

        Returns
        -------
        g_h : ndarray of shape (n_samples, n_outputs)
        """
        raise NotImplementedError

    def value_from_logits(self, a, y, w=None):
        """Fused J from the pre-activations ``a`` (only for the fused pair).

        Parameters
        ----------
        a, y : ndarray of shape (n_samples, n_outputs)
        w : ndarray of shape (n_samples,), optional

        Returns
        -------
        float
        """
        raise NotImplementedError(f"{self.name} has no fused path")

    def grad_from_logits(self, a, h, y, w=None, out=None):
        """Fused dJ/da (only for the fused pair).

        Parameters
        ----------
        a, h, y : ndarray of shape (n_samples, n_outputs)
        w : ndarray of shape (n_samples,), optional
        out : ndarray of shape (n_samples, n_outputs), optional

        Returns
        -------
        g_a : ndarray of shape (n_samples, n_outputs)
        """
        raise NotImplementedError(f"{self.name} has no fused path")

    def check_output(self, activation):
        """Refuse an output activation whose values the loss cannot take (the base class takes any).

        Parameters
        ----------
        activation : Activation
            The output layer's; one whose ``output_range`` is None (a
            custom activation) is always taken.

        Raises
        ------
        SpecError
        """

    def check_targets(self, y, name="y"):
        """Refuse prepared targets outside the loss's domain (the base class takes any finite value).

        Parameters
        ----------
        y : ndarray of shape (n_samples, n_outputs)
            Finite targets, class labels already one-hot.
        name : str
            What to call them in the message.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            ``y``, or a corrected copy (rows rescaled to sum to 1).

        Raises
        ------
        InputError
        """
        return y

    def get_config(self):
        """Return the constructor arguments as a dict (``reduction`` only when it is not the default)."""
        reduction = getattr(self, "reduction", "mean")
        return {} if reduction == "mean" else {"reduction": reduction}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def weight_total(w):
    """sum_i w_i in float64: N of the ``"sample_mean"`` reduction for a weighted batch.

    Parameters
    ----------
    w : ndarray of shape (n_samples,)

    Returns
    -------
    float

    Raises
    ------
    ZeroDivisionError
        When the weights sum to 0 (numpy's ``np.average`` says the same).
    """
    total = float(np.add.reduce(w, dtype=np.float64))
    if not total:
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    return total


def _weighted_mean(per_sample, w, denom):
    """(1/denom) * sum_i w_i per_sample_i; ``per_sample`` is (n_samples,), denom is N."""
    if w is None:
        return float(per_sample.sum()) / denom
    return float(np.dot(w, per_sample)) / denom


def _scale_rows(g, w, scale):
    """g *= scale * w[:, None] in place (w may be None); returns g."""
    if w is None:
        g *= scale
    else:
        g *= (scale * w)[:, None].astype(g.dtype, copy=False)
    return g


def _eps(dtype):
    return 1e-15 if np.dtype(dtype) == np.float64 else 1e-7


class NegLogLikelihood(Loss):
    """Negative log-likelihood of categorical targets (cross-entropy).

    J = -(1/n) sum_i w_i sum_j y_ij log h_ij. ``y`` rows are one-hot or
    probability vectors. dJ/dh_ij = -w_i y_ij / (n h_ij).
    Fused with softmax: dJ/da = w_i (h_ij - y_ij) / n, and J is computed as
    (1/n) sum_i w_i (logsumexp(a_i) - sum_j y_ij a_ij).

    Parameters
    ----------
    reduction : {"mean", "sample_mean"}, default "mean"
        N = n, or sum_i w_i (see the module docstring).
    """

    name = "neg_log_likelihood"
    task = "classification"
    fused_activation = "softmax"
    mean_over_rows = True

    def check_output(self, activation):
        """h must be a probability vector per row: softmax. See :meth:`Loss.check_output`."""
        if activation.output_range is not None and not activation.sums_to_one:
            raise SpecError(f"{self.name} needs an output layer of probabilities summing to 1, which "
                            f"{activation.name!r} does not give; use the 'softmax' activation there (fused with "
                            "the loss, it takes the logits itself)")

    def check_targets(self, y, name="y"):
        """Rows must be probability vectors: entries >= 0 summing to 1 (the fused gradient h - y needs it).

        Rows that sum to 1 within 1e-3 (rounded or float32 probabilities)
        are rescaled to sum to 1 (when they are off by more than rounding);
        others are refused. See :meth:`Loss.check_targets`.
        """
        if (y < 0).any():
            raise InputError(f"{name} holds a negative entry; {self.name} targets are class labels or rows of "
                             "probabilities")
        sums = np.add.reduce(y, axis=1, dtype=np.float64)
        bad = np.flatnonzero(np.abs(sums - 1) > 1e-3)
        if bad.size:
            raise InputError(f"{name} row {bad[0]} sums to {sums[bad[0]]:.10g}; {self.name} targets are class "
                             "labels or rows of probabilities summing to 1 (for several labels per sample, "
                             "use sigmoid outputs with binary_cross_entropy)")
        if (np.abs(sums - 1) > math.sqrt(np.finfo(y.dtype).eps)).any():   # beyond rounding: rescale
            y = (y / sums[:, None]).astype(y.dtype, copy=False)
        return y

    def value(self, h, y, w=None):
        """See :meth:`Loss.value`."""
        eps = _eps(h.dtype)
        logh = np.log(np.clip(h, eps, 1.0))
        return _weighted_mean(-np.einsum("ij,ij->i", y, logh), w, self.denominator(h, w))

    def grad(self, h, y, w=None, out=None):
        """See :meth:`Loss.grad`."""
        eps = _eps(h.dtype)
        inside = (h >= eps) & (h <= 1.0)
        g = np.divide(-y, np.clip(h, eps, 1.0), out=out)
        g *= inside
        return _scale_rows(g, w, 1.0 / self.denominator(h, w))

    @compiled_twin(lambda self, a, y, w=None: _nll_compiled(self, a, y, w))
    def value_from_logits(self, a, y, w=None):
        """See :meth:`Loss.value_from_logits`."""
        m = a.max(axis=1, keepdims=True)
        z = np.subtract(a, m)
        np.exp(z, out=z)
        lse = np.log(np.add.reduce(z, axis=1)) + m[:, 0]     # log sum_j e^{a_ij}, no overflow
        if w is None:                                        # sum_i (lse_i sum_j y_ij - y_i . a_i)
            return float(np.dot(lse, np.add.reduce(y, axis=1)) - np.vdot(y, a)) / self.denominator(a, w)
        per = lse * y.sum(axis=1) - np.einsum("ij,ij->i", y, a)
        return _weighted_mean(per, w, self.denominator(a, w))

    def grad_from_logits(self, a, h, y, w=None, out=None):
        """w_i (h - y) / N. See :meth:`Loss.grad_from_logits`."""
        g = np.subtract(h, y, out=out)
        return _scale_rows(g, w, 1.0 / self.denominator(a, w))


def _nll_compiled(loss, a, y, w):
    """The same sums from the logits row by row, in float64 (optional numba), or None."""
    takes = fits(2, a, y) and y.shape == a.shape and \
        (w is None or (type(w) is np.ndarray and w.shape == (a.shape[0],)))
    kernels = _kernels.softmax_kernels() if takes else None
    if kernels is None:
        return None
    e, m = np.empty_like(a), np.empty(a.shape[0], dtype=a.dtype)
    kernels[0](a, e, m)                         # e = a - max, m = max
    np.exp(e, out=e)
    weighted = w is not None
    return _piece_kernels.nll_kernel()(e, m, a, y, w if weighted else m, weighted) / loss.denominator(a, w)


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy for binary and multi-label targets in {0, 1}.

    J = -(1/(n k)) sum_ij w_i [y_ij log h_ij + (1 - y_ij) log(1 - h_ij)],
    dJ/dh = w_i (h - y) / (n k h (1 - h)).
    Fused with sigmoid: dJ/da = w_i (h - y) / (n k) and
    J = (1/(n k)) sum w_i [max(a, 0) - a y + log(1 + e^{-|a|})].

    Parameters
    ----------
    reduction : {"mean", "sample_mean"}, default "mean"
        N = n k, or sum_i w_i (see the module docstring).
    """

    name = "binary_cross_entropy"
    task = "classification"
    fused_activation = "sigmoid"

    def check_output(self, activation):
        """h must lie in [0, 1]. See :meth:`Loss.check_output`."""
        r = activation.output_range
        if r is not None and not (r[0] >= 0 and r[1] <= 1):
            raise SpecError(f"{self.name} needs outputs in [0, 1], which {activation.name!r} does not give; "
                            "use the 'sigmoid' activation there (fused with the loss, it takes the logits itself)")

    def value(self, h, y, w=None):
        """See :meth:`Loss.value`."""
        eps = _eps(h.dtype)
        hc = np.clip(h, eps, 1 - eps)
        per = -(y * np.log(hc) + (1 - y) * np.log1p(-hc)).sum(axis=1)
        return _weighted_mean(per, w, self.denominator(h, w))

    def grad(self, h, y, w=None, out=None):
        """See :meth:`Loss.grad`."""
        eps = _eps(h.dtype)
        hc = np.clip(h, eps, 1 - eps)
        g = np.subtract(hc, y, out=out)
        g /= hc * (1 - hc)
        g *= (h >= eps) & (h <= 1 - eps)
        return _scale_rows(g, w, 1.0 / self.denominator(h, w))

    def value_from_logits(self, a, y, w=None):
        """See :meth:`Loss.value_from_logits`."""
        per = (np.maximum(a, 0) - a * y + np.log1p(np.exp(-np.abs(a)))).sum(axis=1)
        return _weighted_mean(per, w, self.denominator(a, w))

    def grad_from_logits(self, a, h, y, w=None, out=None):
        """w_i (h - y) / N. See :meth:`Loss.grad_from_logits`."""
        g = np.subtract(h, y, out=out)
        return _scale_rows(g, w, 1.0 / self.denominator(a, w))


class MeanSquaredError(Loss):
    """Mean squared error: J = (c/N) sum w_i (h - y)^2, dJ/dh = 2 c w_i (h - y) / N.

    c = 1, or 1/2 with ``half=True`` (the "half squared error" whose gradient is
    the residual itself, w_i (h - y) / N, as in scikit-learn).

    Parameters
    ----------
    reduction : {"mean", "sample_mean"}, default "mean"
        N = n k, or sum_i w_i (see the module docstring).
    half : bool, default False
    """

    name = "mse"

    def __init__(self, reduction="mean", half=False):
        super().__init__(reduction)
        if not isinstance(half, (bool, np.bool_)):
            raise SpecError(f"mse half must be true or false, got {half!r}")
        self.half = bool(half)

    def value(self, h, y, w=None):
        """See :meth:`Loss.value`."""
        r = h - y
        J = _weighted_mean(np.einsum("ij,ij->i", r, r), w, self.denominator(h, w))
        return 0.5 * J if self.half else J

    def grad(self, h, y, w=None, out=None):
        """See :meth:`Loss.grad`."""
        g = np.subtract(h, y, out=out)
        return _scale_rows(g, w, (1.0 if self.half else 2.0) / self.denominator(h, w))

    def get_config(self):
        """The constructor arguments that differ from the defaults."""
        config = super().get_config()
        if self.half:
            config["half"] = True
        return config


class MeanAbsoluteError(Loss):
    """Mean absolute error: J = (1/(n k)) sum w_i |h - y|, dJ/dh = w_i sign(h - y) / (n k).

    Parameters
    ----------
    reduction : {"mean", "sample_mean"}, default "mean"
        N = n k, or sum_i w_i (see the module docstring).
    """

    name = "mae"

    def value(self, h, y, w=None):
        """See :meth:`Loss.value`."""
        return _weighted_mean(np.abs(h - y).sum(axis=1), w, self.denominator(h, w))

    def grad(self, h, y, w=None, out=None):
        """See :meth:`Loss.grad`."""
        g = np.subtract(h, y, out=out)
        np.sign(g, out=g)
        return _scale_rows(g, w, 1.0 / self.denominator(h, w))


class Huber(Loss):
    """Huber loss with threshold delta (default 1), mean over all elements.

    With r = h - y: l(r) = r^2 / 2 if |r| <= delta else delta (|r| - delta / 2);
    dJ/dh = w_i clip(r, -delta, delta) / (n k).

    Parameters
    ----------
    delta : float, default 1.0
    reduction : {"mean", "sample_mean"}, default "mean"
        N = n k, or sum_i w_i (see the module docstring).
    """

    name = "huber"

    def __init__(self, delta=1.0, reduction="mean"):
        super().__init__(reduction)
        self.delta = real("huber", "delta", delta, low=0.0, low_open=True)

    def value(self, h, y, w=None):
        """See :meth:`Loss.value`."""
        r = np.abs(h - y)
        d = self.delta
        per = np.where(r <= d, 0.5 * r * r, d * (r - 0.5 * d)).sum(axis=1)
        return _weighted_mean(per, w, self.denominator(h, w))

    def grad(self, h, y, w=None, out=None):
        """See :meth:`Loss.grad`."""
        g = np.subtract(h, y, out=out)
        np.clip(g, -self.delta, self.delta, out=g)
        return _scale_rows(g, w, 1.0 / self.denominator(h, w))

    def get_config(self):
        """Return ``{"delta": delta}`` (and ``reduction`` when it is not the default)."""
        return {"delta": self.delta, **super().get_config()}


class PoissonDeviance(Loss):
    """Half Poisson deviance, for counts and rates y >= 0 with predictions h > 0.

    J = (1/(n k)) sum_i w_i sum_j [y_ij log(y_ij / h_ij) - y_ij + h_ij] (the
    term y log y is 0 for y = 0); dJ/dh = w_i (1 - y / h) / (n k).
    Fused with ``exp`` (h = e^a): dJ/da = w_i (h - y) / (n k).

    Parameters
    ----------
    reduction : {"mean", "sample_mean"}, default "mean"
        N = n k, or sum_i w_i (see the module docstring).
    """

    name = "poisson"
    fused_activation = "exp"

    def check_output(self, activation):
        """h must be >= 0 (a rate). See :meth:`Loss.check_output`."""
        if activation.output_range is not None and activation.output_range[0] < 0:
            raise SpecError(f"the poisson loss needs outputs >= 0, which {activation.name!r} does not give; "
                            "use the 'exp' activation there (fused with the loss) or 'softplus'")

    def check_targets(self, y, name="y"):
        """Counts and rates: y >= 0. See :meth:`Loss.check_targets`."""
        if (y < 0).any():
            raise InputError(f"{name} holds a negative value ({y.min():g}); the poisson loss needs targets >= 0")
        return y

    def value(self, h, y, w=None):
        """See :meth:`Loss.value` (h is clipped below at eps, as for the NLL)."""
        from scipy.special import xlogy  # imported here to keep `import deepff` fast

        hc = np.maximum(h, _eps(h.dtype))
        per = (xlogy(y, y / hc) - y + hc).sum(axis=1)
        return _weighted_mean(per, w, self.denominator(h, w))

    def grad(self, h, y, w=None, out=None):
        """See :meth:`Loss.grad` (zero where the clip is active)."""
        eps = _eps(h.dtype)
        g = np.divide(y, np.maximum(h, eps), out=out)
        np.subtract(1, g, out=g)
        g *= h >= eps
        return _scale_rows(g, w, 1.0 / self.denominator(h, w))

    def value_from_logits(self, a, y, w=None):
        """J from the logits: y log y - y a - y + e^a, unclipped, so it agrees with the fused gradient.

        See :meth:`Loss.value_from_logits`.
        """
        from scipy.special import xlogy

        with np.errstate(over="ignore"):       # e^a = inf: J = inf, which the trainer reports as divergence
            per = (xlogy(y, y) - y * a - y + np.exp(a)).sum(axis=1)
        return _weighted_mean(per, w, self.denominator(a, w))

    def grad_from_logits(self, a, h, y, w=None, out=None):
        """w_i (h - y) / N. See :meth:`Loss.grad_from_logits`."""
        g = np.subtract(h, y, out=out)
        return _scale_rows(g, w, 1.0 / self.denominator(h, w))


REGISTRY = Registry("loss", Loss, aliases={
    "cross_entropy": "neg_log_likelihood",
    "nll": "neg_log_likelihood",
    "categorical_crossentropy": "neg_log_likelihood",
    "bce": "binary_cross_entropy",
    "binary_crossentropy": "binary_cross_entropy",
    "mean_squared_error": "mse",
    "squared_error": "mse",
    "mean_absolute_error": "mae",
})
register = REGISTRY.register
"""Register a new loss class under its ``name`` (:meth:`deepff.registry.Registry.register`)."""
names = REGISTRY.names
"""The registered loss names, sorted (:meth:`deepff.registry.Registry.names`)."""

for _cls in (NegLogLikelihood, BinaryCrossEntropy, MeanSquaredError, MeanAbsoluteError, Huber, PoissonDeviance):
    register(_cls)


def get(identifier):
    """Return a :class:`Loss` for a name, a config dict or an instance.

    Parameters
    ----------
    identifier : str, dict or Loss
        A registered name or alias, ``{"name": ..., **params}``, or an
        instance (returned unchanged).

    Returns
    -------
    Loss

    Raises
    ------
    SpecError
        For an unknown name (the message lists the valid ones) or bad
        parameters.
    """
    return REGISTRY.get(identifier)
