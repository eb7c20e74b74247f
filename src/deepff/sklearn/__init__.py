"""scikit-learn drop-in estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

They take every constructor parameter of scikit-learn's
``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` (same names,
defaults and meanings), set the same fitted attributes and follow the same
training algorithm, step for step, on the deepff engine
(:class:`~deepff.network.FeedForward`, its flat parameter buffer and its
preallocated workspaces)::

    from deepff.sklearn import MLPClassifier   # was: from sklearn.neural_network import ...

What "the same algorithm" means here (scikit-learn 1.6 - 1.9):

* **Initialisation**: Glorot uniform with scikit-learn's factor,
  ``U(-b, b)`` with ``b = sqrt(factor / (fan_in + fan_out))`` for both W
  and b, ``factor = 2`` for the logistic activation and 6 otherwise, drawn
  from ``check_random_state(random_state)`` in scikit-learn's order. With
  the same ``random_state`` the initial weights are the same numbers.
* **Objective**: the mini-batch loss is a weighted *average* over the batch
  (normalised by the sum of the sample weights), log-loss for
  classification (softmax output for multi-class, logistic for binary and
  multi-label, summed over labels), half squared error or half Poisson
  deviance (``exp`` output) for regression, plus
  ``0.5 * alpha * sum(W**2) / sum(batch weights)`` on the weights only.
* **Solvers**: ``"adam"`` is scikit-learn's Adam (``lr_t = lr *
  sqrt(1 - beta_2**t) / (1 - beta_1**t)`` and ``epsilon`` added to
  ``sqrt(v)`` *outside* the bias correction -- not PyTorch's placement);
  ``"sgd"`` is scikit-learn's momentum rule ``velocity = momentum *
  velocity - lr * grad`` with Nesterov's look-ahead ``update = momentum *
  velocity - lr * grad``. (With a constant rate it equals PyTorch's SGD
  up to rounding; with ``invscaling``/``adaptive`` the two differ, because
  here the old rate stays inside the velocity.) They are options of
  deepff's own optimizers, ``optimizers.Adam(fold_bias_correction=True)``
  and ``optimizers.SGD(lr_in_velocity=True)``. ``"lbfgs"`` is
  :class:`deepff.optimizers.LBFGS` (scipy's L-BFGS-B with ``maxiter``,
  ``maxfun``, ``gtol=tol``). Every other deepff optimizer name
  (``"adagrad"``, ``"rmsprop"``, ``"adamw"``, ...) or an optimizer
  config dict / instance is accepted too; it gets
  ``lr=learning_rate_init`` and follows ``learning_rate`` like ``"sgd"``.
* **Batches, shuffling, convergence**: ``batch_size="auto"`` is
  ``min(200, n_samples)``; samples are reshuffled every epoch with the
  same random draws; training stops when the loss (or, with
  ``early_stopping``, the validation accuracy / R^2) fails to improve by
  ``tol`` for more than ``n_iter_no_change`` consecutive epochs
  (``learning_rate="adaptive"`` divides the rate by 5 instead, until it
  is below 1e-6); a :class:`~sklearn.exceptions.ConvergenceWarning` is
  issued when ``max_iter`` is reached first. ``loss_``, ``loss_curve_``,
  ``best_loss_``, ``validation_scores_``, ``best_validation_score_``,
  ``t_`` and ``n_iter_`` mean what they mean in scikit-learn.

So in float64 a deepff estimator and a scikit-learn one with the same
parameters train to the same weights up to floating-point rounding
(``tests/test_sklearn.py`` checks it), only faster.

Extras, as keyword arguments after scikit-learn's: ``activation`` may be
any deepff activation name or a list with one name per hidden layer;
``dropout`` (float or list), ``batch_norm``, ``class_weight`` (classifier),
``dtype`` (None: float32 data trains in float32, anything else in
float64) and ``schedule`` (a deepff learning-rate schedule, which replaces
``learning_rate``).

Deliberate differences:

* sparse input is accepted and densified one mini-batch (or prediction
  chunk) at a time; L-BFGS densifies the whole training set;
* for multi-output squared error, scikit-learn's L-BFGS objective averages
  the outputs while its gradient sums them; here L-BFGS sees the summed
  objective (consistent with the gradient), and ``loss_`` is still reported
  as scikit-learn reports it;
* float32 training stays float32 with L-BFGS too (scikit-learn silently
  switches to float64 there);

Speed: the engine's forward and backward sweeps run in preallocated
workspaces; the parameter update, the alpha term and the division by the
batch weight are one pass over the flat buffer. When numba is installed
(and ``DEEPFF_NUMBA`` is not ``0``) that pass, the ReLU / tanh / logistic
element-wise steps and the log-loss terms run as small compiled kernels
(:mod:`deepff._kernels`) that perform the same floating-point operations as
the numpy code; softmax's compiled row sums run in another order, so with
numba a fit agrees with the numpy path (and with scikit-learn) to float
rounding (about 1e-12 in float64), not to the bit. ``predict`` is thread-safe (the
shared workspaces are used under a lock).
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "deepff.sklearn needs scikit-learn >= 1.6; install it with: pip install 'deepff[sklearn]'"
    ) from exc

from ._base import _BaseMLP  # noqa: F401 - the shared base (subclasses and tests reach it here)
from ._classifier import MLPClassifier
from ._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]

MLPClassifier.__module__ = MLPRegressor.__module__ = __name__   # their public home (reprs, pickles, docs)
