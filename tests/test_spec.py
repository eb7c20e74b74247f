"""Classic specs and config files: valid specs build, bad ones raise SpecError
naming the layer index, the key and (for names) the valid choices."""

import copy
import json
import re

import numpy as np
import pytest

from _needs import require_module
from deepff import Dense, Network, SpecError
from deepff.spec import (
    load_config,
    network_spec,
    parse_config,
    parse_early_stopping,
    parse_layers,
    parse_regularization,
    parse_training,
)

SPEC = [
    {"layer_type": "input", "n_features": 5, "batch_size": 10},
    {"layer_type": "fullyconn", "n_neurons": 5, "activation": "relu"},
    {"layer_type": "output", "n_neurons": 2, "activation": "softmax", "loss_type": "neg_log_likelihood"},
]


def _spec(**changes):
    """SPEC with changes {index: {key: value or DELETE}}."""
    spec = copy.deepcopy(SPEC)
    for idx, change in changes.items():
        i = int(idx[1:])
        for k, v in change.items():
            if v is DELETE:
                spec[i].pop(k)
            else:
                spec[i][k] = v
    return spec


DELETE = object()


def test_valid_spec_builds_engine_objects():
    n_features, layers, loss = parse_layers(SPEC)
    assert n_features == 5 and loss.name == "neg_log_likelihood"
    assert [type(layer) for layer in layers] == [Dense, Dense]
    assert [layer.units for layer in layers] == [5, 2]
    assert [layer.activation.name for layer in layers] == ["relu", "softmax"]


def test_optional_keys_reach_the_layers():
    spec = _spec(l1={"init": {"name": "normal", "std": 0.1}, "bias_init": "zeros", "dropout": 0.25,
                     "batch_norm": True, "max_norm": 3},
                 l2={"max_norm": None, "batch_norm": False})
    _, layers, _ = parse_layers(spec)
    l1 = layers[0]
    assert l1.init.std == 0.1 and l1.dropout == 0.25 and l1.batch_norm and l1.max_norm == 3.0
    assert layers[1].max_norm is None and layers[1].dropout == 0.0


def test_spec_without_hidden_layers():
    _, layers, loss = parse_layers([SPEC[0], SPEC[2]])
    assert len(layers) == 1 and loss.name == "neg_log_likelihood"


def test_network_spec_round_trip():
    spec = _spec(l1={"dropout": 0.5, "batch_norm": True, "max_norm": 2.0,
                     "activation": {"name": "leaky_relu", "slope": 0.1}})
    spec.insert(2, {"layer_type": "fullyconn", "n_neurons": 4, "activation": "gelu"})
    n, layers, loss = parse_layers(spec)
    written = network_spec(n, layers, loss)
    assert json.loads(json.dumps(written)) == written
    n2, layers2, loss2 = parse_layers(written)
    assert n2 == n and loss2.name == loss.name
    assert [layer.get_config() for layer in layers2] == [layer.get_config() for layer in layers]
    assert Network.from_spec(spec, seed=0).spec() == written


# --------------------------------------------------------------------- errors
def _error(spec):
    with pytest.raises(SpecError) as exc:
        parse_layers(spec)
    assert isinstance(exc.value, ValueError)
    return str(exc.value)


def _assert_names(msg, layer, key, choices=()):
    assert f"layer {layer}" in msg, msg
    assert key in msg, msg
    for c in choices:
        assert repr(c) in msg, msg


def test_unknown_layer_type():
    msg = _error(_spec(l1={"layer_type": "conv2d"}))
    _assert_names(msg, 1, "layer_type", ["input", "fullyconn", "output"])
    assert "conv2d" in msg


def test_missing_layer_type():
    _assert_names(_error(_spec(l1={"layer_type": DELETE})), 1, "layer_type", ["fullyconn"])


@pytest.mark.parametrize("layer, key, value, choices", [
    (1, "activation", "rectifier", ["relu", "tanh", "softmax"]),
    (2, "activation", "sofmax", ["softmax", "sigmoid"]),
    (2, "loss_type", "cross_entropy_loss", ["neg_log_likelihood", "mse", "huber"]),
    (1, "init", "kaiming", ["he_normal", "glorot_uniform"]),
    (2, "bias_init", "ones", ["zeros", "constant"]),
])
def test_unknown_names_list_choices(layer, key, value, choices):
    msg = _error(_spec(**{f"l{layer}": {key: value}}))
    _assert_names(msg, layer, key, choices)
    assert value in msg


@pytest.mark.parametrize("layer, key", [(0, "n_features"), (1, "n_neurons"), (1, "activation"),
                                        (2, "n_neurons"), (2, "activation"), (2, "loss_type")])
