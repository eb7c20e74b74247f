"""What ``deepff train`` must not lose or waste: a model whose save fails, and training time spent
on a run whose outputs could never be written.

The full disk is real: a 1 MiB tmpfs mounted by the test (root, as CI runs).
"No training step ran" is measured by counting calls of the Trainer's fit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from _fullfs import fill, mounted
from deepff import cli, training
from deepff.io import load


def run(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def full_folder(tmp_path):
    yield from mounted(tmp_path)


@pytest.fixture
def fits(monkeypatch):
    """The number of Trainer.fit calls (training runs) made so far."""
    calls = []
    real = training.Trainer.fit

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(training.Trainer, "fit", counting)
    return calls


def test_a_model_that_cannot_be_saved_is_recovered_and_the_old_file_kept(full_folder, tmp_path, monkeypatch,
                                                                          capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("DEEPFF_RECOVERY_DIR", raising=False)
    target = full_folder / "a.npz"
    rc, _, err = run(capsys, "train", "--epochs", 1, "--hidden", 4, "--quiet", "--output", target)
    assert rc == 0, err
    before = target.read_bytes()
    fill(full_folder)                          # the disk fills up while the next run trains
    rc, out, err = run(capsys, "train", "--epochs", 2, "--hidden", 16, "--quiet", "--output", target,
                       "--seed", 3)
    assert rc == 2 and "model saved" not in out
    assert len(err.splitlines()) == 1, err     # one line: which file, why, where it is now, how to move it
    m = re.fullmatch(rf"deepff: error: could not write the model {re.escape(str(target))} \(No space left on "
                     r"device\); the model is saved at (\S+) instead: move it with mv (\S+) (\S+) once there is "
                     r"room\n", err)
    assert m, err
    recovered = Path(m.group(1))
    assert recovered.parent == work and m.group(2) == str(recovered) and m.group(3) == str(target)
    net = load(recovered)                      # the model just trained, whole
    assert [layer.units for layer in net.layers] == [16, 10] and net.metadata["seed"] == 3
    assert target.read_bytes() == before       # the old model is intact
    assert sorted(os.listdir(full_folder)) == ["a.npz", "filler"]


def test_a_history_that_cannot_be_written_costs_neither_the_model_nor_the_plot(full_folder, tmp_path,
                                                                              monkeypatch, capsys):
    monkeypatch.setenv("DEEPFF_RECOVERY_DIR", str(tmp_path))
    fill(full_folder)
    model, history = tmp_path / "m.npz", full_folder / "h.csv"
    rc, out, err = run(capsys, "train", "--epochs", 1, "--hidden", 4, "--quiet", "--output", model,
                       "--history", history)
    assert rc == 2 and f"model saved to {model}" in out
    assert load(model).n_outputs == 10
    (line,) = err.splitlines()
    recovered = re.search(r"the history is saved at (\S+) instead", line).group(1)
    assert Path(recovered).parent == tmp_path and Path(recovered).read_text().startswith("epoch,loss")


# --------------------------------------------------------------- before training
def _complex_labels(folder):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.where(X[:, 0] > 0, 1 + 1j, 2 - 1j)
    path = folder / "complex.npz"
    np.savez(path, X=X, y=y)
    return path


def _text_labels(folder):
    """A CSV whose class labels are text a model file holds: the control case, it trains."""
    rows = ["a,b,label"] + [f"{i % 7},{i % 5},{'yes' if i % 2 else 'no'}" for i in range(40)]
    (folder / "ok.csv").write_text("\n".join(rows) + "\n")
    return folder / "ok.csv"


CASES = {
    "complex class labels (the model file holds texts, numbers, booleans)": (
        lambda d: ["--dataset", _complex_labels(d), "--output", d / "m.npz"], r"class labels must be texts"),
    "an output folder that does not exist": (
        lambda d: ["--output", d / "missing" / "m.npz"], r"does not exist"),
    "a history file of an unknown kind": (
        lambda d: ["--output", d / "m.npz", "--history", d / "h.txt"], r"--history must end in \.json or \.csv"),
    "a plot that is not a PNG": (
        lambda d: ["--output", d / "m.npz", "--plot", d / "p.jpg"], r"--plot"),
    "a checkpoint in a missing folder": (
        lambda d: ["--output", d / "m.npz", "--checkpoint", d / "nowhere" / "c.npz"], r"does not exist"),
    "a config value out of range": (
        lambda d: ["--output", d / "m.npz", "--config", _write(d / "c.yaml", CONFIG + "  batch_size: -3\n")],
        r"batch_size"),
    "an unknown optimizer": (
        lambda d: ["--output", d / "m.npz", "--optimizer", "adamm"], r"adamm"),
    "--resume-on-new-data without --resume": (
        lambda d: ["--output", d / "m.npz", "--resume-on-new-data"], r"goes with --resume"),
}


CONFIG = """layers:
  - {layer_type: input, n_features: 64}
  - {layer_type: fullyconn, n_neurons: 4, activation: relu}
  - {layer_type: output, n_neurons: 10, activation: softmax, loss_type: neg_log_likelihood}
