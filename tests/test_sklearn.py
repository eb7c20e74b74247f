"""deepff.sklearn: scikit-learn's estimator checks, parity with scikit-learn's own MLPs, the extras."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from _needs import require_module

require_module("sklearn", area="scikit-learn wrapper")

import joblib  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402
from sklearn import neural_network as skn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_diabetes,
    load_digits,
    load_iris,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import deepff  # noqa: E402
from deepff import _fused_step, _kernels  # noqa: E402
from deepff import sklearn as dsk  # noqa: E402
from deepff.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ----------------------------------------------------------------------------
# scikit-learn's own estimator checks: every one must pass, none is expected to fail
# ----------------------------------------------------------------------------

CHECKED = [
    MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=200),
    MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100),
    MLPClassifier(hidden_layer_sizes=(16, 8), activation=["tanh", "gelu"], solver="rmsprop",
                  learning_rate_init=0.01, max_iter=200),
    MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=200),
    MLPRegressor(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.01, max_iter=200),
]


@quiet
@parametrize_with_checks(CHECKED)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def _digits(n=400):
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:n]), y[:n]


def _fit_both(kind, X, y, fit="fit", **params):
    ref_cls = getattr(skn, kind)
    our_cls = getattr(dsk, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = getattr(ref_cls(**params), fit)(X, y)
        ours = getattr(our_cls(**params), fit)(X, y)
    return ref, ours


def _assert_same_fit(ref, ours, X, rtol=1e-9, atol=1e-12):
    """deepff reproduces scikit-learn's fit: same epochs, weights, curves and predictions."""
    assert ours.n_iter_ == ref.n_iter_
    assert ours.t_ == ref.t_
    assert ours.n_layers_ == ref.n_layers_
    assert ours.n_outputs_ == ref.n_outputs_
    assert ours.out_activation_ == ref.out_activation_
    assert ours.n_features_in_ == ref.n_features_in_
    for a, b in zip(ref.coefs_, ours.coefs_, strict=True):
        assert a.shape == b.shape
        assert_allclose(b, a, rtol=rtol, atol=atol)
    for a, b in zip(ref.intercepts_, ours.intercepts_, strict=True):
        assert a.shape == b.shape
        assert_allclose(b, a, rtol=rtol, atol=atol)
    assert_allclose(ours.loss_, ref.loss_, rtol=max(rtol, 1e-10))
    if hasattr(ref, "loss_curve_"):
        assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=max(rtol, 1e-10))
        if ref.best_loss_ is None:
            assert ours.best_loss_ is None
        else:
            assert_allclose(ours.best_loss_, ref.best_loss_, rtol=max(rtol, 1e-10))
        if ref.validation_scores_ is None:
            assert ours.validation_scores_ is None and ours.best_validation_score_ is None
        else:
            assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=1e-12)
            assert_allclose(ours.best_validation_score_, ref.best_validation_score_, rtol=1e-12)
    else:
        assert not hasattr(ours, "loss_curve_")
    if hasattr(ref, "classes_"):
        assert_array_equal(ours.predict(X), ref.predict(X))
    else:   # float predictions: the compiled step's sums round differently (deepff._kernels)
        assert_allclose(ours.predict(X), ref.predict(X), rtol=rtol, atol=atol)
    if hasattr(ref, "predict_proba"):
        assert_array_equal(ours.classes_, ref.classes_)
        assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-7, atol=1e-10)
        assert_allclose(ours.predict_log_proba(X), ref.predict_log_proba(X), rtol=1e-7, atol=1e-10)


# ----------------------------------------------------------------------------
# parity with scikit-learn (float64)
# ----------------------------------------------------------------------------

CLASSIFIER_PARITY = {
    "adam": {},
    "sgd-nesterov": {"solver": "sgd", "learning_rate_init": 0.05},
    "sgd-adaptive": {"solver": "sgd", "learning_rate": "adaptive", "nesterovs_momentum": False,
                     "tol": 1e-2, "n_iter_no_change": 2, "learning_rate_init": 0.05},
    "sgd-invscaling-logistic": {"solver": "sgd", "learning_rate": "invscaling", "learning_rate_init": 0.5,
                                "activation": "logistic"},
    "sgd-momentum-0": {"solver": "sgd", "momentum": 0.0, "activation": "identity", "learning_rate_init": 0.01},
    "tanh-early-stopping": {"activation": "tanh", "early_stopping": True, "alpha": 1e-2},
    "two-layers-no-shuffle": {"hidden_layer_sizes": (16, 8), "shuffle": False, "batch_size": 64},
    "no-hidden-layer": {"hidden_layer_sizes": (), "batch_size": 50},
    "converges-early": {"tol": 0.05, "n_iter_no_change": 1, "alpha": 0.0},
}


@pytest.mark.parametrize("params", CLASSIFIER_PARITY.values(), ids=CLASSIFIER_PARITY.keys())
def test_classifier_matches_sklearn(params):
    X, y = _digits()
    ref, ours = _fit_both("MLPClassifier", X, y, **{"hidden_layer_sizes": (24,), "max_iter": 25,
                                                     "random_state": 0, **params})
    _assert_same_fit(ref, ours, X)
    assert ours.score(X, y) == ref.score(X, y)


