"""The playground in a real browser: updates per second, and the docs' screenshots.

Starts ``deepff playground --no-browser`` (the command, in a process of its
own), opens the printed address in headless Chromium (Debian's ``chromium``,
driven by Playwright) and measures:

* speed: a 2-8-8-1 tanh network on 500 circles points, playing for
  ``--seconds``; one update = one training request (one epoch) answered and
  drawn (boundary, neuron pictures, links, curves);
* the spiral learned by a 2-hidden-layer tanh network (test accuracy shown);
* a regression surface (ripple), and the math panel after a gradcheck.

``--screenshots DIR`` writes playground.png, playground-regression.png and
playground-math.png there (the docs use docs/img). ``--quick`` plays briefly
(for the test that proves this script runs).

    python benchmarks/bench_playground.py --screenshots docs/img
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

SPEED = {"dataset": "circles", "n_samples": 500, "layers": [{"units": 8, "activation": "tanh"}] * 2,
         "optimizer": "adam", "lr": 0.03}
SPIRAL = {"dataset": "spiral", "noise": 0.1, "features": ["x1", "x2", "sin x1", "sin x2"],
          "layers": [{"units": 8, "activation": "tanh"}] * 2, "optimizer": "adam", "lr": 0.01, "batch_size": 10}
RIPPLE = {"dataset": "ripple", "noise": 0.05, "layers": [{"units": 8, "activation": "tanh"}] * 2,
          "optimizer": "adam", "lr": 0.01}


def start_server():
    """Run ``deepff playground --no-browser --port 0``; return (process, address).

    The server starts with SIGINT at its default, so that the Ctrl-C that stops it reaches it even when
    this script runs as a background job (a shell starts those with SIGINT ignored, which children inherit).
    """
    proc = subprocess.Popen([sys.executable, "-m", "deepff.cli", "playground", "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    line = proc.stdout.readline()
    if "serving on " not in line:
        proc.kill()
        raise SystemExit(f"the playground did not start: {line!r}")
    return proc, line.split("serving on ")[1].split()[0]


def open_setup(browser, url, config):
    page = browser.new_page(viewport={"width": 1300, "height": 900}, accept_downloads=True)
    page.goto(url + "#" + quote(json.dumps(config)))
    page.wait_for_selector("body[data-ready='1']", timeout=30000)
    return page


def play(page, seconds, until=None):
    """Press play, wait ``seconds`` (or until the JS condition ``until`` holds), press pause; return the stats."""
    page.click("#play")
    if until:
        try:
            page.wait_for_function(until, timeout=seconds * 1000)
        except Exception:  # noqa: BLE001 - a timeout: report what was reached
            pass
    else:
        page.wait_for_timeout(seconds * 1000)
    page.click("#play")
    page.wait_for_function("() => !window.playground.playing && !window.playground.busy")
    return page.evaluate("() => ({...window.playground.stats, last: window.playground.history.at(-1)})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="play time of the speed run")
    ap.add_argument("--quick", action="store_true", help="short runs (proves the script works)")
    ap.add_argument("--screenshots", help="folder for playground.png, -regression.png, -math.png")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    seconds = 1.0 if args.quick else args.seconds
    proc, url = start_server()
    out = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = open_setup(browser, url, SPEED)
            page.wait_for_timeout(300)
            s = play(page, seconds)
            out["speed"] = {"updates": s["updates"], "updates_per_s": s["rate"],
                            "wait_ms_per_update": s["waitMs"] / max(s["updates"], 1),
                            "draw_ms_per_update": s["drawMs"] / max(s["updates"], 1),
                            "test_loss": s["last"]["test_loss"]}
            print(f"speed: 2-8-8-1 tanh on 500 points: {s['rate']:.1f} updates/s over {s['updates']} updates "
                  f"(page waited {out['speed']['wait_ms_per_update']:.1f} ms, drew "
                  f"{out['speed']['draw_ms_per_update']:.1f} ms per update)", flush=True)
            page.close()
            page = open_setup(browser, url, SPIRAL)
            s = play(page, 5 if args.quick else 60,
                     until="() => (window.playground.history.at(-1).test_accuracy || 0) >= 0.97")
            last = s["last"]
            out["spiral"] = last
            print(f"spiral, 2 hidden tanh layers of 8: test accuracy {100 * last['test_accuracy']:.1f}% after "
                  f"{last['epoch']} epochs (test loss {last['test_loss']:.4f})", flush=True)
            if args.screenshots:
                folder = Path(args.screenshots)
                folder.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(folder / "playground.png"))
                page.click("#gradcheck")
                page.wait_for_selector("#gradcheck-max", timeout=30000)
                page.locator("#math-panel").screenshot(path=str(folder / "playground-math.png"))
            page.close()
            page = open_setup(browser, url, RIPPLE)
            s = play(page, 3 if args.quick else 20)
            out["ripple"] = s["last"]
            print(f"ripple regression: test loss (mse) {s['last']['test_loss']:.4f} after {s['last']['epoch']} epochs",
                  flush=True)
            if args.screenshots:
                page.screenshot(path=str(Path(args.screenshots) / "playground-regression.png"))
            page.close()
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
