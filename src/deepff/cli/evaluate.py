"""``deepff evaluate``: the metrics of a saved model on its held-out test split or on other data.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from ..data.tables import columns_named
from ..errors import InputError
from .common import (
    PROG,
    _encode,
    _is_builtin,
    _load,
    _moved_source,
    _note,
    _preprocess,
    _recorded_path,
    _sha256,
    _table,
)
from .parser import add_data_flags


def _is_training_data(name, meta, model):
    """Whether ``name`` is the data set ``model`` was trained on.

    A built-in data set is recognised by its name, a file by the SHA-256 the
    model recorded. Models saved before deepff recorded it fall back to the
    file name, and say so.
    """
    trained_on = meta.get("dataset")
    if trained_on is None:
        return False
    if _is_builtin(name) or _is_builtin(trained_on):
        return str(name).lower() == str(trained_on).lower()
    if meta.get("dataset_sha256") is not None:
        return os.path.isfile(os.path.expanduser(name)) and _sha256(name) == meta["dataset_sha256"]
    same = os.path.basename(str(name)).lower() == str(trained_on).lower()
    if same:
        _note(f"{PROG}: {model} records no digest of its training file; taking {name} for it because the "
              "names match")
    return same


def _training_target(meta):
    """The target column the model was trained with (models before deepff recorded it: from its name)."""
    if "target" in meta:
        return meta["target"]
    name = meta.get("target_name")
    if name is None or (str(meta.get("dataset", "")).lower().endswith(".npz") and name == "y"):
        return None  # an .npz holding its own y
    if str(name).startswith("column ") and str(meta.get("dataset", "")).lower().endswith(".npy"):
        return str(name)[len("column "):]
    return str(name)


def _model_columns(meta, data, model):
    """Positions of the model's features among the data's feature columns, matched by name as
    ``deepff predict`` matches them; None: take the columns in order (the names do not cover them).

    A file whose header names every feature the model was trained on is read by name, in any
    column order; its target column may not be one of those features.
    """
    wanted = meta.get("feature_names")
    names = [str(nm) for nm in (data.feature_names or [])]
    if not isinstance(wanted, list) or not wanted:
        return None
    wanted = [str(nm) for nm in wanted]
    if _positional_names(wanted) or _positional_names(names + [str(data.target_name)]):
        return None     # col0, col1, ... (no header) or x0, x1, ... (arrays): names made from positions
    if data.target_name in wanted and data.target_name not in names:
        trained = meta.get("target_name")
        raise InputError(f"the target column {data.target_name!r} is one of the features {model} was trained on"
                         + (f"; its target was {trained!r}" if trained else "")
                         + ": give the model's target with --target")
    cols = columns_named(wanted, names, data.name)
    return None if cols == list(range(len(names))) else cols


def _positional_names(names):
    """Whether ``names`` are the ones deepff makes up for columns without a header (col3, x3)."""
    return all(re.fullmatch(r"(col|x)\d+", nm) for nm in names)


def add_parser(subparsers):
    """Add ``deepff evaluate`` and its flags to ``subparsers``."""
    e = subparsers.add_parser("evaluate", help="metrics of a saved model on a dataset")
    add_data_flags(e)
    e.add_argument("--model", required=True)
    e.add_argument("--json", action="store_true", help="machine-readable output")


def run(args):
    """Run ``deepff evaluate``; return its exit status."""
    from ..io import load
    from ..metrics import classification_report, regression_report

    net = load(args.model)
    meta = net.metadata if isinstance(net.metadata, dict) else {}
    name = args.dataset or _moved_source(meta.get("dataset_source"), args.model) \
        or meta.get("dataset") or "digits"
    args.dataset = str(name)
    # The data set the model was trained on: re-create its train/test split and score the held-out part.
    same = _is_training_data(args.dataset, meta, args.model)
    data_dir = _recorded_path(meta.get("data_dir"), args.model)
    if args.data_dir is None and same and args.dataset.lower() == "mnist" and isinstance(data_dir, str) \
            and os.path.isdir(data_dir):
        args.data_dir = data_dir   # the MNIST copy the model was trained from
    seed = meta.get("seed", 0) if same else 0
    test_fraction = meta.get("test_fraction", 0.2) if same else 0.0
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0 or isinstance(test_fraction, bool) \
            or not isinstance(test_fraction, (int, float)) or not 0 <= test_fraction < 1:
        raise InputError(f"{args.model} records the split as seed {seed!r}, test fraction {test_fraction!r}, "
                         "which does not describe a split (an edited file?); deepff cannot tell its test "
                         "samples apart")
    changed = not same and not _is_builtin(args.dataset) and isinstance(meta.get("dataset_source"), str) \
        and os.path.abspath(os.path.expanduser(args.dataset)) == _recorded_path(meta["dataset_source"], args.model) \
        and os.path.isfile(os.path.expanduser(args.dataset))     # (a missing file is reported by _load)
    if changed:
        _note(f"{PROG}: {args.dataset} has changed since {args.model} was trained (its SHA-256 differs), so the "
              "test split cannot be re-created: scoring all its rows, training rows included")
    if (same or changed) and not _is_builtin(args.dataset):   # read the file as training read it
        if args.target is None:
            args.target = _training_target(meta)
        if args.delimiter is None:
            args.delimiter = meta.get("delimiter")
        if args.header is None:
            args.header = meta.get("header")
    data = _load(args, seed=seed, test_fraction=test_fraction)
    on_test = len(data.X_test) > 0
    X = data.X_test if on_test else data.X_train
    y = data.y_test if on_test else data.y_train
    cols = _model_columns(meta, data, args.model)
    if cols is not None:
        X = X[:, cols]
    if X.shape[1] != net.n_features:
        raise InputError(f"the data has {X.shape[1]} features, but the model expects {net.n_features}")
    Xp = _preprocess(X, net.preprocessing, net.dtype)
    if net.task == "classification":
        classes = net.classes or list(range(net.n_outputs))
        yc = _encode(np.asarray(y), classes)
        rep = classification_report(yc, net.predict(Xp), len(classes))
        rep["classes"] = classes
    else:
        try:
            y = np.asarray(y, dtype=np.float64)
        except ValueError:
            raise InputError(f"{args.model} is a regression model, but the target column {data.target_name!r} "
                             "holds non-numeric values; give its numeric target with --target") from None
        rep = regression_report(y, net.predict(Xp))
    rep["n_samples"] = int(X.shape[0])
    rep["dataset"] = data.name
    rep["split"] = "test" if on_test else "all"
    if args.json:
        print(json.dumps(rep))
        return 0
    _print_report(rep, net.task, on_test, test_fraction, seed)
    return 0


def _print_report(rep, task, on_test, test_fraction, seed):
    """Print the metrics of ``deepff evaluate`` as tables: per class and the confusion matrix, or mse/mae/r2."""
    if on_test:
        where = "the held-out test split" + (f" (test fraction {test_fraction:g}, seed {seed})"
                                             if rep["dataset"] != "mnist" else " (official)")
    else:
        where = "all samples"
    print(f"{rep['dataset']}: {rep['n_samples']} samples, {where}")
    if task == "classification":
        rows = [("class", "precision", "recall", "f1", "support")]
        for i, c in enumerate(rep["classes"]):
            rows.append((str(c), f"{rep['precision'][i]:.4f}", f"{rep['recall'][i]:.4f}",
                         f"{rep['f1'][i]:.4f}", str(rep["support"][i])))
        print(_table(rows))
        print("confusion matrix (rows: true class, columns: predicted):")
        names = [str(c) for c in rep["classes"]]
        print(_table([["true\\pred"] + names] + [[names[i]] + [str(v) for v in row]
                                                  for i, row in enumerate(rep["confusion_matrix"])]))
        print(f"accuracy: {100 * rep['accuracy']:.2f}%")
    else:
        print(_table([("metric", "value")] + [(k, f"{rep[k]:.6g}") for k in ("mse", "mae", "r2")]))
