"""``deepff predict``: predictions (labels, values or class probabilities) of a saved model.
"""

from __future__ import annotations

import csv
import io
import os
import sys

import numpy as np

from ..errors import InputError
from .common import PROG, UsageError, _note, _preprocess
from .evaluate import _columns_named
from .files import _check_files, _check_output_path


def _read_features(path, n_features, feature_names=None):
    """Read the feature matrix of ``deepff predict`` from a CSV/TSV/TXT or .npy file.

    A CSV whose header names every feature the model was trained on (e.g.
    the training file itself, target column included) has those columns
    picked by name; otherwise every column is a feature, in order.
    """
    ext = os.path.splitext(path)[1].lower()
    if os.path.isdir(path):
        raise InputError(f"--input {path} is a folder; give the file of feature rows itself")
    if not os.path.isfile(path):
        raise InputError(f"input file not found: {path}")
    if ext == ".npy":
        try:
            X = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise InputError(f"cannot read {path} as a .npy array: {' '.join(str(exc).split())}") from None
        if X.dtype.kind not in "biuf":
            raise InputError(f"{path} must hold numbers, got an array of dtype {X.dtype}")
        if X.ndim == 1:
            X = X.reshape(-1, 1) if n_features == 1 else X.reshape(1, -1)
    elif ext in (".csv", ".tsv", ".txt"):
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                text = fh.read()
        except UnicodeDecodeError:
            raise InputError(f"{path} is not valid UTF-8 text") from None
        if not text.strip():
            raise InputError(f"{path} is empty")
        if ext == ".tsv":
            delim = "\t"
        else:
            try:
                delim = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
            except csv.Error:
                delim = ","
        try:
            rows = [[c.strip() for c in r] for r in csv.reader(text.splitlines(), delimiter=delim)
                    if r and any(c.strip() for c in r)]
        except csv.Error as exc:
            raise InputError(f"cannot parse {path}: {exc}") from None
        names, positions = None, None    # for messages: the columns read, by header name and file position
        named = bool(feature_names) and rows and set(map(str, feature_names)) <= set(rows[0])
        if rows and (named or _is_header(rows[0])):    # named: the model's columns, even "400", "2019"
            header, rows = rows[0], rows[1:]
            names = header
            cols = _columns_named(feature_names, header, path) if feature_names else None
            if cols is not None:
                rows = [[r[c] if c < len(r) else "" for c in cols] for r in rows]
                names, positions = list(feature_names), cols
        if not rows:
            raise InputError(f"{path} holds no data rows")
        from ..data import is_plain_number

        X = []
        for i, row in enumerate(rows, start=1):
            joined = "".join(row)   # float() also takes "1_000" and other scripts' digits: only a row
            try:                    # holding "_" or non-ASCII text is read cell by cell
                if "_" in joined or not joined.isascii():
                    if not all(map(is_plain_number, row)):
                        raise ValueError
                X.append([float(v) for v in row])
            except ValueError:
                j = next(j for j, v in enumerate(row) if not is_plain_number(v))
                where = f"column {(positions[j] if positions else j) + 1}"
                if names and j < len(names):
                    where += f" ({names[j]!r})"
                what = "is empty" if not row[j] else f"holds the non-numeric value {row[j]!r}"
                if _is_float(row[j]):
                    what += " (a number is written with the digits 0-9, an optional sign, point and exponent)"
                raise InputError(f"{path}: data row {i}, {where}, {what}") from None
            if len(row) != len(X[0]):
                raise InputError(f"{path}: data row {i} has {len(row)} columns, the first {len(X[0])}")
        X = np.array(X, dtype=np.float64)
    else:
        raise InputError(f"--input must be a .csv, .tsv, .txt or .npy file, got {path!r}")
    if X.ndim != 2:
        raise InputError(f"{path}: expected a 2-D array of features, got shape {X.shape}")
    if X.shape[0] == 0:
        raise InputError(f"{path} holds no samples")
    if X.shape[1] != n_features:
        raise InputError(f"{path} has {X.shape[1]} features per row, but the model expects {n_features}")
    if not np.isfinite(X.astype(np.float64)).all():
        raise InputError(f"{path} contains NaN or infinity")
    return X


def _is_float(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


def _is_header(row):
    """A first CSV row is a header when none of its cells is a number (a data row with one bad
    cell is reported, not skipped), or when it is 0, 1, ..., d-1 (pandas' header for a
    DataFrame of a numpy array)."""
    return not any(_is_float(v) for v in row) or row == [str(i) for i in range(len(row))]


def add_parser(subparsers):
    """Add ``deepff predict`` and its flags to ``subparsers``."""
    p = subparsers.add_parser("predict", help="predict with a saved model")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True, help="CSV (features, optional header) or .npy")
    p.add_argument("--output", help="CSV or .npy (default: CSV on stdout)")
    p.add_argument("--proba", action="store_true", help="class probabilities instead of labels")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args):
    """Run ``deepff predict``; return its exit status."""
    from ..io import atomic_write, load

    net = load(args.model)
    if args.output is not None:
        _check_output_path(args.output, "--output", (".csv", ".npy"))
        if args.output.lower().endswith(".npy") and os.path.exists(args.output):
            raise UsageError(f"--output {args.output} exists, and a .npy file does not say what wrote it, so deepff "
                             "never replaces one: remove it or choose another --output")
        kind = ("predictions", net) if args.output.lower().endswith(".csv") else None
        replacing = _check_files([("--output", args.output, kind)], [("--model", args.model), ("--input", args.input)])
    meta = net.metadata if isinstance(net.metadata, dict) else {}
    names = meta.get("feature_names") if isinstance(meta.get("feature_names"), list) else None
    X = _read_features(args.input, net.n_features, names)
    if meta.get("dataset") == "mnist" and X.max() > 1.0:   # raw 0..255 pixels: the predictions would be noise
        _note(f"{PROG}: warning: {args.input} holds values up to {X.max():g}, but this model was trained on "
              "MNIST pixels scaled to [0, 1]: divide them by 255 first")
    Xp = _preprocess(X, net.preprocessing, net.dtype)
    if args.proba:
        if net.task != "classification":
            raise UsageError("--proba needs a classification model")
        out = net.predict_proba(Xp)
        classes = net.classes or list(range(net.n_outputs))
        if out.shape[1] == 1 and len(classes) == 2:  # one sigmoid unit: P(second class)
            out = np.hstack([1 - out, out])
        header = [f"p_{c}" for c in classes]
    else:
        out = net.predict(Xp)
        if net.task == "classification" and net.classes and out.ndim == 1:
            out = np.asarray(net.classes, dtype=object)[out]
        header = ["prediction"] if out.ndim == 1 else [f"y{i}" for i in range(out.shape[1])]
    if args.output and args.output.lower().endswith(".npy"):
        arr = out
        if arr.dtype == object:  # class labels: int64, float64 or str as the labels are
            arr = np.asarray(arr.tolist())
            if arr.dtype.kind not in "biufU":
                arr = arr.astype(str)
        atomic_write(args.output, lambda fh: np.save(fh, arr, allow_pickle=False))
        return 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")    # quotes a label holding a comma or a quote
    writer.writerow(header)
    writer.writerows([_fmt(v) for v in row] for row in out.reshape(len(out), -1))
    text = buffer.getvalue()
    if args.output:
        for note in replacing:
            _note(note)
        atomic_write(args.output, lambda fh: fh.write(text.encode("utf-8")))
    else:
        sys.stdout.write(text)
    return 0


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v)
