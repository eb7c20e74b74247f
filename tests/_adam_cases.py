"""Divisors that Adam's float32 pass meets, shared by the tests of its rounding.

The compiled pass forms ``sqrt(v) / sqrt(bc2)`` as a float64 product by the
reciprocal; tests/test_optimizers.py checks that it rounds as the quotient
does (numpy only), and tests/test_kernels.py that the kernel computes it.
"""

from __future__ import annotations

import numpy as np


def bias_corrections():
    """float32 values c = sqrt(bc2) that Adam divides sqrt(v) by, and others in (0, 1] with awkward last bits."""
    f32 = np.float32
    rng = np.random.default_rng(7)
    cs = [f32(np.sqrt(1 - beta2 ** t)) for beta2 in (0.999, 0.99, 0.9999999) for t in (1, 2, 3, 7, 10, 100, 5000)]
    cs += list(rng.uniform(1e-8, 1.0, size=12).astype(f32))
    cs += [np.nextafter(f32(1), f32(0)), f32(1 - 2 ** -23 + 2 ** -24), (np.uint32(0x3f7fffff) - np.uint32(1)).view(f32),
           f32(0.75), f32(3) / f32(7), f32(2 ** -20) * f32(1.9999999)]
    return cs
