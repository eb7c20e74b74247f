"""Checks on user data, run once at the API boundary, never on the hot path.

Each check raises :class:`~deepff.errors.InputError` (a ValueError) with a
message that names the argument and what is wrong with it, instead of a
numpy traceback from deep inside the engine.
"""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np

from .errors import InputError

__all__ = ["data_digest", "check_X", "check_targets", "check_sample_weight", "check_dtype", "check_file_path",
           "is_plain_number"]

_DTYPES = {"float32": np.float32, "float64": np.float64}


def check_dtype(dtype):
    """Return the numpy dtype for "float32"/"float64" (or their numpy types).

    Parameters
    ----------
    dtype : str or numpy dtype

    Returns
    -------
    numpy.dtype

    Raises
    ------
    InputError
        For any other dtype.
    """
    dt = None
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except (TypeError, ValueError):
            dt = None
    if dt is None or dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


# What a text (a CSV cell, a string in an array) must look like to be read as a number: ASCII
# digits, an optional sign, point and exponent (or inf/nan, which get their own errors). Python's
# int() and float() and numpy also take "1_000" and other scripts' digits ("١٢"): a class label
# "1_2" would become 12.
_NUMBER = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE)


def is_plain_number(text, lenient=False):
    """Whether a text (a CSV cell, a string in an array) is a number as data files write them.

    Digits 0-9 with an optional sign, decimal point and exponent (``-1.5e3``,
    ``.25``, ``7``), or ``inf``/``nan`` (which readers then refuse with their
    own message). Python's ``float()`` also takes ``1_000`` and other
    scripts' digits (``١٢``); deepff's readers do not. This is deepff's one
    test of "is this text a number".

    Parameters
    ----------
    text : str
        One cell, stripped.
    lenient : bool, default False
        Accept whatever Python's ``float()`` accepts instead: the reading of
        someone who *meant* a number, which header detection uses (a first
        row of ``1_000`` is data, to be refused as such, not column names).

    Returns
    -------
    bool
    """
    if not lenient:
        return _NUMBER.fullmatch(text) is not None
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def check_file_path(path, what="path", error=InputError):
    """Return ``path`` as a str, refusing what is not a file name (None, bytes, numbers...).

    Parameters
    ----------
    path : object
    what : str
        How the message names it.
    error : type
        The error class to raise (a ValueError subclass of deepff.errors).

    Returns
    -------
    str
    """
    if isinstance(path, (str, os.PathLike)):
        path = os.fspath(path)
        if isinstance(path, str) and path:
            return path
    raise error(f"{what} must be a file name (a non-empty str or os.PathLike), got {path!r}")


def _as_numeric(arr, name):
    if hasattr(arr, "tocsr") and hasattr(arr, "toarray"):   # a scipy sparse matrix or array
        raise InputError(f"{name} is a sparse matrix; the network takes dense arrays: pass {name}.toarray() "
                         "(or use deepff.sklearn's estimators, which take sparse input)")
    if isinstance(arr, np.ma.MaskedArray):
        n_masked = int(np.count_nonzero(np.ma.getmaskarray(arr)))
        if n_masked:                         # np.asarray would drop the mask and train on the hidden values
            raise InputError(f"{name} is a masked array with {n_masked} masked entries; deepff does not read "
                             f"masks: drop those rows, or fill them ({name}.filled(value)) on purpose")
        arr = arr.data
    try:
        a = np.asarray(arr)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name} could not be converted to an array: {exc}") from None
    if a.dtype == object or a.dtype.kind in "USV":
        texts = a.ravel() if a.dtype.kind in "US" else [v for v in a.ravel() if isinstance(v, (str, bytes))]
        texts = (str(v.decode(errors="replace") if isinstance(v, bytes) else v) for v in texts)
        odd = next((v for v in texts if not is_plain_number(v.strip())), None)   # float() takes "1_0" and
        if odd is not None:                                  # other scripts' digits; data files mean text
            raise InputError(f"{name} must be numeric; it holds the text {odd!r}, which is not a plainly "
                             "written number (digits 0-9, an optional sign, point and exponent)")
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be numeric; it holds non-numeric values") from None
        except OverflowError:
            raise InputError(f"{name} holds an integer too large for float64") from None
    if a.dtype.kind not in "biuf":
        raise InputError(f"{name} must be numeric, got dtype {a.dtype}")
    return a


