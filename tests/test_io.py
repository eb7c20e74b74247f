"""Model files: bit-identical round trips, refusal of bad or hostile files, atomic writes."""

from __future__ import annotations

import errno
import io
import json
import os
import pathlib
import re
import stat
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import deepff
from _fullfs import fill as _fill
from _fullfs import mounted
from _needs import require_module
from deepff import ModelFileError, Network
from deepff.data import Standardizer
from deepff.io import FORMAT_VERSION, atomic_write

SUBPROCESS_TIMEOUT = 120

SPEC_CLASSIFIER = [
    {"layer_type": "input", "n_features": 5},
    {"layer_type": "fullyconn", "n_neurons": 8, "activation": "relu", "dropout": 0.25, "batch_norm": True},
    {"layer_type": "fullyconn", "n_neurons": 6, "activation": "tanh", "dropout": 0.1},
    {"layer_type": "output", "n_neurons": 3, "activation": "softmax", "loss_type": "neg_log_likelihood"},
]
SPEC_REGRESSOR = [
    {"layer_type": "input", "n_features": 5},
    {"layer_type": "fullyconn", "n_neurons": 7, "activation": "elu", "dropout": 0.2, "batch_norm": True},
    {"layer_type": "output", "n_neurons": 2, "activation": "linear", "loss_type": "mse", "batch_norm": True},
]


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    targets = np.stack([X[:, 0] * 2 - X[:, 2], np.sin(X[:, 3])], axis=1)
    return X, labels, targets


def _trained(task, dtype):
    """A small trained Network (batch-norm statistics and dropout in play)."""
    X, labels, targets = _data()
    spec = SPEC_CLASSIFIER if task == "classification" else SPEC_REGRESSOR
    net = Network.from_spec(spec, dtype=dtype, seed=3)
    net.fit(X, labels if task == "classification" else targets, epochs=3, batch_size=16,
            optimizer={"name": "adam", "lr": 0.01})
    assert any(np.any(b != 0) for b in net.buffers().values())
    return net


def _trained_classic(dtype):
    """A classic deepff.Net after a few forward/backward steps."""
    X, labels, _ = _data()
    net = deepff.Net(layers=SPEC_CLASSIFIER, learning_rate=0.05, dtype=dtype, seed=5)
    for _ in range(4):
        net.forward(X)
        net.backward(labels)
    return net


def _engine(model):
    return getattr(model, "network", model)


def _theta(model):
    return _engine(model).params.theta


# ------------------------------------------------------------ round trips
MODELS = [(task, dtype) for task in ("classification", "regression") for dtype in ("float32", "float64")]
MODELS += [("classic", "float32"), ("classic", "float64")]
MODEL_IDS = [f"{t}-{d}" for t, d in MODELS]


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Every model saved, predicted on in this process, and reloaded in a fresh one."""
    folder = tmp_path_factory.mktemp("models")
    X_new = _data(n=50, seed=1)[0]
    x_path = folder / "x.npy"
    np.save(x_path, X_new)
    models, paths, outputs = {}, {}, {}
    for task, dtype in MODELS:
        key = f"{task}-{dtype}"
        model = _trained_classic(dtype) if task == "classic" else _trained(task, dtype)
        models[key] = model
        paths[key] = folder / f"{key}.npz"
        outputs[key] = folder / f"{key}-fresh.npy"
        deepff.save(model, paths[key])
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import deepff
        X = np.load(sys.argv[1])
        for model_path, out_path in zip(sys.argv[2::2], sys.argv[3::2]):
            net = deepff.load(model_path)
            np.save(out_path, net.predict_output(X))
    """)
    args = [str(x_path)]
    for key in models:
        args += [str(paths[key]), str(outputs[key])]
    subprocess.run([sys.executable, "-c", script, *args], check=True, timeout=SUBPROCESS_TIMEOUT,
                   capture_output=True)
    return {"X": X_new, "models": models, "paths": paths, "fresh": outputs}


@pytest.mark.parametrize("key", MODEL_IDS)
def test_round_trip_same_process_bit_identical(saved_models, key):
    model, X = saved_models["models"][key], saved_models["X"]
    expected = _engine(model).predict_output(X)
    loaded = deepff.load(saved_models["paths"][key])
    assert isinstance(loaded, Network)
    assert loaded.dtype == _engine(model).dtype
    assert np.array_equal(loaded.params.theta, _theta(model))
    for name, buf in _engine(model).buffers().items():
        assert np.array_equal(loaded.buffers()[name], buf)
    got = loaded.predict_output(X)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected)
    assert np.array_equal(loaded.predict(X), _engine(model).predict(X))


