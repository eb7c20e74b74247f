"""Export a trained network to ONNX, and check the export with ONNX Runtime.

deepff's row-vector layer ``a^l = h^{l-1} W^l + b^l`` is exactly ONNX's
``Gemm(h, W, b)`` with ``W`` of shape (n_{l-1}, n_l), so the exported graph is
one Gemm per layer followed by its activation::

    X                          (N, n_0)   raw features, as ``deepff predict`` reads them
    h^0 = (X - mean) / std     (N, n_0)   the standardisation stored in the model (if any)
    a^l = Gemm(h^{l-1}, W^l, b^l)         batch normalisation (evaluation mode) folded into W^l, b^l
    h^l = f^l(a^l)                        every built-in activation; dropout is left out
    outputs                               "label" and "probabilities" (classifier) or "variable" (regressor)

The output names are the ones skl2onnx gives scikit-learn's MLPs with
``zipmap=False``; the input is called "X" and its batch dimension is dynamic.

Folding batch normalisation: with ``s = gamma / sqrt(running_var + eps)``,
``gamma (h W - mu) / sqrt(var + eps) + beta = h (W s) + (beta - mu s)``, so the
layer becomes one Gemm with ``W' = W s`` (each column scaled) and
``b' = beta - mu s``, computed in float64 and stored in the model's dtype.

The default opset is 17: ONNX Runtime has run it since release 1.12 (2022),
so older runtimes in servers, phones and browsers load the file, and deepff
needs nothing newer (GELU, an operator from opset 20, and Swish, from 24,
are written from primitive operators below those opsets). Newer opsets up
to the installed ``onnx`` package's are accepted with ``opset=``.

The ``onnx`` package builds and checks the graph; ``onnxruntime`` runs it
for :func:`verify_onnx`. Both are optional (``pip install "deepff[onnx]"``)
and imported only when these functions are called.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from . import activations as A
from .errors import InputError, MissingDependencyError, SpecError

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export_onnx", "to_onnx", "verify_onnx", "newest_runtime_opset"]

DEFAULT_OPSET = 17
MIN_OPSET = 13          # Softmax over the last axis alone (its meaning before 13 differs)
INPUT = "X"
LABEL, PROBABILITIES, VARIABLE = "label", "probabilities", "variable"
_GELU_OPSET, _SWISH_OPSET = 20, 24
_BN_EPS = 1e-5          # deepff.layers' epsilon


def _require(name):
    """Import an optional package, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(f"this needs the {name} package, which cannot be imported ({exc}); "
                                     'install it with: pip install "deepff[onnx]"') from None


# ------------------------------------------------------------- the source
@dataclass
class _Source:
    """What the exporter needs of a model, whatever its class."""

    net: object                       # the FeedForward engine
    preprocessing: dict | None = None
    classes: list | None = None
    strict_threshold: bool = False    # scikit-learn's label is p > 0.5, deepff's p >= 0.5
    metadata: dict = field(default_factory=dict)


def _sklearn_network(estimator):
    """The deepff engine inside a fitted ``deepff.sklearn`` estimator, up to date with its coefs_.

    The one place that reaches into the estimator (its attribute names may change).
    """
    sync = getattr(estimator, "_sync_params", None)
    if sync is not None:
        sync()            # coefs_ / intercepts_ the user replaced are copied into the engine
    return getattr(estimator, "network_", None) or estimator._net


def _source(model):
    """Describe ``model`` (Network, FeedForward, Net or fitted deepff.sklearn estimator)."""
    from .network import FeedForward

    if hasattr(model, "get_params") and hasattr(model, "predict"):     # a scikit-learn style estimator
        if not type(model).__module__.startswith("deepff."):
            raise InputError(f"{type(model).__name__} is not a deepff estimator; convert a scikit-learn MLP "
                             "with deepff.from_sklearn first")
        if not hasattr(model, "coefs_"):
            raise InputError(f"this {type(model).__name__} is not fitted yet: call fit before exporting it")
        classes = getattr(model, "classes_", None)
        meta = {}
        if getattr(model, "feature_names_in_", None) is not None:
            meta["feature_names"] = [str(c) for c in model.feature_names_in_]
        multi = getattr(model, "out_activation_", None) == "logistic" and model.n_outputs_ > 1
        return _Source(_sklearn_network(model), None, None if classes is None or multi else list(classes),
                       strict_threshold=True, metadata=meta)
    net = getattr(model, "network", model)      # the classic Net holds its engine
    if not isinstance(net, FeedForward):
        raise InputError(f"export_onnx takes a deepff Network, FeedForward, Net or fitted deepff.sklearn "
                         f"estimator, got {type(model).__name__}")
    if not net.built:
        raise InputError("the network has no weights yet: fit it (or build it) before exporting it")
    meta = net.metadata if isinstance(getattr(net, "metadata", None), dict) else {}
    names = meta.get("feature_names")
    return _Source(net, getattr(net, "preprocessing", None) or None, getattr(net, "classes", None) or None,
                   metadata={"feature_names": names} if isinstance(names, list) else {})


