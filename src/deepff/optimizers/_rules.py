"""SGD (with scikit-learn's convention as an option), Adagrad and RMSprop."""

from __future__ import annotations

import numpy as np

from ..checks import flag as _flag
from ..checks import real as _real
from ..errors import SpecError
from ._base import Optimizer

# ----------------------------------------------------------------------------
# SGD
# ----------------------------------------------------------------------------


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum (PyTorch's ``SGD``).

    For step t = 1, 2, ... with gradient g_t = grad (shape (n_params,)):

    1. Coupled weight decay (an L2 penalty folded into the gradient)::

           d_t = g_t + weight_decay * theta_{t-1}

    2. If ``momentum`` mu > 0, a velocity buffer b (shape (n_params,))::

           b_1 = d_1                                   (first step: no dampening)
           b_t = mu * b_{t-1} + (1 - dampening) * d_t  (t > 1)
           d_t = d_t + mu * b_t     if nesterov
           d_t = b_t                otherwise

    3. The update::

           theta_t = theta_{t-1} - lr * d_t

    Parameters
    ----------
    lr : float, default 0.01
        Learning rate, >= 0.
    momentum : float, default 0.0
        Momentum factor mu in [0, 1).
    dampening : float, default 0.0
        Dampening in [0, 1] for the momentum buffer (from step 2 on).
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float, default 0.0
        Coupled L2 coefficient, >= 0.

    lr_in_velocity : bool, default False
        Keep the learning rate inside the velocity, as scikit-learn's
        ``solver="sgd"`` does (``dampening`` must then be 0; ``momentum``
        may be 1 and ``nesterov`` needs no momentum)::

            v_t     = mu * v_{t-1} - lr_t * d_t            (v_0 = 0)
            theta_t = theta_{t-1} + mu * v_t - lr_t * d_t  if nesterov
            theta_t = theta_{t-1} + v_t                    otherwise

    Notes
    -----
    By default ``lr`` multiplies the buffer at each step rather than being
    stored in it, so changing ``lr`` takes effect immediately on the whole
    step. With ``lr_in_velocity`` the old rates stay in the velocity; with
    a constant rate the two agree up to rounding.
    """

    name = "sgd"
    state_names = ("momentum_buffer",)
    kernel = "sgd_kernel"

    def __init__(self, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                 lr_in_velocity=False):
        self.lr_in_velocity = _flag(self.name, "lr_in_velocity", lr_in_velocity)
        self.momentum = _real(self.name, "momentum", momentum, 0.0, 1.0, high_open=not self.lr_in_velocity)
        self.dampening = _real(self.name, "dampening", dampening, 0.0, 1.0)
        self.nesterov = _flag(self.name, "nesterov", nesterov)
        self.weight_decay = _real(self.name, "weight_decay", weight_decay, low=0.0)
        if self.lr_in_velocity and self.dampening != 0:
            raise SpecError(f"sgd lr_in_velocity=True takes no dampening, got dampening={dampening!r}")
        if self.nesterov and not self.lr_in_velocity and (self.momentum == 0 or self.dampening != 0):
            raise SpecError(
                "sgd nesterov=True needs momentum in (0, 1) and dampening == 0, "
                f"got momentum={momentum!r}, dampening={dampening!r}"
            )
        # Without momentum there is no buffer to keep (the velocity always has one).
        self.state_names = ("momentum_buffer",) if self.momentum != 0 or self.lr_in_velocity else ()
        super().__init__(lr)

    def _update(self, theta, grad):
        mu = self.momentum
        # d = g + weight_decay * theta   (grad itself when weight_decay == 0)
        d = self._decayed_grad(theta, grad, self.weight_decay)
        step = self._tmp
        if self.lr_in_velocity:
            v = self.state["momentum_buffer"]
            np.multiply(d, self.lr, out=step)        # lr d
            v *= mu                                  # v = mu v - lr d
            v -= step
            if self.nesterov:
                np.multiply(v, mu, out=self._work)   # theta += mu v - lr d
                self._work -= step
                theta += self._work
            else:
                theta += v                           # theta += v
            return
        if mu != 0:
            b = self.state["momentum_buffer"]
            if self.t == 1:
                # b_1 = d_1
                b[...] = d
            else:
                # b = mu * b + (1 - dampening) * d
                b *= mu
                np.multiply(d, 1.0 - self.dampening, out=step)
                b += step
            if self.nesterov:
                # d = d + mu * b
                np.multiply(b, mu, out=step)
                step += d
                d = step
            else:
                d = b
        # theta = theta - lr * d
        np.multiply(d, self.lr, out=step)
        theta -= step

    def _kernel_args(self):
        """(buffer,), (lr, mu, 1 - dampening, weight_decay), (first step, nesterov, lr_in_velocity)."""
        buf = self.state["momentum_buffer"] if self.state_names else self._work   # (unused without momentum)
        return ((buf,), (self.lr, self.momentum, 1.0 - self.dampening, self.weight_decay),
                (self.t == 1, self.nesterov, self.lr_in_velocity))

    def get_config(self):
        """Return the constructor arguments (see :meth:`Optimizer.get_config`).

        ``lr_in_velocity`` is listed only when True (configs saved before it
        existed stay the same).
        """
        config = {
            "lr": self.lr,
            "momentum": self.momentum,
            "dampening": self.dampening,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }
        if self.lr_in_velocity:
            config["lr_in_velocity"] = True
        return config

    def _unflatten_config(self, flat):
        config = super()._unflatten_config(flat)
        if flat.get("lr_in_velocity", False):   # (listed only when True, so older states load too)
            config["lr_in_velocity"] = True
        return config


# ----------------------------------------------------------------------------
# Adagrad
# ----------------------------------------------------------------------------


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), as PyTorch's ``Adagrad``.

    State: the running sum of squared gradients s (shape (n_params,)),
    starting at ``initial_accumulator_value``. For step t = 1, 2, ...::

        d_t     = g_t + weight_decay * theta_{t-1}
        clr_t   = lr / (1 + (t - 1) * lr_decay)
        s_t     = s_{t-1} + d_t * d_t
        theta_t = theta_{t-1} - clr_t * d_t / (sqrt(s_t) + eps)

    Parameters
    ----------
    lr : float, default 0.01
        Learning rate, >= 0.
    lr_decay : float, default 0.0
        Learning-rate decay, >= 0 (the first step uses ``lr`` itself).
    weight_decay : float, default 0.0
        Coupled L2 coefficient, >= 0.
    initial_accumulator_value : float, default 0.0
        Starting value of every entry of s, >= 0.
    eps : float, default 1e-10
        Added to sqrt(s) (outside the square root), > 0.
    """

    name = "adagrad"
    state_names = ("sum",)

    def __init__(self, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        self.lr_decay = _real(self.name, "lr_decay", lr_decay, low=0.0)
        self.weight_decay = _real(self.name, "weight_decay", weight_decay, low=0.0)
        self.initial_accumulator_value = _real(
            self.name, "initial_accumulator_value", initial_accumulator_value, low=0.0
        )
        self.eps = _real(self.name, "eps", eps, low=0.0, low_open=True)
        super().__init__(lr)

    def _initial_state(self, key):
        return self.initial_accumulator_value

    def _update(self, theta, grad):
        s = self.state["sum"]
        tmp = self._tmp
        # d = g + weight_decay * theta
        d = self._decayed_grad(theta, grad, self.weight_decay)
        # clr = lr / (1 + (t - 1) * lr_decay)
        clr = self.lr / (1.0 + (self.t - 1) * self.lr_decay)
        # s = s + d^2
        np.multiply(d, d, out=tmp)
        s += tmp
        # theta = theta - clr * d / (sqrt(s) + eps)
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(d, tmp, out=tmp)
        tmp *= clr
        theta -= tmp

    def get_config(self):
        """Return the constructor arguments (see :meth:`Optimizer.get_config`)."""
        return {
            "lr": self.lr,
            "lr_decay": self.lr_decay,
            "weight_decay": self.weight_decay,
            "initial_accumulator_value": self.initial_accumulator_value,
            "eps": self.eps,
        }


# ----------------------------------------------------------------------------
# RMSprop
# ----------------------------------------------------------------------------


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture notes), as PyTorch's ``RMSprop``.

    State (all of shape (n_params,), starting at 0): v, the moving average
    of squared gradients; gbar, the moving average of gradients (only if
    ``centered``); b, the momentum buffer (only if ``momentum > 0``).
    For step t = 1, 2, ...::

        d_t     = g_t + weight_decay * theta_{t-1}
        v_t     = alpha * v_{t-1} + (1 - alpha) * d_t^2
        if centered:
            gbar_t = alpha * gbar_{t-1} + (1 - alpha) * d_t
            den_t  = sqrt(v_t - gbar_t^2) + eps
        else:
            den_t  = sqrt(v_t) + eps
        if momentum mu > 0:
            b_t     = mu * b_{t-1} + d_t / den_t
            theta_t = theta_{t-1} - lr * b_t
        else:
            theta_t = theta_{t-1} - lr * d_t / den_t

    ``eps`` is added after the square root, as in PyTorch (TensorFlow adds
    it inside). The averages are not bias-corrected.

    Parameters
    ----------
    lr : float, default 0.01
        Learning rate, >= 0.
    alpha : float, default 0.99
        Smoothing constant in [0, 1).
    eps : float, default 1e-8
        Added to the root of the average, > 0.
    weight_decay : float, default 0.0
        Coupled L2 coefficient, >= 0.
    momentum : float, default 0.0
        Momentum factor in [0, 1).
    centered : bool, default False
        Normalise by an estimate of the gradient's variance instead of its
        second moment.

    Notes
    -----
    In the centered variant, v_t - gbar_t^2 >= 0 in exact arithmetic;
    rounding can make it a tiny negative number, which is clipped to 0
    (PyTorch would produce NaN there).
    """

    name = "rmsprop"

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        self.alpha = _real(self.name, "alpha", alpha, 0.0, 1.0, high_open=True)
        self.eps = _real(self.name, "eps", eps, low=0.0, low_open=True)
        self.weight_decay = _real(self.name, "weight_decay", weight_decay, low=0.0)
        self.momentum = _real(self.name, "momentum", momentum, 0.0, 1.0, high_open=True)
        self.centered = _flag(self.name, "centered", centered)
        self.state_names = (
            ("square_avg",)
            + (("grad_avg",) if self.centered else ())
            + (("momentum_buffer",) if self.momentum > 0 else ())
        )
        super().__init__(lr)

    def _update(self, theta, grad):
        a = self.alpha
        v = self.state["square_avg"]
        den = self._tmp
        # d = g + weight_decay * theta
        d = self._decayed_grad(theta, grad, self.weight_decay)
        # v = alpha * v + (1 - alpha) * d^2
        v *= a
        np.multiply(d, d, out=den)
        den *= 1.0 - a
        v += den
        if self.centered:
            gbar = self.state["grad_avg"]
            # gbar = alpha * gbar + (1 - alpha) * d
            gbar *= a
            np.multiply(d, 1.0 - a, out=den)
            gbar += den
            # den = sqrt(max(v - gbar^2, 0)) + eps
            np.multiply(gbar, gbar, out=den)
            np.subtract(v, den, out=den)
            np.maximum(den, 0.0, out=den)
            np.sqrt(den, out=den)
        else:
            # den = sqrt(v) + eps
            np.sqrt(v, out=den)
        den += self.eps
        # den = d / den: the normalised gradient (den is reused as scratch)
        np.divide(d, den, out=den)
        if self.momentum > 0:
            b = self.state["momentum_buffer"]
            # b = mu * b + d / den ; theta = theta - lr * b
            b *= self.momentum
            b += den
            np.multiply(b, self.lr, out=den)
        else:
            # theta = theta - lr * d / den
            den *= self.lr
        theta -= den

    def get_config(self):
        """Return the constructor arguments (see :meth:`Optimizer.get_config`)."""
        return {
            "lr": self.lr,
            "alpha": self.alpha,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "momentum": self.momentum,
            "centered": self.centered,
        }