def test_binary_multilabel_and_string_labels_match_sklearn():
    X, y = _digits(300)
    labels = np.array(["even", "odd"])[y % 2]
    ref, ours = _fit_both("MLPClassifier", X, labels, hidden_layer_sizes=(16,), max_iter=20, random_state=1)
    _assert_same_fit(ref, ours, X)
    assert ours.out_activation_ == "logistic" and ours.predict(X).dtype == labels.dtype

    Xm, Ym = make_multilabel_classification(n_samples=200, n_features=10, n_classes=4, random_state=0)
    Xm = StandardScaler().fit_transform(Xm)
    ref, ours = _fit_both("MLPClassifier", Xm, Ym, hidden_layer_sizes=(16,), max_iter=20, random_state=0,
                          early_stopping=True)
    _assert_same_fit(ref, ours, Xm)
    assert ours.predict(Xm).shape == Ym.shape


def test_sample_weight_and_partial_fit_and_warm_start_match_sklearn():
    X, y = _digits(300)
    w = np.random.default_rng(0).uniform(0.2, 3.0, size=len(y))
    kw = {"hidden_layer_sizes": (16,), "max_iter": 15, "random_state": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = skn.MLPClassifier(**kw, early_stopping=True).fit(X, y, sample_weight=w)
        ours = MLPClassifier(**kw, early_stopping=True).fit(X, y, sample_weight=w)
    _assert_same_fit(ref, ours, X)

    ref, ours = skn.MLPClassifier(**kw), MLPClassifier(**kw)
    for est in (ref, ours):
        for start in range(0, 300, 100):
            est.partial_fit(X[start:start + 100], y[start:start + 100], classes=np.arange(10))
    _assert_same_fit(ref, ours, X)

    ref, ours = skn.MLPClassifier(**kw, warm_start=True), MLPClassifier(**kw, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (ref, ours):
            est.fit(X, y).fit(X, y)
    _assert_same_fit(ref, ours, X)


REGRESSOR_PARITY = {
    "adam": {},
    "sgd-multi-output": {"solver": "sgd", "learning_rate_init": 0.01, "multi": True},
    "poisson": {"loss": "poisson", "poisson": True},
    "early-stopping-tanh": {"early_stopping": True, "activation": "tanh", "multi": True},
    "adaptive": {"solver": "sgd", "learning_rate": "adaptive", "tol": 1e-1, "n_iter_no_change": 1,
                 "learning_rate_init": 0.01},
}


@pytest.mark.parametrize("params", REGRESSOR_PARITY.values(), ids=REGRESSOR_PARITY.keys())
def test_regressor_matches_sklearn(params):
    params = dict(params)
    multi, poisson = params.pop("multi", False), params.pop("poisson", False)
    X, y = make_regression(n_samples=250, n_features=8, n_targets=3 if multi else 1, noise=5.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    y = np.exp(y / y.std()) if poisson else y / y.std()
    ref, ours = _fit_both("MLPRegressor", X, y, **{"hidden_layer_sizes": (20,), "max_iter": 30,
                                                    "random_state": 0, **params})
    _assert_same_fit(ref, ours, X)
    assert_allclose(ours.score(X, y), ref.score(X, y), rtol=1e-12)


def test_verbose_output_matches_sklearn(capsys):
    X, y = _digits(200)
    kw = {"hidden_layer_sizes": (8,), "solver": "sgd", "learning_rate": "adaptive", "tol": 0.5,
          "n_iter_no_change": 1, "max_iter": 6, "random_state": 0, "verbose": True, "early_stopping": True}
    outputs = []
    for cls in (skn.MLPClassifier, MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cls(**kw).fit(X, y)
        outputs.append(capsys.readouterr().out)
    assert "Iteration 1, loss = " in outputs[1] and "Validation score: " in outputs[1]
    assert "Setting learning rate to" in outputs[1]
    assert outputs[1] == outputs[0]


def test_lbfgs_matches_sklearn():
    X, y = _digits(300)
    ref, ours = _fit_both("MLPClassifier", X, y, solver="lbfgs", hidden_layer_sizes=(16,), max_iter=40,
                          random_state=0)
    assert ours.n_iter_ == ref.n_iter_
    assert_allclose(ours.loss_, ref.loss_, rtol=1e-6)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    assert not hasattr(ours, "loss_curve_") and ours.t_ == 0
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    ref, ours = _fit_both("MLPRegressor", X, y, solver="lbfgs", hidden_layer_sizes=(8,), max_iter=30,
                          random_state=0)
    assert_allclose(ours.predict(X), ref.predict(X), atol=1e-6)


@pytest.mark.usefixtures("kernels_on")
def test_numba_and_numpy_paths_agree(monkeypatch, kernel_calls):
    """Same fits with the compiled kernels and with DEEPFF_NUMBA=0 (softmax's exp differs in the last bits)."""
    X, y = _digits(200)
    for params, compiled in (({"solver": "adam", "activation": "relu"}, {"dense_steps_kernel"}),
                             ({"solver": "sgd", "activation": "tanh"}, {"tanh_backward_kernel", "sgd_kernel"}),
                             ({"solver": "sgd", "activation": "logistic", "nesterovs_momentum": False},
                              {"dense_steps_kernel"})):
        kw = {"hidden_layer_sizes": (12,), "max_iter": 8, "random_state": 0, **params}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            kernel_calls.clear()
            fast = MLPClassifier(**kw).fit(X, y)
            assert compiled <= {name for name, n in kernel_calls.items() if n}, dict(kernel_calls)
            kernel_calls.clear()
            slow = _fit_without_kernels(monkeypatch, MLPClassifier(**kw), X, y)
            assert not kernel_calls
        for a, b in zip(fast.coefs_ + fast.intercepts_, slow.coefs_ + slow.intercepts_, strict=True):
            assert_allclose(a, b, rtol=1e-10, atol=1e-13)
        assert_allclose(fast.loss_curve_, slow.loss_curve_, rtol=1e-12)


def _fit_without_kernels(monkeypatch, estimator, X, y):
    """Fit with DEEPFF_NUMBA=0; the kernels' cached switch is restored whatever happens."""
    try:
        with monkeypatch.context() as m:
            m.setenv("DEEPFF_NUMBA", "0")
            _kernels.refresh()
            assert not _kernels.enabled()
            return estimator.fit(X, y)
    finally:
        _kernels.refresh()


@pytest.mark.usefixtures("kernels_on")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_regressor_fits_are_bit_identical_with_and_without_kernels(solver, dtype, monkeypatch, kernel_calls):
    """No softmax in a regressor: every per-piece kernel on its path must give the numpy path's bits.

    (The compiled whole step, which sums in its own order, is switched off
    here; tests/test_dense_step.py compares it with the engine.)
    """
    X, _ = _digits(150)
    X = X.astype(dtype)
    y = (X[:, :3] @ np.array([0.5, -0.25, 0.125], dtype=dtype)).astype(dtype)
    kw = {"hidden_layer_sizes": (16, 8), "max_iter": 6, "random_state": 0, "solver": solver, "alpha": 1e-3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with monkeypatch.context() as m:
            m.setattr(_fused_step, "ENABLED", False)
            fast = MLPRegressor(**kw).fit(X, y)
        ran = {name for name, n in kernel_calls.items() if n}
        assert {"bias_relu_kernel", "relu_backward_kernel", f"{solver}_kernel"} <= ran, dict(kernel_calls)
        assert not {"dense_step_kernel", "dense_steps_kernel"} & ran
        kernel_calls.clear()
        slow = _fit_without_kernels(monkeypatch, MLPRegressor(**kw), X, y)
        assert not kernel_calls
    assert fast.coefs_[0].dtype == dtype
    for a, b in zip(fast.coefs_ + fast.intercepts_, slow.coefs_ + slow.intercepts_, strict=True):
        assert_array_equal(a, b)
    assert fast.loss_curve_ == slow.loss_curve_


def test_defaults_work_on_iris():
    X, y = load_iris(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(StandardScaler().fit_transform(X), y, random_state=0)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        est = MLPClassifier(random_state=0).fit(Xtr, ytr)
    assert est.hidden_layer_sizes == (100,) and est.coefs_[0].shape == (4, 100)
    assert est.score(Xte, yte) > 0.9
    assert len(est.loss_curve_) == est.n_iter_ == 200


# ----------------------------------------------------------------------------
# dtypes, data containers, fitted attributes
# ----------------------------------------------------------------------------


@quiet
def test_float32_stays_float32():
    X, y = _digits(200)
    X32 = X.astype(np.float32)
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=10, random_state=0).fit(X32, y)
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert est.predict_proba(X32).dtype == np.float32
    est64 = MLPClassifier(hidden_layer_sizes=(16,), max_iter=10, random_state=0).fit(X, y)
    assert_allclose(est.predict_proba(X32), est64.predict_proba(X), atol=1e-3)
    ref = skn.MLPClassifier(hidden_layer_sizes=(16,), max_iter=10, random_state=0).fit(X32, y)
    assert_allclose(est.coefs_[0], ref.coefs_[0], atol=1e-4)
    forced = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, dtype="float32").fit(X, y.astype(float))
    assert forced.coefs_[0].dtype == np.float32
    forced = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, dtype=np.float64).fit(X32, y.astype(float))
    assert forced.coefs_[0].dtype == np.float64


@quiet
def test_dataframe_feature_names_and_sparse_input():
    pd = require_module("pandas", area="pandas input")
    X, y = _digits(200)
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])])
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(df, pd.Series(y))
    assert_array_equal(est.feature_names_in_, df.columns)
    with pytest.warns(UserWarning, match="feature names"):  # as scikit-learn warns
        from_array = est.predict(df.to_numpy())
    assert_array_equal(est.predict(df), from_array)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df.rename(columns={"px0": "other"}))

    dense = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    for fmt in ("csr", "csc", "coo"):
        Xs = sp.csr_matrix(X).asformat(fmt)
        sparse = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(Xs, y)
        assert_allclose(sparse.coefs_[0], dense.coefs_[0], rtol=1e-12)
        assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X), rtol=1e-12)


@quiet
def test_coefs_are_live_views_and_can_be_replaced():
    X, y = _digits(200)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    ref = skn.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    est.coefs_[1][...] = 0.0                 # in place, as one may do with scikit-learn
    ref.coefs_[1][...] = 0.0
    assert_allclose(est.predict_proba(X), ref.predict_proba(X), rtol=1e-9)
    est.coefs_ = [c * 2 for c in ref.coefs_]  # replaced lists/arrays are picked up too
    ref.coefs_ = [c * 2 for c in ref.coefs_]
    est.intercepts_[1] = ref.intercepts_[1] + 1.0
    ref.intercepts_[1] = ref.intercepts_[1] + 1.0
    assert_allclose(est.predict_proba(X), ref.predict_proba(X), rtol=1e-9)


@quiet
def test_pickle_joblib_deepcopy_and_partial_fit_after_loading(tmp_path):
    X, y = _digits(300)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, batch_norm=True,
                        dropout=0.1).fit(X, y)
    blob = pickle.dumps(est)
    assert len(blob) < 200_000  # no training workspaces in the pickle
    for clone_ in (pickle.loads(blob), copy.deepcopy(est), _joblib_roundtrip(est, tmp_path)):
        assert_array_equal(clone_.predict_proba(X), est.predict_proba(X))
        clone_.coefs_[0][...] = 0.0          # still views into the rebuilt network's buffer
        assert not np.allclose(clone_.predict_proba(X), est.predict_proba(X))

    plain = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    plain.partial_fit(X, y, classes=np.arange(10))
    again = pickle.loads(pickle.dumps(plain))
    plain.partial_fit(X, y)
    again.partial_fit(X, y)
    assert_array_equal(again.coefs_[0], plain.coefs_[0])  # optimizer state survived