@pytest.mark.parametrize("key", MODEL_IDS)
def test_round_trip_fresh_process_bit_identical(saved_models, key):
    model, X = saved_models["models"][key], saved_models["X"]
    fresh = np.load(saved_models["fresh"][key], allow_pickle=False)
    expected = _engine(model).predict_output(X)
    assert fresh.dtype == expected.dtype
    assert np.array_equal(fresh, expected)


def test_architecture_survives_round_trip(saved_models):
    original = saved_models["models"]["classification-float32"]
    loaded = deepff.load(saved_models["paths"]["classification-float32"])
    assert loaded.spec() == original.spec()
    assert [layer.dropout for layer in loaded.layers] == [0.25, 0.1, 0.0]
    assert [layer.batch_norm for layer in loaded.layers] == [True, False, False]
    assert loaded.task == "classification"
    assert loaded.seed == original.seed


def test_classic_net_saved_from_its_engine_too(saved_models, tmp_path):
    net = saved_models["models"]["classic-float64"]
    deepff.save(net.network, tmp_path / "engine.npz")
    a = (saved_models["paths"]["classic-float64"]).read_bytes()
    assert (tmp_path / "engine.npz").read_bytes() == a


def test_preprocessing_classes_training_and_metadata_travel(tmp_path):
    X, labels, _ = _data()
    scaler = Standardizer().fit(X)
    net = _trained("classification", "float32")
    meta = {"dataset": "toy", "nested": {"values": [1, 2.5, None, True], "unicode": "naïve ü"},
            "results": {"test_accuracy": 0.8125}}
    training = {"optimizer": {"name": "adam", "lr": 0.01}, "epochs": 3, "batch_size": 16}
    path = tmp_path / "m.npz"
    deepff.save(net, path, preprocessing=scaler.to_dict(), classes=["cat", "dog", "eel"],
                training=training, metadata=meta)
    loaded = deepff.load(path)
    assert loaded.preprocessing == scaler.to_dict()
    assert loaded.classes == ["cat", "dog", "eel"]
    assert loaded.training_config == training
    assert loaded.metadata == meta
    # the statistics rebuild a standardiser that transforms bit-identically
    again = Standardizer.from_dict(loaded.preprocessing)
    assert np.array_equal(again.transform(X, dtype=np.float32), scaler.transform(X, dtype=np.float32))
    # saving a loaded model without arguments keeps what travelled with it
    deepff.save(loaded, tmp_path / "again.npz")
    twice = deepff.load(tmp_path / "again.npz")
    assert (twice.preprocessing, twice.classes, twice.training_config, twice.metadata) == \
        (loaded.preprocessing, loaded.classes, loaded.training_config, loaded.metadata)
    assert np.array_equal(twice.params.theta, net.params.theta)


def test_numpy_scalars_in_metadata_are_stored_as_plain_json(tmp_path):
    net = _trained("regression", "float64")
    deepff.save(net, tmp_path / "m.npz", classes=np.arange(3).tolist(),
                metadata={"n": np.int64(7), "x": np.float32(0.5), "v": np.array([1.0, 2.0])})
    loaded = deepff.load(tmp_path / "m.npz")
    assert loaded.metadata == {"n": 7, "x": 0.5, "v": [1.0, 2.0]}


def test_absent_extras_load_as_none(tmp_path):
    net = Network.from_spec(SPEC_REGRESSOR, seed=0)
    deepff.save(net, tmp_path / "m.npz")
    loaded = deepff.load(tmp_path / "m.npz")
    assert (loaded.preprocessing, loaded.classes, loaded.training_config, loaded.metadata) == (None,) * 4


def test_file_is_plain_numpy_and_json(tmp_path):
    net = _trained("classification", "float64")
    path = tmp_path / "m.npz"
    deepff.save(net, path, classes=[0, 1, 2])
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["buffer.layer1.running_mean", "buffer.layer1.running_var", "header", "theta"]
        header = json.loads(npz["header"].tobytes().decode("utf-8"))
        assert np.array_equal(npz["theta"], net.params.theta)
    assert header["format"] == "deepff-model"
    assert header["format_version"] == FORMAT_VERSION == 1
    assert header["dtype"] == "float64"
    assert header["spec"] == net.spec()
    assert header["arrays"]["theta"] == {"shape": [net.n_params()], "dtype": "<f8"}
    assert {"deepff_version", "seed", "task", "preprocessing", "classes", "training", "metadata"} <= set(header)
    with zipfile.ZipFile(path) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())


