"""The optional numba kernels give the numpy reference's results (to float rounding)."""

import numpy as np
import pytest

from deepff import _kernels
from deepff.optimizers import Adam, AdamW

pytestmark = pytest.mark.skipif(not _kernels.enabled(), reason="numba not installed (optional extra 'fast')")

CASES = [
    (Adam, {}),
    (Adam, {"weight_decay": 0.01}),
    (Adam, {"amsgrad": True}),
    (Adam, {"betas": (0.8, 0.99), "eps": 1e-6, "lr": 0.01}),
    (AdamW, {}),
    (AdamW, {"weight_decay": 0.1, "amsgrad": True}),
]


# float32: theta is O(1), so 1e-5 absolute is a few ulps accumulated over 20 steps
@pytest.mark.parametrize("dtype,rtol,atol", [("float64", 1e-12, 1e-14), ("float32", 2e-5, 1e-5)])
@pytest.mark.parametrize("cls,kwargs", CASES, ids=[f"{c.__name__}-{k}" for c, k in CASES])
def test_fused_adam_matches_numpy_reference(cls, kwargs, dtype, rtol, atol):
    rng = np.random.default_rng(0)
    theta0 = rng.normal(size=1000).astype(dtype)
    fused, ref = cls(**kwargs), cls(**kwargs)
    ref.use_kernel = False
    a, b = theta0.copy(), theta0.copy()
    for step in range(20):
        g = (np.sin(3 * a) + 0.5 * a).astype(dtype)
        gb = (np.sin(3 * b) + 0.5 * b).astype(dtype)
        fused.step(a, g)
        ref.step(b, gb)
        if step == 10:  # a schedule changes lr between steps
            fused.lr = ref.lr = fused.lr * 0.5
    assert a.dtype == np.dtype(dtype)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    assert not np.array_equal(a, theta0)  # the kernel really updated theta
    for name in fused.state:
        if isinstance(fused.state[name], np.ndarray):
            np.testing.assert_allclose(fused.state[name], ref.state[name], rtol=rtol * 10, atol=atol)
