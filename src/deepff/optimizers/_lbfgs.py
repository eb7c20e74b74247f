"""L-BFGS over the whole training set, via scipy."""

from __future__ import annotations

import numpy as np

from ..checks import count as _count
from ..checks import real as _real
from ._base import Optimizer

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