def _joblib_roundtrip(est, tmp_path):
    path = tmp_path / "mlp.joblib"
    joblib.dump(est, path)
    return joblib.load(path, mmap_mode="r")


@quiet
def test_predict_is_thread_safe():
    X, y = _digits(400)
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    expected = {n: est.predict_proba(X[:n]) for n in (7, 50, 400)}
    errors = []

    def work(n):
        for _ in range(30):
            if not np.array_equal(est.predict_proba(X[:n]), expected[n]):
                errors.append(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in (7, 50, 400, 50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_convergence_warnings():
    X, y = _digits(200)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(2\\)"):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=2).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=2).fit(X, y.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=500, tol=0.1, random_state=0).fit(X, y)


def test_parameter_errors_are_sklearns():
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = _digits(100)
    for bad in ({"solver": "bogus"}, {"activation": "bogus"}, {"dropout": 1.5}, {"alpha": -1.0},
                {"class_weight": "bogus"}, {"dtype": "float16"}, {"momentum": 2.0}):
        with pytest.raises(InvalidParameterError):
            MLPClassifier(**bad).fit(X, y)
    with pytest.raises(ValueError, match="one activation per hidden layer"):
        MLPClassifier(hidden_layer_sizes=(4, 4), activation=["relu"], max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier(hidden_layer_sizes=(4,), dropout=[0.1, 0.2], max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="negative"):
        MLPRegressor(loss="poisson", max_iter=1).fit(X, -np.ones(len(y)))
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")   # as scikit-learn's (tested below)
    assert hasattr(MLPRegressor(solver="rmsprop"), "partial_fit")


# ----------------------------------------------------------------------------
# ecosystem: Pipeline, GridSearchCV, cross_val_score, clone
# ----------------------------------------------------------------------------


@quiet
def test_pipeline_gridsearch_cross_val_score_clone():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(10,), max_iter=300, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1], "mlpclassifier__solver": ["adam", "lbfgs"]},
                          cv=3, n_jobs=2).fit(X, y)
    assert search.best_score_ > 0.85
    twin = clone(search.best_estimator_)
    assert twin.get_params()["mlpclassifier__alpha"] == search.best_params_["mlpclassifier__alpha"]
    assert not hasattr(twin[-1], "coefs_")


