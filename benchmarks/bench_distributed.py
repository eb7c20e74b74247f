"""Data-parallel training on MPI: compute and Allreduce time per step, epoch time, and a scaling model.

Two MNIST-shaped workloads (random float32 data of 784 features and 10 classes;
the time per step does not depend on the values):

* small: 784-256-128-10 (235,146 parameters, 0.94 MB of float32 gradient) at a global batch of 1,024;
* wide:  784-2048-2048-10 (5,824,522 parameters, 23.3 MB) at a global batch of 4,096.

For K = 1 and 2 (``--ranks``) the script runs ``mpiexec -n K`` and measures on
rank 0: the compute of a step (forward and backward sweep of the rank's share
of the batch), one Allreduce of the flat gradient buffer, and the wall time of
training (``Network.fit(comm=...)``) over ``--steps`` steps, scaled to an epoch
of 60,000 rows. Then it prints the ring-allreduce model for K = 2 ... 64:

    t_allreduce(K) = 2 (K - 1) / K * S / bandwidth + 2 (K - 1) * latency
    t_step(K)      = t_compute(1) / K + t_allreduce(K)
    epoch(K)       = ceil(60,000 / B) * t_step(K)          speed-up = epoch(1) / epoch(K)

with the compute measured here for K = 1 (each rank is assumed to be a machine
like this one), for 10 GbE (1.25 GB/s, 30 us), 25 GbE (3.125 GB/s, 15 us) and
HDR InfiniBand (25 GB/s, 1.5 us). ``--quick`` runs the small workload, K = 1 and
2, with few steps (for the test suite).

Run: ``python benchmarks/bench_distributed.py [--ranks 1 2] [--steps 5] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

WORKLOADS = {"small": ([256, 128], 1024), "wide": ([2048, 2048], 4096)}
NETWORKS = {"10 GbE": (1.25e9, 30e-6), "25 GbE": (3.125e9, 15e-6), "HDR InfiniBand": (25e9, 1.5e-6)}
EPOCH_ROWS = 60_000


def _median(values):
    values = sorted(values)
    return values[len(values) // 2]


def worker(name, steps):
    """Measure on every rank of MPI.COMM_WORLD (or alone); return rank 0's figures."""
    import numpy as np

    import deepff

    comm = None
    if int(os.environ.get("PMI_SIZE", "1")) > 1:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    size, rank = (1, 0) if comm is None else (comm.Get_size(), comm.Get_rank())
    hidden, batch = WORKLOADS[name]
    layers = [deepff.Dense(u, "relu") for u in hidden] + [deepff.Dense(10, "softmax")]
    net = deepff.Network(layers, loss="neg_log_likelihood", seed=0).build(784)
    rng = np.random.default_rng(0)
    n = batch * steps
    X = rng.random((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    # compute of one step on this rank's share
    share = batch // size
    Xs, Ys = X[:share], net.prepare_targets(y[:share], share)
    times = []
    for _ in range(max(3, steps)):
        t0 = time.perf_counter()
        net.forward(Xs, training=True)
        net.backward(Ys)
        times.append(time.perf_counter() - t0)
    compute = _median(times[1:])
    # one Allreduce of the flat gradient buffer (and the 3 values riding with it)
    allreduce = 0.0
    if comm is not None:
        buf = np.zeros(net.params.size + 3, dtype=np.float32)
        times = []
        for _ in range(10):
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append(time.perf_counter() - t0)
        allreduce = _median(times[1:])
    # training itself over n rows (steps steps), scaled to an epoch of EPOCH_ROWS rows
    net2 = deepff.Network([deepff.Dense(u, "relu") for u in hidden] + [deepff.Dense(10, "softmax")],
                          loss="neg_log_likelihood", seed=0)
    t0 = time.perf_counter()
    net2.fit(X, y, epochs=1, batch_size=batch, optimizer="sgd", comm=comm)
    trained = time.perf_counter() - t0
    return {"workload": name, "ranks": size, "batch": batch, "params": int(net.params.size),
            "compute_s": compute, "allreduce_s": allreduce, "step_s": trained / steps,
            "epoch_s": trained / steps * math.ceil(EPOCH_ROWS / batch)} if rank == 0 else None


def model_rows(measured):
    """The ring-allreduce model for each workload, network and K, from the K = 1 compute measured here."""
    rows = []
    for name, (_, batch) in WORKLOADS.items():
        base = [m for m in measured if m["workload"] == name and m["ranks"] == 1]
        if not base:
            continue
        compute, size_bytes = base[0]["compute_s"], 4 * (base[0]["params"] + 3)
        steps = math.ceil(EPOCH_ROWS / batch)
        epoch1 = steps * compute
        for net_name, (bandwidth, latency) in NETWORKS.items():
            for k in (2, 4, 8, 16, 32, 64):
                comm = 2 * (k - 1) / k * size_bytes / bandwidth + 2 * (k - 1) * latency
                epoch = steps * (compute / k + comm)
                rows.append({"workload": name, "network": net_name, "K": k, "compute_s": compute / k,
                             "allreduce_s": comm, "epoch_s": epoch, "speedup": epoch1 / epoch,
                             "comm_dominates": comm > compute / k})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        result = worker(args.worker, args.steps)
        if result is not None:
            print(json.dumps(result))
        return 0
    if args.quick:
        args.workloads, args.steps = ["small"], 2
    measured = []
    for name in args.workloads:
        for k in args.ranks:
            cmd = [sys.executable, __file__, "--worker", name, "--steps", str(args.steps)]
            proc = subprocess.run(["mpiexec", "-n", str(k), *cmd], capture_output=True, text=True, check=True)
            measured.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print("| workload | K | params | compute/step (ms) | allreduce/step (ms) | step (ms) | epoch of 60,000 (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in measured:
        print(f"| {m['workload']} (B={m['batch']}) | {m['ranks']} | {m['params']:,} | {1e3 * m['compute_s']:.1f} | "
              f"{1e3 * m['allreduce_s']:.2f} | {1e3 * m['step_s']:.1f} | {m['epoch_s']:.2f} |")
    rows = model_rows(measured)
    print("\n| workload | network | K | compute/step (ms) | allreduce (ms) | epoch (s) | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        mark = " (comm > compute)" if r["comm_dominates"] else ""
        print(f"| {r['workload']} | {r['network']} | {r['K']} | {1e3 * r['compute_s']:.2f} | "
              f"{1e3 * r['allreduce_s']:.2f} | {r['epoch_s']:.2f} | {r['speedup']:.1f}{mark} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"measured": measured, "model": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
