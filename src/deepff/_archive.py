"""The container of model files and checkpoints: a zip of ``.npy`` members with a JSON header.

:mod:`deepff.io` says what a model file and a checkpoint hold; this module
writes and reads the container they share (module docstring of
:mod:`deepff.io`: the layout). Writing refuses header values that JSON would
change or could not write strictly; reading never unpickles, checks every
member's ``.npy`` header before reading its bytes, and names any problem as
a :class:`~deepff.errors.ModelFileError`.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile

import numpy as np

from .atomic import atomic_write
from .errors import DeepffError, ModelFileError

FORMAT_VERSION = 1
_MODEL, _CHECKPOINT = "deepff-model", "deepff-checkpoint"
_ALLOWED_KINDS = "fiub"
_MAX_HEADER = 64 * 1024 * 1024
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed: the same model gives the same bytes
_MAX_DEPTH = 100   # levels of nesting allowed in user-given header values


def _json_default(obj):
    """JSON encoding of numpy scalars and arrays met in headers."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-compatible")


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