# -------------------------------------------------------------- the graph
class _Graph:
    """Nodes and constants of the graph being built, in one dtype."""

    def __init__(self, onnx, dtype, opset):
        self.onnx, self.dtype, self.opset = onnx, np.dtype(dtype), opset
        self.nodes, self.inits, self._n = [], [], 0

    def name(self, stem):
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem, value, dtype=None):
        """Add a constant tensor (in the graph's dtype unless told) and return its name."""
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.name(stem)
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type, inputs, stem=None, outputs=None, **attrs):
        """Add a node; return its (first) output name."""
        outputs = outputs or [self.name(stem or op_type.lower())]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), outputs, **attrs))
        return outputs[0]


def _neg_part(g, a, scale):
    """scale * (e^{min(a, 0)} - 1): the negative branch of ELU and SELU, from primitives."""
    em1 = g.op("Sub", [g.op("Exp", [g.op("Min", [a, g.const("zero", 0.0)])]), g.const("one", 1.0)])
    return g.op("Mul", [em1, g.const("scale", scale)])


def _where_positive(g, a, pos, neg):
    return g.op("Where", [g.op("Greater", [a, g.const("zero", 0.0)]), pos, neg])


def _elu(g, a, act):
    if g.dtype == np.float32:                   # the runtime's own kernel (it has none in float64)
        return g.op("Elu", [a], alpha=float(act.alpha))
    return _where_positive(g, a, a, _neg_part(g, a, act.alpha))


def _selu(g, a, act):
    if g.dtype == np.float32:
        return g.op("Selu", [a], alpha=float(act.alpha), gamma=float(act.scale))
    pos = g.op("Mul", [a, g.const("scale", act.scale)])
    return _where_positive(g, a, pos, _neg_part(g, a, act.scale * act.alpha))


def _leaky_relu(g, a, act):
    if g.dtype == np.float32:
        return g.op("LeakyRelu", [a], alpha=float(act.slope))
    return _where_positive(g, a, a, g.op("Mul", [a, g.const("slope", act.slope)]))   # the slope stays float64


def _softplus(g, a, act):
    if g.dtype == np.float32:
        return g.op("Softplus", [a])
    # max(a, 0) + log(1 + e^{-|a|}): never overflows, as deepff computes it
    tail = g.op("Log", [g.op("Add", [g.const("one", 1.0), g.op("Exp", [g.op("Neg", [g.op("Abs", [a])])])])])
    return g.op("Add", [g.op("Max", [a, g.const("zero", 0.0)]), tail])


def _gelu(g, a, act):
    if g.opset >= _GELU_OPSET and g.dtype == np.float32:
        return g.op("Gelu", [a], approximate="none")
    # a Phi(a) = 0.5 a (1 + erf(a / sqrt 2)); ONNX Runtime's Erf has no float64 kernel, so a float64
    # model computes erf in float32 (about 1e-7 absolute error) and the rest in float64
    x = g.op("Mul", [a, g.const("inv_sqrt2", 1.0 / math.sqrt(2.0))])
    if g.dtype == np.float64:
        erf = g.op("Cast", [g.op("Erf", [g.op("Cast", [x], to=g.onnx.TensorProto.FLOAT)])],
                   to=g.onnx.TensorProto.DOUBLE)
    else:
        erf = g.op("Erf", [x])
    cdf = g.op("Mul", [g.op("Add", [erf, g.const("one", 1.0)]), g.const("half", 0.5)])
    return g.op("Mul", [a, cdf])


