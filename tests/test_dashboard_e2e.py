"""The dashboard as a person sees it: served by DashboardServer, opened in headless Chromium.

The virtual board runs a really trained int8 model in TFLM on replayed takes and streams
PREDICTION + raw IMU notifications through bleak; the live view (a custom component fed by the
link through the live feed) must paint the model's labels as the current gesture, each
prediction it received, in real time. A screenshot is kept in tests/artifacts/dashboard.png.
"""
from __future__ import annotations

import json
import socket

import pytest

from capture.errors import GestureError
from conftest import DATA, ROOT, need_tool
from dashboard.server import DashboardServer

ARTIFACTS = ROOT / "tests" / "artifacts"
LIVE_FRAME = 'iframe[title="dashboard.live_view.live_view"]'
CURRENT = "document.getElementById('gk-current')"


def current_label_js(labels: list[str]) -> str:
    """JS (in the live view): the current-gesture text if it is one of the model's labels, else null."""
    return f"(() => {{ const e = {CURRENT}; const t = e ? e.textContent.trim() : null; " \
           f"return {json.dumps(labels)}.includes(t) ? t : null; }})()"


@pytest.mark.slow
def test_simulated_board_predictions_are_painted_in_chromium(small_model):
    chromium = need_tool("chromium")
    pytest.importorskip("playwright", reason="playwright (the test extra) is not installed")
    from browser import Chromium

    model_dir = small_model.model_dir
    labels = json.loads((model_dir / "report.json").read_text())["labels"]
    server = DashboardServer(simulate=True, model_dir=model_dir, data_dir=DATA, port=0)
    url = server.start()
    try:
        with Chromium(chromium, width=1400, height=1800) as browser:
            browser.navigate(url)
            try:
                live = browser.frame(LIVE_FRAME, timeout=90)
                label = browser.wait_for_in(live, current_label_js(labels), timeout=90)
                browser.wait_for_in(live, "window.gkLive.painted >= 20 && window.gkLive.samples > 0", timeout=60)
            finally:
                ARTIFACTS.mkdir(exist_ok=True)
                browser.screenshot(ARTIFACTS / "dashboard.png")
            assert label in labels
            assert live.evaluate("window.gkLive.state") == "connected"
            assert live.evaluate("window.gkLive.mode") == "worker"  # read and painted off the page's main thread
            # every prediction the board sent since the page connected was painted, once, in order
            paints, received = live.evaluate("[window.gkLive.paints, window.gkLive.received]")
            seqs = [r[0] for r in paints]
            assert len(seqs) >= 20 and len(seqs) <= received
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
            # host receive (ms, fractional) <= page arrival <= drawn <= painted (Date.now(), whole ms)
            assert all(r[2] <= r[3] + 1 and r[3] <= r[4] <= r[5] for r in paints)
            seq_text = live.evaluate("document.getElementById('gk-seq').textContent")
            assert seq_text.startswith("seq ") and "received t=" in seq_text
            assert live.evaluate("document.getElementById('gk-status').textContent").startswith("live · ")
            status = browser.evaluate("document.querySelector('[data-testid=\"stSidebar\"]').innerText")
            assert "Connected to virtual://classifier" in status
            # a browser that cannot hand a canvas to a worker: the same engine paints on the page
            browser.add_script("delete HTMLCanvasElement.prototype.transferControlToOffscreen")
            browser.navigate(url)
            live = browser.frame(LIVE_FRAME, timeout=90)
            browser.wait_for_in(live, "window.gkLive.painted >= 10", timeout=90)
            assert live.evaluate("window.gkLive.mode") == "page"
            seqs = [r[0] for r in live.evaluate("window.gkLive.paints")]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    finally:
        server.stop()
    assert server.proc is not None and server.proc.poll() is not None


def test_busy_port_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = DashboardServer(port=port)
        with pytest.raises(GestureError, match=f"127.0.0.1:{port}.*pass --port"):
            server.start()
        assert server.proc is None


def test_streamlit_failure_shows_its_output(tmp_path):
    server = DashboardServer(port=0)
    server.python = str(tmp_path / "no-python")  # not started: make the interpreter a script that fails
    script = tmp_path / "no-python"
    script.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named streamlit' >&2\nexit 1\n")
    script.chmod(0o755)
    with pytest.raises(GestureError, match="(?s)exited with status 1.*No module named streamlit"):
        server.start()


def test_simulate_needs_a_model(tmp_path):
    with pytest.raises(GestureError, match="--simulate needs a model"):
        DashboardServer(simulate=True)
    with pytest.raises(GestureError, match="no model.tflite"):
        DashboardServer(simulate=True, model_dir=tmp_path)