training:
"""


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_what_can_be_checked_before_training_is(case, tmp_path, capsys, fits):
    argv, says = CASES[case]
    rc, out, err = run(capsys, "train", "--epochs", 1, "--hidden", 4, "--quiet", *argv(tmp_path))
    assert rc == 2 and len(err.splitlines()) == 1 and re.search(says, err), err
    assert fits == []                          # refused before any training step
    assert not (tmp_path / "m.npz").exists()


def test_the_control_case_trains(tmp_path, capsys, fits):
    rc, _, err = run(capsys, "train", "--dataset", _text_labels(tmp_path), "--epochs", 1, "--hidden", 4,
                     "--quiet", "--output", tmp_path / "m.npz")
    assert rc == 0, err
    assert fits == [1] and load(tmp_path / "m.npz").classes == ["no", "yes"]


# --------------------------------------------------------------- resume on other data
def test_resume_on_other_data_needs_saying_so(tmp_path, capsys):
    rows = ["a,b,label"] + [f"{i % 7},{i % 5},{i % 2}" for i in range(60)]
    data = tmp_path / "d.csv"
    data.write_text("\n".join(rows) + "\n")
    ck = tmp_path / "ck.npz"
    rc, _, err = run(capsys, "train", "--dataset", data, "--epochs", 1, "--hidden", 4, "--quiet",
                     "--checkpoint", ck, "--output", tmp_path / "a.npz")
    assert rc == 0, err
    data.write_text("\n".join(rows + [f"{i % 3},{i % 4},{i % 2}" for i in range(20)]) + "\n")   # 20 rows more
    rc, _, err = run(capsys, "train", "--resume", ck, "--epochs", 2, "--quiet", "--output", tmp_path / "b.npz")
    assert rc == 2 and "holds other data" in err and "--resume-on-new-data" in err
    rc, _, err = run(capsys, "train", "--resume", ck, "--epochs", 2, "--quiet", "--output", tmp_path / "b.npz",
                     "--resume-on-new-data")
    assert rc == 0, err
    assert load(tmp_path / "b.npz").metadata["dataset_sha256"] != load(tmp_path / "a.npz").metadata["dataset_sha256"]


# --------------------------------------------------------------- deepff's own messages
@pytest.mark.parametrize("name, says", [
    ("bad.npz", r"bad\.npz is not a \.npz archive \(numpy\.savez: a zip of \.npy arrays\): its first bytes are "
                r"b'a,b\\n1,' \(it looks like text: a CSV file should end in \.csv\)"),
    ("bad.npy", r"bad\.npy is not a \.npy array \(numpy\.save\)"),
])
def test_a_text_file_named_like_an_array_file_is_named_as_such(name, says, tmp_path, capsys):
    """numpy's message was that the file 'contains pickled (object) data' and how to load it unsafely."""
    (tmp_path / name).write_text("a,b\n1,2\n3,4\n")
    rc, out, err = run(capsys, "train", "--dataset", tmp_path / name, "--epochs", 1, "--quiet",
                       "--output", tmp_path / "m.npz")
    assert rc == 2 and out == "" and len(err.splitlines()) == 1 and re.search(says, err), err
    assert "pickle" not in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX named pipes")
def test_a_pipe_given_as_the_data_set_is_named_as_a_pipe(tmp_path, capsys):
    os.mkfifo(tmp_path / "data.csv")
    rc, _, err = run(capsys, "train", "--dataset", tmp_path / "data.csv", "--epochs", 1, "--quiet",
                     "--output", tmp_path / "m.npz")
    assert rc == 2 and "is not a regular file (a pipe, device or socket)" in err and "not found" not in err