def _silu(g, a, act):
    if g.opset >= _SWISH_OPSET:
        return g.op("Swish", [a], alpha=1.0)
    return g.op("Mul", [a, g.op("Sigmoid", [a])])


_ACTIVATIONS = {
    A.Linear: lambda g, a, act: a,
    A.ReLU: lambda g, a, act: g.op("Relu", [a]),
    A.Sigmoid: lambda g, a, act: g.op("Sigmoid", [a]),
    A.Tanh: lambda g, a, act: g.op("Tanh", [a]),
    A.Exp: lambda g, a, act: g.op("Exp", [a]),
    A.Softmax: lambda g, a, act: g.op("Softmax", [a], axis=-1),
    A.LeakyReLU: _leaky_relu,
    A.ELU: _elu,
    A.SELU: _selu,
    A.Softplus: _softplus,
    A.GELU: _gelu,
    A.SiLU: _silu,
}


def _check_exportable(net):
    """Refuse, naming the layer, what has no ONNX form here (before anything is built)."""
    for i, layer in enumerate(net.layers, start=1):
        if type(layer.activation) not in _ACTIVATIONS:   # a subclass may compute something else
            name = getattr(layer.activation, "name", type(layer.activation).__name__)
            raise SpecError(f"layer {i} uses the custom activation {name!r}, which has no ONNX form in deepff; "
                            f"ONNX export knows the built-in ones: {', '.join(sorted(A.names()))}")
    if net.task == "classification" and net.loss.fused_activation is None:
        raise SpecError(f"layer {len(net.layers)} (the output) feeds the custom classification loss "
                        f"{net.loss.name!r}, and export cannot tell how its outputs become labels; "
                        "ONNX export knows neg_log_likelihood and binary_cross_entropy")


def _layer(g, layer, h, i):
    """a = Gemm(h, W, b) with batch normalisation folded in; return f(a)."""
    W = np.asarray(layer.W, dtype=np.float64)
    if layer.batch_norm:
        s = layer.gamma.astype(np.float64) / np.sqrt(layer.running_var.astype(np.float64) + _BN_EPS)
        W = W * s
        b = layer.beta.astype(np.float64) - layer.running_mean.astype(np.float64) * s
    else:
        b = layer.b.astype(np.float64)
    a = g.op("Gemm", [h, g.const(f"W{i}", W), g.const(f"b{i}", b.reshape(-1))], stem=f"a{i}")
    return _ACTIVATIONS[type(layer.activation)](g, a, layer.activation)


def _class_tensor(classes):
    """The class labels as int64 (integers, integral numbers) or strings (anything else)."""
    if all(isinstance(c, (int, np.integer, float, np.floating)) and not isinstance(c, (bool, np.bool_))
           and float(c).is_integer() for c in classes):
        return np.array([int(c) for c in classes], dtype=np.int64)
    return np.array([str(c) for c in classes], dtype=object)


def _outputs(g, src, h):
    """Name the outputs: label + probabilities (classifier) or variable (regressor); return their infos."""
    onnx, net = g.onnx, src.net
    elem = onnx.helper.np_dtype_to_tensor_dtype(g.dtype)
    k = net.n_outputs
    if net.task != "classification":
        g.op("Identity", [h], outputs=[VARIABLE])
        return [onnx.helper.make_tensor_value_info(VARIABLE, elem, ["N", k])]
    if net.multi_label and k > 1:        # independent 0/1 labels
        g.op("Identity", [h], outputs=[PROBABILITIES])
        above = g.op("Greater" if src.strict_threshold else "GreaterOrEqual", [h, g.const("half", 0.5)])
        g.op("Cast", [above], outputs=[LABEL], to=onnx.TensorProto.INT64)
        return [onnx.helper.make_tensor_value_info(LABEL, onnx.TensorProto.INT64, ["N", k]),
                onnx.helper.make_tensor_value_info(PROBABILITIES, elem, ["N", k])]
    if k == 1:                           # one sigmoid unit: P(second class)
        g.op("Concat", [g.op("Sub", [g.const("one", 1.0), h]), h], outputs=[PROBABILITIES], axis=1)
        above = g.op("Greater" if src.strict_threshold else "GreaterOrEqual", [h, g.const("half", 0.5)])
        index = g.op("Reshape", [g.op("Cast", [above], to=onnx.TensorProto.INT64),
                                 g.const("flat", [-1], dtype=np.int64)])
        n_classes = 2
    else:
        g.op("Identity", [h], outputs=[PROBABILITIES])
        index = g.op("ArgMax", [h], axis=1, keepdims=0)
        n_classes = k
    classes = _class_tensor(src.classes if src.classes else list(range(n_classes)))
    g.op("Gather", [g.const("classes", classes, dtype=classes.dtype), index], outputs=[LABEL], axis=0)
    label_type = onnx.TensorProto.INT64 if classes.dtype == np.int64 else onnx.TensorProto.STRING
    return [onnx.helper.make_tensor_value_info(LABEL, label_type, ["N"]),
            onnx.helper.make_tensor_value_info(PROBABILITIES, elem, ["N", n_classes])]


