"""The ``deepff`` command, end to end.

Most tests call :func:`deepff.cli.main` in-process (fast, output through
capsys); a few run ``python -m deepff.cli`` in a subprocess to prove the real
exit status, stderr and Ctrl-C handling.
"""

import contextlib
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _needs import require_module

require_module("sklearn", area="scikit-learn")
require_module("matplotlib", area="plots (matplotlib)")

from deepff import __version__, cli  # noqa: E402
from deepff.cli import train as cli_train  # noqa: E402
from deepff.data import Standardizer, load_digits_dataset  # noqa: E402
from deepff.errors import DeepffError  # noqa: E402
from deepff.io import load, load_checkpoint  # noqa: E402

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ helpers
def run(capsys, *argv):
    """Run the command in-process; return (status, stdout, stderr)."""
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def run_quiet(*argv):
    """Like run() without capsys (for module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main([str(a) for a in argv])
    assert rc == 0, err.getvalue()
    return out.getvalue()


def run_subprocess(*argv, cwd, timeout=60):
    return subprocess.run([sys.executable, "-m", "deepff.cli", *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def table_value(text, name):
    """The value of row ``name`` in the final results table of ``deepff train``."""
    m = re.search(rf"^{re.escape(name)}\s+(\S+)$", text, flags=re.M)
    assert m, f"no row {name!r} in:\n{text}"
    return m.group(1)


def check_png(path):
    """A valid PNG of a real figure: signature, > 10 kB, many colours, not blank."""
    import matplotlib.image

    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 10_000
    rgb = matplotlib.image.imread(path)[..., :3]
    assert rgb.shape[0] > 200 and rgb.shape[1] > 200
    assert rgb.var() > 1e-3
    assert len(np.unique((rgb.reshape(-1, 3) * 255).astype(np.uint8), axis=0)) > 20
    return rgb


def write_csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        if header:
            w.writerow(header)
        w.writerows(rows)


def pets_rows(n=200, seed=0):
    """Two numeric features and a string class: 'cat' (light, short) or 'dog'."""
    rng = np.random.default_rng(seed)
    weight = rng.uniform(2, 40, n)
    height = rng.uniform(20, 80, n)
    animal = np.where(weight / 40 + height / 80 > 1.0, "dog", "cat")
    return [[f"{w:.3f}", f"{h:.3f}", a] for w, h, a in zip(weight, height, animal)]


def expected_predictions(model_path, X):
    net = load(model_path)
    Xp = Standardizer.from_dict(net.preprocessing).transform(X, dtype=net.dtype)
    return net, net.predict(Xp), net.predict_proba(Xp)


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One training run on digits (default architecture 64-128-64-10, 2 epochs)."""
    d = tmp_path_factory.mktemp("digits")
    out = run_quiet("train", "--epochs", 2, "--output", d / "digits.npz", "--history", d / "h.json",
                    "--plot", d / "curves.png", "--quiet")
    return {"dir": d, "model": d / "digits.npz", "stdout": out}


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    """A ';'-separated CSV with string labels, and a model trained on it."""
    d = tmp_path_factory.mktemp("pets")
    write_csv(d / "pets.csv", ["weight", "height", "animal"], pets_rows(), delimiter=";")
    out = run_quiet("train", "--dataset", d / "pets.csv", "--epochs", 2, "--hidden", 8, "--lr", 0.05,
                    "--output", d / "pets.npz", "--plot", d / "pets.png", "--quiet")
    return {"dir": d, "csv": d / "pets.csv", "model": d / "pets.npz", "stdout": out}


# ------------------------------------------------------------------- train
def test_train_digits_saves_model(digits_run):
    out = digits_run["stdout"]
    net = load(digits_run["model"])
    assert net.n_features == 64 and net.n_outputs == 10
    assert [layer.units for layer in net.layers] == [128, 64, 10]
    assert net.classes == list(range(10))
    assert net.metadata["dataset"] == "digits"
    assert net.metadata["seed"] == 0 and net.metadata["test_fraction"] == 0.2
    assert len(net.preprocessing["mean"]) == 64
    assert table_value(out, "epochs") == "2"
    assert "model saved to" in out
    assert re.search(r"test accuracy: \d+\.\d\d%", out)


def test_evaluate_reports_the_accuracy_train_printed(digits_run, capsys):
    train_acc = float(table_value(digits_run["stdout"], "test accuracy"))
    rc, out, err = run(capsys, "evaluate", "--model", digits_run["model"], "--json")
    assert rc == 0 and err == ""
    rep = json.loads(out)
    assert rep["split"] == "test" and rep["n_samples"] == 359  # 20% of 1797
    assert round(rep["accuracy"], 4) == pytest.approx(train_acc, abs=1e-12)
    assert rep["accuracy"] == pytest.approx(load(digits_run["model"]).metadata["results"]["test_accuracy"])
    assert len(rep["precision"]) == len(rep["recall"]) == len(rep["f1"]) == 10
    assert np.asarray(rep["confusion_matrix"]).shape == (10, 10)
    assert sum(rep["support"]) == rep["n_samples"]

    rc, out, _ = run(capsys, "evaluate", "--model", digits_run["model"], "--dataset", "digits")
    assert rc == 0
    assert f"accuracy: {100 * train_acc:.2f}%" in out
    assert "precision" in out and "recall" in out and "f1" in out
    assert "confusion matrix" in out and "true\\pred" in out


@pytest.mark.parametrize("ext", ["json", "csv"])
def test_history_file_has_one_record_per_epoch(tmp_path, monkeypatch, capsys, ext):
    monkeypatch.chdir(tmp_path)
    rc, _, _ = run(capsys, "train", "--epochs", 3, "--hidden", 16, "--history", f"h.{ext}", "--quiet")
    assert rc == 0
    assert Path("deepff-digits.npz").is_file()  # the default output name
    if ext == "json":
        records = json.loads(Path("h.json").read_text())
    else:
        with open("h.csv", newline="") as fh:
            records = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in records] == [1, 2, 3]
    for r in records:
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds"):
            assert float(r[key]) >= 0 and np.isfinite(float(r[key]))