# The example of docs/sklearn.md, run with both imports: scikit-learn MLP code runs unchanged, same results.
def _realistic_example(MLPClassifier):  # noqa: N803 - the class is the parameter
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

    clf = Pipeline([
        ("scale", StandardScaler()),
        ("mlp", MLPClassifier(hidden_layer_sizes=(100,), max_iter=300, early_stopping=True, random_state=1)),
    ])
    clf.fit(X_train, y_train)
    labels = clf.predict(X_test)
    proba = clf.predict_proba(X_test)
    accuracy = clf.score(X_test, y_test)
    curve = clf.named_steps["mlp"].loss_curve_
    print(f"test accuracy {accuracy:.3f} after {len(curve)} epochs, final loss {curve[-1]:.4f}")

    grid = GridSearchCV(
        clf,
        {"mlp__alpha": [1e-4, 1e-2], "mlp__hidden_layer_sizes": [(50,), (100,)]},
        cv=3,
        n_jobs=2,
    )
    grid.fit(X_train, y_train)
    print("best:", grid.best_params_, f"cv accuracy {grid.best_score_:.3f}")
    return labels, proba, accuracy, curve, grid.best_params_, grid.best_score_


def test_realistic_sklearn_code_runs_unchanged():
    ours = _realistic_example(MLPClassifier)
    ref = _realistic_example(skn.MLPClassifier)
    assert_array_equal(ours[0], ref[0])
    assert_allclose(ours[1], ref[1], rtol=1e-7, atol=1e-10)
    assert ours[2] == ref[2] and ours[2] > 0.9
    assert_allclose(ours[3], ref[3], rtol=1e-10)
    assert ours[4] == ref[4]
    assert_allclose(ours[5], ref[5], rtol=1e-12)


# ----------------------------------------------------------------------------
# deepff extras
# ----------------------------------------------------------------------------


@quiet
def test_per_layer_activations_dropout_batch_norm():
    X, y = _digits(400)
    est = MLPClassifier(hidden_layer_sizes=(32, 16), activation=["gelu", "tanh"], dropout=[0.2, 0.0],
                        learning_rate_init=0.01, max_iter=30, random_state=0).fit(X, y)
    names = [layer.activation.name for layer in est._net.layers]
    assert names == ["gelu", "tanh", "softmax"]
    assert [layer.dropout for layer in est._net.layers] == [0.2, 0.0, 0.0]
    assert_array_equal(est.predict_proba(X), est.predict_proba(X))  # no dropout at prediction
    assert est.score(X, y) > 0.9
    again = MLPClassifier(**est.get_params()).fit(X, y)  # dropout masks follow random_state
    assert_array_equal(again.coefs_[0], est.coefs_[0])

    bn = MLPClassifier(hidden_layer_sizes=(32,), batch_norm=True, learning_rate_init=0.01, max_iter=30,
                       random_state=0).fit(X, y)
    layer = bn._net.layers[0]
    assert layer.batch_norm and np.shares_memory(bn.intercepts_[0], layer.beta)
    assert bn.score(X, y) > 0.9


@quiet
def test_class_weight():
    X, y = _digits(300)
    kw = {"hidden_layer_sizes": (8,), "max_iter": 5, "random_state": 0}
    balanced = MLPClassifier(**kw, class_weight="balanced").fit(X, y)
    manual = MLPClassifier(**kw).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    assert_array_equal(balanced.coefs_[0], manual.coefs_[0])
    weights = {3: 5.0}
    by_dict = MLPClassifier(**kw, class_weight=weights).fit(X, y)
    manual = MLPClassifier(**kw).fit(X, y, sample_weight=np.where(y == 3, 5.0, 1.0))
    assert_array_equal(by_dict.coefs_[0], manual.coefs_[0])
    with pytest.raises(ValueError, match="balanced"):
        MLPClassifier(**kw, class_weight="balanced").partial_fit(X, y, classes=np.arange(10))
    Xm, Ym = make_multilabel_classification(n_samples=100, n_features=10, n_classes=3, random_state=0)
    with pytest.raises(ValueError, match="multi-label y must be 'balanced'"):
        MLPClassifier(**kw, class_weight={1: 2.0}).fit(Xm, Ym)
    per_label = MLPClassifier(**kw, class_weight="balanced").fit(Xm, Ym)
    manual = MLPClassifier(**kw).fit(Xm, Ym, sample_weight=compute_sample_weight("balanced", Ym))
    assert_array_equal(per_label.coefs_[0], manual.coefs_[0])
    # a weight that is no weight is refused before training (NaN and inf only showed as the solver's
    # non-finite parameters afterwards; a negative one trained silently)
    for bad in (-0.5, float("inf"), float("nan"), "2", True):
        with pytest.raises(ValueError, match=r"class_weight for class 3 must be a finite number >= 0"):
            MLPClassifier(**kw, class_weight={3: bad}).fit(X, y)


@quiet
@pytest.mark.parametrize("solver", ["adamw", "rmsprop", "adagrad", {"name": "sgd", "lr": 0.05, "momentum": 0.9},
                                    "instance"])