def test_saving_is_deterministic(tmp_path):
    net = _trained("classification", "float32")
    deepff.save(net, tmp_path / "a.npz", metadata={"k": 1})
    deepff.save(net, tmp_path / "b.npz", metadata={"k": 1})
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_unbuilt_or_foreign_objects_are_refused(tmp_path):
    unbuilt = Network([deepff.Dense(2, "softmax")], loss="neg_log_likelihood")
    with pytest.raises(ModelFileError, match="built"):
        deepff.save(unbuilt, tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="built"):
        deepff.save("not a network", tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_values_that_are_not_json_are_refused(tmp_path):
    net = _trained("regression", "float32")
    with pytest.raises(ModelFileError, match="JSON"):
        deepff.save(net, tmp_path / "m.npz", metadata={"obj": object()})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("where", ["metadata", "preprocessing", "training"])
@pytest.mark.parametrize("key", [1, 2.5, True, None, ("a", 1)])
def test_keys_that_json_would_turn_into_text_are_refused(tmp_path, where, key):
    """JSON writes the key 1 as "1": the value would load under another key, so refuse it, and name it."""
    net = _trained("regression", "float32")
    path = tmp_path / "m.npz"
    deepff.save(net, path, metadata={"ok": 1})
    before = path.read_bytes()
    with pytest.raises(ModelFileError, match=rf"{where}\['outer'\] has the key .*keys must be strings"):
        deepff.save(net, path, **{where: {"outer": {key: 1}}})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]   # the old file is kept


def test_deep_or_self_containing_metadata_is_refused_with_a_clear_error(tmp_path):
    net = _trained("regression", "float32")
    deep = leaf = {}
    for _ in range(5000):                    # deeper than Python's recursion limit
        leaf["k"] = {}
        leaf = leaf["k"]
    loop = {"a": []}
    loop["a"].append(loop)
    for bad in (deep, loop):
        with pytest.raises(ModelFileError, match="nested more than 100 levels"):
            deepff.save(net, tmp_path / "m.npz", metadata=bad)
    assert os.listdir(tmp_path) == []
    ok = leaf = {}
    for _ in range(99):                      # 100 levels in all: allowed, and given back as saved
        leaf["k"] = {}
        leaf = leaf["k"]
    deepff.save(net, tmp_path / "m.npz", metadata=ok)
    assert deepff.load(tmp_path / "m.npz").metadata == ok


def test_a_checkpoint_of_non_finite_weights_is_refused_and_the_old_one_kept(tmp_path):
    """Such a file could never be resumed: replacing a good checkpoint with it would lose the run."""
    net = _trained("regression", "float32")
    path = tmp_path / "c.npz"
    deepff.save_checkpoint(net.trainer_, path)
    before = path.read_bytes()
    net.params.theta[3] = np.inf
    with pytest.raises(deepff.InputError, match="NaN or infinity.*previous one is kept"):
        deepff.save_checkpoint(net.trainer_, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.npz"]


@pytest.mark.parametrize("where", ["metadata", "preprocessing", "training"])
@pytest.mark.parametrize("bad", [float("nan"), -np.inf, np.float32("nan"), [1.0, float("inf")],
                                 np.array([0.5, np.nan])])
def test_non_finite_header_values_are_refused_with_their_key(tmp_path, where, bad):
    """JSON would write them as NaN/Infinity, which strict parsers (JavaScript's JSON.parse) refuse."""
    net = _trained("regression", "float32")
    path = tmp_path / "m.npz"
    deepff.save(net, path)
    before = path.read_bytes()
    with pytest.raises(ModelFileError, match=rf"{where}\['stats'\]\['x'\].*only finite numbers"):
        deepff.save(net, path, **{where: {"stats": {"x": bad}}})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


def test_a_model_header_is_strict_json(tmp_path):
    """Every model file's header parses with a parser that refuses NaN and Infinity."""
    net = _trained("classification", "float64")
    deepff.save(net, tmp_path / "m.npz", metadata={"note": "ok", "score": 0.9, "none": None})
    with zipfile.ZipFile(tmp_path / "m.npz") as zf, zf.open("header.npy") as fh:
        header = _strict_json(np.lib.format.read_array(fh).tobytes().decode("utf-8"))
    assert header["metadata"] == {"note": "ok", "score": 0.9, "none": None}


def test_checkpoint_extra_keys_must_be_strings(tmp_path):
    net = _trained("regression", "float32")
    with pytest.raises(ModelFileError, match=r"extra\[0\] has the key 7 \(int\)"):
        deepff.save_checkpoint(net.trainer_, tmp_path / "c.npz", extra=[{7: "x"}])
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------- crafted files
def _npy(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _header_of(members):
    return json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes().decode("utf-8"))


def _with_header(members, header):
    out = dict(members)
    out["header.npy"] = _npy(np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8))
    return out


def _replace_array(members, name, arr):
    """Swap one member and keep the header's array table consistent with it."""
    header = _header_of(members)
    header["arrays"][name] = {"shape": list(arr.shape), "dtype": arr.dtype.str}
    out = _with_header(members, header)
    out[name + ".npy"] = _npy(arr)
    return out