def test_per_epoch_lines_and_no_bar_off_a_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "train", "--epochs", 2, "--hidden", 16)
    assert rc == 0 and err == ""
    assert "\r" not in out  # no progress bar when stdout is not a terminal
    epoch_lines = [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    assert len(epoch_lines) == 2
    assert "loss" in epoch_lines[0] and "val_accuracy" in epoch_lines[0] and "samples/s" in epoch_lines[0]
    assert "metric" in out and "training time" in out

    rc, out, _ = run(capsys, "train", "--epochs", 2, "--hidden", 16, "--quiet")
    assert rc == 0
    assert not [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    assert "test accuracy" in out  # the final table is still printed


def test_progress_bar_on_a_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    rc, out, _ = run(capsys, "train", "--epochs", 1, "--hidden", 16)
    assert rc == 0
    assert "\r" in out and "epoch 1/1" in out and "samples/s" in out and "loss=" in out
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    rc, out, _ = run(capsys, "train", "--epochs", 1, "--hidden", 16, "--quiet")
    assert rc == 0 and "\r" not in out


def test_version_flag_prints_the_package_version(tmp_path):
    """``deepff --version`` is the version, not a ``train`` flag (no subcommand otherwise means train)."""
    for argv in (["--version"], ["--version", "--debug"]):
        done = run_subprocess(*argv, cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (0, f"deepff {__version__}\n", "")
    assert list(tmp_path.iterdir()) == []      # nothing trained, nothing written


def test_no_subcommand_means_train(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run(capsys, "--epochs", 1, "--hidden", 8, "--quiet", "--output", "m.npz")
    assert rc == 0 and Path("m.npz").is_file()


def test_resume_from_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, _, _ = run(capsys, "train", "--epochs", 2, "--hidden", 8, "--checkpoint", "ck.npz", "--quiet")
    assert rc == 0
    _, state, extra = load_checkpoint("ck.npz")
    assert state["epoch"] == 2 and extra["dataset"] == "digits"
    rc, _, _ = run(capsys, "train", "--epochs", 3, "--hidden", 8, "--resume", "ck.npz", "--history", "h.json",
                   "--quiet")
    assert rc == 0
    assert [r["epoch"] for r in json.loads(Path("h.json").read_text())] == [1, 2, 3]


# ----------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def digits_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    X = load_digits_dataset()[0][:25]
    write_csv(d / "x.csv", None, X.tolist())
    write_csv(d / "x_header.csv", [f"pixel_{i // 8}_{i % 8}" for i in range(64)], X.tolist())
    write_csv(d / "x_pandas.csv", [str(i) for i in range(64)], X.tolist())  # DataFrame(X).to_csv(index=False)
    np.save(d / "x.npy", X)
    return d, X


@pytest.mark.parametrize("source", ["x.csv", "x_header.csv", "x_pandas.csv", "x.npy"])
@pytest.mark.parametrize("proba", [False, True])
def test_predict_to_stdout(digits_run, digits_inputs, capsys, source, proba):
    d, X = digits_inputs
    _, labels, probabilities = expected_predictions(digits_run["model"], X)
    rc, out, err = run(capsys, "predict", "--model", digits_run["model"], "--input", d / source,
                       *(["--proba"] if proba else []))
    assert rc == 0 and err == ""
    rows = list(csv.reader(io.StringIO(out)))
    if proba:
        assert rows[0] == [f"p_{i}" for i in range(10)]
        P = np.array(rows[1:], dtype=np.float64)
        assert P.shape == (25, 10)
        np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(P, probabilities, rtol=1e-6, atol=1e-7)  # same standardisation
    else:
        assert rows[0] == ["prediction"]
        np.testing.assert_array_equal([int(r[0]) for r in rows[1:]], labels)


@pytest.mark.parametrize("ext", ["csv", "npy"])
@pytest.mark.parametrize("proba", [False, True])
def test_predict_to_file(digits_run, digits_inputs, tmp_path, monkeypatch, capsys, ext, proba):
    monkeypatch.chdir(tmp_path)
    d, X = digits_inputs
    _, labels, probabilities = expected_predictions(digits_run["model"], X)
    rc, out, _ = run(capsys, "predict", "--model", digits_run["model"], "--input", d / "x.npy",
                     "--output", f"out.{ext}", *(["--proba"] if proba else []))
    assert rc == 0 and out == ""
    if ext == "npy":
        got = np.load(f"out.{ext}", allow_pickle=False)
    else:
        got = np.loadtxt(f"out.{ext}", delimiter=",", skiprows=1, ndmin=2 if proba else 1)
    if proba:
        assert got.shape == (25, 10)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(got, probabilities, rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(got, labels)
        if ext == "npy":
            assert got.dtype.kind == "i"


def test_string_labels_round_trip(pets, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    net = load(pets["model"])
    assert net.classes == ["cat", "dog"]
    assert net.metadata["feature_names"] == ["weight", "height"] and net.metadata["target_name"] == "animal"
    rows = pets_rows(10, seed=5)
    write_csv("new.csv", None, [r[:2] for r in rows])
    rc, out, _ = run(capsys, "predict", "--model", pets["model"], "--input", "new.csv")
    assert rc == 0
    got = out.split()
    assert got[0] == "prediction" and len(got) == 11 and set(got[1:]) <= {"cat", "dog"}
    X = np.array([r[:2] for r in rows], dtype=np.float64)
    _, codes, _ = expected_predictions(pets["model"], X)
    assert got[1:] == [net.classes[c] for c in codes]

    # the training file itself (header, ';', target column included): columns picked by name
    rc, out, _ = run(capsys, "predict", "--model", pets["model"], "--input", pets["csv"], "--output", "p.npy")
    assert rc == 0
    labels = np.load("p.npy", allow_pickle=False)
    assert labels.dtype.kind == "U" and len(labels) == 200 and set(labels) <= {"cat", "dog"}

    rc, out, _ = run(capsys, "predict", "--model", pets["model"], "--input", "new.csv", "--proba")
    assert out.splitlines()[0] == "p_cat,p_dog"

    rc, out, _ = run(capsys, "evaluate", "--model", pets["model"])  # finds pets.csv from the model
    assert rc == 0
    assert "pets.csv: 40 samples, the held-out test split" in out
    assert re.search(r"^cat\s", out, flags=re.M) and re.search(r"^dog\s", out, flags=re.M)


def test_evaluate_finds_the_csv_of_a_moved_project_folder(pets, tmp_path, monkeypatch, capsys):
    """Model files record the training file relative to their own folder, never where the disk had it."""
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "pets.csv").write_bytes(Path(pets["csv"]).read_bytes())
    (moved / "pets.npz").write_bytes(Path(pets["model"]).read_bytes())
    meta = load(moved / "pets.npz").metadata
    assert meta["dataset_source"] == "pets.csv" and meta["dataset_sha256"]
    assert str(tmp_path) not in json.dumps(meta)          # no absolute path anywhere in the record
    monkeypatch.chdir(tmp_path)
    original = Path(pets["csv"])
    backup = tmp_path / "original.csv"
    original.rename(backup)                     # the folder the model was made in no longer has it
    try:
        rc, out, err = run(capsys, "evaluate", "--model", moved / "pets.npz")
    finally:
        backup.rename(original)
    assert rc == 0 and err == ""
    assert "pets.csv: 40 samples, the held-out test split" in out


def test_evaluate_finds_the_csv_beside_a_model_moved_alone(pets, tmp_path, monkeypatch, capsys):
    """A model moved without its data folder: the file of the recorded name beside it is used, and said."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "pets.csv").write_bytes(Path(pets["csv"]).read_bytes())
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, "train", "--dataset", "data/pets.csv", "--epochs", "1", "--quiet",
                     "--output", "models/p.npz")
    assert rc == 0, err
    assert load(tmp_path / "models" / "p.npz").metadata["dataset_source"] == "../data/pets.csv"
    (tmp_path / "models" / "pets.csv").write_bytes((tmp_path / "data" / "pets.csv").read_bytes())
    (tmp_path / "data" / "pets.csv").unlink()
    rc, out, err = run(capsys, "evaluate", "--model", "models/p.npz")
    assert rc == 0 and "40 samples, the held-out test split" in out
    gone = os.path.normpath(tmp_path / "data" / "pets.csv")
    assert err.strip() == f"deepff: {gone} is gone; using {tmp_path / 'models' / 'pets.csv'}, found beside the model"


def test_regression_csv(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = np.clip(np.round(8 + 3 * X[:, 0] - 2 * X[:, 1]), 0, 20).astype(int)  # integers: looks like classes
    # the target is the second column, so it must be named
    write_csv("reg.csv", ["a", "score", "b", "c"], [[str(x[0]), str(t), str(x[1]), str(x[2])]
                                                    for x, t in zip(X, y)])

    rc, out, _ = run(capsys, "train", "--dataset", "reg.csv", "--target", "score", "--epochs", 1,
                     "--hidden", 8, "--output", "cls.npz")
    assert rc == 0 and "(classification;" in out  # what the inference alone would do

    rc, out, _ = run(capsys, "train", "--dataset", "reg.csv", "--target", "score", "--task", "regression",
                     "--epochs", 30, "--hidden", 16, "--lr", 0.01, "--output", "reg.npz")
    assert rc == 0 and "(regression;" in out
    for row in ("test mse", "test mae", "test r2"):
        assert np.isfinite(float(table_value(out, row)))
    net = load("reg.npz")
    assert net.task == "regression" and net.classes is None and net.n_outputs == 1

    rc, out, _ = run(capsys, "evaluate", "--model", "reg.npz", "--dataset", "reg.csv", "--target", "score",
                     "--json")
    rep = json.loads(out)
    assert set(rep) >= {"mse", "mae", "r2"}
    assert rep["mse"] > 0 and rep["mae"] > 0 and rep["r2"] > 0.5
    stored = net.metadata["results"]  # what train printed: evaluate re-creates the same test split
    assert rep["n_samples"] == 40
    for key in ("mse", "mae", "r2"):
        assert rep[key] == pytest.approx(stored["test_" + key], rel=1e-9)

    rc, out, _ = run(capsys, "evaluate", "--model", "reg.npz")  # file and target column from the model
    assert "reg.csv: 40 samples, the held-out test split" in out
    assert re.search(r"^mse\s", out, flags=re.M) and re.search(r"^r2\s", out, flags=re.M)

    write_csv("feat.csv", ["a", "b", "c"], X[:5].tolist())
    rc, out, _ = run(capsys, "predict", "--model", "reg.npz", "--input", "feat.csv")
    values = np.array(out.split()[1:], dtype=np.float64)
    assert values.shape == (5,) and np.isfinite(values).all()


# ------------------------------------------------------------ config files
CONFIG = {
    "layers": [
        {"layer_type": "input", "n_features": 64},
        {"layer_type": "fullyconn", "n_neurons": 16, "activation": "tanh"},
        {"layer_type": "output", "n_neurons": 10, "activation": "softmax", "loss_type": "neg_log_likelihood"},
    ],
    "training": {"epochs": 4, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.005}},
    "seed": 3,
}


def write_config(path, cfg=CONFIG):
    path = Path(path)
    if path.suffix == ".json":
        path.write_text(json.dumps(cfg))
    elif path.suffix == ".yaml":
        import yaml

        path.write_text(yaml.safe_dump(cfg))
    else:  # TOML by hand: arrays of inline tables
        layers = ",\n  ".join("{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in layer.items()) + "}"
                              for layer in cfg["layers"])
        tr = cfg["training"]
        opt = tr["optimizer"]
        path.write_text(f"seed = {cfg['seed']}\nlayers = [\n  {layers}\n]\n\n[training]\n"
                        f"epochs = {tr['epochs']}\nbatch_size = {tr['batch_size']}\n"
                        f"optimizer = {{name = \"{opt['name']}\", lr = {opt['lr']}}}\n")
    return path


@pytest.mark.parametrize("ext", ["yaml", "json", "toml"])
def test_config_file_with_flag_overrides(tmp_path, monkeypatch, capsys, ext):
    monkeypatch.chdir(tmp_path)
    write_config(f"net.{ext}")
    rc, out, _ = run(capsys, "train", "--config", f"net.{ext}", "--epochs", 2, "--lr", 0.01,
                     "--history", "h.json", "--output", "m.npz")
    assert rc == 0
    assert len(json.loads(Path("h.json").read_text())) == 2  # --epochs beat training.epochs
    assert "network 64-16-10" in out and "adam lr=0.01" in out and "batch 64" in out
    net = load("m.npz")
    assert net.layers[0].activation.name == "tanh"
    assert net.metadata["seed"] == 3  # the config's seed


def test_config_file_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_config("net.yaml")
    rc, out, _ = run(capsys, "train", "--config", "net.yaml", "--history", "h.csv", "--activation", "relu",
                     "--quiet", "--output", "m.npz")
    assert rc == 0
    assert len(Path("h.csv").read_text().strip().splitlines()) == 1 + 4  # training.epochs
    assert load("m.npz").layers[0].activation.name == "relu"


# ------------------------------------------------ summary, gradcheck, datasets
def test_summary_of_a_config(tmp_path, capsys):
    cfg = json.loads(json.dumps(CONFIG))
    cfg["layers"][1]["n_neurons"] = 128
    path = write_config(tmp_path / "net.json", cfg)
    rc, out, _ = run(capsys, "summary", "--config", path, "--batch-size", 7)
    assert rc == 0
    assert "(64, 128)" in out and "(128, 10)" in out and "(1, 128)" in out
    assert "(7, 64)" in out and "(7, 128)" in out and "(7, 10)" in out
    assert "tanh" in out and "softmax" in out
    assert "total parameters: 9610" in out  # 64*128 + 128 + 128*10 + 10


def test_summary_of_a_model(digits_run, capsys):
    rc, out, _ = run(capsys, "summary", "--model", digits_run["model"])
    assert rc == 0
    assert "(64, 128)" in out and "(128, 64)" in out and "(64, 10)" in out and "(32, 128)" in out
    assert "total parameters: 17226" in out  # 8320 + 8256 + 650


def test_gradcheck_on_a_config(tmp_path, capsys):
    path = write_config(tmp_path / "net.toml")
    rc, out, _ = run(capsys, "gradcheck", "--config", path)
    assert rc == 0
    assert re.search(r"^layer1\s+\S+e-\d+\s+ok$", out, flags=re.M)
    assert re.search(r"^layer2\s+\S+e-\d+\s+ok$", out, flags=re.M)
    assert "worst relative error" in out and "pass" in out
    # a sample count that would only exhaust the memory is refused in one line (it was killed at 24 GB)
    rc, out, err = run(capsys, "gradcheck", "--config", path, "--samples", 100_000_000)
    assert rc == 2 and out == "" and err == ("deepff gradcheck: error: argument --samples: at most 10000 samples "
                                             "(finite differences take two passes over them per parameter), got "
                                             "'100000000'\n")


def test_datasets_lists_digits_and_mnist(tmp_path, capsys):
    rc, out, _ = run(capsys, "datasets", "--data-dir", tmp_path)
    assert rc == 0
    assert re.search(r"^digits\s", out, flags=re.M) and re.search(r"^mnist\s", out, flags=re.M)
    assert str(tmp_path) in out


@pytest.mark.usefixtures("mnist_dir")
def test_train_on_mnist(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run(capsys, "train", "--dataset", "mnist", "--data-dir", MNIST_DIR, "--epochs", 1,
                     "--hidden", 32, "--quiet")
    assert rc == 0
    assert "mnist" in out and float(table_value(out, "test accuracy")) > 0.85
    net = load("deepff-mnist.npz")
    assert net.n_features == 784 and [layer.units for layer in net.layers] == [32, 10]
    assert net.training_config["batch_size"] == 128 and net.training_config["optimizer"]["lr"] == 1e-3
    # evaluate finds the same MNIST copy without --data-dir (no cache, no mirror to fall back on)
    monkeypatch.setenv("DEEPFF_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("DEEPFF_MNIST_MIRRORS", "http://127.0.0.1:9/")
    rc, out, err = run(capsys, "evaluate", "--model", "deepff-mnist.npz")
    assert rc == 0, err
    assert "10000 samples, the held-out test split" in out
    assert float(re.search(r"^accuracy: ([\d.]+)%", out, flags=re.M).group(1)) > 85


# ------------------------------------------------------------------- plots
def test_plots_of_a_classification_run(digits_run):
    d = digits_run["dir"]
    check_png(d / "curves.png")
    check_png(d / "curves-confusion.png")
    assert not (d / "curves-boundary.png").exists()  # 64 features: no decision boundary


def test_plots_of_a_two_feature_run(pets):
    d = pets["dir"]
    for name in ("pets.png", "pets-confusion.png", "pets-boundary.png"):
        check_png(d / name)


def test_plots_of_a_two_feature_regression(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(150, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    write_csv("wave.csv", ["u", "v", "y"], [[*map(str, x), str(t)] for x, t in zip(X, y)])
    rc, _, _ = run(capsys, "train", "--dataset", "wave.csv", "--epochs", 2, "--hidden", 8, "--plot",
                   "wave.png", "--quiet")
    assert rc == 0
    check_png("wave.png")
    check_png("wave-boundary.png")
    assert not Path("wave-confusion.png").exists()


# ------------------------------------------------------------ user errors
@pytest.fixture(scope="module")
def bad(tmp_path_factory, digits_run):
    """A folder of broken inputs; returns the format fields of ERROR_CASES."""
    d = tmp_path_factory.mktemp("bad")
    write_csv(d / "ok.csv", ["a", "b", "label"], [["1", "2", "x"], ["3", "4", "y"], ["5", "6", "x"]])
    (d / "binary.csv").write_bytes(b"\xff\xfe\x00\x81 not text \x00\x9c" * 20)
    (d / "empty.csv").write_text("")
    write_csv(d / "ragged.csv", ["a", "b", "label"], [["1", "2", "0"], ["3", "1"], ["5", "6", "1"]])
    write_csv(d / "nonnum.csv", ["a", "b", "label"], [["1", "2", "0"], ["3", "abc", "1"], ["5", "6", "1"]])
    write_csv(d / "nan.csv", ["a", "b", "label"], [["1", "2", "0"], ["nan", "4", "1"], ["5", "6", "1"]])
    write_csv(d / "three.csv", None, [["1", "2", "3"]])
    write_csv(d / "x_nan.csv", None, [["0"] * 63 + ["nan"]])
    write_csv(d / "x_text.csv", None, [["0"] * 63 + ["seven"], ["0"] * 64])
    np.save(d / "x_strings.npy", np.array([["a"] * 64]))
    (d / "broken.json").write_text('{"layers": [')
    (d / "broken.yaml").write_text("layers: [\n  - {layer_type: input\n")
    (d / "broken.toml").write_text("layers = [[[\n")
    (d / "unknown_key.yaml").write_text("layers: []\nlearning_rate: 3\n")
    (d / "bad_layer.json").write_text(json.dumps({"layers": [{"layer_type": "input", "n_features": 64},
                                                             {"layer_type": "output", "n_neurons": 0,
                                                              "activation": "softmax",
                                                              "loss_type": "nll"}]}))
    layers = CONFIG["layers"]
    (d / "bad_optimizer.json").write_text(json.dumps({"layers": layers, "training": {"optimizer": "adamm"}}))
    bad_act = json.loads(json.dumps(layers))
    bad_act[1]["activation"] = "rellu"
    (d / "bad_activation.json").write_text(json.dumps({"layers": bad_act}))
    bad_loss = json.loads(json.dumps(layers))
    bad_loss[2]["loss_type"] = "hinge_squared"
    (d / "bad_loss.json").write_text(json.dumps({"layers": bad_loss}))
    wrong_out = json.loads(json.dumps(layers))
    wrong_out[2]["n_neurons"] = 3
    (d / "wrong_outputs.json").write_text(json.dumps({"layers": wrong_out}))
    (d / "net.ini").write_text("[layers]\n")
    (d / "corrupt.npz").write_bytes(b"PK\x03\x04 this is not really a zip file" * 10)
    good = digits_run["model"].read_bytes()
    (d / "truncated.npz").write_bytes(good[: len(good) // 2])
    write_csv(d / "dup.csv", ["a", "a", "label"], [["1", "2", "0"], ["3", "4", "1"], ["5", "6", "0"]])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    write_csv(d / "reg.csv", ["a", "b", "t"], np.c_[X, 3 * X[:, 0]].round(4).tolist())  # some t < 0
    np.save(d / "x_only.npy", X)
    (d / "folder.npz").mkdir()
    return {"d": d, "model": digits_run["model"]}


ERROR_CASES = {
    # files
    "missing-data-file": "train --dataset {d}/missing.csv",
    "unreadable-csv": "train --dataset {d}/binary.csv",
    "empty-csv": "train --dataset {d}/empty.csv",
    "ragged-csv": "train --dataset {d}/ragged.csv",
    "non-numeric-feature": "train --dataset {d}/nonnum.csv",
    "nan-feature": "train --dataset {d}/nan.csv",
    "unknown-target-name": "train --dataset {d}/ok.csv --target nope",
    "target-index-out-of-range": "train --dataset {d}/ok.csv --target 7",
    "target-on-builtin": "train --target 3",
    "unknown-dataset": "train --dataset imagenet",
    "missing-mnist-dir": "train --dataset mnist --data-dir {d}/no_such_dir",
    "regression-on-strings": "train --dataset {d}/ok.csv --task regression",
    # flags
    "epochs-negative": "train --epochs -3",
    "epochs-zero": "train --epochs 0",
    "epochs-not-int": "train --epochs three",
    "hidden-zero": "train --hidden 0,5",
    "hidden-garbage": "train --hidden 12,x",
    "lr-negative": "train --lr -0.1",
    "lr-nan": "train --lr nan",
    "batch-size-zero": "train --batch-size 0",
    "validation-split-one": "train --validation-split 1",
    "seed-negative": "train --seed -1",
    "task-unknown": "train --task clustering",
    "unknown-flag": "train --bogus 3",
    "unknown-command": "fly --to moon",
    "history-extension": "train --history {d}/h.txt",
    "output-folder-missing": "train --output {d}/no/such/m.npz",
    "plot-extension": "train --plot {d}/p.jpg",
    "unknown-optimizer": "train --optimizer adamm",
    "unknown-activation": "train --activation rellu",
    "unknown-loss": "train --loss hinge_squared",
    # config files
    "config-missing": "train --config {d}/missing.yaml",
    "config-broken-json": "train --config {d}/broken.json",
    "config-broken-yaml": "train --config {d}/broken.yaml",
    "config-broken-toml": "train --config {d}/broken.toml",
    "config-unknown-key": "train --config {d}/unknown_key.yaml",
    "config-bad-layer": "train --config {d}/bad_layer.json",
    "config-extension": "train --config {d}/net.ini",
    "config-unknown-optimizer": "train --config {d}/bad_optimizer.json",
    "config-unknown-activation": "train --config {d}/bad_activation.json",
    "config-unknown-loss": "train --config {d}/bad_loss.json",
    "config-output-width": "train --config {d}/wrong_outputs.json",
    "summary-bad-config": "summary --config {d}/bad_activation.json",
    "gradcheck-broken-config": "gradcheck --config {d}/broken.json",
    "summary-nothing": "summary",
    # model files
    "model-missing": "evaluate --model {d}/missing.npz",
    "model-corrupt-evaluate": "evaluate --model {d}/corrupt.npz",
    "model-corrupt-predict": "predict --model {d}/corrupt.npz --input {d}/three.csv",
    "model-truncated": "summary --model {d}/truncated.npz",
    "model-not-a-model": "evaluate --model {d}/ok.csv",
    # predict inputs
    "predict-wrong-feature-count": "predict --model {model} --input {d}/three.csv",
    "predict-nan-input": "predict --model {model} --input {d}/x_nan.csv",
    "predict-non-numeric-input": "predict --model {model} --input {d}/x_text.csv",
    "predict-string-npy": "predict --model {model} --input {d}/x_strings.npy",
    "predict-missing-input": "predict --model {model} --input {d}/missing.csv",
    "predict-bad-extension": "predict --model {model} --input {d}/net.ini",
    "predict-output-extension": "predict --model {model} --input {d}/three.csv --output {d}/o.txt",
    "evaluate-wrong-feature-count": "evaluate --model {model} --dataset {d}/ok.csv",
    # found before training, not after
    "duplicate-column-names": "train --dataset {d}/dup.csv",
    "output-is-a-folder": "train --output {d}/folder.npz",
    "npy-without-target": "train --dataset {d}/x_only.npy",
    "mse-on-classes": "train --loss mse",
    "nll-on-a-regression": "train --dataset {d}/reg.csv --loss neg_log_likelihood",
    "bce-on-ten-classes": "train --loss binary_cross_entropy",
    "poisson-on-negative-targets": "train --dataset {d}/reg.csv --loss poisson",
    "classes-of-a-continuous-target": "train --dataset {d}/reg.csv --task classification",
    "lbfgs-with-lr": "train --optimizer lbfgs --lr 0.5",
    "datasets-missing-data-dir": "datasets --data-dir {d}/no_such_dir",
}


@pytest.mark.parametrize("args", ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_user_error_one_line_status_2(bad, capsys, args):
    rc, out, err = run(capsys, *args.format(**bad).split())
    assert rc == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), err
    assert lines[0].startswith("deepff") and "error:" in lines[0]
    assert "Traceback" not in err + out


def test_debug_raises_in_process(bad):
    with pytest.raises(DeepffError, match="not found"):
        cli.main(["--debug", "train", "--dataset", str(bad["d"] / "missing.csv")])
    with pytest.raises(DeepffError, match="epochs"):
        cli.main(["train", "--epochs", "-3", "--debug"])


@pytest.mark.parametrize("args", ["train --epochs -3", "train --dataset {d}/nonnum.csv",
                                  "evaluate --model {d}/corrupt.npz",
                                  "predict --model {model} --input {d}/three.csv"])
def test_user_error_in_a_real_process(bad, tmp_path, args):
    argv = args.format(**bad).split()
    proc = run_subprocess(*argv, cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and "error:" in proc.stderr
    assert "Traceback" not in proc.stderr
    debug = run_subprocess(*argv, "--debug", cwd=tmp_path)
    assert debug.returncode not in (0, 2)
    assert "Traceback (most recent call last)" in debug.stderr


def test_success_in_a_real_process(tmp_path):
    proc = run_subprocess("datasets", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "" and "mnist" in proc.stdout


# ------------------------------------------------------------------ Ctrl-C
@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery to a child needs POSIX")
def test_ctrl_c_stops_with_a_checkpoint(tmp_path):
    ckpt = tmp_path / "ck.npz"
    proc = subprocess.Popen([sys.executable, "-m", "deepff.cli", "train", "--epochs", "3000", "--hidden", "8",
                             "--checkpoint", str(ckpt), "--output", str(tmp_path / "m.npz"),
                             "--history", str(tmp_path / "h.json")],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ckpt.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted after" in err and "--resume" in err
    net, state, extra = load_checkpoint(ckpt)
    done = state["epoch"]
    assert 1 <= done < 3000 and len(state["history"]) == done
    assert net.n_features == 64 and extra["dataset"] == "digits"
    records = json.loads((tmp_path / "h.json").read_text())
    assert len(records) == done  # the run stopped early and said so
    assert load(tmp_path / "m.npz").n_features == 64  # the model is still saved
    assert "model saved to" in out

    # and the run continues from the final checkpoint (mid-epoch or not)
    proc = run_subprocess("train", "--epochs", done + 1, "--hidden", 8, "--resume", ckpt, "--history",
                          tmp_path / "h2.json", "--output", tmp_path / "m2.npz", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [r["epoch"] for r in json.loads((tmp_path / "h2.json").read_text())] == list(range(1, done + 2))


def test_a_diverging_run_never_replaces_a_good_checkpoint_with_one_that_cannot_resume(tmp_path, monkeypatch,
                                                                                       capsys):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, "train", "--hidden", 4, "--epochs", 1, "--checkpoint", "g.npz", "--quiet",
                     "--output", "a.npz")
    assert rc == 0, err
    for epochs in (1, 3):     # the first epoch's last update overflows: nothing finite to save after it
        rc, _, err = run(capsys, "train", "--hidden", 4, "--epochs", epochs, "--optimizer", "sgd", "--lr", "1e308",
                         "--checkpoint", "g.npz", "--quiet", "--output", "b.npz")
        assert rc == 2 and len(err.splitlines()) == 1 and "diverged" in err, err
    net, state, _ = load_checkpoint("g.npz")   # still the good one, and it resumes
    assert state["epoch"] == 1 and np.isfinite(net.get_weights()).all()
    rc, _, err = run(capsys, "train", "--resume", "g.npz", "--epochs", 2, "--quiet", "--output", "c.npz")
    assert rc == 0, err
    # a run that does replace it says so, once, when it does
    rc, _, err = run(capsys, "train", "--hidden", 4, "--epochs", 2, "--checkpoint", "g.npz", "--quiet",
                     "--output", "d.npz")
    assert rc == 0 and err == "deepff: replacing existing checkpoint file g.npz\n"
    assert load_checkpoint("g.npz")[1]["epoch"] == 2


def test_running_out_of_memory_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def fit(*args, **kwargs):
        raise MemoryError("Unable to allocate 26.8 GiB for an array with shape (60000, 60000)")

    monkeypatch.setattr("deepff.model.Network.fit", fit)
    rc, out, err = run(capsys, "train", "--epochs", 1, "--quiet", "--output", "m.npz")
    assert rc == 2 and err == ("deepff: error: not enough memory (Unable to allocate 26.8 GiB for an array with "
                               "shape (60000, 60000)); use a smaller network, batch or data set\n")
    assert not (tmp_path / "m.npz").exists()


def test_diverging_run_reports_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status = cli.main(["train", "--optimizer", "sgd", "--lr", "1000", "--epochs", "2", "--quiet",
                       "--output", str(tmp_path / "m.npz")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2
    assert len(lines) == 1, err  # no numpy RuntimeWarnings around the error
    assert "diverged" in lines[0] and "epoch 1" in lines[0] and "lower learning rate" in lines[0]
    assert "nothing was saved" in lines[0] and "weights were" not in lines[0]   # kept weights die with the run
    # with --checkpoint the message names the epoch the checkpoint holds (the schedule grows lr 4x an epoch)
    Path("grow.yaml").write_text("layers:\n - {layer_type: input, n_features: 64}\n"
                                 " - {layer_type: fullyconn, n_neurons: 8, activation: relu}\n"
                                 " - {layer_type: output, n_neurons: 10, activation: softmax, loss_type: nll}\n"
                                 "training: {epochs: 40, optimizer: {name: sgd, lr: 0.5},"
                                 " schedule: {name: exponential, gamma: 4}}\n")
    rc, out, err = run(capsys, "train", "--config", "grow.yaml", "--checkpoint", "ck.npz", "--quiet",
                       "--output", "g.npz")
    assert rc == 2 and len(err.splitlines()) == 1, err
    done = load_checkpoint("ck.npz")[1]["epoch"]
    assert done >= 1 and f"the checkpoint ck.npz holds epoch {done}. Try a lower learning rate" in err
    assert not (tmp_path / "m.npz").exists()
    (tmp_path / "folder.csv").mkdir()
    assert run(capsys, "train", "--epochs", 1, "--hidden", 4, "--quiet", "--output", "m.npz")[0] == 0
    rc, out, err = run(capsys, "predict", "--model", "m.npz", "--input", "folder.csv")
    assert rc == 2 and err == "deepff: error: --input folder.csv is a folder; give the file of feature rows itself\n"


def test_poisson_regression_gets_an_exp_output(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0] + 0.2))
    path = tmp_path / "counts.csv"
    np.savetxt(path, np.c_[X, y], delimiter=",", header="a,b,c,count", comments="", fmt="%.6g")
    monkeypatch.chdir(tmp_path)
    status = cli.main(["train", "--dataset", str(path), "--target", "count", "--task", "regression",
                       "--loss", "poisson", "--epochs", "5", "--quiet", "--output", str(tmp_path / "m.npz")])
    assert status == 0, capsys.readouterr().err
    from deepff import load

    net = load(tmp_path / "m.npz")
    assert net.output.activation.name == "exp" and net.loss.name == "poisson" and net.fused
    assert (net.predict_output(np.zeros((2, 3))) > 0).all()


# ------------------------------------------------- nothing saved is lost
def one_error_line(err):
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepff: error:") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """The user's own files: data sets, a config, a model and a checkpoint (1-epoch, 8-unit runs)."""
    d = tmp_path_factory.mktemp("own")
    X, y = load_digits_dataset()
    np.savez(d / "data.npz", X=X[:300], y=y[:300])
    write_csv(d / "data.csv", [f"p{i}" for i in range(64)] + ["label"],
              np.c_[X[:300], y[:300]].astype(int).tolist())
    write_csv(d / "in.csv", None, X[:3].astype(int).tolist())
    (d / "cfg.json").write_text(json.dumps(CONFIG))
    run_quiet("train", "--epochs", 1, "--hidden", 8, "--quiet", "--output", d / "m.npz", "--checkpoint",
              d / "ck.npz")
    return d


OVERWRITES = {
    "output-is-the-dataset": ("train --dataset {d}/data.npz --output {d}/data.npz", "data.npz"),
    "history-is-the-dataset": ("train --dataset {d}/data.csv --history {d}/data.csv", "data.csv"),
    "history-is-the-config": ("train --config {d}/cfg.json --history {d}/cfg.json", "cfg.json"),
    "predictions-are-the-input": ("predict --model {d}/m.npz --input {d}/in.csv --output {d}/in.csv", "in.csv"),
    "output-is-the-checkpoint-resumed": ("train --resume {d}/ck.npz --epochs 2 --output {d}/ck.npz", "ck.npz"),
    "checkpoint-is-the-output": ("train --checkpoint {d}/m.npz --output {d}/m.npz", "m.npz"),
    "output-is-someone-elses-npz": ("train --output {d}/data.npz", "data.npz"),
    "output-is-a-checkpoint": ("train --output {d}/ck.npz", "ck.npz"),
}


@pytest.mark.parametrize("case", sorted(OVERWRITES))
def test_outputs_never_replace_the_users_files(user_files, capsys, case):
    command, victim = OVERWRITES[case]
    before = (user_files / victim).read_bytes()
    rc, out, err = run(capsys, *command.format(d=user_files).split())
    line = one_error_line(err)
    assert rc == 2 and "epochs" not in out  # refused before any training
    assert victim in line and ("same file" in line or "will not replace" in line)
    assert (user_files / victim).read_bytes() == before


def test_write_protected_output_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "kept.npz"
    run_quiet("train", "--epochs", 1, "--hidden", 8, "--quiet", "--output", out)
    before = out.read_bytes()
    os.chmod(out, 0o444)
    rc, stdout, err = run(capsys, "train", "--epochs", 1, "--hidden", 8, "--output", out)
    line = one_error_line(err)
    assert rc == 2 and "write-protected" in line and f"--output {out}" in line
    assert "epoch" not in stdout and out.read_bytes() == before


def test_output_problems_are_found_before_training_and_name_the_users_path(tmp_path, capsys):
    (tmp_path / "out.npz").mkdir()
    rc, stdout, err = run(capsys, "train", "--epochs", 1, "--hidden", 8, "--output", tmp_path / "out.npz")
    line = one_error_line(err)
    assert rc == 2 and "epoch" not in stdout
    assert f"--output {tmp_path / 'out.npz'}: is a folder" in line and ".tmp" not in line


def test_replacing_an_existing_model_is_said_on_stderr(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, "train", "--epochs", 1, "--hidden", 8, "--quiet")
    assert rc == 0 and err == ""
    first = Path("deepff-digits.npz").read_bytes()
    rc, _, err = run(capsys, "train", "--epochs", 1, "--hidden", 8, "--quiet", "--seed", 1)
    assert rc == 0 and err == "deepff: replacing existing model file deepff-digits.npz\n"
    assert Path("deepff-digits.npz").read_bytes() != first


def test_a_refused_save_says_nothing_of_replacing_and_keeps_the_old_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, "train", "--epochs", 1, "--hidden", 8, "--quiet", "--output", "keep.npz")
    assert rc == 0, err
    before = Path("keep.npz").read_bytes()
    rng = np.random.default_rng(0)
    np.savez("ycplx.npz", X=rng.normal(size=(60, 3)), y=(np.arange(60) % 2) + 1j)   # labels JSON cannot hold
    rc, _, err = run(capsys, "train", "--dataset", "ycplx.npz", "--epochs", 1, "--quiet", "--output", "keep.npz")
    assert rc == 2 and err == "deepff: error: cannot save: class labels must be texts, numbers or booleans, got 1j\n"
    assert Path("keep.npz").read_bytes() == before


@pytest.mark.skipif(os.name != "posix", reason="needs os.pipe semantics")
def test_closed_stdout_pipe_still_trains_and_saves(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (``| head -1``) has gone before the first line
    try:
        proc = subprocess.run([sys.executable, "-m", "deepff.cli", "train", "--epochs", "3", "--hidden", "8",
                               "--output", str(tmp_path / "pipe.npz")], cwd=tmp_path, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == ""
    assert load(tmp_path / "pipe.npz").metadata["results"]["test_accuracy"] > 0



@pytest.mark.skipif(os.name != "posix", reason="needs os.pipe semantics")
def test_closed_pipe_behind_both_streams_still_replaces_the_model(tmp_path):
    """``deepff train ... 2>&1 | head -1``: the "replacing" note on stderr must not end the run before the save."""
    out = tmp_path / "pipe.npz"
    run_quiet("train", "--epochs", 1, "--hidden", 8, "--quiet", "--output", out)
    old = out.read_bytes()
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "deepff.cli", "train", "--epochs", "2", "--hidden", "8",
                               "--seed", "1", "--output", str(out)], cwd=tmp_path, stdout=write_end,
                              stderr=write_end, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 0
    assert out.read_bytes() != old and load(out).training_config["epochs"] == 2


# --------------------------------------------------------------- evaluate
@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_evaluate_recreates_the_split_of_array_files(tmp_path, capsys, kind):
    X, y = load_digits_dataset()
    if kind == "npy":
        np.save(tmp_path / "d.npy", np.c_[y, X])
        flags = ["--dataset", tmp_path / "d.npy", "--target", 0]
    else:
        np.savez(tmp_path / "d.npz", X=X, y=y)
        flags = ["--dataset", tmp_path / "d.npz"]
    run_quiet("train", *flags, "--epochs", 2, "--hidden", 16, "--quiet", "--output", tmp_path / "m.npz")
    rc, out, err = run(capsys, "evaluate", "--model", tmp_path / "m.npz", "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["split"] == "test" and rep["n_samples"] == 359
    assert rep["accuracy"] == pytest.approx(load(tmp_path / "m.npz").metadata["results"]["test_accuracy"])


def test_evaluate_recognises_the_training_file_by_content(pets, tmp_path, capsys):
    other = tmp_path / "pets.csv"  # same name, other rows
    write_csv(other, ["weight", "height", "animal"], pets_rows(n=50, seed=7), delimiter=";")
    rc, out, _ = run(capsys, "evaluate", "--model", pets["model"], "--dataset", other, "--json")
    assert rc == 0 and json.loads(out)["split"] == "all" and json.loads(out)["n_samples"] == 50
    copy = tmp_path / "renamed.csv"  # same rows, other name
    copy.write_bytes(pets["csv"].read_bytes())
    rc, out, _ = run(capsys, "evaluate", "--model", pets["model"], "--dataset", copy, "--json")
    assert rc == 0 and json.loads(out)["split"] == "test"


def test_evaluate_of_a_model_without_a_digest_goes_by_name_and_says_so(pets, tmp_path, capsys):
    net = load(pets["model"])
    old = {k: v for k, v in net.metadata.items() if k not in ("dataset_sha256", "target", "delimiter")}
    old["dataset_source"] = str(pets["csv"])      # as models of that time recorded it: an absolute path
    from deepff import save

    save(net, tmp_path / "old.npz", metadata=old)
    rc, out, err = run(capsys, "evaluate", "--model", tmp_path / "old.npz", "--json")
    assert rc == 0 and json.loads(out)["split"] == "test"
    assert "records no digest" in err and len(err.splitlines()) == 1


def test_headerless_csv_keeps_its_first_row(tmp_path, capsys):
    rows = [[f"{w}", f"{h}", a] for w, h, a in pets_rows(n=100)]
    write_csv(tmp_path / "nohdr.csv", None, rows)
    rc, out, err = run(capsys, "train", "--dataset", tmp_path / "nohdr.csv", "--epochs", 1, "--hidden", 8,
                       "--output", tmp_path / "m.npz")
    assert rc == 0, err
    assert "80 training samples" in out  # 100 rows, none taken for a header
    meta = load(tmp_path / "m.npz").metadata
    assert meta["feature_names"] == ["col0", "col1"] and meta["target_name"] == "col2"
    rc, out, err = run(capsys, "evaluate", "--model", tmp_path / "m.npz", "--json")
    assert rc == 0, err
    assert json.loads(out)["n_samples"] == 20 and json.loads(out)["split"] == "test"


def test_predict_refuses_a_header_with_repeated_feature_names(pets, tmp_path, capsys):
    write_csv(tmp_path / "x.csv", ["weight", "height", "height"], [["3", "40", "50"]])
    rc, _, err = run(capsys, "predict", "--model", pets["model"], "--input", tmp_path / "x.csv")
    assert rc == 2 and "'height'" in one_error_line(err) and "unique" in err


# ------------------------------------------------------------ loss and task
def test_binary_cross_entropy_on_two_classes(pets, tmp_path, capsys):
    rc, _, err = run(capsys, "train", "--dataset", pets["csv"], "--loss", "bce", "--epochs", 20, "--hidden", 8,
                     "--lr", 0.05, "--quiet", "--output", tmp_path / "b.npz")
    assert rc == 0, err
    net = load(tmp_path / "b.npz")
    assert net.n_outputs == 1 and net.loss.name == "binary_cross_entropy" and net.classes == ["cat", "dog"]
    rc, out, _ = run(capsys, "predict", "--model", tmp_path / "b.npz", "--input", pets["csv"], "--proba")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["p_cat", "p_dog"] and len(rows) == 201
    assert all(float(a) + float(b) == pytest.approx(1) for a, b in rows[1:])
    rc, out, _ = run(capsys, "evaluate", "--model", tmp_path / "b.npz", "--json")
    rep = json.loads(out)
    assert rc == 0 and rep["classes"] == ["cat", "dog"] and rep["accuracy"] > 0.8


@pytest.mark.parametrize(("args", "expected"), [
    ("--loss mse", "valid losses for classification: binary_cross_entropy, neg_log_likelihood"),
    ("--dataset {d}/reg.csv --loss nll", "valid losses for regression: huber, mae, mse, poisson"),
    ("--dataset {d}/reg.csv --loss poisson", "poisson needs non-negative counts"),
    ("--dataset {d}/reg.csv --task classification", "looks continuous"),
])
def test_loss_and_task_must_suit_the_target(bad, capsys, args, expected):
    rc, out, err = run(capsys, "train", *args.format(**bad).split(), "--output", bad["d"] / "never.npz")
    assert rc == 2 and expected in one_error_line(err) and "epoch" not in out
    assert not (bad["d"] / "never.npz").exists()


def test_gradcheck_of_a_poisson_network(tmp_path, capsys):
    (tmp_path / "p.json").write_text(json.dumps({"layers": [
        {"layer_type": "input", "n_features": 4},
        {"layer_type": "fullyconn", "n_neurons": 5, "activation": "tanh"},
        {"layer_type": "output", "n_neurons": 1, "activation": "exp", "loss_type": "poisson"}]}))
    rc, out, err = run(capsys, "gradcheck", "--config", tmp_path / "p.json")
    assert rc == 0, err + out
    assert "pass" in out


# -------------------------------------------------------- messages, flags
def test_messages_name_command_line_flags(bad, capsys):
    rc, _, err = run(capsys, "train", "--dataset", bad["d"] / "x_only.npy")
    assert rc == 2 and "--target" in one_error_line(err)
    write_csv(bad["d"] / "semi.csv", ["a", "b", "label"], [["1", "2", "0"], ["3", "4", "1"], ["5", "6", "0"]],
              delimiter=";")
    rc, _, err = run(capsys, "train", "--dataset", bad["d"] / "semi.csv", "--delimiter", ",")
    assert rc == 2 and "--delimiter" in one_error_line(err)
    rc, _, err = run(capsys, "train", "--optimizer", "lbfgs", "--lr", "0.5")
    assert rc == 2 and "--lr does not apply to --optimizer lbfgs" in one_error_line(err)


def test_delimiter_flag_is_used_and_remembered(tmp_path, capsys):
    write_csv(tmp_path / "p.csv", ["weight", "height", "animal"], pets_rows(), delimiter="|")
    rc, _, err = run(capsys, "train", "--dataset", tmp_path / "p.csv", "--delimiter", "|", "--epochs", 1,
                     "--hidden", 8, "--quiet", "--output", tmp_path / "m.npz")
    assert rc == 0, err
    rc, out, err = run(capsys, "evaluate", "--model", tmp_path / "m.npz", "--json")
    assert rc == 0 and json.loads(out)["split"] == "test", err


def test_header_shows_the_real_learning_rate_and_lbfgs_says_what_it_does(tmp_path, capsys):
    rc, out, _ = run(capsys, "train", "--optimizer", "sgd", "--epochs", 1, "--hidden", 8,
                     "--output", tmp_path / "s.npz")
    assert rc == 0 and "sgd lr=0.01, batch 32, 1 epochs" in out.splitlines()[0]
    rc, out, _ = run(capsys, "train", "--optimizer", "lbfgs", "--hidden", 4, "--output", tmp_path / "l.npz")
    assert rc == 0
    assert "lbfgs full batch, at most 200 iterations" in out.splitlines()[0]
    assert out.count("counting its iterations as epochs") == 1
    # with a schedule the header says the lr is where it starts
    (tmp_path / "cos.yaml").write_text("layers:\n - {layer_type: input, n_features: 64}\n"
                                       " - {layer_type: fullyconn, n_neurons: 8, activation: relu}\n"
                                       " - {layer_type: output, n_neurons: 10, activation: softmax, loss_type: nll}\n"
                                       "training: {epochs: 1, optimizer: {name: sgd, lr: 0.05},"
                                       " schedule: {name: cosine}}\n")
    rc, out, _ = run(capsys, "train", "--config", tmp_path / "cos.yaml", "--output", tmp_path / "c.npz")
    assert rc == 0 and "sgd lr=0.05 (cosine schedule), batch 32, 1 epochs" in out.splitlines()[0]


def test_datasets_says_whether_each_data_set_is_present(tmp_path, capsys):
    rc, out, _ = run(capsys, "datasets", "--data-dir", tmp_path)
    assert rc == 0
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["name", "present"]
    assert {r.split()[0]: r.split()[1] for r in rows} == {"digits": "yes", "mnist": "no"}
    assert str(tmp_path) in out


def test_evaluating_a_regression_model_on_text_labels_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X.sum(axis=1)
    rows = "".join(f"{a},{b},{c},{t}\n" for (a, b, c), t in zip(X, y))
    Path("reg.csv").write_text("a,b,c,y\n" + rows)
    labels = "".join(f"{a},{b},{c},{'outer' if t > 0 else 'inner'}\n" for (a, b, c), t in zip(X, y))
    Path("labels.csv").write_text("a,b,c,y\n" + labels)
    assert run(capsys, "train", "--dataset", "reg.csv", "--target", "y", "--epochs", 1, "--quiet",
               "--output", "r.npz")[0] == 0
    rc, out, err = run(capsys, "evaluate", "--model", "r.npz", "--dataset", "labels.csv")
    assert rc == 2 and out == ""
    assert err == ("deepff: error: r.npz is a regression model, but the target column 'y' holds "
                   "non-numeric values; give its numeric target with --target\n")


def test_header_flag_and_its_memory(tmp_path, monkeypatch, capsys):
    """--header yes reads a header of numbers; evaluate re-reads the file the same way."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3)).round(3)
    y = (X[:, 0] > 0).astype(int)
    rows = "".join(f"{a},{b},{c},{t}\n" for (a, b, c), t in zip(X, y))
    Path("spectra.csv").write_text("400,450,500,600\n" + rows)
    rc, out, err = run(capsys, "train", "--dataset", "spectra.csv", "--header", "yes", "--epochs", 1,
                       "--quiet", "--output", "m.npz")
    assert rc == 0, err
    net = load("m.npz")
    assert net.metadata["target_name"] == "600" and net.metadata["feature_names"] == ["400", "450", "500"]
    rc, out, err = run(capsys, "evaluate", "--model", "m.npz")
    assert rc == 0, err
    assert "16 samples, the held-out test split" in out       # 80 rows, not 81


def test_many_text_classes_are_classes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2)).round(3)
    rows = "".join(f"{a},{b},person{i % 60}\n" for i, (a, b) in enumerate(X))
    Path("names.csv").write_text("x1,x2,who\n" + rows)
    rc, out, err = run(capsys, "train", "--dataset", "names.csv", "--epochs", 1, "--quiet",
                       "--test-fraction", "0.1", "--output", "n.npz")
    assert rc == 0, err
    assert len(load("n.npz").classes) == 60


def test_an_interrupted_lbfgs_run_resumes(tmp_path, monkeypatch, capsys):
    """L-BFGS counts iterations as epochs: a resumed run is not refused for its --epochs."""
    monkeypatch.chdir(tmp_path)
    base = ["train", "--optimizer", "lbfgs", "--hidden", "4", "--quiet"]
    assert run(capsys, *base, "--checkpoint", "ck.npz", "--output", "a.npz")[0] == 0
    rc, out, err = run(capsys, "train", "--resume", "ck.npz", "--quiet", "--output", "b.npz")
    assert rc == 0, err


def test_evaluate_names_a_split_record_it_cannot_use(tmp_path, monkeypatch, capsys, digits_run):
    monkeypatch.chdir(tmp_path)
    net = load(digits_run["model"])
    from deepff.io import save

    save(net, "edited.npz", metadata={**net.metadata, "seed": "run-7"})
    rc, out, err = run(capsys, "evaluate", "--model", "edited.npz")
    assert rc == 2 and out == "" and len(err.splitlines()) == 1
    assert "records the split as seed 'run-7'" in err


def test_a_class_weight_run_resumes(tmp_path, monkeypatch, capsys):
    """The checkpoint's JSON turned class_weight's keys into text; resume reads them back as indexes."""
    monkeypatch.chdir(tmp_path)
    Path("cw.yaml").write_text(
        "layers:\n - {layer_type: input, n_features: 64}\n"
        " - {layer_type: fullyconn, n_neurons: 8, activation: relu}\n"
        " - {layer_type: output, n_neurons: 10, activation: softmax, loss_type: nll}\n"
        "training: {epochs: 2, class_weight: {3: 2.0}}\n")
    assert run(capsys, "train", "--config", "cw.yaml", "--checkpoint", "ck.npz", "--output", "a.npz",
               "--quiet")[0] == 0
    rc, out, err = run(capsys, "train", "--resume", "ck.npz", "--epochs", 3, "--output", "b.npz", "--quiet")
    assert rc == 0, err
    assert load("b.npz").training_config["class_weight"] == {"3": 2.0}   # JSON keys, as saved


def test_class_weight_may_name_classes_by_their_labels(tmp_path, monkeypatch, capsys):
    """A config's class_weight is keyed by the target's labels, as the CSV writes them."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3)).round(3)
    y = np.where(X[:, 0] > 0.8, "rare", "common")
    write_csv("d.csv", ["a", "b", "c", "label"], [[*r, t] for r, t in zip(X, y)])
    layers = ("layers:\n - {layer_type: input, n_features: 3}\n"
              " - {layer_type: fullyconn, n_neurons: 8, activation: relu}\n"
              " - {layer_type: output, n_neurons: 2, activation: softmax, loss_type: nll}\n")
    for name, cw in (("named", "{rare: 5.0}"), ("quoted", "{'rare': 5.0, common: 1}"), ("none", "null"),
                     ("typo", "{rar: 5.0}")):
        Path(f"{name}.yaml").write_text(layers + f"training: {{epochs: 2, class_weight: {cw}}}\n")
    for name in ("named", "quoted", "none"):
        rc, out, err = run(capsys, "train", "--dataset", "d.csv", "--config", f"{name}.yaml",
                           "--output", f"{name}.npz", "--quiet")
        assert rc == 0, err
    assert load("named.npz").classes == ["common", "rare"]
    np.testing.assert_array_equal(load("named.npz").get_weights(), load("quoted.npz").get_weights())
    assert not np.array_equal(load("named.npz").get_weights(), load("none.npz").get_weights())
    rc, out, err = run(capsys, "train", "--dataset", "d.csv", "--config", "typo.yaml", "--output", "t.npz")
    assert rc == 2 and len(err.splitlines()) == 1 and not Path("t.npz").exists()
    assert "class_weight names class 'rar'" in err and "'common', 'rare'" in err
    # numeric labels are matched as labels, never as indexes: -1/0/1 and wine's 1/2/3
    assert cli_train._class_weight({"-1": 2.0, 1: 5.0}, [-1, 0, 1]) == {0: 2.0, 2: 5.0}
    assert cli_train._class_weight({1: 5.0, "3": 2.0}, [1.0, 2.0, 3.0]) == {0: 5.0, 2: 2.0}
    with pytest.raises(DeepffError, match="class_weight names class '0', which the target does not hold; "
                                          "its classes are '1', '2', '3'"):
        cli_train._class_weight({0: 5.0}, [1, 2, 3])
    # a regression refuses class_weight before anything is printed (no "replacing" note for a kept file)
    Path("r.csv").write_text("a,b,c,t\n" + "".join(f"{r[0]},{r[1]},{r[2]},{r.sum():.3f}\n" for r in X))
    Path("reg.yaml").write_text(layers.replace("n_neurons: 2, activation: softmax, loss_type: nll",
                                               "n_neurons: 1, activation: linear, loss_type: mse")
                                + "training: {epochs: 2, class_weight: {0: 5.0}}\n")
    before = Path("none.npz").read_bytes()
    rc, out, err = run(capsys, "train", "--dataset", "r.csv", "--config", "reg.yaml", "--output", "none.npz")
    assert (rc, out) == (2, "") and err == ("deepff: error: class_weight weighs classes, but this run is a "
                                            "regression; drop it from the config\n")
    assert Path("none.npz").read_bytes() == before


def test_predict_knows_the_models_own_column_names(tmp_path, monkeypatch, capsys):
    """Headers of numbers ("400") or years ("2019") are the model's feature names, not a data row."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).round(3)
    y = np.where(X[:, 0] > 0, "yes", "no")
    Path("years.csv").write_text("temp,2019,2020,label\n" + "".join(
        f"{a},{b},{c},{t}\n" for (a, b, c), t in zip(X, y)))
    Path("new.csv").write_text("2019,temp,2020\n" + "".join(f"{b},{a},{c}\n" for a, b, c in X[:3]))
    assert run(capsys, "train", "--dataset", "years.csv", "--epochs", 1, "--quiet", "--output", "m.npz")[0] == 0
    rc, out, err = run(capsys, "predict", "--model", "m.npz", "--input", "years.csv")
    assert rc == 0, err
    assert len(out.splitlines()) == 61
    rc, reordered, err = run(capsys, "predict", "--model", "m.npz", "--input", "new.csv")
    assert rc == 0, err
    assert reordered.splitlines() == out.splitlines()[:4]          # columns matched by name


def test_predict_warns_of_raw_pixels_for_an_mnist_model(tmp_path, monkeypatch, capsys):
    """An MNIST model was trained on pixels / 255; 0..255 input gives confident nonsense, so say so."""
    monkeypatch.chdir(tmp_path)
    import deepff

    net = deepff.Network([deepff.Dense(8, "relu"), deepff.Dense(10, "softmax")], loss="nll", n_features=784,
                         seed=0)
    deepff.save(net, "mnist.npz", metadata={"dataset": "mnist"}, classes=list(range(10)))
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 784)).astype(np.float32)
    np.save("raw.npy", pixels)
    np.save("scaled.npy", pixels / 255)
    rc, out, err = run(capsys, "predict", "--model", "mnist.npz", "--input", "raw.npy")
    assert rc == 0 and out.splitlines()[0] == "prediction" and len(out.splitlines()) == 4   # still predicts
    assert err == ("deepff: warning: raw.npy holds values up to 255, but this model was trained on MNIST pixels "
                   "scaled to [0, 1]: divide them by 255 first\n")
    rc, out, err = run(capsys, "predict", "--model", "mnist.npz", "--input", "scaled.npy")
    assert rc == 0 and err == ""


def test_predict_names_the_row_and_column_of_a_bad_cell(tmp_path, monkeypatch, capsys):
    """The message points at the cell: data row, file line and column (its header name, or colN), worded as
    training's reader words it: predict reads through the same function."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).round(3)
    write_csv("d.csv", ["a", "b", "c", "label"], [[*r, "yes" if r[0] > 0 else "no"] for r in X])
    assert run(capsys, "train", "--dataset", "d.csv", "--epochs", 1, "--quiet", "--output", "m.npz")[0] == 0
    how = " (a number is written with the digits 0-9, an optional sign, decimal point and exponent)"
    cases = {"1,2,3\n4,x,6\n": "data row 2 (line 2), column 'col1': non-numeric value 'x'" + how,
             "a,b,c\n1,2,\n": "data row 1 (line 2), column 'c': empty cell (missing values are not allowed)",
             "c,a,b\n1,2,3\n1,2,\n": "data row 2 (line 3), column 'b': empty cell (missing values are not "
                                    "allowed)",   # the file's column, by name
             "1,2,3\n4,5\n": "line 2 has 2 fields, expected 3 like the first row (delimiter ',')",
             # float() takes these; a data file does not mean them (training's load_csv refuses them too)
             "1_0,2,3\n": "data row 1 (line 1), column 'col0': non-numeric value '1_0'" + how,
             "1,2,3\n4,\u0661,6\n": "data row 2 (line 2), column 'col1': non-numeric value '\u0661'" + how}
    for i, (text, message) in enumerate(cases.items()):
        Path(f"in{i}.csv").write_text(text, encoding="utf-8")
        rc, out, err = run(capsys, "predict", "--model", "m.npz", "--input", f"in{i}.csv")
        assert rc == 2 and out == "" and err == f"deepff: error: in{i}.csv: {message}\n"


def test_outputs_never_replace_a_file_deepff_did_not_write(tmp_path, monkeypatch, capsys):
    """--history, --plot (and the plots written beside it) and predict --output: a user's file is refused,
    untouched; a file an earlier deepff run wrote is replaced, with a note."""
    monkeypatch.chdir(tmp_path)
    Path("precious.csv").write_text("my,precious\n1,2\n")
    Path("notes.json").write_text('{"a": 1}')
    import matplotlib.pyplot as plt
    fig = plt.figure()
    fig.savefig("photo.png")
    fig.savefig("own-confusion.png")
    plt.close(fig)
    kept = {p: Path(p).read_bytes() for p in ("precious.csv", "notes.json", "photo.png", "own-confusion.png")}
    base = ["train", "--epochs", 1, "--hidden", 8, "--quiet", "--output", "m.npz"]
    for flags, message in (
            (["--history", "precious.csv"], "--history precious.csv exists and is not a deepff history file"),
            (["--history", "notes.json"], "--history notes.json exists and is not a deepff history file"),
            (["--plot", "photo.png"], "--plot photo.png exists and is not a deepff plot file"),
            (["--plot", "own.png"], "--plot own-confusion.png exists and is not a deepff plot file")):
        rc, out, err = run(capsys, *base, *flags)
        assert (rc, out) == (2, "") and len(err.splitlines()) == 1 and err.startswith(f"deepff: error: {message}")
        assert err.endswith(f"deepff will not replace it: remove it or choose another {flags[0]}\n")
    assert {p: Path(p).read_bytes() for p in kept} == kept and not Path("m.npz").exists()
    for _ in range(2):      # the second run replaces what the first wrote
        rc, out, err = run(capsys, *base, "--history", "h.csv", "--plot", "c.png")
        assert rc == 0, err
    assert "replacing existing history file h.csv" in err and "replacing existing plot file c-confusion.png" in err
    # figures that a run does not draw are not its business: a regression on 3 features draws neither
    rng = np.random.default_rng(0)
    write_csv("reg.csv", ["a", "b", "c", "t"], rng.normal(size=(40, 4)).round(3).tolist())
    fig = plt.figure()
    fig.savefig("mine-boundary.png")
    plt.close(fig)
    undrawn = {p: Path(p).read_bytes() for p in ("own-confusion.png", "mine-boundary.png")}
    for plot in ("own.png", "mine.png"):
        rc, out, err = run(capsys, "train", "--dataset", "reg.csv", "--epochs", 1, "--quiet", "--output", "r.npz",
                           "--plot", plot)
        assert rc == 0 and "own-confusion" not in err and "mine-boundary" not in err, err
    assert {p: Path(p).read_bytes() for p in undrawn} == undrawn

    Path("x.csv").write_text("".join(",".join(["0"] * 64) + "\n" for _ in range(3)))
    predict = ["predict", "--model", "m.npz", "--input", "x.csv", "--output"]
    rc, out, err = run(capsys, *predict, "precious.csv")
    assert rc == 2 and "--output precious.csv exists and is not a deepff predictions file" in err
    np.save("labels.npy", np.array([7, 1, 3]))                  # data shaped like the predictions
    rc, out, err = run(capsys, *predict, "labels.npy")
    assert rc == 2 and "--output labels.npy exists, and a .npy file does not say what wrote it" in err
    assert Path("precious.csv").read_bytes() == kept["precious.csv"] and np.load("labels.npy").tolist() == [7, 1, 3]
    for _ in range(2):
        rc, out, err = run(capsys, *predict, "p.csv")
        assert rc == 0, err
    assert err == "deepff: replacing existing predictions file p.csv\n"


def test_predicted_labels_holding_the_delimiter_are_quoted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)).round(3)
    Path("amb.csv").write_text("f1;f2;label\n" + "".join(
        f"{a};{b};{'big,red' if a > 0 else 'small,blue'}\n" for a, b in X))
    assert run(capsys, "train", "--dataset", "amb.csv", "--epochs", 1, "--quiet", "--output", "m.npz")[0] == 0
    for extra in ([], ["--proba"]):
        rc, out, err = run(capsys, "predict", "--model", "m.npz", "--input", "amb.csv", *extra)
        assert rc == 0, err
        rows = list(csv.reader(io.StringIO(out)))
        assert {len(r) for r in rows} == {1 if not extra else 2}
    assert rows[0] == ["p_big,red", "p_small,blue"]


def test_a_few_fractional_values_can_be_classes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2)).round(3)
    grade = [0.5, 1.0, 1.5]
    Path("halves.csv").write_text("a,b,grade\n" + "".join(
        f"{a},{b},{grade[int(a > 0) + int(b > 0)]}\n" for a, b in X))
    rc, out, err = run(capsys, "train", "--dataset", "halves.csv", "--task", "classification", "--epochs", 1,
                       "--quiet", "--output", "m.npz")
    assert rc == 0, err
    assert load("m.npz").classes == [0.5, 1.0, 1.5]


def test_a_col_name_targets_a_headerless_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).round(3)
    Path("nohead.csv").write_text("".join(f"{a},{b},{c},{'cat' if a > 0 else 'dog'}\n" for a, b, c in X))
    rc, out, err = run(capsys, "train", "--dataset", "nohead.csv", "--target", "col3", "--epochs", 1,
                       "--quiet", "--output", "m.npz")
    assert rc == 0, err
    assert load("m.npz").metadata["feature_names"] == ["col0", "col1", "col2"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_closed_or_full_stdout_does_not_lose_the_run(tmp_path):
    model = tmp_path / "m.npz"
    cmd = [sys.executable, "-m", "deepff.cli", "train", "--epochs", "1", "--hidden", "4", "--output", str(model)]
    closed = subprocess.run(cmd, stdout=None, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=lambda: os.close(1))
    assert closed.returncode == 0 and closed.stderr == "" and model.exists()
    model.unlink()
    with open("/dev/full", "w") as full:
        filled = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert filled.returncode == 0 and model.exists()
    assert filled.stderr == "deepff: standard output failed (No space left on device); the run goes on without it\n"


def test_evaluate_of_a_changed_training_file_reads_it_as_training_did_and_warns(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)).round(3)
    Path("first.csv").write_text("species,a,b\n" + "".join(
        f"{'cat' if a > 0 else 'dog'},{a},{b}\n" for a, b in X))
    assert run(capsys, "train", "--dataset", "first.csv", "--target", "species", "--epochs", 1, "--quiet",
               "--output", "m.npz")[0] == 0
    with open("first.csv", "a") as fh:
        fh.write("cat,1,1\n")
    rc, out, err = run(capsys, "evaluate", "--model", "m.npz")
    assert rc == 0, err
    assert "first.csv: 61 samples, all samples" in out
    assert "has changed since m.npz was trained" in err and "training rows included" in err


def test_a_two_unit_bce_config_is_told_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)).round(3)
    Path("bin.csv").write_text("a,b,y\n" + "".join(f"{a},{b},{int(a > 0)}\n" for a, b in X))
    Path("b2.yaml").write_text("layers:\n - {layer_type: input, n_features: 2}\n"
                               " - {layer_type: output, n_neurons: 2, activation: sigmoid,"
                               " loss_type: binary_cross_entropy}\n")
    rc, out, err = run(capsys, "train", "--dataset", "bin.csv", "--config", "b2.yaml", "--epochs", 1, "--quiet")
    assert rc == 2 and err.endswith("trains one sigmoid unit): set its n_neurons to 1\n")


