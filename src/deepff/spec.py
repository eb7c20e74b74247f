"""Declarative network specs: the classic list of layer dicts, and config files.

The classic spec is a list of dicts, one per layer::

    [
        {"layer_type": "input", "n_features": 10, "batch_size": 32},
        {"layer_type": "fullyconn", "n_neurons": 5, "activation": "relu"},
        {"layer_type": "output", "n_neurons": 2, "activation": "softmax",
         "loss_type": "neg_log_likelihood"},
    ]

* input (first, exactly once): ``n_features`` (int > 0); ``batch_size``
  (int > 0, optional and informational: any batch size works).
* fullyconn (any number, including none): ``n_neurons`` (int > 0),
  ``activation`` (name or ``{"name": ..., **params}``); optional ``init``,
  ``bias_init``, ``dropout`` (0 <= p < 1), ``batch_norm`` (bool),
  ``max_norm`` (> 0).
* output (last, exactly once): ``n_neurons``, ``activation``, ``loss_type``
  and the same optional keys except ``dropout``.

Unknown keys are errors. A config file (JSON, YAML or TOML) holds either
such a list, or a mapping ``{"layers": [...], "training": {...},
"dtype": ..., "seed": ...}``; the training section is validated by
:func:`parse_training`. Every problem raises :class:`~deepff.errors.SpecError`
naming the layer index and key and listing the valid choices.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from . import activations, initializers, losses
from .checks import positive
from .errors import SpecError, choices
from .layers import Dense
from .regularizers import Penalty, elastic_net
from .training import MONITORS, EarlyStopping  # noqa: F401 - MONITORS: spec's public name before

__all__ = [
    "parse_layers",
    "network_spec",
    "load_config",
    "parse_config",
    "parse_training",
    "TRAINING_KEYS",
]

LAYER_TYPES = ("input", "fullyconn", "output")
_OPTIONAL = {"init", "bias_init", "dropout", "batch_norm", "max_norm"}
_KEYS = {
    "input": {"layer_type", "n_features", "batch_size"},
    "fullyconn": {"layer_type", "n_neurons", "activation"} | _OPTIONAL,
    "output": {"layer_type", "n_neurons", "activation", "loss_type"} | (_OPTIONAL - {"dropout"}),
}
_REQUIRED = {
    "input": ("n_features",),
    "fullyconn": ("n_neurons", "activation"),
    "output": ("n_neurons", "activation", "loss_type"),
}


def _where(i, layer_type):
    return f"layer {i} ({layer_type!r})" if layer_type else f"layer {i}"


def _positive_int(value, where, key):
    return positive(f"{where}: key", repr(key), value, integer=True)


def parse_layers(spec):
    """Validate a classic spec and turn it into engine objects.

    Parameters
    ----------
    spec : list of dict
        The classic layer list (see the module docstring).

    Returns
    -------
    n_features : int
    layers : list of Dense
        Hidden layers then the output layer.
    loss : Loss

    Raises
    ------
    SpecError
        Naming the layer index and key at fault.
    """
    if not isinstance(spec, (list, tuple)):
        raise SpecError(f"a network spec must be a list of layer dicts, got {type(spec).__name__}")
    if len(spec) < 2:
        raise SpecError("a network spec needs at least an 'input' layer and an 'output' layer")
    n_features, layers, loss = None, [], None
    last = len(spec) - 1
    for i, entry in enumerate(spec):
        if not isinstance(entry, dict):
            raise SpecError(f"layer {i}: must be a dict, got {type(entry).__name__}")
        lt = entry.get("layer_type")
        where = _where(i, lt)
        if lt not in LAYER_TYPES:
            raise SpecError(f"layer {i}: key 'layer_type' is {lt!r}; valid choices: {choices(LAYER_TYPES)}")
        if i == 0 and lt != "input":
            raise SpecError(f"layer 0: key 'layer_type' must be 'input' for the first layer, got {lt!r}")
        if i == last and lt != "output":
            raise SpecError(f"layer {i}: key 'layer_type' must be 'output' for the last layer, got {lt!r}")
        if 0 < i < last and lt != "fullyconn":
            raise SpecError(f"{where}: key 'layer_type' must be 'fullyconn' for a middle layer "
                            f"('input' comes first, 'output' last)")
        unknown = set(entry) - _KEYS[lt]
        if unknown:
            raise SpecError(f"{where}: unknown key {sorted(unknown, key=str)[0]!r}; valid keys: {choices(_KEYS[lt])}")
        for key in _REQUIRED[lt]:
            if key not in entry:
                raise SpecError(f"{where}: missing key {key!r}")
        if lt == "input":
            n_features = _positive_int(entry["n_features"], where, "n_features")
            if "batch_size" in entry:
                _positive_int(entry["batch_size"], where, "batch_size")
            continue
        units = _positive_int(entry["n_neurons"], where, "n_neurons")
        act = _named(where, "activation", entry["activation"], activations.get)
        kwargs = {}
        for key in ("init", "bias_init"):
            if key in entry:
                kwargs[key] = _named(where, key, entry[key], initializers.get)
        for key in ("dropout", "batch_norm", "max_norm"):
            if key in entry:
                kwargs[key] = entry[key]
        try:                          # Dense checks its own dropout, batch_norm and max_norm
            layers.append(Dense(units, act, **kwargs))
        except SpecError as exc:
            raise SpecError(f"{where}: key {exc}") from None
        if lt == "output":
            loss = _named(where, "loss_type", entry["loss_type"], losses.get)
    return n_features, layers, loss


def _ident(obj):
    cfg = obj.get_config()
    return {"name": obj.name, **cfg} if cfg else obj.name


def network_spec(n_features, layers, loss):
    """Write engine objects back as a classic spec (JSON-compatible).

    Parameters
    ----------
    n_features : int
    layers : list of Dense
    loss : Loss

    Returns
    -------
    list of dict
        ``parse_layers(network_spec(...))`` rebuilds the same architecture.
    """
    spec = [{"layer_type": "input", "n_features": int(n_features)}]
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        d = {"layer_type": "output" if last else "fullyconn", "n_neurons": layer.units,
             "activation": _ident(layer.activation), "init": _ident(layer.init),
             "bias_init": _ident(layer.bias_init)}
        if layer.dropout and not last:
            d["dropout"] = layer.dropout
        if layer.batch_norm:
            d["batch_norm"] = True
        if layer.max_norm is not None:
            d["max_norm"] = layer.max_norm
        if last:
            d["loss_type"] = _ident(loss)
        spec.append(d)
    return spec


# ---------------------------------------------------------------- config files
def _yaml_load(text):
    """yaml.safe_load, reading 1e-3 as the number it is (YAML 1.1 wants a dot, 1.0e-3, and reads text).

    Learning rates are written that way more often than not, so the loader
    adds YAML 1.2's rule for exponent floats without a dot; everything else
    is PyYAML's safe loader.
    """
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                                 re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
                                 list("-+0123456789."))

    def mapping(loader, node):       # a key given twice is a mistake (PyYAML keeps the last silently)
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":    # '<<: *base' may be overridden key by key
                continue
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)):
                if key in seen:
                    raise SpecError(f"key {key!r} appears twice in one mapping (line {key_node.start_mark.line + 1})")
                seen.add(key)
        loader.flatten_mapping(node)
        return loader.construct_mapping(node, deep=True)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=Loader)     # noqa: S506 - a SafeLoader subclass


def _json_object(pairs):
    """A JSON object as a dict, refusing a key given twice (json keeps the last silently)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise SpecError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _read_text_config(path):
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in (".json", ".yaml", ".yml", ".toml"):   # before reading: a model file is not decoded as text
        raise SpecError(f"config file {str(path)!r} has an unknown extension {ext!r}; "
                        f"valid choices: '.json', '.toml', '.yaml', '.yml'")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise SpecError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")      # a byte-order mark, as some editors write, is not content
        if ext == ".json":
            return json.loads(text, object_pairs_hook=_json_object)
        if ext in (".yaml", ".yml"):
            return _yaml_load(text)
        if ext == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            return tomllib.loads(text)
    except SpecError as exc:         # a key given twice
        raise SpecError(f"config file {str(path)!r}: {exc}") from None
    except Exception as exc:  # each parser has its own error types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)       # YAML: the message proper and its place
        if getattr(exc, "problem", None) and mark is not None:
            first = f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
        raise SpecError(f"config file {str(path)!r} is not valid {ext[1:].upper()}: {first}") from None


