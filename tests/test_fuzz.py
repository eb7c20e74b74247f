"""Property-based tests: malformed specs raise SpecError, corrupted files raise ModelFileError.

Each property runs at least ``EXAMPLES`` examples; the last test checks the
counts, so a silently shortened run cannot pass.
"""

from __future__ import annotations

import collections
import copy
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepff
from _fuzzing import COUNTS, time_limit
from deepff import Callback, ModelFileError, Network, SpecError, Trainer
from deepff.io import load_checkpoint, save_checkpoint
from deepff.spec import parse_config

EXAMPLES = 500
# derandomized: the same examples on every run, so the counts the suite asserts cannot flake
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

RAN = COUNTS  # examples per property (printed in the terminal summary by tests/conftest.py)


def _only_spec_errors(fn, value):
    with time_limit():
        try:
            fn(value)
        except SpecError as exc:
            assert str(exc)


def _from_spec(spec):
    net = Network.from_spec(spec)
    assert net.built and net.params.theta.ndim == 1


# ------------------------------------------------------------ strategies
NAMES = ["input", "fullyconn", "output", "relu", "softmax", "sigmoid", "tanh", "linear", "leaky_relu", "elu",
         "mse", "huber", "neg_log_likelihood", "binary_cross_entropy", "he_normal", "normal", "uniform",
         "constant", "zeros", "glorot_uniform", "float32", "float64", "sgd", "adam", "cosine", "step",
         "plateau", "balanced", "val_loss"]
LAYER_KEYS = ["layer_type", "n_features", "batch_size", "n_neurons", "activation", "loss_type", "init",
              "bias_init", "dropout", "batch_norm", "max_norm"]
PARAM_KEYS = ["name", "slope", "alpha", "std", "mean", "limit", "value", "delta"]
CONFIG_KEYS = ["layers", "training", "dtype", "seed"]
TRAINING_KEYS = ["epochs", "batch_size", "shuffle", "optimizer", "schedule", "regularization", "clip_norm",
                 "validation_split", "early_stopping", "class_weight"]
OPTION_KEYS = ["lr", "momentum", "betas", "eps", "weight_decay", "nesterov", "step_size", "gamma",
               "total_steps", "warmup_steps", "min_lr", "factor", "patience", "min_delta", "monitor",
               "restore_best", "l1", "l2", "elastic_net", "l1_ratio"]
HUGE = [2 ** 60, 2 ** 63, 10 ** 30]  # allocation fails at once, whatever the overcommit policy

numbers = st.one_of(st.integers(-3, 40), st.sampled_from(HUGE + [-(2 ** 63)]),
                    st.floats(allow_nan=True, allow_infinity=True))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8), st.sampled_from(NAMES))
keys = st.one_of(st.sampled_from(LAYER_KEYS + PARAM_KEYS + CONFIG_KEYS + TRAINING_KEYS + OPTION_KEYS),
                 st.text(max_size=5), st.integers(-2, 3), st.none(), st.booleans(), st.floats(0, 1))
anything = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.tuples(inner, inner),
                                                         st.dictionaries(keys, inner, max_size=5)),
                        max_leaves=16)
identifier = st.one_of(st.sampled_from(NAMES), st.fixed_dictionaries(
    {"name": st.sampled_from(NAMES)}, optional={k: anything for k in PARAM_KEYS[1:]}))
layer_like = st.dictionaries(st.one_of(st.sampled_from(LAYER_KEYS), keys),
                             st.one_of(scalars, identifier, anything), max_size=7)
spec_like = st.one_of(anything, st.lists(st.one_of(layer_like, anything), max_size=5))

VALID_SPEC = [
    {"layer_type": "input", "n_features": 4, "batch_size": 8},
    {"layer_type": "fullyconn", "n_neurons": 5, "activation": {"name": "leaky_relu", "slope": 0.1},
     "init": "he_normal", "bias_init": {"name": "constant", "value": 0.1}, "dropout": 0.2,
     "batch_norm": True, "max_norm": 3.0},
    {"layer_type": "fullyconn", "n_neurons": 3, "activation": "tanh", "init": {"name": "normal", "std": 0.1}},
    {"layer_type": "output", "n_neurons": 2, "activation": "softmax", "loss_type": "neg_log_likelihood"},
]
VALID_TRAINING = {
    "epochs": 3, "batch_size": 16, "shuffle": True,
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "schedule": {"name": "cosine", "total_steps": 10},
    "regularization": {"l2": 1e-4},
    "clip_norm": 1.0, "validation_split": 0.1,
    "early_stopping": {"patience": 2, "monitor": "val_loss"},
    "class_weight": "balanced",
}
OUT_OF_RANGE = st.sampled_from([0, -1, -0.5, 1, 1.0, 1.5, 2, True, False, math.nan, math.inf, -math.inf,
                                *HUGE, "3", [3], {"n": 3}, None])


