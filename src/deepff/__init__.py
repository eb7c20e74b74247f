"""deepff: deep feedforward neural networks on numpy, written to mirror the math.

Forward sweep a^l = h^{l-1} W^l + b^l, h^l = f^l(a^l); backward sweep from
g^l = dJ/da^l. Rows are samples; W^l is (n_{l-1}, n_l).
"""

from .errors import (
    DatasetError,
    DeepffError,
    DivergenceError,
    InputError,
    ModelFileError,
    SpecError,
)
from .gradcheck import gradcheck, gradcheck_report
from .layers import Dense, InputLayer
from .network import FeedForward

__version__ = "0.1.0"

__all__ = [
    "DatasetError",
    "DeepffError",
    "DivergenceError",
    "InputError",
    "ModelFileError",
    "SpecError",
    "Dense",
    "InputLayer",
    "FeedForward",
    "gradcheck",
    "gradcheck_report",
    "__version__",
]
