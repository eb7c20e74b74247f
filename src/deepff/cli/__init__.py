"""The ``deepff`` command: train, evaluate, predict, summary, gradcheck, datasets, export, kernels, playground.

Every error a user can cause prints one line on stderr and exits with
status 2 (no traceback unless ``--debug``). Ctrl-C during training stops
after the current step, writes a final checkpoint when one was asked for,
and exits with status 130.

Each subcommand is a module of this package with ``add_parser(subparsers)``
and ``run(args)``; :data:`SUBCOMMANDS` lists them, and adding a module's
name there (in :mod:`deepff.cli.parser`) is all it takes to register a new one. The shared pieces:
:mod:`~deepff.cli.parser` (flag types, :func:`build_parser`),
:mod:`~deepff.cli.common` (one-line errors, output, data loading) and
:mod:`~deepff.cli.files` (the files a command writes).
"""

from __future__ import annotations

import os
import sys

from ..errors import DeepffError
from .common import PROG, _drop, _note
from .parser import SUBCOMMANDS, build_parser

__all__ = ["main", "build_parser", "SUBCOMMANDS"]


def main(argv=None):
    """Entry point of the ``deepff`` command.

    Parameters
    ----------
    argv : list of str, optional
        Defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 success, 1 failed check, 2 user error, 130 interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(v in os.environ for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "SLURM_PROCID")) \
            and not getattr(sys.modules.get("deepff.distributed"), "RUNNING", False):   # mpiexec/srun: K ranks
        from ..distributed import run_ranks

        return run_ranks(main, argv)
    debug = "--debug" in argv
    if sys.stdout is None:          # started with stdout closed (``deepff train >&-``)
        _drop("stdout")
    try:
        # No subcommand (``deepff`` or ``deepff --epochs 5``) means train.
        first = next((a for a in argv if a != "--debug"), None)
        if first is None or (first.startswith("-") and first not in ("-h", "--help", "--version")):
            argv = ["train"] + [a for a in argv if a != "--debug"] + (["--debug"] if debug else [])
        args = build_parser().parse_args(argv)
        return args.run(args)
    except KeyboardInterrupt:
        _note(f"{PROG}: interrupted")
        return 130
    except BrokenPipeError:  # e.g. ``deepff predict ... | head``: the reader left, nothing to report
        _drop("stdout")                  # silence the flush at exit
        return 141
    except MemoryError as exc:           # e.g. --hidden 60000,60000: one line, like any other refusal
        if debug:
            raise
        detail = " ".join(str(exc).split())
        _note(f"{PROG}: error: not enough memory" + (f" ({detail})" if detail else "")
              + "; use a smaller network, batch or data set")
        return 2
    except (DeepffError, ValueError, OSError) as exc:
        if debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename:
            message = f"{exc.filename}: {exc.strerror or exc}"
        _note(f"{getattr(exc, 'prog', PROG)}: error: {message}")
        return 2
