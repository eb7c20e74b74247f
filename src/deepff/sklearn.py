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

import copy
import math
import numbers
import sys
import threading
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import xlogy

try:
    from sklearn.base import (
        BaseEstimator,
        ClassifierMixin,
        RegressorMixin,
        _fit_context,
        is_classifier,
    )
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "deepff.sklearn needs scikit-learn >= 1.6; install it with: pip install 'deepff[sklearn]'"
    ) from exc

from . import _kernels
from . import activations as _activations
from . import losses as _losses
from . import optimizers as _optimizers
from . import schedules as _schedules
from ._fpenv import FlushDenormals
from .layers import Dense
from .network import FeedForward

__all__ = ["MLPClassifier", "MLPRegressor"]

_PREDICT_CHUNK = 4096
_SKLEARN_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_OUT_ACTIVATIONS = {"softmax": "softmax", "logistic": "sigmoid", "identity": "linear", "exp": "exp"}


def _warn(message, category=UserWarning):
    """``warnings.warn`` attributed to the first frame outside deepff.

    scikit-learn's own warnings are attributed to its modules, and code
    written for it silences them by module, as its gallery does with
    ``filterwarnings("ignore", category=ConvergenceWarning, module="sklearn")``.
    The frame that calls into these estimators is scikit-learn's
    ``_fit_context`` wrapper around ``fit`` and ``partial_fit`` (module
    ``sklearn.base``), so such a filter catches deepff's warning as it catches
    scikit-learn's, with no module name made up. (Python 3.12's
    ``skip_file_prefixes`` does the same walk.)
    """
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "deepff":
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


# ============================================================================
# Engine parts: scikit-learn's losses
# ============================================================================


class _SkLoss(_losses.Loss):
    """A loss in scikit-learn's convention, for the estimators' training loop.

    ``value`` and ``grad_from_logits`` are weighted *sums* over the batch,
    J = sum_i w_i l_i and dJ/da = w_i (h_i - y_i) (canonical link); the loop
    divides the whole gradient buffer by sum_i w_i afterwards, exactly where
    scikit-learn divides. ``reported`` is scikit-learn's own formula for the
    batch loss (a weighted average), used for ``loss_`` and ``loss_curve_``;
    ``objective`` is the average that is consistent with the gradient (the
    L-BFGS objective; the same as ``reported`` except for multi-output squared
    error, where scikit-learn reports the mean over outputs).
    """

    def reported(self, h, y, w=None):
        """scikit-learn's batch loss (float)."""
        raise NotImplementedError

    def objective(self, h, y, w=None):
        """The average loss whose gradient the loop computes (float)."""
        return self.reported(h, y, w)

    def value(self, h, y, w=None):
        """sum_i w_i l_i (float). See :meth:`deepff.losses.Loss.value`."""
        n = h.shape[0] if w is None else float(np.sum(w))
        return self.objective(h, y, w) * n

    def value_from_logits(self, a, y, w=None):
        """See :meth:`deepff.losses.Loss.value_from_logits`."""
        h = np.array(a, copy=True)
        _activation_object(self.fused_activation).forward(h, out=h)
        return self.value(h, y, w)

    def grad_from_logits(self, a, h, y, w=None, out=None):
        """w_i (h_i - y_i): the canonical-link gradient of the weighted sum."""
        g = np.subtract(h, y, out=out)
        if w is not None:
            g *= w.reshape(-1, 1)
        return g


def _average0(a, w):
    """np.average(a, weights=w, axis=0); the unweighted mean as np.mean computes it, minus its wrappers."""
    if w is None:
        total = np.add.reduce(a, axis=0)
        total /= a.shape[0]
        return total
    return np.average(a, weights=w, axis=0)


def _clip_eps(h):
    """np.clip(h, eps, 1 - eps) with eps the machine epsilon of h's dtype (as two ufunc calls)."""
    eps = np.finfo(h.dtype).eps
    p = np.maximum(h, eps)
    return np.minimum(p, 1 - eps, out=p)


def _log_loss_terms(h, y, binary):
    """xlogy(y, p) (+ xlogy(1 - y, 1 - p) when binary), p = clip(h, eps, 1 - eps).

    One compiled pass when numba is there (one log per row for one-hot y);
    the numpy calls otherwise. Either way the same values, which the caller
    reduces with numpy exactly as scikit-learn does.
    """
    eps = np.finfo(h.dtype).eps
    kernel = _kernels.log_loss_terms_kernel() if _kernels.fits(2, h, y) else None
    if kernel is not None:
        out = np.empty_like(h)
        kernel(h, y, h.dtype.type(eps), binary, out)
        return out
    p = _clip_eps(h)
    return xlogy(y, p) + xlogy(1 - y, 1 - p) if binary else xlogy(y, p)


class _SkLogLoss(_SkLoss):
    """Multi-class log-loss on softmax probabilities (scikit-learn's ``log_loss``)."""

    name = "sklearn_log_loss"
    task = "classification"
    fused_activation = "softmax"

    def reported(self, h, y, w=None):
        return -np.add.reduce(_average0(_log_loss_terms(h, y, binary=False), w))


class _SkBinaryLogLoss(_SkLoss):
    """Log-loss of independent logistic outputs, summed over labels (``binary_log_loss``)."""

    name = "sklearn_binary_log_loss"
    task = "classification"
    fused_activation = "sigmoid"

    def reported(self, h, y, w=None):
        return -_average0(_log_loss_terms(h, y, binary=True), w).sum()


