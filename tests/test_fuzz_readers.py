"""Property-based tests of the data readers: whatever the bytes, only DatasetError comes out.

``load_csv`` (CSV text and raw bytes), ``read_idx`` (IDX headers, raw and
gzip) and ``load_array_file`` (.npy files and .npz members) each get at least
``EXAMPLES`` generated files. Every example checks that the reader either
returns what the file declares or raises :class:`deepff.errors.DatasetError`
with a message, and that nothing is left behind: no file beside the input, no
temporary file, no open file descriptor. The counts are printed in the
terminal summary (tests/conftest.py) and checked by the last test.
"""

from __future__ import annotations

import collections
import gc
import gzip
import io
import os
import struct
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _fuzzing import COUNTS, time_limit
from deepff.datasets import load_array_file, load_csv, read_idx
from deepff.errors import DatasetError

EXAMPLES = 500
# derandomized: the same examples on every run, so the counts the suite asserts cannot flake
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
FD_DIR = "/proc/self/fd"
CSV, IDX, NPY, NPZ = ("load_csv (CSV bytes)", "read_idx (IDX headers)", "load_array_file (.npy)",
                      "load_array_file (.npz members)")
READ = collections.Counter()     # examples that were read, not refused, per reader


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A folder for the generated files and a private temporary folder the readers would have to use."""
    root = tmp_path_factory.mktemp("readers")
    (root / "tmp").mkdir()
    previous = tempfile.tempdir
    tempfile.tempdir = str(root / "tmp")
    yield root
    tempfile.tempdir = previous


def _read(sandbox, name, data, reader, label):
    """Write ``data`` to ``sandbox/name``, call ``reader(path)``; return its result (as plain data) or the error.

    Asserts that only a DatasetError (with a one-line message) escapes and that
    the reader leaves nothing behind: the folder holds the input file alone,
    the temporary folder is empty, and no file descriptor stays open.
    """
    path = sandbox / name
    path.write_bytes(data)
    fds = len(os.listdir(FD_DIR)) if os.path.isdir(FD_DIR) else None
    message = None
    with time_limit():
        try:
            check = _summary(reader(path))       # the arrays seen and dropped (a .npy maps its file)
        except DatasetError as exc:
            message = str(exc)                   # kept as text: the exception and its frames go, as
    if message is not None:                      # when a caller's except block ends
        assert message and "\n" not in message
        check = DatasetError(message)
    else:
        READ[label] += 1
    if fds is not None and len(os.listdir(FD_DIR)) != fds:
        gc.collect()                             # only when needed: a collection per example is slow
        assert len(os.listdir(FD_DIR)) == fds, "a file descriptor was left open"
    assert sorted(p.name for p in sandbox.iterdir()) == sorted([name, "tmp"])
    assert not any((sandbox / "tmp").iterdir()), "a temporary file was left behind"
    path.unlink()
    return check


def _summary(result):
    """What a successful read returned, as plain data (no reference to a mapped file)."""
    if isinstance(result, np.ndarray):
        return {"array": np.array(result)}
    if isinstance(result, tuple):          # load_array_file: (X, y)
        X, y = result
        return {"X": np.array(X), "y": None if y is None else np.array(y)}
    return {"X": result.X, "y": result.y, "names": result.feature_names, "target": result.target_name}


# ------------------------------------------------------------------ CSV
plain_numbers = st.one_of(st.integers(-10 ** 6, 10 ** 6).map(str),
                          st.floats(-1e6, 1e6, allow_nan=False).map(repr), st.sampled_from(["0", "1", "-2.5e-3"]))
odd_numbers = st.one_of(st.integers(-10 ** 20, 10 ** 20).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.sampled_from(["1e308", "1e309", "-0", "+3", ".5", "5.", "1_000", "0x1f", "\u0661\u0662",
                                         "NaN", "inf", "-Infinity", "1,5", " 7 ", "1e", "--1", ""]))
words = st.one_of(st.sampled_from(["y", "target", "label", "col0", "a", "b", "x1", "", " ", '"q"', "a,b",
                                   "\u00e9t\u00e9", "nan"]),
                  st.text(max_size=6))
cells = st.one_of(plain_numbers, plain_numbers, odd_numbers, words)


@st.composite
def csv_bytes(draw):
    """Delimited text close to what users write (mostly) or raw bytes; then maybe a few bytes spoiled."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    sep = draw(st.sampled_from([",", ",", ";", "\t", "|", " ", ",,"]))
    end = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    width = draw(st.sampled_from([1, 2, 2, 3, 3, 4, 5]))
    ragged = st.sampled_from([0] * 12 + [-1, 1])
    clean = draw(st.integers(0, 2)) > 0      # mostly names and numbers that parse, or anything in any cell
    names = st.from_regex(r"[a-z][a-z0-9_]{0,4}", fullmatch=True) if clean else words
    rows = [draw(st.lists(names, min_size=width, max_size=width, unique=clean))] if draw(st.booleans()) else []
    for _ in range(draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 8]))):
        n = max(width + (0 if clean else draw(ragged)), 0)
        rows.append(draw(st.lists(plain_numbers if clean else cells, min_size=n, max_size=n)))
    quote = draw(st.integers(0, 4)) == 0
    lines = [sep.join(f'"{c}"' if quote and draw(st.booleans()) else c for c in row) for row in rows]
    text = end.join(lines) + draw(st.sampled_from(["", end, end + end, sep + end]))
    data = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8")
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        if data:
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + draw(st.binary(min_size=1, max_size=3)) + data[i + 1:]
    return data


