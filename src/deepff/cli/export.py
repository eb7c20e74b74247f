"""``deepff export MODEL.npz --output model.onnx [--opset N] [--verify]``: a saved model as ONNX.

The graph takes the same raw features as ``deepff predict`` (the stored
standardisation is part of it). ``--verify`` runs the file in ONNX Runtime on
the model's held-out test data when the model file records a data set that
can be found again (else on 1,000 synthetic rows around the training data's
mean) and prints the largest difference from deepff's own predictions.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from ..errors import InputError

__all__ = ["add_parser", "run"]

_SYNTHETIC_ROWS = 1000


def _opset(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer opset such as 17, got {text!r}") from None


def add_parser(subparsers):
    """Add the ``export`` subcommand.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``deepff`` parser's subcommands.

    Returns
    -------
    argparse.ArgumentParser
    """
    p = subparsers.add_parser("export", help="write a saved model as ONNX (for onnxruntime and other runtimes)")
    p.add_argument("model", help="a model file written by deepff train (.npz)")
    p.add_argument("--output", required=True, help="the ONNX file to write (.onnx)")
    p.add_argument("--opset", type=_opset, default=None, help="ONNX operator set (default 17)")
    p.add_argument("--verify", action="store_true",
                   help="run the export in onnxruntime and compare it with deepff's predictions")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _check_output(output, model):
    from ..io import check_writable

    if not output.lower().endswith(".onnx"):
        raise InputError(f"--output must end in .onnx, got {output!r}")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise InputError(f"--output: folder {folder!r} does not exist")
    if os.path.exists(output) and os.path.samefile(output, model):
        raise InputError(f"--output {output} is the model file itself; choose another --output")
    if os.path.isfile(output) and not _written_by_deepff(output):
        raise InputError(f"--output {output} exists and is not an ONNX file written by deepff; deepff will not "
                         "replace it: remove it or choose another --output")
    try:
        check_writable(output, probe=True)
    except OSError as exc:
        raise InputError(f"--output {output}: {exc.strerror}") from None


def _written_by_deepff(path):
    """Whether ``path`` holds an ONNX model whose producer is deepff (the only kind export replaces)."""
    from ..onnx import _require

    onnx = _require("onnx")
    try:
        return onnx.load(path, load_external_data=False).producer_name == "deepff"
    except Exception:  # noqa: BLE001 - not protobuf, not ONNX: not ours
        return False


def _tolerance(net):
    """How far onnxruntime may be from deepff: float32 rounding, or float64's (GELU: float32's erf)."""
    if np.dtype(net.dtype) == np.float32:
        return 1e-5
    return 1e-6 if any(getattr(layer.activation, "name", "") == "gelu" for layer in net.layers) else 1e-9


def _verification_data(net, model_path):
    """Raw features to verify on: the recorded test split, else synthetic rows; and what they are."""
    from .common import _moved_source, _recorded_path

    meta = net.metadata if isinstance(getattr(net, "metadata", None), dict) else {}
    name = _moved_source(meta.get("dataset_source"), model_path) or meta.get("dataset")
    data_dir = _recorded_path(meta.get("data_dir"), model_path)    # (recorded relative to the model's folder)
    if str(name).lower() == "mnist" and not data_dir:
        name = None                          # verifying must not download MNIST
    if name:
        from ..data import load_dataset

        header = {"yes": True, "no": False}.get(meta.get("header"))
        try:
            data = load_dataset(name, data_dir=data_dir, target=meta.get("target"),
                                test_fraction=meta.get("test_fraction") or 0.2, seed=meta.get("seed") or 0,
                                delimiter=meta.get("delimiter"), header=header)
        except (ValueError, OSError):        # moved or missing: fall back to synthetic rows
            data = None
        if data is not None and len(data.X_test) and data.X_test.shape[1] == net.n_features:
            return np.asarray(data.X_test), f"the {len(data.X_test)} test rows of {data.name}"
    rng = np.random.default_rng(0)
    pre = getattr(net, "preprocessing", None) or {}
    mean = np.asarray(pre.get("mean", np.zeros(net.n_features)), dtype=np.float64)
    std = np.asarray(pre.get("std", np.ones(net.n_features)), dtype=np.float64)
    X = mean + std * rng.standard_normal((_SYNTHETIC_ROWS, net.n_features))
    return X, f"{_SYNTHETIC_ROWS} synthetic rows (the training data could not be found)"


def run(args):
    """Run ``deepff export``.

    Parameters
    ----------
    args : argparse.Namespace
        ``model``, ``output``, ``opset`` and ``verify``.

    Returns
    -------
    int
        0, or 1 when ``--verify`` finds a difference beyond the tolerance.
    """
    from ..io import load
    from ..onnx import DEFAULT_OPSET, export_onnx, verify_onnx

    _check_output(args.output, args.model)
    net = load(args.model)
    proto = export_onnx(net, args.output, opset=args.opset)
    opset = args.opset or DEFAULT_OPSET
    print(f"deepff: wrote {args.output} (opset {opset}, {os.path.getsize(args.output)} bytes); "
          f"input 'X' ({net.n_features} raw features), outputs {', '.join(o.name for o in proto.graph.output)}")
    if not args.verify:
        return 0
    X, what = _verification_data(net, args.model)
    report = verify_onnx(net, args.output, X)
    tol = _tolerance(net)
    kind = "probabilities" if net.task == "classification" else "values"
    print(f"deepff: onnx.checker.check_model(full_check=True) passed; onnxruntime on {what}: "
          f"max |difference| of {kind} {report['max_abs_diff']:.3e} (tolerance {tol:g})")
    ok = report["max_abs_diff"] <= tol
    if report["labels_equal"] is not None:
        print(f"deepff: labels {'identical' if report['labels_equal'] else 'DIFFER'}")
        ok = ok and report["labels_equal"]
    print(f"deepff: verification {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1
