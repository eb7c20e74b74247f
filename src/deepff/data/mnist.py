"""MNIST: the IDX file reader, the cache folder, a verified download, and :func:`load_mnist`.

Every problem a user can cause (a missing, truncated or corrupt file, a failed
download) raises :class:`~deepff.errors.DatasetError` naming the file and the
remedy. :mod:`urllib.request` is imported only when something is downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from ..checks import positive
from ..errors import DatasetError
from ..validation import check_file_path

__all__ = ["MNIST_FILES", "MNIST_SHA256", "MNIST_MIRRORS", "read_idx", "cache_dir", "download_mnist", "load_mnist"]

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
                from ..atomic import _new_file_mode

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
    timeout = positive("", "timeout (seconds)", timeout, error=DatasetError)
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
