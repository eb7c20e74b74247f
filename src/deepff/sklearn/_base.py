"""The estimators' shared base: parameters, the network, fitting's set-up, prediction and pickling."""

from __future__ import annotations

import copy
import numbers
import threading

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

from .. import optimizers as _optimizers
from .. import schedules as _schedules
from ..layers import Dense
from ..network import FeedForward
from ._common import (
    _OUT_ACTIVATIONS,
    _PREDICT_CHUNK,
    _activation_names,
    _activation_object,
    _canonical_activation,
    _RegisteredNames,
    _solver_names,
)
from ._solvers import _Solvers

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))   # dtypes prediction takes as they are


class _BaseMLP(_Solvers, BaseEstimator):
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

    # ---------------------------------------------------------- prediction
    def _checked_rows(self, X):
        """``validate_data`` for prediction, with a fast path for a plain float array.

        scikit-learn's checks cost more than the forward pass of one row; for a
        2-D float32/float64 ndarray of the fitted width (and an estimator fitted
        without feature names) the same checks are three comparisons and
        ``isfinite``. Anything else goes through ``validate_data``.
        """
        if (type(X) is np.ndarray and X.ndim == 2 and X.dtype in _FLOATS and X.shape[0] > 0
                and X.shape[1] == self.n_features_in_ and not hasattr(self, "feature_names_in_")
                and np.isfinite(X).all()):
            return X
        return validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)

    def _forward_pass_fast(self, X, check_input=True):
        """Output-layer activations for X (a new array of shape (n_samples, n_outputs))."""
        if check_input:
            X = self._checked_rows(X)
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
        for key in ("_lock", "_views"):
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
