"""Whether the machine's two cores share a last-level cache right now.

Usage::

    python benchmarks/cores.py               # one probe a second for 60 s
    python benchmarks/cores.py --seconds 300

A virtual machine's cores are threads that its host may place anywhere. On
the 2-core AMD EPYC virtual machines deepff is benchmarked on, the host
sometimes runs the two on cores that share a level-3 cache and sometimes on
cores of different dies, each die with its own L3, for spells of seconds to
minutes. Data one core wrote then reaches the other through the dies' link, at
a quarter of the speed (a C ping-pong of one cache line: 110-140 ns a round
trip on a shared L3, 500-560 ns across dies). Every training step hands data
between the cores: the BLAS splits each product over both threads, and the
single-threaded work after it reads what the other thread wrote. Across
dies an Adam epoch at batch 32 took 1.4-2.3 s instead of 0.7-0.9 s, and the
products alone (the gemm floor) a third longer (docs/performance.md).

:func:`cross_core_read` measures it from Python: one core writes a buffer,
the other reads it twice; the first read over the second is about 1.0-1.25
with a shared L3 and 1.5-2.2 across dies. ``bench.py`` probes before each
round and after the last, and reports the rounds the probe found split
(:data:`SPLIT_AT`).
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np

SPLIT_AT = 1.4
"""The :func:`cross_core_read` ratio above which the two cores do not share a last-level cache."""


def cross_core_read(n_bytes=4 << 20, reps=5):
    """Time reading a buffer another core has just written, against reading it again.

    The calling thread is pinned to the first core of its affinity set and a
    helper thread to the second; the helper adds 1 to every entry, then the
    caller copies the buffer out twice. The affinity is restored afterwards.

    Parameters
    ----------
    n_bytes : int
        Size of the buffer: larger than the L2 caches (1 MiB), smaller than
        one L3 (32 MiB), so the first copy reads what the writer's L2 and L3
        hold and the second what the reader's own caches hold.
    reps : int
        Writes and read pairs; the fastest read of each kind counts.

    Returns
    -------
    float or None
        The fastest first read over the fastest second read, or None where
        the process may run on fewer than two cores or cannot pin threads
        (``os.sched_setaffinity`` is Linux-only).
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    buf = np.zeros(n_bytes // 8)
    dst = np.empty_like(buf)
    go, done = threading.Event(), threading.Event()
    stop = []

    def writer():
        os.sched_setaffinity(0, {cpus[1]})          # pid 0: this thread
        while True:
            go.wait()
            go.clear()
            if stop:
                return
            np.add(buf, 1.0, out=buf)
            done.set()

    helper = threading.Thread(target=writer, daemon=True)
    helper.start()
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpus[0]})
    other, own = [], []
    try:
        for _ in range(reps):
            go.set()
            done.wait()
            done.clear()
            t0 = time.perf_counter()
            np.copyto(dst, buf)                     # the lines the other core wrote
            t1 = time.perf_counter()
            np.copyto(dst, buf)                     # the same lines, now in this core's caches
            other.append(t1 - t0)
            own.append(time.perf_counter() - t1)
    finally:
        stop.append(True)
        go.set()
        helper.join()
        os.sched_setaffinity(0, before)
    return min(other) / min(own)


def main(argv=None):
    """Probe once a second and print each ratio with its verdict."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    end = time.monotonic() + args.seconds
    split = total = 0
    while True:
        ratio = cross_core_read()
        if ratio is None:
            print("fewer than two cores to probe (or no way to pin threads on this platform)")
            return 2
        total += 1
        split += ratio > SPLIT_AT
        verdict = "split across last-level caches" if ratio > SPLIT_AT else "sharing a last-level cache"
        print(f"{time.strftime('%H:%M:%S')}  {ratio:.2f}  {verdict}", flush=True)
        if time.monotonic() >= end:
            break
        time.sleep(1.0)
    print(f"split in {split} of {total} probes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
