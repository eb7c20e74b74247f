"""``deepff train``: train a network on a data set and save it, with checkpoints and resume.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from types import SimpleNamespace

import numpy as np

from ..errors import DivergenceError, InputError, SpecError
from ..training import Callback
from .common import (
    PROG,
    UsageError,
    _canonical_loss,
    _is_builtin,
    _load,
    _note,
    _relative_to,
    _same_file,
    _say,
    _sha256,
    _source,
    _table,
)
from .files import (
    _check_plot_siblings,
    _check_train_files,
    _default_output,
    _interrupted_output,
    _plot_siblings,
    _write_history,
)
from .parser import _fraction, _hidden, _non_negative_int, _positive_float, _positive_int, add_data_flags
from .resume import _check_resume, _check_resume_settings, _resume_defaults

DEFAULTS = {
    # the classic architecture on the bundled 8x8 digits: a few seconds
    "digits": {"hidden": [128, 64], "optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 30},
    "mnist": {"hidden": [256, 128], "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 10},
    # a table of the user's: train until the training loss stops improving (as scikit-learn's MLPs do:
    # by less than 1e-4 for 10 epochs), at most 200 epochs; --epochs or a config's epochs trains exactly that
    "other": {"hidden": [100], "optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 200,
              "until": {"monitor": "loss", "min_delta": 1e-4, "patience": 10, "restore_best": False}},
}


OUTPUT_ACTIVATION = {"neg_log_likelihood": "softmax", "binary_cross_entropy": "sigmoid", "poisson": "exp"}


class _Reporter(Callback):
    """Progress bar (terminals only) and one line per epoch, unless quiet."""

    reads_gradients = False      # its on_batch_end only moves the bar,
    between_steps = False        # after a run of compiled steps as well as after each

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
        from ..io import save_checkpoint

        save_checkpoint(trainer, self.path, self.extra)
        if self.note:              # "replacing existing checkpoint file ...", said when it happens: a
            _note(self.note)       # run that fails before its first save has replaced nothing
            self.note = None

    def on_epoch_end(self, trainer, record):
        self.save(trainer)
        self.epoch = trainer.epoch


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



def _loss_of(args, task, base_spec):
    """The output loss of a new run (canonical name) and how the user chose it, for messages."""
    if args.loss:
        return _canonical_loss(args.loss), "--loss"
    if base_spec is not None and args.hidden is None:
        return _canonical_loss(base_spec[-1]["loss_type"]), "the config's loss"
    return ("neg_log_likelihood" if task == "classification" else "mse"), "the default loss"


def _check_loss(loss, how, task, n_classes, y):
    """Refuse a loss that cannot learn this target, naming the losses that can."""
    from .. import losses

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
    from ..data import MAX_CLASSES

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


def _check_names(args):
    """Fail fast (before loading any data) on unknown optimizer/activation/loss names."""
    from .. import activations, losses, optimizers

    for value, registry in ((args.optimizer, optimizers.REGISTRY), (args.activation, activations.REGISTRY),
                            (args.loss, losses.REGISTRY)):
        if value is not None:
            registry.canonical(value)


def _optimizer(args, training, defaults, resume_extra):
    """The optimizer config of the run: flags over the config file over the defaults."""
    from .. import optimizers

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
    from ..data import encode_labels

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


def add_parser(subparsers):
    """Add ``deepff train`` and its flags to ``subparsers``."""
    t = subparsers.add_parser("train", help="train a network and save it")
    add_data_flags(t)
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
    t.add_argument("--augment", choices=["elastic", "affine"], help="distort the training images afresh every "
                   "epoch (defaults: elastic sigma=4 alpha=34; see deepff.augment); or training.augment in --config")
    t.add_argument("--resume-on-new-data", action="store_true",
                   help="with --resume: continue on data other than the checkpoint's, on purpose")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def run(args):
    """Run ``deepff train``; return its exit status (0, or 130 when Ctrl-C stopped it).

    The steps, each a function below: the settings (flags over the config
    over a checkpoint's, refused before any data is read), the data, the
    network (new or resumed), the opening lines and callbacks, training,
    and the outputs (results table, model, history, plots).
    """
    run = _settings(args)
    _data(run)
    _network(run)
    _callbacks(run)
    history = _fit(run)
    status = _outputs(run, history)         # 2 when an output had to go to a recovery folder
    return status or (130 if history.interrupted else 0)


def _settings(args):
    """The run's settings from the flags, the config and a resumed checkpoint; output files checked."""
    from ..io import load_checkpoint
    from ..spec import load_config, parse_training

    _check_names(args)
    run = SimpleNamespace(args=args, net=None, resume_state=None, resume_extra=None)
    run.comm = getattr(sys.modules.get("deepff.distributed"), "LAUNCHED", None)   # mpiexec -n K: rank 0 writes
    run.root = run.comm is None or run.comm.Get_rank() == 0
    if args.resume_on_new_data and not args.resume:
        raise UsageError("--resume-on-new-data goes with --resume CHECKPOINT; drop it for a new run")
    if args.resume:
        run.net, run.resume_state, extra = load_checkpoint(args.resume)
        run.resume_extra = extra if isinstance(extra, dict) else {}
        _resume_defaults(args, run.resume_extra)
    run.output = args.output if args.output is not None else _default_output(args.dataset)
    run.replacing = _check_train_files(args, run.output)
    cfg = load_config(args.config) if args.config else {"layers": None, "training": {}, "dtype": None,
                                                         "seed": None}
    run.cfg, run.training = cfg, dict(cfg["training"])
    if args.resume and not args.config and isinstance(run.resume_extra.get("training"), dict):
        # batch size, schedule, ... of the run resumed, read as a config's (JSON made class_weight's keys text)
        run.training = parse_training(dict(run.resume_extra["training"]))
    if getattr(args, "augment", None):    # --augment KIND: the kind's default parameters
        run.training["augment"] = args.augment
    elif args.resume and run.training.get("augment") is None and isinstance(run.resume_extra.get("training"), dict):
        run.training["augment"] = run.resume_extra["training"].get("augment")   # a resumed run keeps its distortions
    run.seed = args.seed if args.seed is not None else (cfg["seed"] if cfg["seed"] is not None else 0)
    run.test_fraction = args.test_fraction if args.test_fraction is not None else 0.2
    run.dtype = str(run.net.dtype) if run.net is not None else (args.dtype or cfg["dtype"] or "float32")
    run.defaults = DEFAULTS[_kind(args)]
    if args.resume:
        _check_resume_settings(args, run.net, run.resume_extra, cfg,
                               _optimizer(args, run.training, run.defaults, run.resume_extra))
    return run


def _data(run):
    """Load the data, encode its targets, check the class weights and standardise the features."""
    from ..data import Standardizer
    from ..training import class_weights

    args = run.args
    data = run.data = _load(args, seed=run.seed, test_fraction=run.test_fraction)
    run.digest = None if _is_builtin(args.dataset) else _sha256(args.dataset)
    run.task, run.classes, run.y_train, run.y_test = _targets(args, data)
    run.n_classes = len(run.classes) if run.classes else None
    run.class_weight = _class_weight(run.training.get("class_weight"), run.classes)
    if run.class_weight is not None:     # refused here, before anything is printed or trained
        if run.task != "classification":
            raise UsageError("class_weight weighs classes, but this run is a regression; drop it from the config")
        class_weights(run.y_train, run.class_weight, run.n_classes)
    if data.name == "mnist":
        run.scaler = Standardizer.from_dict({"mean": [0.0] * data.n_features, "std": [1.0] * data.n_features})
    else:
        run.scaler = Standardizer().fit(data.X_train)
    run.X_train = run.scaler.transform(data.X_train, dtype=run.dtype)
    if run.training.get("augment") is not None:    # a wrong image shape is refused before anything is printed
        from ..augment import get as get_augment
        get_augment(run.training["augment"], seed=run.seed).check(run.X_train.shape[1])
    run.X_test = run.scaler.transform(data.X_test, dtype=run.dtype) if len(data.X_test) else None
    if args.plot:
        run.replacing += _check_plot_siblings(args, run.output, _plot_siblings(
            args.plot, run.task, run.X_test is not None, data.n_features))


def _network(run):
    """The optimizer, the number of epochs and the network: new from the spec, or the checkpoint's."""
    from ..model import Network
    from ..optimizers import get as get_optimizer

    args, training, defaults = run.args, run.training, run.defaults
    run.opt = _optimizer(args, training, defaults, run.resume_extra)
    run.optimizer = get_optimizer(dict(run.opt))
    run.full_batch = getattr(run.optimizer, "full_batch", False)
    resumed_training = (run.resume_extra or {}).get("training")
    run.epochs = args.epochs or (resumed_training or {}).get("epochs") or training.get("epochs", defaults["epochs"])
    if "until" in defaults and not (args.epochs or resumed_training or "epochs" in training
                                    or "early_stopping" in training):
        training["early_stopping"] = dict(defaults["until"])    # the default stopping rule (no epochs given)
    run.finished = None
    n_features = run.X_train.shape[1]
    if args.resume:
        run.finished = _check_resume(args, run.net, run.resume_state, run.resume_extra, {
            "dataset": run.data.name, "dataset_sha256": run.digest, "seed": run.seed,
            "test_fraction": run.test_fraction, "task": run.task, "classes": run.classes,
            "target_name": run.data.target_name, "epochs": run.epochs, "full_batch": run.full_batch})
        if run.net.n_features != n_features:
            raise InputError(f"the checkpoint's network expects {run.net.n_features} features, "
                             f"the data has {n_features}")
    else:
        loss, how = _loss_of(args, run.task, run.cfg["layers"])
        _check_loss(loss, how, run.task, run.n_classes, run.y_train)
        y = run.y_train
        n_outputs = (1 if loss == "binary_cross_entropy" else run.n_classes) if run.classes else \
            (1 if y.ndim == 1 else y.shape[1])
        spec = _architecture(args, n_features, n_outputs, run.task, run.cfg["layers"], loss)
        run.net = Network.from_spec(spec, dtype=run.dtype, seed=run.seed)
    run.batch_size = args.batch_size or training.get("batch_size", defaults["batch_size"])
    val_split = args.validation_split if args.validation_split is not None \
        else training.get("validation_split", 0.0)
    if _monitors_validation(training.get("early_stopping")) and not val_split:
        val_split = 0.1  # early stopping must never look at the test split
    run.val_split = val_split
    run.train_cfg = {**training, "optimizer": run.opt, "epochs": run.epochs, "batch_size": run.batch_size,
                     "validation_split": val_split, "augment": training.get("augment")}
    if isinstance(run.train_cfg.get("class_weight"), dict):   # stored as JSON, whose keys are texts; a resume
        run.train_cfg["class_weight"] = {str(k): w for k, w in run.train_cfg["class_weight"].items()}  # maps back


def _monitors_validation(early_stopping):
    """Whether an early-stopping setting (a dict, a name or None) watches a validation metric."""
    if not early_stopping:
        return False
    monitor = early_stopping.get("monitor", "val_loss") if isinstance(early_stopping, dict) else "val_loss"
    return str(monitor).startswith("val_")


def _callbacks(run):
    """The record of the run (kept in the model and checkpoints), its callbacks and its opening lines."""
    args, data = run.args, run.data
    shown_epochs = run.optimizer.max_iter if run.full_batch else run.epochs
    run.callbacks = [_Reporter(args.quiet, int(round(run.X_train.shape[0] * (1 - run.val_split))), shown_epochs)]
    run.record = {"dataset": data.name, "dataset_source": _source(args.dataset, run.output),
                  "dataset_sha256": run.digest,
                  "target": args.target, "target_name": data.target_name, "delimiter": args.delimiter,
                  "header": args.header,
                  "seed": run.seed, "test_fraction": run.test_fraction, "task": run.task, "classes": run.classes,
                  "data_dir": _data_dir(args.data_dir, run.output)}
    extra = {**run.record, "preprocessing": run.scaler.to_dict(), "training": run.train_cfg,
             "dataset_source": _source(args.dataset, args.checkpoint), "data_dir": _data_dir(args.data_dir,
                                                                                               args.checkpoint)}
    _check_savable(run, extra)
    checkpoint_note = f"{PROG}: replacing existing checkpoint file {args.checkpoint}"   # said at its first save
    if args.checkpoint and run.root:
        run.callbacks.append(_Checkpointer(args.checkpoint, extra, checkpoint_note if checkpoint_note in run.replacing
                                           else None))
    if not args.quiet:
        _say_plan(run)
    if run.finished:   # on stderr even with --quiet: the run trains nothing, and says why
        _note(f"{PROG}: the checkpoint {args.resume} is complete ({run.finished}); nothing to train, "
              "writing the run's outputs")
    run.model_note = f"{PROG}: replacing existing model file {run.output}"   # said when it happens: an
    for note in run.replacing:                                                  # interrupted run keeps the file
        if note not in (run.model_note, checkpoint_note):
            _note(note)
    run.validation = None
    if run.X_test is not None and not run.val_split:
        run.validation = (run.X_test, run.y_test)  # reported per epoch as val_*: the held-out test split
        if not args.quiet:
            _say(f"deepff: val_* metrics are measured on the held-out test split ({run.X_test.shape[0]} samples)")


def _check_savable(run, extra):
    """Refuse, before training, what the model file or the checkpoints could not hold (labels, metadata)."""
    from ..io import check_savable

    if run.output is not None:
        check_savable(run.net, preprocessing=run.scaler.to_dict(), classes=run.classes, training=run.train_cfg,
                      metadata=_metadata(run, results={}))
    if run.args.checkpoint:
        check_savable(run.net, metadata=extra)


def _metadata(run, results):
    """What the model file records of the run: the data, the split, the features and the test results."""
    finite = {k: (v if np.isfinite(v) else None) for k, v in results.items()}   # (R^2 of a constant target)
    return {**{k: v for k, v in run.record.items() if k != "classes"},
            "feature_names": list(run.data.feature_names), "results": finite}


def _data_dir(data_dir, anchor):
    """The MNIST folder given with --data-dir, recorded relative to ``anchor``'s folder (None if not given)."""
    return None if data_dir is None else _relative_to(os.path.abspath(os.path.expanduser(data_dir)), anchor)


def _say_plan(run):
    """The opening line: data, network and optimizer (and how L-BFGS counts)."""
    optimizer, opt, net = run.optimizer, run.opt, run.net
    kinds = f"{run.X_train.shape[0]} training samples, {run.X_train.shape[1]} features"
    steps = f"full batch, at most {optimizer.max_iter} iterations" if run.full_batch else \
        f"lr={optimizer.lr:g}, batch {run.batch_size}, {run.epochs} epochs"
    sched = run.training.get("schedule")
    if sched is not None and not run.full_batch:   # the lr above is where it starts
        name = sched.get("name") if isinstance(sched, dict) else sched
        steps = steps.replace(f"lr={optimizer.lr:g}", f"lr={optimizer.lr:g} ({name} schedule)", 1)
    aug = run.training.get("augment")
    if aug is not None and not run.full_batch:     # e.g. "..., 200 epochs, elastic distortions"
        steps += f", {aug.get('kind') if isinstance(aug, dict) else aug} distortions"
    _say(f"deepff: {run.data.name} ({run.task}; {kinds}); network "
         f"{'-'.join(str(n) for n in [net.n_features] + [layer.units for layer in net.layers])}, "
         f"{opt['name']} {steps}")
    if run.full_batch:
        _say(f"deepff: {opt['name']} trains on the whole training set until it converges and reports "
             "once, counting its iterations as epochs")


def _fit(run):
    """Train; on divergence say what is on disk, on Ctrl-C write the checkpoint and say how to resume."""
    args, training = run.args, run.training
    run.started = time.perf_counter()
    checkpointer = next((cb for cb in run.callbacks if isinstance(cb, _Checkpointer)), None)
    try:
        history = run.net.fit(
            run.X_train, run.y_train, epochs=run.epochs, batch_size=run.batch_size, optimizer=run.opt,
            schedule=training.get("schedule"), regularization=training.get("regularization"),
            clip_norm=training.get("clip_norm"), validation_data=run.validation, validation_split=run.val_split,
            early_stopping=training.get("early_stopping"),
            class_weight=run.class_weight,
            shuffle=training.get("shuffle", True), callbacks=run.callbacks, resume_state=run.resume_state,
            resume_on_new_data=args.resume_on_new_data, augment=training.get("augment"), comm=run.comm)
    except DivergenceError as exc:   # the weights the trainer kept die with the process: say what is on disk
        done = None if checkpointer is None else checkpointer.epoch
        if done is None and args.resume and checkpointer is not None and _same_file(args.resume, args.checkpoint):
            done = run.resume_state["epoch"]   # the checkpoint resumed from is still there, untouched
        saved = "nothing was saved" if done is None else f"the checkpoint {args.checkpoint} holds epoch {done}"
        raise DivergenceError(f"training diverged: {exc.where}; {saved}. {exc.advice}") from None
    if history.interrupted:
        note = f"{PROG}: interrupted after {run.net.trainer_.epoch} complete epoch(s)"
        if checkpointer is not None:
            # the trainer state holds the position inside the interrupted epoch: an exact resume point
            checkpointer.save(run.net.trainer_)
            again = ["--resume", args.checkpoint, "--checkpoint", args.checkpoint]
            for flag, path in (("--output", run.output), ("--history", args.history), ("--plot", args.plot)):
                if path is not None:         # the same outputs as this run (the model's intended name)
                    again += [flag, path]
            note += "; resume with " + " ".join(shlex.quote(str(a)) for a in again)
        _note(note)
        run.output = _interrupted_output(run.output)
    return history


def _test_results(run):
    """The test-split metrics of the trained network ({} without a test split)."""
    if run.X_test is None:
        return {}
    if run.task == "classification":
        from ..metrics import classification_report

        rep = classification_report(run.y_test, run.net.predict(run.X_test), run.n_classes)
        return {"test_accuracy": rep["accuracy"], "test_macro_f1": rep["macro_f1"]}
    from ..metrics import regression_report

    rep = regression_report(run.y_test, run.net.predict(run.X_test))
    return {"test_" + k: v for k, v in rep.items()}


def _outputs(run, history):
    """The results table, then the model, the history and the plots."""
    from ..io import save

    args, net = run.args, run.net
    results = _test_results(run)
    last = history.records[-1] if history.records else {}
    seconds = sum(r["seconds"] for r in history.records)
    if history.interrupted:    # add the interrupted epoch's time, which no record holds
        start = run.resume_state["epoch"] if run.resume_state else 0
        seconds += max(0.0, time.perf_counter() - run.started
                       - sum(r["seconds"] for r in history.records if r["epoch"] > start))
    rows = [("metric", "value"), ("epochs", str(net.trainer_.epoch)),
            ("final training loss", f"{last['loss']:.4f}" if "loss" in last else "- (no complete epoch)")]
    rows += [(k.replace("_", " "), f"{v:.4f}") for k, v in results.items()]
    rows.append(("training time", f"{seconds:.1f}s"))
    _say(_table(rows))
    if "test_accuracy" in results:
        _say(f"test accuracy: {100 * results['test_accuracy']:.2f}%")
    lost = []         # files that could not be written where asked, and where they are now
    if not run.root:               # --- distributed: rank 0 alone writes the outputs
        return None
    if run.output is not None:
        lost += _write_kept("model", run.output, lambda p: save(
            net, p, preprocessing=run.scaler.to_dict(), classes=run.classes, training=run.train_cfg,
            metadata=_metadata(run, results)))
        if not lost:
            if not history.interrupted and run.model_note in run.replacing:   # said once it happened (a refused
                _note(run.model_note)                         # save, of labels JSON cannot hold, replaces nothing)
            _say(f"model saved to {run.output}")
    if args.history:
        if history.records or not args.history.lower().endswith(".json"):
            lost += _write_kept("history", args.history, lambda p: _write_history(history.records, p))
        else:     # [] could be anyone's file, so deepff never writes one (a CSV keeps its header)
            _note(f"{PROG}: no epoch was complete, so {args.history} is not written")
    if args.plot:
        lost += _write_kept("plot", args.plot, lambda p: _plots(
            p, history.records, net, run.task, run.classes, run.X_test, run.y_test, run.data, run.scaler,
            val_label="test" if run.validation is not None else "validation", y_train=run.y_train))
    for line in lost:
        _note(f"{PROG}: error: {line}")
    return 2 if lost else None


def _write_kept(what, path, write_to):
    """Write an output with ``write_to(path)``; if that fails, keep it in a recovery folder.

    Returns a list with one line for the user (which file, why, where it is
    now, how to move it) when ``path`` could not be written, else [].
    Raises the error when no recovery folder could take it either.
    """
    from ..io import write_or_recover

    recovered, error = write_or_recover(write_to, path)
    if recovered is None:
        return []
    why = error.strerror or str(error)
    return [f"could not write the {what} {path} ({why}); the {what} is saved at {recovered} instead: "
            f"move it with mv {shlex.quote(recovered)} {shlex.quote(str(path))} once there is room"]


def _plots(path, records, net, task, classes, X_test, y_test, data, scaler, val_label="validation",
           y_train=None):
    from .. import plots

    if records:    # none when Ctrl-C came in the first epoch
        plots.plot_history(records, path, title=f"deepff on {data.name}", val_label=val_label)
    stem = path[:-4]
    if task == "classification" and X_test is not None:
        from ..metrics import confusion_matrix

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
