"""deepff.sklearn's prediction input checks: the fast path for plain float arrays refuses what validate_data refuses."""

import warnings

import numpy as np
import pytest
from tests._needs import require_module

require_module("sklearn", area="scikit-learn drop-in")

from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402

from deepff.sklearn import MLPClassifier  # noqa: E402


def _fitted(cls, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # ConvergenceWarning: a few epochs suffice here
        return cls(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    return _fitted(MLPClassifier, X, y), _fitted(SkMLPClassifier, X, y), X


@pytest.mark.parametrize("bad", ["nan", "inf", "width", "empty", "1d"])
def test_fast_path_refuses_what_scikit_learn_refuses(pair, bad):
    ours, theirs, X = pair
    Z = {"nan": np.where(np.arange(4) == 2, np.nan, X[:3]), "inf": np.where(np.arange(4) == 1, np.inf, X[:3]),
         "width": X[:3, :3], "empty": X[:0], "1d": X[0]}[bad]
    with pytest.raises(ValueError) as expected:
        theirs.predict_proba(Z)
    with pytest.raises(ValueError) as got:
        ours.predict_proba(Z)
    assert str(got.value).split(".")[0] == str(expected.value).split(".")[0].replace(theirs.__class__.__name__,
                                                                                  ours.__class__.__name__)


def test_fast_path_gives_the_checked_paths_results(pair):
    ours, theirs, X = pair
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X.astype(np.float32)), ours.predict(X.astype(np.float32).tolist()))
    assert ours.predict_proba(np.asfortranarray(X)).shape == (60, 3)


def test_estimator_fitted_with_feature_names_still_warns_on_an_array():
    pd = require_module("pandas", area="scikit-learn drop-in with DataFrames")
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    est = _fitted(MLPClassifier, X, (X["a"] > 0).astype(int))
    with pytest.warns(UserWarning, match="feature names"):
        est.predict_proba(X.to_numpy())
