"""Bad input raises deepff.InputError (a ValueError) naming the problem, through
Network.fit, Network.predict and the classic Net; good input is cast."""

import re

import numpy as np
import pytest

from _needs import require_module
from deepff import Dense, InputError, Net, Network
from deepff.validation import check_dtype, check_sample_weight, check_targets, check_X, data_digest

SPEC = [
    {"layer_type": "input", "n_features": 4},
    {"layer_type": "fullyconn", "n_neurons": 5, "activation": "relu"},
    {"layer_type": "output", "n_neurons": 3, "activation": "softmax", "loss_type": "neg_log_likelihood"},
]


def _X(n=10, d=4):
    return np.random.default_rng(0).normal(size=(n, d))


def _y(n=10):
    return np.arange(n) % 3


def _clf(**kw):
    return Network([Dense(5, "relu"), Dense(3, "softmax")], loss="nll", seed=0, **kw)


def _with_nan(X, value=np.nan):
    X = X.copy()
    X[3, 1] = value
    return X


BAD_X = [
    (lambda: _X()[:, 0], "2-D"),
    (lambda: _X()[None], "2-D"),
    (lambda: _with_nan(_X()), "NaN"),
    (lambda: _with_nan(_X(), np.inf), "infinity"),
    (lambda: _with_nan(_X(), -np.inf), "infinity"),
    (lambda: np.array([["a", "b", "c", "d"]] * 10), "numeric"),
    (lambda: np.array([[1, 2, 3, None]] * 10, dtype=object), "NaN"),   # None is a missing value
    (lambda: np.zeros((0, 4)), "empty"),
]


def _ragged():
    return [[1.0, 2.0, 3.0, 4.0]] * 9 + [[1.0, 2.0]]


@pytest.mark.parametrize("make, fragment", BAD_X)
def test_fit_rejects_bad_X(make, fragment):
    with pytest.raises(InputError, match=fragment) as exc:
        _clf().fit(make(), _y(), epochs=1)
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("make, fragment", BAD_X)
def test_predict_rejects_bad_X(make, fragment):
    net = _clf()
    net.fit(_X(), _y(), epochs=1)
    with pytest.raises(InputError, match=fragment):
        net.predict(make())


@pytest.mark.parametrize("make, fragment", BAD_X)
def test_classic_forward_rejects_bad_X(make, fragment):
    with pytest.raises(InputError, match=fragment):
        Net(layers=SPEC, seed=0).forward(make())


def test_ragged_X_predict_and_classic():
    net = _clf()
    net.fit(_X(), _y(), epochs=1)
    with pytest.raises(InputError, match="X could not be converted"):
        net.predict(_ragged())
    with pytest.raises(InputError, match="X could not be converted"):
        Net(layers=SPEC).forward(_ragged())


def test_ragged_X_fit():
    with pytest.raises(InputError, match="X could not be converted"):
        _clf().fit(_ragged(), _y(), epochs=1)


def test_feature_count_mismatch():
    net = _clf()
    net.fit(_X(), _y(), epochs=1)
    for call in (lambda: net.predict(_X(d=5)), lambda: net.fit(_X(d=3), _y(), epochs=1),
                 lambda: Net(layers=SPEC).forward(_X(d=6)), lambda: net.evaluate(_X(d=2), _y())):
        with pytest.raises(InputError, match="features, but the network expects 4"):
            call()


def test_sample_counts_that_differ():
    with pytest.raises(InputError, match="X has 10 samples but y has 9"):
        _clf().fit(_X(), _y(9), epochs=1)
    net = Net(layers=SPEC, seed=0)
    net.forward(_X())
    with pytest.raises(InputError, match="10 samples"):
        net.loss(_y(8))
    with pytest.raises(InputError, match="10 samples"):
        net.backward(_y(12))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_in_y(bad):
    y = _y().astype(float)
    y[2] = bad
    with pytest.raises(InputError, match="y contains NaN"):
        _clf().fit(_X(), y, epochs=1)
    reg = Network([Dense(1)], loss="mse", seed=0)
    with pytest.raises(InputError, match="y contains NaN"):
        reg.fit(_X(), y, epochs=1)
    net = Net(layers=SPEC, seed=0)
    net.forward(_X())
    with pytest.raises(InputError, match="NaN"):
        net.loss(y)


