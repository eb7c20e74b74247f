"""The playground page in a real headless browser: Debian's chromium driven by Playwright.

The test builds a network by clicking, presses play, and checks what a
learner would see: the test loss shown goes down, the decision boundary's
pixels change, the math panel's shapes follow an added layer, the downloaded
model loads with ``deepff.load`` and predicts as the server's network does,
the shown Python code retrains to the shown test loss, gradcheck passes, the
address reproduces the setup, and a screenshot holds the picture.

It skips locally without playwright or chromium and fails in CI
(tests/_needs.py). About 30 s.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import deepff
from _needs import require, require_module
from deepff.playground.datasets import make_data
from deepff.playground.server import make_server

sync_api = require_module("playwright.sync_api", area="playground browser test")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def server():
    srv = make_server(0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    assert srv.warmed.wait(120)      # the engine's compiled kernels are loaded before anything is timed
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    require(Path(CHROMIUM).exists(), area="playground browser test",
            reason=f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1300, "height": 1500}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=20000)
    return page, errors


def shown_test_loss(page):
    return float(page.get_attribute("#test-loss", "data-value"))


def boundary_digest(page):
    data = page.evaluate("() => document.getElementById('boundary').toDataURL('image/png')")
    return hashlib.sha256(data.encode()).hexdigest()


def wait_built(page, epoch=0):
    page.wait_for_function(f"() => document.getElementById('epoch').textContent === '{epoch}' && "
                           "!window.playground.busy && document.getElementById('status').textContent === ''")


def api_post(server, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def build_by_clicking(page):
    """2-8-8-1 tanh on circles (500 points), adam: set through the page's controls; check the shapes shown."""
    page.select_option("#dataset", "circles")
    for i in (0, 1):
        page.fill(f"#layers .layer[data-index='{i}'] .units", "8")
        page.dispatch_event(f"#layers .layer[data-index='{i}'] .units", "change")
    page.select_option("#optimizer", "adam")
    page.fill("#lr", "0.03")
    page.dispatch_event("#lr", "change")
    page.wait_for_function("() => window.playground.built && window.playground.built.config.lr === 0.03 "
                           "&& window.playground.built.shapes.layers[1].units === 8")
    wait_built(page)
    shapes = page.inner_text("#shapes")
    assert "W^1 (2, 8)" in shapes and "W^2 (8, 8)" in shapes and "W^3 (8, 1)" in shapes and "X (10, 2)" in shapes
    # a layer added by clicking: the math panel follows
    page.click("#add-layer")
    page.wait_for_function("() => window.playground.built.shapes.layers.length === 4")
    shapes = page.inner_text("#shapes")
    assert "W^3 (8, 2)" in shapes and "a^3 (10, 2)" in shapes and "W^4 (2, 1)" in shapes
    assert "g^3 = (g^4 (W^4)^T) o tanh'(a^3)" in shapes and "(h^3)^T (2, 10) g^4 (10, 1) -> dW^4 (2, 1)" in shapes
    page.click("#remove-layer")
    page.wait_for_function("() => window.playground.built.shapes.layers.length === 3")
    wait_built(page)


def play_for(page, ms):
    """Press play, wait, press pause; return the page's counters."""
    page.click("#play")
    page.wait_for_timeout(ms)
    page.click("#play")
    page.wait_for_function("() => !window.playground.playing && !window.playground.busy")
    return page.evaluate("() => window.playground.stats")


def check_take_home(page, server, tmp_path, shown_loss, epochs):
    """The download loads and predicts as the server's network; the shown code retrains to the shown loss.

    Returns the line that says so, with the three losses.
    """
    page.wait_for_function(f"() => document.getElementById('code-python').textContent.includes('epochs={epochs},')")
    with page.expect_download() as info:
        page.click("#download")
    path = tmp_path / "model.npz"
    info.value.save_as(path)
    net = deepff.load(path)
    data = make_data("circles", 500, 0.0, 0.5, 0)
    from_file = net.evaluate(data.X_test, data.y_test)["loss"]
    assert abs(from_file - shown_loss) < 1e-6
    sid = page.evaluate("() => window.playground.sid")
    status, served = api_post(server, "/api/predict", {"session": sid, "X": data.X_test.tolist()})
    assert status == 200
    np.testing.assert_allclose(net.predict_output(data.X_test), served["outputs"], rtol=0, atol=1e-12)
    code = page.inner_text("#code-python")
    assert f"# {epochs} epochs = {epochs * 25} steps" in code
    namespace = {}
    exec(compile(code, "shown_code.py", "exec"), namespace)
    retrained = namespace["net"].evaluate(data.X_test, data.y_test)["loss"]
    assert abs(retrained - shown_loss) < 1e-6
    return (f"playground in chromium: shown test loss {shown_loss:.9f}; downloaded model {from_file:.9f}; shown code "
            f"retrained {retrained:.9f} ({epochs} epochs)")


