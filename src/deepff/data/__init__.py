"""Data: where the numbers a network learns from come from.

- :mod:`deepff.data.mnist`: MNIST's IDX files, the cache folder and a verified download;
- :mod:`deepff.data.tables`: the one reader of tables (.csv/.tsv/.txt text and
  .npy/.npz arrays) that ``deepff train``, ``evaluate`` and ``predict`` share;
- :mod:`deepff.data.preprocessing`: label encoding, task inference, the seeded
  train/test split and :class:`Standardizer`;
- :mod:`deepff.data.catalog`: the built-in data sets by name and :func:`load_dataset`.

Every problem a user can cause (a missing or corrupt file, a bad cell, an
unknown column or data set name) raises :class:`~deepff.errors.DatasetError`,
a :class:`ValueError`, whose message names the file, column, row or value at
fault and the valid choices.

Only numpy and the standard library are imported here; scikit-learn is
imported when the ``digits`` data set is loaded and :mod:`urllib.request`
when something is downloaded.
"""

from ..validation import is_plain_number
from .catalog import DATASETS, Dataset, list_datasets, load_dataset, load_digits_dataset
from .mnist import MNIST_FILES, MNIST_MIRRORS, MNIST_SHA256, cache_dir, download_mnist, load_mnist, read_idx
from .preprocessing import MAX_CLASSES, Standardizer, encode_labels, infer_task, train_test_split_indices
from .tables import CSVData, load_array_file, load_csv

__all__ = [
    "MNIST_FILES",
    "MNIST_SHA256",
    "MNIST_MIRRORS",
    "MAX_CLASSES",
    "DATASETS",
    "CSVData",
    "Dataset",
    "Standardizer",
    "read_idx",
    "is_plain_number",
    "cache_dir",
    "download_mnist",
    "load_mnist",
    "load_digits_dataset",
    "load_csv",
    "encode_labels",
    "load_array_file",
    "infer_task",
    "train_test_split_indices",
    "list_datasets",
    "load_dataset",
]
