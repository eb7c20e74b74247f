"""Activation functions f and their derivatives, side by side.

Every activation is an object with two methods that share one contract:

``forward(a, out=None) -> h``
    h = f(a), element-wise (or row-wise for softmax). ``a`` and ``h`` are
    (n_samples, n_units).
``backward(a, h, g, out=None) -> g_a``
    The vector-Jacobian product dJ/da given ``g`` = dJ/dh, all three arrays
    (n_samples, n_units). For element-wise activations this is
    ``g * f'(a)``; the derivative is computed from whichever of ``a`` or
    ``h`` makes it cheapest.

``out`` lets the engine write into preallocated memory; ``out`` may be
``g`` itself (the backward pass updates the gradient in place). Neither
method keeps state, so one instance can serve every layer.

New activations subclass :class:`Activation` and are registered with
:func:`register`; :func:`get` accepts a name, a ``{"name": ..., **params}``
dict or an :class:`Activation` instance.
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels, _piece_kernels
from ._twins import compiled_twin, fits
from .checks import real
from .registry import Registry

__all__ = [
    "Activation",
    "Linear",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "SELU",
    "Softplus",
    "Sigmoid",
    "Tanh",
    "GELU",
    "SiLU",
    "Exp",
    "Softmax",
    "get",
    "register",
    "names",
]


class Activation:
    """Base class: an activation f with its exact derivative.

    Subclasses set ``name`` and implement :meth:`forward` and
    :meth:`backward`. Hyperparameters are constructor arguments and are
    returned by :meth:`get_config`, so ``type(act)(**act.get_config())``
    rebuilds the same activation.

    Attributes
    ----------
    name : str
        Registry name.
    output_range : tuple of float, or None
        ``(low, high)``: h lies within these bounds (loose ones where they
        depend on a hyperparameter, as for elu). Losses check them on an
        output layer; None (the default, for custom activations) means
        unknown, and any loss takes it.
    sums_to_one : bool
        Whether each row of h is a probability vector (softmax).
    kinks : tuple of float
        Points where f' jumps (0 for relu), at which finite differences
        cannot check the gradient; :func:`deepff.gradcheck` warns when a
        pre-activation sits on one.
    """

    name = "activation"
    output_range = None
    sums_to_one = False
    kinks = ()

    def forward(self, a, out=None):
        """Return h = f(a).

        Parameters
        ----------
        a : ndarray of shape (n_samples, n_units)
            Pre-activations.
        out : ndarray of shape (n_samples, n_units), optional
            Where to write h.

        Returns
        -------
        h : ndarray of shape (n_samples, n_units)
        """
        raise NotImplementedError

    def forward_biased(self, z, b, out):
        """Add the bias in place (z becomes a = z + b) and return h = f(a).

        The engine calls this in every dense layer; an activation with a
        fused kernel (ReLU) does both in one pass over the array.

        Parameters
        ----------
        z : ndarray of shape (n_samples, n_units)
            h^{l-1} W^l, overwritten with a^l = z + b.
        b : ndarray of shape (1, n_units)
            The bias b^l.
        out : ndarray of shape (n_samples, n_units)
            Where to write h.

        Returns
        -------
        h : ndarray of shape (n_samples, n_units)
        """
        z += b
        return self.forward(z, out=out)

    def backward(self, a, h, g, out=None):
        """Return dJ/da from dJ/dh.

        Parameters
        ----------
        a : ndarray of shape (n_samples, n_units)
            Pre-activations of the forward pass.
        h : ndarray of shape (n_samples, n_units)
            Outputs of the forward pass, ``f(a)``.
        g : ndarray of shape (n_samples, n_units)
            dJ/dh.
        out : ndarray of shape (n_samples, n_units), optional
            Where to write dJ/da; may be ``g`` itself.

        Returns
        -------
        g_a : ndarray of shape (n_samples, n_units)
        """
        raise NotImplementedError

    def get_config(self):
        """Return the constructor arguments as a dict.

        Returns
        -------
        dict
            Empty for activations without hyperparameters.
        """
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self), tuple(sorted(self.get_config().items()))))


class Linear(Activation):
    """Identity: f(a) = a, f'(a) = 1."""

    name = "linear"
    output_range = (-math.inf, math.inf)

    def forward(self, a, out=None):
        """h = a. See :meth:`Activation.forward`."""
        if out is None:
            return a.copy()
        if out is not a:
            np.copyto(out, a)
        return out

    def backward(self, a, h, g, out=None):
        """dJ/da = g. See :meth:`Activation.backward`."""
        if out is None:
            return g.copy()
        if out is not g:
            np.copyto(out, g)
        return out


