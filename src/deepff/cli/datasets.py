"""``deepff datasets``: the built-in data sets, where they are and whether they are there.
"""

from __future__ import annotations

import os

from .common import UsageError, _table


def add_parser(subparsers):
    """Add ``deepff datasets`` and its flags to ``subparsers``."""
    d = subparsers.add_parser("datasets", help="list the built-in datasets, where they are and whether they are there")
    d.add_argument("--data-dir", default=None, help="folder holding an existing MNIST copy")
    d.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args):
    """Run ``deepff datasets``; return its exit status."""
    from ..data import list_datasets

    if args.data_dir is not None and not os.path.isdir(os.path.expanduser(args.data_dir)):
        raise UsageError(f"--data-dir {args.data_dir} is not a folder")
    rows = [("name", "present", "description", "location")]
    for d in list_datasets(args.data_dir):
        rows.append((d["name"], "yes" if d.get("present") else "no", d.get("description", ""),
                     d.get("location", "")))
    print(_table(rows))
    return 0