def _check_opset(opset, onnx):
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise InputError(f"opset must be an integer from {MIN_OPSET} to {newest} (the newest this onnx package "
                         f"knows; default {DEFAULT_OPSET}), got {opset!r}")
    return int(opset)


def _metadata(src):
    from ._version import __version__
    from .spec import network_spec

    net = src.net
    props = {"deepff_version": __version__, "task": net.task, "dtype": str(np.dtype(net.dtype)),
             "spec": json.dumps(network_spec(net.n_features, net.layers, net.loss)),
             "preprocessing": "standardize" if src.preprocessing else "none"}
    if net.task == "classification":
        props["classes"] = json.dumps([c if isinstance(c, (int, float, str)) else str(c)
                                       for c in (src.classes or [])] or None)
    if src.metadata.get("feature_names") is not None:
        props["feature_names"] = json.dumps([str(c) for c in src.metadata["feature_names"]])
    return props


def to_onnx(model, opset=None):
    """Build the ONNX model of a deepff network, checked by ``onnx.checker`` (nothing is written).

    Parameters
    ----------
    model : Network, FeedForward, Net or fitted deepff.sklearn estimator
    opset : int, optional
        ONNX operator set, from :data:`MIN_OPSET` to the installed onnx
        package's newest; default :data:`DEFAULT_OPSET`.

    Returns
    -------
    onnx.ModelProto
        Input "X" of shape (N, n_features) in the network's dtype; outputs
        "label" (N,) or (N, k) and "probabilities" (N, C) for a classifier,
        "variable" (N, k) for a regressor.

    Raises
    ------
    SpecError
        For a custom activation (naming its layer) or custom classification loss.
    InputError
        For an unbuilt network, another kind of object, or a bad opset.
    """
    src = _source(model)
    onnx = _require("onnx")
    opset = _check_opset(opset, onnx)
    net = src.net
    _check_exportable(net)
    g = _Graph(onnx, net.dtype, opset)
    elem = onnx.helper.np_dtype_to_tensor_dtype(g.dtype)
    h = INPUT
    if src.preprocessing:                          # h^0 = (X - mean) / std, in the model's dtype
        h = g.op("Sub", [h, g.const("mean", src.preprocessing["mean"])])
        h = g.op("Div", [h, g.const("std", src.preprocessing["std"])])
    for i, layer in enumerate(net.layers, start=1):
        h = _layer(g, layer, h, i)
    outputs = _outputs(g, src, h)
    graph = onnx.helper.make_graph(g.nodes, "deepff", [onnx.helper.make_tensor_value_info(
        INPUT, elem, ["N", net.n_features])], outputs, initializer=g.inits)
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="deepff",
                                   doc_string="A deepff feedforward network exported by deepff.export_onnx")
    from ._version import __version__

    proto.producer_version = __version__
    proto.ir_version = onnx.helper.find_min_ir_version_for(opsets)   # older runtimes load the file too
    onnx.helper.set_model_props(proto, _metadata(src))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, opset=None):
    """Write ``model`` as an ONNX file, atomically (never half a file).

    Parameters
    ----------
    model : Network, FeedForward, Net or fitted deepff.sklearn estimator
    path : str or path-like
    opset : int, optional
        See :func:`to_onnx`.

    Returns
    -------
    onnx.ModelProto
        The model written.

    Raises
    ------
    SpecError, InputError
        See :func:`to_onnx`; nothing is written.
    OSError
        When the file cannot be written (an existing file is kept).
    """
    from .io import atomic_write, check_writable
    from .validation import check_file_path

    path = check_file_path(path)
    check_writable(path)                 # before the work: a missing folder is said at once
    proto = to_onnx(model, opset=opset)
    data = proto.SerializeToString()
    atomic_write(path, lambda fh: fh.write(data))
    return proto


