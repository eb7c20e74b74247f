""":class:`MLPRegressor`, scikit-learn's ``MLPRegressor`` on the deepff engine."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import _BaseMLP
from ._common import _r2


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
