""":class:`MLPClassifier`, scikit-learn's ``MLPClassifier`` on the deepff engine."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import _BaseMLP


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