def _reference(model, X):
    """deepff's own (probabilities or values, labels or None) for raw features X, as ``deepff predict``."""
    src = _source(model)
    if hasattr(model, "get_params"):                       # a deepff.sklearn estimator
        if hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(X))
            if proba.shape[1] == 1:
                proba = np.hstack([1 - proba, proba])
            return proba, np.asarray(model.predict(X))
        values = np.asarray(model.predict(X))
        return values.reshape(len(X), -1), None
    net = src.net
    if src.preprocessing:
        from .datasets import Standardizer

        X = Standardizer.from_dict(src.preprocessing).transform(X, dtype=net.dtype)
    out = net.predict_output(X)
    if net.task != "classification":
        return out, None
    labels = net.predict(X)
    if out.shape[1] == 1:
        out = np.hstack([1 - out, out])
    if labels.ndim == 1:
        classes = _class_tensor(src.classes if src.classes else list(range(out.shape[1])))
        labels = classes[labels]
    return out, labels


def verify_onnx(model, onnx_model, X):
    """Run an exported model in ONNX Runtime and compare it with deepff on the same raw features.

    Parameters
    ----------
    model : Network, FeedForward, Net or fitted deepff.sklearn estimator
        The model that was exported.
    onnx_model : onnx.ModelProto, bytes, str or path-like
        The export (a file path or the model itself).
    X : array-like of shape (n_samples, n_features)
        Raw features, as ``deepff predict`` reads them.

    Returns
    -------
    dict
        ``n_samples``; ``max_abs_diff``, the largest absolute difference
        between ONNX Runtime's probabilities (classifier) or values
        (regressor) and deepff's; ``labels_equal`` (classifier: whether every
        label agrees, else None); ``opset``.
    """
    onnx = _require("onnx")
    ort = _require("onnxruntime")
    if isinstance(onnx_model, onnx.ModelProto):
        proto = onnx_model
    elif isinstance(onnx_model, bytes):
        proto = onnx.load_from_string(onnx_model)
    else:
        proto = onnx.load(onnx_model)
    net = _source(model).net
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != net.n_features:
        raise InputError(f"X must have shape (n_samples, {net.n_features}), got {X.shape}")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {INPUT: np.ascontiguousarray(X, dtype=net.dtype)}
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, feed)))
    ref, labels = _reference(model, X)
    values = got.get(PROBABILITIES, got.get(VARIABLE))
    diff = float(np.max(np.abs(values.astype(np.float64) - ref.astype(np.float64)))) if len(X) else 0.0
    same = None
    if labels is not None:
        same = bool(np.array_equal(np.asarray(got[LABEL]).astype(str), np.asarray(labels).astype(str)))
    return {"n_samples": int(len(X)), "max_abs_diff": diff, "labels_equal": same,
            "opset": int(proto.opset_import[0].version)}


def newest_runtime_opset():
    """The newest opset at which ONNX Runtime runs every operator deepff exports.

    Found by loading, from the installed onnx package's newest opset down, a
    probe network holding every built-in activation, in float32 and float64
    (a runtime may know an opset yet lack a kernel for one of its operators).

    Returns
    -------
    int
    """
    from .layers import Dense
    from .network import FeedForward

    onnx = _require("onnx")
    ort = _require("onnxruntime")
    acts = [name for name in A.REGISTRY.classes if name != "softmax"]
    probes = [FeedForward([Dense(2, a) for a in acts] + [Dense(2, "softmax")], loss="neg_log_likelihood",
                          n_features=2, dtype=dtype, seed=0) for dtype in ("float32", "float64")]
    for opset in range(onnx.defs.onnx_opset_version(), MIN_OPSET - 1, -1):
        try:
            for net in probes:
                ort.InferenceSession(to_onnx(net, opset=opset).SerializeToString(),
                                     providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - the runtime refuses this opset or one of its operators
            continue
        return opset
    return MIN_OPSET