def _mostly(default, other):
    """``default`` in about 7 examples of 10, else one drawn from ``other`` (sampled_from draws evenly)."""
    return st.sampled_from(["default"] * 7 + ["other"] * 3).flatmap(
        lambda pick: st.just(default) if pick == "default" else other)


@FUZZ
@given(data=csv_bytes(), target=_mostly(None, st.one_of(st.integers(-7, 7), words, st.just(1.5))),
       delimiter=_mostly(None, st.sampled_from([",", ";", "\t", "|", "", ",;", "\n", '"', "a"])),
       header=_mostly(None, st.booleans()), suffix=_mostly(".csv", st.sampled_from([".tsv", ".txt"])))
def test_load_csv_raises_only_dataset_error(sandbox, data, target, delimiter, header, suffix):
    COUNTS[CSV] += 1
    got = _read(sandbox, "fuzz" + suffix, data, lambda p: load_csv(p, target=target, delimiter=delimiter,
                                                                     header=header), CSV)
    if not isinstance(got, DatasetError):
        X, y = got["X"], got["y"]
        assert X.dtype == np.float64 and X.ndim == 2 and X.shape[0] >= 1 and np.isfinite(X).all()
        assert y.shape == (X.shape[0],) and len(got["names"]) == X.shape[1] and got["target"] not in got["names"]


# ------------------------------------------------------------------ IDX
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@st.composite
def idx_files(draw):
    """(file bytes, declared (type code, shape) when the header is well formed, payload bytes)."""
    zero = draw(st.sampled_from([b"\x00\x00"] * 12 + [b"\x00\x01", b"\x1f\x8b", b"\xff\xff"]))
    code = draw(st.sampled_from(sorted(IDX_TYPES) * 3 + [0x00, 0x0A, 0x0F, 0xFF]))
    ndim = draw(st.sampled_from([1, 1, 2, 2, 3, 4, 0, 255]))
    size = st.sampled_from([0, 1, 1, 2, 3, 4, 5, 5, 5, 5, 1000, 2 ** 31, 2 ** 32 - 1])
    dims = draw(st.lists(size, min_size=min(ndim, 6), max_size=min(ndim, 6)))
    header = zero + bytes([code, ndim]) + b"".join(struct.pack(">I", d) for d in dims)
    header = header[:draw(st.integers(0, len(header)))] if draw(st.integers(0, 7)) == 0 else header
    size = int(np.prod(dims, dtype=object)) * np.dtype(IDX_TYPES.get(code, ">u1")).itemsize if dims else 0
    n = min(size, 512) + draw(st.sampled_from([0] * 9 + [-1, 1, 7]))
    payload = draw(st.binary(min_size=max(n, 0), max_size=max(n, 0)))
    data = header + payload
    if draw(st.booleans()):
        data = gzip.compress(data, mtime=0)
        if draw(st.integers(0, 4)) == 0:        # a spoiled gzip stream
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
    return data, (code, tuple(dims)), payload


@FUZZ
@given(idx_files())
def test_read_idx_raises_only_dataset_error(sandbox, idx):
    COUNTS[IDX] += 1
    data, (code, dims), payload = idx
    got = _read(sandbox, "fuzz-idx1-ubyte", data, read_idx, IDX)
    if not isinstance(got, DatasetError):      # only a file exactly as its header declares is read
        arr = got["array"]
        assert code in IDX_TYPES and arr.shape == dims
        expected = np.frombuffer(payload, dtype=IDX_TYPES[code]).reshape(dims)
        np.testing.assert_array_equal(arr, expected)


# ------------------------------------------------------------ .npy / .npz
ARRAY_DTYPES = ["float64", "float32", ">f8", "int64", "int8", "uint8", "bool", "complex128", "<U3", "object",
                "datetime64[s]", "V4"]


@st.composite
def arrays(draw):
    dtype = draw(_mostly("float64", st.sampled_from(ARRAY_DTYPES)))
    ndim = draw(_mostly(2, st.sampled_from([0, 1, 3])))
    shape = tuple(draw(st.lists(st.sampled_from([0, 1, 2, 3, 3, 4, 4]), min_size=ndim, max_size=ndim)))
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == "object":
        return np.array([None] * n, dtype=object).reshape(shape)
    raw = draw(st.binary(min_size=n * np.dtype(dtype).itemsize, max_size=n * np.dtype(dtype).itemsize))
    if dtype == "<U3":
        return np.array(["ab"] * n, dtype=dtype).reshape(shape)
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


