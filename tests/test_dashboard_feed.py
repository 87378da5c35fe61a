"""The live feed (dashboard/feed.py): every buffered item reaches a connected page at once, as the
live view (dashboard/live/live.js) reads it; a late page gets a snapshot; a stalled page is let go."""
from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from capture import protocol as p
from dashboard import feed as feed_mod
from dashboard.buffers import LiveBuffers
from dashboard.feed import LiveFeed
from dashboard_fakes import SseClient, imu_stream, wait_until

LABELS = ["negative", "ring", "slope", "wing"]
CH = ("ax", "ay", "az", "gx", "gy", "gz")


@pytest.fixture
def buffers():
    b = LiveBuffers()
    b.start_connection(100.0, CH)
    return b


@pytest.fixture
def feed(buffers):
    f = LiveFeed(buffers).start()
    f.set_labels(LABELS)
    yield f
    f.stop()


@pytest.fixture
def page(feed):
    client = SseClient(feed.port, feed.path)
    assert client.next("hello")["labels"] == LABELS
    wait_until(lambda: feed.clients == 1, what="the page to join the feed")
    yield client
    client.close()


def pred(class_index: int, scores: list[int], confidence: int | None = None) -> p.Prediction:
    conf = max(scores) if confidence is None else confidence
    return p.Prediction(class_index, conf, tuple(scores))


def test_each_prediction_reaches_the_page_with_its_name_scores_and_receive_time(buffers, feed, page):
    received = time.time()
    buffers.add_prediction(41, 5_000_000, pred(3, [20, 10, 25, 200]), received)
    ev = page.next("prediction")
    assert (ev["seq"], ev["i"], ev["cls"], ev["name"]) == (41, 0, 3, "wing")
    assert ev["conf"] == round(200 / 255, 4) and ev["scores"] == [round(v / 255, 4) for v in (20, 10, 25, 200)]
    assert ev["rx"] == received and ev["dev"] == 5.0 and "snap" not in ev
    # the board's threshold rejected the window -> unknown; no motion (confidence 0) -> idle
    buffers.add_prediction(42, 5_080_000, pred(p.UNKNOWN_CLASS, [60, 50, 40, 70], confidence=40), time.time())
    buffers.add_prediction(43, 5_160_000, pred(p.UNKNOWN_CLASS, [0, 0, 0, 0], confidence=0), time.time())
    assert [page.next("prediction")["name"] for _ in range(2)] == ["unknown", "idle"]
    # a model with other labels (a retrained model): named with them from the next prediction on
    feed.set_labels(["up", "down", "left", "right"])
    buffers.add_prediction(44, 5_240_000, pred(1, [0, 250, 3, 2]), time.time())
    assert page.next("prediction")["name"] == "down"


def test_every_prediction_of_a_burst_arrives_in_order(buffers, feed, page):
    for k in range(300):
        buffers.add_prediction(k, 1_000_000 + 80_000 * k, pred(k % 4, [10, 20, 30, 200]), time.time())
    got = [page.next("prediction") for _ in range(300)]
    assert [e["seq"] for e in got] == list(range(300)) and [e["i"] for e in got] == list(range(300))


def test_imu_arrives_as_accelerometer_g_on_the_device_clock(buffers, feed, page):
    counts = imu_stream(10)
    buffers.add_imu(1_000_000, counts, time.time())
    ev = page.next("imu")
    assert ev["t"] == 1.0 and ev["dt"] == pytest.approx(0.01)
    assert np.allclose(ev["g"], p.counts_to_units(counts)[:, :3], atol=1e-4)
    buffers.add_imu(0xFFFF_F000, counts, time.time())  # the u32 device clock wraps: still increasing
    buffers.add_imu(0x0000_0F00, counts, time.time())
    t1, t2 = page.next("imu")["t"], page.next("imu")["t"]
    assert t2 > t1 > 1.0


def test_a_reconnection_and_detected_events_are_passed_on(buffers, feed, page):
    buffers.start_connection(50.0, CH)
    assert page.next("reset")["rate"] == 50.0
    buffers.add_event(7, 2_000_000, p.Event(1, 230), time.time())
    ev = page.next("event")
    assert (ev["seq"], ev["name"], ev["conf"]) == (7, "ring", round(230 / 255, 4))


