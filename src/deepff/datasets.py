"""Data sets: MNIST (IDX files, download with verification), scikit-learn's
8x8 digits, CSV files and numpy array files, plus the small helpers a
training run needs around them (label encoding, task inference, a seeded
train/test split and a JSON-able standardiser).

Every problem a user can cause (a missing or corrupt file, a bad cell in a
CSV, an unknown column or data set name) raises
:class:`~deepff.errors.DatasetError`, a :class:`ValueError`, whose message
names the file, column, row or value at fault and the valid choices.

Only numpy and the standard library are imported at module level;
scikit-learn is imported when the ``digits`` data set is loaded and
:mod:`urllib.request` when something is downloaded.

Streaming
---------
An uncompressed ``.npy`` file is the format for data larger than memory:
:func:`load_array_file` memory-maps it (``mmap_mode="r"``). Members of a
``.npz`` archive cannot be memory-mapped by numpy and are read into memory.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DatasetError, ModelFileError, choices
from .validation import check_file_path, is_plain_number

__all__ = [
    "MNIST_FILES",
    "MNIST_SHA256",
    "MNIST_MIRRORS",
    "MAX_CLASSES",
    "DATASETS",
    "CSVData",
    "Dataset",
    "Standardizer",
    "read_idx",
    "is_plain_number",
    "cache_dir",
    "download_mnist",
    "load_mnist",
    "load_digits_dataset",
    "load_csv",
    "encode_labels",
    "load_array_file",
    "infer_task",
    "train_test_split_indices",
    "list_datasets",
    "load_dataset",
]

# ---------------------------------------------------------------------------
# MNIST facts
# ---------------------------------------------------------------------------

#: The four MNIST files, by their stem (the uncompressed name; the
#: compressed file is the stem plus ``.gz``), in download order.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: SHA-256 of the decompressed IDX payloads. The ``.gz`` wrappers differ
#: between mirrors; the payloads are the same everywhere.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Sizes in bytes of the decompressed payloads (header included).
_MNIST_SIZES = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}

#: Default mirror base URLs, tried in turn; override with the ``mirrors``
#: argument or the ``DEEPFF_MNIST_MIRRORS`` environment variable
#: (comma-separated).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# Largest compressed download accepted (the biggest MNIST .gz is ~9.9 MB).
_MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
_CHUNK = 1 << 20

# IDX type codes (third byte of the magic number) -> big-endian dtype.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# Deflate cannot expand data by more than ~1032:1.
_MAX_DEFLATE_RATIO = 1032


# ---------------------------------------------------------------------------
# IDX reader
# ---------------------------------------------------------------------------


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _readinto_full(f, mv):
    """Fill ``mv`` from ``f``; return the number of bytes read."""
    pos = 0
    total = len(mv)
    while pos < total:
        n = f.readinto(mv[pos : pos + _CHUNK])
        if not n:
            break
        pos += n
    return pos


def _read_idx(path, digest=False):
    """Read an IDX file; return ``(array, sha256 hex of payload or None)``."""
    path = Path(check_file_path(path, error=DatasetError))
    try:
        compressed = _is_gzip(path)
        file_size = path.stat().st_size
    except FileNotFoundError:
        raise DatasetError(f"IDX file not found: {path}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}") from None
    kind = "gzip-compressed IDX file" if compressed else "IDX file"
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4:
                raise DatasetError(
                    f"{kind} {path} is truncated: it holds {len(magic)} byte(s), "
                    "fewer than the 4-byte magic number"
                )
            if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
                raise DatasetError(
                    f"{path} is not an IDX file: bad magic number 0x{magic.hex()} "
                    "(expected 0x0000TTNN with type code TT in "
                    f"{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)} and NN dimensions)"
                )
            dtype = _IDX_DTYPES[magic[2]]
            ndim = magic[3]
            if ndim == 0:
                raise DatasetError(f"IDX file {path} declares 0 dimensions in its magic number")
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise DatasetError(
                    f"{kind} {path} is truncated: its header declares {ndim} dimension(s) "
                    f"but holds only {len(dims_raw)} of {4 * ndim} dimension bytes"
                )
            shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            header = magic + dims_raw
            n_bytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if not compressed and file_size != len(header) + n_bytes:
                what = "truncated" if file_size < len(header) + n_bytes else "longer than its header says"
                raise DatasetError(
                    f"IDX file {path} is {what}: shape {shape} of {dtype.name} needs "
                    f"{n_bytes} payload bytes, the file holds {file_size - len(header)}"
                )
            if compressed and n_bytes > _MAX_DEFLATE_RATIO * file_size + 1024:
                raise DatasetError(
                    f"{kind} {path} is corrupt or truncated: its header declares shape {shape} "
                    f"({n_bytes} bytes), more than {file_size} compressed bytes can hold"
                )
            try:
                arr = np.empty(shape, dtype=dtype)
            except (MemoryError, ValueError) as exc:
                raise DatasetError(
                    f"IDX file {path} declares shape {shape}, which cannot be allocated: {exc}"
                ) from None
            mv = memoryview(arr.reshape(-1)).cast("B")
            got = _readinto_full(f, mv)
            if got < n_bytes:
                raise DatasetError(
                    f"{kind} {path} is truncated: shape {shape} of {dtype.name} needs "
                    f"{n_bytes} payload bytes, only {got} are present"
                )
            if f.read(1):
                raise DatasetError(
                    f"{kind} {path} holds more data than its header declares "
                    f"(shape {shape}, {n_bytes} payload bytes)"
                )
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{kind} {path} is corrupt or truncated: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}") from None
    hexdigest = None
    if digest:
        h = hashlib.sha256(header)
        h.update(mv)
        hexdigest = h.hexdigest()
    if not dtype.isnative and dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr, hexdigest


def read_idx(path):
    """Read an IDX file (raw or gzip-compressed) into a numpy array.

    The magic number ``0x0000TTNN`` gives the element type ``TT`` (0x08
    uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)
    and the number of dimensions ``NN``; the dimension sizes follow as
    big-endian uint32. Compression is detected from the file's first bytes,
    not its name.

    Parameters
    ----------
    path : str or os.PathLike
        The file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        Shape ``(d_1, ..., d_NN)`` as declared in the header, native byte
        order, writable. MNIST images: ``(n, 28, 28)`` uint8 (magic 0x0803);
        MNIST labels: ``(n,)`` uint8 (magic 0x0801).

    Raises
    ------
    DatasetError
        If the file is missing, has a bad magic number, is truncated, holds
        trailing data, or is a corrupt gzip stream.
    """
    return _read_idx(path)[0]


# ---------------------------------------------------------------------------
# Cache folder and download
# ---------------------------------------------------------------------------


def cache_dir():
    """Return the folder deepff caches data sets in.

    ``$DEEPFF_DATA`` if set; otherwise the platform's user cache folder plus
    ``deepff``: ``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux and other
    Unixes, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows.
    The folder is not created.

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get("DEEPFF_DATA")
    if env:
        return Path(env).expanduser()
    if sys.platform.startswith("win"):
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        # The XDG spec says relative paths are to be ignored.
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "deepff"