def test_missing_required_key(layer, key):
    msg = _error(_spec(**{f"l{layer}": {key: DELETE}}))
    _assert_names(msg, layer, key)
    assert "missing" in msg


@pytest.mark.parametrize("value", [0, -2, 2.5, "5", True, None, 5.0])
@pytest.mark.parametrize("layer, key", [(0, "n_features"), (1, "n_neurons"), (2, "n_neurons"),
                                        (0, "batch_size")])
def test_non_positive_or_non_int_sizes(layer, key, value):
    msg = _error(_spec(**{f"l{layer}": {key: value}}))
    _assert_names(msg, layer, key)
    assert "positive integer" in msg


def test_numpy_integer_sizes_are_accepted():
    n, layers, _ = parse_layers(_spec(l0={"n_features": np.int64(5)}, l1={"n_neurons": np.int32(3)}))
    assert n == 5 and layers[0].units == 3


def test_first_layer_must_be_input():
    spec = [SPEC[1], SPEC[1], SPEC[2]]
    msg = _error(spec)
    _assert_names(msg, 0, "layer_type")
    assert "'input'" in msg


def test_last_layer_must_be_output():
    msg = _error([SPEC[0], SPEC[1], SPEC[1]])
    _assert_names(msg, 2, "layer_type")
    assert "'output'" in msg


def test_middle_layer_must_be_fullyconn():
    msg = _error([SPEC[0], SPEC[0], SPEC[2]])
    _assert_names(msg, 1, "layer_type")
    assert "'fullyconn'" in msg


@pytest.mark.parametrize("layer, key", [(0, "activation"), (1, "n_units"), (1, "loss_type"),
                                        (2, "dropout"), (2, "learning_rate")])
def test_unknown_key(layer, key):
    msg = _error(_spec(**{f"l{layer}": {key: 1}}))
    _assert_names(msg, layer, key)
    assert "unknown key" in msg and "valid keys" in msg


@pytest.mark.parametrize("p", [1, 1.0, 1.5, -0.1, "0.5", True])
def test_bad_dropout(p):
    msg = _error(_spec(l1={"dropout": p}))
    _assert_names(msg, 1, "dropout")
    assert "[0, 1)" in msg


@pytest.mark.parametrize("c", [0, -1, "3", True])
def test_bad_max_norm(c):
    msg = _error(_spec(l1={"max_norm": c}))
    _assert_names(msg, 1, "max_norm")


def test_bad_batch_norm_flag():
    _assert_names(_error(_spec(l1={"batch_norm": "yes"})), 1, "batch_norm")


def test_bad_activation_parameters():
    msg = _error(_spec(l1={"activation": {"name": "elu", "beta": 2}}))
    _assert_names(msg, 1, "activation")


@pytest.mark.parametrize("spec, fragment", [({"layers": []}, "list"), ([SPEC[0]], "at least"),
                                            ([SPEC[0], "output", SPEC[2]], "layer 1")])
def test_malformed_spec(spec, fragment):
    assert fragment in _error(spec)


# ------------------------------------------------------------ config / training
def test_parse_config_defaults_and_validation():
    cfg = parse_config(SPEC)
    assert cfg == {"layers": SPEC, "training": {}, "dtype": None, "seed": None}
    cfg = parse_config({"layers": SPEC, "dtype": "float64", "seed": 3,
                        "training": {"epochs": 5, "optimizer": {"name": "adam", "lr": 0.01}}})
    assert cfg["dtype"] == "float64" and cfg["seed"] == 3 and cfg["training"]["epochs"] == 5
    with pytest.raises(SpecError, match="'layers'"):
        parse_config({"training": {}})
    with pytest.raises(SpecError, match="unknown key 'optimiser'"):
        parse_config({"layers": SPEC, "optimiser": "sgd"})
    with pytest.raises(SpecError, match="dtype"):
        parse_config({"layers": SPEC, "dtype": "float16"})
    with pytest.raises(SpecError, match="seed"):
        parse_config({"layers": SPEC, "seed": -1})
    with pytest.raises(SpecError, match="layer 2"):
        parse_config({"layers": _spec(l2={"loss_type": "nope"})})