def test_a_page_that_connects_late_gets_the_newest_prediction_and_the_raw_trace_once(buffers, feed):
    counts = imu_stream(1500)  # 15 s at 100 Hz: the snapshot holds the last 10 s
    for k in range(0, 1500, 10):
        buffers.add_imu(k * 10_000, counts[k:k + 10], time.time())
    buffers.add_prediction(5, 14_000_000, pred(0, [240, 1, 2, 3]), time.time())
    buffers.add_prediction(6, 14_080_000, pred(2, [1, 2, 240, 3]), time.time())
    late = SseClient(feed.port, feed.path)
    try:
        raw = late.next("imu")
        assert raw["rx"] is None and len(raw["g"]) == 1000 and raw["t"] == pytest.approx(5.0)
        assert np.allclose(raw["g"], p.counts_to_units(counts[500:])[:, :3], atol=1e-4)
        snap = late.next("prediction")
        assert (snap["seq"], snap["name"], snap["snap"]) == (6, "slope", True)  # shown, not timed by the page
        buffers.add_prediction(7, 14_160_000, pred(3, [1, 2, 3, 240]), time.time())
        live = late.next("prediction")
        assert live["seq"] == 7 and "snap" not in live
    finally:
        late.close()


def test_only_the_feeds_secret_path_answers(feed):
    for path in ("/", "/live/", "/live/guess", feed.path + "x", "/index.html"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{feed.port}{path}", timeout=5)
        assert e.value.code == 404, path
    other = LiveFeed(LiveBuffers())
    assert other.token != feed.token and len(feed.token) >= 20


def test_the_stream_is_readable_from_the_pages_origin(feed):
    """The live view is an iframe of the Streamlit server: another port, so another origin."""
    client = SseClient(feed.port, feed.path)
    try:
        assert client.response.getheader("Content-Type") == "text/event-stream"
        assert client.response.getheader("Access-Control-Allow-Origin") == "*"
        assert client.response.getheader("Cache-Control") == "no-store"
    finally:
        client.close()


def test_a_page_that_stops_reading_is_let_go_and_others_keep_streaming(buffers, feed, page, monkeypatch):
    monkeypatch.setattr(feed_mod, "QUEUE_ITEMS", 20)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server's writes block soon
    stalled.connect(("127.0.0.1", feed.port))
    stalled.sendall(f"GET {feed.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        wait_until(lambda: feed.clients == 2, what="the stalled page to join")
        big = imu_stream(2000)  # ~60 KB of JSON per item
        for k in range(200):
            buffers.add_imu(k * 20_000_000, big, time.time())
            if feed.dropped_pages:
                break
        wait_until(lambda: feed.dropped_pages == 1 and feed.clients == 1, what="the stalled page to be dropped")
        stalled.settimeout(10)
        while stalled.recv(1 << 16):  # what was in flight, then the end: the server closed its side
            pass
        buffers.add_prediction(1, 1, pred(1, [0, 250, 0, 0]), time.time())
        while (ev := page.next("prediction"))["seq"] != 1:  # the reading page got everything, then this
            pass
        assert ev["name"] == "ring"
    finally:
        stalled.close()


def test_stop_ends_every_stream_and_frees_the_port(buffers):
    feed = LiveFeed(buffers).start()
    client = SseClient(feed.port, feed.path)
    client.next("hello")
    port = feed.port
    feed.stop()
    assert client.closed.wait(10), "the page's stream did not end"
    buffers.add_prediction(1, 1, pred(0, [1, 0, 0, 0]), time.time())  # no subscriber left: nothing breaks
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_a_failing_subscriber_never_breaks_the_buffers(buffers, caplog):
    def broken(item) -> None:
        raise RuntimeError("subscriber bug")

    seen = []
    buffers.subscribe(broken)
    unsubscribe = buffers.subscribe(seen.append)
    ev = buffers.add_prediction(1, 1, pred(0, [200, 0, 0, 0]), time.time())
    assert seen == [ev] and buffers.snapshot().n_predictions == 1
    assert "subscriber failed" in caplog.text
    unsubscribe()
    buffers.add_prediction(2, 2, pred(0, [200, 0, 0, 0]), time.time())
    assert seen == [ev]


def test_a_quiet_feed_sends_keepalives_between_whole_events(buffers, feed, monkeypatch):
    monkeypatch.setattr(feed_mod, "KEEPALIVE_S", 0.05)
    client = SseClient(feed.port, feed.path)
    try:
        client.next("hello")
        wait_until(lambda: client.comments.count(": keepalive") >= 3, what="keepalive comments")
        for k in range(20):  # events and keepalives interleave, never inside one another
            buffers.add_prediction(k, k, pred(0, [200, 0, 0, 0]), time.time())
            time.sleep(0.01)
        assert [client.next("prediction")["seq"] for _ in range(20)] == list(range(20))
    finally:
        client.close()
