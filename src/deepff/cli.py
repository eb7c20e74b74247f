"""The ``deepff`` command: train, evaluate, predict, summary, gradcheck, datasets.

Every error a user can cause prints one line on stderr and exits with
status 2 (no traceback unless ``--debug``). Ctrl-C during training stops
after the current step, writes a final checkpoint when one was asked for,
and exits with status 130.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import shlex
import sys
import time

import numpy as np

from . import __version__
from .errors import DeepffError, DivergenceError, InputError, SpecError
from .training import Callback

__all__ = ["main", "build_parser"]

PROG = "deepff"
DEFAULTS = {
    # the classic architecture on the bundled 8x8 digits: a few seconds
    "digits": {"hidden": [128, 64], "optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 30},
    "mnist": {"hidden": [256, 128], "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 10},
    "other": {"hidden": [64, 32], "optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 50},
}
OUTPUT_ACTIVATION = {"neg_log_likelihood": "softmax", "binary_cross_entropy": "sigmoid", "poisson": "exp"}


class UsageError(DeepffError, ValueError):
    """A bad command line (unknown flag, bad value)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit status 2."""

    def error(self, message):
        exc = UsageError(message)
        exc.prog = self.prog
        raise exc


# ------------------------------------------------------------- flag parsing
def _int_at_least(low, what):
    """An argparse type: an integer >= low, described as ``what`` in errors."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < low:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}")
        return v
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
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _fraction(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return v


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
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"every hidden layer needs at least one unit, got {text!r}")
    return sizes


