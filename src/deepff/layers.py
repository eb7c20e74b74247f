"""Dense (fully connected) layers: one step of the forward and backward sweep.

Layer l maps h^{l-1} (n, n_{l-1}) to h^l (n, n_l):

    forward   z^l = h^{l-1} W^l                       (n, n_l)
              a^l = BN(z^l) if batch_norm else z^l + b^l   (n, n_l)
              h^l = f^l(a^l)                          (n, n_l)
              the next layer gets h^l o m / (1 - p)   (dropout p, training only;
                                                       ``h`` keeps f(a))

    backward  given g_h = dJ/dh^l (n, n_l):
              g_a = f'(...) applied to g_h            backward_activation
              dW^l = (h^{l-1})^T g_z                  (n_{l-1}, n_l)
              db^l = sum over rows of g_z             (1, n_l)
              dJ/dh^{l-1} = g_z (W^l)^T               (n, n_{l-1})   backward_linear

W^l is (n_{l-1}, n_l) and b^l is (1, n_l): rows are samples. Without batch
normalisation z^l and a^l are the same array (the bias is added in place).

The layer's arrays live in preallocated per-batch-size workspaces, so a
training step allocates (almost) nothing; after ``forward`` the attributes
``a`` and ``h`` hold the last pass's values until the next pass with the
same batch size overwrites them.
"""

from __future__ import annotations

import numpy as np

from . import activations, initializers
from .checks import positive, real
from .errors import SpecError

__all__ = ["Dense", "InputLayer"]

_BN_EPS = 1e-5
_MAX_WORKSPACES = 4


class InputLayer:
    """The input "layer" h^0 = X of the classic API (it has no parameters).

    Parameters
    ----------
    n_features : int
        Width n_0 of the input.

    Attributes
    ----------
    h : ndarray of shape (n_samples, n_features) or None
        The last input seen by ``forward``.
    """

    def __init__(self, n_features):
        self.n_features = self.units = int(n_features)
        self.h = None
        self.a = None

    def __repr__(self):
        return f"InputLayer(n_features={self.n_features})"


class _Workspace:
    """Preallocated arrays of one layer for one batch size n."""

    def __init__(self, n, n_in, units, dtype, dropout, batch_norm):
        e = np.empty
        self.n = n
        self.a = e((n, units), dtype)
        self.h = e((n, units), dtype)
        self.g = e((n, units), dtype)  # dJ/da, then dJ/dz
        self.g_in = e((n, n_in), dtype)  # dJ/dh^{l-1}
        self.out = e((n, units), dtype) if dropout else self.h
        self.mask = e((n, units), dtype) if dropout else None
        self.z = e((n, units), dtype) if batch_norm else self.a
        self.xhat = e((n, units), dtype) if batch_norm else None


