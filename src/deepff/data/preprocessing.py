"""What a training run does to data once read: label encoding, task inference, a
seeded train/test split, and :class:`Standardizer`, a JSON-able per-column
standardiser.
"""

from __future__ import annotations

import numpy as np

from ..errors import DatasetError, ModelFileError, choices

__all__ = ["MAX_CLASSES", "Standardizer", "encode_labels", "infer_task", "train_test_split_indices"]

# ---------------------------------------------------------------------------
# Labels and task
# ---------------------------------------------------------------------------


def _as_1d_labels(y, what="y"):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"{what} must be one-dimensional (n,), got shape {y.shape}")
    if y.size == 0:
        raise DatasetError(f"{what} is empty")
    return y


def encode_labels(y):
    """Map arbitrary class labels to integer codes 0..k-1.

    Parameters
    ----------
    y : array_like, shape (n,) or (n, 1)
        Labels: strings, integers, booleans or floats.

    Returns
    -------
    codes : numpy.ndarray of int64, shape (n,)
        ``classes[codes] == y``.
    classes : numpy.ndarray, shape (k,)
        The distinct labels in sorted order (as :func:`numpy.unique`).

    Raises
    ------
    DatasetError
        If ``y`` is empty, not one-dimensional, holds NaN, or mixes label
        types that cannot be sorted together.
    """
    y = _as_1d_labels(y)
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise DatasetError(f"labels hold NaN at index {int(np.flatnonzero(np.isnan(y))[0])}")
    try:
        classes, codes = np.unique(y, return_inverse=True)
    except TypeError as exc:
        raise DatasetError(f"labels cannot be sorted (mixed types?): {exc}") from None
    return codes.reshape(-1).astype(np.int64), classes


#: Most distinct integer values a target may have and still count as classes.
MAX_CLASSES = 50


def infer_task(y):
    """Guess whether a target column calls for classification or regression.

    Rule: strings, booleans and other non-numeric labels are
    classification. Integers, and floats whose values are all integers, are
    classification when they take at most 2 distinct values, or when they
    take at most :data:`MAX_CLASSES` (50) distinct values and no more than
    half as many as there are samples; otherwise regression. Floats with
    any non-integer (or non-finite) value are regression.

    Parameters
    ----------
    y : array_like, shape (n,) or (n, 1)

    Returns
    -------
    str
        ``"classification"`` or ``"regression"``.

    Raises
    ------
    DatasetError
        If ``y`` is empty or not one-dimensional.
    """
    y = _as_1d_labels(y)
    kind = y.dtype.kind
    if kind in "biu":
        values = y
    elif kind == "f":
        if not np.isfinite(y).all() or not np.array_equal(y, np.round(y)):
            return "regression"
        values = y
    else:
        return "classification"
    k = np.unique(values).size
    if k <= 2 or (k <= MAX_CLASSES and k <= y.size / 2):
        return "classification"
    return "regression"


def train_test_split_indices(n, test_fraction, rng):
    """Shuffle ``range(n)`` and split it into train and test indices.

    Parameters
    ----------
    n : int
        Number of samples.
    test_fraction : float
        Share of samples for the test set, in [0, 1). The test set has
        ``round(n * test_fraction)`` samples, at least 1 and at most n-1 when
        ``test_fraction > 0``; 0 gives an empty test set.
    rng : numpy.random.Generator or int or None
        Source of randomness, or a seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    train_idx : numpy.ndarray of int64, shape (n - n_test,)
    test_idx : numpy.ndarray of int64, shape (n_test,)
        Disjoint, together a permutation of ``range(n)``; each sorted
        ascending (so memory-mapped data is read in order).

    Raises
    ------
    DatasetError
        If ``test_fraction`` is outside [0, 1) or ``n`` is too small.
    """
    n = int(n)
    try:
        frac = float(test_fraction)
    except (TypeError, ValueError):
        raise DatasetError(f"test_fraction must be a number in [0, 1), got {test_fraction!r}") from None
    if not 0.0 <= frac < 1.0:
        raise DatasetError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    if n < 0:
        raise DatasetError(f"n must be non-negative, got {n}")
    if frac > 0 and n < 2:
        raise DatasetError(f"cannot split {n} sample(s) into a train and a test set")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n_test = 0 if frac == 0 else min(max(int(round(n * frac)), 1), n - 1)
    perm = rng.permutation(n).astype(np.int64)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


# ---------------------------------------------------------------------------
# Standardizer
# ---------------------------------------------------------------------------