def load_config(path):
    """Read a JSON, YAML or TOML config file and validate it.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    dict
        ``{"layers": [...], "training": {...}, "dtype": str or None,
        "seed": int or None}`` with the layers still in classic form (see
        :func:`parse_config`).
    """
    return parse_config(_read_text_config(path))


_TOP_KEYS = {"layers", "training", "dtype", "seed"}


def parse_config(config):
    """Validate a config mapping (or a bare classic layer list).

    Parameters
    ----------
    config : list or dict

    Returns
    -------
    dict
        With keys "layers", "training" (validated by :func:`parse_training`),
        "dtype" and "seed".
    """
    if isinstance(config, (list, tuple)):
        config = {"layers": list(config)}
    if not isinstance(config, dict):
        raise SpecError(f"a config must be a mapping with a 'layers' list, got {type(config).__name__}")
    unknown = set(config) - _TOP_KEYS
    if unknown:
        raise SpecError(f"config: unknown key {sorted(unknown, key=str)[0]!r}; valid keys: {choices(_TOP_KEYS)}")
    if "layers" not in config:
        raise SpecError("config: missing key 'layers' (the list of layer dicts)")
    parse_layers(config["layers"])  # validate now, build later
    seed = config.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SpecError(f"config: key 'seed' must be a non-negative integer, got {seed!r}")
    dtype = config.get("dtype")
    if dtype is not None and dtype not in ("float32", "float64"):
        raise SpecError(f"config: key 'dtype' is {dtype!r}; valid choices: 'float32', 'float64'")
    return {"layers": list(config["layers"]), "training": parse_training(config.get("training") or {}),
            "dtype": dtype, "seed": seed}