def build_parser():
    """Return the argparse parser of the ``deepff`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = _Parser(prog=PROG, description="Deep feedforward networks on numpy.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def common_data(p):
        p.add_argument("--dataset", default=None,
                       help="digits (default), mnist, or a .csv/.tsv/.npz/.npy file")
        p.add_argument("--data-dir", default=None, help="folder holding an existing MNIST copy")
        p.add_argument("--target", default=None, help="target column of a CSV (name or index)")
        p.add_argument("--delimiter", type=_delimiter, default=None,
                       help="delimiter of a CSV file (default: detected among , ; tab |)")
        p.add_argument("--header", choices=["auto", "yes", "no"], default=None,
                       help="whether a CSV file's first row names its columns (default: auto, detected)")
        p.add_argument("--debug", action="store_true", help="show tracebacks")

    t = sub.add_parser("train", help="train a network and save it")
    common_data(t)
    t.add_argument("--config", help="YAML/JSON/TOML file with layers and a training section")
    t.add_argument("--task", choices=["classification", "regression"])
    t.add_argument("--hidden", type=_hidden, help="hidden layer widths, e.g. 256,128")
    t.add_argument("--activation", help="activation of the hidden layers (default relu)")
    t.add_argument("--loss", help="output loss (default: neg_log_likelihood or mse by task)")
    t.add_argument("--optimizer", help="sgd, adam, adamw, rmsprop, adagrad, lbfgs")
    t.add_argument("--lr", type=_positive_float, help="learning rate")
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--seed", type=_non_negative_int, default=None)
    t.add_argument("--validation-split", type=_fraction, default=None)
    t.add_argument("--test-fraction", type=_fraction, default=None,
                   help="held-out share of a dataset without an official split (default 0.2)")
    t.add_argument("--dtype", choices=["float32", "float64"], default=None)
    t.add_argument("--output", help="where to save the trained model (.npz)")
    t.add_argument("--history", help="write per-epoch records to FILE.json or FILE.csv")
    t.add_argument("--plot", help="learning curves to FILE.png (+ confusion matrix / decision boundary)")
    t.add_argument("--checkpoint", help="write a resumable checkpoint to this file after every epoch")
    t.add_argument("--resume", help="continue from a checkpoint written by --checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")

    e = sub.add_parser("evaluate", help="metrics of a saved model on a dataset")
    common_data(e)
    e.add_argument("--model", required=True)
    e.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("predict", help="predict with a saved model")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True, help="CSV (features, optional header) or .npy")
    p.add_argument("--output", help="CSV or .npy (default: CSV on stdout)")
    p.add_argument("--proba", action="store_true", help="class probabilities instead of labels")
    p.add_argument("--debug", action="store_true", help="show tracebacks")

    s = sub.add_parser("summary", help="layer table with the shapes of W, b, a and h")
    s.add_argument("--config", help="config file with the layers")
    s.add_argument("--model", help="or a saved model")
    s.add_argument("--batch-size", type=_positive_int, default=32)
    s.add_argument("--debug", action="store_true", help="show tracebacks")

    g = sub.add_parser("gradcheck", help="check backprop against finite differences")
    g.add_argument("--config", required=True)
    g.add_argument("--samples", type=_gradcheck_samples, default=8)
    g.add_argument("--seed", type=_non_negative_int, default=0)
    g.add_argument("--debug", action="store_true", help="show tracebacks")

    d = sub.add_parser("datasets", help="list the built-in datasets, where they are and whether they are there")
    d.add_argument("--data-dir", default=None, help="folder holding an existing MNIST copy")
    d.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


# ---------------------------------------------------------------- printing
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


class _Reporter(Callback):
    """Progress bar (terminals only) and one line per epoch, unless quiet."""

    def __init__(self, quiet, n_samples, epochs):
        self.quiet = quiet
        self.n_samples = n_samples
        self.epochs = epochs
        self.bar = None
        self.tty = sys.stdout.isatty()

    def on_epoch_begin(self, trainer, epoch):
        if self.quiet or not self.tty:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=self.n_samples, unit="samples", leave=False, dynamic_ncols=True,
                        desc=f"epoch {epoch + 1}/{self.epochs}", file=sys.stdout)
        self._t0 = time.perf_counter()
        self._batches = 0

    def on_batch_end(self, trainer, step, batch_size, loss):
        if self.bar is None:
            return
        self.bar.update(batch_size)
        self._batches += 1
        if self._batches % 20 == 0:
            self.bar.set_postfix(loss=f"{loss:.4f}")

    def on_epoch_end(self, trainer, record):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.quiet:
            return
        parts = [f"epoch {record['epoch']:>3}/{self.epochs}", f"loss {record['loss']:.4f}"]
        for key in ("accuracy", "val_loss", "val_accuracy"):
            if record.get(key) is not None:
                parts.append(f"{key} {record[key]:.4f}")
        rate = self.n_samples / record["seconds"] if record["seconds"] > 0 else float("inf")
        parts.append(f"{record['seconds']:.2f}s ({rate:,.0f} samples/s)")
        _say("  ".join(parts))

    def on_train_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _Checkpointer(Callback):
    """Writes a checkpoint atomically after every epoch (and on Ctrl-C)."""

    def __init__(self, path, extra, note=None):
        self.path, self.extra, self.note = path, extra, note
        self.epoch = None          # the last epoch this run wrote

    def save(self, trainer):
        from .io import save_checkpoint

        save_checkpoint(trainer, self.path, self.extra)
        if self.note:              # "replacing existing checkpoint file ...", said when it happens: a
            _note(self.note)       # run that fails before its first save has replaced nothing
            self.note = None

    def on_epoch_end(self, trainer, record):
        self.save(trainer)
        self.epoch = trainer.epoch


def _table(rows):
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


# ----------------------------------------------------------------- datasets
def _load(args, seed=0, test_fraction=0.2):
    from .datasets import load_dataset

    header = {"yes": True, "no": False}.get(args.header)
    if args.data_dir is not None and str(args.dataset or "digits").lower() != "mnist":
        raise UsageError(f"--data-dir is the folder of the MNIST files and applies to --dataset mnist only, not to "
                         f"{args.dataset or 'digits'}; drop it")
    return load_dataset(args.dataset or "digits", data_dir=args.data_dir, target=args.target,
                        test_fraction=test_fraction, seed=seed, delimiter=args.delimiter, header=header)


def _is_builtin(name):
    from .datasets import DATASETS

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
    from .datasets import Standardizer

    if not preprocessing:
        return np.asarray(X, dtype=dtype)
    return Standardizer.from_dict(preprocessing).transform(X, dtype=dtype)


# ------------------------------------------------------------ output files
def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _check_output_path(path, flag, exts):
    """Refuse, before any work, an output path with the wrong extension or that cannot be written."""
    from .io import check_writable

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
    from .io import file_format

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
    from .plots import written_by_deepff

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


# -------------------------------------------------------------------- train
def _architecture(args, n_features, n_outputs, task, base_spec, loss):
    """The classic spec from the config file and/or the flags."""
    if base_spec is not None and args.hidden is None:
        spec = [dict(layer) for layer in base_spec]
        spec[0]["n_features"] = n_features
        if args.activation:
            for layer in spec[1:-1]:
                layer["activation"] = args.activation
        if args.loss:
            spec[-1]["loss_type"] = args.loss
            spec[-1]["activation"] = OUTPUT_ACTIVATION.get(loss, "linear")
        if spec[-1]["n_neurons"] != n_outputs:
            why = (" (binary_cross_entropy on two classes trains one sigmoid unit)"
                   if loss == "binary_cross_entropy" and n_outputs == 1 else "")
            raise SpecError(f"the config's output layer has {spec[-1]['n_neurons']} units but the data "
                            f"needs {n_outputs}{why}: set its n_neurons to {n_outputs}")
        return spec
    hidden = args.hidden
    if hidden is None:
        hidden = DEFAULTS[_kind(args)]["hidden"]
    act = args.activation or "relu"
    spec = [{"layer_type": "input", "n_features": n_features}]
    spec += [{"layer_type": "fullyconn", "n_neurons": h, "activation": act} for h in hidden]
    spec.append({"layer_type": "output", "n_neurons": n_outputs,
                 "activation": OUTPUT_ACTIVATION.get(loss, "linear"), "loss_type": loss})
    return spec


def _canonical_loss(name):
    from . import losses

    return losses.REGISTRY.canonical(name)


def _loss_of(args, task, base_spec):
    """The output loss of a new run (canonical name) and how the user chose it, for messages."""
    if args.loss:
        return _canonical_loss(args.loss), "--loss"
    if base_spec is not None and args.hidden is None:
        return _canonical_loss(base_spec[-1]["loss_type"]), "the config's loss"
    return ("neg_log_likelihood" if task == "classification" else "mse"), "the default loss"


def _check_loss(loss, how, task, n_classes, y):
    """Refuse a loss that cannot learn this target, naming the losses that can."""
    from . import losses

    loss_task = losses.REGISTRY.classes[loss].task
    if loss_task != task:
        valid = sorted(n for n, c in losses.REGISTRY.classes.items() if c.task == task)
        raise UsageError(f"{how} {loss} is a {loss_task} loss, but the task is {task}; valid losses for "
                         f"{task}: {', '.join(valid)} (--task sets the task)")
    if loss == "binary_cross_entropy" and n_classes != 2:
        raise UsageError(f"{how} binary_cross_entropy needs a target with 2 classes; this one has {n_classes}: "
                         "use neg_log_likelihood")
    if loss == "poisson" and np.min(y) < 0:
        raise UsageError(f"{how} poisson needs non-negative counts, but the target goes down to "
                         f"{np.min(y):g}; use mse, mae or huber")


def _check_labels(y, name, n_classes):
    """Refuse ``--task classification`` for a target that is clearly continuous."""
    from .datasets import MAX_CLASSES

    y = np.asarray(y)
    if y.dtype.kind not in "biuf":     # text labels name classes, however many there are
        return
    fractional = y.dtype.kind == "f" and not np.array_equal(y, np.round(y))
    if n_classes > MAX_CLASSES and (fractional or n_classes > y.size / 2):   # a few values are classes
        raise UsageError(f"the target {name!r} looks continuous ({n_classes} distinct values in {y.size} "
                         "samples), not like class labels; use --task regression")


def _kind(args):
    name = (args.dataset or "digits").lower()
    return name if name in ("digits", "mnist") else "other"


def _write_history(records, path):
    from .io import atomic_write

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


def _check_names(args):
    """Fail fast (before loading any data) on unknown optimizer/activation/loss names."""
    from . import activations, losses, optimizers

    for value, registry in ((args.optimizer, optimizers.REGISTRY), (args.activation, activations.REGISTRY),
                            (args.loss, losses.REGISTRY)):
        if value is not None:
            registry.canonical(value)


def _resume_defaults(args, extra):
    """Take what a resumed run must keep from the checkpoint, unless the command line gives it."""
    if args.dataset is None:   # older checkpoints lack it: compared by name later
        args.dataset = _moved_source(extra.get("dataset_source"), args.resume, "checkpoint")
    for key in ("target", "delimiter", "header", "seed", "test_fraction", "task", "data_dir"):
        if key == "data_dir" and str(extra.get("dataset")).lower() != "mnist":
            continue    # (only an MNIST run's folder matters; older versions recorded any)
        if getattr(args, key) is None and extra.get(key) is not None:
            setattr(args, key, extra[key])
    if args.lr is not None:
        raise UsageError(f"--lr does not apply to a resumed run: it continues with the checkpoint "
                         f"{args.resume}'s optimizer and its state; drop --lr")


def _check_resume(args, net, state, extra, found):
    """Refuse a resumed run whose data, split or architecture differ from the checkpoint's.

    ``found`` holds what this run has: dataset, dataset_sha256, seed,
    test_fraction, task, classes, target_name, epochs, full_batch. Keys an
    older checkpoint lacks are not compared. The network and optimizer are
    checked earlier, by :func:`_check_resume_settings`.

    Returns None, or for a checkpoint of a run that already ended, why it
    did (the resumed run then trains nothing and writes the outputs).
    """
    where = f"the checkpoint {args.resume}"
    if extra.get("dataset_sha256") is not None:
        if found["dataset_sha256"] != extra["dataset_sha256"]:
            raise UsageError(f"{where} was trained on {extra.get('dataset_source')}, but {found['dataset']} "
                             "holds other data (its SHA-256 differs); resume on the same data")
    elif extra.get("dataset") is not None and extra["dataset"] != found["dataset"]:
        raise UsageError(f"{where} was trained on {extra['dataset']}, not {found['dataset']}; give "
                         f"--dataset {extra['dataset']}")
    for key, flag in (("seed", "--seed"), ("test_fraction", "--test-fraction"), ("task", "--task"),
                      ("target_name", "--target"), ("classes", "--dataset")):
        if key in extra and extra[key] != found[key]:
            raise UsageError(f"{where} has {key} {extra[key]!r}, this run {found[key]!r}: a resumed run keeps "
                             f"its data and split; drop {flag} or give the checkpoint's")
    done = state["epoch"]
    if found["full_batch"]:
        return None               # L-BFGS counts iterations, not epochs: a resumed run takes max_iter more
    # A checkpoint of a run that ended (all its epochs, or early stopping) but was killed before it
    # wrote its model: resuming it trains nothing and writes what the run would have written.
    if state.get("stopped_early"):
        if args.epochs is not None:
            raise UsageError(f"--epochs {args.epochs}: {where} belongs to a run that early stopping ended after "
                             f"epoch {done}; resume it without --epochs to write its model")
        return f"early stopping ended its run after epoch {done}"
    if found["epochs"] < done:
        raise UsageError(f"--epochs {found['epochs']}: {where} has already trained {done} epochs, and "
                         f"--epochs is the total to reach; give {done} or more")
    if found["epochs"] == done:
        return f"it has trained all {done} epochs of its run"
    return None


def _check_resume_settings(args, net, extra, cfg, opt):
    """Refuse, before any data is read, flags or a config that contradict the checkpoint's network or optimizer."""
    from .spec import parse_layers

    where = f"the checkpoint {args.resume}"
    recorded, now = extra.get("dataset"), args.dataset or "digits"
    if recorded is not None:    # built-in versus file, or another built-in: known before any download
        was_builtin = extra.get("dataset_sha256") is None and _is_builtin(recorded)
        if (was_builtin != _is_builtin(now)) or (was_builtin and str(now).lower() != str(recorded).lower()):
            raise UsageError(f"{where} was trained on {extra.get('dataset_source') or recorded}, not {now}; "
                             f"resume on the same data (drop --dataset, or give the checkpoint's)")
    hidden = [layer.units for layer in net.layers[:-1]]
    acts = {layer.activation.name for layer in net.layers[:-1]}
    dtype = args.dtype or cfg["dtype"]
    given = [("--hidden", args.hidden, hidden, args.hidden is not None and args.hidden != hidden),
             ("--dtype", dtype, str(net.dtype), dtype not in (None, str(net.dtype))),
             ("--loss", args.loss, net.loss.name,
              args.loss is not None and _canonical_loss(args.loss) != net.loss.name),
             ("--activation", args.activation, ", ".join(sorted(acts)),
              args.activation is not None and acts - {_canonical_activation(args.activation)})]
    if cfg["layers"] is not None and args.hidden is None:
        _, layers, loss = parse_layers(cfg["layers"])
        mine = ([layer.units for layer in layers], [layer.activation.name for layer in layers], loss.name)
        theirs = ([layer.units for layer in net.layers], [layer.activation.name for layer in net.layers],
                  net.loss.name)
        given.append(("--config", args.config, f"layers {theirs[0]} ({', '.join(theirs[1])}) and loss {theirs[2]}",
                      mine != theirs))
    for flag, value, has, differs in given:
        if differs:
            raise UsageError(f"{flag} {value} contradicts {where}, whose network has {has}; a resumed run "
                             f"keeps its network: drop {flag}")
    run = extra.get("training") if isinstance(extra.get("training"), dict) else {}
    early_stopping = (cfg["training"] if args.config else run).get("early_stopping")
    for key, flag, value in (("batch_size", "--batch-size", args.batch_size),
                             ("validation_split", "--validation-split", args.validation_split)):
        source = flag
        if value is None and args.config:
            value, source = cfg["training"].get(key), f"the config's {key}"
        if key == "validation_split" and early_stopping and value is not None and not value:
            value = 0.1       # what cmd_train makes of it: early stopping never looks at the test split
        if value is not None and key in run and value != run[key]:
            drop = f"drop {flag}" if source == flag else f"remove {key} from the config"
            raise UsageError(f"{source} {value} contradicts {where}, whose run has {key} {run[key]!r}; a resumed "
                             f"run keeps its training settings: {drop} or give the checkpoint's")
    recorded = run.get("optimizer")
    if isinstance(recorded, dict) and "name" in recorded:
        from . import optimizers

        canon = optimizers.REGISTRY.canonical
        same = canon(opt["name"]) == canon(recorded["name"]) and all(
            opt[k] == recorded[k] for k in opt.keys() & recorded.keys() if k != "name")
        if not same:
            source = "--optimizer" if args.optimizer else "the config's optimizer"
            raise UsageError(f"{source} {opt['name']!r} ({opt}) contradicts {where}, whose run uses "
                             f"{recorded['name']!r} ({recorded}); a resumed run keeps its optimizer and its state")


