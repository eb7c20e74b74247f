"""The built-in data sets (digits, MNIST) by name, and :func:`load_dataset`, which
loads one of them or a data file (through :mod:`deepff.data.tables`) split into
train and test parts.

scikit-learn is imported only when the ``digits`` data set is loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError, choices
from .mnist import MNIST_FILES, _present, cache_dir, load_mnist
from .preprocessing import infer_task, train_test_split_indices
from .tables import _ARRAY_EXTENSIONS, _CSV_EXTENSIONS, load_array_file, load_csv

__all__ = ["DATASETS", "Dataset", "load_digits_dataset", "list_datasets", "load_dataset"]

# ---------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------


def load_digits_dataset():
    """Load scikit-learn's bundled 8x8 handwritten digits (no download).

    Returns
    -------
    X : numpy.ndarray of float64, shape (1797, 64)
        Pixel intensities 0..16, row-major 8x8.
    y : numpy.ndarray of int64, shape (1797,)
        Labels 0..9.

    Raises
    ------
    DatasetError
        If scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DatasetError(
            f"the 'digits' data set needs scikit-learn: pip install 'deepff[sklearn]' ({exc})"
        ) from None
    bunch = load_digits()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


# ---------------------------------------------------------------------------
# Named data sets
# ---------------------------------------------------------------------------

#: Built-in data sets, by name.
DATASETS = {
    "digits": {
        "description": "scikit-learn's 8x8 handwritten digits: 1797 samples, 64 features (0..16), 10 classes",
        "task": "classification",
        "n_features": 64,
        "n_classes": 10,
    },
    "mnist": {
        "description": "MNIST handwritten digits: 60000 train + 10000 test 28x28 images "
        "(784 features scaled to [0, 1]), 10 classes",
        "task": "classification",
        "n_features": 784,
        "n_classes": 10,
    },
}


def list_datasets(data_dir=None):
    """Describe the built-in data sets and whether they are available.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder to look for the MNIST files in (default ``cache_dir()/"mnist"``).

    Returns
    -------
    list of dict
        One per data set, sorted by name, with keys ``name``,
        ``description``, ``task``, ``n_features``, ``n_classes``,
        ``location`` (str) and ``present`` (bool).
    """
    import importlib.util

    mnist_dir = Path(data_dir).expanduser() if data_dir is not None else cache_dir() / "mnist"
    out = []
    for name in sorted(DATASETS):
        info = dict(name=name, **DATASETS[name])
        if name == "mnist":
            info["location"] = str(mnist_dir)
            info["present"] = all(_present(mnist_dir, s) is not None for s in MNIST_FILES)
        else:
            info["location"] = "bundled with scikit-learn"
            info["present"] = importlib.util.find_spec("sklearn") is not None
        out.append(info)
    return out