class _SkSquaredLoss(_SkLoss):
    """Half squared error (scikit-learn's ``squared_error``)."""

    name = "sklearn_squared_error"
    task = "regression"
    fused_activation = "linear"

    def reported(self, h, y, w=None):
        return 0.5 * _average0((y - h) ** 2, w).mean()

    def objective(self, h, y, w=None):
        return 0.5 * _average0((y - h) ** 2, w).sum()


class _SkPoissonLoss(_SkLoss):
    """Half Poisson deviance with an exp output (scikit-learn's ``poisson``)."""

    name = "sklearn_poisson"
    task = "regression"
    fused_activation = "exp"

    def reported(self, h, y, w=None):
        return _average0(xlogy(y, y / h) - y + h, w).sum()


# ============================================================================
# The estimators
# ============================================================================


def _activation_names():
    return set(_SKLEARN_ACTIVATIONS) | set(_activations.names())


def _solver_names():
    return {"lbfgs", "sgd", "adam"} | set(_optimizers.names())


class _RegisteredNames(StrOptions):
    """scikit-learn's StrOptions over names read from deepff's registries each time a value is checked,
    so that an activation or optimizer registered after this module was imported is valid too."""

    def __init__(self, names):
        self._names = names
        super().__init__(set(names()))

    @property
    def options(self):
        return set(self._names())

    @options.setter
    def options(self, value):   # StrOptions.__init__ assigns it; the registry stays the source
        pass


def _canonical_activation(name):
    """deepff registry name for a scikit-learn or deepff activation name."""
    name = name.lower()
    if name in _SKLEARN_ACTIVATIONS:
        return _SKLEARN_ACTIVATIONS[name]
    return _activations.REGISTRY.canonical(name)


def _activation_object(name):
    return _activations.get(_canonical_activation(name))


def _r2(y, p, w):
    """sklearn.metrics.r2_score(y, p, sample_weight=w) for 2-D y and p (uniform average)."""
    weight = 1.0 if w is None else w[:, None]
    num = np.sum(weight * (y - p) ** 2, axis=0)
    den = np.sum(weight * (y - np.average(y, axis=0, weights=w)) ** 2, axis=0)
    scores = np.ones(y.shape[1])
    valid = (den != 0) & (num != 0)
    scores[valid] = 1 - num[valid] / den[valid]
    scores[(num != 0) & (den == 0)] = 0.0
    return float(np.average(scores))