def _canonical_activation(name):
    from . import activations

    return activations.REGISTRY.canonical(name)


def _optimizer(args, training, defaults, resume_extra):
    """The optimizer config of the run: flags over the config file over the defaults."""
    from . import optimizers

    opt = training.get("optimizer", defaults["optimizer"])
    if resume_extra and "optimizer" not in training and isinstance(resume_extra.get("training"), dict):
        opt = resume_extra["training"].get("optimizer", opt)
    if args.optimizer:
        opt = args.optimizer
    opt = dict({"name": opt} if isinstance(opt, str) else opt)
    full_batch = getattr(optimizers.REGISTRY.classes[optimizers.REGISTRY.canonical(opt["name"])],
                         "full_batch", False)
    if full_batch:
        for flag, value, why in (("--lr", args.lr, "finds its step lengths by line search"),
                                 ("--epochs", args.epochs, "runs until it converges (at most max_iter iterations)"),
                                 ("--batch-size", args.batch_size, "takes the whole training set at each step")):
            if value is not None:
                raise UsageError(f"{flag} does not apply to --optimizer {opt['name']}, which {why}; drop {flag}")
    if args.lr is not None:
        opt["lr"] = args.lr
    elif "lr" not in opt and opt["name"].lower() in ("adam", "adamw"):
        opt["lr"] = defaults["lr"]
    return opt