def check_X(X, dtype, n_features=None, name="X"):
    """Validate a design matrix and cast it to ``dtype``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    dtype : numpy dtype
        The network's dtype; X is cast once (a no-op when it matches).
    n_features : int, optional
        Required number of columns.
    name : str
        Name used in error messages.

    Returns
    -------
    ndarray of shape (n_samples, n_features), C-contiguous, of ``dtype``

    Raises
    ------
    InputError
        If X is not 2-D, is empty, holds NaN/inf or non-numeric values, or
        has the wrong number of columns.
    """
    a = _as_numeric(X, name)
    if a.ndim != 2:
        raise InputError(
            f"{name} must be 2-D (n_samples, n_features), got an array of shape {a.shape}; "
            "reshape a single feature with X.reshape(-1, 1) or a single sample with X.reshape(1, -1)"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {a.shape}); it needs at least one sample and one feature")
    if n_features is not None and a.shape[1] != n_features:
        raise InputError(f"{name} has {a.shape[1]} features, but the network expects {n_features}")
    return cast_finite(a, dtype, name)


def cast_finite(a, dtype, name, fix="rescale {name} (standardise it) or use float64"):
    """``a`` as a C-contiguous array of ``dtype``, refused if it holds NaN or inf, before or after the cast.

    Parameters
    ----------
    a : ndarray
    dtype : numpy dtype
    name : str
        Name used in error messages.
    fix : str
        What to do about values too large for ``dtype`` ({name} is replaced).

    Returns
    -------
    ndarray of ``dtype``

    Raises
    ------
    InputError
        For NaN or infinity, naming values that only overflowed in the cast (float32's largest is 3.4e38).
    """
    source = a
    with np.errstate(over="ignore"):        # values beyond the dtype's range become inf: said below
        a = np.ascontiguousarray(a, dtype=dtype)
    if not _all_finite(a):
        if source is not a and _all_finite(source):
            raise InputError(f"{name} holds values too large for {np.dtype(dtype)} (largest "
                             f"{np.finfo(dtype).max:.3g}); {fix.format(name=name)}")
        raise InputError(f"{name} contains NaN or infinity")
    return a