def _containers(value):
    """Every dict and list inside ``value`` (itself included)."""
    out = [value] if isinstance(value, (dict, list)) else []
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for child in children:
        out += _containers(child)
    return out


@st.composite
def mutated(draw, valid):
    value = copy.deepcopy(valid)

    def fresh(strategy):  # never share a drawn (mutable) object between examples
        return copy.deepcopy(draw(strategy))

    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(_containers(value)))
        op = draw(st.sampled_from(["delete", "retype", "out-of-range", "unknown-name", "add-key",
                                   "structure"]))
        if isinstance(target, dict):
            existing = sorted(target, key=repr)
            key = draw(st.sampled_from(existing)) if existing else fresh(keys)
            if op == "delete" and existing:
                del target[key]
            elif op == "retype":
                target[key] = fresh(anything)
            elif op == "out-of-range":
                target[key] = fresh(OUT_OF_RANGE)
            elif op == "unknown-name":
                target[key] = fresh(st.one_of(st.text(max_size=10), st.sampled_from(NAMES)))
            elif op == "add-key":
                target[fresh(keys)] = fresh(st.one_of(scalars, anything))
            else:
                target[key] = fresh(st.one_of(st.just([]), st.just({}), st.lists(anything, max_size=3)))
        else:
            if op == "delete" and target:
                del target[draw(st.integers(0, len(target) - 1))]
            elif op in ("retype", "out-of-range") and target:
                target[draw(st.integers(0, len(target) - 1))] = fresh(anything if op == "retype" else OUT_OF_RANGE)
            elif op == "structure" and target:
                i, j = draw(st.integers(0, len(target) - 1)), draw(st.integers(0, len(target) - 1))
                target[i], target[j] = target[j], target[i]
            else:
                extra = st.sampled_from(valid) if isinstance(valid, list) else anything
                target.insert(draw(st.integers(0, len(target))), fresh(st.one_of(extra, anything)))
    return value


# --------------------------------------------------------------- spec fuzz
@FUZZ
@given(spec_like)
def test_random_structures_raise_only_spec_error(spec):
    RAN["random-structures"] += 1
    _only_spec_errors(_from_spec, spec)
    _only_spec_errors(parse_config, spec)
    _only_spec_errors(parse_config, {"layers": spec})


@FUZZ
@given(mutated(VALID_SPEC))
def test_mutated_specs_raise_only_spec_error(spec):
    RAN["mutated-specs"] += 1
    _only_spec_errors(_from_spec, spec)
    _only_spec_errors(parse_config, spec)


@FUZZ
@given(mutated({"layers": VALID_SPEC, "training": VALID_TRAINING, "dtype": "float64", "seed": 3}))
def test_mutated_configs_raise_only_spec_error(config):
    RAN["mutated-configs"] += 1
    _only_spec_errors(parse_config, config)


def test_the_valid_spec_and_config_are_valid():
    Network.from_spec(VALID_SPEC)
    parse_config({"layers": VALID_SPEC, "training": VALID_TRAINING, "dtype": "float64", "seed": 3})


