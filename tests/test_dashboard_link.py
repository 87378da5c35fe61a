"""The dashboard's link thread and buffers: connect, decode, reconnect with backoff, stay bounded."""
from __future__ import annotations

import time

import numpy as np
import pytest

from capture import protocol as p
from capture.errors import GestureError
from capture.takes import read_manifest, read_take
from dashboard.buffers import LiveBuffers
from dashboard.correction import save_window, window_take
from dashboard.link import Backoff, LinkState, LinkThread, NoBluetoothError
from dashboard_fakes import FakeHub, emit_imu, imu_stream, no_adapter_error, prediction, wait_until

FAST = Backoff(initial_s=0.01, factor=2.0, max_s=0.05, max_attempts=3)


@pytest.fixture
def hub():
    return FakeHub()


@pytest.fixture
def link(hub):
    lt = LinkThread(opener=hub.open, backoff=FAST)
    yield lt
    lt.stop()


def test_connect_reports_device_info(link, hub):
    link.connect("fake://board")
    hub.wait_connected()
    wait_until(lambda: link.status.state is LinkState.CONNECTED)
    s = link.status
    assert s.target == "fake://board"
    assert s.info["fw"] == "9.8.7" and s.info["labels"] == "negative,ring,slope,wing"
    link.disconnect()
    assert link.status.state is LinkState.IDLE
    assert hub.current.closed


def test_predictions_are_decoded_with_wall_clock_receive_times(link, hub):
    link.connect("fake://board")
    t = hub.wait_connected()
    before = time.time()
    for i in range(5):
        t.emit(p.FrameType.PREDICTION, 100 + i, 1_000_000 + 80_000 * i, prediction(i % 4, [10, 20, 30, 200]))
    t.emit(p.FrameType.PREDICTION, 105, 1_400_000, prediction(p.UNKNOWN_CLASS, [0, 0, 0, 0]))
    wait_until(lambda: link.buffers.snapshot().n_predictions == 6)
    snap = link.buffers.snapshot()
    last = snap.predictions[-2]
    assert (last.seq, last.class_index, last.device_us) == (104, 0, 1_320_000)
    assert last.confidence == pytest.approx(200 / 255) and last.scores[3] == pytest.approx(200 / 255)
    assert before - 1 <= last.received <= time.time()
    assert snap.latest.unknown and snap.latest.confidence == 0
    assert snap.counts == {0: 2, 1: 1, 2: 1, 3: 1, p.UNKNOWN_CLASS: 1}


def test_bad_payload_is_counted_not_fatal(link, hub):
    link.connect("fake://board")
    t = hub.wait_connected()
    t.emit(p.FrameType.PREDICTION, 1, 0, b"\x01\x02")  # header says nothing sensible
    t.emit(p.FrameType.PREDICTION, 2, 10, prediction(1, [1, 250, 2, 3]))
    wait_until(lambda: link.buffers.snapshot().n_predictions == 1)
    assert link.buffers.snapshot().decode_errors == 1


def test_raw_imu_window_and_sequence_gaps(link, hub):
    link.connect("fake://board")
    t = hub.wait_connected()
    counts = imu_stream(300)
    emit_imu(t, counts, 100.0)
    t.gap(3)
    wait_until(lambda: link.buffers.snapshot().raw_samples == 300)
    raw = link.buffers.raw(1.0)
    assert raw.channels == ("ax", "ay", "az", "gx", "gy", "gz") and raw.rate_hz == 100
    assert raw.n == 100 and np.array_equal(raw.counts, counts[200:])
    assert np.array_equal(raw.device_us, np.arange(200, 300) * 10_000)
    wait_until(lambda: link.status.frames_lost == 3)


# the first reconnect wait must outlast a poll under load: with FAST's 10 ms, wait_until could
# first see RECONNECTING at attempt 2, whose reason is already the failed reopen's
SLOW_FIRST = Backoff(initial_s=0.3, factor=1.0, max_s=0.3, max_attempts=3)


def test_device_lost_reconnects_with_backoff_then_gives_up(hub):
    link = LinkThread(opener=hub.open, backoff=SLOW_FIRST)
    try:
        _device_lost_then_gives_up(link, hub)
    finally:
        link.stop()


def _device_lost_then_gives_up(link, hub):
    link.connect("fake://board")
    first = hub.wait_connected()
    first.gap(2)
    wait_until(lambda: link.status.frames_lost == 2)
    hub.open_error = lambda: GestureError("board out of range")
    first.drop("link supervision timeout")
    wait_until(lambda: link.status.state is LinkState.RECONNECTING, what="reconnecting")
    s = link.status
    assert "device lost: link supervision timeout" in s.reason and s.attempt >= 1
    wait_until(lambda: link.status.state is LinkState.LOST, what="lost")
    s = link.status
    assert "board out of range" in s.reason and "gave up after 3 attempts" in s.reason
    assert hub.opens == 1 + 3 and s.disconnects == 1
    assert s.frames_lost == 2  # gaps of the dropped connection are kept


def test_reconnect_succeeds_and_keeps_counting_gaps(link, hub):
    link.connect("fake://board")
    first = hub.wait_connected()
    first.gap(4)
    wait_until(lambda: link.status.frames_lost == 4)
    first.drop("device disconnected")
    second = hub.wait_connected(2)
    second.gap(1)
    wait_until(lambda: link.status.state is LinkState.CONNECTED and link.status.frames_lost == 5)
    assert first.closed and link.status.disconnects == 1


