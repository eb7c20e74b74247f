"""Data augmentation for image inputs: random affine and elastic distortions.

The inputs are flattened images, one per row: an ``(n, H*W)`` array holds n
images of shape ``(H, W)`` (28 x 28 for MNIST). Each transform resamples an
image at displaced coordinates, with bilinear interpolation and 0 outside
the image (:func:`scipy.ndimage.map_coordinates`, one call for the whole
batch)::

    out[i, p] = image_i(q_i(p))        p a pixel (row, col), q_i(p) where it is read from

* **affine** (rotation, scale, shear, translation about the image centre c)::

      q(p) = c + M^{-1} (p - c - t)     M = R(rotation) Sh(shear) diag(scale_row, scale_col)

* **elastic** (Simard, Steinkraus and Platt 2003): a random displacement
  field, uniform in [-1, 1] at every pixel, smoothed by a Gaussian of width
  ``sigma`` pixels and scaled by ``alpha``::

      q(p) = p + alpha * (G_sigma * U)(p)       U ~ uniform(-1, 1), shape (2, H, W)

The random draws of a sample come from a generator keyed by
``(seed, epoch, sample index)``: the distortion of a sample depends on
nothing else, so a run is reproducible, a resumed run is bit-identical, and
neither the batch composition nor the number of processes changes it.
An :class:`Augment` object is also the trainer's per-batch input transform
(:attr:`deepff.training.Trainer.transform`): while a training step runs, a
worker thread prepares the next batch's distortions.

>>> import numpy as np, deepff.augment as aug
>>> X = np.random.default_rng(0).random((4, 28 * 28))
>>> a = aug.Augment("elastic", seed=0)
>>> a.apply(X, np.arange(4), epoch=0).shape
(4, 784)
"""

from __future__ import annotations

import math
import numbers
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage

from .errors import InputError, SpecError, choices

__all__ = ["Augment", "KINDS", "affine", "elastic", "elastic_field", "get"]

#: The transforms and the default of each parameter (used by ``deepff train --augment KIND``).
#: affine: rotation and shear in degrees, drawn from [-v, v]; scale drawn from [1 - v, 1 + v]
#: for each axis; translate in pixels, drawn from [-v, v] for each axis.
#: elastic: Simard et al.'s sigma = 4 and alpha = 34 for 28 x 28 digits.
KINDS = {
    "affine": {"rotation": 12.0, "scale": 0.12, "shear": 12.0, "translate": 2.0},
    "elastic": {"sigma": 4.0, "alpha": 34.0},
}


def _images(X, image_shape):
    """View rows of X as images: (n, H*W) -> (n, H, W)."""
    return X.reshape((X.shape[0],) + tuple(image_shape))


def _resample(images, coords, out):
    """Bilinear samples of each image at its own coordinates; 0 outside.

    The images are stacked into one tall image, each below a row of zeros,
    so that one 2-d :func:`~scipy.ndimage.map_coordinates` call serves the
    whole batch (a 3-d call with a batch axis would interpolate over 8
    neighbours instead of 4). Rows are clipped to [-1, H], inside the zero
    rows around each image, so no image reads its neighbour, and rounded
    to 1/65536 pixel.

    Parameters
    ----------
    images : ndarray of shape (n, H, W)
    coords : ndarray of shape (2, n, H, W), float64
        Where each output pixel of image i is read from (row, column), in
        pixels of image i; overwritten.
    out : ndarray of shape (n, H, W)
    """
    n, H, W = images.shape
    tall = np.zeros((n * (H + 1) + 1, W), dtype=images.dtype)     # row 0 of each block and the last: zeros
    tall[1:].reshape(n, H + 1, W)[:, :H] = images
    r = coords[0]
    # rows on a grid of 2^-16 pixel, so that adding the block's offset is exact: a sample's weights are then
    # the same bits wherever it sits in the batch
    np.clip(r, -1.0, float(H), out=r)
    r *= 65536.0
    np.rint(r, out=r)
    r /= 65536.0
    r += (np.arange(n, dtype=np.float64) * (H + 1) + 1)[:, None, None]
    # grid-constant: beyond the edge the image continues with zeros, and is interpolated into them
    ndimage.map_coordinates(tall, coords, output=out, order=1, mode="grid-constant", cval=0.0, prefilter=False)
    return out