@pytest.fixture()
def good(tmp_path):
    """A valid float32 model with batch-norm buffers, and its members."""
    net = _trained("classification", "float32")
    path = tmp_path / "good.npz"
    deepff.save(net, path, classes=[0, 1, 2])
    return path, _members(path)


def _variant(tmp_path, build, good):
    path, members = good
    bad = tmp_path / "bad.npz"
    result = build(path, members, bad)
    if result is not None:
        _write_zip(bad, result)
    return bad


def _flip_header(key, value):
    def build(path, members, bad):
        header = _header_of(members)
        header[key] = value
        return _with_header(members, header)
    return build


def _theta_variant(fn):
    def build(path, members, bad):
        theta = np.load(io.BytesIO(members["theta.npy"]))
        return _replace_array(members, "theta", fn(theta))
    return build


def _drop_member(name):
    def build(path, members, bad):
        out = dict(members)
        del out[name]
        return out
    return build


def _raw(data):
    def build(path, members, bad):
        bad.write_bytes(data(path))
    return build


def _spec_variant(fn):
    def build(path, members, bad):
        header = _header_of(members)
        fn(header["spec"])
        return _with_header(members, header)
    return build


def _set_units(spec):
    spec[1]["n_neurons"] = 0


def _set_huge(spec):
    spec[1]["n_neurons"] = 10 ** 12


def _declared_lie(path, members, bad):
    header = _header_of(members)
    header["arrays"]["theta"]["shape"] = [1]
    return _with_header(members, header)


def _buffer_shape(path, members, bad):
    return _replace_array(members, "buffer.layer1.running_mean", np.zeros((1, 3), dtype=np.float32))


def _buffer_nan(path, members, bad):
    return _replace_array(members, "buffer.layer1.running_var", np.full((1, 8), np.nan, dtype=np.float32))


def _buffer_negative_variance(path, members, bad):
    return _replace_array(members, "buffer.layer1.running_var", np.full((1, 8), -1.0, dtype=np.float32))


def _object_member(path, members, bad):
    out = dict(members)
    header = _header_of(members)
    header["arrays"]["theta"] = {"shape": [2], "dtype": "|O"}
    out = _with_header(out, header)
    out["theta.npy"] = _npy(np.array([1, "two"], dtype=object), allow_pickle=True)
    return out


def _structured_member(path, members, bad):
    arr = np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")])
    return _replace_array(members, "theta", arr)


def _extra_member(path, members, bad):
    out = dict(members)
    out["surprise.npy"] = _npy(np.zeros(3))
    return out


def _compressed(path, members, bad):
    _write_zip(bad, members, compression=zipfile.ZIP_DEFLATED)


def _header_not_json(path, members, bad):
    out = dict(members)
    out["header.npy"] = _npy(np.frombuffer(b"{not json", dtype=np.uint8))
    return out


def _header_not_uint8(path, members, bad):
    out = dict(members)
    out["header.npy"] = _npy(np.zeros(4, dtype=np.float64))
    return out


