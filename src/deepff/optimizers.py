"""First-order optimizers that update the flat parameter buffer in place.

Every network parameter lives in one 1-D array ``theta`` of shape
(n_params,) and its gradient in a twin array ``grad`` (see
:mod:`deepff.params`), so an optimizer is a few whole-buffer numpy calls per
step, whatever the depth of the network::

    opt = get({"name": "adam", "lr": 1e-3})
    for batch in batches:
        ...                      # forward + backward fill params.grad
        opt.step(params.theta, params.grad)

The hyperparameters mean exactly what they mean in PyTorch's
``torch.optim`` (same names, same defaults but one, same placement of ``eps``,
same first-step conventions), so a recipe written for PyTorch carries over and
the two libraries agree to rounding error (``tests/test_torch_parity.py``).
The exception: SGD's learning rate defaults to 0.01 (PyTorch 2.x: 1e-3).

==========  =========================================================
name        update (g = dJ/dtheta, t = 1, 2, ... counts steps)
==========  =========================================================
sgd         theta -= lr * g          (optionally momentum / Nesterov)
adagrad     theta -= clr * g / (sqrt(sum of g^2) + eps)
rmsprop     theta -= lr * g / (sqrt(EMA of g^2) + eps)
adam        theta -= lr * m_hat / (sqrt(v_hat) + eps)
adamw       Adam with decoupled weight decay theta *= 1 - lr * wd
lbfgs       full-batch quasi-Newton via scipy (no ``step``)
==========  =========================================================

The contract the training loop relies on:

* ``opt.lr`` is a public float; a learning-rate schedule overwrites it
  before each step.
* ``opt.step(theta, grad)`` updates ``theta`` in place and never modifies
  ``grad``. State arrays are allocated at the first step with the dtype
  of ``theta`` (so float32 training stays float32) and reused; scratch
  buffers are preallocated too, so a step allocates nothing.
* ``opt.state_dict()`` is a flat dict of python scalars and numpy arrays
  (step count, hyperparameters including the current ``lr``, state
  arrays); ``load_state_dict`` restores it so that training continues bit
  for bit as if never interrupted.
* ``type(opt)(**opt.get_config())`` rebuilds the optimizer (without state).
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels
from .checks import count as _count
from .checks import flag as _flag
from .checks import real as _real
from .errors import ModelFileError, SpecError
from .registry import Registry

__all__ = [
    "Optimizer",
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "LBFGS",
    "get",
    "register",
    "names",
]


# ----------------------------------------------------------------------------
# Base class
# ----------------------------------------------------------------------------


class Optimizer:
    """Base class of the step-wise optimizers.

    Subclasses list their state arrays in ``state_names`` and implement
    :meth:`_update`, which sees ``self.t`` (the 1-based number of the step
    being taken), ``self.state`` (a dict of arrays shaped like ``theta``)
    and two scratch buffers ``self._work`` and ``self._tmp``.

    Parameters
    ----------
    lr : float
        Learning rate, >= 0. Public attribute: schedules overwrite it.

    Attributes
    ----------
    lr : float
        Learning rate used by the next step.
    t : int
        Number of steps taken so far.
    state : dict of str to ndarray of shape (n_params,)
        Per-parameter state; empty until the first step.
    """

    name = "optimizer"
    full_batch = False
    state_names = ()
    #: name of the compiled twin of :meth:`_update` in :mod:`deepff._kernels` (None: numpy only); a
    #: subclass that has one implements ``_kernel_args() -> (states, scalars, flags)``
    kernel = None
    #: use the compiled twin when numba is there (False: always the numpy reference)
    use_kernel = True

    def __init__(self, lr):
        self.lr = _real(self.name, "lr", lr, low=0.0)
        self.reset()

    # -- the step ----------------------------------------------------------

    def step(self, theta, grad):
        """Take one optimization step, updating ``theta`` in place.

        Parameters
        ----------
        theta : ndarray of shape (n_params,)
            Parameters (float32 or float64), modified in place.
        grad : ndarray of shape (n_params,)
            dJ/dtheta at ``theta``, same dtype; not modified.

        Returns
        -------
        None
        """
        if theta.shape != grad.shape or theta.dtype != grad.dtype:
            raise ValueError(
                f"theta and grad must have the same shape and dtype, got {theta.shape} {theta.dtype} "
                f"and {grad.shape} {grad.dtype}"
            )
        self._begin_step(theta)
        if self.use_kernel and self.kernel is not None and _kernels.enabled() and _kernels.fits(1, theta, grad):
            self._compiled_update(theta, grad)   # the same arithmetic in one fused pass (optional numba)
        else:
            self._update(theta, grad)

    def _begin_step(self, theta):
        """Allocate the state at the first step (or for a new theta) and count the step."""
        if self._work is None or self._work.shape != theta.shape or self._work.dtype != theta.dtype:
            self._allocate(theta)
        self.t += 1

    def kernel_args(self, theta):
        """Begin a step that a compiled kernel takes elsewhere (e.g. a whole training step in one call).

        Allocates the state at the first step and counts the step, as
        :meth:`step` does, and returns what :attr:`kernel` takes besides
        theta and grad.

        Parameters
        ----------
        theta : ndarray of shape (n_params,)

        Returns
        -------
        states : tuple of ndarray of shape (n_params,)
        scalars : tuple of float
            In theta's dtype (Python floats cast once: float32 stays float32).
        flags : tuple of bool
        """
        self._begin_step(theta)
        states, scalars, flags = self._kernel_args()
        dt = theta.dtype.type
        return states, tuple(dt(v) for v in scalars), flags

    def _compiled_update(self, theta, grad):
        states, scalars, flags = self._kernel_args()
        dt = theta.dtype.type   # the scalars in theta's dtype, as numpy casts them in _update
        getattr(_kernels, self.kernel)()(theta, grad, *states, *(dt(v) for v in scalars), *flags)

    def _allocate(self, theta):
        """Create (or adopt loaded) state arrays and scratch buffers like ``theta``."""
        for key in self.state_names:
            if key in self.state:
                arr = self.state[key]
                if arr.shape != theta.shape:
                    raise ValueError(
                        f"{self.name} state {key!r} has shape {arr.shape} but theta has {theta.shape}"
                    )
                self.state[key] = np.array(arr, dtype=theta.dtype)
            else:
                self.state[key] = self._initial_state(key, theta)
        self._work = np.empty_like(theta)
        self._tmp = np.empty_like(theta)

    def _initial_state(self, key, theta):
        """Return the initial value of state array ``key`` (zeros by default)."""
        return np.zeros_like(theta)

    def _update(self, theta, grad):
        raise NotImplementedError

    def _decayed_grad(self, theta, grad, weight_decay):
        """Return g + weight_decay * theta without touching ``grad``.

        The result is ``grad`` itself when ``weight_decay`` is 0, else the
        scratch buffer ``self._work``.
        """
        if weight_decay == 0:
            return grad
        g = np.multiply(theta, weight_decay, out=self._work)
        g += grad
        return g

    # -- state and config --------------------------------------------------

    def reset(self):
        """Drop the step count and all state arrays (a fresh start).

        ``lr`` and the other hyperparameters are kept.

        Returns
        -------
        None
        """
        self.t = 0
        self.state = {}
        self._work = None
        self._tmp = None

    def get_config(self):
        """Return the constructor arguments.

        ``lr`` is the current value of :attr:`lr`.

        Returns
        -------
        dict
            ``type(self)(**config)`` builds an equivalent optimizer
            (without state).
        """
        return {"lr": self.lr}

    def _flat_config(self):
        """The config as a flat dict of python scalars (for state_dict)."""
        return self.get_config()

    def _unflatten_config(self, flat):
        """Inverse of :meth:`_flat_config`: pick the constructor arguments."""
        return {key: flat[key] for key in self.get_config()}

    def state_dict(self):
        """Return everything needed to continue training bit for bit.

        Returns
        -------
        dict
            Flat dict with str keys: ``"name"``, ``"step"`` (int), every
            hyperparameter (python scalars, ``lr`` at its current value)
            and a copy of every state array (ndarray of shape (n_params,),
            present once a step has been taken). Suitable for ``.npz`` +
            JSON.
        """
        out = {"name": self.name, "step": int(self.t)}
        out.update(self._flat_config())
        for key, arr in self.state.items():
            out[key] = np.array(arr, copy=True)
        return out

    def load_state_dict(self, state):
        """Restore a dict made by :meth:`state_dict`.

        Parameters
        ----------
        state : dict
            Hyperparameters are restored too (and validated).

        Returns
        -------
        None

        Raises
        ------
        ModelFileError
            If the dict belongs to another optimizer or lacks keys.
        SpecError
            If a stored hyperparameter is invalid.
        """
        name = state.get("name")
        if isinstance(name, np.ndarray):
            name = name.item()
        if name != self.name:
            raise ModelFileError(f"optimizer state is for {name!r}, not {self.name!r}")
        try:
            config = self._unflatten_config(state)
            step = int(state["step"])
        except KeyError as exc:
            raise ModelFileError(f"{self.name} optimizer state lacks key {exc.args[0]!r}") from None
        config = {k: (v.item() if isinstance(v, np.ndarray) else v) for k, v in config.items()}
        type(self).__init__(self, **config)
        arrays = {k: state[k] for k in self.state_names if k in state}
        if step > 0 and len(arrays) != len(self.state_names):
            missing = sorted(set(self.state_names) - set(arrays))
            raise ModelFileError(f"{self.name} optimizer state lacks arrays {missing}")
        self.t = step
        self.state = {k: np.array(v, copy=True) for k, v in arrays.items()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


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
        config = {k: flat[k] for k in ("lr", "momentum", "dampening", "nesterov", "weight_decay")}
        config["lr_in_velocity"] = flat.get("lr_in_velocity", False)
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

    def _initial_state(self, key, theta):
        return np.full_like(theta, self.initial_accumulator_value)

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
        if self.fold_bias_correction:
            # theta = theta + (-lr_t m) / (sqrt(v) + eps), lr_t = lr sqrt(bc2) / bc1
            np.sqrt(v, out=tmp)
            tmp += self.eps
            np.multiply(m, -(self.lr * math.sqrt(bc2) / bc1), out=self._work)
            np.divide(self._work, tmp, out=tmp)
            theta += tmp
            return
        # den = sqrt(v / bc2) + eps = sqrt(v) / sqrt(bc2) + eps
        np.sqrt(v, out=tmp)
        tmp /= math.sqrt(bc2)
        tmp += self.eps
        # theta = theta - (lr / bc1) * m / den
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / bc1
        theta -= tmp

    def _kernel_args(self):
        """(m, v, vmax), the scalars of the update, (amsgrad, decoupled, fold_bias_correction).

        The scalars are beta1, 1 - beta1, beta2, 1 - beta2, the step size
        (lr / bc1, or -lr_t when folded), sqrt(bc2), eps, weight_decay and
        1 - lr * weight_decay.
        """
        b1, b2, t = self.beta1, self.beta2, self.t
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        vmax = self.state["max_exp_avg_sq"] if self.amsgrad else v
        bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
        step = -(self.lr * math.sqrt(bc2) / bc1) if self.fold_bias_correction else self.lr / bc1
        return ((m, v, vmax),
                (b1, 1.0 - b1, b2, 1.0 - b2, step, math.sqrt(bc2), self.eps, self.weight_decay,
                 1.0 - self.lr * self.weight_decay),
                (self.amsgrad, self.decoupled, self.fold_bias_correction))

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
    """

    name = "adamw"
    decoupled = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False,
                 fold_bias_correction=False):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         fold_bias_correction=fold_bias_correction)