def test_build_play_and_take_it_home(server, browser, tmp_path, report_figure):
    t0 = time.perf_counter()
    page, errors = open_page(browser, server.url)
    build_by_clicking(page)                                       # checks 1-2: shapes, and after adding a layer
    before_loss, before_pixels = shown_test_loss(page), boundary_digest(page)
    stats = play_for(page, 3000)
    report_figure(f"playground in chromium: {stats['updates']} updates in about 3 s, {stats['rate']:.1f} updates/s "
                  "(2-8-8-1 tanh, 500 circles points, train + boundary redrawn per update)")
    assert stats["updates"] >= 5                                  # 3
    after_loss = shown_test_loss(page)
    assert after_loss < 0.5 * before_loss, (before_loss, after_loss)   # 4
    assert boundary_digest(page) != before_pixels                 # 5
    epochs = int(page.inner_text("#epoch"))
    assert epochs == stats["updates"]
    report_figure(check_take_home(page, server, tmp_path, after_loss, epochs))    # 6-7: model file, shown code
    page.click("#gradcheck")                                      # 8
    page.wait_for_selector("#gradcheck-max", timeout=20000)
    assert float(page.get_attribute("#gradcheck-max", "data-value")) < 1e-6
    assert "layer3.W" in page.inner_text("#gradcheck-result")
    other, other_errors = open_page(browser, page.url)            # 9: the address reproduces the setup
    wait_built(other)
    assert other.evaluate("() => window.playground.built.config") == page.evaluate(
        "() => window.playground.built.config")
    assert other.evaluate("() => window.playground.sid") != page.evaluate("() => window.playground.sid")
    assert boundary_digest(other) == before_pixels          # same seed, same untrained network
    other.close()
    disabled = page.evaluate("() => [...document.querySelectorAll('#loss option')].filter(o => o.disabled)"
                             ".map(o => o.value)")                # 10: invalid pairs greyed out, with the reason
    assert "mse" in disabled and "binary_cross_entropy" not in disabled
    assert "mse is a regression loss" in page.inner_text("#pair-why")
    png = page.screenshot(full_page=True)                         # 11: the screenshot holds the picture
    (tmp_path / "playground.png").write_bytes(png)
    check_screenshot(png)
    assert errors == [] and other_errors == []
    page.close()
    report_figure(f"playground in chromium: 11 checks passed in {time.perf_counter() - t0:.1f} s")


def check_screenshot(png, width=1300, min_height=1200):
    """A real picture: page-sized, many colours, the boundary's blue and orange both present."""
    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    h, w, _ = img.shape
    assert w == width and h >= min_height
    q = (img * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(q[:: 7], axis=0)
    assert len(colours) > 200
    blue = np.all(np.abs(q.astype(int) - [8, 119, 189]) < 40, axis=1).mean()
    orange = np.all(np.abs(q.astype(int) - [245, 147, 34]) < 40, axis=1).mean()
    assert blue > 0.002 and orange > 0.002, (blue, orange)
    assert (q.min(axis=1) < 200).mean() > 0.05          # not a blank page


def test_upload_and_regression_in_the_page(server, browser, tmp_path):
    page, errors = open_page(browser, server.url)
    rng = np.random.default_rng(0)
    P = rng.uniform(-2, 2, size=(80, 2))
    csv = tmp_path / "surface.csv"
    csv.write_text("u,v,height\n" + "".join(f"{a:.4f},{b:.4f},{a * b:.5f}\n" for a, b in P))
    page.set_input_files("#upload", str(csv))
    page.wait_for_function("() => window.playground.built && window.playground.built.config.dataset === 'upload'")
    wait_built(page)
    assert page.evaluate("() => window.playground.built.task") == "regression"
    assert page.is_hidden("#acc-line")
    before = boundary_digest(page)
    page.click("#step")
    wait_built(page, epoch=1)
    assert boundary_digest(page) != before
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c,t\n1,2,3,0\n")
    page.set_input_files("#upload", str(bad))
    page.wait_for_function("() => document.getElementById('status').textContent.includes('two feature columns')")
    assert errors == []
    page.close()


def test_playground_benchmark_runs_in_quick_mode(browser, tmp_path):
    """benchmarks/bench_playground.py (the speed figure and the docs' screenshots) runs end to end."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_playground.py"), "--quick", "--json",
                           str(out), "--screenshots", str(tmp_path), "--chromium", CHROMIUM],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["speed"]["updates"] >= 1 and report["speed"]["updates_per_s"] > 0
    assert report["spiral"]["epoch"] >= 1 and 0 <= report["spiral"]["test_accuracy"] <= 1
    assert report["ripple"]["test_loss"] > 0
    for name in ("playground.png", "playground-regression.png", "playground-math.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    check_screenshot((tmp_path / "playground.png").read_bytes(), width=1300, min_height=900)
    assert "updates/s" in proc.stdout