def _regression_csv(path, order=("a", "b", "c"), extra_line=""):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    t = X @ [1.0, 2.0, 3.0]
    cols = {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}
    lines = [",".join(order) + ",target"]
    lines += [",".join(f"{cols[k][i]:.4f}" for k in order) + f",{t[i]:.4f}" for i in range(len(t))]
    Path(path).write_text("\n".join(lines) + "\n" + extra_line)


def test_evaluate_picks_feature_columns_by_name_as_predict_does(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _regression_csv("train.csv")
    assert run(capsys, "train", "--dataset", "train.csv", "--hidden", 8, "--epochs", 20, "--lr", 0.01,
               "--quiet", "--output", "m.npz")[0] == 0
    _regression_csv("same.csv", extra_line="\n")            # other bytes: scored whole
    _regression_csv("reordered.csv", order=("c", "a", "b"))
    reports = []
    for name in ("same.csv", "reordered.csv"):
        rc, out, err = run(capsys, "evaluate", "--model", "m.npz", "--dataset", name, "--json")
        assert rc == 0, err
        reports.append(json.loads(out))
    assert reports[0]["split"] == reports[1]["split"] == "all"
    assert reports[1]["r2"] == reports[0]["r2"] > 0.5        # positions would have scored the columns c, a, b
    rc, out, err = run(capsys, "evaluate", "--model", "m.npz", "--dataset", "same.csv", "--target", "a")
    assert rc == 2 and "the target column 'a' is one of the features m.npz was trained on" in one_error_line(err)


def test_a_resumed_run_refuses_another_batch_size_or_validation_split(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "train", "--epochs", 1, "--hidden", 4, "--validation-split", 0.25, "--batch-size", 16,
               "--checkpoint", "ck.npz", "--output", "a.npz", "--quiet")[0] == 0
    for flag, value, recorded in (("--batch-size", 64, "batch_size 16"),
                                  ("--validation-split", 0, "validation_split 0.25")):
        rc, out, err = run(capsys, "train", "--resume", "ck.npz", "--epochs", 2, flag, value, "--output", "b.npz")
        assert rc == 2 and out == "" and f"whose run has {recorded}" in one_error_line(err)
    rc, _, err = run(capsys, "train", "--resume", "ck.npz", "--epochs", 2, "--batch-size", 16,
                     "--validation-split", 0.25, "--output", "b.npz", "--quiet")
    assert rc == 0, err                                         # the checkpoint's own values are fine


def test_evaluate_of_a_deleted_training_file_says_one_thing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _regression_csv("d.csv")
    assert run(capsys, "train", "--dataset", "d.csv", "--hidden", 4, "--epochs", 1, "--quiet",
               "--output", "m.npz")[0] == 0
    Path("d.csv").unlink()
    rc, out, err = run(capsys, "evaluate", "--model", "m.npz")
    assert rc == 2 and "not found" in one_error_line(err) and "changed" not in err


def test_a_config_with_an_unknown_extension_is_named_before_it_is_read(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("model.npz").write_bytes(b"PK\x03\x04\xc0\xff binary")
    rc, _, err = run(capsys, "summary", "--config", "model.npz")
    assert rc == 2 and "unknown extension '.npz'; valid choices: '.json'" in one_error_line(err)


def test_an_empty_json_list_is_not_taken_for_a_history(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("mine.json").write_text("[]\n")
    rc, _, err = run(capsys, "train", "--epochs", 1, "--hidden", 4, "--quiet", "--history", "mine.json",
                     "--output", "m.npz")
    assert rc == 2 and "--history" in one_error_line(err)
    assert Path("mine.json").read_text() == "[]\n" and not Path("m.npz").exists()


@pytest.mark.parametrize("flag,value", [("--epochs", 3), ("--batch-size", 16)])
def test_lbfgs_refuses_epochs_and_batch_size_as_it_refuses_lr(tmp_path, capsys, flag, value):
    rc, out, err = run(capsys, "train", "--optimizer", "lbfgs", flag, value, "--output", tmp_path / "m.npz")
    assert rc == 2 and out == "" and f"{flag} does not apply to --optimizer lbfgs" in one_error_line(err)


def test_options_that_would_be_ignored_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "train", "--data-dir", tmp_path, "--epochs", 1, "--output", "m.npz")
    assert rc == 2 and out == "" and "applies to --dataset mnist only, not to digits" in one_error_line(err)
    assert run(capsys, "train", "--epochs", 1, "--hidden", 4, "--quiet", "--output", "m.npz")[0] == 0
    Path("net.yaml").write_text("layers:\n - {layer_type: input, n_features: 4}\n"
                                " - {layer_type: output, n_neurons: 1, activation: identity, loss_type: mse}\n")
    rc, out, err = run(capsys, "summary", "--model", "m.npz", "--config", "net.yaml")
    assert rc == 2 and out == "" and "not both" in one_error_line(err)


def _headerless(path, order):
    """Rows of x1..x4 and y = x1 + 2 x2 - x3 + 0.5 x4, columns in ``order`` ('y', 'x1'..'x4', 'id')."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 4))
    cols = {f"x{i + 1}": X[:, i] for i in range(4)}
    cols["y"] = X @ [1.0, 2.0, -1.0, 0.5]
    cols["id"] = np.arange(150.0)
    Path(path).write_text("".join(",".join(f"{cols[k][r]:.4f}" for k in order) + "\n" for r in range(150)))


def test_evaluate_of_header_less_files_goes_by_position(tmp_path, monkeypatch, capsys):
    """col0, col1, ... are made-up names: a header-less file's columns are matched by position."""
    monkeypatch.chdir(tmp_path)
    _headerless("label_first.csv", ["y", "x1", "x2", "x3", "x4"])
    _headerless("label_last.csv", ["x1", "x2", "x3", "x4", "y"])
    _headerless("with_id.csv", ["id", "x1", "x2", "x3", "x4", "y"])
    assert run(capsys, "train", "--dataset", "label_first.csv", "--target", "col0", "--hidden", 8, "--epochs", 30,
               "--lr", 0.01, "--quiet", "--output", "m.npz")[0] == 0
    rc, out, err = run(capsys, "evaluate", "--model", "m.npz", "--dataset", "label_last.csv", "--target", "col4",
                       "--json")
    assert rc == 0, err
    assert json.loads(out)["r2"] > 0.8
    rc, out, err = run(capsys, "evaluate", "--model", "m.npz", "--dataset", "with_id.csv")
    assert rc == 2 and "the data has 5 features, but the model expects 4" in one_error_line(err)


def test_resuming_an_early_stopping_run_with_its_own_settings_is_accepted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("es.yaml").write_text("layers:\n - {layer_type: input, n_features: 64}\n"
                               " - {layer_type: fullyconn, n_neurons: 8, activation: relu}\n"
                               " - {layer_type: output, n_neurons: 10, activation: softmax, loss_type: nll}\n"
                               "training: {epochs: 6, batch_size: 32, validation_split: 0,"
                               " early_stopping: {patience: 3}}\n")
    base = ["train", "--config", "es.yaml", "--validation-split", 0, "--quiet"]
    assert run(capsys, *base, "--epochs", 2, "--checkpoint", "ck.npz", "--output", "a.npz")[0] == 0
    rc, _, err = run(capsys, *base, "--epochs", 3, "--resume", "ck.npz", "--output", "b.npz")
    assert rc == 0, err
    Path("es64.yaml").write_text(Path("es.yaml").read_text().replace("batch_size: 32", "batch_size: 64"))
    rc, out, err = run(capsys, "train", "--config", "es64.yaml", "--resume", "ck.npz", "--output", "c.npz")
    assert rc == 2 and "the config's batch_size 64 contradicts" in one_error_line(err)
    assert "remove batch_size from the config" in err


def test_a_run_stopped_in_its_first_epoch_writes_no_json_history(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    original = cli_train._Reporter.on_batch_end

    def stop_at_once(self, trainer, step, batch_size, loss):
        original(self, trainer, step, batch_size, loss)
        trainer.request_stop()

    monkeypatch.setattr(cli_train._Reporter, "on_batch_end", stop_at_once)
    monkeypatch.setattr(cli_train._Reporter, "between_steps", True)      # after its step, not after a run
    rc, _, err = run(capsys, "train", "--epochs", 2, "--hidden", 4, "--quiet", "--history", "h.json",
                     "--output", "m.npz")
    monkeypatch.setattr(cli_train._Reporter, "on_batch_end", original)   # (undo() would also undo the chdir)
    monkeypatch.setattr(cli_train._Reporter, "between_steps", False)
    assert rc == 130 and "no epoch was complete, so h.json is not written" in err
    assert not Path("h.json").exists()
    rc, _, err = run(capsys, "train", "--epochs", 1, "--hidden", 4, "--quiet", "--history", "h.json",
                     "--output", "m2.npz")
    assert rc == 0, err
    assert [r["epoch"] for r in json.loads(Path("h.json").read_text())] == [1]