# ----------------------------------------------------------------------------
# L-BFGS (full batch)
# ----------------------------------------------------------------------------


class LBFGS(Optimizer):
    """Limited-memory BFGS over the whole training set, via scipy's L-BFGS-B.

    Unlike the other optimizers this one is not stepped batch by batch:
    the training loop calls :meth:`minimize` once with a function that
    returns the full-batch loss and gradient. It mirrors scikit-learn's
    ``solver="lbfgs"``: ``scipy.optimize.minimize(fun, theta0,
    method="L-BFGS-B", jac=True)`` with ``maxiter=max_iter``,
    ``maxfun=max_fun``, ``gtol=tol`` and ``maxcor=history``.

    Parameters
    ----------
    max_iter : int, default 200
        Maximum number of L-BFGS iterations, >= 1.
    max_fun : int, default 15000
        Maximum number of loss/gradient evaluations, >= 1.
    tol : float, default 1e-4
        Stop when the largest absolute gradient component (projected
        gradient) is <= tol (scipy's ``gtol``), >= 0 (0: only the other
        limits stop it, as scikit-learn accepts ``tol=0``).
    history : int, default 10
        Number of correction pairs kept (scipy's ``maxcor``), >= 1.
    ftol : float, default 2.220446049250313e-09
        Stop when the relative reduction of the loss falls below ftol
        (scipy's ``ftol``; the default is scipy's own, which scikit-learn
        also uses), > 0.

    Attributes
    ----------
    lr : None
        Unused (L-BFGS chooses its step by line search).
    converged : bool or None
        Whether the last :meth:`minimize` met a tolerance (None before).
    message : str or None
        scipy's message for the last run.
    """

    name = "lbfgs"
    full_batch = True

    def __init__(self, max_iter=200, max_fun=15000, tol=1e-4, history=10, ftol=2.220446049250313e-09):
        self.max_iter = _count(self.name, "max_iter", max_iter, 1)
        self.max_fun = _count(self.name, "max_fun", max_fun, 1)
        self.tol = _real(self.name, "tol", tol, low=0.0)
        self.history = _count(self.name, "history", history, 1)
        self.ftol = _real(self.name, "ftol", ftol, low=0.0, low_open=True)
        self.lr = None
        self.converged = None
        self.message = None
        self.reset()

    def step(self, theta, grad):
        """Not available: L-BFGS is full-batch.

        Parameters
        ----------
        theta, grad : ndarray of shape (n_params,)
            Ignored.

        Raises
        ------
        TypeError
            Always; drive L-BFGS with :meth:`minimize`.
        """
        raise TypeError(
            "L-BFGS is a full-batch method and has no per-batch step(); call "
            "minimize(fun, theta0) with fun returning the full-batch (loss, grad)"
        )

    def minimize(self, fun, theta0, should_stop=None):
        """Minimise ``fun`` starting from ``theta0``.

        Parameters
        ----------
        fun : callable
            ``fun(theta) -> (loss, grad)`` with ``theta`` a float64 array of
            shape (n_params,), ``loss`` a float and ``grad`` an array of
            shape (n_params,).
        theta0 : ndarray of shape (n_params,)
            Starting point (not modified).
        should_stop : callable, optional
            Asked after every iteration; when it returns True the
            minimisation ends there (e.g. on Ctrl-C) with that iterate.

        Returns
        -------
        theta : ndarray of shape (n_params,), float64
            The final parameters.
        n_iter : int
            Number of L-BFGS iterations performed.
        n_fun : int
            Number of calls to ``fun``.
        """
        from scipy.optimize import minimize  # imported here to keep `import deepff` fast

        x0 = np.array(theta0, dtype=np.float64, copy=True).ravel()

        def wrapped(x):
            loss, grad = fun(x)
            return float(loss), np.asarray(grad, dtype=np.float64).ravel()

        def callback(xk):
            if should_stop is not None and should_stop():
                raise StopIteration   # scipy ends the run and returns this iterate

        result = minimize(
            wrapped,
            x0,
            method="L-BFGS-B",
            jac=True,
            callback=callback,
            options={
                "maxiter": self.max_iter,
                "maxfun": self.max_fun,
                "gtol": self.tol,
                "ftol": self.ftol,
                "maxcor": self.history,
            },
        )
        self.converged = bool(result.status == 0)
        self.status = int(result.status)
        self.message = str(result.message)
        self.t += int(result.nit)
        return np.asarray(result.x, dtype=np.float64), int(result.nit), int(result.nfev)

    def get_config(self):
        """Return the constructor arguments (see :meth:`Optimizer.get_config`)."""
        return {
            "max_iter": self.max_iter,
            "max_fun": self.max_fun,
            "tol": self.tol,
            "history": self.history,
            "ftol": self.ftol,
        }


# ----------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------

REGISTRY = Registry("optimizer", Optimizer, aliases={"l-bfgs": "lbfgs", "l-bfgs-b": "lbfgs"})
register = REGISTRY.register
"""Register a new optimizer class under its ``name`` (:meth:`deepff.registry.Registry.register`)."""
names = REGISTRY.names
"""The registered optimizer names, sorted (:meth:`deepff.registry.Registry.names`)."""

for _cls in (SGD, Adagrad, RMSprop, Adam, AdamW, LBFGS):
    register(_cls)


def get(identifier):
    """Return an :class:`Optimizer` for a name, a config dict or an instance.

    Parameters
    ----------
    identifier : str, dict or Optimizer
        ``"adam"``, ``{"name": "sgd", "lr": 0.1, "momentum": 0.9}``, or an
        instance (returned unchanged).

    Returns
    -------
    Optimizer

    Raises
    ------
    SpecError
        For an unknown name (the valid ones are listed) or bad
        hyperparameters.
    """
    return REGISTRY.get(identifier)
