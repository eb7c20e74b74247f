"""The classic object API: ``Net(layers=<classic spec>)`` with forward/loss/backward.

>>> import numpy as np, deepff
>>> spec = [{"layer_type": "input", "n_features": 5, "batch_size": 10},
...         {"layer_type": "fullyconn", "n_neurons": 5, "activation": "relu"},
...         {"layer_type": "output", "n_neurons": 2, "activation": "softmax",
...          "loss_type": "neg_log_likelihood"}]
>>> net = deepff.Net(layers=spec, learning_rate=0.1, seed=0)
>>> X = np.random.default_rng(0).normal(size=(10, 5)); y = np.eye(2)[[0, 1] * 5]
>>> out = net.forward(X)           # (10, 2); every layer keeps its a and h
>>> before = net.loss(y)
>>> net.backward(y)                # gradients, then one SGD step
>>> net.layers[-1].h.shape
(10, 2)

``Net`` shares its engine with :class:`deepff.Network`: it holds a
:class:`~deepff.network.FeedForward` and forwards to it.
"""

from __future__ import annotations

import copy

from .checks import real
from .layers import InputLayer
from .network import FeedForward
from .optimizers import SGD
from .regularizers import apply_max_norm
from .spec import parse_layers

__all__ = ["Net"]


class Net:
    """A network built from a classic spec, trained one batch at a time.

    Parameters
    ----------
    layers : list of dict
        The classic spec (see :mod:`deepff.spec`).
    learning_rate : float, default 0.1
        Step size of the plain SGD update applied by :meth:`backward`.
    dtype : {"float32", "float64"}, default "float32"
    seed : int, optional

    Attributes
    ----------
    layers : list
        ``layers[0]`` is the input layer (its ``h`` is the last X); the
        others are :class:`~deepff.layers.Dense` with ``w``/``W``, ``b``,
        ``a`` and ``h``. ``layers[-1].h`` is the network's output.
    network : FeedForward
        The engine.
    """

    def __init__(self, layers, learning_rate=0.1, dtype="float32", seed=None):
        n_features, dense, loss = parse_layers(layers)
        self.network = FeedForward(dense, loss=loss, n_features=n_features, dtype=dtype, seed=seed)
        self.input_layer = InputLayer(n_features)
        self.layers = [self.input_layer] + self.network.layers
        self.optimizer = SGD(lr=learning_rate)
        self._X = None

    @property
    def learning_rate(self):
        """The SGD step size (float)."""
        return self.optimizer.lr

    @learning_rate.setter
    def learning_rate(self, value):
        self.optimizer.lr = real("Net", "learning_rate", value, low=0.0)

    def forward(self, X):
        """Forward sweep in training mode; keep every layer's a and h.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            A copy of h^L.
        """
        X = self.network.prepare_inputs(X)
        self.input_layer.h = X
        self._X = X
        return self.network.forward(X, training=True).copy()

    def _targets(self, y):
        if self._X is None:
            from .errors import InputError

            raise InputError("call forward(X) before loss(y) or backward(y)")
        return self.network.prepare_targets(y, self._X.shape[0])

    def loss(self, y):
        """Mean loss J of the last forward pass.

        Parameters
        ----------
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        float
        """
        return self.network.loss_value(self._targets(y))

    def backward(self, y):
        """Backpropagate the last forward pass and take one SGD step (then apply any max_norm).

        Parameters
        ----------
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        """
        self.network.backward(self._targets(y))
        params = self.network.params
        self.optimizer.step(params.theta, params.grad)  # theta <- theta - lr * grad
        apply_max_norm(self.network.layers)              # layers with max_norm: rescale long columns of W

    def predict(self, X):
        """Predicted labels or values in evaluation mode (see FeedForward.predict).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)

        Notes
        -----
        Between :meth:`forward` and :meth:`backward` the layers hold that
        pass's a and h; the prediction then runs on a copy of the network,
        so that loss(y) and backward(y) still see the training pass.
        """
        if self._X is None:
            return self.network.predict(X)
        return copy.deepcopy(self.network).predict(X)

    def __repr__(self):
        return f"Net({self.network!r})"