class ReLU(Activation):
    """Rectified linear unit: f(a) = max(a, 0), f'(a) = [a > 0]."""

    name = "relu"
    kinks = (0.0,)
    output_range = (0.0, math.inf)

    def forward(self, a, out=None):
        """h = max(a, 0). See :meth:`Activation.forward`."""
        return np.maximum(a, 0, out=out)

    @compiled_twin(lambda self, z, b, out: _bias_relu_compiled(self, z, b, out))
    def forward_biased(self, z, b, out):
        """a = z + b, h = max(a, 0). See :meth:`Activation.forward_biased`."""
        return super().forward_biased(z, b, out)

    @compiled_twin(lambda self, a, h, g, out=None:
                   _derivative_compiled(_piece_kernels.relu_backward_kernel, g, h, out))
    def backward(self, a, h, g, out=None):
        """dJ/da = g o [h > 0]. See :meth:`Activation.backward`."""
        # multiply by the 0/1 mask instead of indexing: no boolean temporaries
        # on the hot path beyond one comparison.
        return np.multiply(g, h > 0, out=out)


class LeakyReLU(Activation):
    """Leaky ReLU: f(a) = a if a > 0 else slope * a.

    Parameters
    ----------
    slope : float, default 0.01
        Gradient for negative inputs.
    """

    name = "leaky_relu"
    kinks = (0.0,)
    output_range = (-math.inf, math.inf)

    def __init__(self, slope=0.01):
        self.slope = real("leaky_relu", "slope", slope)

    def forward(self, a, out=None):
        """h = max(a, slope * a) (for 0 <= slope <= 1). See :meth:`Activation.forward`."""
        return _write(out, np.where(a > 0, a, self.slope * a))

    def backward(self, a, h, g, out=None):
        """dJ/da = g o (1 if a > 0 else slope). See :meth:`Activation.backward`."""
        d = np.where(a > 0, 1.0, self.slope).astype(g.dtype, copy=False)
        return np.multiply(g, d, out=out)

    def get_config(self):
        """Return ``{"slope": slope}``."""
        return {"slope": self.slope}


class ELU(Activation):
    """Exponential linear unit: f(a) = a if a > 0 else alpha (e^a - 1).

    f'(a) = 1 if a > 0 else h + alpha.

    Parameters
    ----------
    alpha : float, default 1.0
    """

    name = "elu"
    output_range = (-math.inf, math.inf)

    def __init__(self, alpha=1.0):
        self.alpha = real("elu", "alpha", alpha)

    def forward(self, a, out=None):
        """See :meth:`Activation.forward`."""
        neg = self.alpha * np.expm1(np.minimum(a, 0))
        return _write(out, np.where(a > 0, a, neg))

    def backward(self, a, h, g, out=None):
        """dJ/da = g o (1 if a > 0 else h + alpha). See :meth:`Activation.backward`."""
        d = np.where(a > 0, 1.0, h + self.alpha).astype(g.dtype, copy=False)
        return np.multiply(g, d, out=out)

    def get_config(self):
        """Return ``{"alpha": alpha}``."""
        return {"alpha": self.alpha}


class SELU(Activation):
    """Scaled ELU: f(a) = scale * (a if a > 0 else alpha (e^a - 1)).

    alpha = 1.6732632423543772, scale = 1.0507009873554805 (Klambauer et
    al., 2017). f'(a) = scale if a > 0 else h + scale * alpha.
    """

    name = "selu"
    output_range = (-math.inf, math.inf)
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946

    def forward(self, a, out=None):
        """See :meth:`Activation.forward`."""
        neg = (self.scale * self.alpha) * np.expm1(np.minimum(a, 0))
        return _write(out, np.where(a > 0, self.scale * a, neg))

    def backward(self, a, h, g, out=None):
        """dJ/da = g o f'(a). See :meth:`Activation.backward`."""
        d = np.where(a > 0, self.scale, h + self.scale * self.alpha)
        return np.multiply(g, d.astype(g.dtype, copy=False), out=out)


