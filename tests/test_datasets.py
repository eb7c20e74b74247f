"""Tests of deepff.datasets on real files: the real MNIST from ../shared, a real
HTTP server on 127.0.0.1 for downloads, real CSV/npy/npz files in tmp_path."""

from __future__ import annotations

import errno
import functools
import gzip
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from _needs import require_mnist
from deepff.data import (
    DATASETS,
    MNIST_FILES,
    MNIST_SHA256,
    CSVData,
    Dataset,
    Standardizer,
    cache_dir,
    download_mnist,
    encode_labels,
    infer_task,
    list_datasets,
    load_array_file,
    load_csv,
    load_dataset,
    load_digits_dataset,
    load_mnist,
    read_idx,
    train_test_split_indices,
)
from deepff.errors import DatasetError, ModelFileError

# CI clones the project into some folder with shared/ beside it: always go
# through the repository root's parent.
MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"
requires_mnist = pytest.mark.usefixtures("mnist_dir")   # skips locally, fails in CI (tests/_needs.py)


def _readme_counts():
    text = (MNIST_DIR / "README.md").read_text()
    train = re.search(r"train:\s*([\d\s]+);", text).group(1).split()
    test = re.search(r"test:\s*([\d\s]+)\.", text).group(1).split()
    return [int(c) for c in train], [int(c) for c in test]


def _copy_mnist(dest, stems=MNIST_FILES):
    dest.mkdir(parents=True, exist_ok=True)
    for s in stems:
        shutil.copyfile(MNIST_DIR / f"{s}.gz", dest / f"{s}.gz")
    return dest


# ---------------------------------------------------------------------------
# IDX reader
# ---------------------------------------------------------------------------

_CODES = {"u1": 0x08, "i1": 0x09, ">i2": 0x0B, ">i4": 0x0C, ">f4": 0x0D, ">f8": 0x0E}


def _idx_bytes(arr, code):
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return header + arr.tobytes()


def _write(path, data, compress):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dt", list(_CODES))
def test_read_idx_round_trip(tmp_path, dt, compress):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 4, 5)) * 50).astype(dt)
    path = _write(tmp_path / "a.idx", _idx_bytes(arr, _CODES[dt]), compress)  # name says nothing
    out = read_idx(path)
    assert out.shape == (3, 4, 5)
    assert out.dtype == np.dtype(dt).newbyteorder("=")
    assert out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, arr)


