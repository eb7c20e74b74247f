"""Adam (with scikit-learn's placement of eps as an option) and AdamW."""

from __future__ import annotations

import math

import numpy as np

from ..checks import flag as _flag
from ..checks import real as _real
from ..errors import SpecError
from ._base import Optimizer

# ----------------------------------------------------------------------------
# Adam and AdamW
# ----------------------------------------------------------------------------


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as PyTorch's ``Adam``.

    State (shape (n_params,), starting at 0): m, the first moment; v, the
    second moment; vmax, the running maximum of v (only if ``amsgrad``).
    For step t = 1, 2, ... with (beta1, beta2) = ``betas``::

        d_t     = g_t + weight_decay * theta_{t-1}        (coupled, L2)
        m_t     = beta1 * m_{t-1} + (1 - beta1) * d_t
        v_t     = beta2 * v_{t-1} + (1 - beta2) * d_t^2
        m_hat   = m_t / (1 - beta1^t)
        if amsgrad:
            vmax_t = max(vmax_{t-1}, v_t)                 (elementwise)
            v_hat  = vmax_t / (1 - beta2^t)
        else:
            v_hat  = v_t / (1 - beta2^t)
        theta_t = theta_{t-1} - lr * m_hat / (sqrt(v_hat) + eps)

    ``eps`` is added to sqrt(v_hat), i.e. after the bias correction, and
    the AMSGrad maximum is taken over the *uncorrected* v, as in PyTorch.
    With ``fold_bias_correction`` the corrections go into the rate instead
    and ``eps`` is added to sqrt(v) itself, as in scikit-learn's
    ``solver="adam"`` (and the "efficient version" of Kingma & Ba, sec. 2)::

        lr_t    = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
        theta_t = theta_{t-1} - lr_t * m_t / (sqrt(v_t) + eps)

    The two differ only while sqrt(v) is comparable to eps.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate, >= 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of m and v, each in [0, 1).
    eps : float, default 1e-8
        Added to sqrt(v_hat), > 0.
    weight_decay : float, default 0.0
        Coupled L2 coefficient, >= 0 (for decoupled decay use
        :class:`AdamW`).
    amsgrad : bool, default False
        Use the running maximum of v (Reddi et al., 2018).
    fold_bias_correction : bool, default False
        Fold the bias corrections into the rate, eps outside them (above).
    """

    name = "adam"
    decoupled = False
    kernel = "adam_kernel"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 fold_bias_correction=False):
        self.fold_bias_correction = _flag(self.name, "fold_bias_correction", fold_bias_correction)
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise SpecError(f"{self.name} betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = _real(self.name, "betas[0]", betas[0], 0.0, 1.0, high_open=True)
        self.beta2 = _real(self.name, "betas[1]", betas[1], 0.0, 1.0, high_open=True)
        self.eps = _real(self.name, "eps", eps, low=0.0, low_open=True)
        self.weight_decay = _real(self.name, "weight_decay", weight_decay, low=0.0)
        self.amsgrad = _flag(self.name, "amsgrad", amsgrad)
        self.state_names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())
        super().__init__(lr)

    @property
    def betas(self):
        """(beta1, beta2) as a tuple of floats."""
        return (self.beta1, self.beta2)

    def _update(self, theta, grad):
        b1, b2, t = self.beta1, self.beta2, self.t
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        tmp = self._tmp
        if self.decoupled:
            # AdamW: theta = theta * (1 - lr * weight_decay); d = g
            if self.weight_decay != 0:
                theta *= 1.0 - self.lr * self.weight_decay
            d = grad
        else:
            # Adam: d = g + weight_decay * theta
            d = self._decayed_grad(theta, grad, self.weight_decay)
        # m = beta1 * m + (1 - beta1) * d
        m *= b1
        np.multiply(d, 1.0 - b1, out=tmp)
        m += tmp
        # v = beta2 * v + (1 - beta2) * d^2
        v *= b2
        np.multiply(d, d, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        if self.amsgrad:
            # vmax = max(vmax, v)
            vmax = self.state["max_exp_avg_sq"]
            np.maximum(vmax, v, out=vmax)
            v = vmax
        # bias corrections of the zero-initialised averages
        bc1 = 1.0 - b1**t
        bc2 = 1.0 - b2**t
        step_size, sqrt_bc2 = self._step_size(bc1, bc2)
        # den = sqrt(v / bc2) + eps = sqrt(v) / sqrt(bc2) + eps   (folded: sqrt(v) + eps)
        np.sqrt(v, out=tmp)
        if sqrt_bc2 != 1.0:
            tmp /= sqrt_bc2
        tmp += self.eps
        # theta = theta - (lr / bc1) * m / den                      (folded: lr_t m / den)
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        theta -= tmp

    def _step_size(self, bc1, bc2):
        """(step size, sqrt(bc2)): (lr / bc1, sqrt(bc2)), or folded (lr sqrt(bc2) / bc1, 1)."""
        if self.fold_bias_correction:
            return self.lr * math.sqrt(bc2) / bc1, 1.0
        return self.lr / bc1, math.sqrt(bc2)

    def _kernel_args(self):
        """(m, v, vmax), the scalars of the update, (amsgrad, decoupled).

        The scalars are beta1, 1 - beta1, beta2, 1 - beta2, the step size and
        sqrt(bc2) of :meth:`_step_size`, eps, weight_decay and
        1 - lr * weight_decay.
        """
        b1, b2, t = self.beta1, self.beta2, self.t
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        vmax = self.state["max_exp_avg_sq"] if self.amsgrad else v
        step_size, sqrt_bc2 = self._step_size(1.0 - b1**t, 1.0 - b2**t)
        return ((m, v, vmax),
                (b1, 1.0 - b1, b2, 1.0 - b2, step_size, sqrt_bc2, self.eps, self.weight_decay,
                 1.0 - self.lr * self.weight_decay),
                (self.amsgrad, self.decoupled))

    def get_config(self):
        """Return the constructor arguments (see :meth:`Optimizer.get_config`).

        ``betas`` is a list ``[beta1, beta2]`` so that it survives JSON;
        ``fold_bias_correction`` is listed only when True.
        """
        config = {
            "lr": self.lr,
            "betas": [self.beta1, self.beta2],
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "amsgrad": self.amsgrad,
        }
        if self.fold_bias_correction:
            config["fold_bias_correction"] = True
        return config

    def _flat_config(self):
        config = self.get_config()
        config["beta1"], config["beta2"] = config.pop("betas")
        return config

    def _unflatten_config(self, flat):
        config = {k: flat[k] for k in ("lr", "eps", "weight_decay", "amsgrad")}
        config["betas"] = (flat["beta1"], flat["beta2"])
        if flat.get("fold_bias_correction", False):
            config["fold_bias_correction"] = True
        return config


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019), as PyTorch's ``AdamW``.

    Adam with *decoupled* weight decay: the parameters shrink towards 0 by
    a factor that does not pass through the adaptive denominator. For step
    t = 1, 2, ... (m, v, vmax, m_hat, v_hat as in :class:`Adam`, with
    d_t = g_t)::

        theta'  = theta_{t-1} * (1 - lr * weight_decay)
        m_t     = beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t     = beta2 * v_{t-1} + (1 - beta2) * g_t^2
        theta_t = theta' - lr * m_hat / (sqrt(v_hat) + eps)

    The decay uses the current ``lr``, so a schedule scales it too.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate, >= 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of m and v, each in [0, 1).
    eps : float, default 1e-8
        Added to sqrt(v_hat), > 0.
    weight_decay : float, default 0.01
        Decoupled decay coefficient, >= 0. Note the default is not 0.
    amsgrad : bool, default False
        Use the running maximum of v.
    fold_bias_correction : bool, default False
        Fold the bias corrections into the rate, eps outside them (see
        :class:`Adam`).
    """

    name = "adamw"
    decoupled = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False,
                 fold_bias_correction=False):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         fold_bias_correction=fold_bias_correction)