def _mirror_list(mirrors):
    if mirrors is None:
        env = os.environ.get("DEEPFF_MNIST_MIRRORS", "")
        mirrors = [m.strip() for m in env.split(",") if m.strip()] or list(MNIST_MIRRORS)
    elif isinstance(mirrors, (str, bytes)):
        mirrors = [mirrors]
    mirrors = [str(m) for m in mirrors]
    if not mirrors:
        raise DatasetError("no MNIST mirror given: pass at least one base URL")
    return [m if m.endswith("/") else m + "/" for m in mirrors]


def _present(directory, stem):
    """Return the path of ``stem`` or ``stem.gz`` in ``directory``, or None."""
    for name in (stem + ".gz", stem):
        p = directory / name
        if p.is_file():
            return p
    return None


def _fetch(url, out, timeout):
    """Copy ``url`` into the open binary file ``out``, at most _MAX_DOWNLOAD_BYTES."""
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "deepff-datasets"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        total = 0
        # the socket timeout restarts with every byte, so a server that trickles would hold the
        # download forever: each `timeout` seconds must also bring at least 1 KiB a second
        window_start, window_bytes = time.monotonic(), 0
        while True:
            chunk = resp.read1(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > _MAX_DOWNLOAD_BYTES:
                raise DatasetError(f"response larger than {_MAX_DOWNLOAD_BYTES} bytes")
            out.write(chunk)
            window_bytes += len(chunk)
            elapsed = time.monotonic() - window_start
            if elapsed >= timeout:
                if window_bytes < 1024 * elapsed:
                    raise DatasetError(f"the transfer stalled ({window_bytes} bytes in {elapsed:.0f} s)")
                window_start, window_bytes = time.monotonic(), 0


def _gz_payload_digest(path, limit):
    """SHA-256 of the decompressed content of ``path``, reading at most ``limit`` bytes."""
    h = hashlib.sha256()
    total = 0
    with gzip.open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise DatasetError(f"decompressed payload is larger than the expected {limit} bytes")
            h.update(chunk)
    return h.hexdigest(), total


_STALE_PART_SECONDS = 3600   # a .part file untouched this long belongs to a download that was killed


def _remove_stale_parts(stem, dest, timeout):
    """Delete the temporary files of downloads of ``stem`` that were killed before they could clean up.

    A download that runs rewrites its file every few seconds, and a stalled
    one is given up after its timeout, so a ``.part`` file unchanged for an
    hour (or twice the timeout, if longer) has no owner; a fresher one may be
    another process's download, and stays.
    """
    now = time.time()
    stale = max(_STALE_PART_SECONDS, 2 * timeout)
    for part in dest.glob(f".{stem}.gz.*.part"):
        try:
            if now - part.stat().st_mtime > stale:
                part.unlink()
        except OSError:   # gone already, or not ours to delete: leave it
            pass


def _download_one(stem, dest, mirrors, timeout):
    import http.client
    import urllib.error

    _remove_stale_parts(stem, dest, timeout)
    reasons = []
    for base in mirrors:
        url = f"{base}{stem}.gz"
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{stem}.gz.", suffix=".part", dir=dest)
        except OSError as exc:
            raise DatasetError(f"cannot write the MNIST files into {dest} ({exc.strerror}); give a writable folder "
                               "(data_dir=, --data-dir, or the DEEPFF_DATA environment variable)") from None
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    _fetch(url, out, timeout)
                digest, size = _gz_payload_digest(tmp, _MNIST_SIZES[stem])
                if digest != MNIST_SHA256[stem]:
                    raise DatasetError(
                        f"SHA-256 digest mismatch of the decompressed payload ({size} bytes): "
                        f"got {digest}, expected {MNIST_SHA256[stem]}"
                    )
                from .io import _new_file_mode

                os.chmod(tmp, _new_file_mode(dest / f"{stem}.gz"))   # as other files: mkstemp makes 0600
                os.replace(tmp, dest / f"{stem}.gz")
                return dest / f"{stem}.gz"
            except urllib.error.HTTPError as exc:
                reasons.append(f"{url}: HTTP {exc.code} {exc.reason}")
            except urllib.error.URLError as exc:
                reasons.append(f"{url}: {exc.reason}")
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                reasons.append(f"{url}: corrupt or truncated gzip ({exc})")
            except (OSError, http.client.HTTPException, DatasetError, ValueError) as exc:
                reasons.append(f"{url}: {type(exc).__name__}: {exc}")
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    raise DatasetError(     # "; " between the reasons: the command line shows the message on one line
        f"could not download {stem}.gz into {dest}; every mirror failed: "
        + "; ".join(f"({i}) {r}" for i, r in enumerate(reasons, start=1))
        + ". Set DEEPFF_MNIST_MIRRORS (comma-separated base URLs) to use other mirrors, place the file "
        "there yourself, or point at a folder that holds the MNIST files (data_dir=, or --data-dir on "
        "the command line)."
    )


def download_mnist(dest_dir, mirrors=None, timeout=30):
    """Download the MNIST files missing from ``dest_dir``, verifying each.

    For each of :data:`MNIST_FILES` absent from ``dest_dir`` (neither
    ``<stem>.gz`` nor the uncompressed ``<stem>`` is there), each mirror is
    tried in turn: ``<base><stem>.gz`` is downloaded into a temporary file
    inside ``dest_dir``, decompressed and its SHA-256 checked against
    :data:`MNIST_SHA256`, and only then moved into place with
    :func:`os.replace` (atomic). A failed attempt (HTTP or network error,
    oversized or truncated download, corrupt gzip, wrong digest) removes its
    temporary file and moves on to the next mirror. Files already present are
    left alone (:func:`load_mnist` verifies them). A temporary file left by a
    download that was killed (``.<stem>.gz.*.part``, unchanged for an hour,
    or twice ``timeout`` if that is longer) is deleted when that file is
    next downloaded.

    Parameters
    ----------
    dest_dir : str or os.PathLike
        Folder to download into; created if missing.
    mirrors : list of str, optional
        Base URLs (a trailing ``/`` is added if missing). Default: the
        comma-separated list in ``$DEEPFF_MNIST_MIRRORS`` if set, else
        :data:`MNIST_MIRRORS`.
    timeout : float, default 30
        Socket timeout in seconds for each request; a transfer that brings
        less than 1 KiB a second over that long is given up too (the next
        mirror is tried).

    Returns
    -------
    pathlib.Path
        ``dest_dir``.

    Raises
    ------
    DatasetError
        If ``dest_dir`` cannot be created, or when every mirror fails for a
        file; the message names the file and each mirror's reason.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise DatasetError(f"timeout must be a positive number of seconds, got {timeout!r}")
    dest = Path(dest_dir).expanduser()
    mirrors = _mirror_list(mirrors)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create the MNIST folder {dest}: {exc}") from None
    for stem in MNIST_FILES:
        if _present(dest, stem) is None:
            _download_one(stem, dest, mirrors, timeout)
    return dest


# ---------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------


def _read_mnist_file(path, stem, verify):
    arr, digest = _read_idx(path, digest=verify)
    if verify and digest != MNIST_SHA256[stem]:
        raise DatasetError(
            f"MNIST file {path} failed verification: SHA-256 digest of its payload is {digest}, "
            f"expected {MNIST_SHA256[stem]}. Delete the file and download it again "
            "(or pass verify=False to load it anyway)."
        )
    images = "images" in stem
    if images and (arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[1:] != (28, 28)):
        raise DatasetError(
            f"MNIST image file {path} holds {arr.dtype} data of shape {arr.shape}, "
            "expected uint8 of shape (n, 28, 28)"
        )
    if not images:
        if arr.dtype != np.uint8 or arr.ndim != 1:
            raise DatasetError(
                f"MNIST label file {path} holds {arr.dtype} data of shape {arr.shape}, "
                "expected uint8 of shape (n,)"
            )
        if arr.size and arr.max() > 9:
            raise DatasetError(f"MNIST label file {path} holds label {int(arr.max())}, expected 0..9")
    return arr


def load_mnist(data_dir=None, download=True, mirrors=None, verify=True):
    """Load the standard MNIST split.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder holding the four files, each as ``<stem>.gz`` or the
        uncompressed ``<stem>`` (see :data:`MNIST_FILES`). When given,
        nothing is downloaded. Default: ``cache_dir() / "mnist"``, where
        missing files are downloaded if ``download`` is true.
    download : bool, default True
        Download missing files into the cache folder (only when
        ``data_dir`` is None).
    mirrors : list of str, optional
        Mirror base URLs for the download; see :func:`download_mnist`.
    verify : bool, default True
        Check the SHA-256 of every decompressed payload against
        :data:`MNIST_SHA256`. This costs about 0.03 s on top of ~0.2 s of
        decompression, so no "verified" marker is cached.

    Returns
    -------
    X_train : numpy.ndarray of uint8, shape (60000, 784)
    y_train : numpy.ndarray of int64, shape (60000,)
    X_test : numpy.ndarray of uint8, shape (10000, 784)
    y_test : numpy.ndarray of int64, shape (10000,)
        Pixels are 0..255 in row-major 28x28 order; labels are 0..9.

    Raises
    ------
    DatasetError
        If a file is missing (the message names it and the folder searched),
        corrupt, fails verification, or cannot be downloaded.
    """
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        if not directory.is_dir():
            raise DatasetError(f"MNIST folder {directory} does not exist or is not a folder")
    else:
        directory = cache_dir() / "mnist"
        if download and any(_present(directory, s) is None for s in MNIST_FILES):
            download_mnist(directory, mirrors=mirrors)
    arrays = {}
    for stem in MNIST_FILES:
        path = _present(directory, stem)
        if path is None:
            hint = (
                ""
                if data_dir is not None
                else " Call load_mnist(download=True) or download_mnist() to fetch it."
            )
            raise DatasetError(
                f"MNIST file {stem}.gz (or uncompressed {stem}) is missing: looked in {directory}.{hint}"
            )
        arrays[stem] = _read_mnist_file(path, stem, verify)
    out = []
    for split in ("train", "t10k"):
        images = arrays[f"{split}-images-idx3-ubyte"]
        labels = arrays[f"{split}-labels-idx1-ubyte"]
        if images.shape[0] != labels.shape[0]:
            raise DatasetError(
                f"MNIST {split} files in {directory} disagree: {images.shape[0]} images "
                f"but {labels.shape[0]} labels"
            )
        out.append(images.reshape(images.shape[0], 28 * 28))
        out.append(labels.astype(np.int64))
    return tuple(out)


# ---------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------


def load_digits_dataset():
    """Load scikit-learn's bundled 8x8 handwritten digits (no download).

    Returns
    -------
    X : numpy.ndarray of float64, shape (1797, 64)
        Pixel intensities 0..16, row-major 8x8.
    y : numpy.ndarray of int64, shape (1797,)
        Labels 0..9.

    Raises
    ------
    DatasetError
        If scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DatasetError(
            f"the 'digits' data set needs scikit-learn: pip install 'deepff[sklearn]' ({exc})"
        ) from None
    bunch = load_digits()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------

_CSV_DELIMITERS = ",;\t|"
_CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
_ARRAY_EXTENSIONS = (".npy", ".npz")


@dataclass
class CSVData:
    """The contents of a CSV file, split into features and target.

    Attributes
    ----------
    X : numpy.ndarray of float64, shape (n, d)
        The feature columns.
    y : numpy.ndarray, shape (n,)
        The target column: int64 if every cell is an integer, else float64
        if every cell is a number, else strings (dtype ``<U...``).
    feature_names : list of str
        The d feature column names.
    target_name : str
        The target column's name.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list
    target_name: str


def _detect_delimiter(sample, path):
    if Path(path).suffix.lower() == ".tsv":
        return "\t"
    try:
        delim = csv.Sniffer().sniff(sample, delimiters=_CSV_DELIMITERS).delimiter
    except csv.Error:
        delim = None
    if delim and delim in _CSV_DELIMITERS:
        return delim
    # Fallback: the candidate that splits the first lines into the same
    # number (>1) of fields most often.
    lines = [ln for ln in sample.splitlines()[:20] if ln.strip()]
    best, best_score = ",", 0
    for cand in _CSV_DELIMITERS:
        counts = [ln.count(cand) for ln in lines]
        if counts and counts[0] > 0:
            score = sum(c == counts[0] for c in counts)
            if score > best_score:
                best, best_score = cand, score
    return best


def _resolve_column(target, names, path):
    """Return the index of ``target`` (name or int, negatives allowed) in ``names``."""
    n = len(names)
    if target is None:
        return n - 1
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        t = int(target)
        if not -n <= t < n:
            raise DatasetError(
                f"target column index {t} is out of range for {path}, which has {n} columns "
                f"(valid: {-n}..{n - 1})"
            )
        return t % n
    if isinstance(target, str):
        hits = [i for i, name in enumerate(names) if name == target]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise DatasetError(f"target column name {target!r} occurs {len(hits)} times in {path}")
        try:
            return _resolve_column(int(target), names, path)
        except ValueError:
            pass
        raise DatasetError(
            f"unknown target column {target!r} in {path}; valid names: {choices(names)} "
            f"(or an integer index {-n}..{n - 1})"
        )
    raise DatasetError(f"target must be a column name or an integer index, got {target!r}")


def _check_unique(names, path):
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise DatasetError(
            f"CSV file {path} names more than one column {', '.join(repr(n) for n in repeated)}; "
            "column names must be unique"
        )


_INTEGER = re.compile(r"[+-]?[0-9]+")   # an integer as data files write it (see is_plain_number)


def _parse_target(cells, lines, name, path):
    for i, cell in enumerate(cells):
        if cell == "":
            raise DatasetError(
                f"{path}: data row {i + 1} (line {lines[i]}), target column {name!r}: empty cell"
            )
    if all(_INTEGER.fullmatch(c) for c in cells):
        try:
            return np.array([int(c) for c in cells], dtype=np.int64)
        except (OverflowError, ValueError):   # beyond int64, or beyond Python's digit limit for int()
            pass
    if not all(is_plain_number(c) for c in cells):
        return np.array(cells, dtype=str)      # class labels, kept as written
    y = np.array([float(c) for c in cells], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        i = int(bad[0])
        raise DatasetError(
            f"{path}: data row {i + 1} (line {lines[i]}), target column {name!r}: "
            f"non-finite value {cells[i]!r}"
        )
    return y


def _bad_cell(rows, lines, names, path):
    """The DatasetError naming the first feature cell that is not a finite, plainly written number, or None."""
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            where = f"{path}: data row {r + 1} (line {lines[r]}), column {names[c]!r}"
            if cell == "":
                return DatasetError(f"{where}: empty cell (missing values are not allowed)")
            if not is_plain_number(cell):
                return DatasetError(f"{where}: non-numeric value {cell!r} (a number is written with the digits "
                                    "0-9, an optional sign, decimal point and exponent)")
            v = float(cell)
            if v != v:
                return DatasetError(f"{where}: missing value {cell!r} (NaN is not allowed)")
            if v in (float("inf"), float("-inf")):
                return DatasetError(f"{where}: non-finite value {cell!r}")
    return None


def _locate_bad_cell(rows, lines, names, path):
    raise _bad_cell(rows, lines, names, path) or DatasetError(
        f"{path}: the feature columns could not be read as numbers")


def _is_number(cell):
    """Whether a cell could be meant as a number (header detection: Python's lenient reading).

    A first row of ``1_000`` is data, to be refused as such with its row and
    column, rather than taken for column names.
    """
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _first_row_is_header(rows, target):
    """Decide from the rows of a CSV file whether the first names its columns.

    It does when it is ``0, 1, ..., d-1`` (the header pandas writes for a
    DataFrame of an array), when a non-numeric cell of it is ``target``,
    when a cell outside the target column is not a number (no data row
    can hold that), when its target cell is text above a number, or when
    its target cell is text that no other row's target repeats (a column
    name above class labels, which recur). A first row of numbers is data:
    the file has no header (``header=True`` says otherwise).
    """
    first = rows[0]
    numeric = [_is_number(cell) for cell in first]
    if first == [str(i) for i in range(len(first))]:
        return True
    if all(numeric):
        return False
    if isinstance(target, str) and target in first:
        return True
    if isinstance(target, str) and re.fullmatch(r"col\d+", target) and int(target[3:]) < len(first):
        target = target[3:]   # the name deepff gives column N of a file without a header
    try:
        t = len(first) - 1 if target is None else int(target) % len(first)
    except ValueError:
        return True  # a target name: only a header can hold it
    if not all(ok for i, ok in enumerate(numeric) if i != t):
        return True
    if numeric[t]:
        return False
    below = [row[t] for row in rows[1:] if len(row) > t]
    if below and _is_number(below[0]):
        return True
    return first[t] not in below          # a label of its own: a name, not a class


def load_csv(path, target=None, delimiter=None, header=None):
    """Read a delimited text file of numeric features and one target column.

    Parameters
    ----------
    path : str or os.PathLike
        The file (UTF-8, an optional byte-order mark is skipped).
    target : str or int, optional
        The target column: a header name, or an integer index (negative
        counts from the end; a string of digits that is not a column name is
        taken as an index). Default: the last column.
    delimiter : str, optional
        One character. Default: detected with :class:`csv.Sniffer` among
        ``,`` ``;`` tab and ``|`` (tab for a ``.tsv`` file).
    header : bool, optional
        Whether the first non-blank row holds the column names. Default:
        detected. The first row is a header when it is ``0,1,...,d-1``
        (pandas' header for an array), holds the ``target`` name, has text
        outside the target column, or has a target cell of text above
        numbers or that no other row repeats (a name above class labels);
        otherwise (e.g. a row of numbers) it is data. Without a header the
        columns are named ``col0``, ``col1``, ... and an integer-like
        ``target`` is a column index.

    Returns
    -------
    CSVData
        ``X`` float64 of shape (n, d), ``y`` of shape (n,) (int64, float64
        or strings, see :class:`CSVData`), ``feature_names`` (d names) and
        ``target_name``.

    Raises
    ------
    DatasetError
        If the file is missing, unreadable, empty, has no data rows or fewer
        than two columns, has a row with a different number of fields than
        the header, has two columns of the same name, names an unknown
        target column (the valid names are listed), or has a feature cell
        that is empty, NaN, infinite or not a number (the data row, file
        line, column name and value are named). Blank lines are skipped.
    """
    if header is not None and not isinstance(header, (bool, np.bool_)):
        raise DatasetError(f"header must be True, False or None (detect), got {header!r}; the command line's "
                           "--header yes/no/auto is header=True/False/None here")
    path = Path(check_file_path(path, error=DatasetError))
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        raise DatasetError(f"CSV file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"CSV file {path} is not valid UTF-8 text: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read CSV file {path}: {exc}") from None
    if not text.strip():
        raise DatasetError(f"CSV file {path} is empty")
    if delimiter is None:
        delimiter = _detect_delimiter(text[:65536], path)
    elif not isinstance(delimiter, str) or len(delimiter) != 1:
        raise DatasetError(f"delimiter must be a single character, got {delimiter!r}")

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, lines = [], []
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                rows.append([cell.strip() for cell in row])
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise DatasetError(f"cannot parse CSV file {path} at line {reader.line_num}: {exc}") from None
    if not rows:
        raise DatasetError(f"CSV file {path} holds no rows, only empty cells")
    while len(rows[0]) > 1 and all(len(r) == len(rows[0]) and r[-1] == "" for r in rows):
        for r in rows:        # a delimiter that ends every line (spreadsheet exports): no column
            r.pop()
    if header is None:
        header = _first_row_is_header(rows, target)
    if header:
        names = rows.pop(0)
        lines.pop(0)
        if "" in names:
            first = names.index("") == 0
            raise DatasetError(f"{path}: header column {names.index('') + 1} has no name; name every column "
                               + ("(a pandas index? write the file with to_csv(..., index=False)) " if first else "")
                               + "(or give header=False / --header no if the first line is data)")
        _check_unique(names, path)
    else:
        names = [f"col{i}" for i in range(len(rows[0]))]
    for row, line in zip(rows, lines):
        if len(row) != len(names):
            raise DatasetError(
                f"{path}: line {line} has {len(row)} fields, expected {len(names)} "
                f"like the {'header' if header else 'first row'} (delimiter {delimiter!r})"
            )
    if not rows:
        raise DatasetError(f"CSV file {path} has a header but no data rows")
    if len(names) < 2:
        raise DatasetError(
            f"CSV file {path} has a single column with delimiter {delimiter!r}; it needs at least "
            "one feature column and a target column (if the delimiter was misdetected, give it: "
            "--delimiter on the command line, delimiter= in Python)"
        )
    t = _resolve_column(target, names, path)
    target_name = names[t]
    feature_names = [nm for i, nm in enumerate(names) if i != t]
    target_cells = [row[t] for row in rows]
    feat_rows = [row[:t] + row[t + 1 :] for row in rows]
    try:
        X = np.array(feat_rows, dtype=np.float64)
    except ValueError:
        _locate_bad_cell(feat_rows, lines, feature_names, path)
    if not np.isfinite(X).all():
        _locate_bad_cell(feat_rows, lines, feature_names, path)
    if "_" in text or not text.isascii():   # numpy reads "1_000" and "١٢" as numbers: refuse such a cell
        cells = "".join("".join(row) for row in feat_rows)   # (a header "pixel_1" is no reason for the
        if "_" in cells or not cells.isascii():            # cell-by-cell search, which is slow)
            _locate_bad_cell(feat_rows, lines, feature_names, path)
    y = _parse_target(target_cells, lines, target_name, path)
    return CSVData(X=X, y=y, feature_names=feature_names, target_name=target_name)


# ---------------------------------------------------------------------------
# Labels and task
# ---------------------------------------------------------------------------


def _as_1d_labels(y, what="y"):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"{what} must be one-dimensional (n,), got shape {y.shape}")
    if y.size == 0:
        raise DatasetError(f"{what} is empty")
    return y


def encode_labels(y):
    """Map arbitrary class labels to integer codes 0..k-1.

    Parameters
    ----------
    y : array_like, shape (n,) or (n, 1)
        Labels: strings, integers, booleans or floats.

    Returns
    -------
    codes : numpy.ndarray of int64, shape (n,)
        ``classes[codes] == y``.
    classes : numpy.ndarray, shape (k,)
        The distinct labels in sorted order (as :func:`numpy.unique`).

    Raises
    ------
    DatasetError
        If ``y`` is empty, not one-dimensional, holds NaN, or mixes label
        types that cannot be sorted together.
    """
    y = _as_1d_labels(y)
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise DatasetError(f"labels hold NaN at index {int(np.flatnonzero(np.isnan(y))[0])}")
    try:
        classes, codes = np.unique(y, return_inverse=True)
    except TypeError as exc:
        raise DatasetError(f"labels cannot be sorted (mixed types?): {exc}") from None
    return codes.reshape(-1).astype(np.int64), classes


#: Most distinct integer values a target may have and still count as classes.
MAX_CLASSES = 50


def infer_task(y):
    """Guess whether a target column calls for classification or regression.

    Rule: strings, booleans and other non-numeric labels are
    classification. Integers, and floats whose values are all integers, are
    classification when they take at most 2 distinct values, or when they
    take at most :data:`MAX_CLASSES` (50) distinct values and no more than
    half as many as there are samples; otherwise regression. Floats with
    any non-integer (or non-finite) value are regression.

    Parameters
    ----------
    y : array_like, shape (n,) or (n, 1)

    Returns
    -------
    str
        ``"classification"`` or ``"regression"``.

    Raises
    ------
    DatasetError
        If ``y`` is empty or not one-dimensional.
    """
    y = _as_1d_labels(y)
    kind = y.dtype.kind
    if kind in "biu":
        values = y
    elif kind == "f":
        if not np.isfinite(y).all() or not np.array_equal(y, np.round(y)):
            return "regression"
        values = y
    else:
        return "classification"
    k = np.unique(values).size
    if k <= 2 or (k <= MAX_CLASSES and k <= y.size / 2):
        return "classification"
    return "regression"


def train_test_split_indices(n, test_fraction, rng):
    """Shuffle ``range(n)`` and split it into train and test indices.

    Parameters
    ----------
    n : int
        Number of samples.
    test_fraction : float
        Share of samples for the test set, in [0, 1). The test set has
        ``round(n * test_fraction)`` samples, at least 1 and at most n-1 when
        ``test_fraction > 0``; 0 gives an empty test set.
    rng : numpy.random.Generator or int or None
        Source of randomness, or a seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    train_idx : numpy.ndarray of int64, shape (n - n_test,)
    test_idx : numpy.ndarray of int64, shape (n_test,)
        Disjoint, together a permutation of ``range(n)``; each sorted
        ascending (so memory-mapped data is read in order).

    Raises
    ------
    DatasetError
        If ``test_fraction`` is outside [0, 1) or ``n`` is too small.
    """
    n = int(n)
    try:
        frac = float(test_fraction)
    except (TypeError, ValueError):
        raise DatasetError(f"test_fraction must be a number in [0, 1), got {test_fraction!r}") from None
    if not 0.0 <= frac < 1.0:
        raise DatasetError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    if n < 0:
        raise DatasetError(f"n must be non-negative, got {n}")
    if frac > 0 and n < 2:
        raise DatasetError(f"cannot split {n} sample(s) into a train and a test set")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n_test = 0 if frac == 0 else min(max(int(round(n * frac)), 1), n - 1)
    perm = rng.permutation(n).astype(np.int64)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


# ---------------------------------------------------------------------------
# numpy array files
# ---------------------------------------------------------------------------


def _check_X(X, path):
    if X.dtype.kind not in "biuf":
        raise DatasetError(f"X in {path} must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise DatasetError(f"X in {path} must be two-dimensional (n, d), got shape {X.shape}")


def _split_target_column(X, target, path):
    if isinstance(target, str):
        try:
            target = int(target)
        except ValueError:
            raise DatasetError(
                f"target for array file {path} must be an integer column index, got {target!r}"
            ) from None
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise DatasetError(f"target for array file {path} must be an integer column index, got {target!r}")
    d = X.shape[1]
    if d < 2:
        raise DatasetError(f"X in {path} has {d} column(s); a target column needs at least 2")
    t = int(target)
    if not -d <= t < d:
        raise DatasetError(
            f"target column index {t} is out of range for {path}, whose X has {d} columns "
            f"(valid: {-d}..{d - 1})"
        )
    t %= d
    y = np.array(X[:, t])
    if t == d - 1:
        X = X[:, :-1]  # a view: stays memory-mapped
    elif t == 0:
        X = X[:, 1:]
    else:
        X = np.delete(X, t, axis=1)
    return X, y


def load_array_file(path, target=None):
    """Load features (and a target) from a ``.npz`` or ``.npy`` file.

    Files are read with ``allow_pickle=False``: object arrays are refused,
    never unpickled.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` archive holding arrays ``X`` (n, d) and ``y`` (n,), or a
        ``.npy`` file holding X (n, d). A ``.npy`` file is memory-mapped
        read-only (the streaming format for data larger than memory);
        ``.npz`` members are read into memory.
    target : int, optional
        Index of a column of X to take out as the target (negative allowed).
        Taking out the first or last column keeps a memory-mapped X mapped.
        For a ``.npz`` this is only allowed when it has no ``y``.

    Returns
    -------
    X : numpy.ndarray (numpy.memmap for .npy), shape (n, d)
        Numeric, in the file's dtype.
    y : numpy.ndarray of shape (n,), or None
        None for a ``.npy`` file without ``target``.

    Raises
    ------
    DatasetError
        If the file is missing, not a valid numpy file, holds object arrays,
        lacks ``X``/``y`` (the keys found are listed), has X that is not a
        numeric 2-D array or y whose length differs from X's.
    """
    path = Path(check_file_path(path, error=DatasetError))
    suffix = path.suffix.lower()
    if suffix not in _ARRAY_EXTENSIONS:
        raise DatasetError(f"array file {path} must end in {' or '.join(_ARRAY_EXTENSIONS)}")
    if not path.is_file():
        raise DatasetError(f"array file not found: {path}")
    try:
        if suffix == ".npy":
            X = np.load(path, mmap_mode="r", allow_pickle=False)
            if not isinstance(X, np.ndarray):  # pragma: no cover - np.load of .npy returns arrays
                raise DatasetError(f"{path} does not hold a single array")
            y = None
        else:
            with np.load(path, allow_pickle=False) as npz:
                keys = list(npz.files)
                if "X" not in keys or ("y" not in keys and target is None):
                    raise DatasetError(
                        f"{path} must hold arrays named 'X' and 'y'; it holds {choices(keys) or 'none'}"
                    )
                if "y" in keys and target is not None:
                    raise DatasetError(
                        f"{path} already holds 'y', so no target column ({target!r}) can be taken from X; "
                        "a target (--target, target=) is only for files without 'y'"
                    )
                X = npz["X"]
                y = npz["y"] if "y" in keys else None
                for name, member in (("X", X), ("y", y)):   # numpy hands out a member without its header as bytes
                    if member is not None and not isinstance(member, np.ndarray):
                        raise DatasetError(f"{path}: member {name!r} is not a numpy array (no .npy header)")
    except DatasetError:
        raise
    except Exception as exc:  # numpy raises ValueError, OSError, BadZipFile, EOFError, ...
        raise DatasetError(f"cannot load array file {path}: {type(exc).__name__}: {exc}") from None
    _check_X(X, path)
    if target is not None:
        X, y = _split_target_column(X, target, path)
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise DatasetError(
                f"y in {path} must have shape ({X.shape[0]},) to match X {X.shape}, got {y.shape}"
            )
    return X, y


# ---------------------------------------------------------------------------
# Standardizer
# ---------------------------------------------------------------------------


class Standardizer:
    """Per-column standardisation ``(X - mean) / std``.

    Statistics are float64, computed in row chunks (so a memory-mapped X is
    not copied whole). A column whose standard deviation is 0, or below
    ``1e-10`` times its largest absolute value (a constant column up to
    rounding), gets ``std = 1``.

    Attributes
    ----------
    mean_ : numpy.ndarray of float64, shape (d,)
    scale_ : numpy.ndarray of float64, shape (d,)
        The standard deviations, with 1 for constant columns.
    """

    _REL_TOL = 1e-10

    def __init__(self):
        self.mean_ = None
        self.scale_ = None

    @property
    def n_features(self):
        """int or None: the number of columns seen by :meth:`fit`."""
        return None if self.mean_ is None else self.mean_.shape[0]

    def fit(self, X, chunk_rows=None):
        """Compute the mean and standard deviation of every column.

        Parameters
        ----------
        X : array_like, shape (n, d)
            Numeric, n >= 1, every value finite.
        chunk_rows : int, optional
            Rows per chunk (default: about 8 M values per chunk).

        Returns
        -------
        Standardizer
            ``self``.

        Raises
        ------
        DatasetError
            If X is not a non-empty numeric 2-D array or holds NaN/inf.
        """
        X = self._check(X, fitted=False)
        n, d = X.shape
        if n == 0:
            raise DatasetError("cannot fit a Standardizer on X with 0 rows")
        step = int(chunk_rows) if chunk_rows else max(1, (8 << 20) // max(d, 1))
        count = 0
        mean = np.zeros(d)
        m2 = np.zeros(d)
        amax = np.zeros(d)
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, n, step):   # (an overflow to inf is caught once, below, with its column)
                block = np.asarray(X[start : start + step], dtype=np.float64)
                if not np.isfinite(block).all():
                    r, c = np.argwhere(~np.isfinite(block))[0]
                    raise DatasetError(f"X holds a non-finite value at row {start + r}, column {c}")
                nb = block.shape[0]
                bmean = block.mean(axis=0)
                bm2 = ((block - bmean) ** 2).sum(axis=0)
                np.maximum(amax, np.abs(block).max(axis=0), out=amax)
                delta = bmean - mean
                total = count + nb
                mean = mean + delta * (nb / total)
                m2 = m2 + bm2 + delta**2 * (count * nb / total)
                count = total
            std = np.sqrt(m2 / count)
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):   # sums past float64's range
            c = int(np.argmax(~(np.isfinite(mean) & np.isfinite(std))))
            raise DatasetError(f"X's column {c} holds values too large to standardise in float64 (up to "
                               f"{amax[c]:g} in magnitude): divide the data by a constant first")
        std[std <= self._REL_TOL * amax] = 1.0
        self.mean_, self.scale_ = mean, std
        return self

    def transform(self, X, dtype=np.float64):
        """Standardise X with the fitted statistics.

        Parameters
        ----------
        X : array_like, shape (n, d)
        dtype : numpy dtype, default float64
            Output dtype; the arithmetic is done in this dtype.

        Returns
        -------
        numpy.ndarray of ``dtype``, shape (n, d)
            A new array ``(X - mean_) / scale_``.

        Raises
        ------
        DatasetError
            If not fitted, or X does not have ``n_features`` columns.
        """
        X = self._check(X, fitted=True)
        out = np.array(X, dtype=dtype, copy=True)
        out -= self.mean_.astype(out.dtype)
        out /= self.scale_.astype(out.dtype)
        return out

    def fit_transform(self, X, dtype=np.float64):
        """Fit on X, then transform it.

        Parameters
        ----------
        X : array_like, shape (n, d)
        dtype : numpy dtype, default float64

        Returns
        -------
        numpy.ndarray of ``dtype``, shape (n, d)
        """
        return self.fit(X).transform(X, dtype=dtype)

    def inverse_transform(self, Z, dtype=np.float64):
        """Undo :meth:`transform`: ``Z * scale_ + mean_``.

        Parameters
        ----------
        Z : array_like, shape (n, d)
        dtype : numpy dtype, default float64

        Returns
        -------
        numpy.ndarray of ``dtype``, shape (n, d)
        """
        Z = self._check(Z, fitted=True)
        out = np.array(Z, dtype=dtype, copy=True)
        out *= self.scale_.astype(out.dtype)
        out += self.mean_.astype(out.dtype)
        return out

    def to_dict(self):
        """Return the statistics as JSON-able lists of floats.

        Returns
        -------
        dict
            ``{"mean": [d floats], "std": [d floats]}``.

        Raises
        ------
        DatasetError
            If not fitted.
        """
        if self.mean_ is None:
            raise DatasetError("Standardizer is not fitted; call fit(X) first")
        return {"mean": [float(v) for v in self.mean_], "std": [float(v) for v in self.scale_]}

    @classmethod
    def from_dict(cls, d):
        """Rebuild a fitted Standardizer from :meth:`to_dict`'s output.

        Parameters
        ----------
        d : dict
            With keys ``"mean"`` and ``"std"``: equal-length lists of finite
            floats, every std > 0.

        Returns
        -------
        Standardizer

        Raises
        ------
        ModelFileError
            If keys are missing or the values are malformed (this data comes
            from saved model files).
        """
        if not isinstance(d, dict) or not {"mean", "std"} <= set(d):
            found = choices(d) if isinstance(d, dict) else type(d).__name__
            raise ModelFileError(f"standardizer statistics need keys 'mean' and 'std'; found {found}")
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            std = np.asarray(d["std"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"standardizer statistics must be lists of numbers: {exc}") from None
        if mean.ndim != 1 or std.shape != mean.shape:
            raise ModelFileError(
                f"standardizer 'mean' and 'std' must be equal-length lists, got shapes "
                f"{mean.shape} and {std.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ModelFileError("standardizer statistics must be finite, with every std > 0")
        obj = cls()
        obj.mean_, obj.scale_ = mean, std
        return obj

    def _check(self, X, fitted):
        if fitted and self.mean_ is None:
            raise DatasetError("Standardizer is not fitted; call fit(X) first")
        if not isinstance(X, np.ndarray):
            X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise DatasetError(f"X must be numeric, got dtype {X.dtype}")
        if X.ndim != 2:
            raise DatasetError(f"X must be two-dimensional (n, d), got shape {X.shape}")
        if fitted and X.shape[1] != self.mean_.shape[0]:
            raise DatasetError(
                f"X has {X.shape[1]} columns, the Standardizer was fitted on {self.mean_.shape[0]}"
            )
        return X

    def __repr__(self):
        return f"Standardizer(n_features={self.n_features})"


# ---------------------------------------------------------------------------
# Named data sets
# ---------------------------------------------------------------------------

#: Built-in data sets, by name.
DATASETS = {
    "digits": {
        "description": "scikit-learn's 8x8 handwritten digits: 1797 samples, 64 features (0..16), 10 classes",
        "task": "classification",
        "n_features": 64,
        "n_classes": 10,
    },
    "mnist": {
        "description": "MNIST handwritten digits: 60000 train + 10000 test 28x28 images "
        "(784 features scaled to [0, 1]), 10 classes",
        "task": "classification",
        "n_features": 784,
        "n_classes": 10,
    },
}


def list_datasets(data_dir=None):
    """Describe the built-in data sets and whether they are available.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Folder to look for the MNIST files in (default ``cache_dir()/"mnist"``).

    Returns
    -------
    list of dict
        One per data set, sorted by name, with keys ``name``,
        ``description``, ``task``, ``n_features``, ``n_classes``,
        ``location`` (str) and ``present`` (bool).
    """
    import importlib.util

    mnist_dir = Path(data_dir).expanduser() if data_dir is not None else cache_dir() / "mnist"
    out = []
    for name in sorted(DATASETS):
        info = dict(name=name, **DATASETS[name])
        if name == "mnist":
            info["location"] = str(mnist_dir)
            info["present"] = all(_present(mnist_dir, s) is not None for s in MNIST_FILES)
        else:
            info["location"] = "bundled with scikit-learn"
            info["present"] = importlib.util.find_spec("sklearn") is not None
        out.append(info)
    return out


@dataclass
class Dataset:
    """A data set split into train and test parts.

    Attributes
    ----------
    X_train : numpy.ndarray, shape (n_train, d)
    y_train : numpy.ndarray, shape (n_train,)
    X_test : numpy.ndarray, shape (n_test, d)
    y_test : numpy.ndarray, shape (n_test,)
        Features are not standardised and labels are raw (not encoded).
    task : str
        ``"classification"`` or ``"regression"``.
    feature_names : list of str
        The d feature names.
    target_name : str
    name : str
        The built-in name or the file's name.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    feature_names: list = field(default_factory=list)
    target_name: str = "y"
    name: str = ""

    @property
    def n_features(self):
        """int: the number of feature columns d."""
        return self.X_train.shape[1]


def _pixel_names(side):
    return [f"pixel_{r}_{c}" for r in range(side) for c in range(side)]


def _split(X, y, test_fraction, seed):
    train, test = train_test_split_indices(X.shape[0], test_fraction, seed)
    if test.size == 0:  # test_fraction == 0: keep X itself (a memmap stays mapped)
        return X, y, X[:0], y[:0]
    return X[train], y[train], X[test], y[test]


def load_dataset(name_or_path, data_dir=None, target=None, test_fraction=0.2, seed=0, delimiter=None,
                 header=None):
    """Load a built-in data set or a data file, split into train and test.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        ``"digits"``, ``"mnist"`` (case-insensitive; a name wins over a file
        of the same name), or a path ending in ``.csv``, ``.tsv`` or ``.txt``
        (read with :func:`load_csv`) or ``.npz``/``.npy`` (read with
        :func:`load_array_file`; a ``.npy`` needs ``target``).
    data_dir : str or os.PathLike, optional
        For ``"mnist"``: the folder holding its files (nothing is
        downloaded). Default: the cache folder, downloading if needed.
    target : str or int, optional
        Target column for files (see :func:`load_csv`); not allowed for
        built-in data sets.
    test_fraction : float, default 0.2
        Share of samples held out for testing, in [0, 1); ignored for
        ``"mnist"``, which uses its official 60000/10000 split.
    seed : int, default 0
        Seed of the shuffle before the split.
    delimiter : str, optional
        For CSV files: the delimiter (default: detected, see :func:`load_csv`).
    header : bool, optional
        For CSV files: whether the first row names the columns (default:
        detected, see :func:`load_csv`).

    Returns
    -------
    Dataset
        ``"digits"``: X float64 (n, 64) with values 0..16, y int64.
        ``"mnist"``: X float32 (n, 784) divided by 255, y int64.
        Files: X float64 for CSV (the file's dtype for arrays), y raw.
        With ``test_fraction=0`` the test arrays are empty and X_train is X
        itself (a memory-mapped ``.npy`` stays mapped).

    Raises
    ------
    DatasetError
        For an unknown name or extension (the valid ones are listed), a
        missing file, or any problem reading it.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise DatasetError(f"name_or_path must be a data set name ({choices(DATASETS)}) or a file path, "
                           f"got {type(name_or_path).__name__}")
    key = name_or_path.lower() if isinstance(name_or_path, str) else None
    if key in DATASETS:
        if target is not None:
            raise DatasetError(
                f"a target column (--target, target=) applies to data files only, not to the "
                f"built-in data set {key!r}"
            )
        if key == "digits":
            X, y = load_digits_dataset()
            Xtr, ytr, Xte, yte = _split(X, y, test_fraction, seed)
            return Dataset(Xtr, ytr, Xte, yte, "classification", _pixel_names(8), "digit", "digits")
        Xtr, ytr, Xte, yte = load_mnist(data_dir=data_dir)
        Xtr = Xtr.astype(np.float32)
        Xtr /= np.float32(255)
        Xte = Xte.astype(np.float32)
        Xte /= np.float32(255)
        return Dataset(Xtr, ytr, Xte, yte, "classification", _pixel_names(28), "digit", "mnist")

    path = Path(name_or_path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in _CSV_EXTENSIONS + _ARRAY_EXTENSIONS:
        raise DatasetError(
            f"unknown data set {str(name_or_path)!r}: valid names are {choices(DATASETS)}, "
            f"or a path to a file ending in {', '.join(_CSV_EXTENSIONS + _ARRAY_EXTENSIONS)}"
        )
    if path.is_dir():
        raise DatasetError(f"{path} is a folder; give the data file itself")
    if not path.is_file():
        raise DatasetError(f"data file not found: {path}")
    if suffix in _CSV_EXTENSIONS:
        data = load_csv(path, target=target, delimiter=delimiter, header=header)
        X, y, feature_names, target_name = data.X, data.y, data.feature_names, data.target_name
    else:
        X, y = load_array_file(path, target=target)
        if y is None:
            raise DatasetError(
                f"{path} holds only X; give the index of the target among its {X.shape[1]} columns "
                "(--target on the command line, target= in Python), or save X and y together in a .npz"
            )
        feature_names = [f"x{i}" for i in range(X.shape[1])]
        target_name = "y" if target is None else f"column {int(target) % (X.shape[1] + 1)}"  # -1 = last
        if X.ndim == 2 and X.dtype.kind in "fc" and not np.isfinite(X).all():   # named by the file's rows,
            r, c = np.argwhere(~np.isfinite(X))[0]                      # before the split renumbers them
            raise DatasetError(f"{path}: X holds the non-finite value {X[r, c]} at row {r}, column {c} "
                               "(counting from 0); remove or fill in that sample")
    task = infer_task(y)
    Xtr, ytr, Xte, yte = _split(X, y, test_fraction, seed)
    return Dataset(Xtr, ytr, Xte, yte, task, feature_names, target_name, path.name)