class Dense:
    """A fully connected layer with its activation, initialisers and options.

    Parameters
    ----------
    units : int
        Output width n_l (> 0).
    activation : str, dict or Activation, default "linear"
        See :mod:`deepff.activations`.
    init : str, dict or Initializer, optional
        Weight initializer; by default He for the ReLU family, LeCun for
        SELU, Glorot otherwise (:func:`deepff.initializers.default_for`).
    bias_init : str, dict or Initializer, default "zeros"
    dropout : float, default 0.0
        Probability p in [0, 1) of zeroing each output in training
        (inverted dropout: kept outputs are scaled by 1 / (1 - p)).
    batch_norm : bool, default False
        Normalise z^l over the batch before the activation, with a learnable
        scale ``gamma`` and shift ``beta`` (the bias b is then dropped, as
        beta takes its role). Running averages (momentum 0.1, unbiased
        variance, as in PyTorch) are used in evaluation, and for a training
        batch of a single sample, which has no variance (it happens when the
        last batch of an epoch holds one sample); that batch leaves them
        unchanged.
    max_norm : float, optional
        Upper bound on the L2 norm of each unit's incoming weights (each
        column of W), enforced by the optimizer after every step.

    Attributes
    ----------
    W, dW : ndarray of shape (n_in, units)
        Weights and their gradient (views into the network's flat buffers).
    b, db : ndarray of shape (1, units) or None
        Bias and its gradient (None with batch_norm).
    gamma, beta, dgamma, dbeta : ndarray of shape (1, units) or None
        Batch-norm scale and shift and their gradients.
    a, h : ndarray of shape (n_samples, units)
        Pre-activation and activation of the last forward pass.
    """

    _sync = None   # deepff.distributed sets it while K ranks train: batch statistics over all their rows

    def __init__(self, units, activation="linear", init=None, bias_init="zeros",
                 dropout=0.0, batch_norm=False, max_norm=None):
        self.units = positive("", "units", units, integer=True)
        dropout = real("", "dropout", dropout, low=0, high=1, high_open=True)
        max_norm = None if max_norm is None else positive("", "max_norm", max_norm)
        self.activation = activations.get(activation)
        act_name = getattr(self.activation, "name", "")
        self.init = initializers.get(init if init is not None else initializers.default_for(act_name))
        self.bias_init = initializers.get(bias_init)
        self.dropout = float(dropout)
        if not isinstance(batch_norm, (bool, np.bool_)):
            raise SpecError(f"batch_norm must be true or false, got {batch_norm!r}")
        self.batch_norm = bool(batch_norm)
        self.max_norm = None if max_norm is None else float(max_norm)
        self.n_in = None
        self.W = self.dW = self.b = self.db = None
        self.gamma = self.beta = self.dgamma = self.dbeta = None
        self.running_mean = self.running_var = None
        self.a = self.h = self.h_in = None
        self._ws = {}
        self._last_ws = None
        self._bn_cache = None

    # ------------------------------------------------------------------ build
    def param_specs(self, n_in):
        """Return ``(name, shape, kind)`` of each parameter for input width n_in.

        Parameters
        ----------
        n_in : int

        Returns
        -------
        list of (str, tuple, str)
        """
        specs = [("W", (n_in, self.units), "weight")]
        if self.batch_norm:
            specs += [("gamma", (1, self.units), "scale"), ("beta", (1, self.units), "shift")]
        else:
            specs.append(("b", (1, self.units), "bias"))
        return specs

    def bind(self, n_in, params, grads, dtype):
        """Attach views into the flat buffers and set the input width.

        Parameters
        ----------
        n_in : int
            Width of h^{l-1}.
        params, grads : list of ndarray
            Views, in the order of :meth:`param_specs`.
        dtype : numpy dtype
        """
        self.n_in = int(n_in)
        self.dtype = np.dtype(dtype)
        names = [s[0] for s in self.param_specs(n_in)]
        for name, p, g in zip(names, params, grads):
            setattr(self, name, p)
            setattr(self, "d" + name, g)
        if self.batch_norm:
            self.running_mean = np.zeros((1, self.units), dtype=self.dtype)
            self.running_var = np.ones((1, self.units), dtype=self.dtype)
        self._ws = {}
        self._last_ws = None

    def initialize(self, rng):
        """Draw the initial parameters from ``rng`` (in place).

        Parameters
        ----------
        rng : numpy.random.Generator
        """
        self.init(rng, self.W, self.n_in, self.units)
        if self.batch_norm:
            self.gamma[...] = 1
            self.beta[...] = 0
            self.running_mean[...] = 0
            self.running_var[...] = 1
        else:
            self.bias_init(rng, self.b, self.n_in, self.units)

    @property
    def w(self):
        """Alias of ``W`` (classic API)."""
        return self.W

    def _workspace(self, n):
        ws = self._last_ws
        if ws is not None and ws.n == n:  # the common case: same batch size as last time
            return ws
        ws = self._ws.get(n)
        if ws is None:
            if len(self._ws) >= _MAX_WORKSPACES:
                self._ws.clear()
            ws = self._ws[n] = _Workspace(n, self.n_in, self.units, self.dtype,
                                          self.dropout > 0, self.batch_norm)
        self._last_ws = ws
        return ws

    # ---------------------------------------------------------------- forward
    def forward(self, h_in, training=False, rng=None):
        """Compute h^l from h^{l-1}.

        Parameters
        ----------
        h_in : ndarray of shape (n_samples, n_in)
            h^{l-1}, already of the layer's dtype.
        training : bool
            Use batch statistics and dropout.
        rng : numpy.random.Generator, optional
            Source of dropout masks (needed when training with dropout).

        Returns
        -------
        ndarray of shape (n_samples, units)
            h^l (after dropout when training), a workspace array.
        """
        ws = self._workspace(h_in.shape[0])
        self.h_in = h_in
        z = np.matmul(h_in, self.W, out=ws.z)          # z = h^{l-1} W
        self.a = ws.a
        if self.batch_norm:
            self._bn_forward(z, ws, training)           # a = gamma xhat + beta
            self.h = self.activation.forward(ws.a, out=ws.h)  # h = f(a)
        else:                                           # a = h^{l-1} W + b, h = f(a)
            self.h = self.activation.forward_biased(z, self.b, out=ws.h)
        if self.h is not ws.h:                          # a custom activation that returned a new array
            np.copyto(ws.h, self.h)                     # instead of writing into out
            self.h = ws.h
        if training and self.dropout > 0:
            keep = 1.0 - self.dropout
            rng.random(out=ws.mask, dtype=self.dtype)
            np.greater_equal(ws.mask, self.dropout, out=ws.mask)  # 1 with probability keep
            ws.mask *= 1.0 / keep
            np.multiply(ws.h, ws.mask, out=ws.out)
            self._dropped = True
            return ws.out
        self._dropped = False
        return ws.h

    def _bn_forward(self, z, ws, training):
        # A training batch of one sample has no variance (PyTorch refuses it): it is normalised
        # like an evaluation batch, with the running statistics, which it leaves as they are.
        sync = self._sync
        n = z.shape[0] if sync is None else sync.rows     # (distributed: the rows of the global batch)
        training = training and n > 1
        if training:
            if sync is None:
                mu = z.mean(axis=0, keepdims=True)
                var = z.var(axis=0, keepdims=True)
            else:
                mu, var = sync.moments(z)
            m = 0.1
            self.running_mean *= 1 - m
            self.running_mean += m * mu
            self.running_var *= 1 - m
            self.running_var += m * var * (n / max(n - 1, 1))
        else:
            mu, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + _BN_EPS)
        np.subtract(z, mu, out=ws.xhat)
        ws.xhat *= inv_std
        np.multiply(ws.xhat, self.gamma, out=ws.a)
        ws.a += self.beta
        self._bn_cache = (inv_std.astype(self.dtype, copy=False), training)

    # --------------------------------------------------------------- backward
    def backward_activation(self, g_h):
        """Turn dJ/dh^l into dJ/dz^l (through dropout, f and batch norm).

        Parameters
        ----------
        g_h : ndarray of shape (n_samples, units)
            dJ/dh^l (may be overwritten).

        Returns
        -------
        ndarray of shape (n_samples, units)
            dJ/dz^l in the layer's workspace (dJ/da^l without batch norm).
        """
        ws = self._workspace(g_h.shape[0])
        if self._dropped:
            np.multiply(g_h, ws.mask, out=ws.g)
            g_h = ws.g
        g = self.activation.backward(ws.a, ws.h, g_h, out=ws.g)  # g_a = f'(a) o g_h
        return self.backward_preactivation(g)

    def backward_preactivation(self, g_a):
        """Turn dJ/da^l into dJ/dz^l (identity without batch norm).

        With batch norm this also fills ``dgamma`` and ``dbeta``.

        Parameters
        ----------
        g_a : ndarray of shape (n_samples, units)

        Returns
        -------
        ndarray of shape (n_samples, units)
        """
        if not self.batch_norm:
            return g_a
        ws = self._workspace(g_a.shape[0])
        inv_std, training = self._bn_cache
        np.sum(g_a * ws.xhat, axis=0, keepdims=True, out=self.dgamma)  # dJ/dgamma
        np.sum(g_a, axis=0, keepdims=True, out=self.dbeta)               # dJ/dbeta
        scale = self.gamma * inv_std
        if not training:
            return np.multiply(g_a, scale, out=ws.g)
        # dJ/dz = gamma/std * (g - mean(g) - xhat * mean(g o xhat))
        sum_g, sum_gx, n = self.dbeta, self.dgamma, g_a.shape[0]
        if self._sync is not None:   # distributed: the means are over the global batch
            (sum_g, sum_gx), n = self._sync.sums(self.dbeta, self.dgamma), self._sync.rows
        out = np.subtract(g_a, sum_g / n, out=ws.g)
        out -= ws.xhat * (sum_gx / n)
        out *= scale
        return out

    def backward_linear(self, g_z, input_grad=True):
        """Fill dW, db from dJ/dz^l and return dJ/dh^{l-1}.

        Parameters
        ----------
        g_z : ndarray of shape (n_samples, units)
        input_grad : bool
            Whether to compute dJ/dh^{l-1} (not needed for the first layer).

        Returns
        -------
        ndarray of shape (n_samples, n_in) or None
        """
        np.matmul(self.h_in.T, g_z, out=self.dW)                # dW = (h^{l-1})^T g
        if not self.batch_norm:
            np.add.reduce(g_z, axis=0, keepdims=True, out=self.db)  # db = sum_rows(g)
        if not input_grad:
            return None
        ws = self._workspace(g_z.shape[0])
        return np.matmul(g_z, self.W.T, out=ws.g_in)            # dJ/dh^{l-1} = g W^T

    def __getstate__(self):
        # workspaces and the last pass's arrays are scratch: never pickle them
        state = dict(self.__dict__)
        state.update(_ws={}, _last_ws=None, a=None, h=None, h_in=None, _bn_cache=None, _sync=None)
        return state

    # ---------------------------------------------------------------- config
    def get_config(self):
        """Return the constructor arguments (JSON-compatible).

        Returns
        -------
        dict
        """
        def ident(obj):
            cfg = obj.get_config()
            return {"name": obj.name, **cfg} if cfg else obj.name
        return {
            "units": self.units,
            "activation": ident(self.activation),
            "init": ident(self.init),
            "bias_init": ident(self.bias_init),
            "dropout": self.dropout,
            "batch_norm": self.batch_norm,
            "max_norm": self.max_norm,
        }

    @classmethod
    def from_config(cls, config):
        """Build a layer from :meth:`get_config`'s output.

        Parameters
        ----------
        config : dict

        Returns
        -------
        Dense
        """
        return cls(**config)

    def buffers(self):
        """Return non-trainable state arrays (batch-norm running statistics).

        Returns
        -------
        dict of str to ndarray of shape (1, units)
        """
        if not self.batch_norm:
            return {}
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def __repr__(self):
        return (f"Dense(units={self.units}, activation={self.activation.name!r}"
                + (f", dropout={self.dropout}" if self.dropout else "")
                + (", batch_norm=True" if self.batch_norm else "") + ")")
