"""The dashboard's push panel (dashboard/push_panel.py) under AppTest, against the Python virtual
classifier over the real link thread: pick a folder, see what changes, push, and the live view
takes the labels the board's INFO reports afterwards."""
from __future__ import annotations

import sys

import pytest

from conftest import ROOT, wait_until

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


def run_until(at, cond, what: str, timeout: float = 30.0):
    def ok() -> bool:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return cond(at)
    wait_until(ok, timeout, what)
    return at


def bar_texts(at) -> list[str]:
    return [b.proto.text for b in at.get("progress")]


def table(at) -> dict[str, dict]:
    """The push panel's comparison, by row."""
    df = next(d.value for d in at.dataframe if "on the board" in d.value.columns)
    return {r["what"]: r for r in df.to_dict("records")}


def test_push_panel_shows_changes_pushes_and_the_live_view_takes_the_new_labels(
        monkeypatch, clean_cache, small_model, other_model):
    from dashboard import push_panel

    old = list(small_model.config.labels)
    new = (other_model / "labels.txt").read_text().split()
    at = page(monkeypatch, f"virtual://classifier?model={small_model.model_dir}", "--model", str(small_model.model_dir))
    run_until(at, lambda a: any(old[0] in t for t in bar_texts(a)), "a prediction with the old labels")

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
    # the live view: bars named after the new labels only
    run_until(at, lambda a: (texts := [t for t in bar_texts(a) if "·" in t]) and
              all(t.split(" · ")[0] in new for t in texts) and len(texts) == len(new),
              "predictions shown with the pushed labels")
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
    run_until(at, lambda a: any("·" in t for t in bar_texts(a)), "a prediction")
    at.text_input(key="push_dir").input(str(other_model)).run()
    at.button(key="push").click().run()
    assert not at.exception, [e.value for e in at.exception]
    ok = [s.value for s in at.success if "Pushed" in s.value]
    assert ok and "1 resume(s)" in ok[0], [e.value for e in at.error]
