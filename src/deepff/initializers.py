"""Initialisation schemes for weights and biases.

An initializer is an object called as ``init(rng, out, fan_in, fan_out)``:
it fills the preallocated array ``out`` (a view into the network's flat
parameter buffer, of shape (fan_in, fan_out) for W or (1, fan_out) for b)
in place, drawing from the numpy ``Generator`` ``rng``. Draws are made in
float64 and then cast, so the same seed gives the same weights (up to
rounding) in float32 and float64.

===============  =====================================  ==========================
name             distribution                           scale
===============  =====================================  ==========================
he_normal        N(0, std^2)                            std = sqrt(2 / fan_in)
he_uniform       U(-limit, limit)                       limit = sqrt(6 / fan_in)
glorot_normal    N(0, std^2)                            std = sqrt(2 / (fan_in + fan_out))
glorot_uniform   U(-limit, limit)                       limit = sqrt(6 / (fan_in + fan_out))
lecun_normal     N(0, std^2)                            std = sqrt(1 / fan_in)
lecun_uniform    U(-limit, limit)                       limit = sqrt(3 / fan_in)
normal           N(mean, std^2)                         std = 0.01 by default
uniform          U(-limit, limit)                       limit = 0.05 by default
zeros            0
constant         value                                  value = 0 by default
===============  =====================================  ==========================

``xavier_normal`` and ``xavier_uniform`` are aliases of the Glorot pair.
:func:`default_for` picks He for the ReLU family, LeCun for SELU and Glorot
otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import SpecError
from .registry import Registry

__all__ = [
    "Initializer",
    "HeNormal",
    "HeUniform",
    "GlorotNormal",
    "GlorotUniform",
    "LecunNormal",
    "LecunUniform",
    "Normal",
    "Uniform",
    "Zeros",
    "Constant",
    "get",
    "register",
    "names",
    "default_for",
]


def _finite(owner, key, value, non_negative=False):
    """Check an initializer parameter: a finite real number (>= 0 if asked)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or (non_negative and value < 0):
        kind = "a finite number >= 0" if non_negative else "a finite number"
        raise SpecError(f"initializer {owner!r}: {key} must be {kind}, got {value!r}")
    return float(value)


