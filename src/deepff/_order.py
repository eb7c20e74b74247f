"""The order of the rows in an epoch, and gathering a batch of rows, for data of any size.

Up to :data:`LAZY_ROWS` rows an epoch's order is ``rng.permutation(n)``, an
array of n int64. Past it (data that may not fit in memory) the order is a
:class:`LazyPermutation`: a keyed bijection of 0..n-1 (a four-round Feistel
network with cycle walking) evaluated one batch of positions at a time, so
the order costs no memory per row. Either way every rank of a distributed run
draws the same order from the same generator.
"""

from __future__ import annotations

import numpy as np

#: epochs over more rows than this use a LazyPermutation
LAZY_ROWS = 1 << 22

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def epoch_order(rng, n, shuffle):
    """The order of an epoch's n rows: an array, or a :class:`LazyPermutation` past LAZY_ROWS rows.

    Parameters
    ----------
    rng : numpy.random.Generator
        The network's shuffling generator (one draw per epoch).
    n : int
    shuffle : bool
        False gives the rows in file order.

    Returns
    -------
    ndarray of shape (n,) or LazyPermutation
    """
    if n <= LAZY_ROWS:
        return rng.permutation(n) if shuffle else np.arange(n)
    return LazyPermutation(n, int(rng.integers(1 << 62)) if shuffle else None)


class LazyPermutation:
    """A pseudo-random permutation of 0..n-1 whose slices are computed when asked for.

    Parameters
    ----------
    n : int
    key : int or None
        The permutation's key; None gives the identity.
    """

    def __init__(self, n, key):
        self.n, self.key = int(n), key
        self.shape = (self.n,)
        self._half = max(1, (int(self.n - 1).bit_length() + 1) // 2)   # 2^(2 half) >= n
        if key is not None:
            keys = np.random.SeedSequence(key).generate_state(4, dtype=np.uint64)
            self._keys = [np.uint64(k) for k in keys]

    def _rounds(self, x):
        h = np.uint64(self._half)
        mask = np.uint64((1 << self._half) - 1)
        left, right = x >> h, x & mask
        with np.errstate(over="ignore"):
            for k in self._keys:
                f = (right + k) * _M1
                f ^= f >> np.uint64(29)
                f *= _M2
                f ^= f >> np.uint64(32)
                left, right = right, left ^ (f & mask)
        return (left << h) | right

    def __getitem__(self, positions):
        """Rows at ``positions`` (a slice) of the order.

        Parameters
        ----------
        positions : slice

        Returns
        -------
        ndarray of shape (k,), int64
        """
        x = np.arange(*positions.indices(self.n), dtype=np.uint64)
        if self.key is None:
            return x.astype(np.int64)
        y = self._rounds(x)
        out = y >= np.uint64(self.n)
        while out.any():           # cycle walking: a value past n is mapped again until it lands inside
            y[out] = self._rounds(y[out])
            out = y >= np.uint64(self.n)
        return y.astype(np.int64)

    def copy(self):
        """The whole order as an array (for a checkpoint taken mid-epoch).

        Returns
        -------
        ndarray of shape (n,), int64
        """
        return self[0:self.n]


def gather(A, idx, out):
    """``out[...] = A[idx]`` for a batch of rows, without copying all of A.

    ``np.take`` is the fast path for a C-contiguous array; it would first copy
    a strided array (a memory-mapped file's columns) whole, so such arrays are
    indexed row by row instead.

    Parameters
    ----------
    A : ndarray of shape (n, k) or (n,), or scipy.sparse CSR matrix of shape (n, k)
    idx : ndarray of shape (m,)
        Valid row indices.
    out : ndarray of shape (m, k) or (m,)

    Returns
    -------
    ndarray
        ``out``.
    """
    if not isinstance(A, np.ndarray) and hasattr(A, "toarray"):   # a scipy.sparse CSR matrix
        out[...] = A[idx].toarray()
        return out
    if A.flags.c_contiguous:
        return np.take(A, idx, axis=0, out=out, mode="clip")
    out[...] = A[idx]
    return out