def _targets(args, data):
    """The task, the class labels and the training targets (class codes for classification)."""
    from .datasets import encode_labels

    task = args.task or data.task
    y_train, y_test = data.y_train, data.y_test
    if task == "regression":
        try:
            return task, None, np.asarray(y_train, dtype=np.float64), np.asarray(y_test, dtype=np.float64)
        except ValueError:
            raise InputError("regression needs a numeric target column; use --task classification "
                             "for labels") from None
    y = np.concatenate([np.asarray(y_train), np.asarray(y_test)])
    codes, classes = encode_labels(y)
    if len(classes) < 2:
        raise InputError("classification needs at least two classes in the target column")
    _check_labels(y, data.target_name, len(classes))
    return task, classes.tolist(), codes[:len(y_train)], codes[len(y_train):]


def _class_weight(class_weight, classes):
    """The config's class_weight, keyed by the target's class labels, keyed by class index.

    A key is the label as the data write it (``rare``, ``3``, ``-1``): its
    text, or failing that its number (``1`` for a label ``1.0``). For the
    built-in digits and MNIST the labels 0..9 are also the indexes.
    """
    if not isinstance(class_weight, dict) or not classes:
        return class_weight       # a regression: the caller refuses it
    mapped = {}
    for key, weight in class_weight.items():
        i = _class_index(key, classes)
        if i in mapped:
            raise UsageError(f"class_weight gives class {classes[i]!r} two weights")
        mapped[i] = weight
    return mapped


def _class_index(key, classes):
    found = [i for i, c in enumerate(classes) if str(c) == str(key)]
    if not found:
        try:
            number = float(key)
        except (TypeError, ValueError):
            number = None
        found = [i for i, c in enumerate(classes) if number is not None and not isinstance(c, (str, bool))
                 and float(c) == number]
    if len(found) == 1:
        return found[0]
    shown = ", ".join(repr(str(c)) for c in classes[:20]) + (", ..." if len(classes) > 20 else "")
    if not found:
        raise UsageError(f"class_weight names class {str(key)!r}, which the target does not hold; its classes "
                         f"are {shown}")
    raise UsageError(f"class_weight key {str(key)!r} matches more than one class: {shown}")