def _all_finite(a, chunk_elements=1 << 20):
    """np.isfinite(a).all(), in row chunks so no full-size boolean temporary is made."""
    a = a.reshape(a.shape[0], -1) if a.ndim != 2 else a
    rows = max(1, chunk_elements // max(1, a.shape[1]))
    return all(np.isfinite(a[i:i + rows]).all() for i in range(0, a.shape[0], rows))


def check_targets(y, n_samples, n_outputs, task, multi_label, dtype, name="y"):
    """Validate targets and return them as an (n_samples, n_outputs) array.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Class labels 0..n_outputs-1 (categorical), 0/1 indicators
        (binary/multi-label), or real values (regression).
    n_samples : int
        Number of rows X has.
    n_outputs : int
        Width of the network's output layer.
    task : {"classification", "regression"}
    multi_label : bool
        True for binary cross-entropy targets (independent 0/1 outputs).
    dtype : numpy dtype
    name : str

    Returns
    -------
    ndarray of shape (n_samples, n_outputs) and ``dtype``
        One-hot rows for categorical labels.

    Raises
    ------
    InputError
        For a sample count that differs from X, NaN/inf, labels out of range
        or a column count that does not match the output layer.
    """
    a = _as_numeric(y, name)
    if a.ndim == 0 or a.ndim > 2:
        raise InputError(f"{name} must be 1-D or 2-D, got shape {a.shape}")
    if a.shape[0] != n_samples:
        raise InputError(f"X has {n_samples} samples but {name} has {a.shape[0]}; they must match")
    if not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or infinity")
    if task == "classification" and not multi_label and (a.ndim == 1 or a.shape[1] == 1) \
            and n_outputs > 1:
        labels = a.reshape(-1)
        if labels.dtype.kind == "f" and (labels != np.floor(labels)).any():
            raise InputError(f"{name} holds non-integer class labels; expected integers 0..{n_outputs - 1}")
        bad = (labels < 0) | (labels >= n_outputs)      # before any cast: 1e20 has no int64
        if bad.any():
            first = labels[bad][0]
            shown = int(first) if abs(first) < 2 ** 53 else f"{float(first):g}"
            raise InputError(
                f"{name} holds class label {shown} out of range: the output layer has "
                f"{n_outputs} units, so labels must be in 0..{n_outputs - 1}"
            )
        as_int = labels.astype(np.int64)
        onehot = np.zeros((n_samples, n_outputs), dtype=dtype)
        onehot[np.arange(n_samples), as_int] = 1
        return onehot
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.shape[1] != n_outputs:
        raise InputError(f"{name} has {a.shape[1]} columns but the output layer has {n_outputs} units")
    if multi_label and ((a < 0) | (a > 1)).any():
        raise InputError(f"{name} must hold values in [0, 1] for binary cross-entropy")
    return cast_finite(a, dtype, name, fix="rescale {name} (standardise it) or use a float64 network")


def check_sample_weight(w, n_samples, dtype):
    """Validate sample weights.

    Parameters
    ----------
    w : array-like of shape (n_samples,) or None
    n_samples : int
    dtype : numpy dtype

    Returns
    -------
    ndarray of shape (n_samples,) or None

    Raises
    ------
    InputError
        For a wrong length, negative or non-finite weights.
    """
    if w is None:
        return None
    a = _as_numeric(w, "sample_weight")
    if a.ndim > 2 or (a.ndim == 2 and a.shape[1] != 1):
        raise InputError(f"sample_weight must be 1-D, one weight per sample, got an array of shape {a.shape}")
    a = a.reshape(-1)
    if a.shape[0] != n_samples:
        raise InputError(f"sample_weight has {a.shape[0]} entries but X has {n_samples} samples")
    if not np.isfinite(a).all() or (a < 0).any():
        raise InputError("sample_weight must be finite and non-negative")
    return cast_finite(a, dtype, "sample_weight",        # finite here: only an overflow is left to name
                       fix="divide the weights by a constant (only their ratios matter) or use a float64 network")


def data_digest(X, Y=None, w=None, n_rows=64):
    """A short fingerprint of a data set: its shapes, dtype and a sample of its rows.

    Checkpoints carry it, so that resuming on other data is noticed; it reads
    at most ``n_rows`` rows (evenly spaced, first and last included), so it
    costs microseconds even for data larger than memory (a memory map).

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs), optional
    w : ndarray of shape (n_samples,), optional
    n_rows : int, default 64

    Returns
    -------
    dict
        ``{"shape": [n_samples, n_features], "dtype": str, "sha256": str}``,
        JSON-compatible; equal for the same data, different (but for a
        change confined to the rows not sampled) for other data.
    """
    n = X.shape[0]
    rows = np.unique(np.linspace(0, n - 1, num=min(n, n_rows)).astype(np.int64)) if n else np.zeros(0, np.int64)
    h = hashlib.sha256()
    for part in (X, Y, w):
        if part is not None:
            h.update(repr((part.shape, part.dtype.str)).encode())
            sample = part[rows]
            h.update(np.ascontiguousarray(sample.toarray() if hasattr(sample, "toarray") else sample).tobytes())
    return {"shape": [int(d) for d in X.shape], "dtype": X.dtype.str, "sha256": h.hexdigest()}