REJECTIONS = {
    "truncated": (_raw(lambda p: p.read_bytes()[: len(p.read_bytes()) // 2]), "corrupted or truncated"),
    "truncated-tail": (_raw(lambda p: p.read_bytes()[:-10]), "corrupted or truncated"),
    "empty": (_raw(lambda p: b""), "not a valid deepff file"),
    "not-a-zip": (_raw(lambda p: b"layer_type,n_neurons\ninput,4\n" * 20), "not a valid deepff file"),
    "no-header": (_drop_member("header.npy"), "no header"),
    "header-not-json": (_header_not_json, "not a valid deepff file"),
    "header-not-uint8": (_header_not_uint8, "malformed header"),
    "foreign-format": (_flip_header("format", "something-else"), "not a deepff model or checkpoint"),
    "newer-version": (_flip_header("format_version", 999), "newer"),
    "bad-version": (_flip_header("format_version", "1"), "bad format_version"),
    "bad-dtype": (_flip_header("dtype", "float16"), "dtype"),
    "theta-shape": (_theta_variant(lambda t: t[:-1]), "does not match the architecture"),
    "theta-too-long": (_theta_variant(lambda t: np.concatenate([t, t[:1]])), "does not match the architecture"),
    "theta-dtype": (_theta_variant(lambda t: t.astype(np.float64)), "does not match the architecture"),
    "theta-2d": (_theta_variant(lambda t: t.reshape(1, -1)), "does not match the architecture"),
    "theta-nan": (_theta_variant(lambda t: np.where(np.arange(t.size) == 3, np.nan, t).astype(t.dtype)), "NaN"),
    "theta-missing": (_drop_member("theta.npy"), "missing"),
    "declared-table-lies": (_declared_lie, "does not match its declared"),
    "buffer-shape": (_buffer_shape, "buffer"),
    "buffer-nan": (_buffer_nan, "NaN"),
    "buffer-negative-variance": (_buffer_negative_variance, "negative variance"),
    "buffer-missing": (_drop_member("buffer.layer1.running_var.npy"), "missing"),
    "object-member": (_object_member, "object arrays"),
    "structured-member": (_structured_member, "only numeric"),
    "extra-member": (_extra_member, "unexpected member"),
    "compressed": (_compressed, "compressed"),
    "invalid-spec": (_spec_variant(_set_units), "architecture is invalid"),
    "huge-spec": (_spec_variant(_set_huge), "does not match the architecture"),
    "spec-not-a-list": (_flip_header("spec", {"layers": 3}), "architecture is invalid"),
    "fewer-classes-than-outputs": (_flip_header("classes", ["a", "b"]), "2 class labels .* 3 output unit"),
    "classes-not-a-list": (_flip_header("classes", {"a": 0}), "classes must be a list"),
    "classes-of-dicts": (_flip_header("classes", [{"a": 1}, 2, 3]), "class labels must be texts, numbers or "
                                                                     "booleans, got \\{'a': 1\\}"),
    "classes-repeated": (_flip_header("classes", ["a", "b", "a"]), "class labels must be distinct"),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_bad_files_are_rejected_with_a_clear_message(tmp_path, good, case):
    build, message = REJECTIONS[case]
    bad = _variant(tmp_path, build, good)
    with pytest.raises(ModelFileError, match=message) as info:
        deepff.load(bad)
    assert str(bad) in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelFileError):
        deepff.load_checkpoint(bad)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        deepff.load(tmp_path / "nope.npz")
    with pytest.raises(ModelFileError, match="no such file"):
        deepff.load_checkpoint(tmp_path / "nope.npz")
    with pytest.raises(ModelFileError, match="folder"):
        deepff.load(tmp_path)


def test_newer_format_message_says_upgrade(tmp_path, good):
    bad = _variant(tmp_path, _flip_header("format_version", 999), good)
    with pytest.raises(ModelFileError, match=r"format 999, newer than this deepff understands \(1\); upgrade"):
        deepff.load(bad)


def test_model_and_checkpoint_are_not_interchangeable(tmp_path, good):
    path, _ = good
    with pytest.raises(ModelFileError, match="not a checkpoint file"):
        deepff.load_checkpoint(path)
    net = _trained("regression", "float32")
    deepff.save_checkpoint(net.trainer_, tmp_path / "ck.npz")
    with pytest.raises(ModelFileError, match="not a model file"):
        deepff.load(tmp_path / "ck.npz")


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)
    assert issubclass(ModelFileError, deepff.DeepffError)


# -------------------------------------------------------- no code execution
class _Payload:
    """Unpickling this object writes a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.write_text, (pathlib.Path(self.marker), "pwned"))


def _evil_files(folder, marker, good_members):
    """Files whose loading with pickle allowed would write ``marker``."""
    payload = np.array([_Payload(marker), 1.0], dtype=object)
    evil_npy = _npy(payload, allow_pickle=True)
    header = _header_of(good_members)
    files = {}
    # 1. theta itself is the pickled object array, declared as such in the header
    h = dict(header, arrays=dict(header["arrays"], theta={"shape": [2], "dtype": "|O"}))
    m = _with_header(good_members, h)
    m["theta.npy"] = evil_npy
    files["theta"] = m
    # 2. an extra, undeclared member
    m = dict(good_members)
    m["evil.npy"] = evil_npy
    files["extra"] = m
    # 3. an extra member declared in the array table
    h = dict(header, arrays=dict(header["arrays"], evil={"shape": [2], "dtype": "|O"}))
    m = _with_header(good_members, h)
    m["evil.npy"] = evil_npy
    files["declared"] = m
    # 4. the header itself
    m = dict(good_members)
    m["header.npy"] = _npy(np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    files["header"] = m
    # 5. theta declared numeric, payload object (header lies about the dtype)
    m = dict(good_members)
    m["theta.npy"] = evil_npy
    files["lying-header"] = m
    paths = {}
    for name, members in files.items():
        paths[name] = folder / f"evil-{name}.npz"
        _write_zip(paths[name], members)
    return paths


def test_pickle_payload_is_live(tmp_path, good):
    """Sanity check: numpy with allow_pickle=True really would run the payload."""
    marker = tmp_path / "sanity-marker"
    evil = _evil_files(tmp_path, marker, good[1])["theta"]
    with np.load(evil, allow_pickle=True) as npz:
        npz["theta"]
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("variant", ["theta", "extra", "declared", "header", "lying-header"])
def test_pickled_objects_are_never_loaded(tmp_path, good, variant):
    marker = tmp_path / "marker"
    evil = _evil_files(tmp_path, marker, good[1])[variant]
    with pytest.raises(ModelFileError):
        deepff.load(evil)
    with pytest.raises(ModelFileError):
        deepff.load_checkpoint(evil)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_cli_refuses_pickled_objects(tmp_path, good, command):
    marker = tmp_path / "marker"
    evil = _evil_files(tmp_path, marker, good[1])["theta"]
    np.save(tmp_path / "x.npy", _data(n=4)[0])
    if command == "evaluate":
        args = ["evaluate", "--model", str(evil)]
    else:
        args = ["predict", "--model", str(evil), "--input", str(tmp_path / "x.npy")]
    proc = subprocess.run([sys.executable, "-m", "deepff.cli", *args], capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "object arrays" in lines[0] and str(evil) in lines[0]
    assert proc.stdout == ""
    assert not marker.exists()


# ------------------------------------------------------------ atomic writes
def _temp_files(folder):
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


@pytest.mark.parametrize("error", [RuntimeError("boom"), OSError(errno.ENOSPC, "No space left on device"),
                                   KeyboardInterrupt()], ids=["crash", "disk-full", "ctrl-c"])
def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path, error):
    target = tmp_path / "file.bin"
    atomic_write(target, lambda fh: fh.write(b"previous content"))
    assert target.read_bytes() == b"previous content"

    def write_that_raises(fh):
        fh.write(b"half of the new con")
        fh.flush()
        raise error

    with pytest.raises(type(error)) as info:
        atomic_write(target, write_that_raises)
    if isinstance(error, OSError):
        assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"previous content"
    assert _temp_files(tmp_path) == []
    assert os.listdir(tmp_path) == ["file.bin"]


def test_failed_first_write_creates_nothing(tmp_path):
    def write_that_raises(fh):
        fh.write(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(tmp_path / "new.bin", write_that_raises)
    assert os.listdir(tmp_path) == []


def test_save_failing_midway_keeps_previous_model(tmp_path, monkeypatch):
    first = _trained("classification", "float32")
    path = tmp_path / "m.npz"
    deepff.save(first, path)
    before = path.read_bytes()
    second = _trained("regression", "float64")
    real = np.lib.format.write_array
    calls = []

    def write_array(fp, arr, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the header went out, the weights hit a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fp, arr, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_array)
    with pytest.raises(OSError) as info:
        deepff.save(second, path)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert _temp_files(tmp_path) == []
    X = _data()[0]
    assert np.array_equal(deepff.load(path).predict_output(X), first.predict_output(X))


def test_save_into_missing_folder_raises_os_error(tmp_path):
    net = _trained("regression", "float32")
    with pytest.raises(OSError):
        deepff.save(net, tmp_path / "missing" / "m.npz")
    assert os.listdir(tmp_path) == []


def test_new_file_honours_umask_and_existing_mode_is_kept(tmp_path):
    umask = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.bin", lambda fh: fh.write(b"1"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "new.bin").st_mode) == 0o640
    os.chmod(tmp_path / "new.bin", 0o604)
    atomic_write(tmp_path / "new.bin", lambda fh: fh.write(b"2"))
    assert stat.S_IMODE(os.stat(tmp_path / "new.bin").st_mode) == 0o604
    assert (tmp_path / "new.bin").read_bytes() == b"2"


def test_save_replaces_an_existing_model(tmp_path):
    path = tmp_path / "m.npz"
    deepff.save(_trained("classification", "float32"), path)
    second = _trained("regression", "float64")
    deepff.save(second, path)
    assert np.array_equal(deepff.load(path).params.theta, second.params.theta)
    assert os.listdir(tmp_path) == ["m.npz"]


def test_class_labels_must_match_the_output_units_at_save(tmp_path):
    net = _trained("classification", "float32")  # 3 softmax units
    with pytest.raises(deepff.InputError, match="2 class labels given for a network with 3 output unit"):
        deepff.save(net, tmp_path / "m.npz", classes=["a", "b"])
    assert not (tmp_path / "m.npz").exists()
    deepff.save(net, tmp_path / "m.npz", classes=("a", "b", "c"))
    assert deepff.load(tmp_path / "m.npz").classes == ["a", "b", "c"]
    # one sigmoid unit (binary cross-entropy) takes the two labels of its 0 and 1
    bce = Network([deepff.Dense(1, "sigmoid")], loss="binary_cross_entropy", n_features=5, seed=0)
    deepff.save(bce, tmp_path / "b.npz", classes=["no", "yes"])
    assert deepff.load(tmp_path / "b.npz").classes == ["no", "yes"]


def test_write_protected_file_is_never_replaced(tmp_path):
    target = tmp_path / "kept.bin"
    target.write_bytes(b"the user's file")
    os.chmod(target, 0o444)
    with pytest.raises(PermissionError, match="write-protected") as info:
        atomic_write(target, lambda fh: fh.write(b"new"))
    assert info.value.filename == str(target)  # the user's file is named, not a temporary one
    assert target.read_bytes() == b"the user's file"
    with pytest.raises(PermissionError):
        deepff.save(_trained("regression", "float32"), target)
    assert target.read_bytes() == b"the user's file"
    assert sorted(os.listdir(tmp_path)) == ["kept.bin"]


def test_errors_name_the_target_not_the_temporary_file(tmp_path):
    (tmp_path / "out.npz").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        deepff.save(_trained("regression", "float32"), tmp_path / "out.npz")
    assert info.value.filename == str(tmp_path / "out.npz")
    assert os.listdir(tmp_path / "out.npz") == [] and os.listdir(tmp_path) == ["out.npz"]


def test_file_format_reads_only_the_header(tmp_path, good):
    path, _ = good
    deepff.save_checkpoint(_trained("regression", "float32").trainer_, tmp_path / "ck.npz")
    np.savez(tmp_path / "arrays.npz", X=np.zeros((2, 2)))
    assert deepff.io.file_format(path) == "model"
    assert deepff.io.file_format(tmp_path / "ck.npz") == "checkpoint"
    assert deepff.io.file_format(tmp_path / "arrays.npz") is None
    assert deepff.io.file_format(tmp_path / "missing.npz") is None


def test_non_finite_parameters_are_never_saved(tmp_path):
    """A file that load() would refuse is not written, and the previous file is kept."""
    net = _trained("classification", "float32")
    path = tmp_path / "m.npz"
    deepff.save(net, path)
    before = path.read_bytes()
    net.params.theta[0] = np.nan
    with pytest.raises(deepff.InputError, match="NaN or infinity"):
        deepff.save(net, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


def test_metadata_is_free_form(tmp_path):
    """save() takes any JSON-compatible metadata and load() gives it back, whatever its keys mean elsewhere."""
    net = _trained("regression", "float64")
    meta = {"seed": "run-7", "test_fraction": 2, "note": ["a", 1]}
    deepff.save(net, tmp_path / "m.npz", metadata=meta)
    assert deepff.load(tmp_path / "m.npz").metadata == meta


def test_an_archive_naming_a_member_twice_is_refused(tmp_path):
    """zip readers take the last of two same-named members: a crafted file could swap the weights unseen."""
    import warnings

    net = Network([deepff.Dense(3, "softmax")], loss="nll", seed=0)
    net.build(2)
    path = tmp_path / "m.npz"
    deepff.save(net, path)
    buf = io.BytesIO()
    np.save(buf, np.zeros_like(net.params.theta))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # zipfile warns of the duplicate name
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("theta.npy", buf.getvalue())
    with pytest.raises(ModelFileError, match="holds more than one member named 'theta.npy'"):
        deepff.load(path)


def test_a_dangling_link_at_an_output_path_is_not_called_write_protected(tmp_path):
    from deepff.io import check_writable

    link = tmp_path / "dangling.npz"
    link.symlink_to(tmp_path / "nowhere.npz")
    check_writable(link, probe=True)                 # used to raise "the file is write-protected"


def test_a_model_whose_loss_output_pairing_is_now_refused_still_loads_and_predicts(tmp_path):
    """Files saved before a pairing (tanh into binary_cross_entropy) was refused keep working for prediction."""
    from deepff.network import stored_architecture

    with stored_architecture():
        old = Network([deepff.Dense(4, "relu"), deepff.Dense(2, "tanh")], loss="bce", seed=0)
        old.build(3)
    deepff.save(old, tmp_path / "old.npz")
    with pytest.raises(deepff.SpecError, match="binary_cross_entropy needs outputs in \\[0, 1\\]"):
        Network([deepff.Dense(4, "relu"), deepff.Dense(2, "tanh")], loss="bce", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_array_equal(deepff.load(tmp_path / "old.npz").predict_output(X), old.predict_output(X))


def test_numpy_scalar_class_labels_are_saved_as_plain_values(tmp_path):
    net = Network([deepff.Dense(2, "softmax")], loss="nll", seed=0)
    net.build(3)
    deepff.save(net, tmp_path / "m.npz", classes=np.unique(np.array([7, 3, 7])))      # np.int64 scalars
    assert deepff.load(tmp_path / "m.npz").classes == [3, 7]
    deepff.save(net, tmp_path / "b.npz", classes=[np.bool_(False), np.bool_(True)])
    assert deepff.load(tmp_path / "b.npz").classes == [False, True]


def _tiny_net(seed=0):
    return Network([deepff.Dense(4, "relu"), deepff.Dense(3, "softmax")], loss="nll", n_features=4, seed=seed)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX pipes")
def test_save_never_replaces_a_device_or_pipe(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target in (fifo, pathlib.Path(os.devnull)):
        with pytest.raises(OSError, match="is not a regular file"):
            deepff.save(_tiny_net(), target)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISCHR(os.lstat(os.devnull).st_mode)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_save_through_a_symbolic_link_replaces_the_file_it_names(tmp_path):
    real = tmp_path / "real.npz"
    deepff.save(_tiny_net(0), real)
    link = tmp_path / "link.npz"
    os.symlink(real, link)
    deepff.save(_tiny_net(5), link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    np.testing.assert_array_equal(deepff.load(real).get_weights(), _tiny_net(5).get_weights())


@pytest.mark.parametrize("path", [None, b"model.npz", 5, ""])
def test_paths_that_are_not_file_names_are_named(path):
    with pytest.raises(deepff.InputError, match="path must be a file name"):
        deepff.save(_tiny_net(), path)
    with pytest.raises(deepff.InputError, match="path must be a file name"):
        deepff.load(path)


def test_save_checkpoint_given_a_network_says_where_its_trainer_is(tmp_path):
    net = _tiny_net()
    with pytest.raises(deepff.InputError, match=r"needs a Trainer, got Network \(a fitted Network's trainer"):
        deepff.save_checkpoint(net, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()


def test_a_model_file_with_a_left_over_array_is_refused(tmp_path):
    from deepff.io import _read_archive, _write_archive

    good = tmp_path / "m.npz"
    deepff.save(_tiny_net(), good)
    header, arrays = _read_archive(str(good), deepff.io._MODEL)
    header.pop("arrays", None)
    _write_archive(tmp_path / "extra.npz", header, {**arrays, "secret": np.arange(5)})
    with pytest.raises(ModelFileError, match="'secret' has no place in a model file"):
        deepff.load(tmp_path / "extra.npz")


def test_saving_a_scikit_learn_estimator_says_how_to_save_it(tmp_path):
    require_module("sklearn", area="scikit-learn")
    import warnings

    from deepff.sklearn import MLPClassifier

    X, labels, _ = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, labels)
    with pytest.raises(ModelFileError, match="MLPClassifier is a scikit-learn estimator: save it with pickle or "
                                             "joblib"):
        deepff.save(est, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------ full disks
@pytest.fixture
def full_folder(tmp_path):
    yield from mounted(tmp_path)


def test_a_save_to_a_full_disk_is_recovered_and_the_old_file_kept(full_folder, tmp_path, monkeypatch):
    net = _trained("classification", "float64")
    old = _trained("regression", "float32")
    target = full_folder / "a.npz"
    deepff.save(old, target)
    before = target.read_bytes()
    _fill(full_folder)
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("DEEPFF_RECOVERY_DIR", raising=False)
    with pytest.raises(OSError) as direct:               # the disk really is full
        deepff.save(net, target)
    assert direct.value.errno == errno.ENOSPC
    recovered, error = deepff.io.write_or_recover(lambda p: deepff.save(net, p), target)
    assert error.errno == errno.ENOSPC and os.path.dirname(recovered) == str(cwd)
    assert re.fullmatch(r"a\.recovered-\d{8}-\d{6}\.npz", os.path.basename(recovered))
    np.testing.assert_array_equal(deepff.load(recovered).params.theta, net.params.theta)
    assert target.read_bytes() == before                   # the old model is intact
    assert sorted(os.listdir(full_folder)) == ["a.npz", "filler"]   # no temporary file left behind
    # a second recovery in the same second gets a new name: nothing recovered earlier is replaced
    again, _ = deepff.io.write_or_recover(lambda p: deepff.save(net, p), target)
    assert again != recovered and os.path.exists(recovered)


def test_recovery_goes_on_to_the_next_folder_and_raises_when_none_takes_it(tmp_path, monkeypatch):
    net = _trained("regression", "float32")
    monkeypatch.setenv("DEEPFF_RECOVERY_DIR", str(tmp_path / "rescue"))
    (tmp_path / "rescue").mkdir()
    missing = tmp_path / "gone" / "m.npz"                  # its folder was removed during training
    recovered, error = deepff.io.write_or_recover(lambda p: deepff.save(net, p), missing)
    assert isinstance(error, FileNotFoundError) and os.path.dirname(recovered) == str(tmp_path / "rescue")

    def never(target):
        raise PermissionError(errno.EACCES, "refused", target)

    with pytest.raises(PermissionError) as exc:
        deepff.io.write_or_recover(never, missing)
    assert exc.value.filename == str(missing)                # the first error, naming the user's path
