"""Small training problems for tests/test_distributed.py, run by ``mpiexec -n K python tests/_mpi_cases.py``.

Each case is trained here on every rank of MPI.COMM_WORLD (``Network.fit(comm=...)``)
and each rank saves its final weights and history; the test trains the same case
in one process and compares. The sizes are chosen so that neither the number of
rows nor the global batch is a multiple of K = 2 or 3, and the short last batch of
some cases has fewer rows than there are ranks (empty shares).

Usage: ``python _mpi_cases.py OUT_DIR [MODE]`` with MODE ``cases`` (default),
``fail`` (rank 1 raises after epoch 2), ``disagree`` (rank 1 holds other data),
``small_batch`` (a batch of 2 rows) or ``diverge`` (a learning rate of 1e30).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import deepff


def _data(n, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return X, np.minimum(y, k - 1)


def _classifier(dtype="float64", **hidden):
    return deepff.Network([deepff.Dense(8, "tanh" if not hidden else "relu", **hidden), deepff.Dense(3, "softmax")],
                          loss="neg_log_likelihood", dtype=dtype, seed=3)


SGD_MOMENTUM = {"name": "sgd", "lr": 0.1, "momentum": 0.9}


def case(name):
    """(network, X, y, fit keyword arguments) of case ``name``."""
    X, y = _data(34)
    fit = {"epochs": 4, "batch_size": 8}
    if name == "sgd_momentum":
        return _classifier(), X, y, {**fit, "optimizer": SGD_MOMENTUM}
    if name == "adam":
        return _classifier(), X, y, {**fit, "optimizer": {"name": "adam", "lr": 0.02}}
    if name == "adamw":
        return _classifier(), X, y, {**fit, "optimizer": {"name": "adamw", "lr": 0.02, "weight_decay": 0.05}}
    if name == "lbfgs":
        return _classifier(), X, y, {**fit, "optimizer": {"name": "lbfgs", "max_iter": 25},
                                     "regularization": {"l2": 1e-3}}
    if name == "dropout":
        return _classifier(dropout=0.3), X, y, {**fit, "optimizer": SGD_MOMENTUM}
    if name == "batch_norm":      # 34 = 4 * 8 + 2: the last batch's 2 rows leave a rank of 3 empty
        return _classifier(batch_norm=True), X, y, {**fit, "optimizer": {"name": "adam", "lr": 0.02}}
    if name == "batch_norm_one_row_batch":   # 33 = 4 * 8 + 1: the running statistics normalise it
        return _classifier(batch_norm=True), X[:33], y[:33], {**fit, "optimizer": SGD_MOMENTUM}
    if name == "sample_weight":
        w = np.random.default_rng(5).uniform(0.2, 3.0, size=X.shape[0])
        return _classifier(), X, y, {**fit, "optimizer": SGD_MOMENTUM, "sample_weight": w}
    if name == "regression":      # mse, L2 penalty, gradient clipping, validation data, 35 rows, batch 6
        Xr, _ = _data(35, seed=1)
        Y = np.stack([Xr[:, 0] - 2 * Xr[:, 1], np.sin(Xr[:, 2])], axis=1)
        net = deepff.Network([deepff.Dense(8, "tanh"), deepff.Dense(2)], loss="mse", dtype="float64", seed=3)
        return net, Xr, Y, {"epochs": 4, "batch_size": 6, "optimizer": SGD_MOMENTUM, "clip_norm": 0.5,
                            "regularization": {"l2": 1e-2}, "validation_data": (Xr[:7] + 0.1, Y[:7])}
    if name == "float32_adam":
        return _classifier("float32"), X, y, {**fit, "optimizer": {"name": "adam", "lr": 0.02}}
    raise KeyError(name)


CASES = ("sgd_momentum", "adam", "adamw", "lbfgs", "dropout", "batch_norm", "batch_norm_one_row_batch",
         "sample_weight", "regression", "float32_adam")


def train(name, comm=None, **change):
    """Train case ``name`` (on ``comm`` when given); return (weights, history records)."""
    net, X, y, fit = case(name)
    fit.update(change)
    net.fit(X, y, comm=comm, **fit)
    return net.get_weights(), net.history_.records


def main(out, mode="cases"):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    if mode == "cases":
        for name in CASES:
            theta, records = train(name, comm)
            np.savez(Path(out) / f"{name}.rank{rank}.npz", theta=theta,
                     loss=[r["loss"] for r in records], val_loss=[r.get("val_loss", 0.0) for r in records])
        return 0

    class FailOnRank1(deepff.Callback):
        def on_epoch_end(self, trainer, record):
            if rank == 1 and record["epoch"] == 2:
                raise RuntimeError("a failure on rank 1 only")

    net, X, y, fit = case("adam")
    if mode == "fail":
        fit.update(epochs=200, callbacks=[FailOnRank1()])
    elif mode == "disagree":
        X = X + (1e-3 if rank == 1 else 0.0)
    elif mode == "small_batch":
        fit.update(batch_size=2)
    elif mode == "diverge":
        net, X, y, fit = case("regression")
        fit.update(optimizer={"name": "sgd", "lr": 1e30}, clip_norm=None)
    try:
        net.fit(X, y, comm=comm, **fit)
    except deepff.errors.DeepffError as exc:
        if rank == 0:
            print(f"refused: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
