"""Model files and checkpoints: one ``.npz`` file, a JSON header, no pickle.

File layout (format version 1), a zip archive as written by ``numpy.savez``:

``header.npy``
    uint8 array holding UTF-8 JSON: ``{"format": "deepff-model"`` (or
    ``"deepff-checkpoint"``), ``"format_version": 1``, ``"deepff_version"``,
    ``"spec"`` (the classic layer list), ``"dtype"``, ``"seed"``,
    ``"arrays"`` (name -> shape and dtype of every other member), and the
    optional ``"preprocessing"``, ``"classes"``, ``"task"``, ``"training"``
    and ``"metadata"`` entries; a checkpoint adds ``"state"``.
``theta.npy``
    The flat parameter vector (see :mod:`deepff.params`).
``buffer.<layer>.<name>.npy``
    Batch-norm running statistics.
``state.<path>.npy``
    Checkpoints only: optimizer moments, early-stopping weights, ...

Reading never unpickles: each member's ``.npy`` header is parsed and
checked (numeric dtype, size consistent with the archive) before its bytes
are turned into an array, so an object array is rejected unread. Writing is
atomic: a temporary file in the target's folder is written, flushed,
fsync'ed and renamed over the target, so a crash or a full disk leaves the
previous file intact.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile

import numpy as np

from .errors import DeepffError, ModelFileError

__all__ = ["save", "load", "save_checkpoint", "load_checkpoint", "FORMAT_VERSION", "atomic_write"]

FORMAT_VERSION = 1
_MODEL, _CHECKPOINT = "deepff-model", "deepff-checkpoint"
_ALLOWED_KINDS = "fiub"
_MAX_HEADER = 64 * 1024 * 1024


# ------------------------------------------------------------------ writing
def atomic_write(path, write):
    """Write a file atomically: temp file in the same folder, fsync, rename.

    Parameters
    ----------
    path : str or path-like
        Target; replaced only once the new content is fully on disk.
    write : callable
        ``write(fileobj)`` writes the content to a binary file object.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _write_archive(path, header, arrays):
    header = dict(header)
    header["arrays"] = {k: {"shape": list(v.shape), "dtype": v.dtype.str} for k, v in arrays.items()}
    blob = np.frombuffer(json.dumps(header, allow_nan=True).encode("utf-8"), dtype=np.uint8)
    members = {"header": blob, **arrays}

    def write(fh):
        np.savez(fh, **members)

    atomic_write(path, write)


def _network_of(model):
    net = getattr(model, "network", model)  # classic Net holds its engine
    if not hasattr(net, "params") or net.params is None:
        raise ModelFileError("only a built deepff network can be saved (fit it or call build() first)")
    return net


def _base_header(net, kind):
    from . import __version__
    from .spec import network_spec

    return {
        "format": kind,
        "format_version": FORMAT_VERSION,
        "deepff_version": __version__,
        "spec": network_spec(net.n_features, net.layers, net.loss),
        "dtype": str(net.dtype),
        "seed": net.seed,
    }


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
        The training configuration, for the record.
    metadata : dict, optional
        Anything else JSON-compatible.
    """
    net = _network_of(model)
    header = _base_header(net, _MODEL)
    header.update({
        "task": net.task,
        "preprocessing": preprocessing if preprocessing is not None else getattr(net, "preprocessing", None),
        "classes": classes if classes is not None else getattr(net, "classes", None),
        "training": training,
        "metadata": metadata if metadata is not None else getattr(net, "metadata", None),
    })
    arrays = {"theta": net.params.theta}
    arrays.update({"buffer." + k: v for k, v in net.buffers().items()})
    try:
        _write_archive(path, header, arrays)
    except TypeError as exc:
        raise ModelFileError(f"cannot save: header values must be JSON-compatible ({exc})") from None


# ------------------------------------------------------------------ reading
def _read_member(zf, info):
    """Parse one .npy member without ever unpickling; return the array."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ModelFileError(f"member {info.filename!r} has an unsupported .npy version {version}")
        if dtype.hasobject or dtype.kind not in _ALLOWED_KINDS:
            raise ModelFileError(f"member {info.filename!r} has dtype {dtype}; only numeric arrays are "
                                 "allowed (object arrays would need pickle, which deepff never loads)")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        header_len = fh.tell()
        if header_len + nbytes != info.file_size:
            raise ModelFileError(f"member {info.filename!r} is truncated or inconsistent "
                                 f"(declares {nbytes} bytes of data, holds {info.file_size - header_len})")
        data = fh.read(nbytes)
        if len(data) != nbytes:
            raise ModelFileError(f"member {info.filename!r} is truncated")
        return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _read_archive(path, expected_format):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path!r}: no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if "header.npy" not in infos:
                raise ModelFileError(f"{path!r} is not a deepff file (no header)")
            if infos["header.npy"].file_size > _MAX_HEADER:
                raise ModelFileError(f"{path!r}: header too large")
            blob = _read_member(zf, infos["header.npy"])
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
                if member is None:
                    raise ModelFileError(f"{path!r}: array {name!r} is missing")
                arr = _read_member(zf, member)
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
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path!r}: {exc}") from None
    except Exception as exc:  # zip, zlib, json, unicode, numpy header errors
        raise ModelFileError(f"{path!r} is not a valid deepff file (corrupted or truncated): "
                             f"{type(exc).__name__}: {exc}") from None