# ----------------------------------------------------------- file corruption
class _StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer, step, batch_size, loss):
        if step == self.step:
            trainer.request_stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny model and a tiny mid-epoch checkpoint, as bytes, and a scratch folder."""
    folder = tmp_path_factory.mktemp("fuzz")
    spec = [
        {"layer_type": "input", "n_features": 3},
        {"layer_type": "fullyconn", "n_neurons": 4, "activation": "relu", "batch_norm": True, "dropout": 0.1},
        {"layer_type": "output", "n_neurons": 2, "activation": "softmax", "loss_type": "neg_log_likelihood"},
    ]
    net = Network.from_spec(spec, seed=0)
    rng = np.random.default_rng(0)
    X = net.prepare_inputs(rng.normal(size=(24, 3)))
    Y = net.prepare_targets(rng.integers(0, 2, 24), 24)
    trainer = Trainer(net, optimizer={"name": "adam", "lr": 0.01}, schedule={"name": "step", "step_size": 1},
                      early_stopping={"monitor": "loss", "patience": 3}, epochs=5, batch_size=8,
                      callbacks=[_StopAt(5)])
    trainer.fit(X, Y)
    save_checkpoint(trainer, folder / "ck.npz", extra={"dataset": "toy"})
    deepff.save(net, folder / "model.npz", preprocessing={"mean": [0.0] * 3, "std": [1.0] * 3},
                classes=["a", "b"], metadata={"k": [1, 2]})
    model, ck = (folder / "model.npz").read_bytes(), (folder / "ck.npz").read_bytes()
    deepff.load(folder / "model.npz")
    assert load_checkpoint(folder / "ck.npz")[1]["epoch_order"] is not None
    return {"model": model, "checkpoint": ck, "folder": folder, "n_params": net.params.theta.size}


@st.composite
def corrupted(draw, data):
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        if not b:
            break
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        i = draw(st.integers(0, len(b) - 1))
        if op == "flip":
            b[i] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del b[i:]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del b[i:i + draw(st.integers(1, 64))]
        else:
            chunk = draw(st.one_of(st.binary(min_size=1, max_size=32),
                                   st.integers(1, 32).map(lambda n: b"\x00" * n),
                                   st.integers(1, 32).map(lambda n: b"\xff" * n)))
            b[i:i + len(chunk)] = chunk
    return bytes(b)


def _load_corrupted(files, data, loader, name):
    path = files["folder"] / name
    path.write_bytes(data)
    with time_limit():
        try:
            result = loader(path)
        except ModelFileError as exc:
            assert str(exc) and "\n" not in str(exc)
            return "rejected"
    net = result[0] if isinstance(result, tuple) else result
    assert net.params.theta.size == files["n_params"]
    assert np.isfinite(net.params.theta).all()
    assert all(np.isfinite(v).all() for v in net.buffers().values())
    return "loaded"


@pytest.fixture(scope="module")
def outcomes():
    return collections.Counter()


@FUZZ
@given(data=st.data())
def test_corrupted_model_files_raise_only_model_file_error(files, outcomes, data):
    RAN["corrupted-models"] += 1
    blob = data.draw(corrupted(files["model"]))
    outcomes["model-" + _load_corrupted(files, blob, deepff.load, "corrupt-model.npz")] += 1


@FUZZ
@given(data=st.data())
def test_corrupted_checkpoints_raise_only_model_file_error(files, outcomes, data):
    RAN["corrupted-checkpoints"] += 1
    blob = data.draw(corrupted(files["checkpoint"]))
    outcomes["checkpoint-" + _load_corrupted(files, blob, load_checkpoint, "corrupt-ck.npz")] += 1


def test_corruption_mostly_detected(outcomes):
    """Most corruptions must be caught (CRC, sizes, structure), not silently loaded."""
    for kind in ("model", "checkpoint"):
        total = outcomes[kind + "-rejected"] + outcomes[kind + "-loaded"]
        if total:
            assert outcomes[kind + "-rejected"] >= 0.8 * total, dict(outcomes)


# ------------------------------------- bugs the fuzzing found, now fixed
def _spec_with(extra=None, **hidden):
    return [{"layer_type": "input", "n_features": 3},
            {"layer_type": "fullyconn", "n_neurons": 4, "activation": "relu", **hidden, **(extra or {})},
            {"layer_type": "output", "n_neurons": 2, "activation": "softmax", "loss_type": "neg_log_likelihood"}]


@pytest.mark.parametrize("config", [
    {"layers": _spec_with(), 1: "x", "extra": 2},
    {"layers": _spec_with({1: 2, "z": 3})},
    {"layers": _spec_with(), "training": {"epochs": 2, 0: 1, "zz": 1}},
], ids=["config", "layer", "training"])
def test_unknown_keys_of_mixed_types(config):
    """YAML allows int keys; naming the unknown one used to sort str and int together."""
    with pytest.raises(SpecError, match="unknown key"):
        parse_config(config)


@pytest.mark.parametrize("hidden", [
    {"activation": {"name": "leaky_relu", "slope": "x"}},
    {"init": {"name": "normal", "std": "wide"}},
    {"bias_init": {"name": "constant", "value": "z"}},
], ids=["activation", "init", "bias-init"])
def test_parameters_that_are_not_numbers(hidden):
    """float('x') inside a constructor used to escape as ValueError."""
    with pytest.raises(SpecError):
        Network.from_spec(_spec_with(**hidden))


@pytest.mark.parametrize("init", [{"name": "normal", "std": -1}, {"name": "uniform", "limit": -0.5},
                                  {"name": "uniform", "limit": math.nan}, {"name": "normal", "std": math.inf}],
                         ids=["std", "limit", "nan", "inf"])
def test_initializer_ranges(init):
    """A negative or non-finite spread used to fail in numpy when the network was built."""
    with pytest.raises(SpecError):
        Network.from_spec(_spec_with(init=init))


@pytest.mark.parametrize("units", HUGE)
def test_impossible_layer_size(units):
    """A layer too large to exist used to raise numpy's MemoryError or ValueError."""
    with pytest.raises(SpecError):
        Network.from_spec(_spec_with(n_neurons=units))


# ------------------------------------------------------------ the counts
PROPERTIES = ["random-structures", "mutated-specs", "mutated-configs", "corrupted-models",
              "corrupted-checkpoints"]


def test_zz_every_property_ran_enough_examples():
    """Runs last (file order): each property that ran did at least EXAMPLES examples."""
    ran = {name: RAN[name] for name in PROPERTIES if RAN[name]}
    if not ran:
        pytest.skip("no property test ran in this session")
    short = {name: n for name, n in ran.items() if n < EXAMPLES}
    assert not short, f"fewer than {EXAMPLES} examples: {short}"
    print("hypothesis examples run:", ", ".join(f"{k}={v}" for k, v in ran.items()))
