"""The dashboard page under streamlit.testing.v1.AppTest, with a hand-driven board.

AppTest runs the real script (dashboard/app.py) headless; it never fires the
``st.fragment(run_every=...)`` timers, so each check reruns the page until it shows what the link
thread received (the fragments run as part of every full run). The live view is a custom
component AppTest cannot run: its arguments are checked here, and what it is fed is read from the
page's own live feed as the component's EventSource would (tests/test_dashboard_e2e.py runs it in
Chromium).
"""
from __future__ import annotations

import json
import re
import sys
import uuid

import numpy as np
import pytest

from capture import protocol as p
from capture.takes import read_manifest, read_take
from conftest import ROOT
from dashboard.escape import md_escape
from dashboard_fakes import (FakeHub, SseClient, emit_imu, fake_model_dir, imu_stream, live_args, prediction, run_until)

APP = ROOT / "dashboard" / "app.py"
LABELS = ["negative", "ring", "slope", "wing"]


@pytest.fixture
def hub(monkeypatch):
    import streamlit as st

    hub = FakeHub()
    monkeypatch.setattr("dashboard.link.open_transport", hub.open)
    yield hub
    st.cache_resource.clear()  # on_release stops each page's link thread
    st.cache_data.clear()


def page(monkeypatch, *args: str):
    from streamlit.testing.v1 import AppTest

    target = f"fake://{uuid.uuid4().hex[:8]}"  # a fresh link (cache entry) per test
    monkeypatch.setattr(sys, "argv", [str(APP), "--url", target, *args])
    at = AppTest.from_file(str(APP), default_timeout=30)
    return at, target



def texts(elements) -> list[str]:
    return [e.value for e in elements]


def chart_data(at, field: str):
    """The data table behind the first Altair chart whose data has ``field``."""
    from streamlit import dataframe_util

    for chart in at.get("vega_lite_chart"):
        for ds in chart.proto.datasets:
            df = dataframe_util.convert_arrow_bytes_to_pandas_df(ds.data.data)
            if field in df.columns:
                return df
    raise AssertionError(f"no chart with a {field!r} column")


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)



def live_page(at) -> SseClient:
    """A reader of the page's live feed, where the live view's EventSource connects."""
    feed = live_args(at)["feed"]
    client = SseClient(feed["port"], feed["path"])
    client.next("hello")
    return client


def counts_shown(at) -> dict[str, int]:
    """The per-gesture counts chart, or {} before there is one."""
    try:
        counts = chart_data(at, "count")
    except AssertionError:
        return {}
    return dict(zip(counts["label"], counts["count"]))


def test_connect_shows_status_and_device_info(monkeypatch, hub):
    at, target = page(monkeypatch)
    run_until(at, lambda a: any(f"Connected to {md_escape(target)}" in s for s in texts(a.sidebar.success)), "connected")
    assert any("board fake-nano · fw 9.8.7 · mode classifier" in c for c in texts(at.sidebar.text))
    assert any("sensor = LSM9DS1" in c for c in texts(at.sidebar.text))
    args = live_args(at)  # the live view is on the page, told where its feed is and the board's labels
    assert args["labels"] == ["negative", "ring", "slope", "wing"] and args["feed"]["path"].startswith("/live/")
    at.sidebar.button(key="disconnect").click().run()
    assert hub.current.closed
    assert any("Not connected" in s for s in texts(at.sidebar.info))


def test_predictions_reach_the_live_view_through_the_pages_feed(monkeypatch, hub):
    at, _ = page(monkeypatch)
    at.run()
    t = hub.wait_connected()
    view = live_page(at)
    try:
        t.emit(p.FrameType.PREDICTION, 41, 5_000_000, prediction(3, [20, 10, 25, 200]))
        ev = view.next("prediction")  # straight from the link thread: no page rerun in between
        assert (ev["seq"], ev["name"], ev["conf"]) == (41, "wing", round(200 / 255, 4))
        assert ev["scores"] == [round(v / 255, 4) for v in (20, 10, 25, 200)]
        # below the board's confidence threshold -> "unknown"; no motion (confidence 0) -> "idle"
        t.emit(p.FrameType.PREDICTION, 42, 5_080_000, p.encode_prediction(p.Prediction(p.UNKNOWN_CLASS, 40, (60, 50, 40, 70))))
        t.emit(p.FrameType.PREDICTION, 43, 5_160_000, prediction(p.UNKNOWN_CLASS, [0, 0, 0, 0]))
        t.emit(p.FrameType.PREDICTION, 44, 5_240_000, prediction(1, [10, 220, 10, 15]))
        assert [view.next("prediction")["name"] for _ in range(3)] == ["unknown", "idle", "ring"]
        emit_imu(t, imu_stream(20), 100.0, t0_us=5_000_000)
        assert view.next("imu")["t"] == 5.0
    finally:
        view.close()
    t.gap(2)
    run_until(at, lambda a: metric(a, "sequence gaps") == "2", "sequence gaps")
    assert counts_shown(at) == {"negative": 0, "ring": 1, "slope": 0, "wing": 1, "unknown": 2}


