"""Weight penalties, max-norm constraints and gradient clipping.

Penalties act on weight matrices only (never biases, batch-norm scales or
shifts), and are added to both the loss and its gradient:

    J_total = J + l1 * sum |W| + (l2 / 2) * sum W^2
    dJ_total/dW = dJ/dW + l1 * sign(W) + l2 * W

The sums run over every weight of every layer and are *not* divided by the
batch size (J is already a mean over the batch). With this scaling ``l2``
has the same effect on the gradient as PyTorch's ``weight_decay``
(coupled, as in SGD/Adam). Elastic net is ``l1 = alpha * l1_ratio`` and
``l2 = alpha * (1 - l1_ratio)``. Decoupled weight decay is an optimizer
option (:class:`deepff.optimizers.AdamW`), not a penalty.
"""

from __future__ import annotations

import numpy as np

from .checks import real

__all__ = ["Penalty", "elastic_net", "apply_max_norm", "clip_grad_norm"]


class Penalty:
    """L1 and/or L2 penalty on the weights.

    Parameters
    ----------
    l1 : float, default 0.0
        Coefficient of sum |W|.
    l2 : float, default 0.0
        Coefficient of (1/2) sum W^2.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = real("regularization", "l1", l1, low=0)
        self.l2 = real("regularization", "l2", l2, low=0)

    @property
    def active(self):
        """Whether any coefficient is non-zero (bool)."""
        return self.l1 > 0 or self.l2 > 0

    def value(self, params):
        """Return the penalty for the current weights.

        Parameters
        ----------
        params : ParamBuffer

        Returns
        -------
        float
        """
        total = 0.0
        for s in params.weight_slices():
            w = params.theta[s]
            if self.l1:
                total += self.l1 * float(np.abs(w).sum())
            if self.l2:
                total += 0.5 * self.l2 * float(np.dot(w, w))
        return total

    def add_grad(self, params):
        """Add the penalty's gradient to ``params.grad`` in place.

        Parameters
        ----------
        params : ParamBuffer
        """
        for s in params.weight_slices():
            w, g = params.theta[s], params.grad[s]
            if self.l2:
                g += self.l2 * w                # d/dW (l2/2) W^2 = l2 W
            if self.l1:
                g += self.l1 * np.sign(w)       # d/dW l1 |W| = l1 sign(W)

    def get_config(self):
        """Return ``{"l1": l1, "l2": l2}``."""
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        return f"Penalty(l1={self.l1}, l2={self.l2})"


def elastic_net(alpha, l1_ratio=0.5):
    """Return the elastic-net penalty alpha * (l1_ratio |W| + (1 - l1_ratio) W^2 / 2).

    Parameters
    ----------
    alpha : float
        Overall strength (>= 0).
    l1_ratio : float, default 0.5
        Share of L1 in [0, 1].

    Returns
    -------
    Penalty
    """
    alpha = real("elastic_net", "alpha", alpha, low=0)
    l1_ratio = real("elastic_net", "l1_ratio", l1_ratio, low=0, high=1)
    return Penalty(l1=alpha * l1_ratio, l2=alpha * (1 - l1_ratio))


def apply_max_norm(layers):
    """Rescale each unit's incoming weights to an L2 norm of at most max_norm.

    For every layer with ``max_norm`` set, each column j of W (the weights
    into unit j) with ||W[:, j]|| > max_norm is scaled by max_norm / ||W[:, j]||,
    in place.

    Parameters
    ----------
    layers : list of Dense
    """
    for layer in layers:
        c = getattr(layer, "max_norm", None)
        if c is None:
            continue
        norms = np.sqrt((layer.W * layer.W).sum(axis=0, keepdims=True))  # (1, units)
        scale = np.minimum(1.0, c / np.maximum(norms, 1e-12))
        layer.W *= scale.astype(layer.W.dtype, copy=False)


def clip_grad_norm(grad, max_norm):
    """Scale the whole gradient vector so its L2 norm is at most ``max_norm``.

    Parameters
    ----------
    grad : ndarray of shape (n_params,)
        Modified in place.
    max_norm : float

    Returns
    -------
    float
        The norm before clipping.
    """
    norm = float(np.sqrt(np.dot(grad, grad)))
    if norm > max_norm:
        grad *= max_norm / (norm + 1e-6)
    return norm