@st.composite
def spoiled(draw, data):
    """``data`` unchanged (often), or with bytes flipped, cut or added (at the header more often)."""
    b = bytearray(data)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        if not b:
            break
        op = draw(st.sampled_from(["flip-header", "flip", "truncate", "append"]))
        if op == "append":
            b += draw(st.binary(min_size=1, max_size=16))
        elif op == "truncate":
            del b[draw(st.integers(0, len(b) - 1)):]
        else:
            i = draw(st.integers(0, min(len(b), 128) - 1 if op == "flip-header" else len(b) - 1))
            b[i] ^= draw(st.integers(1, 255))
    return bytes(b)


targets = _mostly(None, st.one_of(st.integers(-4, 4), st.sampled_from(["1", "x", 1.5, True])))


def _check_loaded(got, target):
    if not isinstance(got, DatasetError):
        X, y = got["X"], got["y"]
        assert X.ndim == 2 and X.dtype.kind in "biuf"
        assert y is None or y.shape == (X.shape[0],)


@FUZZ
@given(data=st.data(), target=targets)
def test_load_array_file_npy_raises_only_dataset_error(sandbox, data, target):
    COUNTS[NPY] += 1
    buf = io.BytesIO()
    np.save(buf, data.draw(arrays()), allow_pickle=True)      # an object array is written as a pickle
    blob = data.draw(spoiled(buf.getvalue()))
    got = _read(sandbox, "fuzz.npy", blob, lambda p: load_array_file(p, target=target), NPY)
    _check_loaded(got, target)
    if not isinstance(got, DatasetError) and target is None:
        assert got["y"] is None


@st.composite
def matching_members(draw):
    """X (n, d) and y (n,) as a training file holds them, in a drawn dtype."""
    n, d = draw(st.sampled_from([1, 2, 3, 5])), draw(st.sampled_from([1, 2, 3]))
    dtype = draw(_mostly("float64", st.sampled_from(["float32", "int8", "bool", "complex128"])))
    return {"X": np.arange(n * d).reshape(n, d).astype(dtype), "y": np.arange(n) % 2}


@st.composite
def npz_files(draw):
    """An .npz archive: mostly X and y that match, else any members; each member and the archive maybe spoiled."""
    members = draw(_mostly("matching", st.just("any")).flatmap(
        lambda kind: matching_members() if kind == "matching" else st.dictionaries(
            st.sampled_from(["X", "y", "X", "y", "Z", "x", "X.npy"]), arrays(), max_size=3)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=draw(st.sampled_from([zipfile.ZIP_STORED,
                                                                    zipfile.ZIP_DEFLATED]))) as zf:
        for name, arr in members.items():
            member = io.BytesIO()
            np.save(member, arr, allow_pickle=True)
            zf.writestr(name if name.endswith(".npy") else name + ".npy", draw(spoiled(member.getvalue())))
    return draw(spoiled(buf.getvalue()))


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")   # two X.npy members: zipfile warns, as it should
@FUZZ
@given(blob=npz_files(), target=targets)
def test_load_array_file_npz_raises_only_dataset_error(sandbox, blob, target):
    COUNTS[NPZ] += 1
    got = _read(sandbox, "fuzz.npz", blob, lambda p: load_array_file(p, target=target), NPZ)
    _check_loaded(got, target)


# ------------------------------------------------------- bugs the fuzzing found
@pytest.mark.parametrize("member", ["X", "y"])
def test_an_npz_member_without_a_npy_header_is_a_dataset_error(tmp_path, member):
    """numpy hands such a member out as bytes: load_array_file raised AttributeError ('bytes' has no dtype)."""
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in {"X": np.zeros((2, 3)), "y": np.zeros(2)}.items():
            member_bytes = io.BytesIO()
            np.save(member_bytes, arr)
            zf.writestr(name + ".npy", b"not numpy" if name == member else member_bytes.getvalue())
    with pytest.raises(DatasetError, match=f"member '{member}' is not a numpy array"):
        load_array_file(path)


# ------------------------------------------------------------ the counts
READERS = [CSV, IDX, NPY, NPZ]


def test_zz_every_reader_ran_enough_examples():
    """Runs last (file order): each reader property that ran did at least EXAMPLES examples."""
    ran = {name: COUNTS[name] for name in READERS if COUNTS[name]}
    if not ran:
        pytest.skip("no reader property ran in this session (selected out)")
    short = {name: n for name, n in ran.items() if n < EXAMPLES}
    assert not short, f"fewer than {EXAMPLES} examples: {short}"
    for name in ran:              # a fuzzer whose files are all refused never reaches the readers' ends
        COUNTS[f"{name}, read without error"] = READ[name]
        assert READ[name] >= 0.05 * ran[name], f"{name}: only {READ[name]} of {ran[name]} examples were read"
