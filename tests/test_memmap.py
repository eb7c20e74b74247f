"""Training from memory-mapped .npy files: the epoch order and the batch gather cost no memory per row.

About 10 s (the benchmark's quick mode is most of it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deepff
from deepff import _order
from deepff.training import Trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n", [1, 2, 5, 1000, 4097, 12345])
def test_a_lazy_permutation_is_a_permutation_and_its_slices_agree(n):
    p = _order.LazyPermutation(n, 42)
    whole = p.copy()
    assert whole.dtype == np.int64 and np.array_equal(np.sort(whole), np.arange(n))
    cut = n // 3
    assert np.array_equal(np.concatenate([p[0:cut], p[cut:n]]), whole)
    assert np.array_equal(_order.LazyPermutation(n, None).copy(), np.arange(n))
    if n >= 1000:   # shuffled, and another key gives another order
        assert np.mean(whole == np.arange(n)) < 0.01
        assert not np.array_equal(_order.LazyPermutation(n, 43).copy(), whole)


def test_gather_reads_strided_rows_like_take():
    A = np.arange(60.0).reshape(10, 6)[:, 1:5]       # columns of a wider array: not C-contiguous
    idx = np.array([7, 0, 3])
    out = np.empty((3, 4))
    assert np.array_equal(_order.gather(A, idx, out), np.take(A, idx, axis=0))
    w, wout = np.arange(10.0), np.empty(3)
    assert np.array_equal(_order.gather(w, idx, wout), w[idx])


def _file(tmp_path, n=300, d=6):
    rng = np.random.default_rng(0)
    M = rng.standard_normal((n, d + 1)).astype(np.float32)
    M[:, d] = M[:, :2].sum(axis=1)
    np.save(tmp_path / "t.npy", M)
    return np.load(tmp_path / "t.npy", mmap_mode="r"), d


def _fit(X, Y, **kw):
    net = deepff.Network([deepff.Dense(8, "tanh"), deepff.Dense(1)], loss="mse", seed=0).build(X.shape[1])
    trainer = Trainer(net, optimizer="adam", epochs=2, batch_size=16, **kw)
    trainer.fit(X, Y)
    return net.get_weights(), trainer


def test_training_from_a_mapped_file_equals_training_in_memory(tmp_path):
    M, d = _file(tmp_path)
    X, Y = M[:, :d], M[:, d:]
    assert isinstance(X, np.memmap) and not X.flags.c_contiguous
    mapped, _ = _fit(X, Y)
    in_memory, _ = _fit(np.ascontiguousarray(X), np.ascontiguousarray(Y))
    assert np.array_equal(mapped, in_memory)


def test_past_the_threshold_the_order_is_lazy_and_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(_order, "LAZY_ROWS", 100)
    M, d = _file(tmp_path)
    X, Y = M[:, :d], M[:, d:]
    whole, trainer = _fit(X, Y)
    # stop mid-epoch, checkpoint the state (the lazy order is written out whole), resume in a new trainer
    net = deepff.Network([deepff.Dense(8, "tanh"), deepff.Dense(1)], loss="mse", seed=0).build(d)
    first = Trainer(net, optimizer="adam", epochs=2, batch_size=16)

    class StopAt(deepff.Callback):
        def on_batch_end(self, tr, step, batch_size, loss):
            if step == 25:
                tr.request_stop()

    first.callbacks = [StopAt()]
    first.fit(X, Y)
    assert isinstance(first._order, _order.LazyPermutation)
    state = first.state_dict()
    assert np.array_equal(np.sort(state["epoch_order"]), np.arange(X.shape[0]))
    net2 = deepff.Network([deepff.Dense(8, "tanh"), deepff.Dense(1)], loss="mse", seed=0).build(d)
    second = Trainer(net2, optimizer="adam", epochs=2, batch_size=16)
    second.load_state_dict(state)
    second.fit(X, Y)
    assert np.array_equal(net2.get_weights(), whole)


def test_the_memory_benchmark_runs_in_quick_mode(tmp_path):
    out = tmp_path / "memory.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_memory.py"), "--quick", "--dir",
                           str(tmp_path), "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert [r["rows"] for r in report["results"]] == [10**4, 10**5]
    assert all(r["peak_rss_anon_mib"] > 10 and r["epoch_s"] > 0 for r in report["results"])
    assert not list(tmp_path.glob("*.npy"))            # the data files were removed
    assert "| rows |" in proc.stdout