class Standardizer:
    """Per-column standardisation ``(X - mean) / std``.

    Statistics are float64, computed in row chunks (so a memory-mapped X is
    not copied whole). A column whose standard deviation is 0, or below
    ``1e-10`` times its largest absolute value (a constant column up to
    rounding), gets ``std = 1``.

    Attributes
    ----------
    mean_ : numpy.ndarray of float64, shape (d,)
    scale_ : numpy.ndarray of float64, shape (d,)
        The standard deviations, with 1 for constant columns.
    """

    _REL_TOL = 1e-10

    def __init__(self):
        self.mean_ = None
        self.scale_ = None

    @property
    def n_features(self):
        """int or None: the number of columns seen by :meth:`fit`."""
        return None if self.mean_ is None else self.mean_.shape[0]

    def fit(self, X, chunk_rows=None):
        """Compute the mean and standard deviation of every column.

        Parameters
        ----------
        X : array_like, shape (n, d)
            Numeric, n >= 1, every value finite.
        chunk_rows : int, optional
            Rows per chunk (default: about 8 M values per chunk).

        Returns
        -------
        Standardizer
            ``self``.

        Raises
        ------
        DatasetError
            If X is not a non-empty numeric 2-D array or holds NaN/inf.
        """
        X = self._check(X, fitted=False)
        n, d = X.shape
        if n == 0:
            raise DatasetError("cannot fit a Standardizer on X with 0 rows")
        step = int(chunk_rows) if chunk_rows else max(1, (8 << 20) // max(d, 1))
        count = 0
        mean = np.zeros(d)
        m2 = np.zeros(d)
        amax = np.zeros(d)
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, n, step):   # (an overflow to inf is caught once, below, with its column)
                block = np.asarray(X[start : start + step], dtype=np.float64)
                if not np.isfinite(block).all():
                    r, c = np.argwhere(~np.isfinite(block))[0]
                    raise DatasetError(f"X holds a non-finite value at row {start + r}, column {c}")
                nb = block.shape[0]
                bmean = block.mean(axis=0)
                bm2 = ((block - bmean) ** 2).sum(axis=0)
                np.maximum(amax, np.abs(block).max(axis=0), out=amax)
                delta = bmean - mean
                total = count + nb
                mean = mean + delta * (nb / total)
                m2 = m2 + bm2 + delta**2 * (count * nb / total)
                count = total
            std = np.sqrt(m2 / count)
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):   # sums past float64's range
            c = int(np.argmax(~(np.isfinite(mean) & np.isfinite(std))))
            raise DatasetError(f"X's column {c} holds values too large to standardise in float64 (up to "
                               f"{amax[c]:g} in magnitude): divide the data by a constant first")
        std[std <= self._REL_TOL * amax] = 1.0
        self.mean_, self.scale_ = mean, std
        return self

    def transform(self, X, dtype=np.float64):
        """Standardise X with the fitted statistics.

        Parameters
        ----------
        X : array_like, shape (n, d)
        dtype : numpy dtype, default float64
            Output dtype; the arithmetic is done in this dtype.

        Returns
        -------
        numpy.ndarray of ``dtype``, shape (n, d)
            A new array ``(X - mean_) / scale_``.

        Raises
        ------
        DatasetError
            If not fitted, or X does not have ``n_features`` columns.
        """
        X = self._check(X, fitted=True)
        out = np.array(X, dtype=dtype, copy=True)
        out -= self.mean_.astype(out.dtype)
        out /= self.scale_.astype(out.dtype)
        return out

    def fit_transform(self, X, dtype=np.float64):
        """Fit on X, then transform it.

        Parameters
        ----------
        X : array_like, shape (n, d)
        dtype : numpy dtype, default float64

        Returns
        -------
        numpy.ndarray of ``dtype``, shape (n, d)
        """
        return self.fit(X).transform(X, dtype=dtype)

    def inverse_transform(self, Z, dtype=np.float64):
        """Undo :meth:`transform`: ``Z * scale_ + mean_``.

        Parameters
        ----------
        Z : array_like, shape (n, d)
        dtype : numpy dtype, default float64

        Returns
        -------
        numpy.ndarray of ``dtype``, shape (n, d)
        """
        Z = self._check(Z, fitted=True)
        out = np.array(Z, dtype=dtype, copy=True)
        out *= self.scale_.astype(out.dtype)
        out += self.mean_.astype(out.dtype)
        return out

    def to_dict(self):
        """Return the statistics as JSON-able lists of floats.

        Returns
        -------
        dict
            ``{"mean": [d floats], "std": [d floats]}``.

        Raises
        ------
        DatasetError
            If not fitted.
        """
        if self.mean_ is None:
            raise DatasetError("Standardizer is not fitted; call fit(X) first")
        return {"mean": [float(v) for v in self.mean_], "std": [float(v) for v in self.scale_]}

    @classmethod
    def from_dict(cls, d):
        """Rebuild a fitted Standardizer from :meth:`to_dict`'s output.

        Parameters
        ----------
        d : dict
            With keys ``"mean"`` and ``"std"``: equal-length lists of finite
            floats, every std > 0.

        Returns
        -------
        Standardizer

        Raises
        ------
        ModelFileError
            If keys are missing or the values are malformed (this data comes
            from saved model files).
        """
        if not isinstance(d, dict) or not {"mean", "std"} <= set(d):
            found = choices(d) if isinstance(d, dict) else type(d).__name__
            raise ModelFileError(f"standardizer statistics need keys 'mean' and 'std'; found {found}")
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            std = np.asarray(d["std"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"standardizer statistics must be lists of numbers: {exc}") from None
        if mean.ndim != 1 or std.shape != mean.shape:
            raise ModelFileError(
                f"standardizer 'mean' and 'std' must be equal-length lists, got shapes "
                f"{mean.shape} and {std.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ModelFileError("standardizer statistics must be finite, with every std > 0")
        obj = cls()
        obj.mean_, obj.scale_ = mean, std
        return obj

    def _check(self, X, fitted):
        if fitted and self.mean_ is None:
            raise DatasetError("Standardizer is not fitted; call fit(X) first")
        if not isinstance(X, np.ndarray):
            X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise DatasetError(f"X must be numeric, got dtype {X.dtype}")
        if X.ndim != 2:
            raise DatasetError(f"X must be two-dimensional (n, d), got shape {X.shape}")
        if fitted and X.shape[1] != self.mean_.shape[0]:
            raise DatasetError(
                f"X has {X.shape[1]} columns, the Standardizer was fitted on {self.mean_.shape[0]}"
            )
        return X

    def __repr__(self):
        return f"Standardizer(n_features={self.n_features})"