# ------------------------------------------------------------ training section
TRAINING_KEYS = {
    "epochs": "number of passes over the training data (int > 0)",
    "batch_size": "samples per mini-batch (int > 0)",
    "shuffle": "reshuffle every epoch (bool)",
    "optimizer": "name or {name: ..., lr: ..., ...} (see deepff.optimizers)",
    "schedule": "name or {name: ..., ...} (see deepff.schedules)",
    "regularization": "{l1: float, l2: float} or {elastic_net: alpha, l1_ratio: float}",
    "clip_norm": "maximum global gradient norm (float > 0) or null",
    "validation_split": "fraction of the training data held out (0 <= f < 1)",
    "early_stopping": "{patience: int, min_delta: float, restore_best: bool, monitor: str} or null",
    "class_weight": "'balanced', a mapping from class to weight, or null",
    "augment": "'elastic', 'affine', {kind: ..., sigma: ..., ...} or null (see deepff.augment)",
}


def _check_number(section, key, value, lo=None, hi=None, lo_open=False, hi_open=False, integer=False):
    kind = "an integer" if integer else "a number"
    if isinstance(value, str):
        raise SpecError(f"{section}: key {key!r} must be {kind}, got the text {value!r}")
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value):
        raise SpecError(f"{section}: key {key!r} must be {'a finite number' if not integer else kind}, "
                        f"got {value!r}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise SpecError(f"{section}: key {key!r} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and (value >= hi if hi_open else value > hi):
        raise SpecError(f"{section}: key {key!r} must be {'<' if hi_open else '<='} {hi}, got {value!r}")
    return value


def _named(where, key, value, registry_get):
    """Resolve a registry identifier; name the place and key in its SpecError."""
    try:
        return registry_get(value)
    except SpecError as exc:
        raise SpecError(f"{where}: key {key!r}: {exc}") from None


def parse_training(section):
    """Validate the training section of a config.

    Parameters
    ----------
    section : dict
        Keys from :data:`TRAINING_KEYS`; all optional.

    Returns
    -------
    dict
        The same keys, checked; optimizer and schedule are resolved once to
        prove they are valid but returned in their original (serialisable)
        form.

    Raises
    ------
    SpecError
        Naming the key at fault.
    """
    from . import optimizers, schedules

    s = "training"
    if not isinstance(section, dict):
        raise SpecError(f"{s}: must be a mapping, got {type(section).__name__}")
    unknown = set(section) - set(TRAINING_KEYS)
    if unknown:
        raise SpecError(f"{s}: unknown key {sorted(unknown, key=str)[0]!r}; valid keys: {choices(TRAINING_KEYS)}")
    out = dict(section)
    if "epochs" in out:
        _check_number(s, "epochs", out["epochs"], lo=1, integer=True)
    if "batch_size" in out:
        _check_number(s, "batch_size", out["batch_size"], lo=1, integer=True)
    if "shuffle" in out and not isinstance(out["shuffle"], bool):
        raise SpecError(f"{s}: key 'shuffle' must be true or false, got {out['shuffle']!r}")
    if "optimizer" in out:
        _named(s, "optimizer", out["optimizer"], optimizers.get)
    if out.get("schedule") is not None:
        _named(s, "schedule", out["schedule"], schedules.get)
    if out.get("regularization") is not None:
        parse_regularization(out["regularization"])
    if out.get("clip_norm") is not None:
        _check_number(s, "clip_norm", out["clip_norm"], lo=0, lo_open=True)
    if "validation_split" in out:
        _check_number(s, "validation_split", out["validation_split"], lo=0, hi=1, hi_open=True)
    if out.get("early_stopping") is not None:
        parse_early_stopping(out["early_stopping"])
    if out.get("augment") is not None:
        from .augment import get as get_augment

        _named(s, "augment", out["augment"], get_augment)
    cw = out.get("class_weight")
    if cw is not None and cw != "balanced" and not isinstance(cw, dict):
        raise SpecError(f"{s}: key 'class_weight' must be 'balanced', a mapping or null, got {cw!r}")
    if isinstance(cw, dict):
        checked = {}
        for cls, weight in cw.items():
            if isinstance(cls, str) and cls.isdigit():    # JSON and TOML keys are strings
                cls = int(cls)
            if isinstance(cls, str) and cls.strip():       # a class's name: the CLI maps it to its index
                checked[cls] = _check_number(s, f"class_weight[{cls}]", weight, lo=0)
                continue
            if isinstance(cls, bool) or not isinstance(cls, (int, np.integer)) or cls < 0:
                raise SpecError(f"{s}: class_weight keys are class indexes (integers >= 0) or class names, "
                                f"got {cls!r}")
            checked[int(cls)] = _check_number(s, f"class_weight[{cls}]", weight, lo=0)
        out["class_weight"] = checked
    return out


_REG_KEYS = {"l1", "l2", "elastic_net", "l1_ratio"}


def parse_regularization(reg):
    """Turn a regularization mapping into a :class:`~deepff.regularizers.Penalty`.

    Parameters
    ----------
    reg : dict
        ``{"l1": a, "l2": b}`` or ``{"elastic_net": alpha, "l1_ratio": r}``.

    Returns
    -------
    Penalty
    """
    s = "training.regularization"
    if isinstance(reg, Penalty):
        return reg
    if not isinstance(reg, dict):
        raise SpecError(f"{s}: must be a mapping like {{l1: 0.0, l2: 1e-4}}, got {reg!r}")
    unknown = set(reg) - _REG_KEYS
    if unknown:
        raise SpecError(f"{s}: unknown key {sorted(unknown, key=str)[0]!r}; valid keys: {choices(_REG_KEYS)}")
    if "elastic_net" in reg and ("l1" in reg or "l2" in reg):
        raise SpecError(f"{s}: give either 'elastic_net' (with 'l1_ratio') or 'l1'/'l2', not both")
    if "l1_ratio" in reg and "elastic_net" not in reg:
        raise SpecError(f"{s}: key 'l1_ratio' needs 'elastic_net'")
    try:                              # the penalty checks its own coefficients
        if "elastic_net" in reg:
            return elastic_net(reg["elastic_net"], reg.get("l1_ratio", 0.5))
        return Penalty(l1=reg.get("l1", 0.0), l2=reg.get("l2", 0.0))
    except SpecError as exc:
        raise SpecError(f"{s}: {exc}") from None


_ES_KEYS = {"patience", "min_delta", "restore_best", "monitor"}


def parse_early_stopping(es):
    """Validate an early-stopping mapping.

    Parameters
    ----------
    es : dict
        ``patience`` (int >= 1, default 5), ``min_delta`` (>= 0, default 0),
        ``restore_best`` (bool, default True), ``monitor`` (one of
        "val_loss", "val_accuracy", "loss"; default "val_loss").

    Returns
    -------
    dict
        With every key filled in.
    """
    s = "training.early_stopping"
    if es is True:
        es = {}
    if not isinstance(es, dict):
        raise SpecError(f"{s}: must be a mapping or true, got {es!r}")
    unknown = set(es) - _ES_KEYS
    if unknown:
        raise SpecError(f"{s}: unknown key {sorted(unknown, key=str)[0]!r}; valid keys: {choices(_ES_KEYS)}")
    out = {"patience": 5, "min_delta": 0.0, "restore_best": True, "monitor": "val_loss", **es}
    try:
        EarlyStopping(**out)          # the class checks its own arguments
    except SpecError as exc:
        raise SpecError(f"{s}: {exc}") from None
    return out