def affine(X, image_shape, rotation, scale, shear, translate, out=None):
    """Apply one affine map per image (about the image centre).

    Parameters
    ----------
    X : ndarray of shape (n, H*W)
        Flattened images, one per row.
    image_shape : tuple (H, W)
    rotation : ndarray of shape (n,)
        Degrees, counter-clockwise as the image is displayed (row 0 on top).
    scale : ndarray of shape (n, 2)
        Factors along rows and columns (1: unchanged).
    shear : ndarray of shape (n,)
        Degrees; columns shift in proportion to the row.
    translate : ndarray of shape (n, 2)
        Pixels along rows (down) and columns (right).
    out : ndarray of shape (n, H*W), optional

    Returns
    -------
    ndarray of shape (n, H*W)
    """
    H, W = image_shape
    th = np.asarray(rotation, np.float64).reshape(-1) * (math.pi / 180.0)
    sh = np.asarray(shear, np.float64).reshape(-1) * (math.pi / 180.0)
    scale, translate = np.asarray(scale, np.float64), np.asarray(translate, np.float64)
    # in (row, col) coordinates with rows pointing down, a counter-clockwise turn on screen is
    # R = [[cos, -sin], [sin, cos]]; the shear Sh = [[1, 0], [tan, 1]] moves columns by tan(shear) * row
    # math, one sample at a time: numpy's vectorised sin/cos may round the last bit differently with the
    # array's length, and a sample's distortion must not depend on its batch
    cos, sin = np.array([math.cos(a) for a in th]), np.array([math.sin(a) for a in th])
    tan = np.array([math.tan(a) for a in sh])
    # M = R Sh diag(scale), written out element by element (no BLAS, whose rounding could depend on the
    # batch size): a sample's coordinates are then the same bits in any batch
    m00, m01 = (cos - sin * tan) * scale[:, 0], -sin * scale[:, 1]
    m10, m11 = (sin + cos * tan) * scale[:, 0], cos * scale[:, 1]
    det = m00 * m11 - m01 * m10
    i00, i01, i10, i11 = m11 / det, -m01 / det, -m10 / det, m00 / det       # M^{-1}
    cr, cc = (H - 1) / 2.0, (W - 1) / 2.0
    gr, gc = np.indices((H, W), dtype=np.float64)
    dr = gr[None] - (cr + translate[:, 0, None, None])                     # p - c - t, (n, H, W)
    dc = gc[None] - (cc + translate[:, 1, None, None])
    e = (slice(None), None, None)
    q = np.empty((2,) + dr.shape)                                           # c + M^{-1} (p - c - t)
    np.multiply(i00[e], dr, out=q[0])
    q[0] += i01[e] * dc
    q[0] += cr
    np.multiply(i10[e], dr, out=q[1])
    q[1] += i11[e] * dc
    q[1] += cc
    out = np.empty_like(X) if out is None else out
    _resample(_images(X, image_shape), q, _images(out, image_shape))
    return out


def elastic_field(uniform, sigma, alpha):
    """Simard's displacement field: ``alpha * (G_sigma * U)``, smoothed per image and component.

    Parameters
    ----------
    uniform : ndarray of shape (n, 2, H, W)
        Draws from uniform(-1, 1).
    sigma : float
        Width of the Gaussian, in pixels (0: no smoothing).
    alpha : float
        Scale of the displacements, in pixels.

    Returns
    -------
    ndarray of shape (n, 2, H, W)
        Row and column displacements.
    """
    smooth = ndimage.gaussian_filter(uniform, sigma=(0, 0, sigma, sigma), mode="constant", cval=0.0)
    smooth *= alpha
    return smooth


def elastic(X, image_shape, displacement, out=None):
    """Resample each image at ``p + displacement_i(p)``.

    Parameters
    ----------
    X : ndarray of shape (n, H*W)
    image_shape : tuple (H, W)
    displacement : ndarray of shape (n, 2, H, W)
        Row and column displacement of every pixel (see :func:`elastic_field`).
    out : ndarray of shape (n, H*W), optional

    Returns
    -------
    ndarray of shape (n, H*W)
    """
    grid = np.indices(tuple(image_shape), dtype=np.float64)                 # (2, H, W)
    coords = np.add(grid[:, None], displacement.transpose(1, 0, 2, 3))     # p + d(p), (2, n, H, W)
    out = np.empty_like(X) if out is None else out
    _resample(_images(X, image_shape), coords, _images(out, image_shape))
    return out