@pytest.mark.parametrize("section, key", [
    ({"epochs": 0}, "epochs"), ({"epochs": 2.5}, "epochs"), ({"batch_size": -1}, "batch_size"),
    ({"shuffle": "yes"}, "shuffle"), ({"optimizer": "sgdd"}, "optimizer"),
    ({"schedule": "linear-ish"}, "schedule"),
    ({"clip_norm": 0}, "clip_norm"), ({"validation_split": 1.0}, "validation_split"),
    ({"class_weight": "auto"}, "class_weight"), ({"epoch": 3}, "epoch"),
    ({"regularization": {"l3": 1}}, "l3"), ({"early_stopping": {"patience": 0}}, "patience"),
])
def test_parse_training_errors_name_the_key(section, key):
    with pytest.raises(SpecError) as exc:
        parse_training(section)
    assert key in str(exc.value)


def test_parse_training_unknown_optimizer_lists_choices():
    with pytest.raises(SpecError) as exc:
        parse_training({"optimizer": "sgdd"})
    assert "'adam'" in str(exc.value) and "'sgd'" in str(exc.value)


def test_parse_regularization():
    p = parse_regularization({"l1": 0.1, "l2": 0.2})
    assert (p.l1, p.l2) == (0.1, 0.2)
    e = parse_regularization({"elastic_net": 0.4, "l1_ratio": 0.25})
    assert e.l1 == pytest.approx(0.1) and e.l2 == pytest.approx(0.3)
    with pytest.raises(SpecError, match="not both"):
        parse_regularization({"elastic_net": 0.1, "l2": 0.1})
    with pytest.raises(SpecError, match="l1_ratio"):
        parse_regularization({"l1_ratio": 0.5})
    with pytest.raises(SpecError, match="l1_ratio"):
        parse_regularization({"elastic_net": 0.1, "l1_ratio": 2})


def test_parse_early_stopping():
    assert parse_early_stopping(True) == {"patience": 5, "min_delta": 0.0, "restore_best": True,
                                          "monitor": "val_loss"}
    with pytest.raises(SpecError) as exc:
        parse_early_stopping({"monitor": "val_acc"})
    assert "'val_accuracy'" in str(exc.value)


