"""The argument parser of the ``deepff`` command: the value types of its flags, the flags every
data-reading subcommand shares, and :func:`build_parser`, which asks every subcommand module
for its own parser.
"""

from __future__ import annotations

import argparse

from .._version import __version__
from ..checks import count, positive, real
from ..errors import SpecError
from .common import PROG, UsageError

__all__ = ["SUBCOMMANDS", "build_parser", "add_data_flags"]

#: The subcommand modules, in the order ``deepff --help`` lists them: register a new subcommand (a module
#: with ``add_parser(subparsers)`` and ``run(args)``) by adding its name here: a module of :mod:`deepff.cli`
#: by its short name, one elsewhere (an optional part's own command module) by its full dotted name.
SUBCOMMANDS = ["train", "evaluate", "predict", "summary", "gradcheck", "datasets", "export", "kernels",
               "deepff.playground.command"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit status 2."""

    def error(self, message):
        exc = UsageError(message)
        exc.prog = self.prog
        raise exc


def _int_at_least(low, what):
    """An argparse type: an integer >= low, described as ``what`` in errors."""
    def parse(text):
        try:
            return count("", "value", int(text), low)
        except (ValueError, SpecError):
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}") from None
    return parse


_positive_int = _int_at_least(1, "positive")


_non_negative_int = _int_at_least(0, "non-negative")


_MAX_GRADCHECK_SAMPLES = 10_000   # every parameter costs two passes over them: more checks nothing more


def _gradcheck_samples(text):
    v = _positive_int(text)
    if v > _MAX_GRADCHECK_SAMPLES:
        raise argparse.ArgumentTypeError(f"at most {_MAX_GRADCHECK_SAMPLES} samples (finite differences take two "
                                         f"passes over them per parameter), got {text!r}")
    return v


def _positive_float(text):
    try:
        return positive("", "value", float(text))
    except (ValueError, SpecError):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None


def _fraction(text):
    try:
        return real("", "value", float(text), low=0, high=1, high_open=True)
    except (ValueError, SpecError):
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None


def _delimiter(text):
    delim = {"tab": "\t", "\\t": "\t"}.get(text.lower(), text)
    if len(delim) != 1:
        raise argparse.ArgumentTypeError(f"expected one character (or 'tab'), got {text!r}")
    return delim


def _hidden(text):
    if text.strip().lower() in ("", "none"):
        return []
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers like 256,128, got {text!r}") from None
    try:
        return [positive("", "units", s, integer=True) for s in sizes]
    except SpecError:
        raise argparse.ArgumentTypeError(f"every hidden layer needs at least one unit, got {text!r}") from None


def add_data_flags(p):
    """Add the flags of a subcommand that reads a data set (train, evaluate): where the data is and how
    a table file is read.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("--dataset", default=None,
                   help="digits (default), mnist, or a .csv/.tsv/.npz/.npy file")
    p.add_argument("--data-dir", default=None, help="folder holding an existing MNIST copy")
    p.add_argument("--target", default=None, help="target column of a CSV (name or index)")
    p.add_argument("--delimiter", type=_delimiter, default=None,
                   help="delimiter of a CSV file (default: detected among , ; tab |)")
    p.add_argument("--header", choices=["auto", "yes", "no"], default=None,
                   help="whether a CSV file's first row names its columns (default: auto, detected)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser(commands=None):
    """Return the argparse parser of the ``deepff`` command.

    Every subcommand lives in its own module of :mod:`deepff.cli` with two
    functions: ``add_parser(subparsers)``, which adds its parser (its flags)
    to ``subparsers``, and ``run(args)``, which runs it and returns the exit
    status. Each parser a module adds runs that module's ``run`` and takes
    ``--debug``.

    Parameters
    ----------
    commands : sequence of str, optional
        The subcommand modules of :mod:`deepff.cli`, in the order
        ``deepff --help`` lists them. Default: :data:`SUBCOMMANDS`.

    Returns
    -------
    argparse.ArgumentParser
        Its ``parse_args`` returns a namespace whose ``run`` is the
        subcommand's ``run`` function.
    """
    import importlib

    if commands is None:
        commands = SUBCOMMANDS
    parser = _Parser(prog=PROG, description="Deep feedforward networks on numpy.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in commands:
        module = importlib.import_module(name if "." in name else f"{__package__}.{name}")
        before = set(sub.choices)
        module.add_parser(sub)
        for added in set(sub.choices) - before:
            p = sub.choices[added]
            p.set_defaults(run=module.run)
            if "--debug" not in p._option_string_actions:   # main reads --debug wherever it is given
                p.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser
