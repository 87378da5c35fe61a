"""`gesture demo` end to end, as the README's first command runs it (fewer epochs, short watch)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard.server import HEALTH, free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_demo_trains_exports_and_serves_the_live_dashboard(tmp_path):
    port = free_port()
    out = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gesture_cli", "demo", "--epochs", "2", "--duration", "6", "--no-browser",
         "--quiet", "--port", str(port), "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    healthy = False
    assert proc.stdout is not None
    for line in proc.stdout:  # the server answers while the demo is in its watching step
        lines.append(line)
        if "dashboard: http://127.0.0.1:" in line:
            deadline = time.monotonic() + 5
            while not healthy and time.monotonic() < deadline:
                try:
                    healthy = urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH}", timeout=2).status == 200
                except OSError:
                    time.sleep(0.2)
    rc = proc.wait(timeout=300)
    text = "".join(lines)
    assert rc == 0, text
    assert healthy, text
    for step in ("[1/6] record from the virtual board (virtual://hand", "[2/6] train", "[3/6] export",
                 "[4/6] verify", "[5/6] start the virtual board", "[6/6] watching", "demo finished"):
        assert step in text, step
    # no TFLM tree in the tests' cache (as in CI): the verify step says why it did not run
    assert "skipped: the sketch has no TFLM runtime" in text
    report = json.loads((out / "model" / "report.json").read_text())
    assert report["labels"] == ["negative", "ring", "slope", "wing"] and report["split"] == "person"
    assert report["simulated"] is True and "Simulated data" in (out / "model" / "report.md").read_text()
    from training.dataset import load_dataset
    ds = load_dataset(out / "data")  # recorded through the capture path: 6 people x 4 labels x 10 takes
    assert len(ds.takes) == 240 and len(ds.subjects()) == 6 and all(t.meta["simulated"] for t in ds.takes)
    sketch = out / "gesture_classifier"
    assert (sketch / "gesture_classifier.ino").is_file()
    tflite = (out / "model" / "model.tflite").read_bytes()
    from training.export import parse_model_data
    from training.package import parse_package

    assert parse_package(parse_model_data((sketch / "model_data.cpp").read_text())).payload == tflite