@pytest.mark.parametrize("ext", [".json", ".yaml", ".toml"])
def test_load_config_files(tmp_path, ext):
    path = tmp_path / f"net{ext}"
    if ext == ".json":
        path.write_text(json.dumps({"layers": SPEC, "seed": 1, "training": {"epochs": 2}}))
    elif ext == ".yaml":
        yaml = require_module("yaml", area="YAML configs")
        path.write_text(yaml.safe_dump({"layers": SPEC, "seed": 1, "training": {"epochs": 2}}))
    else:
        lines = ["seed = 1", "[training]", "epochs = 2"]
        for layer in SPEC:
            lines.append("[[layers]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in layer.items()]
        path.write_text("\n".join(lines))
    cfg = load_config(path)
    assert cfg["layers"] == SPEC and cfg["seed"] == 1 and cfg["training"] == {"epochs": 2}
    net, training = Network.from_config(path)
    assert net.n_features == 5 and training == {"epochs": 2}


def test_load_config_errors(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_config(bad)
    other = tmp_path / "net.ini"
    other.write_text("")
    with pytest.raises(SpecError, match="'.json'"):
        load_config(other)


@pytest.mark.parametrize("key, value", [("validation_split", float("nan")), ("clip_norm", float("inf")),
                                        ("clip_norm", float("nan"))])
def test_training_numbers_must_be_finite(key, value):
    from deepff.spec import parse_training

    with pytest.raises(SpecError, match=f"key '{key}' must be a finite number"):
        parse_training({key: value})


@pytest.mark.parametrize("cw, match", [({0: -1}, r"class_weight\[0\]' must be >= 0"),
                                       ({0: "abc"}, "must be a number, got the text 'abc'"),
                                       ({1: float("nan")}, "must be a finite number"),
                                       ({-1: 2.0}, "keys are class indexes"),
                                       ({"": 2.0}, "keys are class indexes"),
                                       ({"cat": -2.0}, r"class_weight\[cat\]' must be >= 0")])
def test_class_weight_values_are_checked_when_the_config_is_read(cw, match):
    from deepff.spec import parse_training

    with pytest.raises(SpecError, match=match):
        parse_training({"class_weight": cw})
    assert parse_training({"class_weight": {0: 1.0, 2: 3}})["class_weight"] == {0: 1.0, 2: 3}
    assert parse_training({"class_weight": {"1": 2.5}})["class_weight"] == {1: 2.5}   # a JSON key
    assert parse_training({"class_weight": {"cat": 2}})["class_weight"] == {"cat": 2}  # a class's name


def test_a_yaml_syntax_error_names_its_line_and_column(tmp_path):
    require_module("yaml", area="YAML configs")
    bad = tmp_path / "bad.yaml"
    bad.write_text("layers: [\n  {layer_type: input, n_features: 4\n")
    with pytest.raises(SpecError, match=r"not valid YAML: expected ',' or '\}'.*\(line 3, column 1\)") as info:
        load_config(bad)
    assert "\n" not in str(info.value)


_SMALL = ("layers:\n  - {layer_type: input, n_features: 3}\n"
          "  - {layer_type: output, n_neurons: 2, activation: softmax, loss_type: nll}\n")


def test_yaml_reads_exponent_numbers_without_a_dot_as_numbers(tmp_path):
    """YAML 1.1 reads 1e-3 as text; deepff's loader reads it as 0.001 (YAML 1.2), and nothing else changes."""
    require_module("yaml", area="YAML configs")
    path = tmp_path / "c.yaml"
    path.write_text(_SMALL + "training:\n  optimizer: {name: adam, lr: 1e-3}\n  epochs: 3\n"
                    "  regularization: {l2: 5E-4}\n  schedule: {name: step, step_size: 2, gamma: '0.5'}\n")
    with pytest.raises(SpecError, match="step schedule gamma must be > 0, got the text '0.5'; "
                                        "leave out the quotes"):
        load_config(path)
    path.write_text(path.read_text().replace("'0.5'", "0.5"))
    training = load_config(path)["training"]
    assert training["optimizer"]["lr"] == 0.001 and training["regularization"]["l2"] == 0.0005
    assert training["epochs"] == 3 and isinstance(training["epochs"], int)


@pytest.mark.parametrize("ext, body", [
    (".json", '{"layers": [{"layer_type": "input", "n_features": 3}, {"layer_type": "output", "n_neurons": 2, '
              '"activation": "softmax", "loss_type": "nll"}]}'),
    (".toml", '[[layers]]\nlayer_type = "input"\nn_features = 3\n[[layers]]\nlayer_type = "output"\n'
              'n_neurons = 2\nactivation = "softmax"\nloss_type = "nll"\n'),
    (".yaml", _SMALL)])
def test_a_config_with_a_byte_order_mark_reads_as_without(tmp_path, ext, body):
    plain, marked = tmp_path / f"plain{ext}", tmp_path / f"bom{ext}"
    plain.write_text(body, encoding="utf-8")
    marked.write_text(body, encoding="utf-8-sig")
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")
    assert load_config(marked) == load_config(plain)


@pytest.mark.parametrize("ident, message", [
    ({"name": "leaky_relu", "slop": 0.1}, "activation 'leaky_relu' has no parameter 'slop'; valid parameters: 'slope'"),
    ({"name": "adam", "beta_1": 0.9}, "optimizer 'adam' has no parameter 'beta_1'; valid parameters: 'amsgrad', "
                                      "'betas', 'eps', 'fold_bias_correction', 'lr', 'weight_decay'"),
    ({"name": "relu", "alpha": 1}, "activation 'relu' has no parameter 'alpha'; valid parameters: none")])
def test_a_misspelt_parameter_is_named_with_the_valid_ones(ident, message):
    from deepff import activations, optimizers

    registry = optimizers if ident["name"] == "adam" else activations
    with pytest.raises(SpecError) as info:
        registry.get(ident)
    assert str(info.value) == message


@pytest.mark.parametrize("ext, body, key", [
    (".yaml", "seed: 1\nseed: 2\n" + _SMALL, "seed"),
    (".yaml", _SMALL + "training:\n  optimizer: {name: adam, lr: 0.1, lr: 0.01}\n", "lr"),
    (".json", '{"seed": 1, "layers": [], "layers": [{"layer_type": "input", "n_features": 3}, {"layer_type": '
              '"output", "n_neurons": 2, "activation": "softmax", "loss_type": "nll"}]}', "layers"),
])
def test_a_key_given_twice_is_an_error_not_the_last_value(tmp_path, ext, body, key):
    require_module("yaml", area="YAML configs")
    path = tmp_path / f"c{ext}"
    path.write_text(body)
    with pytest.raises(SpecError, match=f"config file .*c{re.escape(ext)}.*key '{key}' appears twice"):
        load_config(path)


def test_a_yaml_merge_key_may_still_be_overridden(tmp_path):
    require_module("yaml", area="YAML configs")
    path = tmp_path / "c.yaml"
    path.write_text("x-opt: &opt {name: adam, lr: 0.1}\n" + _SMALL
                    + "training:\n  optimizer:\n    <<: *opt\n    lr: 0.01\n")
    from deepff.spec import _read_text_config

    assert _read_text_config(path)["training"]["optimizer"] == {"name": "adam", "lr": 0.01}