@dataclass
class Dataset:
    """A data set split into train and test parts.

    Attributes
    ----------
    X_train : numpy.ndarray, shape (n_train, d)
    y_train : numpy.ndarray, shape (n_train,)
    X_test : numpy.ndarray, shape (n_test, d)
    y_test : numpy.ndarray, shape (n_test,)
        Features are not standardised and labels are raw (not encoded).
    task : str
        ``"classification"`` or ``"regression"``.
    feature_names : list of str
        The d feature names.
    target_name : str
    name : str
        The built-in name or the file's name.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    feature_names: list = field(default_factory=list)
    target_name: str = "y"
    name: str = ""

    @property
    def n_features(self):
        """int: the number of feature columns d."""
        return self.X_train.shape[1]


def _pixel_names(side):
    return [f"pixel_{r}_{c}" for r in range(side) for c in range(side)]


def _split(X, y, test_fraction, seed):
    train, test = train_test_split_indices(X.shape[0], test_fraction, seed)
    if test.size == 0:  # test_fraction == 0: keep X itself (a memmap stays mapped)
        return X, y, X[:0], y[:0]
    return X[train], y[train], X[test], y[test]


def load_dataset(name_or_path, data_dir=None, target=None, test_fraction=0.2, seed=0, delimiter=None,
                 header=None):
    """Load a built-in data set or a data file, split into train and test.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        ``"digits"``, ``"mnist"`` (case-insensitive; a name wins over a file
        of the same name), or a path ending in ``.csv``, ``.tsv`` or ``.txt``
        (read with :func:`load_csv`) or ``.npz``/``.npy`` (read with
        :func:`load_array_file`; a ``.npy`` needs ``target``).
    data_dir : str or os.PathLike, optional
        For ``"mnist"``: the folder holding its files (nothing is
        downloaded). Default: the cache folder, downloading if needed.
    target : str or int, optional
        Target column for files (see :func:`load_csv`); not allowed for
        built-in data sets.
    test_fraction : float, default 0.2
        Share of samples held out for testing, in [0, 1); ignored for
        ``"mnist"``, which uses its official 60000/10000 split.
    seed : int, default 0
        Seed of the shuffle before the split.
    delimiter : str, optional
        For CSV files: the delimiter (default: detected, see :func:`load_csv`).
    header : bool, optional
        For CSV files: whether the first row names the columns (default:
        detected, see :func:`load_csv`).

    Returns
    -------
    Dataset
        ``"digits"``: X float64 (n, 64) with values 0..16, y int64.
        ``"mnist"``: X float32 (n, 784) divided by 255, y int64.
        Files: X float64 for CSV (the file's dtype for arrays), y raw.
        With ``test_fraction=0`` the test arrays are empty and X_train is X
        itself (a memory-mapped ``.npy`` stays mapped).

    Raises
    ------
    DatasetError
        For an unknown name or extension (the valid ones are listed), a
        missing file, or any problem reading it.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise DatasetError(f"name_or_path must be a data set name ({choices(DATASETS)}) or a file path, "
                           f"got {type(name_or_path).__name__}")
    key = name_or_path.lower() if isinstance(name_or_path, str) else None
    if key in DATASETS:
        if target is not None:
            raise DatasetError(
                f"a target column (--target, target=) applies to data files only, not to the "
                f"built-in data set {key!r}"
            )
        return _load_builtin(key, data_dir, test_fraction, seed)
    return _load_file(name_or_path, target, test_fraction, seed, delimiter, header)


def _load_builtin(key, data_dir, test_fraction, seed):
    """The built-in data set ``key`` ("digits" or "mnist") as a :class:`Dataset`."""
    if key == "digits":
        X, y = load_digits_dataset()
        Xtr, ytr, Xte, yte = _split(X, y, test_fraction, seed)
        return Dataset(Xtr, ytr, Xte, yte, "classification", _pixel_names(8), "digit", "digits")
    Xtr, ytr, Xte, yte = load_mnist(data_dir=data_dir)
    Xtr = Xtr.astype(np.float32)
    Xtr /= np.float32(255)
    Xte = Xte.astype(np.float32)
    Xte /= np.float32(255)
    return Dataset(Xtr, ytr, Xte, yte, "classification", _pixel_names(28), "digit", "mnist")


def _load_file(name_or_path, target, test_fraction, seed, delimiter, header):
    """A data file (a table of :mod:`deepff.data.tables`) as a :class:`Dataset`."""
    path = Path(name_or_path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in _CSV_EXTENSIONS + _ARRAY_EXTENSIONS:
        raise DatasetError(
            f"unknown data set {str(name_or_path)!r}: valid names are {choices(DATASETS)}, "
            f"or a path to a file ending in {', '.join(_CSV_EXTENSIONS + _ARRAY_EXTENSIONS)}"
        )
    if path.is_dir():
        raise DatasetError(f"{path} is a folder; give the data file itself")
    if path.exists() and not path.is_file():
        raise DatasetError(f"{path} is not a regular file (a pipe, device or socket); deepff reads data sets from "
                           "files it can read twice (a CSV's delimiter and header are detected first)")
    if not path.is_file():
        raise DatasetError(f"data file not found: {path}")
    if suffix in _CSV_EXTENSIONS:
        data = load_csv(path, target=target, delimiter=delimiter, header=header)
        X, y, feature_names, target_name = data.X, data.y, data.feature_names, data.target_name
    else:
        X, y = load_array_file(path, target=target)
        if y is None:
            raise DatasetError(
                f"{path} holds only X; give the index of the target among its {X.shape[1]} columns "
                "(--target on the command line, target= in Python), or save X and y together in a .npz"
            )
        feature_names = [f"x{i}" for i in range(X.shape[1])]
        target_name = "y" if target is None else f"column {int(target) % (X.shape[1] + 1)}"  # -1 = last
        if X.ndim == 2 and X.dtype.kind in "fc" and not np.isfinite(X).all():   # named by the file's rows,
            r, c = np.argwhere(~np.isfinite(X))[0]                      # before the split renumbers them
            raise DatasetError(f"{path}: X holds the non-finite value {X[r, c]} at row {r}, column {c} "
                               "(counting from 0); remove or fill in that sample")
    task = infer_task(y)
    Xtr, ytr, Xte, yte = _split(X, y, test_fraction, seed)
    return Dataset(Xtr, ytr, Xte, yte, task, feature_names, target_name, path.name)
