"""``deepff gradcheck``: backpropagation against finite differences for a config's network.
"""

from __future__ import annotations

import numpy as np

from .common import PROG, _note, _table
from .parser import _gradcheck_samples, _non_negative_int


def add_parser(subparsers):
    """Add ``deepff gradcheck`` and its flags to ``subparsers``."""
    g = subparsers.add_parser("gradcheck", help="check backprop against finite differences")
    g.add_argument("--config", required=True)
    g.add_argument("--samples", type=_gradcheck_samples, default=8)
    g.add_argument("--seed", type=_non_negative_int, default=0)
    g.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args):
    """Run ``deepff gradcheck``; return its exit status.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit status.
    """
    from ..gradcheck import RTOL, gradcheck_details
    from ..model import Network

    net, training = Network.from_config(args.config, dtype="float64", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    X = rng.normal(size=(args.samples, net.n_features))
    k = net.n_outputs
    if net.task == "classification" and not net.multi_label:
        y = rng.integers(0, k, size=args.samples)
    elif net.multi_label:
        y = rng.integers(0, 2, size=(args.samples, k))
    elif net.loss.name == "poisson":
        y = rng.poisson(1.0, size=(args.samples, k))  # counts: the loss takes no negative target
    else:
        y = rng.normal(size=(args.samples, k))
    penalty = None
    if training.get("regularization"):
        from ..spec import parse_regularization

        penalty = parse_regularization(training["regularization"])
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        details = gradcheck_details(net, X, y, penalty=penalty)
    for w in caught:                 # e.g. a pre-activation on a ReLU kink: the check cannot judge it
        _note(f"{PROG}: warning: {w.message}")
    by_layer = {}                    # the worst array of each layer
    for name, d in details.items():
        layer = name.split(".")[0]
        if layer not in by_layer or d["error"] > by_layer[layer]["error"]:
            by_layer[layer] = d
    rows = [("layer", "worst relative error", "status")]
    for layer, d in by_layer.items():
        status = "FAIL" if d["error"] >= RTOL else "ok" if d["decided_by"] == "rtol" else \
            f"ok (zero gradient: difference {d['rms_diff']:.1e} within atol {d['atol']:.1e})"
        rows.append((layer, f"{d['error']:.3e}", status))
    print(_table(rows))
    worst = max(d["error"] for d in details.values())
    print(f"worst relative error: {worst:.3e} ({'pass' if worst < RTOL else 'FAIL'}, threshold {RTOL:.0e})")
    return 0 if worst < RTOL else 1