def cmd_train(args):
    """Run ``deepff train``."""
    from .datasets import Standardizer
    from .io import load_checkpoint, save
    from .model import Network
    from .optimizers import get as get_optimizer
    from .spec import load_config, parse_training
    from .training import class_weights

    _check_names(args)
    comm = getattr(sys.modules.get("deepff.distributed"), "LAUNCHED", None)   # mpiexec -n K: rank 0 writes
    root = comm is None or comm.Get_rank() == 0
    net, resume_state, resume_extra = None, None, None
    if args.resume:
        net, resume_state, resume_extra = load_checkpoint(args.resume)
        resume_extra = resume_extra if isinstance(resume_extra, dict) else {}
        _resume_defaults(args, resume_extra)
    output = args.output if args.output is not None else _default_output(args.dataset)
    replacing = _check_train_files(args, output)
    cfg = load_config(args.config) if args.config else {"layers": None, "training": {}, "dtype": None,
                                                         "seed": None}
    training = dict(cfg["training"])
    if args.resume and not args.config and isinstance(resume_extra.get("training"), dict):
        # batch size, schedule, ... of the run resumed, read as a config's (JSON made class_weight's keys text)
        training = parse_training(dict(resume_extra["training"]))
    seed = args.seed if args.seed is not None else (cfg["seed"] if cfg["seed"] is not None else 0)
    test_fraction = args.test_fraction if args.test_fraction is not None else 0.2
    dtype = str(net.dtype) if net is not None else (args.dtype or cfg["dtype"] or "float32")
    if args.resume:
        _check_resume_settings(args, net, resume_extra, cfg,
                               _optimizer(args, training, DEFAULTS[_kind(args)], resume_extra))

    data = _load(args, seed=seed, test_fraction=test_fraction)
    digest = None if _is_builtin(args.dataset) else _sha256(args.dataset)
    task, classes, y_train, y_test = _targets(args, data)
    n_classes = len(classes) if classes else None
    class_weight = _class_weight(training.get("class_weight"), classes)
    if class_weight is not None:     # refused here, before anything is printed or trained
        if task != "classification":
            raise UsageError("class_weight weighs classes, but this run is a regression; drop it from the config")
        class_weights(y_train, class_weight, n_classes)

    if data.name == "mnist":
        scaler = Standardizer.from_dict({"mean": [0.0] * data.n_features, "std": [1.0] * data.n_features})
    else:
        scaler = Standardizer().fit(data.X_train)
    X_train = scaler.transform(data.X_train, dtype=dtype)
    X_test = scaler.transform(data.X_test, dtype=dtype) if len(data.X_test) else None
    if args.plot:
        replacing += _check_plot_siblings(args, output, _plot_siblings(args.plot, task, X_test is not None,
                                                                       data.n_features))

    defaults = DEFAULTS[_kind(args)]
    opt = _optimizer(args, training, defaults, resume_extra)
    optimizer = get_optimizer(dict(opt))
    full_batch = getattr(optimizer, "full_batch", False)
    resumed_training = (resume_extra or {}).get("training")
    epochs = args.epochs or (resumed_training or {}).get("epochs") or training.get("epochs", defaults["epochs"])
    finished = None
    if args.resume:
        finished = _check_resume(args, net, resume_state, resume_extra, {
            "dataset": data.name, "dataset_sha256": digest, "seed": seed, "test_fraction": test_fraction,
            "task": task, "classes": classes, "target_name": data.target_name, "epochs": epochs,
            "full_batch": full_batch})
        if net.n_features != X_train.shape[1]:
            raise InputError(f"the checkpoint's network expects {net.n_features} features, "
                             f"the data has {X_train.shape[1]}")
    else:
        loss, how = _loss_of(args, task, cfg["layers"])
        _check_loss(loss, how, task, n_classes, y_train)
        n_outputs = (1 if loss == "binary_cross_entropy" else n_classes) if classes else \
            (1 if y_train.ndim == 1 else y_train.shape[1])
        spec = _architecture(args, X_train.shape[1], n_outputs, task, cfg["layers"], loss)
        net = Network.from_spec(spec, dtype=dtype, seed=seed)

    batch_size = args.batch_size or training.get("batch_size", defaults["batch_size"])
    val_split = args.validation_split if args.validation_split is not None \
        else training.get("validation_split", 0.0)
    if training.get("early_stopping") and not val_split:
        val_split = 0.1  # early stopping must never look at the test split
    train_cfg = {**training, "optimizer": opt, "epochs": epochs, "batch_size": batch_size,
                 "validation_split": val_split}
    if isinstance(train_cfg.get("class_weight"), dict):   # stored as JSON, whose keys are texts; a
        train_cfg["class_weight"] = {str(k): w for k, w in train_cfg["class_weight"].items()}  # resume maps them back

    shown_epochs = optimizer.max_iter if full_batch else epochs
    callbacks = [_Reporter(args.quiet, int(round(X_train.shape[0] * (1 - val_split))), shown_epochs)]
    record = {"dataset": data.name, "dataset_source": _source(args.dataset), "dataset_sha256": digest,
              "target": args.target, "target_name": data.target_name, "delimiter": args.delimiter,
              "header": args.header,
              "seed": seed, "test_fraction": test_fraction, "task": task, "classes": classes,
              "data_dir": None if args.data_dir is None else os.path.abspath(os.path.expanduser(args.data_dir))}
    extra = {**record, "preprocessing": scaler.to_dict(), "training": train_cfg}
    checkpoint_note = f"{PROG}: replacing existing checkpoint file {args.checkpoint}"   # said at its first save
    if args.checkpoint and root:
        callbacks.append(_Checkpointer(args.checkpoint, extra, checkpoint_note if checkpoint_note in replacing
                                       else None))
    if not args.quiet:
        kinds = f"{X_train.shape[0]} training samples, {X_train.shape[1]} features"
        steps = f"full batch, at most {optimizer.max_iter} iterations" if full_batch else \
            f"lr={optimizer.lr:g}, batch {batch_size}, {epochs} epochs"
        sched = training.get("schedule")
        if sched is not None and not full_batch:   # the lr above is where it starts
            name = sched.get("name") if isinstance(sched, dict) else sched
            steps = steps.replace(f"lr={optimizer.lr:g}", f"lr={optimizer.lr:g} ({name} schedule)", 1)
        _say(f"deepff: {data.name} ({task}; {kinds}); network "
             f"{'-'.join(str(n) for n in [net.n_features] + [layer.units for layer in net.layers])}, "
             f"{opt['name']} {steps}")
        if full_batch:
            _say(f"deepff: {opt['name']} trains on the whole training set until it converges and reports "
                 "once, counting its iterations as epochs")
    if finished:   # on stderr even with --quiet: the run trains nothing, and says why
        _note(f"{PROG}: the checkpoint {args.resume} is complete ({finished}); nothing to train, "
              "writing the run's outputs")
    model_note = f"{PROG}: replacing existing model file {output}"   # said when it happens: an
    for note in replacing:                                              # interrupted run keeps the file
        if note not in (model_note, checkpoint_note):
            _note(note)
    validation = None
    if X_test is not None and not val_split:
        validation = (X_test, y_test)  # reported per epoch as val_*: the held-out test split
        if not args.quiet:
            _say(f"deepff: val_* metrics are measured on the held-out test split ({X_test.shape[0]} samples)")
    started = time.perf_counter()
    try:
        history = net.fit(
            X_train, y_train, epochs=epochs, batch_size=batch_size, optimizer=opt,
            schedule=training.get("schedule"), regularization=training.get("regularization"),
            clip_norm=training.get("clip_norm"), validation_data=validation, validation_split=val_split,
            early_stopping=training.get("early_stopping"),
            class_weight=class_weight,
            shuffle=training.get("shuffle", True), callbacks=callbacks, resume_state=resume_state, comm=comm)
    except DivergenceError as exc:   # the weights the trainer kept die with the process: say what is on disk
        checkpointer = next((cb for cb in callbacks if isinstance(cb, _Checkpointer)), None)
        done = None if checkpointer is None else checkpointer.epoch
        if done is None and args.resume and checkpointer is not None and _same_file(args.resume, args.checkpoint):
            done = resume_state["epoch"]   # the checkpoint resumed from is still there, untouched
        saved = "nothing was saved" if done is None else f"the checkpoint {args.checkpoint} holds epoch {done}"
        raise DivergenceError(f"training diverged: {exc.where}; {saved}. {exc.advice}") from None
    interrupted = history.interrupted
    if interrupted:
        note = f"{PROG}: interrupted after {net.trainer_.epoch} complete epoch(s)"
        checkpointer = next((cb for cb in callbacks if isinstance(cb, _Checkpointer)), None)
        if checkpointer is not None:
            # the trainer state holds the position inside the interrupted epoch: an exact resume point
            checkpointer.save(net.trainer_)
            again = ["--resume", args.checkpoint, "--checkpoint", args.checkpoint]
            for flag, path in (("--output", output), ("--history", args.history), ("--plot", args.plot)):
                if path is not None:         # the same outputs as this run (the model's intended name)
                    again += [flag, path]
            note += "; resume with " + " ".join(shlex.quote(str(a)) for a in again)
        _note(note)
        output = _interrupted_output(output)

    results = {}
    if X_test is not None:
        if task == "classification":
            from .metrics import classification_report

            rep = classification_report(y_test, net.predict(X_test), n_classes)
            results = {"test_accuracy": rep["accuracy"], "test_macro_f1": rep["macro_f1"]}
        else:
            from .metrics import regression_report

            rep = regression_report(y_test, net.predict(X_test))
            results = {"test_" + k: v for k, v in rep.items()}
    last = history.records[-1] if history.records else {}
    seconds = sum(r["seconds"] for r in history.records)
    if interrupted:    # add the interrupted epoch's time, which no record holds
        start = resume_state["epoch"] if resume_state else 0
        seconds += max(0.0, time.perf_counter() - started
                       - sum(r["seconds"] for r in history.records if r["epoch"] > start))
    rows = [("metric", "value"), ("epochs", str(net.trainer_.epoch)),
            ("final training loss", f"{last['loss']:.4f}" if "loss" in last else "- (no complete epoch)")]
    rows += [(k.replace("_", " "), f"{v:.4f}") for k, v in results.items()]
    rows.append(("training time", f"{seconds:.1f}s"))
    _say(_table(rows))
    if "test_accuracy" in results:
        _say(f"test accuracy: {100 * results['test_accuracy']:.2f}%")

    if output is not None and root:
        save(net, output, preprocessing=scaler.to_dict(), classes=classes, training=train_cfg,
             metadata={**{k: v for k, v in record.items() if k != "classes"},
                       "feature_names": list(data.feature_names), "results": results})
        if not interrupted and model_note in replacing:   # said once it happened (a refused save, of
            _note(model_note)                               # labels JSON cannot hold, say, replaces nothing)
        _say(f"model saved to {output}")
    if args.history and root:
        if history.records or not args.history.lower().endswith(".json"):
            _write_history(history.records, args.history)
        else:     # [] could be anyone's file, so deepff never writes one (a CSV keeps its header)
            _note(f"{PROG}: no epoch was complete, so {args.history} is not written")
    if args.plot and root:
        _plots(args.plot, history.records, net, task, classes, X_test, y_test, data, scaler,
               val_label="test" if validation is not None else "validation", y_train=y_train)
    return 130 if interrupted else 0


