"""ONNX export, run by the real onnxruntime and compared with deepff's own predictions.

About 15 s on 2 cores: the activation x output x batch-norm x dtype x opset
matrix builds and runs 480 small graphs.
"""

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests._needs import require, require_module

import deepff
from deepff import cli
from deepff.errors import InputError, SpecError

onnx = require_module("onnx", area="ONNX export")
ort = require_module("onnxruntime", area="ONNX export")

from deepff.onnx import DEFAULT_OPSET, export_onnx, newest_runtime_opset, to_onnx, verify_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ["linear", "relu", "leaky_relu", "elu", "selu", "softplus", "sigmoid", "tanh", "gelu", "silu", "exp",
           "softmax"]
OUTPUTS = {   # name: (output units, activation, loss, classes)
    "softmax": (3, "softmax", "neg_log_likelihood", ["cat", "dog", "emu"]),
    "sigmoid": (1, "sigmoid", "binary_cross_entropy", [10, 20]),
    "multilabel": (4, "sigmoid", "binary_cross_entropy", None),
    "linear": (2, "linear", "mse", None),
    "exp": (2, "exp", "poisson", None),
}
NEWEST = newest_runtime_opset()


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _network(hidden, output, batch_norm, dtype, seed=0, n_features=5):
    units, act, loss, classes = OUTPUTS[output]
    net = deepff.Network([deepff.Dense(7, hidden, batch_norm=batch_norm), deepff.Dense(6, "tanh"),
                          deepff.Dense(units, act)], loss=loss, n_features=n_features, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for layer in net.layers:                      # batch statistics away from (0, 1): the folding is tested
        layer.W[...] *= 2.0
        if layer.batch_norm:
            layer.gamma[...] = rng.uniform(0.5, 2.0, layer.gamma.shape)
            layer.beta[...] = rng.normal(size=layer.beta.shape)
            layer.running_mean[...] = rng.normal(size=layer.running_mean.shape)
            layer.running_var[...] = rng.uniform(0.2, 3.0, layer.running_var.shape)
        else:
            layer.b[...] = rng.normal(scale=0.5, size=layer.b.shape)
    if output == "exp":               # rates of order 1 (e^a of large a would test float32's range, not the export)
        net.layers[-1].W[...] *= 0.1
        net.layers[-1].b[...] *= 0.1
    net.classes = classes
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", list(OUTPUTS))
@pytest.mark.parametrize("hidden", BUILTIN)
def test_every_activation_and_output_matches_deepff(hidden, output, dtype):
    X = np.random.default_rng(7).normal(scale=1.5, size=(64, 5))
    # float64: 1e-9, except GELU, whose erf onnxruntime computes in float32 only (no float64 Erf kernel)
    tol = 1e-5 if dtype == "float32" else (1e-6 if hidden == "gelu" else 1e-9)
    for batch_norm in (False, True):
        net = _network(hidden, output, batch_norm, dtype)
        for opset in sorted({DEFAULT_OPSET, NEWEST}):
            report = verify_onnx(net, to_onnx(net, opset=opset), X)
            where = f"{hidden} -> {output}, batch_norm={batch_norm}, {dtype}, opset {opset}"
            assert report["max_abs_diff"] <= tol, where
            assert report["labels_equal"] in ((None,) if OUTPUTS[output][3] is None and output != "multilabel"
                                              else (True,)), where


def test_the_matrix_covers_both_forms_of_gelu_and_silu():
    # primitives at opset 17, the Gelu (20) and Swish (24) operators at the newest opset the runtime runs
    require(NEWEST >= 24, area="ONNX export at opset 24", reason=f"onnxruntime {ort.__version__} runs opset {NEWEST}")
    ops = {n.op_type for n in to_onnx(_network("silu", "linear", False, "float32"), opset=NEWEST).graph.node}
    assert "Swish" in ops
    ops = {n.op_type for n in to_onnx(_network("gelu", "linear", False, "float32"), opset=NEWEST).graph.node}
    assert "Gelu" in ops


def test_inference_benchmark_runs(tmp_path):
    require_module("sklearn", area="inference benchmark")
    out = tmp_path / "bench.json"
    script = ROOT / "benchmarks" / "bench_inference.py"
    proc = subprocess.run([sys.executable, str(script), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())["summary"]
    assert {"deepff Network", "onnxruntime", "scikit-learn", "deepff.sklearn"} <= set(summary)
    assert all(s["one_row_us"] > 0 and s["rows_per_s"] > 0 for s in summary.values())
    assert "| engine | one row (us) |" in proc.stdout


def test_outputs_names_types_shapes_and_dynamic_batch():
    net = _network("relu", "softmax", False, "float32")
    proto = to_onnx(net)
    sess = _session(proto)
    assert [i.name for i in sess.get_inputs()] == ["X"]
    assert sess.get_inputs()[0].shape == ["N", 5]
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]
    for n in (1, 3, 1000):
        X = np.random.default_rng(n).normal(size=(n, 5)).astype(np.float32)
        label, proba = sess.run(None, {"X": X})
        assert label.shape == (n,) and proba.shape == (n, 3) and proba.dtype == np.float32
        np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
        assert set(label) <= {"cat", "dog", "emu"}
        np.testing.assert_array_equal(label, np.array(net.classes)[net.predict(X)])
    reg = _network("relu", "linear", False, "float64")
    sess = _session(to_onnx(reg))
    assert [o.name for o in sess.get_outputs()] == ["variable"]
    (values,) = sess.run(None, {"X": np.zeros((2, 5))})
    assert values.shape == (2, 2) and values.dtype == np.float64


def test_binary_labels_are_the_models_integer_classes_and_probabilities_have_two_columns():
    net = _network("tanh", "sigmoid", False, "float32")
    X = np.random.default_rng(3).normal(size=(200, 5)).astype(np.float32)
    label, proba = _session(to_onnx(net)).run(None, {"X": X})
    assert label.dtype == np.int64 and set(label) <= {10, 20}
    p1 = net.predict_proba(X)[:, 0]
    np.testing.assert_allclose(proba, np.column_stack([1 - p1, p1]), atol=1e-6)
    np.testing.assert_array_equal(label, np.where(p1 >= 0.5, 20, 10))
    assert 0 < (label == 20).sum() < 200      # both classes occur: the test can fail either way


def test_default_opset_file_loads_in_older_runtimes():
    proto = to_onnx(_network("gelu", "softmax", True, "float32"))
    assert proto.opset_import[0].version == DEFAULT_OPSET == 17
    assert proto.ir_version == 8                     # the IR of opset 17: runtimes since 2022 read it
    ops = {n.op_type for n in proto.graph.node}
    assert "Gelu" not in ops and "Erf" in ops        # written from primitives below opset 20
    assert not ops & {"BatchNormalization", "Dropout"}   # folded / left out


def test_metadata_records_version_spec_classes_and_feature_names():
    net = _network("relu", "softmax", False, "float32")
    net.metadata = {"feature_names": ["a", "b", "c", "d", "e"]}
    props = {p.key: p.value for p in to_onnx(net).metadata_props}
    assert props["deepff_version"] == deepff.__version__
    assert json.loads(props["spec"]) == net.spec()
    assert json.loads(props["classes"]) == ["cat", "dog", "emu"]
    assert json.loads(props["feature_names"]) == ["a", "b", "c", "d", "e"]


def test_stored_standardisation_is_part_of_the_graph(tmp_path):
    rng = np.random.default_rng(0)
    X_raw = rng.normal(loc=50, scale=20, size=(300, 5))
    mean, std = X_raw.mean(axis=0), X_raw.std(axis=0)
    y = (X_raw[:, 0] > 50).astype(int)
    net = deepff.Network([deepff.Dense(8, "relu"), deepff.Dense(2, "softmax")], loss="neg_log_likelihood", seed=0)
    net.fit((X_raw - mean) / std, y, epochs=5, batch_size=32, optimizer="adam", lr=1e-2)
    deepff.save(net, tmp_path / "m.npz", preprocessing={"mean": mean.tolist(), "std": std.tolist()})
    loaded = deepff.load(tmp_path / "m.npz")
    proto = export_onnx(loaded, tmp_path / "m.onnx")
    label, proba = _session(proto).run(None, {"X": X_raw.astype(np.float32)})   # raw features in
    expected = net.predict_proba(((X_raw - mean) / std).astype(np.float32))
    assert np.max(np.abs(proba - expected)) < 1e-5
    assert (label == y).mean() > 0.9
    assert {n.op_type for n in proto.graph.node} >= {"Sub", "Div"}


def test_classic_net_and_sklearn_estimators_export():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    from deepff.sklearn import MLPClassifier, MLPRegressor

    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16
    y = y[:400]
    spec = [{"layer_type": "input", "n_features": 64, "batch_size": 10},
            {"layer_type": "fullyconn", "n_neurons": 16, "activation": "relu"},
            {"layer_type": "output", "n_neurons": 10, "activation": "softmax", "loss_type": "neg_log_likelihood"}]
    classic = deepff.Net(layers=spec, seed=0)
    assert verify_onnx(classic, to_onnx(classic), X)["max_abs_diff"] < 1e-5
    cases = [(MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0), np.where(y > 4, "big", "small")),
             (MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0), y),
             (MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0), np.eye(10, dtype=int)[y][:, :3]),
             (MLPRegressor(hidden_layer_sizes=(16,), max_iter=30, random_state=0), X[:, :2] + X[:, 2:4])]
    for est, target in cases:
        with pytest.warns(Warning):               # ConvergenceWarning after 30 epochs
            est.fit(X, target)
        report = verify_onnx(est, to_onnx(est), X)
        assert report["max_abs_diff"] < 1e-12, type(est).__name__    # scikit-learn data: float64 end to end
        assert report["labels_equal"] in (True, None)


