"""What a playground run is: its settings, checked, and the classic spec they make.

A playground config is a flat JSON object (it also lives in the page's URL)::

    {"dataset": "spiral", "noise": 0.1, "features": ["x1", "x2"],
     "layers": [{"units": 8, "activation": "tanh"}, {"units": 8, "activation": "tanh"}],
     "output_activation": "auto", "loss": "auto", "optimizer": "adam", "lr": 0.01, ...}

:func:`check_config` fills in the defaults and refuses an unknown key or a
value out of range, naming the key and the valid choices; :func:`spec_of`
turns a config into the classic layer list that
:meth:`deepff.Network.from_spec` builds, so the page, the downloaded model
and the shown Python code all describe one network. Which output activation
and loss go together is decided by the engine itself (:func:`pair_problems`).
"""

from __future__ import annotations

import math

import numpy as np

from .. import activations, initializers, losses, optimizers
from ..errors import InputError, SpecError, choices
from .datasets import DATASETS, FEATURES

__all__ = ["DEFAULTS", "LIMITS", "check_config", "spec_of", "output_units", "pair_problems", "canonical_names",
           "ConfigError"]


class ConfigError(InputError):
    """A playground config (or request) is malformed; ``status`` is the HTTP status to answer."""

    status = 400


#: bounds on the work a session may ask for
LIMITS = {
    "max_hidden_layers": 6,
    "max_units": 32,
    "max_samples": 2000,
    "max_upload_rows": 5000,
    "max_upload_bytes": 1_000_000,
    "max_json_bytes": 65_536,
    "max_epochs_per_request": 100,
    "max_ms_per_request": 250,
    "gradcheck_samples": 8,
    "grid": 40,
}


def canonical_names(module, exclude=()):
    """The built-in names of a registry module, aliases folded.

    Parameters
    ----------
    module : module
        :mod:`deepff.activations`, :mod:`deepff.losses` or
        :mod:`deepff.initializers` (anything with ``REGISTRY`` and ``get``).
    exclude : iterable of str, optional
        Names to leave out.

    Returns
    -------
    list of str
        Sorted.
    """
    names = {getattr(module.get(n), "name", n) for n in module.REGISTRY.names()}
    return sorted(names - set(exclude))


ACTIVATIONS = canonical_names(activations)
LOSSES = canonical_names(losses)
INITIALIZERS = ["default"] + canonical_names(initializers)
#: L-BFGS chooses its own steps over the full batch: it has no learning rate and no steps to watch
OPTIMIZERS = canonical_names(optimizers, exclude={"lbfgs"})

DEFAULTS = {
    "dataset": "circles",
    "n_samples": 500,
    "noise": 0.0,
    "train_fraction": 0.5,
    "data_seed": 0,
    "features": ["x1", "x2"],
    "task": "auto",
    "layers": [{"units": 4, "activation": "tanh"}, {"units": 2, "activation": "tanh"}],
    "output_activation": "auto",
    "loss": "auto",
    "init": "default",
    "optimizer": "sgd",
    "lr": 0.03,
    "batch_size": 10,
    "l1": 0.0,
    "l2": 0.0,
    "seed": 0,
}
_LAYER_DEFAULTS = {"units": 4, "activation": "tanh", "dropout": 0.0, "batch_norm": False}


def _number(key, value, lo, hi, integer=False, lo_open=False):
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        raise ConfigError(f"{key} must be {kind}, got {value!r}")
    if (value <= lo if lo_open else value < lo) or value > hi:
        raise ConfigError(f"{key} must be {'>' if lo_open else '>='} {lo} and <= {hi}, got {value!r}")
    return value


def _one_of(key, value, valid):
    if not isinstance(value, str) or value not in valid:
        raise ConfigError(f"{key} is {value!r}; valid choices: {choices(valid)}")
    return value


