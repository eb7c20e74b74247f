"""Peak anonymous memory of training from a memory-mapped .npy file, as the rows grow.

For each size n (default 10^5, 10^6, 10^7 rows) a file of n x 101 float32
(100 features and a regression target, about 4 GB at 10^7 rows) is written, and
a fresh process trains one epoch of a 100-64-1 network (Adam, batch 1024) on it
through ``Trainer.fit`` with X and Y as views of ``np.load(path, mmap_mode="r")``.
A thread samples the process's RssAnon (anonymous memory: what the process
allocated, not the file's pages, which the kernel can drop) every 5 ms.

The claim checked: memory stays flat, the 10^7-row peak within 1.3x of the
10^5-row peak. Files go to --dir (default: the system's temporary folder) and are
removed afterwards. ``--quick`` runs 10^4 and 10^5 rows (for the test suite).

Run: ``python benchmarks/bench_memory.py [--sizes 100000 1000000 10000000] [--dir /tmp]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FEATURES = 100


def write_file(path, n, chunk=100_000):
    """Write n rows of standard-normal features and a target (the sum of the first five) to ``path``."""
    import numpy as np

    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, FEATURES + 1))
    rng = np.random.default_rng(0)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), FEATURES + 1), dtype=np.float32)
        block[:, FEATURES] = block[:, :5].sum(axis=1)
        mm[start:start + block.shape[0]] = block
    mm.flush()
    del mm


def rss_anon_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def train_one(path, batch_size):
    """In a fresh process: train one epoch from the mapped file; return peak RssAnon and seconds."""
    import threading

    peak = [rss_anon_mib()]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon_mib())
            time.sleep(0.005)

    threading.Thread(target=sample, daemon=True).start()
    import numpy as np

    import deepff
    from deepff.training import Trainer

    data = np.load(path, mmap_mode="r")
    X, Y = data[:, :FEATURES], data[:, FEATURES:]
    net = deepff.Network([deepff.Dense(64, "relu"), deepff.Dense(1)], loss="mse", seed=0).build(FEATURES)
    trainer = Trainer(net, optimizer="adam", epochs=1, batch_size=batch_size)
    t0 = time.perf_counter()
    trainer.fit(X, Y)
    seconds = time.perf_counter() - t0
    done.set()
    peak[0] = max(peak[0], rss_anon_mib())
    return {"rows": int(X.shape[0]), "peak_rss_anon_mib": round(peak[0], 1), "epoch_s": round(seconds, 2),
            "loss": trainer.history.records[-1]["loss"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10**5, 10**6, 10**7])
    ap.add_argument("--quick", action="store_true", help="10^4 and 10^5 rows")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the .npy files are written")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(train_one(args.child, args.batch_size)))
        return 0
    sizes = [10**4, 10**5] if args.quick else args.sizes
    rows = []
    for n in sizes:
        path = Path(args.dir) / f"deepff_bench_memory_{n}_{os.getpid()}.npy"
        try:
            write_file(path, n)
            proc = subprocess.run([sys.executable, __file__, "--child", str(path), "--batch-size",
                                   str(args.batch_size)], capture_output=True, text=True, check=True)
            rows.append({**json.loads(proc.stdout), "file_gb": round(path.stat().st_size / 1e9, 2)})
        finally:
            path.unlink(missing_ok=True)
    print("| rows | file (GB) | peak RssAnon (MiB) | seconds per epoch |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['rows']:,} | {r['file_gb']} | {r['peak_rss_anon_mib']} | {r['epoch_s']} |")
    ratio = rows[-1]["peak_rss_anon_mib"] / rows[0]["peak_rss_anon_mib"]
    print(f"peak at {rows[-1]['rows']:,} rows / peak at {rows[0]['rows']:,} rows: {ratio:.2f} (target <= 1.3)")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": rows, "ratio": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