def test_deepff_solvers_and_schedules(solver):
    X, y = _digits(300)
    if solver == "instance":
        solver = deepff.optimizers.Adam(lr=0.01)
    est = MLPClassifier(hidden_layer_sizes=(16,), solver=solver, learning_rate_init=0.01, max_iter=30,
                        random_state=0).fit(X, y)
    assert est.score(X, y) > 0.85
    if isinstance(solver, deepff.optimizers.Optimizer):
        assert solver.t == 0  # the parameter itself is never trained
    cosine = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", schedule="cosine", learning_rate_init=0.01,
                          max_iter=10, tol=0, random_state=0).fit(X, y / 10.0)
    assert cosine._optimizer.lr < 0.01 * 0.1
    step = MLPRegressor(hidden_layer_sizes=(8,), schedule={"name": "step", "step_size": 2, "gamma": 0.5},
                        max_iter=6, tol=0, random_state=0).fit(X, y / 10.0)
    assert step._optimizer.lr == pytest.approx(0.001 * 0.5 ** 2)


def test_poisson_loss_and_exp_activation_are_registered_and_correct():
    assert deepff.losses.get("poisson").name == "poisson"
    assert deepff.activations.get("exp").name == "exp"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    y = rng.poisson(2.0, size=(12, 2)).astype(float)
    net = deepff.FeedForward([deepff.Dense(4, "tanh"), deepff.Dense(2, "exp")], loss="poisson", n_features=3,
                             dtype="float64", seed=0)
    assert net.fused
    assert deepff.gradcheck(net, X, y) < 1e-6
    net.allow_fused = False
    assert deepff.gradcheck(net, X, y, sample_weight=rng.uniform(0.5, 2, 12)) < 1e-6
    # scikit-learn's convention: the engine's losses with reduction "sample_mean" (and half the squared error)
    for loss, out in (({"name": "nll", "reduction": "sample_mean"}, "softmax"),
                      ({"name": "bce", "reduction": "sample_mean"}, "sigmoid"),
                      ({"name": "mse", "reduction": "sample_mean", "half": True}, "linear"),
                      ({"name": "poisson", "reduction": "sample_mean"}, "exp")):
        target = np.eye(3)[rng.integers(0, 3, 12)] if out == "softmax" else (y > 1).astype(float)
        width = target.shape[1]
        for fused in (True, False):
            net = deepff.FeedForward([deepff.Dense(4, "tanh"), deepff.Dense(width, out)], loss=loss, n_features=3,
                                     dtype="float64", seed=1)
            net.allow_fused = fused
            assert net.fused == (fused and out != "linear")
            assert deepff.gradcheck(net, X, target, sample_weight=rng.uniform(0.5, 2, 12)) < 1e-6


# ----------------------------------------------------------------------------
# the benchmark script (quick mode only; no timing assertion)
# ----------------------------------------------------------------------------


def test_benchmark_quick_mode_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_sklearn.py"), "--quick", "--json", "-"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert [r["dataset"] for r in payload["results"]] == ["digits", "iris", "breast_cancer", "wine", "diabetes"]
    for r in payload["results"]:
        assert r["deepff"]["score"] == r["sklearn"]["score"]  # the same algorithm on both sides
        assert r["speedup_cpu"] > 0
    assert payload["summary"]["quick"] is True


