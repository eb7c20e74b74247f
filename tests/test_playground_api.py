"""The playground's server, tested over HTTP against a real server on 127.0.0.1.

Data sets, build, train, upload, export, code, gradcheck, sessions, and every
refusal the issue lists: foreign Host or Origin (DNS rebinding), oversized
bodies, bad JSON, unknown fields, paths outside the page's files, unbounded
training requests. After each refusal the server must still answer.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import deepff
from deepff import activations
from deepff.datasets import load_csv
from deepff.playground.config import LIMITS, canonical_names
from deepff.playground.datasets import DATASETS, make_data
from deepff.playground.server import make_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server():
    srv = make_server(0, idle_seconds=600)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(srv, method, path, body=None, headers=None, raw=None):
    """Send one request; return (status, parsed JSON or bytes, headers)."""
    port = srv.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdrs = {"Host": f"127.0.0.1:{port}"}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in hdrs.items():
        conn.putheader(k, v)
    if data is not None and "Content-Length" not in hdrs:
        conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    if resp.getheader("Content-Type", "").startswith("application/json"):
        payload = json.loads(payload)
    return resp.status, payload, dict(resp.getheaders())


def new_session(srv):
    status, body, _ = request(srv, "POST", "/api/session", {})
    assert status == 200
    return body["session"]


def build(srv, sid, **config):
    status, body, _ = request(srv, "POST", "/api/build", {"session": sid, "config": config})
    assert status == 200, body
    return body


def train(srv, sid, epochs=1, **extra):
    status, body, _ = request(srv, "POST", "/api/train", {"session": sid, "epochs": epochs, **extra})
    assert status == 200, body
    return body


def train_to(srv, sid, epochs):
    """Train until ``epochs`` epochs are done (a request may stop early on its time budget)."""
    state = train(srv, sid, epochs=1)
    while state["epoch"] < epochs:
        state = train(srv, sid, epochs=epochs - state["epoch"])
    assert state["epoch"] == epochs
    return state


def refused(srv, expected_status, method, path, body=None, headers=None, raw=None, says=""):
    """Assert a refusal with a clear JSON message, no traceback, and that the server still serves."""
    status, payload, _ = request(srv, method, path, body, headers, raw)
    assert status == expected_status, payload
    assert isinstance(payload, dict) and payload["error"], payload
    assert "Traceback" not in payload["error"]
    assert says.lower() in payload["error"].lower(), payload["error"]
    assert request(srv, "GET", "/")[0] == 200          # still serving
    return payload["error"]


# ------------------------------------------------------------------ the page
def test_page_and_its_files_are_served_from_the_package(server):
    status, html, headers = request(server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<script src="/app.js"' in html and b"/style.css" in html
    for path, kind in (("/app.js", "text/javascript"), ("/style.css", "text/css"), ("/index.html", "text/html")):
        status, body, headers = request(server, "GET", path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and len(body) > 500
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_options_list_every_builtin_and_the_sets(server):
    status, opts, _ = request(server, "GET", "/api/options")
    assert status == 200
    assert opts["activations"] == canonical_names(activations)
    assert {"relu", "tanh", "sigmoid", "softmax", "gelu", "selu"} <= set(opts["activations"])
    assert "lbfgs" not in opts["optimizers"] and "adam" in opts["optimizers"]
    assert set(opts["datasets"]) == set(DATASETS)
    tasks = [d["task"] for d in opts["datasets"].values()]
    assert tasks.count("regression") == 2
    assert max(d["classes"] or 0 for d in opts["datasets"].values()) >= 3
    assert opts["features"] == ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin x1", "sin x2"]


# ------------------------------------------------------------------ datasets
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_build_every_dataset(server, name):
    sid = new_session(server)
    b = build(server, sid, dataset=name, n_samples=200, train_fraction=0.6, noise=0.1)
    task, n_classes, _ = DATASETS[name]
    assert b["task"] == task and b["n_classes"] == n_classes
    pts = b["points"]
    assert len(pts["train"]) == 120 and len(pts["test"]) == 80
    data = make_data(name, 200, 0.1, 0.6, 0)         # the same points, from the same generator
    np.testing.assert_allclose(pts["train"], data.points_train, atol=1e-4)
    if task == "classification":
        assert sorted(set(pts["y_train"] + pts["y_test"])) == list(range(n_classes))
        want = ("sigmoid", "binary_cross_entropy") if n_classes == 2 else ("softmax", "neg_log_likelihood")
    else:
        want = ("linear", "mse")
    assert (b["output_activation"], b["loss"]) == want
    assert b["epoch"] == 0 and b["last"]["test_loss"] > 0


def test_features_reach_the_first_layer(server):
    sid = new_session(server)
    b = build(server, sid, dataset="xor", features=["x1*x2", "x1", "sin x2"])
    assert b["config"]["features"] == ["x1", "x1*x2", "sin x2"]      # the page's order
    assert b["shapes"]["n_features"] == 3 and b["shapes"]["layers"][0]["W"] == [3, 4]
    assert len(b["pictures"]["inputs"]) == 3


# -------------------------------------------------------------------- train
def test_training_lowers_the_test_loss_and_pictures_change(server):
    sid = new_session(server)
    b = build(server, sid, dataset="circles", layers=[{"units": 8, "activation": "tanh"}] * 2,
              optimizer="adam", lr=0.03)
    first = b["last"]["test_loss"]
    state = train_to(server, sid, 20)
    assert state["last"]["step"] == 20 * 25                             # 250 rows, batch 10
    assert state["last"]["test_loss"] < 0.5 * first
    assert state["last"]["test_accuracy"] > 0.9
    assert state["pictures"]["output"]["label"] != b["pictures"]["output"]["label"]
    norms = state["grad_norms"]
    assert norms and len(norms[0]["norms"]) == 3 and all(v >= 0 for r in norms for v in r["norms"])
    assert [len(w) for w in state["weights"]] == [2, 8, 8]


def test_gradient_norms_show_vanishing_gradients_under_sigmoid_stacks(server):
    sid = new_session(server)
    build(server, sid, dataset="circles", layers=[{"units": 8, "activation": "sigmoid"}] * 5, optimizer="sgd")
    norms = np.array([r["norms"] for r in train(server, sid, epochs=1)["grad_norms"]])
    assert norms.shape == (25, 6)                                   # one row per step: 250 rows, batch 10
    assert np.median(norms[:, 0] / norms[:, -1]) < 1 / 30          # ||dW^1|| far below ||dW^6||
    build(server, sid, dataset="circles", layers=[{"units": 8, "activation": "relu"}] * 5, optimizer="sgd")
    norms = np.array([r["norms"] for r in train(server, sid, epochs=1)["grad_norms"]])
    assert np.median(norms[:, 0] / norms[:, -1]) > 1 / 30          # not so with ReLU and He initialisation


def test_training_request_is_bounded(server):
    sid = new_session(server)
    build(server, sid, dataset="gauss")
    state = train(server, sid, epochs=LIMITS["max_epochs_per_request"], max_ms=1)
    assert state["epoch"] == 1                          # the time budget ends it after one epoch
    refused(server, 400, "POST", "/api/train", {"session": sid, "epochs": LIMITS["max_epochs_per_request"] + 1},
            says="epochs must be an integer from 1 to")
    refused(server, 400, "POST", "/api/train", {"session": sid, "max_ms": 10**9}, says="max_ms")
    t0 = time.perf_counter()
    state = train(server, sid, epochs=LIMITS["max_epochs_per_request"])
    assert 1 <= state["epoch"] - 1 <= LIMITS["max_epochs_per_request"]
    assert time.perf_counter() - t0 < 30


def test_every_builtin_activation_and_optimizer_trains(server):
    sid = new_session(server)
    for act in canonical_names(activations):
        b = build(server, sid, dataset="moons", layers=[{"units": 3, "activation": act}], lr=0.01)
        assert b["shapes"]["layers"][0]["activation"] == act
        assert np.isfinite(train(server, sid)["last"]["test_loss"])
    for opt in ("sgd", "adam", "adamw", "rmsprop", "adagrad"):
        build(server, sid, dataset="plane", optimizer=opt, lr=0.01, l1=0.001, l2=0.01,
              layers=[{"units": 4, "activation": "relu", "dropout": 0.2, "batch_norm": True}])
        assert np.isfinite(train(server, sid)["last"]["test_loss"])


def test_shapes_follow_the_network(server):
    sid = new_session(server)
    b = build(server, sid, dataset="blobs", batch_size=16,
              layers=[{"units": 5, "activation": "relu"}, {"units": 3, "activation": "tanh", "batch_norm": True}])
    sh = b["shapes"]
    assert sh["batch"] == 16 and sh["n_features"] == 2 and sh["fused"] is True
    l1, l2, out = sh["layers"]
    assert l1["W"] == [2, 5] and l1["b"] == [1, 5] and l1["a"] == [16, 5] and l1["h"] == [16, 5]
    assert l2["W"] == [5, 3] and l2["gamma"] == [1, 3] and "b" not in l2
    assert out["W"] == [3, 4] and out["g"] == [16, 4] and out["activation"] == "softmax"
    assert sh["n_params"] == 2 * 5 + 5 + 5 * 3 + 6 + 3 * 4 + 4


def test_gradcheck_runs_deepff_gradcheck_on_the_current_network(server):
    sid = new_session(server)
    build(server, sid, dataset="spiral", l2=0.01, layers=[{"units": 5, "activation": "tanh", "dropout": 0.3}])
    train(server, sid, epochs=2)
    status, r, _ = request(server, "POST", "/api/gradcheck", {"session": sid})
    assert status == 200
    assert set(r["errors"]) == {"layer1.W", "layer1.b", "layer2.W", "layer2.b"}
    assert r["max"] == max(r["errors"].values()) < 1e-6 and r["samples"] == LIMITS["gradcheck_samples"]


def test_output_pairs_are_decided_by_the_engine(server):
    sid = new_session(server)
    pairs = build(server, sid, dataset="circles")["pairs"]
    assert pairs["sigmoid"]["binary_cross_entropy"] is None and pairs["softmax"]["neg_log_likelihood"] is None
    assert "regression" in pairs["sigmoid"]["mse"]
    assert "softmax" in pairs["linear"]["neg_log_likelihood"]             # the engine's own advice
    pairs = build(server, sid, dataset="ripple")["pairs"]
    assert pairs["linear"]["mse"] is None and "classification" in pairs["linear"]["binary_cross_entropy"]
    assert pairs["exp"]["poisson"] is not None                            # ripple targets go below 0
    pairs = build(server, sid, dataset="blobs")["pairs"]
    assert "softmax" in pairs["sigmoid"]["binary_cross_entropy"]
    msg = refused(server, 400, "POST", "/api/build",
                  {"session": sid, "config": {"dataset": "plane", "output_activation": "sigmoid",
                                              "loss": "binary_cross_entropy"}})
    assert "regression" in msg or "classification" in msg


# ---------------------------------------------------- take it home: file, code
def _trained(server, **config):
    sid = new_session(server)
    build(server, sid, **config)
    return sid, train_to(server, sid, 9)


def test_export_loads_with_deepff_load_and_predicts_the_same(server, tmp_path):
    sid, state = _trained(server, dataset="moons", noise=0.2, layers=[{"units": 6, "activation": "relu"}],
                          optimizer="adam", lr=0.02, seed=3)
    status, blob, headers = request(server, "GET", f"/api/export?session={sid}")
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    path = tmp_path / "model.npz"
    path.write_bytes(blob)
    net = deepff.load(path)
    data = make_data("moons", 500, 0.2, 0.5, 0)
    assert abs(net.evaluate(data.X_test, data.y_test)["loss"] - state["last"]["test_loss"]) < 1e-6
    status, pred, _ = request(server, "POST", "/api/predict", {"session": sid, "X": data.X_test[:20].tolist()})
    np.testing.assert_allclose(net.predict_output(data.X_test[:20]), pred["outputs"], rtol=0, atol=1e-12)
    assert net.metadata["epochs"] == 9 and net.metadata["playground"]["dataset"] == "moons"
    out = subprocess.run([sys.executable, "-m", "deepff.cli", "summary", "--model", str(path)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0 and "relu" in out.stdout


def test_shown_python_code_retrains_to_the_same_test_loss(server, tmp_path):
    sid, state = _trained(server, dataset="xor", noise=0.1, features=["x1", "x2", "x1*x2"],
                          layers=[{"units": 5, "activation": "tanh", "dropout": 0.1}], optimizer="rmsprop",
                          lr=0.01, l2=0.001, batch_size=7, seed=5)
    status, code, _ = request(server, "GET", f"/api/code?session={sid}")
    assert status == 200 and code["epochs"] == 9
    assert "epochs=9" in code["python"] and f"{state['last']['step']} steps" in code["python"]
    namespace = {}
    exec(compile(code["python"], "playground_code.py", "exec"), namespace)   # the code as shown
    net, data = namespace["net"], namespace["data"]
    assert abs(net.evaluate(data.X_test, data.y_test)["loss"] - state["last"]["test_loss"]) < 1e-6
    yaml = pytest.importorskip("yaml")           # the cli extra; JSON would come without it
    config = yaml.safe_load(code["yaml"])
    net2, training = deepff.Network.from_config(config)
    net2.fit(data.X_train, data.y_train, **training)
    assert abs(net2.evaluate(data.X_test, data.y_test)["loss"] - state["last"]["test_loss"]) < 1e-6


# -------------------------------------------------------------------- upload
def _upload(server, sid, text, name="points.csv"):
    return request(server, "POST", f"/api/upload?session={sid}&name={name}", raw=text.encode(),
                   headers={"Content-Type": "text/csv"})


def test_upload_a_csv_with_class_names(server, tmp_path):
    sid = new_session(server)
    rng = np.random.default_rng(0)
    P = rng.normal(size=(120, 2))
    labels = np.where(P[:, 0] > 0, "east", np.where(P[:, 1] > 0, "north", "south"))
    text = "x,y,where\n" + "".join(f"{a:.4f},{b:.4f},{c}\n" for (a, b), c in zip(P, labels))
    status, info, _ = _upload(server, sid, text)
    assert status == 200 and info == {"name": "points.csv", "rows": 120, "columns": ["x", "y"], "target": "where"}
    b = build(server, sid, dataset="upload", train_fraction=0.5)
    assert b["task"] == "classification" and b["n_classes"] == 3 and b["classes"] == ["east", "north", "south"]
    assert b["output_activation"] == "softmax"
    x0, x1, y0, y1 = b["extent"]
    assert x0 < P[:, 0].min() and x1 > P[:, 0].max() and y0 < P[:, 1].min()
    state = train(server, sid, epochs=2)
    status, code, _ = request(server, "GET", f"/api/code?session={sid}")
    assert "load_table('points.csv')" in code["python"]
    (tmp_path / "points.csv").write_text(text)
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        namespace = {}
        exec(compile(code["python"], "playground_code.py", "exec"), namespace)
    finally:
        os.chdir(cwd)
    net, data = namespace["net"], namespace["data"]
    assert abs(net.evaluate(data.X_test, data.y_test)["loss"] - state["last"]["test_loss"]) < 1e-6
    status, blob, _ = request(server, "GET", f"/api/export?session={sid}")
    (tmp_path / "m.npz").write_bytes(blob)
    assert deepff.load(tmp_path / "m.npz").classes == ["east", "north", "south"]


def test_upload_regression_table(server):
    sid = new_session(server)
    rng = np.random.default_rng(1)
    P = rng.uniform(-1, 1, size=(60, 2))
    text = "a;b;t\n" + "".join(f"{a:.3f};{b:.3f};{a * b + 0.5:.5f}\n" for a, b in P)
    assert _upload(server, sid, text, name="surface.csv")[0] == 200
    b = build(server, sid, dataset="upload")
    assert b["task"] == "regression" and b["loss"] == "mse" and len(b["points"]["train"]) == 30


def test_upload_errors_are_the_deepff_commands(server, tmp_path):
    sid = new_session(server)
    bad = "x1,x2,label\n1,2,a\n3,oops,b\n5,6,a\n"
    (tmp_path / "bad.csv").write_text(bad)
    with pytest.raises(deepff.DatasetError) as info:
        load_csv(tmp_path / "bad.csv")
    expected = str(info.value).replace(str(tmp_path / "bad.csv"), "bad.csv")
    assert refused(server, 400, "POST", f"/api/upload?session={sid}&name=bad.csv", raw=bad.encode(),
                   headers={"Content-Type": "text/csv"}) == expected
    refused(server, 400, "POST", f"/api/upload?session={sid}&name=three.csv", raw=b"a,b,c,t\n1,2,3,0\n4,5,6,1\n",
            headers={"Content-Type": "text/csv"}, says="two feature columns")
    refused(server, 400, "POST", f"/api/upload?session={sid}&name=empty.csv", raw=b"", says="empty")
    refused(server, 400, "POST", f"/api/upload?session={sid}&name=../../etc/passwd.csv", raw=b"a,b,c\n1,2,3\n",
            says="plain file name")
    refused(server, 413, "POST", f"/api/upload?session={sid}&name=big.csv", raw=b"x",
            headers={"Content-Length": str(LIMITS["max_upload_bytes"] + 1)}, says="over the limit")
    rows = LIMITS["max_upload_rows"] + 1
    refused(server, 413, "POST", f"/api/upload?session={sid}&name=many.csv",
            raw=("a,b,t\n" + "1,2,0\n3,4,1\n" * (rows // 2 + 1)).encode(), says="at most")
    refused(server, 400, "POST", "/api/build", {"session": sid, "config": {"dataset": "upload"}},
            says="needs a CSV uploaded")


# ------------------------------------------------------------------- hostile
def test_foreign_host_or_origin_is_refused(server):
    port = server.server_address[1]
    refused(server, 403, "GET", "/", headers={"Host": "evil.example:80"}, says="not this server")
    refused(server, 403, "GET", "/api/options", headers={"Host": f"attacker.test:{port}"}, says="Host")
    refused(server, 403, "GET", "/", headers={"Host": "127.0.0.1:1"}, says="Host")
    refused(server, 403, "POST", "/api/session", {}, headers={"Origin": "http://evil.example"}, says="Origin")
    refused(server, 403, "POST", "/api/session", {}, headers={"Origin": f"http://127.0.0.1:{port + 1}"},
            says="Origin")
    assert request(server, "POST", "/api/session", {}, headers={"Origin": f"http://localhost:{port}",
                                                                "Host": f"localhost:{port}"})[0] == 200


def test_paths_outside_the_page_are_refused(server):
    for path in ("/../pyproject.toml", "/static/../server.py", "/%2e%2e/%2e%2e/etc/passwd", "/..%2fsecrets",
                 "/a\\..\\b"):
        refused(server, 400, "GET", path, says="outside the page")
    for path in ("/server.py", "/static/app.js", "/api/nothing", "/__init__.py"):
        refused(server, 404, "GET", path, says="no such")
    refused(server, 404, "POST", "/api/nothing", {}, says="no such")
    for method in ("PUT", "DELETE", "OPTIONS"):
        refused(server, 405, method, "/api/build", {}, says="GET and POST")


def test_bad_bodies_are_refused(server):
    sid = new_session(server)
    build(server, sid)
    json_ct = {"Content-Type": "application/json"}
    refused(server, 400, "POST", "/api/build", raw=b"{not json", headers=json_ct, says="bad JSON")
    refused(server, 400, "POST", "/api/train", raw=b'{"session": "x", "epochs": NaN}', headers=json_ct,
            says="bad JSON")
    refused(server, 400, "POST", "/api/build", raw=b"[1, 2]", headers=json_ct, says="JSON object")
    refused(server, 400, "POST", "/api/build", raw=b"\xff\xfe", headers=json_ct, says="bad JSON")
    refused(server, 400, "POST", "/api/build", raw=b"[" * 30000 + b"]" * 30000, headers=json_ct, says="bad JSON")
    refused(server, 413, "POST", "/api/build", raw=b"{}", headers={**json_ct, "Content-Length": "10000000"},
            says="over the limit")
    refused(server, 411, "POST", "/api/build", raw=None, headers=json_ct, says="Content-Length")
    refused(server, 415, "POST", "/api/build", raw=b"{}", headers={"Content-Type": "text/plain"}, says="JSON")
    refused(server, 400, "POST", "/api/train", {"session": sid, "epochs": 1, "turbo": True},
            says="unknown field 'turbo'")
    err = refused(server, 400, "POST", "/api/build", {"session": sid, "config": {"learning_rate": 1}},
                  says="unknown field 'learning_rate'")
    assert "'lr'" in err                                   # the valid fields are named
    refused(server, 400, "POST", "/api/build", {"session": sid, "config": {"layers": [{"units": 999}]}},
            says="units must be >= 1 and <= 32")
    refused(server, 400, "POST", "/api/build", {"session": sid, "config": {"optimizer": "lbfgs"}},
            says="no steps to watch")
    refused(server, 400, "POST", "/api/build", {"session": sid, "config": {"dataset": "mnist"}},
            says="valid choices")
    refused(server, 400, "POST", "/api/build", {"session": sid, "config": {"layers": [{}] * 7}}, says="at most 6")
    refused(server, 400, "POST", "/api/train", {"session": sid, "epochs": "many"}, says="epochs must be")
    refused(server, 400, "POST", "/api/predict", {"session": sid, "X": [[1, 2, 3]]}, says="3")
    refused(server, 404, "POST", "/api/train", {"session": "no-such-session"}, says="unknown or expired")
    refused(server, 404, "GET", "/api/export?session=nope", says="unknown or expired")
    refused(server, 400, "POST", "/api/train", {"session": new_session(server)}, says="build one first")


def test_a_diverging_run_is_a_clear_400(server):
    sid = new_session(server)
    build(server, sid, dataset="plane", features=["x1^2", "x2^2"], lr=10, layers=[{"units": 8, "activation": "relu"}])
    msg = refused(server, 400, "POST", "/api/train", {"session": sid, "epochs": 20}, says="diverged")
    assert "learning rate" in msg


# ------------------------------------------------------------------ sessions
def test_tabs_have_independent_sessions(server):
    a, b = new_session(server), new_session(server)
    assert a != b
    build(server, a, dataset="spiral")
    build(server, b, dataset="plane")
    train_to(server, a, 3)
    sb = train(server, b, epochs=1)
    assert sb["epoch"] == 1 and "test_accuracy" not in sb["last"]
    assert train(server, a)["epoch"] == 4


def test_idle_sessions_are_dropped():
    srv = make_server(0, idle_seconds=1.0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        sid = new_session(srv)
        build(srv, sid)
        time.sleep(1.5)
        refused(srv, 404, "POST", "/api/train", {"session": sid}, says="expired")
        assert len(srv.sessions) == 0
    finally:
        srv.shutdown()
        srv.server_close()


# ---------------------------------------------------------------- the command
def _ctrl_c_default():
    # run in the child before it starts: SIGINT at its default, as in a terminal's foreground job. A shell
    # starts background jobs with SIGINT ignored, and children inherit that: a suite run in the background
    # would otherwise start servers that ignore these tests' Ctrl-C (Python installs no handler then)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_command_serves_and_stops_on_ctrl_c():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "deepff.cli", "playground", "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_ctrl_c_default)
    try:
        line = proc.stdout.readline()
        assert line.startswith("deepff playground: serving on http://127.0.0.1:")
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        busy = subprocess.run([sys.executable, "-m", "deepff.cli", "playground", "--no-browser", "--port",
                               str(port)], capture_output=True, text=True, env=env, timeout=60)
        assert busy.returncode == 2 and "Traceback" not in busy.stderr
        assert busy.stderr.count("\n") == 1 and "choose another --port" in busy.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in out and "Traceback" not in err


def test_the_page_ships_in_the_wheel(tmp_path):
    """An installed wheel (not the checkout) serves the same page: the static files are package data."""
    wheels, target, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    # built from a copy, so that setuptools' build/ and egg-info folders stay out of the checkout
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("deepff-*.whl")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.Popen([sys.executable, "-m", "deepff.cli", "playground", "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                            preexec_fn=_ctrl_c_default)
    try:
        line = proc.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        for name in ("app.js", "index.html", "style.css"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/" + name)
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.read() == (ROOT / "src" / "deepff" / "playground" / "static" / name).read_bytes()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert (target / "deepff" / "playground" / "static" / "app.js").is_file()
