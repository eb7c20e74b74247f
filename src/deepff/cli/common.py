"""Shared helpers of the ``deepff`` subcommands: one-line errors, output that outlives a closed
pipe, tables, and the data a command reads (built-in data sets, files and their digests).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ..errors import DeepffError, InputError

PROG = "deepff"


class UsageError(DeepffError, ValueError):
    """A bad command line (unknown flag, bad value)."""


def _say(*values):
    """``print`` to stdout, flushed, that outlives a closed pipe.

    When the reader has gone (``deepff train ... | head -1``), the rest of
    the output is dropped and the run carries on: training ends and the
    model is saved as without the pipe.
    """
    try:
        print(*values, flush=True)
    except BrokenPipeError:
        _drop("stdout")
    except OSError as exc:          # e.g. a full disk behind ``> file``: say so once, keep training
        _drop("stdout")
        _note(f"{PROG}: standard output failed ({exc.strerror or exc}); the run goes on without it")


def _note(*values):
    """``print`` to stderr, flushed, that outlives a closed pipe the same way.

    ``deepff train ... 2>&1 | head -1`` sends the notes, warnings and errors
    into the pipe too: once the reader has gone they are dropped, and the
    run still ends and saves its model.
    """
    try:
        print(*values, file=sys.stderr, flush=True)
    except (BrokenPipeError, OSError, ValueError, AttributeError):  # gone, failing, or closed
        _drop("stderr")


def _drop(name):
    """Send whatever is still written to ``sys.<name>`` (stdout or stderr) to the null device."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, getattr(sys, name).fileno())  # also takes the unflushed rest, so exit stays quiet
        os.close(null)
    except (OSError, ValueError, AttributeError):  # not a real file (tests, embedding)
        setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process


def _table(rows):
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def _load(args, seed=0, test_fraction=0.2):
    from ..data import load_dataset

    header = {"yes": True, "no": False}.get(args.header)
    if args.data_dir is not None and str(args.dataset or "digits").lower() != "mnist":
        raise UsageError(f"--data-dir is the folder of the MNIST files and applies to --dataset mnist only, not to "
                         f"{args.dataset or 'digits'}; drop it")
    return load_dataset(args.dataset or "digits", data_dir=args.data_dir, target=args.target,
                        test_fraction=test_fraction, seed=seed, delimiter=args.delimiter, header=header)


def _is_builtin(name):
    from ..data import DATASETS

    return str(name or "digits").lower() in DATASETS


def _sha256(path):
    """The SHA-256 of a data file: how a model or checkpoint recognises its training data."""
    import hashlib

    digest = hashlib.sha256()
    with open(os.path.expanduser(path), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _encode(y, classes):
    index = {c: i for i, c in enumerate(classes)}
    try:
        return np.array([index[v] for v in y.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise InputError(f"the data holds class {exc.args[0]!r}, unknown to the model "
                         f"(its classes: {classes[:10]})") from None


def _preprocess(X, preprocessing, dtype):
    from ..data import Standardizer

    if not preprocessing:
        return np.asarray(X, dtype=dtype)
    return Standardizer.from_dict(preprocessing).transform(X, dtype=dtype)


def _source(dataset, anchor):
    """How ``evaluate`` and ``--resume`` find the training data again, as recorded beside ``anchor``.

    A built-in data set by its name; a file by its path relative to the folder
    of ``anchor`` (the model or checkpoint that records it), so that a
    project folder moved or copied whole still finds its data, and no file
    records where on the disk it was made.
    """
    name = dataset or "digits"
    if _is_builtin(name):
        return name.lower()
    return _relative_to(os.path.abspath(os.path.expanduser(name)), anchor)


def _relative_to(path, anchor):
    """``path`` relative to the folder of the file ``anchor``, with '/' separators (its name if none)."""
    if anchor is None:
        return os.path.basename(path)
    try:
        rel = os.path.relpath(path, os.path.dirname(os.path.abspath(os.path.expanduser(str(anchor)))))
    except ValueError:        # another drive (Windows)
        return os.path.basename(path)
    return rel.replace(os.sep, "/")


def _recorded_path(value, anchor):
    """A path recorded in a model or checkpoint, as a path here: relative ones from ``anchor``'s folder."""
    if not isinstance(value, str) or not value or os.path.isabs(value):
        return value                      # (models before deepff 0.2 recorded absolute paths)
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(str(anchor))), value))


def _moved_source(source, model_path, what="model"):
    """The training file recorded in a model, or the file of that name beside the model.

    Models record the path of a CSV or .npy training file relative to their
    own folder (older ones: its absolute path); when only the model was
    moved or copied, the file is often beside it under the same name.
    """
    if not source or _is_builtin(str(source)):
        return source
    source = _recorded_path(str(source), model_path)
    if os.path.exists(source):
        return source
    beside = os.path.join(os.path.dirname(os.path.abspath(str(model_path))), os.path.basename(source))
    if not os.path.exists(beside):
        return source
    _note(f"deepff: {source} is gone; using {beside}, found beside the {what}")
    return beside


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _slug(name):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in os.path.splitext(os.path.basename(name))[0])


def _canonical_loss(name):
    from .. import losses

    return losses.REGISTRY.canonical(name)


def _canonical_activation(name):
    from .. import activations

    return activations.REGISTRY.canonical(name)