class Softplus(Activation):
    """Softplus: f(a) = log(1 + e^a), f'(a) = sigmoid(a).

    Computed as max(a, 0) + log1p(e^{-|a|}) so it never overflows.
    """

    name = "softplus"
    output_range = (0.0, math.inf)

    def forward(self, a, out=None):
        """See :meth:`Activation.forward`."""
        return _write(out, np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a))))

    def backward(self, a, h, g, out=None):
        """dJ/da = g o sigmoid(a). See :meth:`Activation.backward`."""
        return np.multiply(g, _sigmoid(a), out=out)


class Sigmoid(Activation):
    """Logistic sigmoid: f(a) = 1 / (1 + e^{-a}), f'(a) = h (1 - h).

    Evaluated without overflow for large negative ``a``.
    """

    name = "sigmoid"
    output_range = (0.0, 1.0)

    def forward(self, a, out=None):
        """See :meth:`Activation.forward`."""
        return _sigmoid(a, out=out)

    @compiled_twin(lambda self, a, h, g, out=None:
                   _derivative_compiled(_piece_kernels.sigmoid_backward_kernel, g, h, out))
    def backward(self, a, h, g, out=None):
        """dJ/da = (g o h) o (1 - h). See :meth:`Activation.backward`."""
        one_minus_h = 1 - h
        out = np.multiply(g, h, out=out)
        out *= one_minus_h
        return out


class Tanh(Activation):
    """Hyperbolic tangent: f(a) = tanh(a), f'(a) = 1 - h^2."""

    name = "tanh"
    output_range = (-1.0, 1.0)

    def forward(self, a, out=None):
        """See :meth:`Activation.forward`."""
        return np.tanh(a, out=out)

    @compiled_twin(lambda self, a, h, g, out=None:
                   _derivative_compiled(_piece_kernels.tanh_backward_kernel, g, h, out))
    def backward(self, a, h, g, out=None):
        """dJ/da = g o (1 - h^2). See :meth:`Activation.backward`."""
        return np.multiply(g, 1 - h * h, out=out)


class GELU(Activation):
    """Gaussian error linear unit, exact form: f(a) = a Phi(a).

    Phi(a) = (1 + erf(a / sqrt 2)) / 2 is the standard normal CDF, so
    f'(a) = Phi(a) + a phi(a) with phi the standard normal density.
    """

    name = "gelu"
    output_range = (-math.inf, math.inf)

    def forward(self, a, out=None):
        """See :meth:`Activation.forward`."""
        return _write(out, a * _phi_cdf(a))

    def backward(self, a, h, g, out=None):
        """dJ/da = g o (Phi(a) + a phi(a)). See :meth:`Activation.backward`."""
        pdf = np.exp(-0.5 * a * a) * (1.0 / math.sqrt(2 * math.pi))
        d = _phi_cdf(a) + a * pdf
        return np.multiply(g, d, out=out)


class SiLU(Activation):
    """Sigmoid linear unit (swish): f(a) = a sigmoid(a).

    f'(a) = s (1 + a (1 - s)) with s = sigmoid(a).
    """

    name = "silu"
    output_range = (-math.inf, math.inf)

    def forward(self, a, out=None):
        """See :meth:`Activation.forward`."""
        return _write(out, a * _sigmoid(a))

    def backward(self, a, h, g, out=None):
        """dJ/da = g o s (1 + a (1 - s)). See :meth:`Activation.backward`."""
        s = _sigmoid(a)
        return np.multiply(g, s * (1 + a * (1 - s)), out=out)


class Exp(Activation):
    """Exponential: f(a) = e^a, f'(a) = h.

    The canonical output for counts and rates: with the ``poisson`` loss the
    pair is fused and dJ/da = (h - y) / (n k).
    """

    name = "exp"
    output_range = (0.0, math.inf)

    def forward(self, a, out=None):
        """h = e^a. See :meth:`Activation.forward`."""
        return np.exp(a, out=out)

    def backward(self, a, h, g, out=None):
        """dJ/da = g o h. See :meth:`Activation.backward`."""
        return np.multiply(g, h, out=out)


class Softmax(Activation):
    """Row-wise softmax: h_j = e^{a_j} / sum_k e^{a_k}.

    Its Jacobian is not diagonal: dh_j/da_i = h_j ([i = j] - h_i). The
    backward pass is therefore the full Jacobian-vector product, per row,

        dJ/da = h o (g - sum_j g_j h_j),

    never the element-wise shortcut h (1 - h), so softmax is correct with
    any loss. With negative log-likelihood the engine uses the fused
    gradient (h - y) / n instead (see :mod:`deepff.losses`).
    """

    name = "softmax"
    output_range = (0.0, 1.0)
    sums_to_one = True

    @compiled_twin(lambda self, a, out=None: _softmax_compiled(a, out))
    def forward(self, a, out=None):
        """Stable softmax: subtract the row maximum first. See :meth:`Activation.forward`."""
        out = np.subtract(a, np.maximum.reduce(a, axis=1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= np.add.reduce(out, axis=1, keepdims=True)
        return out

    def backward(self, a, h, g, out=None):
        """dJ/da = h o (g - rowsum(g o h)). See :meth:`Activation.backward`."""
        dot = np.einsum("ij,ij->i", g, h)[:, None]
        out = np.subtract(g, dot, out=out)
        out *= h
        return out


# ---------------------------------------------------------------------------
# The compiled twins (deepff._twins): the same values, when numba is there
# ---------------------------------------------------------------------------

def _derivative_compiled(get_kernel, g, h, out):
    """A compiled ``kernel(g, h, out)`` for a derivative: the same products in one pass, or None."""
    kernel = get_kernel() if fits(2, g, h, g if out is None else out) else None
    if kernel is None:
        return None
    out = np.empty_like(g) if out is None else out
    kernel(g, h, out)
    return out


def _bias_relu_compiled(act, z, b, out):
    """ReLU's bias and activation in one pass, or None (a subclass with another forward keeps its own)."""
    own = type(act).forward is ReLU.forward
    kernel = _piece_kernels.bias_relu_kernel() if own and fits(2, z, b, out) else None
    if kernel is None:
        return None
    kernel(z, b, out)
    return out


def _softmax_compiled(a, out):
    """Softmax with its row reductions compiled (numpy reduces slowly along a short last axis), or None."""
    kernels = _kernels.softmax_kernels() if fits(2, a, a if out is None else out) else None
    if kernels is None:
        return None
    shift, normalize = kernels
    out = np.empty_like(a) if out is None else out
    shift(a, out, np.empty(a.shape[0], dtype=a.dtype))
    np.exp(out, out=out)
    normalize(out)
    return out


def _write(out, value):
    """Copy ``value`` into ``out`` when given; return the result array."""
    if out is None:
        return value
    np.copyto(out, value)
    return out


def _sigmoid(a, out=None):
    """Overflow-free logistic function 1 / (1 + e^{-a}) of an array ``a`` (any shape)."""
    from scipy.special import expit  # one stable ufunc; imported here to keep `import deepff` fast

    return expit(a, out=out)


def _phi_cdf(a):
    """Standard normal CDF, Phi(a) = (1 + erf(a / sqrt 2)) / 2."""
    from scipy.special import erf  # imported here to keep `import deepff` fast

    return 0.5 * (1 + erf(a * (1.0 / math.sqrt(2))))


REGISTRY = Registry("activation", Activation, aliases={"identity": "linear", "logistic": "sigmoid", "swish": "silu"})
register = REGISTRY.register
"""Register a new activation class under its ``name`` (:meth:`deepff.registry.Registry.register`)."""
names = REGISTRY.names
"""The registered activation names, sorted (:meth:`deepff.registry.Registry.names`)."""

for _cls in (Linear, ReLU, LeakyReLU, ELU, SELU, Softplus, Sigmoid, Tanh, GELU, SiLU, Exp, Softmax):
    register(_cls)


def get(identifier):
    """Return a :class:`Activation` for a name, a config dict or an instance.

    Parameters
    ----------
    identifier : str, dict or Activation
        A registered name or alias, ``{"name": ..., **params}``, or an
        instance (returned unchanged).

    Returns
    -------
    Activation

    Raises
    ------
    SpecError
        For an unknown name (the message lists the valid ones) or bad
        parameters.
    """
    return REGISTRY.get(identifier)
