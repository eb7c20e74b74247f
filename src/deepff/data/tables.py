"""The one table reader: delimited text (.csv/.tsv/.txt) and numpy array files
(.npy/.npz), read the same way by ``deepff train``, ``deepff evaluate`` and
``deepff predict``.

Every problem a user can cause (a missing file, a bad cell, an unknown column)
raises :class:`~deepff.errors.DatasetError` naming the file, row, column and
value at fault and the valid choices.

Streaming
---------
An uncompressed ``.npy`` file is the format for data larger than memory:
:func:`load_array_file` memory-maps it (``mmap_mode="r"``). Members of a
``.npz`` archive cannot be memory-mapped by numpy and are read into memory.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError, choices
from ..validation import check_file_path, is_plain_number

__all__ = ["CSVData", "Table", "read_table", "load_csv", "read_features", "columns_named", "load_array_file"]

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
    """The DatasetError naming the first cell that is not a finite, plainly written number, or None."""
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


def _numbers(rows, lines, names, path):
    """The cells of ``rows`` as a float64 array, refusing the first cell that is not a finite number.

    Parameters
    ----------
    rows : list of list of str, shape (n, d)
        Stripped cells, every row of length d.
    lines, names : list
        The file line of each row and the name of each column, for messages.
    path : pathlib.Path

    Returns
    -------
    numpy.ndarray of float64, shape (n, d)

    Raises
    ------
    DatasetError
        Naming the data row, file line, column and value of the first cell
        that is empty, not a plainly written number (:func:`~deepff.validation.is_plain_number`),
        NaN or infinite.
    """
    try:
        X = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    except ValueError:
        X = None
    if X is not None and np.isfinite(X).all():
        cells = "".join("".join(row) for row in rows)   # numpy reads "1_000" and "١٢" as numbers: only a table
        if "_" not in cells and cells.isascii():         # holding "_" or non-ASCII text is read cell by cell
            return X
    raise _bad_cell(rows, lines, names, path) or DatasetError(f"{path}: the feature columns could not be read "
                                                              "as numbers")


def _first_row_is_header(rows, target, names=None):
    """Decide from the rows of a table whether the first names its columns.

    It does when it is ``0, 1, ..., d-1`` (the header pandas writes for a
    DataFrame of an array) or holds all of ``names`` (the columns a model
    was trained on, even ``400`` or ``2019``). A first row of numbers is
    data. For a file with a target column, it is a header when a
    non-numeric cell of it is ``target``, when a cell outside the target
    column is not a number (no data row can hold that), when its target
    cell is text above a number, or when its target cell is text that no
    other row's target repeats (a column name above class labels, which
    recur). For a file of features only (``target=False``), it is a header
    when none of its cells is a number: a data row with one bad cell is
    reported, not skipped. Cells are numbers here as Python's ``float()``
    reads them, so a first row of ``1_000`` is data, refused with its row
    and column rather than taken for column names.
    """
    first = rows[0]
    if first == [str(i) for i in range(len(first))]:
        return True
    if names and set(map(str, names)) <= set(first):
        return True
    numeric = [is_plain_number(cell, lenient=True) for cell in first]
    if all(numeric):
        return False
    if target is False:
        return not any(numeric)
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
    if below and is_plain_number(below[0], lenient=True):
        return True
    return first[t] not in below          # a label of its own: a name, not a class


@dataclass
class Table:
    """The cells of a delimited text file, as :func:`read_table` reads them.

    Attributes
    ----------
    rows : list of list of str, shape (n, d)
        The data rows, each cell stripped of surrounding blanks.
    lines : list of int, shape (n,)
        The file line of each data row (for messages).
    names : list of str, shape (d,)
        The column names: the header's, or ``col0``, ``col1``, ... without one.
    header : bool
        Whether the first row was the header.
    delimiter : str
    path : pathlib.Path
    """

    rows: list
    lines: list
    names: list
    header: bool
    delimiter: str
    path: Path


def _read_text(path):
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
    return text


def _parse_rows(text, delimiter, path):
    """The non-blank rows of ``text`` (cells stripped) and the file line of each."""
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
    return rows, lines


def read_table(path, delimiter=None, header=None, target=None, names=None):
    """Read a delimited text file into rows of text cells: the one reader of ``deepff train``,
    ``deepff evaluate`` (through :func:`load_csv`) and ``deepff predict`` (through :func:`read_features`).

    Parameters
    ----------
    path : str or os.PathLike
        The file (UTF-8, an optional byte-order mark is skipped). Blank
        lines are skipped; quoted fields may hold the delimiter.
    delimiter : str, optional
        One character. Default: detected with :class:`csv.Sniffer` among
        ``,`` ``;`` tab and ``|`` (tab for a ``.tsv`` file).
    header : bool, optional
        Whether the first non-blank row holds the column names. Default:
        detected by the rule of :func:`load_csv` (``target=False``: the rule
        for a file of features only, see there).
    target : str or int or False, optional
        The target column (as :func:`load_csv` takes it), which header
        detection looks at; False for a file without a target column.
    names : list of str, optional
        Column names the file is expected to hold (a model's features): a
        first row holding all of them is the header.

    Returns
    -------
    Table
        The data rows, their file lines and the column names.

    Raises
    ------
    DatasetError
        If the file is missing, unreadable, empty, has no data rows, has a
        row with a different number of fields than the header (or the
        first row), a header cell without a name, or two columns of the
        same name.
    """
    if header is not None and not isinstance(header, (bool, np.bool_)):
        raise DatasetError(f"header must be True, False or None (detect), got {header!r}; the command line's "
                           "--header yes/no/auto is header=True/False/None here")
    path = Path(check_file_path(path, error=DatasetError))
    text = _read_text(path)
    if delimiter is None:
        delimiter = _detect_delimiter(text[:65536], path)
    elif not isinstance(delimiter, str) or len(delimiter) != 1:
        raise DatasetError(f"delimiter must be a single character, got {delimiter!r}")
    rows, lines = _parse_rows(text, delimiter, path)
    if header is None:
        header = _first_row_is_header(rows, target, names)
    if header:
        columns = rows.pop(0)
        lines.pop(0)
        if "" in columns:
            first = columns.index("") == 0
            raise DatasetError(f"{path}: header column {columns.index('') + 1} has no name; name every column "
                               + ("(a pandas index? write the file with to_csv(..., index=False)) " if first else "")
                               + "(or give header=False / --header no if the first line is data)")
        _check_unique(columns, path)
    else:
        columns = [f"col{i}" for i in range(len(rows[0]))]
    for row, line in zip(rows, lines):
        if len(row) != len(columns):
            raise DatasetError(
                f"{path}: line {line} has {len(row)} fields, expected {len(columns)} "
                f"like the {'header' if header else 'first row'} (delimiter {delimiter!r})"
            )
    if not rows:
        raise DatasetError(f"CSV file {path} has a header but no data rows")
    return Table(rows, lines, columns, bool(header), delimiter, path)


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
    table = read_table(path, delimiter=delimiter, header=header, target=target)
    rows, lines, names, path = table.rows, table.lines, table.names, table.path
    if len(names) < 2:
        raise DatasetError(
            f"CSV file {path} has a single column with delimiter {table.delimiter!r}; it needs at least "
            "one feature column and a target column (if the delimiter was misdetected, give it: "
            "--delimiter on the command line, delimiter= in Python)"
        )
    t = _resolve_column(target, names, path)
    target_name = names[t]
    feature_names = [nm for i, nm in enumerate(names) if i != t]
    X = _numbers([row[:t] + row[t + 1:] for row in rows], lines, feature_names, path)
    y = _parse_target([row[t] for row in rows], lines, target_name, path)
    return CSVData(X=X, y=y, feature_names=feature_names, target_name=target_name)


def columns_named(wanted, names, source):
    """Positions in ``names`` of every name in ``wanted``, or None when some are missing.

    Parameters
    ----------
    wanted, names : list of str
        The columns asked for (a model's features) and a file's columns.
    source : str or os.PathLike
        The file, for messages.

    Returns
    -------
    list of int or None

    Raises
    ------
    DatasetError
        When one of ``wanted`` names more than one column of ``source``.
    """
    if not set(wanted) <= set(names):
        return None
    repeated = sorted({nm for nm in wanted if names.count(nm) > 1})
    if repeated:
        raise DatasetError(f"{source} names more than one column {', '.join(map(repr, repeated))}; column "
                           "names must be unique")
    return [names.index(nm) for nm in wanted]


def read_features(path, n_features, feature_names=None):
    """Read the feature rows a saved model predicts: a text table (through :func:`read_table`) or a ``.npy``.

    A text file whose header names every feature the model was trained on
    (e.g. the training file itself, target column included) has those
    columns picked by name; otherwise every column is a feature, in order.
    Its header is detected as :func:`load_csv` detects one, for a file of
    features only, and its cells are numbers as :func:`load_csv` reads them.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv``, ``.tsv`` or ``.txt`` table, or a ``.npy`` array (one row
        per sample; a 1-D array is one sample, or one feature per sample
        when ``n_features`` is 1).
    n_features : int
        The number of features the model takes.
    feature_names : list of str, optional
        The model's feature names, in its order.

    Returns
    -------
    numpy.ndarray, shape (n, n_features)
        float64 for a text table, the file's numeric dtype for ``.npy``.

    Raises
    ------
    DatasetError
        If the file is missing or unreadable, a cell is not a finite number
        (named by data row, line and column), or the number of features differs.
    """
    path = Path(check_file_path(path, error=DatasetError))
    ext = path.suffix.lower()
    if path.is_dir():
        raise DatasetError(f"--input {path} is a folder; give the file of feature rows itself")
    if not path.is_file():
        raise DatasetError(f"input file not found: {path}")
    if ext == ".npy":
        X = _read_npy(path, n_features)
    elif ext in _CSV_EXTENSIONS:
        table = read_table(path, target=False, names=feature_names)
        rows, names = table.rows, table.names
        cols = columns_named([str(nm) for nm in feature_names], names, path) \
            if feature_names and table.header else None
        if cols is not None:
            rows, names = [[r[c] for c in cols] for r in rows], [names[c] for c in cols]
        X = _numbers(rows, table.lines, names, path)
    else:
        raise DatasetError(f"--input must be a .csv, .tsv, .txt or .npy file, got {str(path)!r}")
    if X.ndim != 2:
        raise DatasetError(f"{path}: expected a 2-D array of features, got shape {X.shape}")
    if X.shape[0] == 0:
        raise DatasetError(f"{path} holds no samples")
    if X.shape[1] != n_features:
        raise DatasetError(f"{path} has {X.shape[1]} features per row, but the model expects {n_features}")
    if not np.isfinite(X.astype(np.float64)).all():
        raise DatasetError(f"{path} contains NaN or infinity")
    return X


def _read_npy(path, n_features):
    try:
        X = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DatasetError(f"cannot read {path} as a .npy array: {' '.join(str(exc).split())}") from None
    if X.dtype.kind not in "biuf":
        raise DatasetError(f"{path} must hold numbers, got an array of dtype {X.dtype}")
    if X.ndim == 1:
        X = X.reshape(-1, 1) if n_features == 1 else X.reshape(1, -1)
    return X


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


_MAGIC = {".npy": (b"\x93NUMPY",), ".npz": (b"PK\x03\x04", b"PK\x05\x06")}


def _check_magic(path, suffix):
    """Refuse a file whose first bytes are not those of its kind (numpy would try to unpickle it)."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    if not any(head.startswith(m) for m in _MAGIC[suffix]):
        kind = "a .npy array (numpy.save)" if suffix == ".npy" else "a .npz archive (numpy.savez: a zip of .npy arrays)"
        text = " (it looks like text: a CSV file should end in .csv)" if head and all(
            32 <= b < 127 or b in (9, 10, 13) for b in head) else ""
        raise DatasetError(f"{path} is not {kind}: its first bytes are {head!r}{text}")


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
    if path.exists() and not path.is_file():
        raise DatasetError(f"{path} is not a regular file (a pipe, device or socket); give a .npy or .npz file")
    if not path.is_file():
        raise DatasetError(f"array file not found: {path}")
    _check_magic(path, suffix)
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