def _interrupted_output(output):
    """Where an interrupted run saves its model: never over a model the user already has.

    Returns ``output`` when nothing is there, else the first of
    ``<stem>.interrupted.npz``, ``<stem>.interrupted-2.npz``, ... ``-9``
    beside it that is free or holds a deepff model (said on stderr); None
    (with a message) when all of them hold files deepff did not write.
    """
    from .io import file_format

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


def _source(dataset):
    """How ``evaluate`` finds the training data again: a built-in name or an absolute path."""
    name = dataset or "digits"
    return name.lower() if _is_builtin(name) else os.path.abspath(os.path.expanduser(name))


def _moved_source(source, model_path, what="model"):
    """The training file recorded in a model, or the file of that name beside the model.

    Models record the absolute path of a CSV or .npy training file; when a
    project folder is moved or copied, the file is usually still next to the
    model, under the same name.
    """
    if not source or not os.path.isabs(str(source)) or os.path.exists(str(source)):
        return source
    beside = os.path.join(os.path.dirname(os.path.abspath(str(model_path))), os.path.basename(str(source)))
    if not os.path.exists(beside):
        return source
    _note(f"deepff: {source} is gone; using {beside}, found beside the {what}")
    return beside


def _slug(name):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in os.path.splitext(os.path.basename(name))[0])


