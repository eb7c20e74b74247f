"""What a resumed ``deepff train --resume`` keeps from its checkpoint, and the refusals of flags,
configs and data that contradict it.
"""

from __future__ import annotations

from .common import (
    UsageError,
    _canonical_activation,
    _canonical_loss,
    _is_builtin,
    _moved_source,
    _recorded_path,
)


def _resume_defaults(args, extra):
    """Take what a resumed run must keep from the checkpoint, unless the command line gives it."""
    if args.dataset is None:   # older checkpoints lack it: compared by name later
        args.dataset = _moved_source(extra.get("dataset_source"), args.resume, "checkpoint")
    for key in ("target", "delimiter", "header", "seed", "test_fraction", "task", "data_dir"):
        if key == "data_dir" and str(extra.get("dataset")).lower() != "mnist":
            continue    # (only an MNIST run's folder matters; older versions recorded any)
        if getattr(args, key) is None and extra.get(key) is not None:
            setattr(args, key, _recorded_path(extra[key], args.resume) if key == "data_dir" else extra[key])
    if args.lr is not None:
        raise UsageError(f"--lr does not apply to a resumed run: it continues with the checkpoint "
                         f"{args.resume}'s optimizer and its state; drop --lr")


def _check_same_data(where, extra, found):
    """Refuse a checkpoint of another data file (by its SHA-256) or data set (by name)."""
    if extra.get("dataset_sha256") is not None:
        if found["dataset_sha256"] != extra["dataset_sha256"]:
            raise UsageError(f"{where} was trained on {extra.get('dataset_source')}, but {found['dataset']} "
                             "holds other data (its SHA-256 differs); resume on the same data, or add "
                             "--resume-on-new-data to continue on this data on purpose")
    elif extra.get("dataset") is not None and extra["dataset"] != found["dataset"]:
        raise UsageError(f"{where} was trained on {extra['dataset']}, not {found['dataset']}; give "
                         f"--dataset {extra['dataset']}")


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
    if not getattr(args, "resume_on_new_data", False):    # (on purpose: network and labels still compared)
        _check_same_data(where, extra, found)
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
    from ..spec import parse_layers

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
                             ("validation_split", "--validation-split", args.validation_split),
                             ("augment", "--augment", getattr(args, "augment", None))):
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
        from .. import optimizers

        canon = optimizers.REGISTRY.canonical
        same = canon(opt["name"]) == canon(recorded["name"]) and all(
            opt[k] == recorded[k] for k in opt.keys() & recorded.keys() if k != "name")
        if not same:
            source = "--optimizer" if args.optimizer else "the config's optimizer"
            raise UsageError(f"{source} {opt['name']!r} ({opt}) contradicts {where}, whose run uses "
                             f"{recorded['name']!r} ({recorded}); a resumed run keeps its optimizer and its state")