def _build(header, arrays, path):
    from .model import Network

    try:
        net = Network.from_spec(header["spec"], dtype=header["dtype"], seed=header.get("seed"))
    except DeepffError as exc:
        raise ModelFileError(f"{path!r}: the stored architecture is invalid: {exc}") from None
    except Exception as exc:
        raise ModelFileError(f"{path!r}: the stored architecture is malformed: {exc}") from None
    theta = arrays.get("theta")
    if theta is None or theta.shape != net.params.theta.shape or theta.dtype != net.dtype:
        raise ModelFileError(
            f"{path!r}: the parameter vector does not match the architecture (expected "
            f"{net.params.theta.shape} {net.dtype}, found "
            f"{None if theta is None else theta.shape} {None if theta is None else theta.dtype})")
    if not np.isfinite(theta).all():
        raise ModelFileError(f"{path!r}: the parameters contain NaN or infinity")
    net.params.theta[...] = theta
    for name, buf in net.buffers().items():
        stored = arrays.get("buffer." + name)
        if stored is None or stored.shape != buf.shape or stored.dtype != buf.dtype:
            raise ModelFileError(f"{path!r}: buffer {name!r} is missing or does not match the architecture")
        buf[...] = stored
    return net


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
        not match the architecture, object arrays, or a newer format.
    """
    header, arrays = _read_archive(path, _MODEL)
    net = _build(header, arrays, os.fspath(path))
    net.preprocessing = header.get("preprocessing")
    net.classes = header.get("classes")
    net.training_config = header.get("training")
    net.metadata = header.get("metadata")
    return net


# -------------------------------------------------------------- checkpoints
def _flatten(state, prefix, arrays):
    """Split a nested state dict into JSON parts and arrays ("state.a.b")."""
    if isinstance(state, np.ndarray):
        arrays["state." + prefix] = np.ascontiguousarray(state)
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
            key = "state." + obj["__array__"]
            if key not in arrays:
                raise ModelFileError(f"checkpoint array {key!r} is missing")
            return arrays[key]
        if set(obj) == {"__list__", "__tuple__"}:
            items = [_unflatten(v, arrays) for v in obj["__list__"]]
            return tuple(items) if obj["__tuple__"] else items
        return {k: _unflatten(v, arrays) for k, v in obj.items()}
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
    """
    net = trainer.network
    header = _base_header(net, _CHECKPOINT)
    arrays = {"theta": net.params.theta}
    arrays.update({"buffer." + k: v for k, v in net.buffers().items()})
    state = trainer.state_dict()
    state.pop("theta")
    state.pop("buffers")
    header["state"] = _flatten(state, "", arrays)
    header["extra"] = extra
    _write_archive(path, header, arrays)


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
    """
    header, arrays = _read_archive(path, _CHECKPOINT)
    net = _build(header, arrays, os.fspath(path))
    try:
        state = _unflatten(header["state"], arrays)
        state["theta"] = net.params.theta.copy()
        state["buffers"] = {k: v.copy() for k, v in net.buffers().items()}
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{os.fspath(path)!r}: malformed checkpoint state: {exc}") from None
    return net, state, header.get("extra")

