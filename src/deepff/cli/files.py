"""The files a subcommand writes: refused before any work when they would overwrite an input, each
other or a file deepff did not write; atomic writes; where an interrupted run's model goes.
"""

from __future__ import annotations

import csv
import io
import json
import os

from .common import PROG, UsageError, _is_builtin, _note, _same_file, _slug


def _check_output_path(path, flag, exts):
    """Refuse, before any work, an output path with the wrong extension or that cannot be written."""
    from ..io import check_writable

    if path is None:
        return
    if not path.lower().endswith(exts):
        raise UsageError(f"{flag} must end in {' or '.join(exts)}, got {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{flag}: folder {folder!r} does not exist")
    try:
        check_writable(path, probe=True)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: {exc.strerror}") from None


def _check_files(outputs, inputs):
    """Refuse outputs that would overwrite an input, each other, or a file deepff did not write.

    Parameters
    ----------
    outputs : list of (flag, path, kind)
        ``kind`` is what deepff writes there: "model", "checkpoint",
        "history", "plot" or ("predictions", the model) (None: not checked). An existing
        file of that kind is replaced (and said so on stderr); any other
        existing file there is refused.
    inputs : list of (flag, path)

    Returns
    -------
    list of str
        One "replacing existing ..." line per deepff file to be replaced.
    """
    from ..io import file_format

    done, notes = [], []
    for flag, path, kind in outputs:
        for other_flag, other in inputs + done:
            if {flag, other_flag} == {"--checkpoint", "--resume"}:
                continue  # a resumed run keeps checkpointing to its own file
            if _same_file(path, other):
                raise UsageError(f"{flag} {path} is the same file as {other_flag} {other}; deepff never "
                                 f"writes over its inputs or one output over another: choose another {flag}")
        done.append((flag, path))
        if kind is None or not os.path.exists(path):
            continue
        name = kind[0] if isinstance(kind, tuple) else kind
        ours = file_format(path) == kind if kind in ("model", "checkpoint") else _written_by_deepff(path, kind)
        if not ours:
            older = " (plots from earlier deepff builds carry no mark of it)" if name == "plot" else ""
            raise UsageError(f"{flag} {path} exists and is not a deepff {name} file{older}; deepff will not "
                             f"replace it: remove it or choose another {flag}")
        if not any(_same_file(path, p) for f, p in inputs if f == "--resume"):
            notes.append(f"{PROG}: replacing existing {name} file {path}")
    return notes


def _written_by_deepff(path, kind):
    """Whether the existing file ``path`` looks like the ``kind`` of file deepff writes.

    "plot": a PNG with deepff's "Software" text; "history": a CSV whose
    header starts with ``epoch,loss``, or a JSON list of records with an
    "epoch" and a "loss"; "predictions": a CSV headed as
    :func:`_prediction_headers` says ``kind[1]`` (the model) would write.
    """
    from ..plots import written_by_deepff

    if kind == "plot":
        return written_by_deepff(path)
    try:
        with open(path, encoding="utf-8") as fh:
            if kind == "history" and path.lower().endswith(".json"):
                records = json.load(fh)
                return isinstance(records, list) and bool(records) and all(   # [] could be anyone's
                    isinstance(r, dict) and {"epoch", "loss"} <= set(r) for r in records)
            header = next(csv.reader([fh.readline()]), [])
    except (OSError, ValueError):     # unreadable, not UTF-8, not JSON
        return False
    if kind == "history":
        return header[:2] == ["epoch", "loss"]
    return header in _prediction_headers(kind[1])


def _prediction_headers(net):
    """The header rows ``deepff predict`` writes for ``net``: labels or values, and probabilities."""
    headers = [["prediction"], [f"y{i}" for i in range(net.n_outputs)]]
    if net.task == "classification":
        classes = net.classes or list(range(net.n_outputs))
        if net.n_outputs == 1 and len(classes) < 2:
            classes = [0, 1]
        headers.append([f"p_{c}" for c in classes])
    return headers


def _default_output(dataset):
    name = dataset or "digits"
    return f"deepff-{_slug(name.lower() if _is_builtin(name) else name)}.npz"


def _check_train_files(args, output):
    flags = (("--output", output), ("--history", args.history), ("--plot", args.plot),
             ("--checkpoint", args.checkpoint))
    exts = {"--output": (".npz",), "--history": (".json", ".csv"), "--plot": (".png",),
            "--checkpoint": (".npz",)}
    outputs = []
    for flag, path in flags:
        _check_output_path(path, flag, exts[flag])
        if path is not None:
            outputs.append((flag, path, {"--output": "model", "--checkpoint": "checkpoint", "--history": "history",
                                         "--plot": "plot"}[flag]))
    return _check_files(outputs, _train_inputs(args))


def _train_inputs(args):
    inputs = [("--config", args.config), ("--resume", args.resume)]
    if not _is_builtin(args.dataset):
        inputs.append(("--dataset", os.path.expanduser(args.dataset)))
    return [(f, p) for f, p in inputs if p is not None]


def _plot_siblings(plot, task, has_test, n_features):
    """The figures written beside ``--plot``: a confusion matrix (classification with a test split) and
    decision regions (two features)."""
    stem = plot[:-4]
    return ([stem + "-confusion.png"] if task == "classification" and has_test else []) + \
        ([stem + "-boundary.png"] if n_features == 2 else [])


def _check_plot_siblings(args, output, siblings):
    """Check the figures written beside --plot once the data say which apply (before any training)."""
    others = [(f, p) for f, p in (("--output", output), ("--history", args.history), ("--plot", args.plot),
                                   ("--checkpoint", args.checkpoint)) if p is not None]
    return _check_files([("--plot", p, "plot") for p in siblings], _train_inputs(args) + others)


def _interrupted_output(output):
    """Where an interrupted run saves its model: never over a model the user already has.

    Returns ``output`` when nothing is there, else the first of
    ``<stem>.interrupted.npz``, ``<stem>.interrupted-2.npz``, ... ``-9``
    beside it that is free or holds a deepff model (said on stderr); None
    (with a message) when all of them hold files deepff did not write.
    """
    from ..io import file_format

    if not os.path.exists(output):
        return output
    stem = output[:-len(".npz")]
    for alt in [f"{stem}.interrupted.npz"] + [f"{stem}.interrupted-{i}.npz" for i in range(2, 10)]:
        if not os.path.exists(alt) or (os.path.isfile(alt) and file_format(alt) == "model"):
            _note(f"{PROG}: {output} is kept; the interrupted run's model goes to {alt}")
            return alt
    _note(f"{PROG}: the model is not saved: {output} is kept, and {stem}.interrupted.npz to "
          f"{stem}.interrupted-9.npz all hold files that are not deepff models")
    return None


def _write_history(records, path):
    from ..io import atomic_write

    keys = ["epoch", "loss"]       # first, even for a run stopped in its first epoch (no record yet)
    for r in records:
        keys += [k for k in r if k not in keys]
    if path.lower().endswith(".csv"):
        def write(fh):
            text = io.StringIO()
            w = csv.DictWriter(text, fieldnames=keys)
            w.writeheader()
            w.writerows(records)
            fh.write(text.getvalue().encode("utf-8"))
    elif path.lower().endswith(".json"):
        def write(fh):
            fh.write(json.dumps(records, indent=2).encode("utf-8"))
    else:
        raise UsageError(f"--history must end in .json or .csv, got {path!r}")
    atomic_write(path, write)
