"""The classic MNIST MLP results (rows A-D), reproduced with deepff: runs each row, writes a Markdown table.

    python benchmarks/mnist_table.py [--rows A,B,C,D] [--data-dir ../shared/datasets/mnist]
                                     [--output mnist-table.md] [--workdir DIR] [--epochs N]

Each row is ONE ``deepff train`` command on a config in examples/ (the
network, the loss and the data treatment of the paper's row; optimizer and
schedule chosen to get there in minutes), run as a subprocess and timed by
the wall clock (data loading included). The table gives the paper's error,
deepff's test error, the epochs, the wall time, the median seconds per
epoch and the exact command. ``--epochs N`` overrides every row's epochs
(a smoke run of the pipeline; its errors are not the rows' results).
The rows run one after another, so each has the machine to itself, as far
as the machine is otherwise quiet: the table states the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deepff.io import atomic_write  # noqa: E402

#: row: (source, network, training data, the paper's test error in %, config, wall-time target in minutes)
ROWS = {
    "A": ("Simard, Steinkraus, Platt 2003", "784-800-10, cross-entropy", "as is", 1.6,
          "examples/mnist_800.yaml", 10),
    "B": ("Simard et al. 2003", "784-800-10, cross-entropy", "affine distortions", 1.1,
          "examples/mnist_affine.yaml", 20),
    "C": ("Simard et al. 2003", "784-800-10, cross-entropy", "elastic distortions", 0.7,
          "examples/mnist_elastic.yaml", 30),
    "D": ("Srivastava et al. 2014, Table 2", "784-1024-1024-1024-10 ReLU, dropout + max-norm", "as is", 1.06,
          "examples/mnist_maxnorm.yaml", 45),
}


def command(row, data_dir, workdir, epochs=None):
    """The ``deepff train`` command of a row (as a list of arguments, without the interpreter)."""
    cmd = ["deepff", "train", "--config", ROWS[row][4], "--dataset", "mnist", "--data-dir", str(data_dir),
           "--output", str(Path(workdir) / f"row{row}.npz"), "--history", str(Path(workdir) / f"row{row}.json"),
           "--quiet"]
    return cmd + (["--epochs", str(epochs)] if epochs else [])


def run_row(row, data_dir, workdir, epochs=None):
    """Run one row; return its results (accuracy, epochs, wall and per-epoch seconds)."""
    cmd = command(row, data_dir, workdir, epochs)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", *cmd[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"row {row} failed ({proc.returncode}): {proc.stderr.strip()}")
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)%", proc.stdout).group(1))
    history = json.loads((ROOT / workdir / f"row{row}.json").read_text())
    seconds = [r["seconds"] for r in history]
    return {"row": row, "accuracy": accuracy, "error": round(100.0 - accuracy, 2), "epochs": len(history),
            "wall_s": wall, "epoch_s": statistics.median(seconds), "command": shlex.join(cmd)}


def table(results, header):
    """The Markdown table of the rows run."""
    lines = [header, "",
             "| row | source | network | training data | paper's test error | deepff's test error | epochs "
             "| wall time (target) | s/epoch | command |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        source, network, data, paper, _, target = ROWS[r["row"]]
        lines.append(f"| {r['row']} | {source} | {network} | {data} | {paper}% | {r['error']:.2f}% | {r['epochs']} "
                     f"| {r['wall_s'] / 60:.1f} min ({target} min) | {r['epoch_s']:.1f} | `{r['command']}` |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="A,B,C,D", help="comma-separated rows to run (A, B, C, D)")
    ap.add_argument("--data-dir", default="../shared/datasets/mnist", help="the MNIST folder, from the repository root")
    ap.add_argument("--output", default="mnist-table.md", help="the Markdown table (written atomically)")
    ap.add_argument("--workdir", default=str(ROOT / "mnist-table-runs"), help="models and histories of the rows")
    ap.add_argument("--epochs", type=int, default=None, help="override every row's epochs (smoke run)")
    args = ap.parse_args(argv)
    rows = [r.strip().upper() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown row {unknown[0]!r}; valid rows: {', '.join(ROWS)}")
    workdir = Path(os.path.relpath(Path(args.workdir).resolve(), ROOT))     # as the commands name it, from ROOT
    (ROOT / workdir).mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    results = []
    for row in rows:
        results.append(run_row(row, args.data_dir, workdir, args.epochs))
        r = results[-1]
        print(f"row {row}: test error {r['error']:.2f}% after {r['epochs']} epochs, {r['wall_s'] / 60:.1f} min "
              f"({r['epoch_s']:.1f} s/epoch)", flush=True)
    header = (f"deepff on MNIST, {os.cpu_count()} CPUs, load average {load:.1f} before and "
              f"{os.getloadavg()[0]:.1f} after the runs" + (f"; SMOKE RUN: --epochs {args.epochs}" if args.epochs
                                                              else ""))
    text = table(results, header)
    atomic_write(args.output, lambda fh: fh.write(text.encode("utf-8")))
    print(text)
    return results


if __name__ == "__main__":
    main()
