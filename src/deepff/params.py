"""One flat buffer for every parameter, and a twin buffer for the gradients.

A network with layers l = 1..L owns ``theta``, a 1-D array holding W^1,
b^1, W^2, b^2, ... back to back, and ``grad``, an array of the same size
and layout holding dJ/dW^1, dJ/db^1, .... Each layer's ``W``, ``b``,
``dW`` and ``db`` are *views* into these buffers, so:

* an optimizer updates every parameter with a few whole-buffer numpy calls
  (``theta -= lr * grad``), whatever the depth;
* saving, loading and comparing weights is one array;
* views must never be rebound: update them in place (``W[...] = ...``,
  ``theta -= ...``), never ``layer.W = new_array``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ParamBuffer", "staggered_zeros"]

_PAGE = 4096        # bytes: the stride at which a core's load-store check confuses addresses
_STAGGER = 1024     # bytes between the page offsets of buffers a pass streams together


def staggered_zeros(size, dtype, slot):
    """Return a zeroed 1-D array that starts ``slot`` KiB past a page boundary.

    An optimizer's pass streams ``theta``, ``grad`` and its state arrays
    side by side. When they all start at the same offset within a 4 KiB
    page, a store to one aliases the loads from the others in the core's
    memory-ordering check (4K aliasing) and the pass runs up to a quarter
    slower. Buffers given different slots start 1 KiB apart.

    Parameters
    ----------
    size : int
        Number of elements.
    dtype : numpy dtype
    slot : int
        0, 1, 2, 3 (taken modulo 4): the offset in KiB within a page.

    Returns
    -------
    ndarray of shape (size,)
        Zeros, a view into a slightly larger byte buffer it keeps alive.
    """
    dtype = np.dtype(dtype)
    nbytes = int(size) * dtype.itemsize
    raw = np.zeros(nbytes + 2 * _PAGE, dtype=np.uint8)     # calloc: pages are mapped when touched
    start = (-raw.ctypes.data) % _PAGE + (slot % 4) * _STAGGER
    return raw[start:start + nbytes].view(dtype)


class ParamBuffer:
    """Contiguous storage for a list of named parameter arrays.

    Parameters
    ----------
    specs : list of (str, tuple of int, str)
        ``(name, shape, kind)`` for each array in order; ``kind`` is
        ``"weight"`` for arrays that weight penalties and max-norm apply
        to, anything else (``"bias"``, ``"scale"``, ``"shift"``) otherwise.
    dtype : numpy dtype
        float32 or float64.

    Attributes
    ----------
    theta : ndarray of shape (n_params,)
        All parameters.
    grad : ndarray of shape (n_params,)
        All gradients, in the same layout.
    names : list of str
    shapes : list of tuple of int
    kinds : list of str
    slices : list of slice
        Where each array lives in ``theta`` and ``grad``.
    """

    def __init__(self, specs, dtype):
        self.dtype = np.dtype(dtype)
        self.names = [s[0] for s in specs]
        self.shapes = [tuple(int(d) for d in s[1]) for s in specs]
        self.kinds = [s[2] for s in specs]
        self.slices = []
        start = 0
        for shape in self.shapes:
            size = math.prod(shape)
            self.slices.append(slice(start, start + size))
            start += size
        self.theta = staggered_zeros(start, self.dtype, 0)
        self.grad = staggered_zeros(start, self.dtype, 1)
        self._weight_mask = None

    @property
    def size(self):
        """Total number of scalar parameters (int)."""
        return self.theta.size

    def param(self, i):
        """Return the i-th parameter as a view of ``theta`` with its shape.

        Parameters
        ----------
        i : int

        Returns
        -------
        ndarray of shape ``shapes[i]``
        """
        return self.theta[self.slices[i]].reshape(self.shapes[i])

    def gradient(self, i):
        """Return the i-th gradient as a view of ``grad`` with its shape.

        Parameters
        ----------
        i : int

        Returns
        -------
        ndarray of shape ``shapes[i]``
        """
        return self.grad[self.slices[i]].reshape(self.shapes[i])

    def weight_slices(self):
        """Return the slices of ``theta`` that hold weight matrices.

        Returns
        -------
        list of slice
        """
        return [s for s, k in zip(self.slices, self.kinds) if k == "weight"]

    def weight_mask(self):
        """Return a 0/1 array marking the entries of ``theta`` that are weights.

        Returns
        -------
        ndarray of shape (n_params,)
            1 where the entry belongs to a weight matrix, 0 for biases,
            batch-norm scales and shifts. Cached after the first call.
        """
        if self._weight_mask is None:
            mask = np.zeros(self.size, dtype=self.dtype)
            for s in self.weight_slices():
                mask[s] = 1
            self._weight_mask = mask
        return self._weight_mask