def _plots(path, records, net, task, classes, X_test, y_test, data, scaler, val_label="validation",
           y_train=None):
    from . import plots

    if records:    # none when Ctrl-C came in the first epoch
        plots.plot_history(records, path, title=f"deepff on {data.name}", val_label=val_label)
    stem = path[:-4]
    if task == "classification" and X_test is not None:
        from .metrics import confusion_matrix

        cm = confusion_matrix(y_test, net.predict(X_test), len(classes))
        plots.plot_confusion_matrix(cm, classes, stem + "-confusion.png",
                                    title=f"Confusion matrix ({data.name}, test set)")
    if data.n_features == 2:
        on_test = len(data.X_test) > 0
        X = data.X_test if on_test else data.X_train
        y = y_test if on_test else y_train
        which = "test set" if on_test else "training set"
        if task == "classification":
            title = f"Decision regions on {data.name} (dots: {which})"
        else:
            title = f"Predicted {data.target_name} on {data.name} (dots: {which})"
        plots.plot_decision_boundary(lambda Z: net.predict(scaler.transform(Z, dtype=net.dtype)),
                                     X, y, stem + "-boundary.png", task=task, title=title,
                                     class_names=classes, feature_names=list(data.feature_names),
                                     target_name=data.target_name)


# ----------------------------------------------------------------- evaluate
def _is_training_data(name, meta, model):
    """Whether ``name`` is the data set ``model`` was trained on.

    A built-in data set is recognised by its name, a file by the SHA-256 the
    model recorded. Models saved before deepff recorded it fall back to the
    file name, and say so.
    """
    trained_on = meta.get("dataset")
    if trained_on is None:
        return False
    if _is_builtin(name) or _is_builtin(trained_on):
        return str(name).lower() == str(trained_on).lower()
    if meta.get("dataset_sha256") is not None:
        return os.path.isfile(os.path.expanduser(name)) and _sha256(name) == meta["dataset_sha256"]
    same = os.path.basename(str(name)).lower() == str(trained_on).lower()
    if same:
        _note(f"{PROG}: {model} records no digest of its training file; taking {name} for it because the "
              "names match")
    return same


def _training_target(meta):
    """The target column the model was trained with (models before deepff recorded it: from its name)."""
    if "target" in meta:
        return meta["target"]
    name = meta.get("target_name")
    if name is None or (str(meta.get("dataset", "")).lower().endswith(".npz") and name == "y"):
        return None  # an .npz holding its own y
    if str(name).startswith("column ") and str(meta.get("dataset", "")).lower().endswith(".npy"):
        return str(name)[len("column "):]
    return str(name)


def _model_columns(meta, data, model):
    """Positions of the model's features among the data's feature columns, matched by name as
    ``deepff predict`` matches them; None: take the columns in order (the names do not cover them).

    A file whose header names every feature the model was trained on is read by name, in any
    column order; its target column may not be one of those features.
    """
    wanted = meta.get("feature_names")
    names = [str(nm) for nm in (data.feature_names or [])]
    if not isinstance(wanted, list) or not wanted:
        return None
    wanted = [str(nm) for nm in wanted]
    if _positional_names(wanted) or _positional_names(names + [str(data.target_name)]):
        return None     # col0, col1, ... (no header) or x0, x1, ... (arrays): names made from positions
    if data.target_name in wanted and data.target_name not in names:
        trained = meta.get("target_name")
        raise InputError(f"the target column {data.target_name!r} is one of the features {model} was trained on"
                         + (f"; its target was {trained!r}" if trained else "")
                         + ": give the model's target with --target")
    cols = _columns_named(wanted, names, data.name)
    return None if cols == list(range(len(names))) else cols


def _columns_named(wanted, names, source):
    """Positions in ``names`` of every name in ``wanted``, or None when some are missing.

    Raises InputError when one of them names more than one column of ``source``.
    """
    if not set(wanted) <= set(names):
        return None
    repeated = sorted({nm for nm in wanted if names.count(nm) > 1})
    if repeated:
        raise InputError(f"{source} names more than one column {', '.join(map(repr, repeated))}; column "
                         "names must be unique")
    return [names.index(nm) for nm in wanted]


def _positional_names(names):
    """Whether ``names`` are the ones deepff makes up for columns without a header (col3, x3)."""
    return all(re.fullmatch(r"(col|x)\d+", nm) for nm in names)


