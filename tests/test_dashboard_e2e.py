"""The dashboard as a person sees it: served by DashboardServer, opened in headless Chromium.

The virtual board runs a really trained int8 model in TFLM on replayed takes and streams
PREDICTION + raw IMU notifications through bleak; the page must show one of the model's labels
as the current gesture, in real time. A screenshot is kept in tests/artifacts/dashboard.png.
"""
from __future__ import annotations

import json
import socket

import pytest

from capture.errors import GestureError
from conftest import DATA, ROOT, need_tool
from dashboard.server import DashboardServer

ARTIFACTS = ROOT / "tests" / "artifacts"
CURRENT = "document.querySelector('.st-key-gk-current [data-testid=\"stMetricValue\"]')"


def current_label_js(labels: list[str]) -> str:
    """JS: the current-gesture text if it is one of the model's labels, else null."""
    return f"(() => {{ const e = {CURRENT}; const t = e ? e.innerText.trim() : null; " \
           f"return {json.dumps(labels)}.includes(t) ? t : null; }})()"


@pytest.mark.slow
def test_simulated_board_predictions_appear_in_chromium(small_model):
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
                label = browser.wait_for(current_label_js(labels), timeout=90)
            finally:
                ARTIFACTS.mkdir(exist_ok=True)
                browser.screenshot(ARTIFACTS / "dashboard.png")
            assert label in labels
            seq = browser.text(".st-key-gk-seq")
            assert seq and seq.startswith("seq ") and "received t=" in seq
            status = browser.evaluate("document.querySelector('[data-testid=\"stSidebar\"]').innerText")
            assert "Connected to virtual://classifier" in status
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
