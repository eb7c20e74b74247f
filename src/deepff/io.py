"""Model files and checkpoints: one ``.npz`` file, a JSON header, no pickle.

File layout (format version 1; docs/model-files.md has the details): a zip
archive of uncompressed ``.npy`` members, readable by
``numpy.load(path, allow_pickle=False)``:

``header.npy``
    uint8 array holding UTF-8 JSON: ``{"format": "deepff-model"`` (or
    ``"deepff-checkpoint"``), ``"format_version": 1``, ``"deepff_version"``,
    ``"spec"`` (the classic layer list), ``"dtype"``, ``"seed"``,
    ``"arrays"`` (name -> shape and dtype of every other member), and the
    optional ``"preprocessing"``, ``"classes"``, ``"task"``, ``"training"``
    and ``"metadata"`` entries; a checkpoint adds ``"state"`` and ``"extra"``.
``theta.npy``
    The flat parameter vector (see :mod:`deepff.params`).
``buffer.<layer>.<name>.npy``
    Batch-norm running statistics.
``state.<path>.npy``
    Checkpoints only: optimizer moments, early-stopping weights, ...

Reading never unpickles: each member's ``.npy`` header is parsed and
checked (numeric dtype, size consistent with the archive, no compression,
so nothing expands beyond the file's size) before its bytes are turned into
an array, so an object array is rejected unread; the architecture is checked
against the stored parameter count before any weight is allocated. Every
problem raises :class:`~deepff.errors.ModelFileError`. Writing is atomic: a
temporary file in the target's folder is written, flushed, fsync'ed and
renamed over the target, so a crash or a full disk leaves the previous file
intact.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import zipfile

import numpy as np

from ._archive import (
    _CHECKPOINT,
    _MAX_HEADER,
    _MODEL,
    FORMAT_VERSION,
    _check_user_json,
    _json_default,
    _read_archive,
    _read_member,
    _unregistered_hint,
    _write_archive,
)
from ._version import __version__
from .atomic import atomic_write, check_writable, recovery_folders, write_or_recover
from .errors import DeepffError, InputError, ModelFileError, SpecError
from .validation import check_file_path as _file_path

__all__ = ["save", "load", "save_checkpoint", "load_checkpoint", "FORMAT_VERSION", "atomic_write",
           "check_writable", "check_savable", "file_format", "write_or_recover", "recovery_folders"]


# ------------------------------------------------------------------ writing
def _finite_weights(net):
    """Whether every parameter and buffer (batch-norm statistics) of ``net`` is finite."""
    return bool(np.isfinite(net.params.theta).all()) and all(np.isfinite(b).all() for b in net.buffers().values())


def _network_of(model):
    net = getattr(model, "network", model)  # classic Net holds its engine
    if hasattr(model, "get_params") and hasattr(model, "predict") and not hasattr(net, "buffers"):
        raise ModelFileError(f"{type(model).__name__} is a scikit-learn estimator: save it with pickle or "
                             "joblib, as scikit-learn's own are; deepff.save takes a deepff Network")
    if getattr(net, "params", None) is None or not hasattr(net, "buffers"):
        raise ModelFileError("only a built deepff network can be saved (fit it or call build() first)")
    return net


def _base_header(net, kind):
    from .spec import network_spec

    return {
        "format": kind,
        "format_version": FORMAT_VERSION,
        "deepff_version": __version__,
        "spec": network_spec(net.n_features, net.layers, net.loss),
        "dtype": str(net.dtype),
        "seed": net.seed,
    }


def _attribute(model, net, name):
    value = getattr(model, name, None)
    return value if value is not None else getattr(net, name, None)


def _classes_problem(classes, net):
    """Why ``classes`` cannot label the outputs of ``net`` (None when they can).

    A classification network needs one label per output unit; a single
    sigmoid unit (binary cross-entropy) takes the two labels of its 0 and 1.
    """
    if classes is None:
        return None
    if not isinstance(classes, list):
        return f"classes must be a list of labels, got {type(classes).__name__}"
    odd = next((c for c in classes if not isinstance(c, (str, int, float, bool, np.number, np.bool_))), None)
    if odd is not None:
        return f"class labels must be texts, numbers or booleans, got {odd!r}"
    if len({repr(c) for c in classes}) < len(classes):
        return "class labels must be distinct"
    if net.task != "classification" or len(classes) == net.n_outputs:
        return None
    if net.multi_label and net.n_outputs == 1 and len(classes) == 2:
        return None
    valid = f"{net.n_outputs}" + (" (or 2 for its single sigmoid unit)" if net.n_outputs == 1 else "")
    return (f"{len(classes)} class labels given for a network with {net.n_outputs} output unit(s); "
            f"it needs {valid}")


def _user_header(model, net, preprocessing, classes, training, metadata):
    """The header entries a user gives (or the model carries), checked as :func:`save` writes them."""
    given = {"preprocessing": preprocessing, "classes": classes, "training": training, "metadata": metadata}
    attr = {"preprocessing": "preprocessing", "classes": "classes", "training": "training_config",
            "metadata": "metadata"}
    header = {key: value if value is not None else _attribute(model, net, attr[key]) for key, value in given.items()}
    if isinstance(header["classes"], (tuple, np.ndarray)):
        header["classes"] = list(header["classes"])
    if isinstance(header["classes"], list):    # numpy scalars (np.unique(y)) as the plain JSON values they are
        header["classes"] = [c.item() if isinstance(c, (np.number, np.bool_)) else c for c in header["classes"]]
    problem = _classes_problem(header["classes"], net)
    if problem:
        raise InputError(f"cannot save: {problem}")
    for key in ("preprocessing", "training", "metadata"):
        _check_user_json(header[key], key)
    return header


def check_savable(model, preprocessing=None, classes=None, training=None, metadata=None):
    """Refuse now what :func:`save` would refuse after training, of everything but the weights.

    A run that trains for an hour and then cannot save its labels or
    metadata has lost the hour: call this before training with what will be
    saved (the class labels, the preprocessing statistics, the training
    configuration and the metadata known by then).

    Parameters
    ----------
    model : Network, FeedForward or Net
        A built network.
    preprocessing, classes, training, metadata
        As for :func:`save`.

    Raises
    ------
    ModelFileError, InputError
        As :func:`save` would.
    """
    net = _network_of(model)
    header = _user_header(model, net, preprocessing, classes, training, metadata)
    try:
        json.dumps(header, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"cannot save: header values must be JSON-compatible ({exc})") from None


def save(model, path, preprocessing=None, classes=None, training=None, metadata=None):
    """Save a network (and what travels with it) to one ``.npz`` file, atomically.

    Parameters
    ----------
    model : Network, FeedForward or Net
    path : str or path-like
    preprocessing : dict, optional
        JSON-compatible statistics (e.g. a standardiser's mean and std).
        Defaults to ``model.preprocessing`` when the model has one.
    classes : list, optional
        Class labels in output order. Defaults to ``model.classes``.
    training : dict, optional
        The training configuration, for the record. Defaults to
        ``model.training_config``.
    metadata : dict, optional
        Anything else JSON-compatible. Defaults to ``model.metadata``.

    Raises
    ------
    ModelFileError
        For an unbuilt network, or header values that are not JSON-compatible,
        have keys other than strings (JSON would turn ``1`` into ``"1"``) or
        nest more than 100 levels deep.
    InputError
        When a classification network gets a number of class labels other
        than its number of output units (2 for a single sigmoid unit).
    OSError
        When the file cannot be written (the previous file, if any, is kept;
        a write-protected one is never replaced).
    """
    net = _network_of(model)
    path = _file_path(path)
    header = _base_header(net, _MODEL)
    header["task"] = net.task
    header.update(_user_header(model, net, preprocessing, classes, training, metadata))
    if not _finite_weights(net):
        raise InputError("cannot save: the parameters contain NaN or infinity (did training diverge?); "
                         "such a file could not be loaded")
    arrays = {"theta": net.params.theta}
    arrays.update({"buffer." + k: v for k, v in net.buffers().items()})
    try:
        _write_archive(path, header, arrays)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DeepffError):
            raise
        raise ModelFileError(f"cannot save: header values must be JSON-compatible ({exc})") from None


# ------------------------------------------------------------------ reading
def _n_params(spec):
    """Validate a stored spec and count its parameters, allocating nothing."""
    from .spec import parse_layers

    n_features, layers, _ = parse_layers(spec)
    widths = [n_features] + [layer.units for layer in layers]
    return sum(math.prod(shape) for i, layer in enumerate(layers)
               for _, shape, _ in layer.param_specs(widths[i]))


def _build(header, arrays, path):
    from .model import Network
    from .network import stored_architecture

    dtype = header.get("dtype")
    if dtype not in ("float32", "float64"):
        raise ModelFileError(f"{path!r}: stored dtype {dtype!r} is not 'float32' or 'float64'")
    theta = arrays.get("theta")
    if theta is None or theta.ndim != 1 or theta.dtype != np.dtype(dtype):
        raise ModelFileError(
            f"{path!r}: the parameter vector does not match the architecture (expected a 1-D "
            f"{dtype} array, found {None if theta is None else f'{theta.shape} {theta.dtype}'})")
    try:
        expected = _n_params(header.get("spec"))
    except DeepffError as exc:
        raise ModelFileError(f"{path!r}: the stored architecture is invalid: {exc}{_unregistered_hint(exc)}") \
            from None
    except Exception as exc:
        raise ModelFileError(f"{path!r}: the stored architecture is malformed: {exc}") from None
    if theta.size != expected:
        raise ModelFileError(
            f"{path!r}: the parameter vector does not match the architecture (expected "
            f"{expected} {dtype} values, found {theta.size})")
    if not np.isfinite(theta).all():
        raise ModelFileError(f"{path!r}: the parameters contain NaN or infinity")
    try:
        with stored_architecture():      # an older file's pairing that is now refused still loads
            net = Network.from_spec(header["spec"], dtype=dtype, seed=header.get("seed"))
    except DeepffError as exc:
        raise ModelFileError(f"{path!r}: the stored architecture is invalid: {exc}{_unregistered_hint(exc)}") \
            from None
    except Exception as exc:
        raise ModelFileError(f"{path!r}: the stored architecture is malformed: {exc}") from None
    net.params.theta[...] = theta
    for name, buf in net.buffers().items():
        stored = arrays.get("buffer." + name)
        if stored is None or stored.shape != buf.shape or stored.dtype != buf.dtype:
            raise ModelFileError(f"{path!r}: buffer {name!r} is missing or does not match the architecture")
        if not np.isfinite(stored).all():
            raise ModelFileError(f"{path!r}: buffer {name!r} contains NaN or infinity")
        if name.endswith(".running_var") and (stored < 0).any():
            raise ModelFileError(f"{path!r}: buffer {name!r} holds a negative variance")
        buf[...] = stored
    unknown = {k for k in arrays if k.startswith("buffer.")} - {"buffer." + k for k in net.buffers()}
    if unknown:
        raise ModelFileError(f"{path!r}: array {sorted(unknown)[0]!r} belongs to no layer")
    return net


def file_format(path):
    """The kind of deepff file at ``path``, read from its header alone.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str or None
        ``"model"`` or ``"checkpoint"``; None for a missing file or any file
        that is not a readable deepff file.
    """
    try:
        with zipfile.ZipFile(os.fspath(path)) as zf:
            info = zf.getinfo("header.npy")
            if info.file_size > _MAX_HEADER:
                return None
            blob = _read_member(zf, info, os.path.getsize(path))
            header = json.loads(blob.tobytes().decode("utf-8"))
    except Exception:  # missing, not a zip, no header, bad JSON: not a deepff file
        return None
    kind = header.get("format") if isinstance(header, dict) else None
    return {_MODEL: "model", _CHECKPOINT: "checkpoint"}.get(kind)


def load(path):
    """Load a model saved by :func:`save`; never executes code from the file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Network
        With attributes ``preprocessing``, ``classes``, ``training_config``
        and ``metadata`` from the file (None when absent).

    Raises
    ------
    ModelFileError
        For a missing, truncated, corrupted or foreign file, arrays that do
        not match the architecture, object arrays, a newer format, or class
        labels that do not match the output units.
    """
    path = _file_path(path)
    header, arrays = _read_archive(path, _MODEL)
    net = _build(header, arrays, path)
    left_over = set(arrays) - {"theta"} - {"buffer." + k for k in net.buffers()}
    if left_over:      # a model file holds the weights and the layers' buffers, nothing else
        raise ModelFileError(f"{path!r}: array {sorted(left_over)[0]!r} has no place in a model file")
    problem = _classes_problem(header.get("classes"), net)
    if problem:
        raise ModelFileError(f"{os.fspath(path)!r}: {problem}")
    net.preprocessing = header.get("preprocessing")
    net.classes = header.get("classes")
    net.training_config = header.get("training")
    net.metadata = header.get("metadata")
    return net


# -------------------------------------------------------------- checkpoints
def _flatten(state, prefix, arrays):
    """Split a nested state dict into JSON parts and arrays ("state.a.b")."""
    if isinstance(state, np.ndarray):
        key = "state." + prefix
        if key in arrays:
            raise ModelFileError(f"cannot save checkpoint: two state arrays share the name {prefix!r}")
        arrays[key] = np.array(state, copy=True, order="C")
        return {"__array__": prefix}
    if isinstance(state, dict):
        return {str(k): _flatten(v, f"{prefix}.{k}" if prefix else str(k), arrays) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return {"__list__": [_flatten(v, f"{prefix}.{i}", arrays) for i, v in enumerate(state)],
                "__tuple__": isinstance(state, tuple)}
    if isinstance(state, np.generic):
        return state.item()
    return state


def _unflatten(obj, arrays):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            key = "state." + str(obj["__array__"])
            if key not in arrays:
                raise ModelFileError(f"checkpoint array {key!r} is missing")
            return arrays[key].copy()
        if set(obj) == {"__list__", "__tuple__"}:
            items = [_unflatten(v, arrays) for v in obj["__list__"]]
            return tuple(items) if obj["__tuple__"] else items
        return {k: _unflatten(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, arrays) for v in obj]
    return obj


def save_checkpoint(trainer, path, extra=None):
    """Write everything needed to resume ``trainer`` exactly, atomically.

    Parameters
    ----------
    trainer : Trainer
    path : str or path-like
    extra : dict, optional
        JSON-compatible data to keep beside it (dataset name, preprocessing,
        the training configuration, ...).

    Raises
    ------
    ModelFileError
        For state or extra values that are not JSON-compatible, and extra
        values with keys other than strings or nested more than 100 levels.
    InputError
        When the weights hold NaN or infinity (the file could not be
        resumed; an existing checkpoint at ``path`` is kept).
    OSError
        When the file cannot be written (the previous checkpoint is kept).
    """
    if not (hasattr(trainer, "state_dict") and hasattr(trainer, "network")):
        hint = " (a fitted Network's trainer is network.trainer_)" if hasattr(trainer, "fit") else ""
        raise InputError(f"save_checkpoint needs a Trainer, got {type(trainer).__name__}{hint}")
    path = _file_path(path)
    net = trainer.network
    if not _finite_weights(net):
        raise InputError("cannot save checkpoint: the parameters contain NaN or infinity (did training "
                         "diverge?); such a file could not be resumed, so the previous one is kept")
    header = _base_header(net, _CHECKPOINT)
    state = trainer.state_dict()
    arrays = {"theta": np.asarray(state.pop("theta"), dtype=net.dtype)}
    arrays.update({"buffer." + k: np.asarray(v, dtype=net.dtype) for k, v in state.pop("buffers").items()})
    header["state"] = _flatten(state, "", arrays)
    _check_user_json(extra, "extra")
    header["extra"] = extra
    try:
        _write_archive(path, header, arrays, strict=False)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DeepffError):
            raise
        raise ModelFileError(f"cannot save checkpoint: values must be JSON-compatible ({exc})") from None


def _non_negative_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def _restored(registry, state):
    """The optimizer or schedule a state dict describes, built and loaded.

    Built with no arguments first (every built-in has defaults); a custom
    class with required constructor arguments is built from the stored
    values of those arguments instead, then loaded.
    """
    try:
        obj = registry.get(state["name"])
    except SpecError:
        cls = registry.classes[registry.canonical(state["name"])]
        names = registry.parameters(cls) or []
        stored = {k: (state[k].item() if isinstance(state[k], np.ndarray) and state[k].ndim == 0 else state[k])
                  for k in names if k in state}
        obj = registry.get({"name": state["name"], **stored})
    obj.load_state_dict(state)
    return obj


def _check_state(state, net):
    """Check a checkpoint's trainer state before anyone relies on it.

    Raises ModelFileError (or lets any other exception out, which the
    caller turns into one).
    """
    from . import optimizers, schedules

    if not isinstance(state, dict):
        raise ModelFileError("the trainer state is not a mapping")
    for key in ("epoch", "step"):
        if not _non_negative_int(state.get(key)):
            raise ModelFileError(f"{key!r} must be a non-negative integer, got {state.get(key)!r}")
    base_lr = state.get("base_lr")
    if isinstance(base_lr, bool) or not isinstance(base_lr, numbers.Real) or not math.isfinite(base_lr):
        raise ModelFileError(f"'base_lr' must be a finite number, got {base_lr!r}")
    if not isinstance(state.get("stopped_early", False), bool):
        raise ModelFileError(f"'stopped_early' must be true or false, got {state.get('stopped_early')!r}")
    kernels = state.get("compiled_kernels")
    if not (kernels is None or isinstance(kernels, bool)):
        raise ModelFileError(f"'compiled_kernels' must be true, false or null, got {kernels!r}")
    history = state.get("history")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise ModelFileError("'history' must be a list of per-epoch records")
    for i, r in enumerate(history):
        for key in ("epoch", "loss", "seconds"):
            v = r.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ModelFileError(f"history record {i} must hold a number {key!r}, got {v!r}")
    for key in ("shuffle_rng", "dropout_rng"):
        probe = np.random.Generator(np.random.PCG64())
        probe.bit_generator.state = state[key]
    shape = net.params.theta.shape
    opt_state = state.get("optimizer")
    if not isinstance(opt_state, dict) or not isinstance(opt_state.get("name"), str):
        raise ModelFileError("the optimizer state is missing or has no name")
    opt = _restored(optimizers.REGISTRY, opt_state)
    for key, arr in opt.state.items():
        if arr.shape != shape or not np.isfinite(arr).all():
            raise ModelFileError(f"optimizer array {key!r} does not match the parameters")
    order = state.get("epoch_order")
    if order is not None:
        if not isinstance(order, np.ndarray) or order.ndim != 1 or order.dtype.kind not in "iu" \
                or not np.array_equal(np.sort(order), np.arange(order.shape[0])):
            raise ModelFileError("'epoch_order' must be a permutation of the sample indices")
    position = state.get("epoch_position", 0)
    if not _non_negative_int(position) or (order is not None and position > order.shape[0]):
        raise ModelFileError(f"'epoch_position' is out of range: {position!r}")
    partial = state.get("epoch_partial")
    if partial is not None and (not isinstance(partial, list) or len(partial) != 3 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in partial)):
        raise ModelFileError("'epoch_partial' must be three finite numbers")
    penalty_sum = state.get("epoch_penalty_sum", 0.0)
    if not (isinstance(penalty_sum, numbers.Real) and not isinstance(penalty_sum, bool) and math.isfinite(penalty_sum)):
        raise ModelFileError("'epoch_penalty_sum' must be a finite number")
    sched = state.get("schedule")
    if sched is not None:
        if not isinstance(sched, dict) or not isinstance(sched.get("name"), str):
            raise ModelFileError("the schedule state has no name")
        _restored(schedules.REGISTRY, sched)
    es = state.get("early_stopping")
    if es is not None:
        if not isinstance(es, dict) or not _non_negative_int(es.get("wait")) \
                or not {"best", "best_epoch"} <= set(es):
            raise ModelFileError("the early-stopping state is malformed")
        buffers = net.buffers()
        for key, value in es.items():
            if key == "best_theta":
                want = shape
            elif key.startswith("best_buffer."):
                buf = buffers.get(key[len("best_buffer."):])
                if buf is None:
                    raise ModelFileError(f"early-stopping array {key!r} belongs to no layer")
                want = buf.shape
            else:
                continue
            if not isinstance(value, np.ndarray) or value.shape != want or value.dtype != net.dtype:
                raise ModelFileError(f"early-stopping array {key!r} does not match the network")


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    network : Network
        The network with the checkpoint's weights.
    state : dict
        For :meth:`Trainer.load_state_dict` (weights included).
    extra : dict or None

    Raises
    ------
    ModelFileError
        As :func:`load`, and for a trainer state that is incomplete or does
        not match the network.
    """
    path = _file_path(path)
    header, arrays = _read_archive(path, _CHECKPOINT)
    net = _build(header, arrays, os.fspath(path))
    try:
        state = _unflatten(header.get("state"), arrays)
        _check_state(state, net)
        state["theta"] = net.params.theta.copy()
        state["buffers"] = {k: v.copy() for k, v in net.buffers().items()}
    except ModelFileError as exc:
        raise ModelFileError(f"{os.fspath(path)!r}: malformed checkpoint state: {exc}") from None
    except Exception as exc:
        raise ModelFileError(f"{os.fspath(path)!r}: malformed checkpoint state: "
                             f"{type(exc).__name__}: {exc}") from None
    return net, state, header.get("extra")