def _unknown(where, given, valid):
    unknown = sorted(set(given) - set(valid), key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; valid fields: {choices(valid)}")


def _check_layers(layers):
    if not isinstance(layers, list):
        raise ConfigError(f"layers must be a list of hidden layers, got {type(layers).__name__}")
    if len(layers) > LIMITS["max_hidden_layers"]:
        raise ConfigError(f"at most {LIMITS['max_hidden_layers']} hidden layers, got {len(layers)}")
    out = []
    for i, layer in enumerate(layers, start=1):
        if not isinstance(layer, dict):
            raise ConfigError(f"hidden layer {i} must be an object, got {type(layer).__name__}")
        _unknown(f"hidden layer {i}", layer, _LAYER_DEFAULTS)
        full = {**_LAYER_DEFAULTS, **layer}
        _number(f"hidden layer {i}: units", full["units"], 1, LIMITS["max_units"], integer=True)
        _one_of(f"hidden layer {i}: activation", full["activation"], ACTIVATIONS)
        _number(f"hidden layer {i}: dropout", full["dropout"], 0, 0.9)
        if not isinstance(full["batch_norm"], bool):
            raise ConfigError(f"hidden layer {i}: batch_norm must be true or false, got {full['batch_norm']!r}")
        out.append(full)
    return out


def check_config(raw, uploaded=False):
    """Validate a config and fill in the defaults.

    Parameters
    ----------
    raw : dict
        Any subset of :data:`DEFAULTS`'s keys.
    uploaded : bool
        Whether the session holds an uploaded table (``dataset: "upload"``).

    Returns
    -------
    dict
        Every key of :data:`DEFAULTS`, checked.

    Raises
    ------
    ConfigError
        Naming the key at fault and the valid choices or range.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"config must be an object, got {type(raw).__name__}")
    _unknown("config", raw, DEFAULTS)
    cfg = {**DEFAULTS, **raw}
    _one_of("dataset", cfg["dataset"], list(DATASETS) + ["upload"])
    if cfg["dataset"] == "upload" and not uploaded:
        raise ConfigError("dataset 'upload' needs a CSV uploaded to this session first")
    _number("n_samples", cfg["n_samples"], 10, LIMITS["max_samples"], integer=True)
    _number("noise", cfg["noise"], 0, 0.5)
    _number("train_fraction", cfg["train_fraction"], 0.1, 0.9)
    _number("data_seed", cfg["data_seed"], 0, 2**31 - 1, integer=True)
    feats = cfg["features"]
    if not isinstance(feats, list) or not feats:
        raise ConfigError(f"features must be a non-empty list; valid choices: {choices(FEATURES)}")
    for f in feats:
        _one_of("features", f, FEATURES)
    if len(set(feats)) != len(feats):
        raise ConfigError("features lists a feature twice")
    cfg["features"] = [f for f in FEATURES if f in feats]      # one order: the page's
    _one_of("task", cfg["task"], ("auto", "classification", "regression"))
    cfg["layers"] = _check_layers(cfg["layers"])
    _one_of("output_activation", cfg["output_activation"], ["auto"] + ACTIVATIONS)
    _one_of("loss", cfg["loss"], ["auto"] + LOSSES)
    _one_of("init", cfg["init"], INITIALIZERS)
    if cfg["optimizer"] == "lbfgs":
        raise ConfigError("optimizer 'lbfgs' searches for its own step lengths over the whole data set, so there "
                          f"are no steps to watch; valid choices: {choices(OPTIMIZERS)}")
    _one_of("optimizer", cfg["optimizer"], OPTIMIZERS)
    _number("lr", cfg["lr"], 0, 10, lo_open=True)
    _number("batch_size", cfg["batch_size"], 1, LIMITS["max_upload_rows"], integer=True)
    _number("l1", cfg["l1"], 0, 1)
    _number("l2", cfg["l2"], 0, 1)
    _number("seed", cfg["seed"], 0, 2**31 - 1, integer=True)
    return cfg


def default_pair(task, n_classes):
    """The output activation and loss chosen for "auto" (tuple of str)."""
    if task == "regression":
        return "linear", "mse"
    return ("sigmoid", "binary_cross_entropy") if n_classes == 2 else ("softmax", "neg_log_likelihood")


def output_units(task, n_classes, loss):
    """Width of the output layer: one unit per class, one sigmoid unit for two classes, 1 for regression.

    Parameters
    ----------
    task : {"classification", "regression"}
    n_classes : int
    loss : str
        The output loss's name.

    Returns
    -------
    int
    """
    if task == "regression":
        return 1
    return 1 if losses.get(loss).name == "binary_cross_entropy" and n_classes == 2 else n_classes


def pair_problem(task, n_classes, activation, loss, y_sample):
    """Why an output activation and a loss cannot go together on these data (str), or None.

    The engine decides: the pair is built into a one-layer network and given
    sample targets, and its refusal is the reason shown.
    """
    from ..layers import Dense
    from ..model import Network

    lo = losses.get(loss)
    if lo.task != task:
        return f"{loss} is a {lo.task} loss, and these data are a {task}"
    if task == "classification" and lo.name == "binary_cross_entropy" and n_classes > 2:
        return (f"binary_cross_entropy treats outputs as independent yes/no labels; {n_classes} exclusive "
                "classes need softmax with neg_log_likelihood")
    try:
        net = Network([Dense(output_units(task, n_classes, loss), activation)], loss=loss, n_features=1,
                      dtype="float64")
        net.prepare_targets(y_sample, len(y_sample))
    except (SpecError, InputError) as exc:
        return str(exc)
    return None


def pair_problems(task, n_classes, y_sample):
    """Every output activation x loss pair with the reason it is refused (None when it is fine).

    Parameters
    ----------
    task : {"classification", "regression"}
    n_classes : int
        Number of classes (classification).
    y_sample : ndarray of shape (n_samples,)
        Targets, to tell which losses they suit (poisson needs counts).

    Returns
    -------
    dict of str to dict of str to (str or None)
        ``problems[activation][loss]``.
    """
    y_sample = np.asarray(y_sample)
    return {a: {lo: pair_problem(task, n_classes, a, lo, y_sample) for lo in LOSSES} for a in ACTIVATIONS}


def resolved_pair(cfg, task, n_classes):
    """The output activation and loss of a config, "auto" replaced by the task's default."""
    act, loss = default_pair(task, n_classes)
    return (act if cfg["output_activation"] == "auto" else cfg["output_activation"],
            loss if cfg["loss"] == "auto" else cfg["loss"])


def spec_of(cfg, n_features, task, n_classes):
    """The classic spec (list of layer dicts) of a checked config.

    Parameters
    ----------
    cfg : dict
        From :func:`check_config`.
    n_features : int
    task : {"classification", "regression"}
    n_classes : int or None

    Returns
    -------
    list of dict
        For :meth:`deepff.Network.from_spec`; optional keys appear only when
        they differ from the engine's defaults.
    """
    act, loss = resolved_pair(cfg, task, n_classes)
    spec = [{"layer_type": "input", "n_features": int(n_features), "batch_size": cfg["batch_size"]}]
    for layer in cfg["layers"]:
        entry = {"layer_type": "fullyconn", "n_neurons": layer["units"], "activation": layer["activation"]}
        if cfg["init"] != "default":
            entry["init"] = cfg["init"]
        if layer["dropout"]:
            entry["dropout"] = layer["dropout"]
        if layer["batch_norm"]:
            entry["batch_norm"] = True
        spec.append(entry)
    out = {"layer_type": "output", "n_neurons": output_units(task, n_classes, loss), "activation": act,
           "loss_type": loss}
    if cfg["init"] != "default":
        out["init"] = cfg["init"]
    spec.append(out)
    return spec


def regularization_of(cfg):
    """The ``regularization`` argument of ``fit`` (dict or None)."""
    reg = {k: cfg[k] for k in ("l1", "l2") if cfg[k]}
    return reg or None
