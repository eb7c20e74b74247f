"""Throughput of deepff.augment and its share of an MNIST training epoch.

    python benchmarks/bench_augment.py [--data-dir ../shared/datasets/mnist] [--quick] [--json out.json]
                                       [--rounds 3] [--images 60000] [--picture docs/img/augment.png]

For each transform (affine, elastic) it times, interleaved over ``--rounds``:

* ``images/s``: ``Augment.apply`` alone on batches of 128 MNIST images;
* ``epoch``: one training epoch of 784-800-10 (Adam, batch 128) without
  augmentation, with it (the worker thread preparing the next batch while a
  step runs), and the share of the augmented epoch that augmentation costs,
  ``(augmented - plain) / augmented``, by the wall clock and by the process's
  CPU time (the figure to read on a machine that other jobs share).

Without the MNIST files it uses random images of the same shape (the
throughput does not depend on the pixels). ``--picture`` also draws one test
digit and eight distortions of it per transform (the figure in
docs/mnist-results.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import deepff  # noqa: E402
from deepff.augment import Augment  # noqa: E402


def _mnist(data_dir, n):
    if data_dir and Path(data_dir).is_dir():
        from deepff.datasets import load_mnist

        X, y, Xt, yt = load_mnist(data_dir, download=False)
        return (X[:n] / 255.0).astype(np.float32), y[:n], (Xt / 255.0).astype(np.float32), yt, "MNIST"
    rng = np.random.default_rng(0)
    X = (rng.random((n, 784), dtype=np.float32) < 0.2).astype(np.float32)
    return X, rng.integers(0, 10, n), X[:16], np.zeros(16, int), "random images"


def time_apply(aug, X, batch=128):
    """Seconds to distort all of X once, batch by batch (the calling thread only)."""
    t0 = time.perf_counter()
    for start in range(0, X.shape[0], batch):
        idx = np.arange(start, min(start + batch, X.shape[0]))
        aug.apply(X[idx], idx, epoch=0)
    return time.perf_counter() - t0


class _CPUClock(deepff.Callback):
    """CPU seconds of the process (all threads) per epoch: robust where other jobs share the machine."""

    def __init__(self):
        self.seconds = []

    def on_epoch_begin(self, trainer, epoch):
        self.start = time.process_time()

    def on_epoch_end(self, trainer, record):
        self.seconds.append(time.process_time() - self.start)


def time_epoch(X, y, augment):
    """Wall and CPU seconds of one training epoch of 784-800-10 (the second: workspaces and thread warm)."""
    net = deepff.Network([deepff.Dense(800, "relu"), deepff.Dense(10, "softmax")], loss="neg_log_likelihood",
                         seed=0)
    clock = _CPUClock()
    history = net.fit(X, y, epochs=2, batch_size=128, optimizer="adam", lr=1e-3, augment=augment, callbacks=[clock])
    return history["seconds"][-1], clock.seconds[-1]


def picture(path, X_test):
    from deepff.plots import plot_augmentations

    image = X_test[0:1]
    rows = []
    for kind in ("affine", "elastic"):
        aug = Augment(kind, seed=0)
        aug.check(784)
        copies = np.concatenate([aug.apply(image, np.zeros(1, np.int64), epoch=e) for e in range(8)])
        rows.append((kind, copies))
    plot_augmentations(image[0], rows, path, title="One MNIST test digit and eight distortions per transform "
                                                   "(defaults of deepff.augment)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    ap.add_argument("--quick", action="store_true", help="a few seconds: 1,024 images, 1 round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=60000, help="training images per epoch (at most 60,000)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--picture", help="also draw the distortion grid to this PNG")
    args = ap.parse_args(argv)
    n = 1024 if args.quick else min(args.images, 60000)
    rounds = 1 if args.quick else args.rounds
    X, y, X_test, _, source = _mnist(args.data_dir, n)
    if args.picture:
        picture(args.picture, X_test)
    results = []
    for kind in ("affine", "elastic"):
        aug = Augment(kind, seed=0)
        aug.check(784)
        alone, epochs, base = [], [], []
        for _ in range(rounds):                     # interleaved: the three timings share each round's machine
            alone.append(time_apply(aug, X))
            base.append(time_epoch(X, y, None))
            epochs.append(time_epoch(X, y, kind))
        a = statistics.median(alone)
        (b, b_cpu), (e, e_cpu) = ([statistics.median(col) for col in zip(*runs)] for runs in (base, epochs))
        shares = [(ep[0] - bp[0]) / ep[0] for ep, bp in zip(epochs, base)]
        cpu_shares = [(ep[1] - bp[1]) / ep[1] for ep, bp in zip(epochs, base)]
        results.append({"transform": kind, "images_per_s": n / a, "apply_s_per_epoch": a, "epoch_plain_s": b,
                        "epoch_augmented_s": e, "share_of_epoch": statistics.median(shares),
                        "epoch_plain_cpu_s": b_cpu, "epoch_augmented_cpu_s": e_cpu,
                        "cpu_share_of_epoch": statistics.median(cpu_shares), "rounds": rounds, "images": n})
    print(f"deepff.augment on {n} {source}, batch 128, {rounds} round(s), {os.cpu_count()} CPUs "
          f"(medians; epoch = 784-800-10 Adam)")
    print("| transform | images/s (apply alone) | apply, s/epoch | epoch plain, wall (CPU) s "
          "| epoch augmented, wall (CPU) s | augmentation's share of the epoch, wall (CPU) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['transform']} | {r['images_per_s']:,.0f} | {r['apply_s_per_epoch']:.2f} | "
              f"{r['epoch_plain_s']:.2f} ({r['epoch_plain_cpu_s']:.2f}) | {r['epoch_augmented_s']:.2f} "
              f"({r['epoch_augmented_cpu_s']:.2f}) | {100 * r['share_of_epoch']:.0f}% "
              f"({100 * r['cpu_share_of_epoch']:.0f}%) |")
    if args.json:
        Path(args.json).write_text(json.dumps({"source": source, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
