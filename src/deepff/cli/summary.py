"""``deepff summary``: the layer table of a config or a saved model.
"""

from __future__ import annotations

from .common import UsageError
from .parser import _positive_int


def add_parser(subparsers):
    """Add ``deepff summary`` and its flags to ``subparsers``."""
    s = subparsers.add_parser("summary", help="layer table with the shapes of W, b, a and h")
    s.add_argument("--config", help="config file with the layers")
    s.add_argument("--model", help="or a saved model")
    s.add_argument("--batch-size", type=_positive_int, default=32)
    s.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args):
    """Run ``deepff summary``; return its exit status."""
    from ..io import load
    from ..model import Network

    if args.model and args.config:
        raise UsageError("summary: give --model FILE or --config FILE, not both")
    if args.model:
        net = load(args.model)
    elif args.config:
        net, _ = Network.from_config(args.config)
    else:
        raise UsageError("summary: give --config FILE or --model FILE")
    print(net.summary(batch_size=args.batch_size))
    return 0