@pytest.mark.parametrize("label", [3, -1, 7])
def test_class_labels_out_of_range(label):
    y = _y()
    y[4] = label
    with pytest.raises(InputError) as exc:
        _clf().fit(_X(), y, epochs=1)
    msg = str(exc.value)
    assert f"label {label}" in msg and "0..2" in msg
    net = Net(layers=SPEC, seed=0)
    net.forward(_X())
    with pytest.raises(InputError, match="out of range"):
        net.backward(y)


def test_non_integer_labels():
    y = _y().astype(float)
    y[0] = 0.5
    with pytest.raises(InputError, match="non-integer"):
        _clf().fit(_X(), y, epochs=1)


def test_wrong_target_columns():
    with pytest.raises(InputError, match="2 columns but the output layer has 3"):
        _clf().fit(_X(), np.zeros((10, 2)), epochs=1)


def test_bce_targets_must_be_in_unit_interval():
    net = Network([Dense(2, "sigmoid")], loss="binary_cross_entropy", seed=0)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        net.fit(_X(), np.full((10, 2), 2.0), epochs=1)


def test_classic_loss_before_forward():
    with pytest.raises(InputError, match="forward"):
        Net(layers=SPEC).loss(_y())


def test_bad_sample_weight():
    with pytest.raises(InputError, match="sample_weight has 9 entries"):
        _clf().fit(_X(), _y(), sample_weight=np.ones(9), epochs=1)
    with pytest.raises(InputError, match="non-negative"):
        _clf().fit(_X(), _y(), sample_weight=-np.ones(10), epochs=1)
    with pytest.raises(InputError, match="finite"):
        _clf().fit(_X(), _y(), sample_weight=np.full(10, np.nan), epochs=1)


# -------------------------------------------------------------- casting rules
def test_inputs_of_other_dtypes_are_cast():
    net = _clf()
    X_int = (np.random.default_rng(0).integers(-3, 4, size=(10, 4)))
    net.fit(X_int, _y(), epochs=1)
    assert net.params.theta.dtype == np.float32
    assert net.predict_output(X_int).dtype == np.float32
    X64 = X_int.astype(np.float64)
    np.testing.assert_array_equal(net.predict_output(X64), net.predict_output(X_int))
    net.fit(X64, _y(), epochs=1)                  # float64 into a float32 net
    assert net.params.theta.dtype == np.float32
    np.testing.assert_array_equal(net.predict(X_int.tolist()), net.predict(X64))


def test_check_X_returns_contiguous_array_of_dtype():
    X = np.asfortranarray(_X())
    out = check_X(X, np.float32, 4)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    X64 = np.ascontiguousarray(_X())
    assert check_X(X64, np.float64) is X64        # no copy when nothing to do
    assert check_X([["1.5", "2"]], np.float64).tolist() == [[1.5, 2.0]]  # numeric strings are fine


def test_check_targets_shapes():
    onehot = check_targets([0, 2, 1], 3, 3, "classification", False, np.float64)
    np.testing.assert_array_equal(onehot, np.eye(3)[[0, 2, 1]])
    col = check_targets([1.0, 2.0], 2, 1, "regression", False, np.float32)
    assert col.shape == (2, 1) and col.dtype == np.float32
    with pytest.raises(InputError, match="1-D or 2-D"):
        check_targets(np.zeros((2, 1, 1)), 2, 1, "regression", False, np.float64)


def test_check_sample_weight():
    assert check_sample_weight(None, 3, np.float64) is None
    w = check_sample_weight([1, 2, 3], 3, np.float32)
    assert w.dtype == np.float32 and w.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("dtype, expected", [("float32", np.float32), ("float64", np.float64),
                                             (np.float32, np.float32), (np.dtype("f8"), np.float64)])
def test_check_dtype(dtype, expected):
    assert check_dtype(dtype) == expected


@pytest.mark.parametrize("dtype", ["float16", "int64", np.complex64])
def test_check_dtype_rejects(dtype):
    with pytest.raises(InputError, match="float32"):
        check_dtype(dtype)


