"""Weight penalties, max-norm constraints and gradient clipping.

Penalties act on weight matrices only (never biases, batch-norm scales or
shifts), and are added to both the loss and its gradient:

    J_total = J + l1 * sum |W| + (l2 / 2) * sum W^2
    dJ_total/dW = dJ/dW + l1 * sign(W) + l2 * W

The sums run over every weight of every layer and are *not* divided by the
batch size (J is already a mean over the batch), unless ``per_sample=True``:
then both are divided by the batch's total sample weight (its row count when
unweighted), which is how scikit-learn's ``alpha`` acts. With this scaling ``l2``
has the same effect on the gradient as PyTorch's ``weight_decay``
(coupled, as in SGD/Adam). Elastic net is ``l1 = alpha * l1_ratio`` and
``l2 = alpha * (1 - l1_ratio)``. Decoupled weight decay is an optimizer
option (:class:`deepff.optimizers.AdamW`), not a penalty.
"""

from __future__ import annotations

import numpy as np

from .checks import real
from .errors import SpecError

__all__ = ["Penalty", "elastic_net", "apply_max_norm", "clip_grad_norm"]


class Penalty:
    """L1 and/or L2 penalty on the weights.

    Parameters
    ----------
    l1 : float, default 0.0
        Coefficient of sum |W|.
    l2 : float, default 0.0
        Coefficient of (1/2) sum W^2.
    per_sample : bool, default False
        Divide the penalty and its gradient by the batch weight the trainer
        passes (scikit-learn's ``alpha``: (alpha / 2) sum W^2 / sum_i w_i).
    """

    def __init__(self, l1=0.0, l2=0.0, per_sample=False):
        self.l1 = real("regularization", "l1", l1, low=0)
        self.l2 = real("regularization", "l2", l2, low=0)
        if not isinstance(per_sample, (bool, np.bool_)):
            raise SpecError(f"regularization per_sample must be true or false, got {per_sample!r}")
        self.per_sample = bool(per_sample)

    @property
    def active(self):
        """Whether any coefficient is non-zero (bool)."""
        return self.l1 > 0 or self.l2 > 0

    def batch_weight(self, n_rows, w=None):
        """What :meth:`value` and :meth:`add_grad` divide by for a batch: sum(w) (n_rows unweighted), or 1.

        Parameters
        ----------
        n_rows : int
        w : ndarray of shape (n_rows,), optional

        Returns
        -------
        float
            1.0 unless ``per_sample``.
        """
        if not self.per_sample:
            return 1.0
        return float(n_rows if w is None else np.add.reduce(w, dtype=np.float64))

    def value(self, params, batch_weight=1.0):
        """Return the penalty for the current weights.

        Parameters
        ----------
        params : ParamBuffer
        batch_weight : float, default 1.0
            The batch's total sample weight; used only with ``per_sample``.

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
        return total / batch_weight if self.per_sample else total

    def add_grad(self, params, batch_weight=1.0):
        """Add the penalty's gradient to ``params.grad`` in place.

        Parameters
        ----------
        params : ParamBuffer
        batch_weight : float, default 1.0
            The batch's total sample weight; used only with ``per_sample``.
        """
        l1, l2 = (self.l1 / batch_weight, self.l2 / batch_weight) if self.per_sample else (self.l1, self.l2)
        for s in params.weight_slices():
            w, g = params.theta[s], params.grad[s]
            if l2:
                g += l2 * w                     # d/dW (l2/2) W^2 = l2 W
            if l1:
                g += l1 * np.sign(w)            # d/dW l1 |W| = l1 sign(W)

    def get_config(self):
        """Return ``{"l1": l1, "l2": l2}`` (and ``per_sample`` when it is set)."""
        return {"l1": self.l1, "l2": self.l2, **({"per_sample": True} if self.per_sample else {})}

    def __repr__(self):
        return "Penalty(" + ", ".join(f"{k}={v}" for k, v in self.get_config().items()) + ")"


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
