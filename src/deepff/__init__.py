"""deepff: deep feedforward neural networks on numpy, written to mirror the math.

Forward sweep a^l = h^{l-1} W^l + b^l, h^l = f^l(a^l); backward sweep from
g^l = dJ/da^l. Rows are samples; W^l is (n_{l-1}, n_l).

The main entry points:

* :class:`Network` (modern API: ``fit``, ``predict``, ``evaluate``) and
  :class:`Net` (the classic ``forward``/``loss``/``backward`` API), both on
  the engine :class:`FeedForward`;
* :class:`Dense` layers, :mod:`deepff.activations`, :mod:`deepff.losses`,
  :mod:`deepff.initializers`;
* :mod:`deepff.optimizers`, :mod:`deepff.schedules`,
  :mod:`deepff.regularizers` and :class:`Trainer` for the learning algorithm;
* :func:`gradcheck`, :func:`save`, :func:`load`.
"""

from . import activations, initializers, losses, optimizers, regularizers, schedules  # noqa: E402
from ._version import __version__  # noqa: E402 - one home for the version
from .classic import Net  # noqa: E402
from .convert import from_sklearn, from_torch, to_torch  # noqa: E402
from .errors import (  # noqa: E402
    DatasetError,
    DeepffError,
    DivergenceError,
    InputError,
    ModelFileError,
    SpecError,
)
from .gradcheck import gradcheck, gradcheck_details, gradcheck_report  # noqa: E402
from .io import load, load_checkpoint, save, save_checkpoint  # noqa: E402
from .layers import Dense, InputLayer  # noqa: E402
from .model import Network  # noqa: E402
from .network import FeedForward  # noqa: E402
from .onnx import export_onnx  # noqa: E402
from .regularizers import Penalty  # noqa: E402
from .training import Callback, EarlyStopping, History, Trainer  # noqa: E402

__all__ = [
    "__version__",
    "activations",
    "initializers",
    "losses",
    "optimizers",
    "regularizers",
    "schedules",
    "Net",
    "Network",
    "FeedForward",
    "Dense",
    "InputLayer",
    "Trainer",
    "History",
    "Callback",
    "EarlyStopping",
    "Penalty",
    "gradcheck",
    "gradcheck_report",
    "gradcheck_details",
    "save",
    "load",
    "save_checkpoint",
    "load_checkpoint",
    "DeepffError",
    "SpecError",
    "InputError",
    "ModelFileError",
    "DatasetError",
    "DivergenceError",
    "export_onnx",
    "from_sklearn",
    "to_torch",
    "from_torch",
]