class _BaseMLP(BaseEstimator):
    """Shared machinery of :class:`MLPClassifier` and :class:`MLPRegressor`."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [_RegisteredNames(_activation_names), "array-like"],
        "solver": [_RegisteredNames(_solver_names), dict, _optimizers.Optimizer],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"), Options(numbers.Real, {np.inf})],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left"), "array-like"],
        "batch_norm": ["boolean"],
        "dtype": [None, StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64})],
        "schedule": [None, str, dict, _schedules.Schedule],
    }

    # ------------------------------------------------------------ helpers
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in sizes):
            raise ValueError(f"hidden_layer_sizes must hold integers (units per hidden layer), got {sizes}.")
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _per_layer(self, value, n_hidden, name):
        """Expand a scalar-or-list parameter to one value per hidden layer."""
        if isinstance(value, str) or not hasattr(value, "__len__"):
            return [value] * n_hidden
        values = list(value)
        if len(values) != n_hidden:
            raise ValueError(
                f"{name} has {len(values)} entries but there are {n_hidden} hidden layers; "
                f"give one {name} per hidden layer or a single value"
            )
        return values

    def _hidden_activations(self, n_hidden):
        if isinstance(self.activation, dict):
            raise ValueError(f"activation takes names (one, or one per hidden layer), got the dict "
                             f"{self.activation!r}; an activation with parameters is not available here: use "
                             "deepff.Network, or register a subclass with those parameters under a name of its own")
        names = self._per_layer(self.activation, n_hidden, "activation")
        valid = _activation_names()
        for a in names:
            if not isinstance(a, str) or a.lower() not in valid:
                raise ValueError(f"activation must be one of {sorted(valid)}, got {a!r}")
        return [_canonical_activation(a) for a in names]

    def _hidden_dropouts(self, n_hidden):
        drops = self._per_layer(self.dropout, n_hidden, "dropout")
        for p in drops:
            if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
                raise ValueError(f"dropout must be a number in [0, 1), got {p!r}")
        return [float(p) for p in drops]

    def _init_factor(self, layer, hidden_acts):
        """scikit-learn's Glorot factor: 2 for logistic, 6 otherwise."""
        if isinstance(self.activation, str):
            logistic = _canonical_activation(self.activation) == "sigmoid"
        elif hidden_acts:
            logistic = hidden_acts[min(layer, len(hidden_acts) - 1)] == "sigmoid"
        else:
            logistic = False
        return 2.0 if logistic else 6.0

    def _is_full_batch(self):
        try:
            return bool(getattr(self._make_optimizer(dry=True), "full_batch", False))
        except Exception:  # an invalid solver: fit's parameter validation reports it
            return False

    def _check_solver(self):
        if self._is_full_batch():
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is not stochastic."
            )
        return True

    def _uses_lr_schedule(self):
        """Whether ``learning_rate`` applies (scikit-learn: only to 'sgd'; here also to deepff solvers)."""
        return not (isinstance(self.solver, str) and self.solver.lower() == "adam")

    def _make_optimizer(self, dry=False):
        solver = self.solver
        if isinstance(solver, _optimizers.Optimizer):
            return solver if dry else copy.deepcopy(solver)
        if isinstance(solver, dict):
            cfg = dict(solver)
            name = str(cfg.get("name", ""))
            cls = _optimizers.REGISTRY.classes.get(_optimizers.REGISTRY.canonical(name))
            if dry:
                return cls
            if "lr" not in cfg and not getattr(cls, "full_batch", False):
                cfg["lr"] = self.learning_rate_init
            if cls is _optimizers.LBFGS:   # the estimator's limits, unless the dict sets its own
                for key, value in (("max_iter", self.max_iter), ("max_fun", self.max_fun), ("tol", self.tol)):
                    cfg.setdefault(key, value)
            return _optimizers.get(cfg)
        name = solver.lower()
        if name == "sgd":     # scikit-learn's rule: the rate inside the velocity
            return _optimizers.SGD(self.learning_rate_init, momentum=self.momentum,
                                   nesterov=self.nesterovs_momentum, lr_in_velocity=True)
        if name == "adam":    # scikit-learn's Adam: bias corrections in the rate, eps outside them
            return _optimizers.Adam(self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                                    fold_bias_correction=True)
        cls = _optimizers.REGISTRY.classes[_optimizers.REGISTRY.canonical(name)]
        if getattr(cls, "full_batch", False):
            if dry:
                return cls
            return _optimizers.get({"name": name, "max_iter": self.max_iter, "max_fun": self.max_fun,
                                    "tol": self.tol}) if cls is _optimizers.LBFGS else cls()
        if dry:
            return cls
        cfg = {"name": name, "lr": self.learning_rate_init}
        if issubclass(cls, _optimizers.Adam):
            cfg.update(betas=(self.beta_1, self.beta_2), eps=self.epsilon)
        elif name == "rmsprop":
            cfg["eps"] = self.epsilon
        return _optimizers.get(cfg)

    def _make_loss(self):
        out = self.out_activation_
        if out == "softmax":
            return _SkLogLoss()
        if out == "logistic":
            return _SkBinaryLogLoss()
        if out == "exp":
            return _SkPoissonLoss()
        return _SkSquaredLoss()

    # --------------------------------------------------------- the network
    def _build_network(self, arch):
        """A FeedForward for an architecture record (see :meth:`_initialize`)."""
        layers = [Dense(units, activation=_activation_object(act), init="zeros", dropout=p, batch_norm=bn)
                  for units, act, p, bn in arch["hidden"]]
        layers.append(Dense(arch["n_outputs"], activation=_activation_object(_OUT_ACTIVATIONS[arch["out"]]),
                            init="zeros"))
        net = FeedForward(layers, loss=self._make_loss(), n_features=arch["n_features"], dtype=arch["dtype"])
        net.dropout_rng = np.random.default_rng(arch["dropout_seed"])
        return net

    def _bind_views(self):
        """Point coefs_ / intercepts_ at the network's flat buffer (views, shapes as scikit-learn's)."""
        layers = self._net.layers
        self.coefs_ = [layer.W for layer in layers]
        self.intercepts_ = [(layer.beta if layer.batch_norm else layer.b).reshape(-1) for layer in layers]
        self._views = (list(self.coefs_), list(self.intercepts_))

    def _sync_params(self):
        """Bring the network up to date with what the user changed since the last call.

        An array of coefs_ / intercepts_ replaced by the user is copied into
        the network, and the lists point at the network's (live) weights
        again, so further training shows in them as in scikit-learn. A
        changed ``activation`` or ``dropout`` takes effect, as scikit-learn
        reads its activation at every pass; ``batch_norm`` (which changes the
        parameters) cannot change on a fitted estimator.
        """
        coef_views, intercept_views = self._views
        replaced = False
        for i, layer in enumerate(self._net.layers):
            if self.coefs_[i] is not coef_views[i]:
                layer.W[...] = np.asarray(self.coefs_[i])
                replaced = True
            if self.intercepts_[i] is not intercept_views[i]:
                bias = layer.beta if layer.batch_norm else layer.b
                bias[...] = np.asarray(self.intercepts_[i]).reshape(bias.shape)
                replaced = True
        if replaced:
            self._bind_views()
        hidden = self._arch["hidden"]
        if bool(self.batch_norm) != any(bn for *_, bn in hidden):
            raise ValueError("batch_norm cannot change on a fitted estimator (it changes the parameters); "
                             "fit it anew with warm_start=False")
        acts, drops = self._hidden_activations(len(hidden)), self._hidden_dropouts(len(hidden))
        for i, (units, act, p, bn) in enumerate(hidden):
            if (acts[i], drops[i]) != (act, p):
                layer = self._net.layers[i]
                layer.activation, layer.dropout = _activation_object(acts[i]), drops[i]
                layer._ws, layer._last_ws = {}, None       # workspaces are shaped by the dropout flag
                hidden[i] = (units, acts[i], drops[i], bn)

    def _initialize(self, y, layer_units, dtype, weights=None):
        """Set the fitted attributes and draw scikit-learn's initial weights.

        ``weights``, a (coefs, intercepts) pair, are used instead of a draw:
        the weights a user set by hand on an estimator never fitted, which
        scikit-learn trains from as they are.
        """
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        n_hidden = len(layer_units) - 2
        acts = self._hidden_activations(n_hidden)
        drops = self._hidden_dropouts(n_hidden)
        bn = bool(self.batch_norm)
        dropout_seed = None
        if any(drops):
            dropout_seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        self._arch = {
            "n_features": layer_units[0],
            "hidden": [(layer_units[i + 1], acts[i], drops[i], bn) for i in range(n_hidden)],
            "n_outputs": layer_units[-1],
            "out": self.out_activation_,
            "dtype": np.dtype(dtype).name,
            "dropout_seed": dropout_seed,
        }
        self._net = net = self._build_network(self._arch)
        self._lock = threading.Lock()
        for i, layer in enumerate(net.layers):
            fan_in, fan_out = layer_units[i], layer_units[i + 1]
            if weights is None:
                bound = np.sqrt(self._init_factor(i, acts) / (fan_in + fan_out))
                coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
                intercept = self._random_state.uniform(-bound, bound, fan_out)
            else:
                coef, intercept = np.asarray(weights[0][i]), np.asarray(weights[1][i]).reshape(fan_out)
            layer.W[...] = coef
            if not layer.batch_norm:
                layer.b[...] = intercept
        self._bind_views()
        self._best_theta = net.params.theta.copy()
        self._best_buffers = {k: v.copy() for k, v in net.buffers().items()}
        if not self._is_full_batch():
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    # ------------------------------------------------------------- fitting
    def _target_dtype(self, X):
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        labels = y
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        sample_weight = self._apply_class_weight(labels, sample_weight, incremental)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        layer_units = [X.shape[1]] + hidden + [y.shape[1]]   # n_outputs_ changes only with a new network
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, self._target_dtype(X))
        elif not hasattr(self, "_net"):   # coefs_ and intercepts_ set by hand before the first fit
            self._initialize(y, layer_units, self._target_dtype(X), weights=(self.coefs_, self.intercepts_))
        else:
            self._sync_params()
            expected = [self._arch["n_features"]] + [h[0] for h in self._arch["hidden"]] + [self._arch["n_outputs"]]
            if expected != layer_units:
                raise ValueError(
                    f"the network has layer sizes {expected} but this fit needs {layer_units}; "
                    "hidden_layer_sizes and the number of outputs cannot change with warm_start or partial_fit"
                )
        dtype = self._net.dtype
        if sp.issparse(X):
            X = X.tocsr() if X.format != "csr" else X
            if X.dtype != dtype:
                X = X.astype(dtype)
        else:
            X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(y, dtype=dtype)
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=dtype)
        if self._is_full_batch():
            self._fit_lbfgs(X, Y, sample_weight)
        else:
            self._fit_stochastic(X, Y, y, sample_weight, incremental)
        if not np.isfinite(self._net.params.theta).all():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values "
                "and need to be preprocessed."
            )
        return self

    def _apply_class_weight(self, labels, sample_weight, incremental):
        return sample_weight

    def _batch_step(self, x, y, w):
        """One optimizer step on a batch; returns its loss (scikit-learn's, alpha term included).

        forward -> loss -> backward (the summed gradient) -> alpha * W on the
        weights -> division by the batch weight -> the optimizer's update.
        """
        net, loss = self._net, self._loss
        h = net.forward(x, training=True)
        value = loss.reported(h, y, w)
        sw_sum = x.shape[0] if w is None else w.sum()
        alpha = self.alpha
        if alpha:
            values = 0
            for s in self._wflat:
                values += np.dot(s, s)
            value += (0.5 * alpha) * values / sw_sum
        net.backward(y, w)
        self._penalty_grad(sw_sum)
        self._optimizer.step(net.params.theta, net.params.grad)
        return value

    def _penalty_grad(self, sw_sum):
        """params.grad: add alpha * W to the weights' part, then divide by sw_sum."""
        if self.alpha:
            for W, dW, tmp in zip(self._wviews, self._dwviews, self._wtmp):
                np.multiply(W, self.alpha, out=tmp)
                dW += tmp
        self._net.params.grad /= sw_sum

    def _prepare_step_buffers(self):
        layers = self._net.layers
        self._loss = self._net.loss
        self._wviews = [layer.W for layer in layers]
        self._wflat = [W.reshape(-1) for W in self._wviews]
        self._dwviews = [layer.dW for layer in layers]
        self._wtmp = [np.empty_like(W) for W in self._wviews] if self.alpha else []
        self._mask = self._net.params.weight_mask()

    def _step_plan(self, X, Y, w, batch_size):
        """The compiled whole step for this fit, or None (then :meth:`_batch_step` runs).

        :func:`deepff._kernels.dense_step_kernel` runs :meth:`_batch_step`'s
        forward, loss, backward and update in one numba call. It is used when numba may be
        used and the network is the plain case it covers: dense X, built-in
        identity/logistic/relu hidden units without dropout or batch norm
        (tanh: see :data:`deepff._kernels.STEP_HIDDEN`), softmax, logistic or
        identity output with scikit-learn's loss, and an SGD or Adam optimizer
        (any of their options but AMSGrad). It replaces :meth:`_batch_step`, so a subclass that overrides
        that method must also override this one to return None.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_rows, n_features)
        Y : ndarray of shape (n_rows, n_outputs)
        w : ndarray of shape (n_rows,) or None
        batch_size : int

        Returns
        -------
        callable or None
            ``step(idx) -> float``: one step on the rows ``idx`` (int64, at most
            ``batch_size`` of them), returning the batch loss as
            :meth:`_batch_step` does.
        """
        if not _kernels.enabled() or sp.issparse(X):
            return None
        net, opt = self._net, self._optimizer
        theta, grad = net.params.theta, net.params.grad
        plain = {_activations.Linear: "linear", _activations.Sigmoid: "sigmoid", _activations.ReLU: "relu"}
        outputs = {_SkLogLoss: _activations.Softmax, _SkBinaryLogLoss: _activations.Sigmoid,
                   _SkSquaredLoss: _activations.Linear}
        layers = net.layers
        if (opt.kernel not in ("adam_kernel", "sgd_kernel") or not opt.use_kernel or getattr(opt, "amsgrad", False)
                or type(net.loss) not in outputs
                or type(layers[-1].activation) is not outputs[type(net.loss)]
                or any(type(layer) is not Dense or layer.dropout or layer.batch_norm for layer in layers)
                or any(type(layer.activation) not in plain for layer in layers[:-1])):
            return None
        arrays = (X, Y) if w is None else (X, Y, w)
        if not all(a.dtype == theta.dtype and a.flags.c_contiguous for a in arrays):
            return None
        kernel = _kernels.dense_step_kernel()

        def offset(view):
            return (view.ctypes.data - theta.ctypes.data) // theta.itemsize

        dims = np.array([layers[0].n_in] + [layer.units for layer in layers], dtype=np.int64)
        woff = np.array([offset(layer.W) for layer in layers], dtype=np.int64)
        boff = np.array([offset(layer.b) for layer in layers], dtype=np.int64)
        acts = np.array([_kernels.STEP_HIDDEN[plain[type(layer.activation)]] for layer in layers[:-1]] + [0],
                        dtype=np.int64)
        out_code = _kernels.STEP_OUTPUTS[layers[-1].activation.name]
        opt_code = 0 if opt.kernel == "adam_kernel" else 1
        scratch = np.empty(_kernels.step_scratch_size(batch_size, dims.tolist()), dtype=theta.dtype)
        weights = np.ones(1, dtype=theta.dtype) if w is None else w
        weighted = w is not None
        mask, alpha = self._mask, float(self.alpha)
        hyper = np.zeros(_kernels.STEP_HYPER, dtype=theta.dtype)

        def step(idx):
            if weighted and not w[idx].sum():    # the engine's error (np.average's), not a NaN fit
                raise ZeroDivisionError("Weights sum to zero, can't be normalized")
            states, scalars, flags = opt.kernel_args(theta)   # counts the step, as opt.step does
            hyper[:len(scalars)] = scalars
            hyper[9:] = flags
            states = states * 3 if len(states) == 1 else states
            return kernel(X, Y, weights, weighted, idx, theta, grad, mask, dims, woff, boff, acts, out_code,
                          scratch, alpha, opt_code, *states, hyper)

        return step

    def _fit_lbfgs(self, X, Y, w):
        net = self._net
        if any(layer.dropout > 0 for layer in net.layers):
            raise ValueError("dropout does not work with solver='lbfgs': a new mask at every evaluation makes the "
                             "line search's objective noisy; use dropout with solver 'adam' or 'sgd'")
        self._prepare_step_buffers()
        Xd = X.toarray() if sp.issparse(X) else X
        theta = net.params.theta
        order = self._packed = self._packed_order()

        def fun(x):
            return self._loss_grad_lbfgs(x, Xd, Y, w)

        opt = self._make_optimizer()
        max_iter = int(getattr(opt, "max_iter", self.max_iter))
        result, nit, _ = opt.minimize(fun, theta[order].astype(np.float64))
        theta[order] = result
        self.n_iter_ = min(int(nit), max_iter)
        if getattr(opt, "converged", None) is False:   # worded as scikit-learn's warning
            msg = (f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status={opt.status}):\n"
                   f"{opt.message}\n")
            if self.n_iter_ == max_iter:
                msg += f"\nIncrease the number of iterations to improve the convergence (max_iter={max_iter})."
            msg += ("\nYou might also want to scale the data as shown in:\n"
                    "    https://scikit-learn.org/stable/modules/preprocessing.html")
            _warn(msg, ConvergenceWarning)
        self.loss_ = self._batch_loss_only(Xd, Y, w)

    def _packed_order(self):
        """Indices of theta in scikit-learn's packed order (every W, then every b).

        scipy sees the parameters in this order: L-BFGS's inner products then
        add in scikit-learn's order, and long runs stay on its path.
        """
        kinds = list(zip(self._net.params.kinds, self._net.params.slices))
        return np.concatenate([np.arange(s.start, s.stop) for k, s in kinds if k == "weight"]
                              + [np.arange(s.start, s.stop) for k, s in kinds if k != "weight"])

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, *_):
        """The L-BFGS objective and its gradient at packed parameters (scikit-learn's name and order).

        Parameters
        ----------
        packed_coef_inter : ndarray of shape (n_params,)
            Every W (row-major), then every b, as scikit-learn packs them;
            written into the network.
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples, n_outputs)
            Targets as the network sees them (one-hot or indicator rows).
        sample_weight : ndarray of shape (n_samples,), optional
        *_ : object
            scikit-learn's work buffers (unused: the network has its own).

        Returns
        -------
        loss : float
            The mean loss plus ``0.5 * alpha * sum(W**2) / sum(w)``.
        grad : ndarray of shape (n_params,), float64
            Its gradient, in the packed order.
        """
        net = self._net
        if getattr(self, "_mask", None) is None or self._mask.shape != net.params.theta.shape:
            self._prepare_step_buffers()
        order = getattr(self, "_packed", None)
        if order is None or order.shape != net.params.theta.shape:
            order = self._packed = self._packed_order()
        dtype = net.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(np.reshape(y, (X.shape[0], -1)), dtype=dtype)
        w = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=dtype)
        sw_sum = X.shape[0] if w is None else w.sum()
        net.params.theta[order] = packed_coef_inter
        h = net.forward(X, training=True)
        value = self._loss.objective(h, Y, w)
        if self.alpha:
            values = 0
            for s in self._wflat:
                values += np.dot(s, s)
            value += (0.5 * self.alpha) * values / sw_sum
        net.backward(Y, w)
        self._penalty_grad(sw_sum)
        return float(value), net.params.grad[order].astype(np.float64)

    def _batch_loss_only(self, X, Y, w):
        """scikit-learn's reported loss (alpha term included) at the current weights."""
        h = self._net.forward(X, training=True)
        value = self._loss.reported(h, Y, w)
        if self.alpha:
            sw_sum = X.shape[0] if w is None else w.sum()
            value += (0.5 * self.alpha) * sum(np.dot(s, s) for s in self._wflat) / sw_sum
        return float(value)

    def _fit_stochastic(self, X, Y, y_raw, sample_weight, incremental):
        net = self._net
        theta = net.params.theta
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
            # scikit-learn's optimizer keeps these from its creation: partial_fit does not see later changes
            self._lr_settings = (self.learning_rate, float(self.learning_rate_init), self.power_t)
            self._base_lr = float(self._optimizer.lr)
            self._schedule = None if self.schedule is None else copy.deepcopy(_schedules.get(self.schedule))
            self._steps = 0
            self._epochs = 0
        opt = self._optimizer
        schedule = self._schedule
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            stratify = y_raw if (is_classifier(self) and self.n_outputs_ == 1) else None
            idx_train, idx_val = train_test_split(
                np.arange(X.shape[0]), random_state=self._random_state,
                test_size=self.validation_fraction, stratify=stratify,
            )
            if idx_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
                )
            X_val, Y_val = X[idx_val], Y[idx_val]
            if sp.issparse(X_val):
                X_val = np.ascontiguousarray(X_val.toarray(), dtype=theta.dtype)
            w_val = None if sample_weight is None else sample_weight[idx_val]
            X_train, Y_train = X[idx_train], Y[idx_train]
            w_train = None if sample_weight is None else sample_weight[idx_train]
        else:
            X_train, Y_train, w_train = X, Y, sample_weight
            X_val = Y_val = w_val = None

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=np.int64)   # the epoch's row order
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                _warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        if schedule is not None and getattr(schedule, "total_steps", 0) is None:
            schedule.total_steps = int(self.max_iter) * -(-n_samples // batch_size)

        self._prepare_step_buffers()
        sparse = sp.issparse(X_train)
        dtype = theta.dtype
        xb = None if sparse else np.empty((batch_size, X_train.shape[1]), dtype=dtype)
        yb = np.empty((batch_size, Y_train.shape[1]), dtype=dtype)
        wb = None if w_train is None else np.empty(batch_size, dtype=dtype)
        rs = self._random_state
        uses_lr_policy = schedule is None and self._uses_lr_schedule()
        policy, lr_init, power_t = getattr(self, "_lr_settings", None) or (   # (older pickles lack it)
            self.learning_rate, float(self.learning_rate_init), self.power_t)
        lr_policy = policy if uses_lr_policy else "constant"
        fused = self._step_plan(X_train, Y_train, w_train, batch_size)

        def run(start, stop):
            """One step on the epoch's rows start:stop; returns the batch loss."""
            if fused is not None:   # the same step, compiled (deepff._kernels.dense_step_kernel)
                return fused(sample_idx[start:stop])
            m = stop - start
            if self.shuffle:
                idx = sample_idx[start:stop]
                if sparse:
                    x = np.ascontiguousarray(X_train[idx].toarray(), dtype=dtype)
                else:
                    x = np.take(X_train, idx, axis=0, out=xb[:m])
                y = np.take(Y_train, idx, axis=0, out=yb[:m])
                w = None if w_train is None else np.take(w_train, idx, out=wb[:m])
            else:
                x = X_train[start:stop]
                if sparse:
                    x = np.ascontiguousarray(x.toarray(), dtype=dtype)
                y = Y_train[start:stop]
                w = None if w_train is None else w_train[start:stop]
            return self._batch_step(x, y, w)

        flush = FlushDenormals()

        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    perm = np.arange(n_samples)
                    rs.shuffle(perm)
                    sample_idx = sample_idx[perm]
                accumulated_loss = 0.0
                with flush:   # denormals read as 0 during the steps (see deepff._fpenv)
                    for start in range(0, n_samples, batch_size):
                        stop = min(start + batch_size, n_samples)
                        m = stop - start
                        if schedule is not None:
                            opt.lr = schedule.lr(self._base_lr, self._steps, self._epochs)
                        batch_loss = run(start, stop)
                        self._steps += 1
                        accumulated_loss += float(batch_loss) * m   # in float64, as scikit-learn sums

                self.n_iter_ += 1
                self.loss_ = accumulated_loss / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._update_no_improvement_count(early_stopping, X_val, Y_val, w_val)
                if schedule is not None:
                    schedule.epoch_end(self._epochs, self.loss_)
                self._epochs += 1
                if lr_policy == "invscaling":
                    opt.lr = lr_init / (self.t_ + 1) ** power_t

                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = (f"Validation score did not improve more than tol={self.tol:f} for "
                               f"{self.n_iter_no_change} consecutive epochs.")
                    else:
                        msg = (f"Training loss did not improve more than tol={self.tol:f} for "
                               f"{self.n_iter_no_change} consecutive epochs.")
                    if lr_policy != "adaptive":
                        if self.verbose:
                            print(msg + " Stopping.")
                        break
                    if opt.lr <= 1e-6:
                        if self.verbose:
                            print(msg + " Learning rate too small. Stopping.")
                        break
                    opt.lr /= 5.0
                    if self.verbose:
                        print(f"{msg} Setting learning rate to {opt.lr:f}")
                    self._no_improvement_count = 0

                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    _warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                          "optimization hasn't converged yet.", ConvergenceWarning)
        except KeyboardInterrupt:
            _warn("Training interrupted by user.")

        if early_stopping:
            theta[...] = self._best_theta
            for k, v in net.buffers().items():
                v[...] = self._best_buffers[k]

    def _update_no_improvement_count(self, early_stopping, X_val, Y_val, w_val):
        if early_stopping:
            score = self._validation_score(X_val, Y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                np.copyto(self._best_theta, self._net.params.theta)
                for k, v in self._net.buffers().items():
                    np.copyto(self._best_buffers[k], v)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # ---------------------------------------------------------- prediction
    def _forward_pass_fast(self, X, check_input=True):
        """Output-layer activations for X (a new array of shape (n_samples, n_outputs))."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self._net
        self._sync_params()
        n = X.shape[0]
        dtype = net.dtype
        out = np.empty((n, self.n_outputs_), dtype=dtype)
        sparse = sp.issparse(X)
        with self._lock:
            for start in range(0, n, _PREDICT_CHUNK):
                xb = X[start:start + _PREDICT_CHUNK]
                xb = xb.toarray() if sparse else xb
                xb = np.ascontiguousarray(xb, dtype=dtype)
                out[start:start + xb.shape[0]] = net.forward(xb, training=False)
        return out

    # ------------------------------------------------------------- pickling
    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        net = state.pop("_net", None)
        for key in ("_lock", "_views", "_loss", "_wviews", "_wflat", "_dwviews", "_wtmp", "_mask", "_packed"):
            state.pop(key, None)
        if net is not None:
            self._sync_params()
            state.pop("coefs_", None)
            state.pop("intercepts_", None)
            state["_theta"] = net.params.theta.copy()
            state["_buffers"] = {k: v.copy() for k, v in net.buffers().items()}
            state["_dropout_rng_state"] = net.dropout_rng.bit_generator.state   # masks continue
        opt = state.get("_optimizer")
        if opt is not None and getattr(opt, "_work", None) is not None:
            opt = copy.copy(opt)
            opt._work = opt._tmp = None
            state["_optimizer"] = opt
        return state

    def __setstate__(self, state):
        state = dict(state)
        theta = state.pop("_theta", None)
        buffers = state.pop("_buffers", None)
        rng_state = state.pop("_dropout_rng_state", None)
        super().__setstate__(state)
        if theta is not None:
            self._net = net = self._build_network(self._arch)
            if rng_state is not None:
                net.dropout_rng.bit_generator.state = rng_state
            net.params.theta[...] = theta
            for k, v in net.buffers().items():
                v[...] = buffers[k]
            self._bind_views()
            self._lock = threading.Lock()
        for key in ("_best_theta",):
            if getattr(self, key, None) is not None:
                setattr(self, key, np.array(getattr(self, key)))
        if getattr(self, "_best_buffers", None) is not None:
            self._best_buffers = {k: np.array(v) for k, v in self._best_buffers.items()}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier on the deepff engine (scikit-learn drop-in).

    Same parameters, defaults, attributes and training algorithm as
    ``sklearn.neural_network.MLPClassifier``; see :mod:`deepff.sklearn` for
    the exact semantics and the few deliberate differences.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : str or list of str, default='relu'
        Hidden-layer activation: 'identity', 'logistic', 'tanh', 'relu' or
        any deepff activation name ('gelu', 'elu', 'silu', ...); a list
        gives one per hidden layer.
    solver : str, dict or deepff Optimizer, default='adam'
        'lbfgs', 'sgd' (scikit-learn's momentum rule), 'adam'
        (scikit-learn's Adam), or any deepff optimizer ('adagrad',
        'rmsprop', 'adamw', ...; with ``lr=learning_rate_init``). A dict
        config takes the estimator's values for what it leaves out
        (``lr``; for L-BFGS ``max_iter``, ``max_fun``, ``tol``); an
        optimizer instance is used (copied) with its own settings.
    alpha : float, default=0.0001
        Strength of the L2 penalty ``0.5 * alpha * ||W||^2 / n_batch``.
    batch_size : int or 'auto', default='auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate policy for every stochastic solver except 'adam'.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
        Exponent of 'invscaling': ``lr = learning_rate_init / (t_ + 1) ** power_t``.
    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations (lbfgs).
    shuffle : bool, default=True
    random_state : int, RandomState instance or None, default=None
    tol : float, default=1e-4
    verbose : bool, default=False
    warm_start : bool, default=False
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified) and stop
        when its accuracy stops improving; the best weights are kept.
    validation_fraction : float, default=0.1
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-8
    n_iter_no_change : int, default=10
    max_fun : int, default=15000
        Maximum number of loss evaluations (lbfgs).
    dropout : float or list of float, default=0.0
        Dropout probability of each hidden layer's output (deepff extra).
    batch_norm : bool, default=False
        Batch normalisation in every hidden layer (deepff extra); its shift
        ``beta`` is then the layer's ``intercepts_`` entry.
    class_weight : dict, 'balanced' or None, default=None
        Weights per class label, multiplied into the sample weights.
    dtype : {None, 'float32', 'float64'}, default=None
        Training dtype; None keeps float32 data in float32 and uses float64
        for anything else.
    loss : {'log_loss'}, default='log_loss'
    schedule : str, dict or deepff Schedule, default=None
        A deepff learning-rate schedule; replaces ``learning_rate``.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.
    loss_ : float
        The current loss (data term plus the alpha term).
    best_loss_ : float or None
        Minimum training loss (None with ``early_stopping``).
    loss_curve_ : list of float
        Training loss after each epoch (stochastic solvers).
    validation_scores_ : list of float or None
        Validation accuracy after each epoch (``early_stopping`` only).
    best_validation_score_ : float or None
    t_ : int
        Number of training samples seen.
    coefs_ : list of ndarray of shape (n_in, n_out)
        Weight matrices, views into the engine's flat parameter buffer.
    intercepts_ : list of ndarray of shape (n_out,)
        Bias vectors (views).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when X has string feature names.
    n_iter_ : int
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
        'softmax' (multi-class) or 'logistic' (binary, multi-label).
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "loss": [StrOptions({"log_loss"})],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        batch_norm=False,
        class_weight=None,
        dtype=None,
        loss="log_loss",
        schedule=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.class_weight = class_weight
        self.dtype = dtype
        self.loss = loss
        self.schedule = schedule

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the previous call "
                        f"to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def _apply_class_weight(self, labels, sample_weight, incremental):
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit: compute the weights once with "
                "sklearn.utils.class_weight.compute_class_weight and pass them as a dict"
            )
        labels = column_or_1d(labels) if np.ndim(labels) == 2 and np.shape(labels)[1] == 1 else labels
        if isinstance(self.class_weight, dict) and np.ndim(labels) == 2:
            raise ValueError("class_weight for a multi-label y must be 'balanced' (each label balanced on its "
                             "own); a dict weighs the classes of a single target")
        if isinstance(self.class_weight, dict):   # before training: NaN or inf would only show as the
            for c, wt in self.class_weight.items():   # solver's non-finite weights, a negative never
                ok = isinstance(wt, numbers.Real) and not isinstance(wt, bool) and math.isfinite(wt) and wt >= 0
                if not ok:
                    raise ValueError(f"class_weight for class {c!r} must be a finite number >= 0, got {wt!r}")
        cw = compute_sample_weight(self.class_weight, labels)
        return cw if sample_weight is None else sample_weight * cw

    def _validation_score(self, X, Y, w):
        """Accuracy on the held-out set, as sklearn.metrics.accuracy_score computes it."""
        p = self._net.forward(X, training=False)
        if len(self.classes_) == 1:
            correct = np.ones(X.shape[0], dtype=bool)
        elif self.out_activation_ == "softmax":
            correct = p.argmax(axis=1) == Y.argmax(axis=1)
        else:
            correct = ((p > 0.5) == (Y > 0.5)).all(axis=1)
        return float(np.mean(correct) if w is None else np.average(correct, weights=w))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a label-indicator matrix (multi-label).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : MLPClassifier
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first
            call, optional afterwards.

        Returns
        -------
        self : MLPClassifier
            The updated estimator.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes (an indicator matrix for multi-label).
        """
        check_is_fitted(self)
        return self._predict(X)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class, in the order of ``classes_``
            (float32 for a model trained in float32).
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """Logarithm of the probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor on the deepff engine (scikit-learn drop-in).

    Same parameters, defaults, attributes and training algorithm as
    ``sklearn.neural_network.MLPRegressor``; see :mod:`deepff.sklearn` for
    the exact semantics and the few deliberate differences.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        Half squared error with an identity output, or half Poisson
        deviance with an exponential output (targets must be >= 0).
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : str or list of str, default='relu'
        Hidden-layer activation (scikit-learn or deepff name, or one per
        hidden layer).
    solver : str, dict or deepff Optimizer, default='adam'
        'lbfgs', 'sgd', 'adam' or any deepff optimizer.
    alpha : float, default=0.0001
        Strength of the L2 penalty.
    batch_size : int or 'auto', default='auto'
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
    max_iter : int, default=200
    shuffle : bool, default=True
    random_state : int, RandomState instance or None, default=None
    tol : float, default=1e-4
    verbose : bool, default=False
    warm_start : bool, default=False
    momentum : float, default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Stop when R^2 on a held-out ``validation_fraction`` stops improving.
    validation_fraction : float, default=0.1
    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-8
    n_iter_no_change : int, default=10
    max_fun : int, default=15000
    dropout : float or list of float, default=0.0
        Dropout of the hidden layers (deepff extra).
    batch_norm : bool, default=False
        Batch normalisation in the hidden layers (deepff extra).
    dtype : {None, 'float32', 'float64'}, default=None
        Training dtype; None follows X (float32 stays float32).
    schedule : str, dict or deepff Schedule, default=None
        A deepff learning-rate schedule; replaces ``learning_rate``.

    Attributes
    ----------
    loss_ : float
    best_loss_ : float or None
    loss_curve_ : list of float
    validation_scores_ : list of float or None
        R^2 on the held-out set after each epoch (``early_stopping`` only).
    best_validation_score_ : float or None
    t_ : int
    coefs_ : list of ndarray of shape (n_in, n_out)
    intercepts_ : list of ndarray of shape (n_out,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    n_iter_ : int
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
        'identity' or 'exp' (Poisson).
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        batch_norm=False,
        dtype=None,
        schedule=None,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.dtype = dtype
        self.schedule = schedule

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson regression.")
        return X, y

    def _validation_score(self, X, Y, w):
        """R^2 on the held-out set, as sklearn.metrics.r2_score computes it."""
        p = self._net.forward(X, training=False)
        if not np.isfinite(p).all():
            return np.nan
        return _r2(Y.astype(np.float64), p.astype(np.float64), w)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : MLPRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single epoch over the given data.

        As in scikit-learn, the regressor offers it for every solver: with
        a full-batch one (``"lbfgs"``) it runs that solver again from the
        current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : MLPRegressor
            The updated estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        check_is_fitted(self)
        return self._predict(X)
