"""The optimizer base class: bookkeeping (state, step count, config) around each rule's update."""

from __future__ import annotations

import numpy as np

from .. import _kernels
from .._twins import fits
from ..checks import real as _real
from ..errors import ModelFileError
from ..params import staggered_zeros

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
        if self.use_kernel and self.kernel is not None and _kernels.enabled() and fits(1, theta, grad):
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
            Python floats: the caller casts them to theta's dtype (float32
            stays float32), e.g. by writing them into an array of that dtype.
        flags : tuple of bool
        """
        self._begin_step(theta)
        return self._kernel_args()

    def _compiled_update(self, theta, grad):
        states, scalars, flags = self._kernel_args()
        dt = theta.dtype.type   # the scalars in theta's dtype, as numpy casts them in _update
        getattr(_kernels, self.kernel)()(theta, grad, *states, *(dt(v) for v in scalars), *flags)

    def _allocate(self, theta):
        """Create (or adopt loaded) state arrays and scratch buffers like ``theta``."""
        for i, key in enumerate(self.state_names):
            # slots 2, 3, ...: off the page offsets of theta's and grad's (see staggered_zeros)
            arr = staggered_zeros(theta.size, theta.dtype, 2 + i).reshape(theta.shape)
            if key in self.state:
                loaded = self.state[key]
                if loaded.shape != theta.shape:
                    raise ValueError(
                        f"{self.name} state {key!r} has shape {loaded.shape} but theta has {theta.shape}"
                    )
                arr[...] = loaded
            else:
                arr[...] = self._initial_state(key)
            self.state[key] = arr
        self._work = np.empty_like(theta)
        self._tmp = np.empty_like(theta)

    def _initial_state(self, key):
        """Return the initial value (a float) of every entry of state array ``key``: 0."""
        return 0.0

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
