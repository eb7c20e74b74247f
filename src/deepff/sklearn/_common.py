"""Names and small helpers shared by the scikit-learn estimators' modules."""

from __future__ import annotations

import sys
import warnings

import numpy as np
from sklearn.utils._param_validation import StrOptions

from .. import activations as _activations
from .. import optimizers as _optimizers

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