def test_the_live_view_names_the_models_labels(monkeypatch, hub, tmp_path):
    model = fake_model_dir(tmp_path / "model", ["up", "down", "left", "right"])
    at, _ = page(monkeypatch, "--model", str(model))
    at.run()
    assert live_args(at)["labels"] == ["up", "down", "left", "right"]  # the model's, not the board's INFO
    t = hub.wait_connected()
    view = live_page(at)
    try:
        t.emit(p.FrameType.PREDICTION, 1, 100_000, prediction(2, [10, 20, 230, 15]))
        assert view.next("prediction")["name"] == "left"
    finally:
        view.close()


def test_a_taken_live_port_is_said_on_the_page(monkeypatch, hub):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        at, _ = page(monkeypatch, "--live-port", str(port))
        at.run()
        assert not at.exception
        assert any(f"live view's feed on port {port}" in e for e in texts(at.error)), texts(at.error)
        assert not at.get("component_instance")


def test_device_lost_shows_reconnecting_then_connected(monkeypatch, hub):
    at, target = page(monkeypatch)
    at.run()
    first = hub.wait_connected()
    from capture.errors import GestureError

    hub.open_error = lambda: GestureError("board out of range")
    first.drop("link supervision timeout")
    run_until(at, lambda a: any("device lost: link supervision timeout" in w and "Reconnecting: attempt" in w
                                for w in texts(a.sidebar.warning)), "reconnecting")
    hub.open_error = None
    run_until(at, lambda a: any(f"Connected to {md_escape(target)}" in s for s in texts(a.sidebar.success)), "reconnected", 30)


def test_no_bluetooth_scan_message(monkeypatch, hub):
    import bleak

    async def no_dbus(*a, **k):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(bleak.BleakScanner, "discover", no_dbus)
    at, _ = page(monkeypatch)
    at.run()
    at.sidebar.button(key="scan").click().run()
    assert any(e.startswith("No Bluetooth adapter found on this machine") for e in texts(at.sidebar.error))


def test_save_as_take_writes_the_window_with_the_chosen_label(monkeypatch, hub, tmp_path):
    model = fake_model_dir(tmp_path / "model", LABELS, window=50, rate=25)  # a 2 s window
    data = tmp_path / "data"
    at, _ = page(monkeypatch, "--model", str(model), "--data", str(data))
    at.run()
    assert at.button(key="save_take").disabled  # nothing to save yet
    t = hub.wait_connected()
    counts = imu_stream(400)  # 4 s at 100 Hz
    emit_imu(t, counts, 100.0)
    t.emit(p.FrameType.PREDICTION, 7, 3_490_000, prediction(2, [30, 20, 180, 25]))  # at sample 349
    run_until(at, lambda a: not a.button(key="save_take").disabled, "prediction with raw samples")
    at.selectbox(key="take_label").set_value("wing")
    at.text_input(key="take_subject").set_value("ann")
    at.button(key="save_take").click().run()
    saved = data / "wing" / "dash_0001.csv"
    assert any(md_escape(saved) in s for s in texts(at.success)), texts(at.success) + texts(at.error)
    take = read_take(saved)
    assert take.n == 200 and np.array_equal(p.units_to_counts(take.values), counts[150:350])
    meta = read_manifest(data)["takes"]["wing/dash_0001.csv"]
    assert meta == {"source": "dashboard", "predicted": "slope", "confidence": round(180 / 255, 3),
                    "rate_hz": 100.0, "subject": "ann"}
    assert not any(p.name.startswith(".") for p in (data / "wing").iterdir())  # no temp files left


def test_save_disabled_without_raw_imu(monkeypatch, hub, tmp_path):
    model = fake_model_dir(tmp_path / "model", LABELS)
    at, _ = page(monkeypatch, "--model", str(model), "--data", str(tmp_path / "data"))
    at.run()
    t = hub.wait_connected()
    t.emit(p.FrameType.PREDICTION, 1, 100_000, prediction(1, [10, 220, 10, 15]))
    run_until(at, lambda a: counts_shown(a).get("ring") == 1, "prediction")
    assert at.button(key="save_take").disabled
    assert any("does not stream raw IMU" in c for c in texts(at.caption))


def test_save_disabled_while_disconnected_says_so_not_raw_imu(monkeypatch, hub, tmp_path):
    model = fake_model_dir(tmp_path / "model", LABELS)
    at, _ = page(monkeypatch, "--model", str(model), "--data", str(tmp_path / "data"))
    at.run()
    hub.wait_connected()
    at.sidebar.button(key="disconnect").click().run()
    run_until(at, lambda a: any("not connected to a board" in c for c in texts(a.caption)), "disconnected reason")
    assert not any("raw IMU" in c for c in texts(at.caption))