def _nonnegative(kind, key, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf:
        raise SpecError(f"augment {kind!r}: {key} must be a finite number >= 0, got {value!r}")
    return float(value)


class Augment:
    """Random affine or elastic distortions of flattened images, keyed by (seed, epoch, sample).

    Parameters
    ----------
    kind : {"affine", "elastic"}, default "elastic"
    image_shape : tuple (H, W), optional
        The shape of one image; a square is inferred from the feature count
        when not given (28 x 28 for 784 features).
    seed : int, optional
        Keys the draws; :meth:`Network.fit <deepff.model.Network.fit>` uses
        the network's seed when not given.
    **params
        affine: ``rotation`` (degrees), ``scale`` (fraction), ``shear``
        (degrees), ``translate`` (pixels); elastic: ``sigma``, ``alpha``
        (pixels). Defaults in :data:`KINDS`. Each random parameter is drawn
        uniformly from [-v, v] (scale: 1 + [-v, v]), per sample and epoch.

    Raises
    ------
    SpecError
        For an unknown kind or parameter, or a negative or non-finite value.
    """

    def __init__(self, kind="elastic", image_shape=None, seed=None, **params):
        if not isinstance(kind, str) or kind not in KINDS:
            raise SpecError(f"augment: unknown kind {kind!r}; valid kinds: {choices(KINDS)}")
        unknown = set(params) - set(KINDS[kind])
        if unknown:
            raise SpecError(f"augment {kind!r}: unknown parameter {sorted(unknown)[0]!r}; "
                            f"valid parameters: {choices(KINDS[kind])}, image_shape, seed")
        self.kind = kind
        self.params = {k: _nonnegative(kind, k, params.get(k, v)) for k, v in KINDS[kind].items()}
        if kind == "affine" and self.params["scale"] >= 1:
            raise SpecError(f"augment 'affine': scale must be < 1 (factors 1 +- scale), got {self.params['scale']}")
        if image_shape is not None:
            ok = isinstance(image_shape, (tuple, list)) and len(image_shape) == 2 and all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in image_shape)
            if not ok:
                raise SpecError(f"augment: image_shape must be two positive integers (height, width), "
                                f"got {image_shape!r}")
            image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.image_shape = image_shape
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise SpecError(f"augment: seed must be an integer >= 0 or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._pool, self._pending = None, None

    def get_config(self):
        """Return the constructor arguments (JSON-compatible)."""
        return {"kind": self.kind, **self.params,
                "image_shape": None if self.image_shape is None else list(self.image_shape), "seed": self.seed}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "kind")
        return f"Augment({self.kind!r}, {args})"

    def check(self, n_features):
        """Fix and check the image shape against the inputs' width, before training.

        Parameters
        ----------
        n_features : int

        Raises
        ------
        InputError
            When the image shape does not hold ``n_features`` pixels (or none
            was given and ``n_features`` is not a square).
        """
        if self.image_shape is None:
            side = math.isqrt(n_features)
            if side * side != n_features:
                raise InputError(f"augment needs the image shape: {n_features} features are not a square "
                                 "image; give image_shape=(height, width)")
            self.image_shape = (side, side)
        H, W = self.image_shape
        if H * W != n_features:
            raise InputError(f"augment: image_shape {H} x {W} holds {H * W} pixels, but the inputs have "
                             f"{n_features} features; give the shape of one image")
        if self.seed is None:
            raise InputError("augment needs a seed (the draws are keyed by seed, epoch and sample)")

    # ------------------------------------------------------------- draws
    def _rngs(self, idx, epoch):
        return [np.random.default_rng([self.seed, int(epoch), int(i)]) for i in idx]

    def draw(self, idx, epoch):
        """The random parameters of samples ``idx`` in ``epoch`` (each keyed by seed, epoch, index).

        Parameters
        ----------
        idx : ndarray of shape (n,)
            Sample indices (rows of the training set).
        epoch : int
            0-based.

        Returns
        -------
        dict of ndarray
            affine: "rotation" (n,), "scale" (n, 2), "shear" (n,),
            "translate" (n, 2); elastic: "displacement" (n, 2, H, W).
        """
        if self.image_shape is None or self.seed is None:
            raise InputError("Augment.draw needs the image shape and a seed: call check(n_features) first")
        rngs = self._rngs(idx, epoch)
        p = self.params
        if self.kind == "affine":
            u = np.array([r.uniform(-1.0, 1.0, 6) for r in rngs]).reshape(len(rngs), 6)
            return {"rotation": p["rotation"] * u[:, 0], "shear": p["shear"] * u[:, 1],
                    "scale": 1.0 + p["scale"] * u[:, 2:4], "translate": p["translate"] * u[:, 4:6]}
        H, W = self.image_shape
        u = np.empty((len(rngs), 2, H, W), dtype=np.float32)     # float32: the filter runs at twice the speed
        for k, r in enumerate(rngs):
            r.random(dtype=np.float32, out=u[k])
        u *= 2.0
        u -= 1.0                                                     # uniform(-1, 1)
        return {"displacement": elastic_field(u, p["sigma"], p["alpha"])}

    def apply(self, X, idx, epoch, out=None):
        """Distort the images ``X`` (the rows ``idx`` of the training set) for ``epoch``.

        Parameters
        ----------
        X : ndarray of shape (n, H*W)
            The images of samples ``idx``.
        idx : ndarray of shape (n,)
        epoch : int
        out : ndarray of shape (n, H*W), optional
            Must not overlap ``X``.

        Returns
        -------
        ndarray of shape (n, H*W)
        """
        if self.image_shape is None or self.seed is None:
            self.check(X.shape[1])
        d = self.draw(idx, epoch)
        if self.kind == "affine":
            return affine(X, self.image_shape, d["rotation"], d["scale"], d["shear"], d["translate"], out=out)
        return elastic(X, self.image_shape, d["displacement"], out=out)

    # ------------------------------------------------- the trainer's hook
    def _job(self, X, idx, epoch):
        return self.apply(np.take(X, idx, axis=0), idx, epoch)

    def __call__(self, X, idx, epoch, out, next_idx=None):
        """The trainer's per-batch transform: ``out`` = the distorted rows ``X[idx]``.

        The batch prepared in the background by the previous call is used
        when it is this one; then the batch ``next_idx`` is started.

        Parameters
        ----------
        X : ndarray of shape (n_samples, H*W)
            The whole training set.
        idx : ndarray of shape (m,)
        epoch : int
        out : ndarray of shape (m, H*W)
        next_idx : ndarray, optional
            The next batch's indices (the same epoch).
        """
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == epoch and np.array_equal(pending[1], idx) and pending[2] is X:
            out[...] = pending[3].result()
        else:
            if pending is not None:
                pending[3].result()    # let a stale job finish before anything else runs
            out[...] = self._job(X, idx, epoch)
        if next_idx is not None and len(next_idx):
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepff-augment")
            nxt = np.array(next_idx, copy=True)
            self._pending = (epoch, nxt, X, self._pool.submit(self._job, X, nxt, epoch))

    def close(self):
        """Stop the worker thread (a later call starts a new one)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[3].cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __getstate__(self):       # copies and pickles leave the thread behind
        state = dict(self.__dict__)
        state["_pool"], state["_pending"] = None, None
        return state


def get(identifier, seed=None):
    """Resolve an augmentation setting.

    Parameters
    ----------
    identifier : str, dict, Augment or None
        A kind ("elastic", "affine"), a dict ``{"kind": ..., **params}``
        (``image_shape``, ``seed`` allowed), an :class:`Augment`, or None.
    seed : int, optional
        Used when the setting names no seed.

    Returns
    -------
    Augment or None
        A new object (an instance given is copied).

    Raises
    ------
    SpecError
    """
    import copy

    if identifier is None:
        return None
    if isinstance(identifier, Augment):
        aug = copy.deepcopy(identifier)
    elif isinstance(identifier, str):
        aug = Augment(identifier)
    elif isinstance(identifier, dict):
        cfg = dict(identifier)
        if "kind" not in cfg:
            raise SpecError(f"augment: a mapping needs 'kind' ({choices(KINDS)}), got keys {sorted(cfg)}")
        aug = Augment(**cfg)
    else:
        raise SpecError(f"augment must be {choices(KINDS)}, a mapping with 'kind', an Augment or None, "
                        f"got {identifier!r}")
    if aug.seed is None and seed is not None:
        aug.seed = int(seed)
    return aug