def test_pickling_keeps_the_dropout_stream():
    """Training continued after a pickle round trip draws the same dropout masks."""
    X, y = load_iris(return_X_y=True)
    a = MLPClassifier(dropout=0.3, random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    b = pickle.loads(pickle.dumps(a))
    c = copy.deepcopy(a)
    for est in (a, b, c):
        est.partial_fit(X, y)
    assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert_array_equal(a.predict_proba(X), c.predict_proba(X))


def test_hidden_layer_sizes_must_be_integers():
    X, y = load_iris(return_X_y=True)
    for sizes in [(2.5,), (0.5,), (True,), ("10",)]:
        with pytest.raises(ValueError, match="hidden_layer_sizes must hold integers"):
            MLPClassifier(hidden_layer_sizes=sizes, max_iter=2).fit(X, y)
    with pytest.warns(ConvergenceWarning):
        est = MLPClassifier(hidden_layer_sizes=(np.int64(3),), max_iter=2).fit(X, y)
    assert est.coefs_[0].shape == (4, 3)


def test_a_dict_lbfgs_solver_takes_the_estimators_limits():
    X, y = load_iris(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match=r"(?s)after 5 iteration\(s\) \(status=1\).*scale the data"):
        est = MLPClassifier(solver={"name": "lbfgs"}, max_iter=5, random_state=0).fit(X, y)
    assert est.n_iter_ == 5
    own = MLPClassifier(solver={"name": "lbfgs", "max_iter": 7}, max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        assert own.fit(X, y).n_iter_ == 7


def test_float32_losses_are_python_floats_summed_in_float64():
    X, y = load_iris(return_X_y=True)
    est = MLPClassifier(max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X.astype(np.float32), y)
    assert all(type(v) is float for v in est.loss_curve_ + [est.loss_, est.best_loss_])


# ----------------------------------------------------------------------------
# changes made to a fitted estimator between calls, as scikit-learn sees them
# ----------------------------------------------------------------------------


def _both(kind, **params):
    return getattr(skn, kind)(**params), getattr(dsk, kind)(**params)


@quiet
def test_changes_between_calls_follow_sklearn():
    X, y = _digits(200)
    # replaced weights keep training
    fitted = []
    for est in _both("MLPClassifier", hidden_layer_sizes=(5,), random_state=0):
        est.partial_fit(X, y, classes=np.arange(10))
        est.coefs_[0] = est.coefs_[0] * 0.5
        est.intercepts_ = [b + 0.1 for b in est.intercepts_]
        for _ in range(5):
            est.partial_fit(X, y)
            est.predict(X[:3])
        fitted.append(est)
    ref, ours = fitted
    for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_):
        assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    # a new activation takes effect at the next prediction and fit
    fitted = []
    for est in _both("MLPClassifier", hidden_layer_sizes=(5,), max_iter=10, random_state=0, warm_start=True):
        est.fit(X, y)
        est.set_params(activation="tanh")
        proba = est.predict_proba(X[:5])
        est.fit(X, y)
        fitted.append((proba, est.loss_))
    assert_allclose(fitted[1][0], fitted[0][0], rtol=1e-9)
    assert fitted[1][1] == pytest.approx(fitted[0][1], rel=1e-9)
    # partial_fit keeps the learning-rate settings of its first call
    fitted = []
    for est in _both("MLPClassifier", hidden_layer_sizes=(5,), solver="sgd", learning_rate="invscaling",
                     learning_rate_init=0.01, power_t=0.25, random_state=0):
        est.partial_fit(X, y, classes=np.arange(10))
        est.set_params(learning_rate_init=0.5, power_t=0.1)
        est.partial_fit(X, y)
        est.partial_fit(X, y)
        fitted.append(est)
    for a, b in zip(fitted[0].coefs_, fitted[1].coefs_):
        assert_allclose(b, a, rtol=1e-9, atol=1e-12)


def test_a_refused_warm_fit_leaves_the_estimator_usable():
    X, y = _digits(100)
    Y = np.c_[X[:, 0], X[:, 1]]
    m = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, Y)
        with pytest.raises(ValueError, match="cannot change with warm_start or partial_fit"):
            m.fit(X, Y[:, 0])
    assert m.n_outputs_ == 2 and m.predict(X[:2]).shape == (2, 2)
    m.set_params(batch_norm=True)
    with pytest.raises(ValueError, match="batch_norm cannot change on a fitted estimator"):
        m.predict(X[:2])


@quiet
def test_lbfgs_follows_sklearns_path_until_rounding_takes_over():
    """L-BFGS on the engine's loss follows scikit-learn's iterates to 1e-9 for 80 iterations.

    The engine divides the loss gradient by the batch weight before the
    matrix products (its losses are means) where scikit-learn divides the
    summed gradient after them; the two round differently in the last bit,
    and a line search amplifies that: on this problem the losses part by
    1e-7 at iteration 100 and a 500-iteration fit ends in another local
    minimum (2.23 against scikit-learn's 2.33, both converging).
    """
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for max_iter in (50, 80):
        ref, ours = (cls(solver="lbfgs", max_iter=max_iter, random_state=0).fit(X, y)
                     for cls in (skn.MLPRegressor, MLPRegressor))
        assert ours.n_iter_ == ref.n_iter_ and ours.loss_ == pytest.approx(ref.loss_, rel=1e-8)
        assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-7, atol=1e-7)


def test_lbfgs_refuses_dropout():
    X, y = _digits(100)
    with pytest.raises(ValueError, match="dropout does not work with solver='lbfgs'"):
        MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", dropout=0.5, max_iter=5).fit(X, y)


# ----------------------------------------------------------------------------
# Where deepff used to differ from scikit-learn as a new user meets it (issue 16, item 6)
# ----------------------------------------------------------------------------

def test_lbfgs_accepts_tol_zero_as_sklearn_does():
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(5,), solver="lbfgs", tol=0.0, max_iter=15, random_state=0)
    with pytest.warns(ConvergenceWarning):
        ref = skn.MLPClassifier(**kw).fit(X, y)
    with pytest.warns(ConvergenceWarning):
        ours = MLPClassifier(**kw).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ == 15
    assert_allclose(ours.loss_, ref.loss_, rtol=1e-9)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_convergence_warnings_obey_filters_by_sklearn_module(solver):
    # scikit-learn's gallery silences its MLP's warnings with a module filter; the same filter
    # must catch deepff's, while a filter naming another module must not
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(4,), solver=solver, max_iter=2, random_state=0)
    for module in (skn, dsk):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn")
            module.MLPClassifier(**kw).fit(X, y)
        assert not caught, (module.__name__, [str(w.message) for w in caught])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=ConvergenceWarning, module="numpy")
            module.MLPClassifier(**kw).fit(X, y)
        assert [w.category for w in caught] == [ConvergenceWarning], module.__name__