def test_device_strings_and_reasons_are_never_markdown_on_the_page(monkeypatch, hub):
    """A device (or an error naming one) must not put links or remote images on the page."""
    import streamlit as st

    evil = "![x](http://evil.example/p.png) [click](http://evil.example)"
    hub.info = dict(hub.info, board=evil)
    at, target = page(monkeypatch)
    run_until(at, lambda a: any("Connected to" in s for s in texts(a.sidebar.success)), "connected")
    assert any(evil in t for t in texts(at.sidebar.text))  # shown literally, as plain text
    markdown = texts(at.sidebar.caption) + texts(at.sidebar.markdown) + texts(at.sidebar.success)
    link = re.compile(r"(?<!\\)\]\(|(?<!\\)!(?<!\\)\[|https?://")  # an unescaped link, image or autolink
    assert not any(link.search(m) for m in markdown), markdown
    assert link.search(evil) and not link.search(md_escape(evil))  # the pattern sees what md_escape removes
    st.cache_resource.clear()


def test_model_panel_shows_report(monkeypatch, hub, tmp_path):
    model = fake_model_dir(tmp_path / "model", LABELS)
    at, _ = page(monkeypatch, "--model", str(model))
    at.run()
    assert metric(at, "int8 accuracy (TFLM)") == "83.3%"
    size = (model / "model.tflite").stat().st_size
    assert metric(at, "model") == f"{size:,} B" and metric(at, "tensor arena") == "4,321 B"
    assert any("`negative`, `ring`, `slope`, `wing`" in m for m in texts(at.markdown))
    assert any("Confusion matrix" in m for m in texts(at.markdown))
    assert not any("simulated hand" in c for c in texts(at.caption))  # trained on recordings: no note


def test_model_panel_says_when_the_model_was_trained_on_the_simulated_hand(monkeypatch, hub, tmp_path):

    model = fake_model_dir(tmp_path / "model", LABELS)
    report = json.loads((model / "report.json").read_text())
    (model / "report.json").write_text(json.dumps(dict(report, simulated=True)))
    at, _ = page(monkeypatch, "--model", str(model))
    at.run()
    assert any("simulated hand" in c and "not on recordings" in c for c in texts(at.caption)), texts(at.caption)


def test_bad_model_dir_is_a_clear_error(monkeypatch, hub, tmp_path):
    (tmp_path / "empty").mkdir()
    at, _ = page(monkeypatch, "--model", str(tmp_path / "empty"))
    at.run()
    assert not at.exception
    assert any("model.tflite" in e and "not found" in e for e in texts(at.error))


def test_bad_script_argument_is_shown_on_the_page(monkeypatch, hub):
    at, _ = page(monkeypatch, "--refresh", "fast")
    at.run()
    assert not at.exception
    assert any("--refresh" in e and "invalid float value" in e for e in texts(at.error))


def test_page_shows_the_device_address_so_the_user_can_pin_it(monkeypatch, hub):
    import dashboard_fakes

    monkeypatch.setattr(dashboard_fakes.FakeTransport, "address", "AA:BB:CC:DD:EE:FF", raising=False)
    at, _ = page(monkeypatch)
    run_until(at, lambda a: any("pin this board" in c for c in texts(a.sidebar.caption)), "address caption")
    assert any("gesture dashboard --ble AA:BB:CC:DD:EE:FF" in c for c in texts(at.sidebar.caption))


def test_page_does_not_suggest_pinning_a_virtual_board_by_its_kind(monkeypatch, hub):
    """A virtual board's transport address is e.g. ``virtual:classifier``; `--ble virtual:classifier` fails."""
    import dashboard_fakes

    monkeypatch.setattr(dashboard_fakes.FakeTransport, "address", "virtual:classifier", raising=False)
    at, target = page(monkeypatch)
    run_until(at, lambda a: any(f"Connected to {md_escape(target)}" in s for s in texts(a.sidebar.success)), "connected")
    assert not any("pin this board" in c or "virtual:classifier" in c for c in texts(at.sidebar.caption))


def test_events_counter_and_mark_false_activation_saves_a_negative_take(monkeypatch, hub, tmp_path):
    model = fake_model_dir(tmp_path / "model", LABELS, window=50, rate=25)  # a 2 s window
    data = tmp_path / "data"
    at, _ = page(monkeypatch, "--model", str(model), "--data", str(data))
    at.run()
    assert at.button(key="mark_false").disabled  # no event yet
    t = hub.wait_connected()
    counts = imu_stream(400)
    emit_imu(t, counts, 100.0)
    t.emit(p.FrameType.EVENT, 0, 1_990_000, p.encode_event(p.Event(3, 230)))  # wing at sample 199
    t.emit(p.FrameType.EVENT, 1, 3_490_000, p.encode_event(p.Event(1, 210)))  # ring at sample 349
    run_until(at, lambda a: metric(a, "events") == "2" and not a.button(key="mark_false").disabled, "two events")
    assert metric(a := at, "last event") == "ring" and metric(a, "false activations") == "0"
    at.button(key="mark_false").click().run()
    saved = data / "negative" / "dash_0001.csv"
    assert any(md_escape(saved) in s for s in texts(at.success)), texts(at.success) + texts(at.error)
    take = read_take(saved)
    assert take.n == 200 and np.array_equal(p.units_to_counts(take.values), counts[150:350])
    assert read_manifest(data)["takes"]["negative/dash_0001.csv"]["predicted"] == "ring"
    run_until(at, lambda a: metric(a, "false activations") == "1" and a.button(key="mark_false").disabled,
              "the counter counts the marked event")