class Initializer:
    """Base class: fills a parameter array in place."""

    name = "initializer"

    def __call__(self, rng, out, fan_in, fan_out):
        """Fill ``out`` in place.

        Parameters
        ----------
        rng : numpy.random.Generator
        out : ndarray of shape (fan_in, fan_out) or (1, fan_out)
        fan_in, fan_out : int
            Widths of the layer's input and output.

        Returns
        -------
        ndarray
            ``out``.
        """
        out[...] = self.sample(rng, out.shape, fan_in, fan_out)
        return out

    def sample(self, rng, shape, fan_in, fan_out):
        """Return a float64 array of ``shape`` drawn from the scheme.

        Parameters
        ----------
        rng : numpy.random.Generator
        shape : tuple of int
        fan_in, fan_out : int

        Returns
        -------
        ndarray of shape ``shape``
        """
        raise NotImplementedError

    def get_config(self):
        """Return the constructor arguments as a dict."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _VarianceScaling(Initializer):
    """N(0, scale/fan) or U(-sqrt(3 scale/fan), +sqrt(3 scale/fan))."""

    scale = 1.0
    mode = "fan_in"
    distribution = "normal"

    def sample(self, rng, shape, fan_in, fan_out):
        """See :meth:`Initializer.sample`."""
        fan = fan_in if self.mode == "fan_in" else (fan_in + fan_out) / 2
        var = self.scale / max(fan, 1)
        if self.distribution == "normal":
            return rng.normal(0.0, math.sqrt(var), size=shape)
        limit = math.sqrt(3 * var)
        return rng.uniform(-limit, limit, size=shape)


class HeNormal(_VarianceScaling):
    """He et al. (2015): N(0, 2 / fan_in). For the ReLU family."""

    name, scale = "he_normal", 2.0


class HeUniform(_VarianceScaling):
    """He et al. (2015): U(+-sqrt(6 / fan_in))."""

    name, scale, distribution = "he_uniform", 2.0, "uniform"


class GlorotNormal(_VarianceScaling):
    """Glorot & Bengio (2010): N(0, 2 / (fan_in + fan_out))."""

    name, mode = "glorot_normal", "fan_avg"


class GlorotUniform(_VarianceScaling):
    """Glorot & Bengio (2010): U(+-sqrt(6 / (fan_in + fan_out)))."""

    name, mode, distribution = "glorot_uniform", "fan_avg", "uniform"


class LecunNormal(_VarianceScaling):
    """LeCun (1998): N(0, 1 / fan_in). The partner of SELU."""

    name = "lecun_normal"


class LecunUniform(_VarianceScaling):
    """LeCun (1998): U(+-sqrt(3 / fan_in))."""

    name, distribution = "lecun_uniform", "uniform"


class Normal(Initializer):
    """N(mean, std^2).

    Parameters
    ----------
    std : float, default 0.01
    mean : float, default 0.0
    """

    name = "normal"

    def __init__(self, std=0.01, mean=0.0):
        self.std = _finite(self.name, "std", std, non_negative=True)
        self.mean = _finite(self.name, "mean", mean)

    def sample(self, rng, shape, fan_in, fan_out):
        """See :meth:`Initializer.sample`."""
        return rng.normal(self.mean, self.std, size=shape)

    def get_config(self):
        """Return ``{"std": std, "mean": mean}``."""
        return {"std": self.std, "mean": self.mean}


class Uniform(Initializer):
    """U(-limit, limit).

    Parameters
    ----------
    limit : float, default 0.05
    """

    name = "uniform"

    def __init__(self, limit=0.05):
        self.limit = _finite(self.name, "limit", limit, non_negative=True)

    def sample(self, rng, shape, fan_in, fan_out):
        """See :meth:`Initializer.sample`."""
        return rng.uniform(-self.limit, self.limit, size=shape)

    def get_config(self):
        """Return ``{"limit": limit}``."""
        return {"limit": self.limit}


class Constant(Initializer):
    """Every entry equal to ``value``.

    Parameters
    ----------
    value : float, default 0.0
    """

    name = "constant"

    def __init__(self, value=0.0):
        self.value = _finite(self.name, "value", value)

    def sample(self, rng, shape, fan_in, fan_out):
        """See :meth:`Initializer.sample`."""
        return np.full(shape, self.value)

    def get_config(self):
        """Return ``{"value": value}``."""
        return {"value": self.value}


class Zeros(Constant):
    """Every entry 0 (the default for biases)."""

    name = "zeros"

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        """Return ``{}``."""
        return {}


REGISTRY = Registry(
    "initializer",
    Initializer,
    aliases={"xavier_normal": "glorot_normal", "xavier_uniform": "glorot_uniform", "zero": "zeros"},
)
register = REGISTRY.register
"""Register a new initializer class under its ``name`` (:meth:`deepff.registry.Registry.register`)."""
names = REGISTRY.names
"""The registered initializer names, sorted (:meth:`deepff.registry.Registry.names`)."""

for _cls in (HeNormal, HeUniform, GlorotNormal, GlorotUniform, LecunNormal, LecunUniform,
             Normal, Uniform, Zeros, Constant):
    register(_cls)


def get(identifier):
    """Return an :class:`Initializer` for a name, a config dict or an instance.

    Parameters
    ----------
    identifier : str, dict or Initializer
        ``"he_normal"``, ``{"name": "normal", "std": 0.1}``, or an instance.

    Returns
    -------
    Initializer

    Raises
    ------
    SpecError
        For an unknown name (the valid ones are listed) or bad parameters.
    """
    return REGISTRY.get(identifier)


_RELU_FAMILY = {"relu", "leaky_relu", "elu", "gelu", "silu"}


def default_for(activation_name):
    """Return the default weight initializer name for an activation.

    Parameters
    ----------
    activation_name : str
        Registered activation name.

    Returns
    -------
    str
        ``"he_normal"`` for the ReLU family (relu, leaky_relu, elu, gelu,
        silu), ``"lecun_normal"`` for selu, ``"glorot_uniform"`` otherwise.
    """
    if activation_name in _RELU_FAMILY:
        return "he_normal"
    if activation_name == "selu":
        return "lecun_normal"
    return "glorot_uniform"
