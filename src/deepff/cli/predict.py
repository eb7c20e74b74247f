"""``deepff predict``: predictions (labels, values or class probabilities) of a saved model.
"""

from __future__ import annotations

import csv
import io
import os
import sys

import numpy as np

from ..data.tables import read_features
from .common import PROG, UsageError, _note, _preprocess
from .files import _check_files, _check_output_path


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
    X = read_features(args.input, net.n_features, names)
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
