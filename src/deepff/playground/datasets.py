"""The playground's data: two-dimensional sets to learn, input features, and uploaded tables.

Every set lives on the square [-6, 6]^2 and is drawn from a seeded generator,
so the same (name, n_samples, noise, seed) always gives the same points::

    >>> from deepff.playground.datasets import make_data
    >>> data = make_data("spiral", n_samples=200, noise=0.1, train_fraction=0.5, seed=0)
    >>> data.X_train.shape, data.y_train.shape, data.task
    ((100, 2), (100,), 'classification')

Classification sets give integer labels 0..k-1; regression sets give real
targets in about [-1, 1]. ``noise`` (0 to 0.5) moves each point by Gaussian
noise of ``noise`` times the set's scale (classification) or adds it to the
target (regression). The train/test split is a seeded permutation.

An uploaded CSV is read by the same reader, with the same errors, as the
``deepff`` command's ``--dataset file.csv`` (:func:`load_table`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DatasetError

__all__ = ["DATASETS", "FEATURES", "PlaygroundData", "make_data", "make_points", "features", "load_table",
           "split_table"]

#: name -> (task, number of classes or None, what it shows)
DATASETS = {
    "circles": ("classification", 2, "a disc inside a ring: needs a curved boundary"),
    "xor": ("classification", 2, "opposite quadrants share a class: no single line separates them"),
    "gauss": ("classification", 2, "two Gaussian blobs: one line is enough"),
    "spiral": ("classification", 2, "two interleaved spiral arms: the hardest two-class set"),
    "moons": ("classification", 2, "two interlocking half circles"),
    "blobs": ("classification", 4, "four Gaussian blobs, one class each (softmax)"),
    "plane": ("regression", None, "a tilted plane: y = (x1 + x2) / 12"),
    "ripple": ("regression", None, "a ripple: y = sin(x1 / 2) cos(x2 / 2)"),
}

#: the input features the first layer can see, computed from (x1, x2)
FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin x1", "sin x2")

_FEATURE_FUNCS = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1^2": lambda x1, x2: x1 * x1,
    "x2^2": lambda x1, x2: x2 * x2,
    "x1*x2": lambda x1, x2: x1 * x2,
    "sin x1": lambda x1, x2: np.sin(x1),
    "sin x2": lambda x1, x2: np.sin(x2),
}

#: half the side of the square the sets live on
EXTENT = 6.0


@dataclass
class PlaygroundData:
    """A split data set as the playground trains on it.

    Attributes
    ----------
    points_train, points_test : ndarray of shape (n_train, 2), (n_test, 2)
        The (x1, x2) coordinates, for plotting.
    X_train, X_test : ndarray of shape (n_train, d), (n_test, d)
        The chosen input features of those points.
    y_train, y_test : ndarray of shape (n_train,), (n_test,)
        Class labels 0..k-1 (int64) or real targets (float64).
    task : {"classification", "regression"}
    n_classes : int or None
    classes : list or None
        Class names of an uploaded table (None for the built-in sets).
    """

    points_train: np.ndarray
    points_test: np.ndarray
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    task: str
    n_classes: int | None
    classes: list | None = None


def _choice(name, value, valid):
    if value not in valid:
        raise DatasetError(f"unknown {name} {value!r}; valid choices: {', '.join(map(repr, valid))}")
    return value


def make_points(name, n_samples, noise, rng):
    """Draw ``n_samples`` points of set ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    n_samples : int
    noise : float
        In [0, 0.5].
    rng : numpy.random.Generator

    Returns
    -------
    P : ndarray of shape (n_samples, 2)
        Coordinates (x1, x2).
    y : ndarray of shape (n_samples,)
        Labels (int64) or targets (float64).
    """
    _choice("dataset", name, tuple(DATASETS))
    n = int(n_samples)
    half = n // 2
    labels = np.repeat([0, 1], [half, n - half])
    if name == "circles":
        r = np.where(labels == 0, rng.uniform(0.0, 2.5, n), rng.uniform(3.5, 5.0, n))
        t = rng.uniform(0, 2 * np.pi, n)
        P = np.column_stack([r * np.cos(t), r * np.sin(t)]) + rng.normal(0, noise * 2.5, (n, 2))
        return P, labels
    if name == "xor":
        P = rng.uniform(-5, 5, (n, 2))
        P += np.sign(P) * 0.3                       # keep the points off the axes
        y = (P[:, 0] * P[:, 1] > 0).astype(np.int64)
        return P + rng.normal(0, noise * 2.5, (n, 2)), y
    if name == "gauss":
        centre = np.where(labels[:, None] == 0, 2.0, -2.0)
        return centre + rng.normal(0, 1.0 + 2.0 * noise, (n, 2)), labels
    if name == "spiral":
        s = rng.uniform(0, 1, n)
        r = 5.0 * s
        t = 1.75 * 2 * np.pi * s + np.pi * labels
        P = np.column_stack([r * np.sin(t), r * np.cos(t)]) + rng.normal(0, noise * 1.5, (n, 2))
        return P, labels
    if name == "moons":
        t = rng.uniform(0, np.pi, n)
        upper = np.column_stack([np.cos(t), np.sin(t)])
        lower = np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)])
        P = np.where(labels[:, None] == 0, upper, lower)
        P = (P - [0.5, 0.25]) * 3.0 + rng.normal(0, noise * 2.0, (n, 2))
        return P, labels
    if name == "blobs":
        k = DATASETS["blobs"][1]
        y = np.arange(n) % k
        angles = 2 * np.pi * y / k + np.pi / 4
        centre = 3.5 * np.column_stack([np.cos(angles), np.sin(angles)])
        return centre + rng.normal(0, 0.9 + 2.0 * noise, (n, 2)), y.astype(np.int64)
    P = rng.uniform(-EXTENT, EXTENT, (n, 2))
    if name == "plane":
        y = (P[:, 0] + P[:, 1]) / 12.0
    else:
        y = np.sin(P[:, 0] / 2) * np.cos(P[:, 1] / 2)
    return P, y + rng.normal(0, noise, n)


def features(P, names):
    """The input features ``names`` of points P.

    Parameters
    ----------
    P : ndarray of shape (n, 2)
        Coordinates (x1, x2).
    names : list of str
        Some of :data:`FEATURES`, in the order the network sees them.

    Returns
    -------
    ndarray of shape (n, len(names))
    """
    if not names:
        raise DatasetError(f"choose at least one input feature; valid choices: {', '.join(FEATURES)}")
    for name in names:
        _choice("feature", name, FEATURES)
    x1, x2 = P[:, 0], P[:, 1]
    return np.column_stack([_FEATURE_FUNCS[name](x1, x2) for name in names]).astype(np.float64)


def _split(P, y, train_fraction, rng, task, n_classes, feature_names, classes=None):
    n = P.shape[0]
    n_train = min(n - 1, max(1, int(round(train_fraction * n))))
    order = rng.permutation(n)
    tr, te = np.sort(order[:n_train]), np.sort(order[n_train:])
    return PlaygroundData(P[tr], P[te], features(P[tr], feature_names), features(P[te], feature_names),
                          y[tr], y[te], task, n_classes, classes)


def make_data(name, n_samples=500, noise=0.0, train_fraction=0.5, seed=0, features=("x1", "x2")):  # noqa: A002
    """Draw a built-in set and split it into training and test data.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    n_samples : int, default 500
    noise : float, default 0.0
    train_fraction : float, default 0.5
        Share of the points used for training.
    seed : int, default 0
        Fixes the points and the split.
    features : sequence of str, default ("x1", "x2")
        Input features (see :data:`FEATURES`).

    Returns
    -------
    PlaygroundData
    """
    task, n_classes, _ = DATASETS[_choice("dataset", name, tuple(DATASETS))]
    points_rng, split_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    P, y = make_points(name, n_samples, noise, points_rng)
    return _split(P, y, train_fraction, split_rng, task, n_classes, list(features))


def load_table(path):
    """Read a CSV of two feature columns and a target, as the ``deepff`` command reads one.

    The one place the playground reads a table: it calls the reader of
    ``deepff train --dataset file.csv``, so an upload gets that reader's
    checks and messages.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    CSVData
        ``X`` of shape (n, 2), ``y`` of shape (n,).
    """
    from ..data import load_csv

    table = load_csv(path)
    if table.X.shape[1] != 2:
        raise DatasetError(f"the playground draws two feature columns (x1, x2) and a target, but this file has "
                           f"{table.X.shape[1]} feature column(s): {', '.join(table.feature_names)}")
    return table


def split_table(table, train_fraction=0.5, seed=0, features=("x1", "x2"), task=None):  # noqa: A002
    """Split an uploaded table as :func:`make_data` splits a built-in set.

    Parameters
    ----------
    table : CSVData
        From :func:`load_table`.
    train_fraction : float, default 0.5
    seed : int, default 0
    features : sequence of str, default ("x1", "x2")
    task : {"classification", "regression"}, optional
        Default: classification for text labels or at most 10 distinct
        integers, regression otherwise.

    Returns
    -------
    PlaygroundData
    """
    from ..data import encode_labels

    y = table.y
    if task is None:
        task = "classification" if y.dtype.kind in "USO" or (y.dtype.kind in "iub" and
                                                            np.unique(y).size <= 10) else "regression"
    _choice("task", task, ("classification", "regression"))
    classes = n_classes = None
    if task == "classification":
        codes, names = encode_labels(y)
        if names.size < 2:
            raise DatasetError(f"classification needs at least two classes in column {table.target_name!r}")
        if names.size > 10:
            raise DatasetError(f"column {table.target_name!r} holds {names.size} classes; the playground draws "
                               "at most 10")
        y, n_classes, classes = codes, int(names.size), [c.item() if hasattr(c, "item") else c for c in names]
    elif y.dtype.kind not in "iuf":
        raise DatasetError(f"regression needs a numeric target, but column {table.target_name!r} holds text")
    else:
        y = y.astype(np.float64)
    if table.X.shape[0] < 4:
        raise DatasetError(f"the table has {table.X.shape[0]} rows; the playground needs at least 4")
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    return _split(np.asarray(table.X, dtype=np.float64), y, train_fraction, rng, task, n_classes,
                  list(features), classes)
