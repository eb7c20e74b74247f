"""One table reader: ``deepff train``, ``deepff evaluate`` and ``deepff predict`` read a file through
:func:`deepff.data.tables.read_table`, so a file cannot be read two ways (issue 16, acceptance 5).

Runs in about 5 seconds (three short training runs on 60 rows).
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

import deepff.data.tables as tables
from deepff.cli import main
from deepff.data import load_csv
from deepff.io import load


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def reads(monkeypatch):
    """Every call of read_table: (path, target, the Table it returned)."""
    calls = []
    real = tables.read_table

    def counting(path, *args, **kwargs):
        table = real(path, *args, **kwargs)
        calls.append((str(path), kwargs.get("target"), table))
        return table

    monkeypatch.setattr(tables, "read_table", counting)
    return calls


def _semicolon_file(path, n=60, seed=0):
    """Semicolon-delimited, every field quoted, a header of numeric-looking names, labels holding ';'."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).round(4)
    labels = np.where(X[:, 0] + X[:, 1] > 0, "up;right", "down")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=";", quoting=csv.QUOTE_ALL)
        w.writerow(["1", "2", "3", "label"])
        w.writerows([[*map(repr, map(float, row)), lab] for row, lab in zip(X, labels)])
    return X, labels


def _expected(model, X, proba=False):
    net = load(model)
    Z = (X - np.array(net.preprocessing["mean"])) / np.array(net.preprocessing["std"])
    if proba:
        return net.predict_proba(Z.astype(net.dtype))
    return [net.classes[i] for i in net.predict(Z.astype(net.dtype))]


def test_train_evaluate_and_predict_read_a_file_through_one_function(tmp_path, monkeypatch, capsys, reads):
    monkeypatch.chdir(tmp_path)
    X, labels = _semicolon_file("data.csv")
    raw = open("data.csv", encoding="utf-8").read()
    assert raw.startswith('"1";"2";"3";"label"\n') and '"up;right"' in raw      # the file is what it claims

    rc, _, err = _run(capsys, "train", "--dataset", "data.csv", "--epochs", 3, "--hidden", 8, "--quiet",
                      "--output", "m.npz")
    assert rc == 0, err
    assert [c[0] for c in reads] == ["data.csv"]
    trained = reads[-1][2]
    assert (trained.delimiter, trained.header, trained.names) == (";", True, ["1", "2", "3", "label"])
    net = load("m.npz")
    assert net.metadata["feature_names"] == ["1", "2", "3"] and sorted(net.classes) == ["down", "up;right"]

    rc, out, err = _run(capsys, "evaluate", "--model", "m.npz", "--json")
    assert rc == 0, err
    assert len(reads) == 2 and reads[1][0] == str(tmp_path / "data.csv")

    rc, out, err = _run(capsys, "predict", "--model", "m.npz", "--input", "data.csv")
    assert rc == 0 and err == ""
    assert len(reads) == 3 and reads[2][0] == "data.csv"
    predicted = reads[2][2]
    # the same delimiter, the same header rule, the same cells, row for row
    assert (predicted.delimiter, predicted.header, predicted.names) == (";", True, trained.names)
    assert predicted.rows == trained.rows and predicted.lines == trained.lines

    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["prediction"] and len(rows) == 61                # no data row taken for a header
    assert [r[0] for r in rows[1:]] == _expected("m.npz", X)            # each row's own prediction, in order


def test_predict_matches_columns_by_name_and_gives_the_same_rows(tmp_path, monkeypatch, capsys, reads):
    """The training file with its columns shuffled (and probabilities asked for) predicts the same rows."""
    monkeypatch.chdir(tmp_path)
    X, labels = _semicolon_file("data.csv")
    assert _run(capsys, "train", "--dataset", "data.csv", "--epochs", 3, "--hidden", 8, "--quiet",
                "--output", "m.npz")[0] == 0
    with open("shuffled.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=";", quoting=csv.QUOTE_ALL)
        w.writerow(["label", "3", "1", "2"])
        w.writerows([[lab, repr(float(r[2])), repr(float(r[0])), repr(float(r[1]))] for r, lab in zip(X, labels)])
    rc, out, err = _run(capsys, "predict", "--model", "m.npz", "--input", "shuffled.csv", "--proba")
    assert rc == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    net = load("m.npz")
    assert rows[0] == [f"p_{c}" for c in net.classes]
    np.testing.assert_allclose(np.array(rows[1:], dtype=np.float64), _expected("m.npz", X, proba=True),
                               rtol=1e-6, atol=1e-7)
    assert [c[0] for c in reads] == ["data.csv", "shuffled.csv"]


def test_load_csv_and_read_features_give_the_same_numbers(tmp_path):
    """Python's two entry points agree cell for cell on the features of one file."""
    X, _ = _semicolon_file(tmp_path / "data.csv", n=15, seed=3)
    data = load_csv(tmp_path / "data.csv")
    features = tables.read_features(tmp_path / "data.csv", 3, ["1", "2", "3"])
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(features, X)


@pytest.mark.parametrize("text, header", [
    ("0,1,2\n5,6,7\n", True),          # pandas' header of an array
    ("a,b,c\n5,6,7\n", True),          # no number in it
    ("5,6,7\n8,9,10\n", False),        # numbers: data
    ("1_000,2,3\n4,5,6\n", False),     # meant as numbers: data (and then refused cell by cell)
    ("x,2,3\n4,5,6\n", False),         # one bad cell in a row of numbers: data, reported, never skipped
])
def test_the_header_rule_of_a_file_of_features_only(tmp_path, text, header):
    (tmp_path / "f.csv").write_text(text)
    assert tables.read_table(tmp_path / "f.csv", target=False).header is header


def test_a_model_s_feature_names_make_a_header_of_numbers(tmp_path):
    (tmp_path / "f.csv").write_text("2019,2020\n1,2\n")
    assert tables.read_table(tmp_path / "f.csv", target=False).header is False
    assert tables.read_table(tmp_path / "f.csv", target=False, names=["2020", "2019"]).header is True