class Softsign(deepff.activations.Activation):
    """a / (1 + |a|): a user's activation, which has no ONNX form."""

    name = "softsign_for_onnx"

    def forward(self, a, out=None):
        return np.divide(a, 1 + np.abs(a), out=out)

    def backward(self, a, h, g, out=None):
        return np.multiply(g, (1 - np.abs(h)) ** 2, out=out)


@pytest.fixture
def softsign():
    deepff.activations.register(Softsign)
    yield
    deepff.activations.REGISTRY.classes.pop("softsign_for_onnx", None)


def test_custom_activation_refused_naming_the_layer_and_nothing_written(tmp_path, softsign):
    net = deepff.Network([deepff.Dense(4, "relu"), deepff.Dense(3, "softsign_for_onnx"), deepff.Dense(1)],
                         n_features=2, seed=0)
    with pytest.raises(SpecError, match="layer 2 uses the custom activation 'softsign_for_onnx'"):
        export_onnx(net, tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_bad_arguments_raise_errors_that_name_the_fault(tmp_path):
    net = _network("relu", "softmax", False, "float32")
    for opset in (12, 99, "17", 17.0, True):
        with pytest.raises(InputError, match="opset must be an integer from 13 to"):
            to_onnx(net, opset=opset)
    with pytest.raises(InputError, match="no weights yet"):
        to_onnx(deepff.Network([deepff.Dense(2, "softmax")], loss="neg_log_likelihood"))
    with pytest.raises(InputError, match="got dict"):
        to_onnx({})
    with pytest.raises(FileNotFoundError):
        export_onnx(net, tmp_path / "missing" / "m.onnx")
    assert not (tmp_path / "missing").exists()


def test_an_existing_file_survives_a_refused_export(tmp_path):
    net = _network("relu", "softmax", False, "float32")
    path = tmp_path / "m.onnx"
    export_onnx(net, path)
    before = path.read_bytes()
    with pytest.raises(InputError):
        export_onnx(net, path, opset=99)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.onnx"]          # no temporary file left


# ------------------------------------------------------------------ the command
def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    pytest.importorskip("sklearn")
    folder = tmp_path_factory.mktemp("export")
    rc, _, err = _run("train", "--epochs", "2", "--quiet", "--output", folder / "d.npz")
    assert rc == 0, err
    return folder / "d.npz"


def test_cli_export_verify_on_the_recorded_test_split(digits_model, tmp_path):
    out_path = tmp_path / "d.onnx"
    out_path.write_bytes(to_onnx(_network("relu", "linear", False, "float32")).SerializeToString())
    rc, out, err = _run("export", digits_model, "--output", out_path, "--verify")   # replaces its own kind
    assert rc == 0, err
    assert "the 359 test rows of digits" in out and "labels identical" in out and "verification passed" in out
    diff = float(out.split("max |difference| of probabilities ")[1].split()[0])
    assert diff <= 1e-5
    proto = onnx.load(out_path)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 64


def test_cli_verify_without_the_training_data_uses_synthetic_rows(tmp_path):
    net = _network("gelu", "multilabel", True, "float64")
    deepff.save(net, tmp_path / "g.npz")
    rc, out, err = _run("export", tmp_path / "g.npz", "--output", tmp_path / "g.onnx", "--verify")
    assert rc == 0, err
    assert "1000 synthetic rows" in out and "tolerance 1e-06" in out and "verification passed" in out


@pytest.mark.parametrize(("case", "message"), [
    ("corrupt", "not a valid deepff file"),
    ("foreign", "is not a deepff file"),
    ("opset", "opset must be an integer from 13"),
    ("opset_text", "expected an integer opset"),
    ("missing_folder", "does not exist"),
    ("extension", "must end in .onnx"),
    ("foreign_output", "exists and is not an ONNX file written by deepff"),
])
def test_cli_bad_input_one_line_exit_2_no_file(digits_model, tmp_path, case, message):
    model, output, extra = digits_model, tmp_path / "m.onnx", []
    if case == "corrupt":
        model = tmp_path / "c.npz"
        model.write_bytes(digits_model.read_bytes()[:2000])
    elif case == "foreign":
        model = tmp_path / "f.npz"
        np.savez(model, a=np.arange(3))
    elif case == "opset":
        extra = ["--opset", "99"]
    elif case == "opset_text":
        extra = ["--opset", "seventeen"]
    elif case == "missing_folder":
        output = tmp_path / "nowhere" / "m.onnx"
    elif case == "extension":
        output = tmp_path / "m.txt"
    elif case == "foreign_output":
        output.write_text("someone's notes")
    before = set(os.listdir(tmp_path))
    rc, out, err = _run("export", model, "--output", output, *extra)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert set(os.listdir(tmp_path)) == before
    if case == "foreign_output":
        assert output.read_text() == "someone's notes"


def test_cli_refuses_a_custom_activation_in_one_line(tmp_path, softsign):
    net = deepff.Network([deepff.Dense(4, "softsign_for_onnx"), deepff.Dense(2, "softmax")],
                         loss="neg_log_likelihood", n_features=3, seed=0)
    deepff.save(net, tmp_path / "c.npz")
    rc, _, err = _run("export", tmp_path / "c.npz", "--output", tmp_path / "c.onnx")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "layer 1 uses the custom activation 'softsign_for_onnx'" in err
    assert not (tmp_path / "c.onnx").exists()


def test_cli_bad_model_in_a_real_process(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", "export", "bad.npz", "--output", "bad.onnx"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("deepff: error: ") and "Traceback" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.npz"]