def cmd_evaluate(args):
    """Run ``deepff evaluate``."""
    from .io import load
    from .metrics import classification_report, regression_report

    net = load(args.model)
    meta = net.metadata if isinstance(net.metadata, dict) else {}
    name = args.dataset or _moved_source(meta.get("dataset_source"), args.model) \
        or meta.get("dataset") or "digits"
    args.dataset = str(name)
    # The data set the model was trained on: re-create its train/test split and score the held-out part.
    same = _is_training_data(args.dataset, meta, args.model)
    if args.data_dir is None and same and args.dataset.lower() == "mnist" and isinstance(meta.get("data_dir"), str) \
            and os.path.isdir(meta["data_dir"]):
        args.data_dir = meta["data_dir"]   # the MNIST copy the model was trained from
    seed = meta.get("seed", 0) if same else 0
    test_fraction = meta.get("test_fraction", 0.2) if same else 0.0
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0 or isinstance(test_fraction, bool) \
            or not isinstance(test_fraction, (int, float)) or not 0 <= test_fraction < 1:
        raise InputError(f"{args.model} records the split as seed {seed!r}, test fraction {test_fraction!r}, "
                         "which does not describe a split (an edited file?); deepff cannot tell its test "
                         "samples apart")
    changed = not same and not _is_builtin(args.dataset) and isinstance(meta.get("dataset_source"), str) \
        and os.path.abspath(os.path.expanduser(args.dataset)) == meta["dataset_source"] \
        and os.path.isfile(os.path.expanduser(args.dataset))     # (a missing file is reported by _load)
    if changed:
        _note(f"{PROG}: {args.dataset} has changed since {args.model} was trained (its SHA-256 differs), so the "
              "test split cannot be re-created: scoring all its rows, training rows included")
    if (same or changed) and not _is_builtin(args.dataset):   # read the file as training read it
        if args.target is None:
            args.target = _training_target(meta)
        if args.delimiter is None:
            args.delimiter = meta.get("delimiter")
        if args.header is None:
            args.header = meta.get("header")
    data = _load(args, seed=seed, test_fraction=test_fraction)
    on_test = len(data.X_test) > 0
    X = data.X_test if on_test else data.X_train
    y = data.y_test if on_test else data.y_train
    cols = _model_columns(meta, data, args.model)
    if cols is not None:
        X = X[:, cols]
    if X.shape[1] != net.n_features:
        raise InputError(f"the data has {X.shape[1]} features, but the model expects {net.n_features}")
    Xp = _preprocess(X, net.preprocessing, net.dtype)
    if net.task == "classification":
        classes = net.classes or list(range(net.n_outputs))
        yc = _encode(np.asarray(y), classes)
        rep = classification_report(yc, net.predict(Xp), len(classes))
        rep["classes"] = classes
    else:
        try:
            y = np.asarray(y, dtype=np.float64)
        except ValueError:
            raise InputError(f"{args.model} is a regression model, but the target column {data.target_name!r} "
                             "holds non-numeric values; give its numeric target with --target") from None
        rep = regression_report(y, net.predict(Xp))
    rep["n_samples"] = int(X.shape[0])
    rep["dataset"] = data.name
    rep["split"] = "test" if on_test else "all"
    if args.json:
        print(json.dumps(rep))
        return 0
    if on_test:
        where = "the held-out test split" + (f" (test fraction {test_fraction:g}, seed {seed})"
                                             if data.name != "mnist" else " (official)")
    else:
        where = "all samples"
    print(f"{data.name}: {rep['n_samples']} samples, {where}")
    if net.task == "classification":
        rows = [("class", "precision", "recall", "f1", "support")]
        for i, c in enumerate(rep["classes"]):
            rows.append((str(c), f"{rep['precision'][i]:.4f}", f"{rep['recall'][i]:.4f}",
                         f"{rep['f1'][i]:.4f}", str(rep["support"][i])))
        print(_table(rows))
        print("confusion matrix (rows: true class, columns: predicted):")
        names = [str(c) for c in rep["classes"]]
        print(_table([["true\\pred"] + names] + [[names[i]] + [str(v) for v in row]
                                                  for i, row in enumerate(rep["confusion_matrix"])]))
        print(f"accuracy: {100 * rep['accuracy']:.2f}%")
    else:
        print(_table([("metric", "value")] + [(k, f"{rep[k]:.6g}") for k in ("mse", "mae", "r2")]))
    return 0


# ------------------------------------------------------------------ predict
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
        from .datasets import is_plain_number

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


def cmd_predict(args):
    """Run ``deepff predict``."""
    from .io import atomic_write, load

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


# ---------------------------------------------------------- summary, others
def cmd_summary(args):
    """Run ``deepff summary``."""
    from .io import load
    from .model import Network

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


def cmd_gradcheck(args):
    """Run ``deepff gradcheck``."""
    from .gradcheck import gradcheck_report
    from .model import Network

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
        from .spec import parse_regularization

        penalty = parse_regularization(training["regularization"])
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = gradcheck_report(net, X, y, penalty=penalty)
    for w in caught:                 # e.g. a pre-activation on a ReLU kink: the check cannot judge it
        _note(f"{PROG}: warning: {w.message}")
    worst_by_layer = {}
    for name, err in report.items():
        layer = name.split(".")[0]
        worst_by_layer[layer] = max(worst_by_layer.get(layer, 0.0), err)
    rows = [("layer", "worst relative error", "status")]
    for layer, err in worst_by_layer.items():
        rows.append((layer, f"{err:.3e}", "ok" if err < 1e-6 else "FAIL"))
    print(_table(rows))
    worst = max(report.values())
    print(f"worst relative error: {worst:.3e} ({'pass' if worst < 1e-6 else 'FAIL'}, threshold 1e-6)")
    return 0 if worst < 1e-6 else 1


def cmd_datasets(args):
    """Run ``deepff datasets``."""
    from .datasets import list_datasets

    if args.data_dir is not None and not os.path.isdir(os.path.expanduser(args.data_dir)):
        raise UsageError(f"--data-dir {args.data_dir} is not a folder")
    rows = [("name", "present", "description", "location")]
    for d in list_datasets(args.data_dir):
        rows.append((d["name"], "yes" if d.get("present") else "no", d.get("description", ""),
                     d.get("location", "")))
    print(_table(rows))
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "summary": cmd_summary, "gradcheck": cmd_gradcheck, "datasets": cmd_datasets}


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
        from .distributed import run_ranks

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
        return COMMANDS[args.command](args)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