def test_read_idx_mnist_like_labels_and_images(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    images = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    lab = read_idx(_write(tmp_path / "l.gz", _idx_bytes(labels, 0x08), True))
    img = read_idx(_write(tmp_path / "i", _idx_bytes(images, 0x08), False))
    assert lab.shape == (10,) and lab.dtype == np.uint8
    assert img.shape == (2, 28, 28) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, images)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize(
    "magic",
    [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00"],
    ids=["nonzero-lead", "unknown-type", "zero-dims"],
)
def test_read_idx_bad_magic(tmp_path, magic, compress):
    path = _write(tmp_path / "bad", magic + b"\x00\x00\x00\x01\x05", compress)
    with pytest.raises(DatasetError, match=r"bad magic|0 dimensions") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_read_idx_truncated_payload(tmp_path, compress):
    data = _idx_bytes(np.zeros((10, 3), dtype=np.uint8), 0x08)
    path = _write(tmp_path / "t", data[:-5], compress)
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_read_idx_truncated_header_and_trailing_data(tmp_path, compress):
    data = _idx_bytes(np.zeros((10, 3), dtype=np.uint8), 0x08)
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(_write(tmp_path / "h", data[:6], compress))
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(_write(tmp_path / "m", data[:2], compress))
    with pytest.raises(DatasetError, match="more data|longer"):
        read_idx(_write(tmp_path / "x", data + b"\x00", compress))


def test_read_idx_truncated_gzip_stream(tmp_path):
    data = _idx_bytes(np.arange(5000, dtype=">i4"), 0x0C)
    gz = gzip.compress(data)
    path = tmp_path / "cut.gz"
    path.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        read_idx(path)


def test_read_idx_absurd_header_in_small_gzip(tmp_path):
    header = bytes([0, 0, 0x08, 3]) + np.array([60000, 60000, 60000], dtype=">u4").tobytes()
    path = _write(tmp_path / "big.gz", header, True)
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_idx(tmp_path / "nope.gz")


# ---------------------------------------------------------------------------
# Cache folder
# ---------------------------------------------------------------------------


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPFF_DATA", str(tmp_path / "data"))
    assert cache_dir() == tmp_path / "data"


@pytest.mark.skipif(sys.platform.startswith("win") or sys.platform == "darwin", reason="XDG is Linux/Unix")
def test_cache_dir_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("DEEPFF_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "deepff"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, per the XDG spec
    assert cache_dir() == Path.home() / ".cache" / "deepff"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "deepff"


# ---------------------------------------------------------------------------
# Real MNIST
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(require_mnist())


@requires_mnist
def test_digests_match_sha256sums():
    sums = {}
    for line in (MNIST_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        if name.endswith(".raw"):
            sums[name[: -len(".raw")]] = digest
    assert sums == MNIST_SHA256


@requires_mnist
def test_load_mnist_real(mnist):
    X_train, y_train, X_test, y_test = mnist
    assert X_train.shape == (60000, 784) and X_train.dtype == np.uint8
    assert X_test.shape == (10000, 784) and X_test.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.int64
    assert y_test.shape == (10000,) and y_test.dtype == np.int64
    train_counts, test_counts = _readme_counts()
    assert np.bincount(y_train, minlength=10).tolist() == train_counts
    assert np.bincount(y_test, minlength=10).tolist() == test_counts
    assert X_train.max() == 255 and X_train.min() == 0


@requires_mnist
def test_read_idx_real_mnist_file():
    images = read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    labels = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels.dtype == np.uint8


@requires_mnist
def test_load_mnist_raw_uncompressed_files(tmp_path, mnist):
    d = _copy_mnist(tmp_path / "m", MNIST_FILES[:2])
    for s in MNIST_FILES[2:]:  # the t10k files uncompressed, same stem names
        (d / s).write_bytes(gzip.decompress((MNIST_DIR / f"{s}.gz").read_bytes()))
    out = load_mnist(d)
    for a, b in zip(out, mnist, strict=True):
        np.testing.assert_array_equal(a, b)


@requires_mnist
def test_load_mnist_digest_mismatch(tmp_path):
    d = _copy_mnist(tmp_path / "m", [s for s in MNIST_FILES if s != "t10k-labels-idx1-ubyte"])
    payload = bytearray(gzip.decompress((MNIST_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    payload[100] = (payload[100] + 1) % 10  # still a valid label
    (d / "t10k-labels-idx1-ubyte").write_bytes(bytes(payload))
    with pytest.raises(DatasetError, match="digest") as exc:
        load_mnist(d)
    assert "t10k-labels-idx1-ubyte" in str(exc.value)
    assert load_mnist(d, verify=False)[3][92] == payload[100]


@requires_mnist
def test_load_mnist_missing_file_names_file_and_folder(tmp_path):
    d = _copy_mnist(tmp_path / "m", MNIST_FILES[:3])
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte") as exc:
        load_mnist(d)
    assert str(d) in str(exc.value)
    with pytest.raises(DatasetError, match="does not exist"):
        load_mnist(tmp_path / "absent")


def test_load_mnist_cache_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFF_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match="missing") as exc:
        load_mnist(download=False)
    assert str(tmp_path / "mnist") in str(exc.value)


# ---------------------------------------------------------------------------
# Download from a real HTTP server on 127.0.0.1
# ---------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def mirror_server(tmp_path_factory):
    """Serve good/, bad/ (tampered train labels), trunc/ (cut gzip), empty/."""
    require_mnist()
    root = tmp_path_factory.mktemp("mirror")
    _copy_mnist(root / "good")
    (root / "empty").mkdir()
    payload = bytearray(gzip.decompress((MNIST_DIR / "train-labels-idx1-ubyte.gz").read_bytes()))
    payload[8 + 1234] ^= 0x01
    (root / "bad").mkdir()
    (root / "bad" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(payload)))
    gz = (MNIST_DIR / "train-labels-idx1-ubyte.gz").read_bytes()
    (root / "trunc").mkdir()
    (root / "trunc" / "train-labels-idx1-ubyte.gz").write_bytes(gz[: len(gz) // 2])

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def base_url(mirror_server, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("DEEPFF_MNIST_MIRRORS", raising=False)
    mirror_server.requests.clear()
    host, port = mirror_server.server_address[:2]
    return f"http://{host}:{port}/"


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@requires_mnist
def test_download_mnist_from_local_server(tmp_path, base_url, mirror_server, mnist):
    dest = tmp_path / "dl" / "mnist"
    assert download_mnist(dest, mirrors=[base_url + "good"], timeout=10) == dest
    assert sorted(os.listdir(dest)) == sorted(f"{s}.gz" for s in MNIST_FILES)
    assert len(mirror_server.requests) == 4
    for a, b in zip(load_mnist(dest), mnist, strict=True):
        np.testing.assert_array_equal(a, b)
    download_mnist(dest, mirrors=[base_url + "good"])  # all present: nothing fetched
    assert len(mirror_server.requests) == 4


@requires_mnist
def test_download_removes_what_a_killed_download_left_but_not_a_running_one(tmp_path, base_url):
    """A SIGKILL leaves the .part file behind; the next download of that file deletes it once it is stale."""
    dest = tmp_path / "mnist"
    dest.mkdir()
    stem = "train-labels-idx1-ubyte"
    stale = dest / f".{stem}.gz.killed1.part"
    running = dest / f".{stem}.gz.running.part"     # another process's download, still being written
    other = dest / ".t10k-labels-idx1-ubyte.gz.killed2.part"   # a file not downloaded this time
    for f in (stale, running, other):
        f.write_bytes(b"\x1f\x8b partial")
    two_hours_ago = time.time() - 7200
    for f in (stale, other):
        os.utime(f, (two_hours_ago, two_hours_ago))
    for s in MNIST_FILES:
        if s != stem:
            shutil.copy(MNIST_DIR / f"{s}.gz", dest / f"{s}.gz")
    download_mnist(dest, mirrors=[base_url + "good"], timeout=10)
    assert not stale.exists()
    assert running.exists() and other.exists()
    assert (dest / f"{stem}.gz").read_bytes() == (MNIST_DIR / f"{stem}.gz").read_bytes()


@requires_mnist
def test_download_tampered_payload_leaves_nothing(tmp_path, base_url):
    others = [s for s in MNIST_FILES if s != "train-labels-idx1-ubyte"]
    dest = _copy_mnist(tmp_path / "dest", others)
    with pytest.raises(DatasetError, match="digest") as exc:
        download_mnist(dest, mirrors=[base_url + "bad/"], timeout=10)
    assert "train-labels-idx1-ubyte.gz" in str(exc.value)
    assert sorted(os.listdir(dest)) == sorted(f"{s}.gz" for s in others)  # no partial, no temp file


@requires_mnist
def test_download_truncated_gzip_leaves_nothing(tmp_path, base_url):
    others = [s for s in MNIST_FILES if s != "train-labels-idx1-ubyte"]
    dest = _copy_mnist(tmp_path / "dest", others)
    with pytest.raises(DatasetError, match="truncated"):
        download_mnist(dest, mirrors=[base_url + "trunc/"], timeout=10)
    assert sorted(os.listdir(dest)) == sorted(f"{s}.gz" for s in others)


@requires_mnist
def test_download_404_then_good_mirror(tmp_path, base_url, mirror_server):
    dest = _copy_mnist(tmp_path / "dest", MNIST_FILES[:3])
    download_mnist(dest, mirrors=[base_url + "empty/", base_url + "good/"], timeout=10)
    assert sorted(os.listdir(dest)) == sorted(f"{s}.gz" for s in MNIST_FILES)
    assert mirror_server.requests == [
        "/empty/t10k-labels-idx1-ubyte.gz",
        "/good/t10k-labels-idx1-ubyte.gz",
    ]
    assert load_mnist(dest)[3].shape == (10000,)


@requires_mnist
def test_download_all_mirrors_fail_reports_each(tmp_path, base_url):
    dest = _copy_mnist(tmp_path / "dest", [s for s in MNIST_FILES if s != "train-labels-idx1-ubyte"])
    closed = _closed_port_url()
    mirrors = [base_url + "empty/", base_url + "bad/", base_url + "trunc/", closed]
    with pytest.raises(DatasetError) as exc:
        download_mnist(dest, mirrors=mirrors, timeout=5)
    msg = str(exc.value)
    for i, m in enumerate(mirrors, start=1):      # numbered, so they stay apart on one line
        assert f"({i}) {m}train-labels-idx1-ubyte.gz" in msg
    assert "HTTP 404" in msg and "digest" in msg and "truncated" in msg
    assert "\n" not in msg and "--data-dir" in msg and "DEEPFF_MNIST_MIRRORS" in msg
    assert len(os.listdir(dest)) == 3


@requires_mnist
def test_load_mnist_downloads_into_cache_with_env_mirrors(tmp_path, base_url, monkeypatch):
    monkeypatch.setenv("DEEPFF_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("DEEPFF_MNIST_MIRRORS", f"{base_url}empty/, {base_url}good/")
    _copy_mnist(tmp_path / "cache" / "mnist", MNIST_FILES[:3])
    X_train, y_train, X_test, y_test = load_mnist()
    assert X_test.shape == (10000, 784) and y_test.shape == (10000,)
    assert (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()
    entry = {d["name"]: d for d in list_datasets()}["mnist"]
    assert entry["present"] and entry["location"] == str(tmp_path / "cache" / "mnist")


def test_download_mnist_needs_a_mirror(tmp_path):
    with pytest.raises(DatasetError, match="mirror"):
        download_mnist(tmp_path, mirrors=[])


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_csv_header_and_string_labels(tmp_path):
    path = _csv(tmp_path, "a,b,label\n1,2.5,cat\n3,-4,dog\n\n5,6e2,cat\n")
    data = load_csv(path)
    assert isinstance(data, CSVData)
    assert data.X.dtype == np.float64 and data.X.shape == (3, 2)
    np.testing.assert_array_equal(data.X, [[1, 2.5], [3, -4], [5, 600]])
    assert data.y.tolist() == ["cat", "dog", "cat"] and data.y.dtype.kind == "U"
    assert data.feature_names == ["a", "b"] and data.target_name == "label"


@pytest.mark.parametrize(
    ("delim", "name"), [(";", "d.csv"), ("\t", "d.txt"), ("\t", "d.tsv"), ("|", "d.csv")]
)
def test_load_csv_detects_delimiter(tmp_path, delim, name):
    rows = [["x1", "x2", "x3", "y"], ["1.5", "2", "3", "0"], ["4", "5.25", "6", "1"], ["7", "8", "9.5", "1"]]
    path = _csv(tmp_path, "\n".join(delim.join(r) for r in rows) + "\n", name)
    data = load_csv(path)
    assert data.X.shape == (3, 3)
    assert data.feature_names == ["x1", "x2", "x3"]
    assert data.y.dtype == np.int64 and data.y.tolist() == [0, 1, 1]


def test_load_csv_target_by_name_and_index(tmp_path):
    path = _csv(tmp_path, "f1,price,f2\n1,10.5,2\n3,20.25,4\n")
    by_name = load_csv(path, target="price")
    assert by_name.target_name == "price" and by_name.feature_names == ["f1", "f2"]
    assert by_name.y.dtype == np.float64 and by_name.y.tolist() == [10.5, 20.25]
    np.testing.assert_array_equal(by_name.X, [[1, 2], [3, 4]])
    for t in (1, -2, "1"):
        data = load_csv(path, target=t)
        assert data.target_name == "price"
    first = load_csv(path, target=0)
    assert first.target_name == "f1" and first.feature_names == ["price", "f2"]


def test_load_csv_without_header_and_explicit_delimiter(tmp_path):
    path = _csv(tmp_path, "1;2;a\n3;4;b\n")
    data = load_csv(path, header=False, delimiter=";")
    assert data.feature_names == ["col0", "col1"] and data.target_name == "col2"
    assert data.X.shape == (2, 2)
    with pytest.raises(DatasetError, match="single character"):
        load_csv(path, delimiter=";;")


@pytest.mark.parametrize(
    ("text", "target", "names", "n_rows"),
    [
        ("0.5,-1,1\n2,3,0\n4,5,1\n", None, ["col0", "col1", "col2"], 3),  # numbers only: no header
        ("0.5,-1,cat\n2,3,dog\n4,5,cat\n", None, ["col0", "col1", "col2"], 3),  # string labels
        ("1,0.5,-1\n0,2,3\n1,4,5\n", "0", ["col1", "col2", "col0"], 3),  # "0" is an index here
        ("a,b,label\n0.5,-1,1\n2,3,0\n", None, ["a", "b", "label"], 2),
        ("1,2,label\n0.5,-1,1\n2,3,0\n", None, ["1", "2", "label"], 2),  # text above the numbers
        ("0,1,2\n0.5,-1,1\n2,3,0\n", None, ["0", "1", "2"], 2),  # pandas' header of an array
        ("400,450,species\n0.1,0.2,cat\n0.3,0.4,dog\n0.5,0.6,cat\n", None,   # wavelengths above labels
         ["400", "450", "species"], 3),
    ],
    ids=["numbers", "string-labels", "index-target", "header", "numeric-names", "pandas-header",
         "numeric-names-above-labels"],
)
def test_load_csv_detects_a_missing_header(tmp_path, text, target, names, n_rows):
    data = load_csv(_csv(tmp_path, text), target=target)
    assert data.feature_names + [data.target_name] == names
    assert data.X.shape == (n_rows, 2)  # no data row is taken for a header


def test_load_csv_refuses_duplicate_column_names(tmp_path):
    with pytest.raises(DatasetError, match=r"more than one column 'a', 'b'; column names must be unique"):
        load_csv(_csv(tmp_path, "a,a,b,b,label\n1,2,3,4,0\n5,6,7,8,1\n"))


def test_load_csv_quoted_fields_and_bom(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('\ufeff"a","b","label"\n1,2,"x, y"\n3,4,"z"\n', encoding="utf-8")
    data = load_csv(path)
    assert data.feature_names == ["a", "b"]
    assert data.y.tolist() == ["x, y", "z"]


def test_load_csv_non_numeric_feature(tmp_path):
    path = _csv(tmp_path, "a,b,y\n1,2,0\n3,abc,1\n")
    with pytest.raises(DatasetError) as exc:
        load_csv(path)
    msg = str(exc.value)
    assert "row 2" in msg and "line 3" in msg and "'b'" in msg and "'abc'" in msg and str(path) in msg


@pytest.mark.parametrize("cell", ["nan", "NaN", "", "inf"])
def test_load_csv_missing_or_nan_feature(tmp_path, cell):
    path = _csv(tmp_path, f"a,b,y\n1,2,0\n3,4,1\n5,{cell},1\n")
    with pytest.raises(DatasetError, match=r"row 3 \(line 4\), column 'b'"):
        load_csv(path)


@pytest.mark.parametrize("cell", ["1_000", "\u0661\u0662", "\uff11\uff12", "1_0.5e3"])
def test_load_csv_refuses_numbers_python_reads_but_a_csv_does_not_write(tmp_path, cell):
    """float() and numpy take "1_000" and other scripts' digits; a data file means text by them."""
    path = _csv(tmp_path, f"a,b,y\n1,2,0\n3,{cell},1\n")
    with pytest.raises(DatasetError, match=r"row 2 \(line 3\), column 'b': non-numeric value") as exc:
        load_csv(path)
    assert repr(cell) in str(exc.value) and "digits 0-9" in str(exc.value)


def test_load_csv_keeps_labels_that_only_look_like_numbers_apart(tmp_path):
    """int("1_2") is 12: read as numbers, the classes "1_2" and "12" would merge into one."""
    data = load_csv(_csv(tmp_path, "a,y\n1,1_2\n2,12\n3,1_2\n4,\u0661\n5,1\n"))
    assert data.y.dtype.kind == "U"
    assert data.y.tolist() == ["1_2", "12", "1_2", "\u0661", "1"]
    assert len(set(data.y.tolist())) == 4


@pytest.mark.parametrize("first", ["1_000", "\u0661"])
def test_load_csv_a_first_row_of_odd_numbers_is_data_and_refused_not_a_header(tmp_path, first):
    """Header detection reads numbers leniently: the row stays data and gets the clear error, no row is lost."""
    with pytest.raises(DatasetError, match=rf"row 1 \(line 1\), column 'col0': non-numeric value '{first}'"):
        load_csv(_csv(tmp_path, f"{first},2,0\n3,4,1\n5,6,0\n"))


def test_load_csv_headerless_labels_that_look_like_numbers_keep_every_row(tmp_path):
    data = load_csv(_csv(tmp_path, "1,1_2\n2,12\n3,1_2\n"))
    assert data.feature_names == ["col0"] and data.target_name == "col1"
    assert data.y.tolist() == ["1_2", "12", "1_2"]


def test_load_csv_integer_labels_beyond_pythons_digit_limit_are_a_dataset_error(tmp_path):
    """int() refuses more than 4300 digits with a ValueError; float() makes inf, a non-finite target."""
    huge = "9" * 5000
    with pytest.raises(DatasetError, match="target column 'y': non-finite value"):
        load_csv(_csv(tmp_path, f"a,y\n1,{huge}\n2,3\n"))


def test_load_csv_reads_plain_numbers_beside_non_ascii_names_and_labels(tmp_path):
    """Underscores and non-ASCII text in the header and the labels are fine; only numeric cells are checked."""
    data = load_csv(_csv(tmp_path, "taille_cm,poids_kg,espèce\n1.5,+2e1,café\n-.5,3.,thé_vert\n"))
    np.testing.assert_array_equal(data.X, [[1.5, 20.0], [-0.5, 3.0]])
    assert data.feature_names == ["taille_cm", "poids_kg"] and data.y.tolist() == ["café", "thé_vert"]
    numeric = load_csv(_csv(tmp_path, "x_1,y\n1,-3\n2,+4\n", name="b.csv"))
    assert numeric.y.dtype == np.int64 and numeric.y.tolist() == [-3, 4]
    floats = load_csv(_csv(tmp_path, "x,y\n1,1.5E-3\n2,.25\n", name="c.csv"))
    assert floats.y.dtype == np.float64 and floats.y.tolist() == [0.0015, 0.25]


def test_load_csv_empty_target_cell(tmp_path):
    with pytest.raises(DatasetError, match="target column 'y'"):
        load_csv(_csv(tmp_path, "a,y\n1,0\n2,\n"))


def test_load_csv_unknown_target_lists_names(tmp_path):
    path = _csv(tmp_path, "alpha,beta,gamma\n1,2,3\n")
    with pytest.raises(DatasetError, match="'delta'") as exc:
        load_csv(path, target="delta")
    assert "'alpha', 'beta', 'gamma'" in str(exc.value)
    with pytest.raises(DatasetError, match="out of range"):
        load_csv(path, target=3)
    with pytest.raises(DatasetError, match="out of range"):
        load_csv(path, target=-4)


def test_load_csv_empty_and_header_only(tmp_path):
    with pytest.raises(DatasetError, match="empty"):
        load_csv(_csv(tmp_path, "", "e.csv"))
    with pytest.raises(DatasetError, match="empty"):
        load_csv(_csv(tmp_path, "\n  \n", "w.csv"))
    with pytest.raises(DatasetError, match="no data rows"):
        load_csv(_csv(tmp_path, "a,b\n", "h.csv"))
    with pytest.raises(DatasetError, match="not found"):
        load_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"a,b\n\xff\xfe\x00,1\n")
    with pytest.raises(DatasetError, match="UTF-8"):
        load_csv(bad)


def test_load_csv_ragged_row(tmp_path):
    path = _csv(tmp_path, "a,b,y\n1,2,0\n3,4\n5,6,1\n")
    with pytest.raises(DatasetError, match="line 3 has 2 fields, expected 3"):
        load_csv(path)


def test_load_csv_single_column(tmp_path):
    with pytest.raises(DatasetError, match="single column"):
        load_csv(_csv(tmp_path, "y\n1\n2\n"))


# ---------------------------------------------------------------------------
# Labels, task, split
# ---------------------------------------------------------------------------


def test_encode_labels():
    y = np.array(["dog", "cat", "emu", "cat"])
    codes, classes = encode_labels(y)
    assert codes.dtype == np.int64 and codes.tolist() == [1, 0, 2, 0]
    assert classes.tolist() == ["cat", "dog", "emu"]
    np.testing.assert_array_equal(classes[codes], y)
    codes, classes = encode_labels([3, 7, 3, -1])
    assert codes.tolist() == [1, 2, 1, 0] and classes.tolist() == [-1, 3, 7]
    codes, classes = encode_labels(np.array([[1.0], [0.0]]))
    assert codes.tolist() == [1, 0]
    with pytest.raises(DatasetError, match="NaN"):
        encode_labels([1.0, np.nan])
    with pytest.raises(DatasetError, match="one-dimensional"):
        encode_labels(np.zeros((2, 2)))
    with pytest.raises(DatasetError, match="empty"):
        encode_labels([])


def test_infer_task():
    assert infer_task(np.array(["a", "b", "a"])) == "classification"
    assert infer_task(np.array([True, False, True])) == "classification"
    assert infer_task(np.tile(np.arange(10), 20)) == "classification"
    assert infer_task(np.tile(np.arange(10), 20).astype(float)) == "classification"
    assert infer_task(np.array([0, 1, 1])) == "classification"  # binary, even with few samples
    assert infer_task(np.arange(200)) == "regression"  # one value per sample
    assert infer_task(np.tile(np.arange(60), 10)) == "regression"  # > 50 distinct values
    assert infer_task(np.array([0.5, 1.0, 1.0, 0.5])) == "regression"
    assert infer_task(np.linspace(0, 1, 100)) == "regression"


def test_train_test_split_indices():
    train, test = train_test_split_indices(100, 0.2, np.random.default_rng(1))
    assert train.size == 80 and test.size == 20
    assert train.dtype == np.int64
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(100))
    again = train_test_split_indices(100, 0.2, 1)
    assert np.array_equal(again[1], test)
    assert not np.array_equal(train_test_split_indices(100, 0.2, 2)[1], test)
    train, test = train_test_split_indices(5, 0.0, 0)
    assert train.tolist() == [0, 1, 2, 3, 4] and test.size == 0
    assert train_test_split_indices(3, 0.01, 0)[1].size == 1
    for bad in (-0.1, 1.0, "x"):
        with pytest.raises(DatasetError, match="test_fraction"):
            train_test_split_indices(10, bad, 0)


# ---------------------------------------------------------------------------
# npz / npy
# ---------------------------------------------------------------------------

_UNPICKLED = []


def _record_unpickle():
    _UNPICKLED.append(True)
    return "boom"


class _Trap:
    def __reduce__(self):
        return (_record_unpickle, ())


def test_load_npz(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    y = np.array([0, 1, 0, 1])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    X2, y2 = load_array_file(tmp_path / "d.npz")
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)

    np.savez_compressed(tmp_path / "k.npz", features=X, labels=y)
    with pytest.raises(DatasetError, match="'X' and 'y'") as exc:
        load_array_file(tmp_path / "k.npz")
    assert "'features', 'labels'" in str(exc.value)

    np.savez(tmp_path / "xo.npz", X=X)
    X3, y3 = load_array_file(tmp_path / "xo.npz", target=-1)
    np.testing.assert_array_equal(y3, X[:, -1])
    with pytest.raises(DatasetError, match="already holds 'y'"):
        load_array_file(tmp_path / "d.npz", target=0)

    np.savez(tmp_path / "len.npz", X=X, y=y[:3])
    with pytest.raises(DatasetError, match="shape"):
        load_array_file(tmp_path / "len.npz")


def test_load_npy_memmap_and_target(tmp_path):
    X = np.arange(20.0).reshape(5, 4)
    np.save(tmp_path / "x.npy", X)
    Xm, y = load_array_file(tmp_path / "x.npy")
    assert isinstance(Xm, np.memmap) and y is None
    np.testing.assert_array_equal(Xm, X)
    Xm, y = load_array_file(tmp_path / "x.npy", target=-1)
    assert isinstance(Xm, np.memmap) and Xm.shape == (5, 3)  # last column out: still mapped
    np.testing.assert_array_equal(y, X[:, 3])
    Xc, y = load_array_file(tmp_path / "x.npy", target=1)
    np.testing.assert_array_equal(Xc, X[:, [0, 2, 3]])
    np.testing.assert_array_equal(y, X[:, 1])
    with pytest.raises(DatasetError, match="out of range"):
        load_array_file(tmp_path / "x.npy", target=4)
    with pytest.raises(DatasetError, match="integer column index"):
        load_array_file(tmp_path / "x.npy", target="price")


def test_array_files_refuse_pickles(tmp_path):
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = _Trap(), _Trap()
    np.save(tmp_path / "o.npy", obj, allow_pickle=True)
    np.savez(tmp_path / "o.npz", X=obj, y=np.zeros(2))
    for name in ("o.npy", "o.npz"):
        with pytest.raises(DatasetError, match="cannot load array file"):
            load_array_file(tmp_path / name)
    assert _UNPICKLED == []


def test_array_files_bad_input(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(DatasetError, match=r"junk\.npy is not a \.npy array \(numpy\.save\)"):
        load_array_file(tmp_path / "junk.npy")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"junk\.npz is not a \.npz archive"):
        load_array_file(tmp_path / "junk.npz")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 and then nothing")     # a zip's magic, truncated
    with pytest.raises(DatasetError, match="cannot load array file"):
        load_array_file(tmp_path / "cut.npz")
    np.save(tmp_path / "v.npy", np.arange(3.0))
    with pytest.raises(DatasetError, match="two-dimensional"):
        load_array_file(tmp_path / "v.npy")
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    with pytest.raises(DatasetError, match="numeric"):
        load_array_file(tmp_path / "s.npy")
    with pytest.raises(DatasetError, match="not found"):
        load_array_file(tmp_path / "none.npy")
    with pytest.raises(DatasetError, match=r"\.npy or \.npz"):
        load_array_file(tmp_path / "x.csv")


# ---------------------------------------------------------------------------
# Standardizer
# ---------------------------------------------------------------------------


def test_standardizer_round_trip_and_zero_variance():
    rng = np.random.default_rng(0)
    X = np.column_stack(
        [rng.normal(5, 3, 500), np.full(500, 0.1), np.full(500, 7.0), rng.integers(0, 9, 500)]
    )
    s = Standardizer().fit(X, chunk_rows=37)  # several chunks, combined exactly
    np.testing.assert_allclose(s.mean_, X.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.scale_[[0, 3]], X.std(axis=0)[[0, 3]], rtol=1e-12)
    assert s.scale_[1] == 1.0 and s.scale_[2] == 1.0  # constant columns (0.1 is inexact in binary)
    Z = s.transform(X)
    assert Z.dtype == np.float64
    np.testing.assert_allclose(Z[:, [0, 3]].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z[:, [0, 3]].std(axis=0), 1, rtol=1e-12)
    np.testing.assert_allclose(Z[:, 1:3], 0, atol=1e-12)
    np.testing.assert_allclose(s.inverse_transform(Z), X, rtol=1e-12, atol=1e-12)

    d = json.loads(json.dumps(s.to_dict()))
    assert set(d) == {"mean", "std"} and all(isinstance(v, float) for v in d["mean"])
    s2 = Standardizer.from_dict(d)
    assert s2.mean_.dtype == np.float64 and s2.n_features == 4
    np.testing.assert_array_equal(s2.transform(X), Z)
    Z32 = s2.transform(X, dtype=np.float32)
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, Z, rtol=1e-5, atol=1e-5)


def test_standardizer_errors():
    s = Standardizer()
    with pytest.raises(DatasetError, match="not fitted"):
        s.transform(np.zeros((2, 2)))
    with pytest.raises(DatasetError, match="non-finite value at row 1, column 0"):
        s.fit(np.array([[1.0, 2.0], [np.nan, 3.0]]))
    s.fit(np.ones((3, 2)))
    with pytest.raises(DatasetError, match="3 columns"):
        s.transform(np.ones((3, 3)))
    with pytest.raises(ModelFileError, match="'mean' and 'std'"):
        Standardizer.from_dict({"mean": [0.0]})
    with pytest.raises(ModelFileError, match="equal-length"):
        Standardizer.from_dict({"mean": [0.0], "std": [1.0, 2.0]})
    with pytest.raises(ModelFileError, match="std > 0"):
        Standardizer.from_dict({"mean": [0.0], "std": [0.0]})


# ---------------------------------------------------------------------------
# Named data sets
# ---------------------------------------------------------------------------


def test_load_digits_dataset():
    X, y = load_digits_dataset()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert set(y.tolist()) == set(range(10))


def test_load_dataset_digits():
    ds = load_dataset("digits", test_fraction=0.2, seed=0)
    assert isinstance(ds, Dataset) and ds.name == "digits" and ds.task == "classification"
    assert ds.X_train.shape == (1438, 64) and ds.X_test.shape == (359, 64)
    assert ds.y_train.dtype == np.int64 and ds.n_features == 64 and len(ds.feature_names) == 64
    again = load_dataset("Digits", seed=0)
    np.testing.assert_array_equal(again.y_test, ds.y_test)
    other = load_dataset("digits", seed=1)
    assert not np.array_equal(other.X_test, ds.X_test)
    with pytest.raises(DatasetError, match="target"):
        load_dataset("digits", target="y")


@requires_mnist
def test_load_dataset_mnist(mnist):
    ds = load_dataset("mnist", data_dir=MNIST_DIR)
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.X_train.dtype == np.float32 and ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0
    np.testing.assert_array_equal(ds.X_test, mnist[2].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ds.y_train, mnist[1])
    assert ds.task == "classification" and ds.feature_names[29] == "pixel_1_1"


def test_load_dataset_csv_and_arrays(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1
    lines = ["a,b,c,target"] + [",".join(f"{v:.6f}" for v in (*row, t)) for row, t in zip(X, y, strict=True)]
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    ds = load_dataset(str(path), test_fraction=0.2, seed=3)
    assert ds.task == "regression" and ds.feature_names == ["a", "b", "c"] and ds.target_name == "target"
    assert ds.X_train.shape == (40, 3) and ds.X_test.shape == (10, 3) and ds.name == "data.csv"

    labels = np.array(["no", "yes"])[(X[:, 0] > 0).astype(int)]
    lines = ["label,a,b,c"] + [f"{lab},{r[0]},{r[1]},{r[2]}" for lab, r in zip(labels, X, strict=True)]
    ds = load_dataset(_csv(tmp_path, "\n".join(lines), "c.csv"), target="label")
    assert ds.task == "classification" and ds.y_train.dtype.kind == "U"

    np.savez(tmp_path / "d.npz", X=X, y=(y > 0).astype(np.int64))
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.task == "classification" and ds.X_train.shape == (40, 3)

    np.save(tmp_path / "d.npy", np.column_stack([X, y]))
    with pytest.raises(DatasetError, match="target"):
        load_dataset(tmp_path / "d.npy")
    ds = load_dataset(tmp_path / "d.npy", target=-1, test_fraction=0)
    assert isinstance(ds.X_train, np.memmap) and ds.X_test.shape == (0, 3)
    assert ds.task == "regression"


def test_load_dataset_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(DatasetError) as exc:
        load_dataset("cifar10")
    msg = str(exc.value)
    assert "'cifar10'" in msg and "'digits', 'mnist'" in msg and ".csv" in msg and ".npz" in msg
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nothing.csv")


def test_list_datasets(tmp_path):
    entries = list_datasets(data_dir=tmp_path)
    assert [e["name"] for e in entries] == sorted(DATASETS)
    for e in entries:
        assert {"name", "description", "location", "present", "task"} <= set(e)
    mnist = {e["name"]: e for e in entries}["mnist"]
    assert mnist["present"] is False and mnist["location"] == str(tmp_path)


@requires_mnist
def test_list_datasets_sees_the_real_mnist():
    assert {e["name"]: e for e in list_datasets(MNIST_DIR)}["mnist"]["present"] is True


def test_import_is_light():
    code = (
        "import sys, deepff.datasets; "
        "heavy = [m for m in ('sklearn', 'urllib.request', 'http.server') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mnist_digest_constant_is_payload_sha256(tmp_path):
    # The digests are of the decompressed IDX payloads: check on a tiny
    # synthetic file that _the same_ bytes hash the same way read_idx sees them.
    data = _idx_bytes(np.arange(10, dtype=np.uint8), 0x08)
    path = _write(tmp_path / "p.gz", data, True)
    from deepff.data.mnist import _read_idx

    assert _read_idx(path, digest=True)[1] == hashlib.sha256(data).hexdigest()


def test_load_csv_header_can_be_stated(tmp_path):
    """A header of numbers above numbers cannot be told from data: header=True says it."""
    path = tmp_path / "spectra.csv"
    path.write_text("400,450,500,600\n0.1,0.2,0.3,1.5\n0.4,0.5,0.6,2.5\n")
    assert load_csv(path).X.shape == (3, 3)                       # detected: no header
    stated = load_csv(path, header=True)
    assert stated.feature_names == ["400", "450", "500"] and stated.target_name == "600"
    assert stated.X.shape == (2, 3)
    assert load_csv(path, header=False).feature_names == ["col0", "col1", "col2"]


def test_a_folder_named_like_a_data_file_is_named_as_a_folder(tmp_path):
    (tmp_path / "data.csv").mkdir()
    with pytest.raises(DatasetError, match="data.csv is a folder; give the data file itself"):
        load_dataset(str(tmp_path / "data.csv"))


@pytest.mark.parametrize("header", ["no", "false", "0", 1])
def test_load_csv_header_must_be_a_bool_or_none(tmp_path, header):
    """header="no" used to be truthy: the first data row became the header and one sample was lost."""
    path = tmp_path / "b.csv"
    path.write_text("1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    with pytest.raises(DatasetError, match="header must be True, False or None .*--header yes/no/auto"):
        load_csv(path, header=header)
    assert load_csv(path, header=False).X.shape == (4, 2)


@pytest.mark.parametrize("timeout", ["x", -1, 0, float("nan"), True])
def test_download_timeout_must_be_positive_seconds(tmp_path, timeout):
    with pytest.raises(DatasetError, match=r"timeout \(seconds\) must be a positive number, got "):
        download_mnist(tmp_path, mirrors=["http://127.0.0.1:9/"], timeout=timeout)
    assert list(tmp_path.iterdir()) == []


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Promises 100 kB and sends a byte every 0.2 s: each byte restarts a socket timeout."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(150):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:   # the client gave up
            pass

    def log_message(self, *args):
        pass


@requires_mnist
def test_a_trickling_mirror_is_given_up_after_the_timeout(tmp_path, base_url):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        others = [s for s in MNIST_FILES if s != "train-labels-idx1-ubyte"]
        dest = _copy_mnist(tmp_path / "dest", others)
        host, port = server.server_address[:2]
        started = time.monotonic()
        download_mnist(dest, mirrors=[f"http://{host}:{port}/", base_url + "good/"], timeout=1)
        assert time.monotonic() - started < 20          # not the 30 s the trickle would take
        assert sorted(os.listdir(dest)) == sorted(f"{s}.gz" for s in MNIST_FILES)
        mode = stat.S_IMODE(os.stat(dest / "train-labels-idx1-ubyte.gz").st_mode)
        umask = os.umask(0)
        os.umask(umask)
        assert mode == 0o666 & ~umask                  # as any other file, not mkstemp's 0600
    finally:
        server.shutdown()
        server.server_close()


def test_an_unwritable_cache_folder_is_named(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):     # a read-only file system (root ignores chmod, so it is simulated)
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(DatasetError, match=r"cannot write the MNIST files into .*cache.*DEEPFF_DATA"):
        download_mnist(tmp_path / "cache", mirrors=["http://127.0.0.1:9/"], timeout=1)


def test_load_csv_ignores_a_delimiter_that_ends_every_line(tmp_path):
    path = tmp_path / "trail.csv"
    path.write_text("a,b,label,\n1,2,x,\n3,4,y,\n5,6,x,\n")
    data = load_csv(path)
    assert data.feature_names == ["a", "b"] and data.target_name == "label"
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4], [5, 6]])
    assert list(data.y) == ["x", "y", "x"]


@pytest.mark.parametrize(("text", "column", "hint"), [
    ("a,,label\n1,2,x\n3,4,y\n", 2, ""),
    (",a,label\n0,1,x\n1,3,y\n", 1, "index=False"),
])
def test_load_csv_refuses_a_header_column_without_a_name(tmp_path, text, column, hint):
    path = tmp_path / "noname.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=f"header column {column} has no name.*{hint}"):
        load_csv(path)


def test_load_dataset_names_a_non_finite_value_by_the_files_row_not_the_splits(tmp_path):
    """The split shuffles rows: after it, 'row 7' would point at another sample of the file."""
    X = np.arange(60, dtype=np.float64).reshape(20, 3)
    X[9, 1] = np.nan
    path = tmp_path / "x.npz"
    np.savez(path, X=X, y=np.arange(20) % 2)
    with pytest.raises(DatasetError, match=r"x\.npz: X holds the non-finite value nan at row 9, column 1 "
                                           r"\(counting from 0\)"):
        load_dataset(str(path), test_fraction=0.2, seed=0)


def test_standardizer_says_when_values_are_too_large_to_standardise():
    """Finite values near float64's limit overflow the sums: say so, without a flood of RuntimeWarnings
    and not as 'NaN or infinity', which the data do not hold."""
    import warnings

    X = np.random.default_rng(0).normal(size=(30, 3))
    X[:, 2] *= 1e307
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DatasetError, match=r"column 2 holds values too large to standardise in float64 "
                                               r"\(up to 1\.\d+e\+307 in magnitude\): divide the data"):
            Standardizer().fit(X)
        X[:, 2] /= 1e300                     # scaled down, the same data standardise
        Z = Standardizer().fit_transform(X)
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-12)


@pytest.mark.parametrize("func", ["load_csv", "load_array_file", "read_idx", "load_dataset"])
@pytest.mark.parametrize("bad", [None, 5, ["a.csv"]])
def test_a_path_that_is_not_a_path_is_a_dataset_error(func, bad):
    import deepff.datasets as ds

    with pytest.raises(DatasetError, match=r"must be a (file name|data set name .* or a file path).*, got "):
        getattr(ds, func)(bad)