def test_backoff_grows_and_is_capped():
    b = Backoff(initial_s=0.5, factor=2, max_s=4, max_attempts=None)
    assert [b.delay(a) for a in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_no_bluetooth_on_connect_is_a_state_not_a_retry(link, hub):
    hub.open_error = no_adapter_error
    link.connect("ble://GestureKit")
    wait_until(lambda: link.status.state is LinkState.NO_BLUETOOTH)
    assert link.status.reason.startswith("No Bluetooth adapter found on this machine")
    time.sleep(0.2)
    assert hub.opens == 1


def test_scan_without_adapter_says_so(monkeypatch, link):
    import bleak

    async def no_dbus(*a, **k):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(bleak.BleakScanner, "discover", no_dbus)
    with pytest.raises(NoBluetoothError, match="No Bluetooth adapter found on this machine"):
        link.scan(timeout=0.1)


def test_bad_url_is_lost_with_the_transport_message():
    lt = LinkThread(backoff=FAST)
    try:
        lt.connect("virtual://nonsense")
        wait_until(lambda: lt.status.state is LinkState.LOST)
        assert "unknown virtual board 'nonsense'" in lt.status.reason
    finally:
        lt.stop()


def test_real_virtual_ble_board_streams_and_drops():
    """The real BleTransport + bleak + virtual backend: IMU arrives, a drop leads to a reconnect."""
    lt = LinkThread(backoff=Backoff(initial_s=0.05, max_s=0.1, max_attempts=5))
    try:
        lt.connect("virtual://idle?rate=100&channels=3&disconnect_after=0.4")
        wait_until(lambda: lt.status.state is LinkState.CONNECTED, 20)
        assert lt.status.info["mode"] == "capture" and lt.status.info["rate"] == "100"
        wait_until(lambda: lt.buffers.snapshot().raw_samples > 0, 10)
        assert lt.buffers.raw().channels == ("ax", "ay", "az")
        wait_until(lambda: lt.status.disconnects >= 1, 10, "the virtual board's disconnect")
        wait_until(lambda: lt.status.state is LinkState.CONNECTED, 10, "reconnection")
    finally:
        lt.stop()


# ----------------------------------------------------------------------------- buffers

def test_buffers_are_bounded():
    buf = LiveBuffers(max_predictions=50, raw_seconds=2.0)
    buf.start_connection(100.0, ("ax", "ay", "az"))
    for i in range(1000):
        buf.add_prediction(i & 0xFFFF, i * 80_000, p.Prediction(1, 200, (10, 200)), time.time())
    counts = imu_stream(2000, channels=3)
    for k in range(0, 2000, 10):
        buf.add_imu(k * 10_000, counts[k:k + 10], time.time())
    snap = buf.snapshot()
    assert len(snap.predictions) == 50 and snap.n_predictions == 1000 and snap.predictions[-1].index == 999
    assert snap.raw_samples <= 210  # 2 s at 100 Hz, plus at most one batch
    raw = buf.raw()
    assert raw.n == snap.raw_samples and np.array_equal(raw.counts, counts[-raw.n:])


def test_device_time_unwraps_past_u32():
    buf = LiveBuffers()
    buf.start_connection(100.0, ("ax", "ay", "az"))
    near = (1 << 32) - 20_000
    for k, t in enumerate([near, near + 10_000, (near + 20_000) & 0xFFFFFFFF, (near + 30_000) & 0xFFFFFFFF]):
        buf.add_imu(t, np.full((1, 3), k, np.int16), time.time())
    raw = buf.raw()
    assert list(raw.device_us - raw.device_us[0]) == [0, 10_000, 20_000, 30_000]


# ----------------------------------------------------------------------------- save as take

def test_window_take_is_anchored_at_the_prediction_and_saved_atomically(tmp_path):
    buf = LiveBuffers(raw_seconds=10.0)
    buf.start_connection(100.0, ("ax", "ay", "az", "gx", "gy", "gz"))
    counts = imu_stream(600)
    for k in range(0, 600, 10):
        buf.add_imu(k * 10_000, counts[k:k + 10], time.time())
    ev = buf.add_prediction(7, 3_990_000, p.Prediction(2, 180, (20, 30, 180, 25)), time.time())  # sample 399
    take = window_take(buf, ev, "ring", 2.0, predicted="slope", subject="ann")
    assert take.n == 200 and np.array_equal(p.units_to_counts(take.values), counts[200:400])
    path = save_window(tmp_path, take)
    assert path == tmp_path / "ring" / "dash_0001.csv"
    back = read_take(path)
    assert np.array_equal(p.units_to_counts(back.values), counts[200:400])
    assert back.t_ms[0] == 0 and back.t_ms[-1] == pytest.approx(1990.0)
    meta = read_manifest(tmp_path)["takes"]["ring/dash_0001.csv"]
    assert meta["source"] == "dashboard" and meta["predicted"] == "slope" and meta["subject"] == "ann"
    assert meta["rate_hz"] == 100


def test_window_take_refuses_a_window_that_left_the_buffer():
    buf = LiveBuffers(raw_seconds=10.0)
    buf.start_connection(100.0, ("ax", "ay", "az"))
    counts = imu_stream(100, channels=3)
    for k in range(0, 100, 10):
        buf.add_imu(k * 10_000, counts[k:k + 10], time.time())
    ev = buf.add_prediction(1, 990_000, p.Prediction(0, 200, (200, 10)), time.time())
    with pytest.raises(GestureError, match="only 1.0 s of raw samples"):
        window_take(buf, ev, "ring", 4.0, predicted="wing")
    with pytest.raises(GestureError, match="label"):
        window_take(buf, ev, "no good", 0.5, predicted="wing")