def test_regressor_partial_fit_with_lbfgs_continues_as_sklearns():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = y / 100
    kw = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=10, random_state=1)
    ref, ours = skn.MLPRegressor(**kw), MLPRegressor(**kw)
    assert hasattr(ours, "partial_fit") and hasattr(ref, "partial_fit")
    for _ in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref.partial_fit(X, y)
            ours.partial_fit(X, y)
        assert ours.n_iter_ == ref.n_iter_
        assert_allclose(ours.loss_, ref.loss_, rtol=1e-9)
        for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_):
            assert_allclose(b, a, rtol=1e-7, atol=1e-9)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")   # as scikit-learn's classifier
    assert not hasattr(skn.MLPClassifier(solver="lbfgs"), "partial_fit")


def test_weights_set_by_hand_before_the_first_partial_fit_are_trained_as_sklearn_does():
    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    coefs = [rng.normal(size=(4, 3)), rng.normal(size=(3, 3))]
    intercepts = [rng.normal(size=3), rng.normal(size=3)]
    fitted = []
    for cls in (skn.MLPClassifier, MLPClassifier):
        est = cls(hidden_layer_sizes=3, solver="sgd", learning_rate_init=0.05, random_state=1)
        est.coefs_ = [c.copy() for c in coefs]
        est.intercepts_ = [b.copy() for b in intercepts]
        est.n_outputs_, est.n_layers_, est.out_activation_ = 3, 3, "softmax"   # what scikit-learn's own test sets
        est.t_, est.n_iter_, est.best_loss_, est.loss_curve_, est._no_improvement_count = 0, 0, np.inf, [], 0
        est.partial_fit(X, y, classes=[0, 1, 2])
        fitted.append(est)
    ref, ours = fitted
    for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_):
        assert_allclose(b, a, rtol=1e-10, atol=1e-13)
    assert not np.allclose(ours.coefs_[0], coefs[0])   # it trained from them
    assert_allclose(ours.loss_, ref.loss_, rtol=1e-10)


@pytest.mark.parametrize("n_labels", [2, 3])
def test_lbfgs_objective_and_gradient_are_sklearns(n_labels):
    rng = np.random.RandomState(42)
    X = rng.rand(7, 5)
    y = np.arange(7) % n_labels
    w = rng.rand(7) + 0.5
    est, ref = (cls(hidden_layer_sizes=4, activation="tanh", solver="lbfgs", alpha=1e-2, max_iter=1,
                    random_state=1) for cls in (MLPClassifier, skn.MLPClassifier))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        ref.fit(X, y)
    theta = np.hstack([p.ravel() for p in ref.coefs_ + ref.intercepts_])   # scikit-learn's packing
    Y = est._label_binarizer.transform(y)
    value, grad = est._loss_grad_lbfgs(theta, X, Y, w)
    layer_units = [5, 4, ref.n_outputs_]
    bufs = ([X] + [np.empty((7, u)) for u in layer_units[1:]], [np.empty((7, u)) for u in layer_units[1:]],
            [np.empty((a, b)) for a, b in zip(layer_units, layer_units[1:])], [np.empty(u) for u in layer_units[1:]])
    ref_value, ref_grad = ref._loss_grad_lbfgs(theta, X, Y, w, *bufs)
    assert_allclose(value, ref_value, rtol=1e-12)
    assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)
    numeric = np.array([(est._loss_grad_lbfgs(theta + e, X, Y, w)[0] - est._loss_grad_lbfgs(theta - e, X, Y, w)[0])
                        / 2e-6 for e in np.eye(theta.size) * 1e-6])
    assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@quiet
def test_a_diverging_fit_with_early_stopping_ends_on_its_best_weights_as_sklearns_does():
    """scikit-learn trains on through a non-finite loss (the Trainer's halt_on_divergence=False) and
    restores the best validation epoch; without early stopping the non-finite weights are an error."""
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", learning_rate_init=1, max_iter=20,
              early_stopping=True, n_iter_no_change=10, random_state=0)
    with np.errstate(all="ignore"):
        ref, ours = skn.MLPRegressor(**kw).fit(X, y), MLPRegressor(**kw).fit(X, y)
    assert np.isnan(ours.validation_scores_[-1]) and np.isnan(ref.validation_scores_[-1])
    assert ours.n_iter_ == ref.n_iter_
    assert_allclose(ours.validation_scores_[:3], ref.validation_scores_[:3], rtol=1e-9)
    assert np.isfinite(ours.coefs_[0]).all()
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        MLPRegressor(**{**kw, "early_stopping": False}).fit(X, y)


@quiet
@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_early_stopping_with_a_coarse_tol_stops_when_sklearns_does(kind):
    """A tol that decides: an epoch counts as no improvement unless the score beats the best by tol."""
    X, y = _digits(300)
    if kind == "MLPRegressor":
        y = X[:, :4] @ np.array([0.5, -1.0, 0.25, 2.0])
    kw = dict(hidden_layer_sizes=(16,), early_stopping=True, tol=0.02, n_iter_no_change=2, max_iter=200,
              random_state=0)
    ref, ours = getattr(skn, kind)(**kw).fit(X, y), getattr(dsk, kind)(**kw).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ < 200
    assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=1e-10)
    assert ours.best_validation_score_ == pytest.approx(ref.best_validation_score_, rel=1e-10)
