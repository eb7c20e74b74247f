"""The flat parameter buffer: layout, views, weight masks."""

import numpy as np
import pytest

from deepff.params import ParamBuffer, staggered_zeros

SPECS = [("layer1.W", (3, 4), "weight"), ("layer1.b", (1, 4), "bias"),
         ("layer2.W", (4, 2), "weight"), ("layer2.gamma", (1, 2), "scale"), ("layer2.beta", (1, 2), "shift")]


@pytest.fixture
def buf():
    return ParamBuffer(SPECS, np.float64)


def test_layout(buf):
    assert buf.size == 12 + 4 + 8 + 2 + 2
    assert buf.names == [s[0] for s in SPECS]
    assert buf.shapes == [(3, 4), (1, 4), (4, 2), (1, 2), (1, 2)]
    assert buf.kinds == ["weight", "bias", "weight", "scale", "shift"]
    assert [(s.start, s.stop) for s in buf.slices] == [(0, 12), (12, 16), (16, 24), (24, 26), (26, 28)]
    assert buf.theta.shape == buf.grad.shape == (28,)
    assert buf.theta.dtype == buf.grad.dtype == np.float64
    assert not buf.theta.any() and not buf.grad.any()
    assert not np.shares_memory(buf.theta, buf.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype(dtype):
    b = ParamBuffer(SPECS, dtype)
    assert b.theta.dtype == dtype and b.param(0).dtype == dtype and b.gradient(2).dtype == dtype


def test_views_share_memory_both_ways(buf):
    for i, shape in enumerate(buf.shapes):
        p, g = buf.param(i), buf.gradient(i)
        assert p.shape == shape and g.shape == shape
        assert np.shares_memory(p, buf.theta) and np.shares_memory(g, buf.grad)
    W1 = buf.param(0)
    W1[1, 2] = 7.0                      # row-major: flat index 1 * 4 + 2
    assert buf.theta[6] == 7.0
    buf.theta[16:24] = np.arange(8.0)
    np.testing.assert_array_equal(buf.param(2), np.arange(8.0).reshape(4, 2))
    buf.theta *= 2                      # whole-buffer in-place update shows in every view
    assert W1[1, 2] == 14.0
    buf.gradient(1)[...] = 3.0
    np.testing.assert_array_equal(buf.grad[12:16], 3.0)


def test_weight_mask_and_slices(buf):
    assert buf.weight_slices() == [buf.slices[0], buf.slices[2]]
    mask = buf.weight_mask()
    expected = np.zeros(28)
    expected[0:12] = 1
    expected[16:24] = 1
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == buf.dtype
    assert buf.weight_mask() is mask  # cached


def test_empty_buffer():
    b = ParamBuffer([], np.float32)
    assert b.size == 0 and b.weight_slices() == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slot", [0, 1, 2, 3, 6])
def test_staggered_zeros_start_slot_kib_into_a_page(dtype, slot):
    a = staggered_zeros(1000, dtype, slot)
    assert a.shape == (1000,) and a.dtype == dtype and not a.any()
    assert a.ctypes.data % 4096 == (slot % 4) * 1024
    a[:] = 7                              # writable to the last element, and owns its bytes
    assert a.sum() == 7000 and a.base is not None


def test_theta_and_grad_start_at_different_page_offsets():
    b = ParamBuffer([("layer1.W", (784, 256), "weight")], np.float32)
    assert b.theta.ctypes.data % 4096 != b.grad.ctypes.data % 4096
