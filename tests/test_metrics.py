"""deepff.metrics against scikit-learn's reference implementations."""

import numpy as np
import pytest

from _needs import require_module
from deepff import InputError
from deepff.metrics import classification_report, confusion_matrix, regression_report

skm = require_module("sklearn.metrics", area="scikit-learn")


def test_confusion_matrix_counts_by_hand():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_confusion_matrix_keeps_absent_classes():
    cm = confusion_matrix([0, 0], [0, 0], 4)
    assert cm.shape == (4, 4)
    assert cm.sum() == 2 and cm[0, 0] == 2


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [2, 3, 10])
def test_classification_report_matches_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    n = 200
    y_true = rng.integers(0, k, size=n)
    # mostly right, some noise, and (for k > 2) one class never predicted
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, size=n))
    if k > 2:
        y_pred[y_pred == k - 1] = 0
    labels = list(range(k))
    rep = classification_report(y_true, y_pred, k)
    np.testing.assert_array_equal(rep["confusion_matrix"], skm.confusion_matrix(y_true, y_pred, labels=labels))
    assert rep["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(rep["precision"], p)
    np.testing.assert_allclose(rep["recall"], r)
    np.testing.assert_allclose(rep["f1"], f)
    np.testing.assert_array_equal(rep["support"], s)
    assert rep["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, labels=labels, average="macro",
                                                         zero_division=0))


def test_classification_report_is_json_compatible():
    import json

    rep = classification_report(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    assert json.loads(json.dumps(rep)) == rep


@pytest.mark.parametrize("shape", [(50,), (50, 3)])
def test_regression_report_matches_sklearn(shape):
    rng = np.random.default_rng(1)
    y_true = rng.normal(size=shape)
    y_pred = y_true + 0.3 * rng.normal(size=shape)
    rep = regression_report(y_true, y_pred)
    assert rep["mse"] == pytest.approx(skm.mean_squared_error(y_true, y_pred))
    assert rep["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert rep["r2"] == pytest.approx(skm.r2_score(y_true, y_pred))


def test_regression_report_perfect_and_constant_target():
    y = np.array([1.0, 2.0, 3.0])
    assert regression_report(y, y) == {"mse": 0.0, "mae": 0.0, "r2": 1.0}
    # a constant target has no variance to explain: R^2 is reported as 0, not NaN
    rep = regression_report(np.ones(4), np.array([1.0, 2.0, 1.0, 1.0]))
    assert rep["r2"] == 0.0 and np.isfinite(rep["mse"])


@pytest.mark.parametrize("y_true, y_pred, match", [
    ([0, 1, -1], [0, 1, 1], "y_true holds -1; class labels must be integers 0..1"),
    ([0, 1.7], [0, 1], "y_true holds 1.7"),
    ([0, 1], [0, 2], "y_pred holds 2"),
    ([0, 1, 1], [0, 1], "y_true has 3 labels but y_pred has 2"),
    (np.eye(2), np.eye(2), "y_true must be 1-D, one class label per sample.*argmax"),
    (["a", "b"], [0, 1], "y_true must hold integer class labels"),
])
def test_confusion_matrix_refuses_what_is_not_labels(y_true, y_pred, match):
    """Negative labels used to wrap round to the last class, one-hot rows to count each sample twice."""
    with pytest.raises(InputError, match=match):
        confusion_matrix(y_true, y_pred, 2)
    with pytest.raises(InputError, match=match):
        classification_report(y_true, y_pred, 2)


@pytest.mark.parametrize("y_true, y_pred, kw, match", [
    (np.zeros((4, 2)), np.zeros(4), {}, "y_true has shape \\(4, 2\\) but y_pred \\(4, 1\\)"),
    (np.zeros(4), np.zeros(3), {}, "y_true has shape \\(4, 1\\) but y_pred \\(3, 1\\)"),
    ([1.0, np.nan], [1.0, 2.0], {}, "y_true contains NaN or infinity"),
    ([1.0, 2.0], [1.0, 2.0], {"sample_weight": [0, 0]}, "not all 0"),
    ([1.0, 2.0], [1.0, 2.0], {"sample_weight": [1, 1, 1]}, "sample_weight must be 2 finite weights"),
])
def test_regression_report_refuses_mismatched_or_non_finite_input(y_true, y_pred, kw, match):
    """A (4, 2) target against (4,) predictions used to broadcast to a perfect score."""
    with pytest.raises(InputError, match=match):
        regression_report(y_true, y_pred, **kw)
    assert regression_report([1.0, 2.0, 3.0], np.array([[1.0], [2.0], [3.0]]))["r2"] == 1.0
