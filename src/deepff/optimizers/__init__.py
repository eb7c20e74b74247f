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

from ..registry import Registry
from ._adam import Adam, AdamW
from ._base import Optimizer
from ._lbfgs import LBFGS
from ._rules import SGD, Adagrad, RMSprop

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
# Registry
# ----------------------------------------------------------------------------

REGISTRY = Registry("optimizer", Optimizer, aliases={"l-bfgs": "lbfgs", "l-bfgs-b": "lbfgs"})
register = REGISTRY.register
"""Register a new optimizer class under its ``name`` (:meth:`deepff.registry.Registry.register`)."""
names = REGISTRY.names
"""The registered optimizer names, sorted (:meth:`deepff.registry.Registry.names`)."""

for _cls in (SGD, Adagrad, RMSprop, Adam, AdamW, LBFGS):
    register(_cls)
for _cls in (Optimizer, SGD, Adagrad, RMSprop, Adam, AdamW, LBFGS):
    _cls.__module__ = __name__   # their public home (reprs, pickles, docs), wherever their code lives


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
