"""The dashboard's push panel (dashboard/push_panel.py) under AppTest, against the Python virtual
classifier over the real link thread: pick a folder, see what changes, push, and the live view
takes the labels the board's INFO reports afterwards."""
from __future__ import annotations

import sys
import time

import pytest

from conftest import ROOT
from dashboard_fakes import SseClient, live_args, run_until

APP = ROOT / "dashboard" / "app.py"


@pytest.fixture
def clean_cache():
    import streamlit as st

    yield
    st.cache_resource.clear()  # on_release stops the page's link thread
    st.cache_data.clear()


def page(monkeypatch, url: str, *args: str):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(sys, "argv", [str(APP), "--url", url, *args])
    return AppTest.from_file(str(APP), default_timeout=60)



def live_labels(at) -> list[str]:
    """The labels the page gives its live view (dashboard/live_view.py)."""
    return live_args(at)["labels"]


def live_gesture(at, timeout: float = 30.0) -> str:
    """The name of the next prediction with motion the page's live feed delivers (what the live view paints)."""
    feed = live_args(at)["feed"]
    client = SseClient(feed["port"], feed["path"])
    try:
        client.next("hello")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            name = client.next("prediction", timeout=timeout)["name"]
            if name not in ("idle", "unknown"):
                return name
        raise AssertionError("no prediction with motion on the live feed")
    finally:
        client.close()


def table(at) -> dict[str, dict]:
    """The push panel's comparison, by row."""
    df = next(d.value for d in at.dataframe if "on the board" in d.value.columns)
    return {r["what"]: r for r in df.to_dict("records")}


def test_push_panel_shows_changes_pushes_and_the_live_view_takes_the_new_labels(
        monkeypatch, clean_cache, small_model, other_model):
    url = f"virtual://classifier?model={small_model.model_dir}"
    push_and_follow(page(monkeypatch, url, "--model", str(small_model.model_dir)), small_model, other_model)


def test_push_panel_against_the_host_compiled_firmware(monkeypatch, clean_cache, small_model, other_model, tflm_tree,
                                                       tmp_path):
    """The same, with the exported push-ready sketch itself as the board (gk_push.h over the shim's BLE
    link and NOR flash): what the page pushes is what the board's transfer service takes."""
    from capture.virtual import firmware as fw
    from tests.conftest import need_tool
    from training.export import export_sketch

    need_tool("g++")
    sketch = tmp_path / "clf"
    export_sketch(small_model.model_dir, sketch, board="nano33ble")
    fw.build(sketch, "nano33ble", tflm=tflm_tree)
    monkeypatch.setenv("GESTURE_TFLM", str(tflm_tree))  # where the page's link finds the runtime to build with
    url = f"virtual://firmware?sketch={sketch}&board=nano33ble"
    push_and_follow(page(monkeypatch, url, "--model", str(small_model.model_dir)), small_model, other_model)


def push_and_follow(at, small_model, other_model) -> None:
    """Pick other_model, see what changes, push, and the live view takes the board's new labels."""
    from dashboard import push_panel

    old = list(small_model.config.labels)
    new = (other_model / "labels.txt").read_text().split()
    run_until(at, lambda a: live_labels(a) == old, "the live view named with the running model's labels", timeout=30)
    run_until(at, lambda a: any(m.label == "predictions/s" and m.value not in ("0", "0.0") for m in a.metric),
              "the board's predictions reaching the page", timeout=60)
    assert live_gesture(at) in old

    at.text_input(key="push_dir").input(str(other_model)).run()
    rows = table(at)
    assert rows["labels"]["on the board"] == ", ".join(old) and rows["labels"]["pushed"] == ", ".join(new)
    assert rows["labels"]["changes"] == "yes"
    assert rows["int8 accuracy"]["on the board"].endswith("%")
    assert not at.button(key="push").disabled

    at.button(key="push").click().run()
    assert not at.exception, [e.value for e in at.exception]
    ok = [s.value for s in at.success if "Pushed" in s.value]
    assert ok and "labels " + ",".join(new) in ok[0], [e.value for e in at.error]
    sha = (other_model / "report.json").read_text().split('"model_sha256": "')[1][:64]
    assert push_panel.PUSHED[sha] == other_model
    # the live view: named after the new labels, and the board's predictions are the new model's
    run_until(at, lambda a: live_labels(a) == new, "the live view named with the pushed labels", timeout=30)
    assert all(live_gesture(at) in new for _ in range(3))
    rows = table(at)
    assert rows["labels"]["on the board"] == ", ".join(new) and rows["labels"]["changes"] == ""


def test_push_panel_refuses_a_folder_that_is_not_a_model(monkeypatch, clean_cache, small_model, tmp_path):
    at = page(monkeypatch, f"virtual://classifier?model={small_model.model_dir}", "--model", str(small_model.model_dir))
    at.run()
    at.text_input(key="push_dir").input(str(tmp_path)).run()
    assert not at.exception
    assert any("model.tflite: not found" in e.value for e in at.error)
    with pytest.raises(KeyError):
        at.button(key="push")


def test_push_panel_resumes_when_the_board_drops_the_link_mid_push(monkeypatch, clean_cache, small_model, other_model):
    """The link thread reconnects by itself; the push waits for its new connection and goes on.

    A virtual:// URL opened again is a new virtual board; a real board keeps its transfer across
    connections, so here every reconnection reaches the same virtual board (its backend, kept)."""
    from capture.transport import open_transport
    from capture.transport.ble import BleTransport

    boards: dict[str, BleTransport] = {}

    def same_board(target: str) -> BleTransport:
        if target not in boards:
            boards[target] = open_transport(target)  # type: ignore[assignment]
            return boards[target]
        first = boards[target]
        return BleTransport(first.target, backend=first.backend)

    monkeypatch.setattr("dashboard.link.open_transport", same_board)
    url = f"virtual://classifier?model={small_model.model_dir}&push_disconnect_at=4000"
    at = page(monkeypatch, url, "--model", str(small_model.model_dir))
    run_until(at, lambda a: bool(live_labels(a)), "the live view", timeout=30)
    live_gesture(at)
    at.text_input(key="push_dir").input(str(other_model)).run()
    at.button(key="push").click().run()
    assert not at.exception, [e.value for e in at.exception]
    ok = [s.value for s in at.success if "Pushed" in s.value]
    assert ok and "1 resume(s)" in ok[0], [e.value for e in at.error]