def test_sparse_input_is_named_with_the_fix():
    sparse = require_module("scipy.sparse", area="scipy")
    with pytest.raises(InputError, match=r"X is a sparse matrix.*X.toarray\(\)"):
        check_X(sparse.csr_matrix(np.eye(3)), np.float64)


def test_values_beyond_float32_are_named_as_too_large_not_as_nan():
    """1e300 is finite: cast to float32 it overflows, which the message says (and numpy's warning is kept quiet)."""
    import warnings

    X = np.array([[1e300, 1.0], [2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="X holds values too large for float32 \\(largest 3.4e\\+38\\)"):
            check_X(X, np.float32)
    assert check_X(X, np.float64)[0, 0] == 1e300
    with pytest.raises(InputError, match="X contains NaN or infinity"):
        check_X(np.array([[np.inf, 1.0]]), np.float32)


@pytest.mark.parametrize(("X", "says"), [
    (np.array([["1_0", "2"], ["3", "4"]]), "the text '1_0', which is not a plainly written number"),
    (np.array([["\u0661", "2"], ["3", "4"]]), "the text '\u0661', which is not a plainly written number"),
    (np.array([[b"1_0", b"2"]]), "the text '1_0'"),
    (np.array([[1.0, "x"]], dtype=object), "the text 'x'"),
    (np.array([[10**400, 1.0]], dtype=object), "an integer too large for float64"),
])
def test_check_X_reads_texts_as_data_files_write_numbers(X, says):
    """float() takes "1_0" (10) and other scripts' digits; the CSV readers refuse them, so check_X does too."""
    with pytest.raises(InputError, match=re.escape(says)):
        check_X(X, np.float64)


def test_check_X_still_reads_plain_numbers_given_as_text():
    X = check_X(np.array([[" 1.5", "-2e1"], [".5", "+3"]]), np.float64)
    np.testing.assert_array_equal(X, [[1.5, -20.0], [0.5, 3.0]])


@pytest.mark.parametrize("label, shown", [(1e20, "1e+20"), (2.0 ** 63, "9.22337e+18"), (-1e300, "-1e+300")])
def test_huge_labels_are_out_of_range_without_a_numpy_warning(label, shown, recwarn):
    """Such labels have no int64: they used to read as 'non-integer' with a RuntimeWarning from the cast."""
    y = np.full(6, label)
    with pytest.raises(InputError, match=rf"class label {re.escape(shown)} out of range.*0\.\.2"):
        check_targets(y, 6, 3, "classification", False, np.float64)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_a_masked_array_with_masked_entries_is_refused():
    X = np.ma.masked_array(np.arange(12.0).reshape(4, 3), mask=False)
    X[1, 2] = np.ma.masked
    with pytest.raises(InputError, match=r"X is a masked array with 1 masked entries.*X\.filled\(value\)"):
        check_X(X, np.float64)
    y = np.ma.masked_array([0, 1, 0, 1], mask=[0, 0, 1, 0])
    with pytest.raises(InputError, match="y is a masked array with 1 masked"):
        check_targets(y, 4, 2, "classification", False, np.float64)


def test_a_masked_array_without_masked_entries_is_its_data():
    data = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(check_X(np.ma.masked_array(data, mask=False), np.float64), data)


def test_data_digest_tells_other_targets_weights_and_dtypes_apart():
    """Checkpoints compare it to notice a resume on other data: relabelled or reweighted rows are other data."""
    rng = np.random.default_rng(0)
    X, Y, w = rng.normal(size=(200, 3)), rng.normal(size=(200, 2)), rng.uniform(0.5, 2.0, 200)
    d = data_digest(X, Y, w)
    assert d == data_digest(X.copy(), Y.copy(), w.copy())                     # the same data, another copy
    assert d["shape"] == [200, 3] and d["dtype"] == X.dtype.str
    Y2, w2 = Y.copy(), w.copy()
    Y2[0, 1] += 1.0                                   # the first and last rows are always in the sample
    w2[-1] *= 2.0
    others = [data_digest(X, Y2, w), data_digest(X, Y, w2), data_digest(X, Y), data_digest(X, None, w),
              data_digest(X.astype(np.float32), Y, w)]
    assert len({d["sha256"], *(o["sha256"] for o in others)}) == 1 + len(others)
