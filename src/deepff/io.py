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
import re
import zipfile

import numpy as np

from ._version import __version__
from .atomic import atomic_write, check_writable, recovery_folders, write_or_recover
from .errors import DeepffError, InputError, ModelFileError, SpecError
from .validation import check_file_path as _file_path

__all__ = ["save", "load", "save_checkpoint", "load_checkpoint", "FORMAT_VERSION", "atomic_write",
           "check_writable", "check_savable", "file_format", "write_or_recover", "recovery_folders"]

FORMAT_VERSION = 1
_MODEL, _CHECKPOINT = "deepff-model", "deepff-checkpoint"
_ALLOWED_KINDS = "fiub"
_MAX_HEADER = 64 * 1024 * 1024
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed: the same model gives the same bytes


# ------------------------------------------------------------------ writing
def _json_default(obj):
    """JSON encoding of numpy scalars and arrays met in headers."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-compatible")


_MAX_DEPTH = 100   # levels of nesting allowed in user-given header values


def _non_finite(obj):
    """True for a float or a float array that JSON could only write as NaN or Infinity."""
    if isinstance(obj, (float, np.floating)):
        return not np.isfinite(obj)
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "fc":
        return not np.isfinite(obj).all()
    return False


def _check_user_json(value, name):
    """Refuse what JSON would silently change or cannot write strictly: non-text keys, NaN, deep nesting.

    ``json.dumps`` turns the key ``1`` into ``"1"`` (so the value would load
    under another key), writes NaN and infinity as ``NaN``/``Infinity`` (which
    strict JSON parsers, such as JavaScript's ``JSON.parse``, refuse) and
    recurses once per level (so a deep or self-referencing value would end in
    a RecursionError).

    Parameters
    ----------
    value : object
        A user-given header entry (metadata, preprocessing, training, extra).
    name : str
        Its name, for the message.

    Raises
    ------
    ModelFileError
    """
    nested = (dict, list, tuple)
    stack = [(value, name, 0)]
    while stack:                   # iterative: a deep value must not exhaust the recursion limit here
        obj, where, depth = stack.pop()
        if _non_finite(obj):
            raise ModelFileError(
                f"cannot save: {where} is or holds {obj!r}; the file's JSON header keeps only finite numbers "
                "(strict JSON readers refuse NaN and Infinity): store None or a text such as 'nan' instead")
        if isinstance(obj, nested) and depth >= _MAX_DEPTH:
            raise ModelFileError(f"cannot save: {name} is nested more than {_MAX_DEPTH} levels deep "
                                 "(or contains itself)")
        if isinstance(obj, dict):
            for k, v in obj.items():
                if not isinstance(k, str):
                    raise ModelFileError(
                        f"cannot save: {where} has the key {k!r} ({type(k).__name__}); keys must be strings, "
                        "since the file's JSON writes every key as one (1 would come back as '1')")
                stack.append((v, f"{where}[{k!r}]", depth + 1))
        elif isinstance(obj, (list, tuple)):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)
                         if isinstance(v, nested) or _non_finite(v))


def _write_archive(path, header, arrays, strict=True):
    """Write ``header`` (as JSON) and ``arrays`` (as .npy members) to a zip file at ``path``, atomically.

    ``strict`` writes JSON that any parser reads (no NaN or Infinity); a
    checkpoint's internal state may hold infinities (a best loss not yet
    seen) and is written with ``strict=False``, read back by deepff only.
    """
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray) or arr.dtype.hasobject or arr.dtype.kind not in _ALLOWED_KINDS:
            raise ModelFileError(f"cannot save array {name!r}: only numeric arrays can be stored")
    header = dict(header)
    header["arrays"] = {k: {"shape": list(v.shape), "dtype": v.dtype.str} for k, v in arrays.items()}
    text = json.dumps(header, allow_nan=not strict, default=_json_default)
    members = [("header", np.frombuffer(text.encode("utf-8"), dtype=np.uint8))] + list(arrays.items())

    def write(fh):
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, arr in members:
                info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=arr.nbytes > 2 ** 30) as out:
                    np.lib.format.write_array(out, arr, allow_pickle=False)

    atomic_write(path, write)


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
def _read_member(zf, info, archive_size):
    """Parse one .npy member without ever unpickling; return the array."""
    name = info.filename
    # deepff stores members uncompressed; refusing compression rules out
    # decompression bombs: no member can expand beyond the file's own size
    if info.compress_type != zipfile.ZIP_STORED:
        raise ModelFileError(f"member {name!r} is compressed; deepff files store their arrays uncompressed")
    if info.file_size != info.compress_size or info.file_size > archive_size:
        raise ModelFileError(f"member {name!r} has inconsistent sizes")
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ModelFileError(f"member {name!r} has an unsupported .npy version {version}")
        if dtype.hasobject or dtype.kind not in _ALLOWED_KINDS:
            raise ModelFileError(f"member {name!r} has dtype {dtype}; only numeric arrays are "
                                 "allowed (object arrays would need pickle, which deepff never loads)")
        if any(d < 0 for d in shape):
            raise ModelFileError(f"member {name!r} declares a negative dimension {shape}")
        nbytes = math.prod(shape) * dtype.itemsize
        header_len = fh.tell()
        if header_len + nbytes != info.file_size:
            raise ModelFileError(f"member {name!r} is truncated or inconsistent "
                                 f"(declares {nbytes} bytes of data, holds {info.file_size - header_len})")
        data = fh.read(nbytes)
        if len(data) != nbytes or fh.read(1):  # reading to the end also checks the CRC
            raise ModelFileError(f"member {name!r} is truncated")
        return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _unregistered_hint(exc):
    """What to do when a file names a part this process does not know: most likely a custom one."""
    found = re.search(r"unknown (activation|loss|initializer) ", str(exc))
    if not found:
        return ""
    return (f" (a custom {found.group(1)} must be registered, e.g. with deepff.activations.register, in the "
            "process that loads the file, before it loads it; the deepff command knows the built-in ones only)")


def _read_archive(path, expected_format):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path!r}: no such file")
    if os.path.isdir(path):
        raise ModelFileError(f"{path!r} is a folder, not a deepff file")
    try:
        archive_size = os.path.getsize(path)
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            infos = {i.filename: i for i in members}
            if len(infos) < len(members):   # the archive names a member twice: which one is meant?
                twice = sorted({i.filename for i in members if sum(m.filename == i.filename for m in members) > 1})
                raise ModelFileError(f"{path!r} holds more than one member named {twice[0]!r}; it was not "
                                     "written by deepff")
            if "header.npy" not in infos:
                raise ModelFileError(f"{path!r} is not a deepff file (no header)")
            if infos["header.npy"].file_size > _MAX_HEADER:
                raise ModelFileError(f"{path!r}: header too large")
            blob = _read_member(zf, infos["header.npy"], archive_size)
            if blob.dtype != np.uint8 or blob.ndim != 1:
                raise ModelFileError(f"{path!r}: malformed header")
            header = json.loads(blob.tobytes().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") not in (_MODEL, _CHECKPOINT):
                raise ModelFileError(f"{path!r} is not a deepff model or checkpoint file")
            if header["format"] != expected_format:
                want = "model" if expected_format == _MODEL else "checkpoint"
                raise ModelFileError(f"{path!r} is a {header['format']} file, not a {want} file")
            version = header.get("format_version")
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise ModelFileError(f"{path!r}: bad format_version {version!r}")
            if version > FORMAT_VERSION:
                raise ModelFileError(
                    f"{path!r} uses model format {version}, newer than this deepff understands "
                    f"({FORMAT_VERSION}); upgrade deepff to read it")
            declared = header.get("arrays")
            if not isinstance(declared, dict):
                raise ModelFileError(f"{path!r}: header lacks the array table")
            arrays = {}
            for name, meta in declared.items():
                member = infos.get(name + ".npy")
                if member is None or name == "header":
                    raise ModelFileError(f"{path!r}: array {name!r} is missing")
                arr = _read_member(zf, member, archive_size)
                if not isinstance(meta, dict) or list(arr.shape) != meta.get("shape") \
                        or arr.dtype.str != meta.get("dtype"):
                    raise ModelFileError(f"{path!r}: array {name!r} does not match its declared "
                                         f"shape and dtype")
                arrays[name] = arr
            extra = set(infos) - {"header.npy"} - {n + ".npy" for n in declared}
            if extra:
                raise ModelFileError(f"{path!r}: unexpected member {sorted(extra)[0]!r}")
            return header, arrays
    except DeepffError as exc:
        message = str(exc)
        if isinstance(exc, ModelFileError) and repr(path) in message:
            raise
        raise ModelFileError(f"{path!r}: {message}") from None
    except PermissionError as exc:
        raise ModelFileError(f"{path!r}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # zip, zlib, json, unicode, numpy header errors
        raise ModelFileError(f"{path!r} is not a valid deepff file (corrupted or truncated): "
                             f"{type(exc).__name__}: {exc}") from None


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
