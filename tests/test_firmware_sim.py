"""The capture sketch's .ino, compiled unmodified for the host against firmware/shim, as the board.

Each test runs the real loop() (capture.virtual.firmware builds it with g++ and caches the
binary): boot and INFO at each revision's IMU rate, data-ready sampling (the device-clock rate
is the sensor's, every replayed sample arrives once), batches, SET_RATE, a host that holds the
port open without reading and a BLE central that stops taking notifications (loop() keeps
sampling, drops are counted and reported), BLE.begin() failing, and commands written over BLE.
Device time is the shim's virtual clock, so "20 s unread" takes well under a second.
"""
from __future__ import annotations

import asyncio
import os
import time
import tty

import numpy as np
import pytest

from capture import protocol as p
from capture.decoder import StreamDecoder
from capture.errors import GestureError
from capture.resources import capture_sketch_dir
from capture.virtual import firmware as fw
from tests.conftest import DATA, need_tool, wait_until

BOARDS = ("nano33ble", "nano33ble_rev2")
RATE = fw.BOARD_IMU_RATE


@pytest.fixture(autouse=True)
def _gxx():
    need_tool("g++")


def counts_for(board: str, seconds: float = 8.0) -> np.ndarray:
    """Real takes (the bundled dataset) at the board's IMU rate, cut to ``seconds``."""
    c = fw.replay_counts(DATA, RATE[board], rest_s=0.5)
    return c[: int(seconds * RATE[board])]


class Host:
    """A serial host on the board's pty: opening it raises DTR, reading is explicit."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.decoder = StreamDecoder()
        self.frames: list[p.Frame] = []

    def read(self, seconds: float = 0.2) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                time.sleep(0.005)
                continue
            self.frames += self.decoder.feed(data)

    def read_until(self, cond, timeout: float = 20.0, what: str = "frames") -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}")
            self.read(0.05)

    def send(self, cmd: p.Command, arg: int = 0) -> None:
        os.write(self.fd, p.encode_frame(p.FrameType.CONTROL, 0, 0, p.encode_control(cmd, arg)))

    def of(self, ftype: p.FrameType) -> list[p.Frame]:
        return [f for f in self.frames if f.type == ftype]

    def close(self) -> None:
        os.close(self.fd)


def imu_samples(frames: list[p.Frame]) -> tuple[np.ndarray, list[int]]:
    blocks = [p.decode_imu(f.payload) for f in frames]
    return (np.vstack(blocks) if blocks else np.zeros((0, 6), np.int16)), [len(b) for b in blocks]


def find_in(haystack: np.ndarray, needle: np.ndarray) -> int:
    for k in range(len(haystack) - len(needle) + 1):
        if np.array_equal(haystack[k:k + len(needle)], needle):
            return k
    return -1


@pytest.mark.parametrize("board", BOARDS)
def test_boots_at_its_imu_rate_with_info_batches_and_every_sample_once(board):
    counts = counts_for(board)
    with fw.start_board(board=board, counts=counts, speed=8, ble=False) as b:
        host = Host(b.path)
        host.send(p.Command.INFO)  # the boot INFO went out before anyone had the port open (DTR low)
        assert b.wait(30) == 0  # the replayed recording ends: the board switches off
        host.read(0.3)
        host.close()
        st = b.status
    infos = [p.decode_info(f.payload) for f in host.of(p.FrameType.INFO)]
    assert infos, "no INFO frame"
    assert infos[0]["board"] == board and infos[0]["rate"] == str(RATE[board])
    assert infos[0]["sensor"] == ("BMI270" if board.endswith("rev2") else "LSM9DS1")
    assert not [f for f in host.of(p.FrameType.LOG) if b"rate" in f.payload]  # (no radio here: ble=False)
    imu = host.of(p.FrameType.IMU)
    got, sizes = imu_samples(imu)
    assert set(sizes) == {p.samples_per_frame(RATE[board])}  # batches as configured for the rate
    assert np.all(np.diff([f.seq for f in imu]) == 1)  # nothing lost
    # Rate on the device clock: t_us of each frame's first sample against the sample count.
    t = np.array([f.t_us for f in imu], dtype=np.float64)
    n_before = np.cumsum([0] + sizes[:-1])
    measured = (n_before[-1] - n_before[0]) / ((t[-1] - t[0]) / 1e6)
    assert measured == pytest.approx(RATE[board], rel=2e-3)
    # Every sample the sensor produced is read once and arrives once, in order: no repeats, no skips.
    assert st.stale == 0 and st.overwritten == 0 and st.reads == st.produced
    k = find_in(counts, got[:50])
    assert k >= 0 and np.array_equal(got, counts[k:k + len(got)])
    assert len(np.unique(got, axis=0)) == len(got)


def test_rev1_set_rate_changes_the_sensor_odr_and_refuses_what_it_cannot_deliver():
    counts = counts_for("nano33ble", 6)
    with fw.start_board(board="nano33ble", counts=counts, speed=8, ble=False) as b:
        host = Host(b.path)
        host.send(p.Command.SET_RATE, 50)  # a protocol rate, but no LSM9DS1 ODR
        host.send(p.Command.SET_RATE, 238)
        host.read_until(lambda: len(host.of(p.FrameType.INFO)) >= 1 and len(host.of(p.FrameType.IMU)) > 200)
        b.close()
        host.close()
    logs = [f.payload.decode() for f in host.of(p.FrameType.LOG)]
    assert "error: rate 50 Hz not supported" in logs
    info = p.decode_info(host.of(p.FrameType.INFO)[-1].payload)
    assert info["rate"] == "238"
    after = [f for f in host.of(p.FrameType.IMU) if f.t_us > host.of(p.FrameType.INFO)[-1].t_us + 20_000]
    _, sizes = imu_samples(after)
    assert set(sizes) == {p.samples_per_frame(238)}
    t = np.array([f.t_us for f in after], dtype=np.float64)
    assert (sum(sizes[:-1])) / ((t[-1] - t[0]) / 1e6) == pytest.approx(238, rel=5e-3)


def test_rev2_refuses_any_rate_but_100():
    with fw.start_board(board="nano33ble_rev2", counts=counts_for("nano33ble_rev2", 4), speed=8, ble=False) as b:
        host = Host(b.path)
        host.send(p.Command.SET_RATE, 119)
        refused = b"error: rate 119 Hz not supported"
        host.read_until(lambda: any(f.payload == refused for f in host.of(p.FrameType.LOG)), what="the refusal")
        host.send(p.Command.INFO)
        host.read_until(lambda: bool(host.of(p.FrameType.INFO)))
        host.close()
    assert p.decode_info(host.of(p.FrameType.INFO)[-1].payload)["rate"] == "100"


@pytest.mark.parametrize("board", BOARDS)
def test_port_open_but_unread_never_stalls_loop(board):
    """A terminal holds the port (DTR high) and reads nothing for 20 s of device time: the USB
    packets pile up in the host's tty buffer (20 KB on Linux), then the sketch must drop frames."""
    rate = RATE[board]
    counts = np.tile(counts_for(board, 10), (4, 1))  # 40 s
    with fw.start_board(board=board, counts=counts, speed=0, ble=False) as b:
        host = Host(b.path)  # opened, not read
        wait_until(lambda: b.status.t_us > 20e6, timeout=60, what="20 s of device time")
        st = b.status
        assert st.serial_wait_us == 0  # never blocked in Serial.write
        assert st.reads >= st.produced - 1 and st.overwritten == 0  # loop() kept sampling at the sensor's rate
        assert st.produced == pytest.approx(st.t_us / 1e6 * rate, abs=2)
        host.read_until(lambda: any(f.payload.startswith(b"dropped:") for f in host.of(p.FrameType.LOG)),
                        what="the drop report")
        host.close()
    imu = host.of(p.FrameType.IMU)
    lost = int(np.sum((np.diff([f.seq for f in imu]) - 1) % 65536))
    reports = [fw.parse_drops(f.payload.decode()) for f in host.of(p.FrameType.LOG)]
    serial_dropped = max(r[0] for r in reports if r)
    assert lost > 0 and serial_dropped >= lost  # every gap the host sees was counted by the sketch


async def _ble_session(b: fw.FirmwareBoard, backend, action):
    from capture.transport.ble import BleTransport

    link = BleTransport("virtual:firmware", backend=backend)
    msgs: list = []
    link.on_message(msgs.append)
    info = await link.open()
    try:
        await action(link, msgs)
    finally:
        await link.close()
    return info, msgs, link.stats


@pytest.mark.parametrize("board", BOARDS)
def test_ble_central_that_stops_reading_never_stalls_loop(board):
    rate = RATE[board]
    counts = np.tile(counts_for(board, 10), (3, 1))
    with fw.start_board(board=board, counts=counts, speed=4) as b:
        backend = b.backend()

        async def action(link, msgs):
            await asyncio.sleep(0.5)
            backend.stalled = True  # the central stops taking packets: the controller buffers fill
            t_stall = b.status.t_us
            await asyncio.sleep(1.5)  # 6 s of device time
            st = b.status
            assert st.t_us - t_stall > 4e6
            assert st.ble_wait_us == 0  # HCI.sendAclPkt never busy-waited
            assert st.overwritten == 0 and st.produced == pytest.approx(st.t_us / 1e6 * rate, abs=3)
            backend.stalled = False
            await asyncio.sleep(0.5)

        info, msgs, stats = asyncio.run(_ble_session(b, backend, action))
        host = Host(b.path)
        host.send(p.Command.INFO)
        host.read_until(lambda: any(f.payload.startswith(b"dropped:") for f in host.of(p.FrameType.LOG)),
                        what="the drop report", timeout=30)
        host.close()
    assert info["board"] == board and info["rate"] == str(rate)
    assert stats.frames_lost > 0  # the host sees the dropped notifications as sequence gaps
    ble_dropped = max(r[1] for r in (fw.parse_drops(f.payload.decode()) for f in host.of(p.FrameType.LOG)) if r)
    assert ble_dropped >= stats.frames_lost


def test_ble_info_is_whole_and_commands_run_outside_the_ble_handler():
    with fw.start_board(board="nano33ble", counts=counts_for("nano33ble", 10), speed=4) as b:
        host = Host(b.path)
        backend = b.backend()

        async def action(link, msgs):
            await asyncio.sleep(0.3)
            await link.send(p.Command.SET_RATE, 476)  # answered with INFO on serial, from loop()
            await asyncio.sleep(0.3)

        info, msgs, _ = asyncio.run(_ble_session(b, backend, action))
        host.read_until(lambda: bool(host.of(p.FrameType.INFO)), what="INFO after SET_RATE over BLE")
        st = b.status
        host.close()
    assert st.serial_in_ble_handler == 0
    serial_info = host.of(p.FrameType.INFO)[-1].payload
    assert p.decode_info(serial_info)["rate"] == "476"
    assert p.encode_info(info) == p.encode_info(p.decode_info(serial_info)).replace(b"rate=476", b"rate=119")


def test_ble_begin_failure_streams_over_serial_and_writes_no_characteristic():
    with fw.start_board(board="nano33ble_rev2", counts=counts_for("nano33ble_rev2", 3), speed=8, ble_fail=True) as b:
        host = Host(b.path)
        host.send(p.Command.INFO)
        host.read_until(lambda: bool(host.of(p.FrameType.INFO)) and len(host.of(p.FrameType.IMU)) > 20)
        st = b.status
        host.close()
    assert st.ble_write_no_radio == 0
    assert p.decode_info(host.of(p.FrameType.INFO)[-1].payload)["rate"] == "100"


def test_binary_is_cached_and_rebuilt_when_a_source_changes(tmp_path):
    import shutil

    sketch = tmp_path / "capture"
    shutil.copytree(capture_sketch_dir(), sketch)
    first = fw.build(sketch, "nano33ble", cache=tmp_path / "cache")
    assert fw.build(sketch, "nano33ble", cache=tmp_path / "cache") == first
    (sketch / "capture.ino").write_text((sketch / "capture.ino").read_text() + "\n// changed\n")
    second = fw.build(sketch, "nano33ble", cache=tmp_path / "cache")
    assert second != first and second.is_file()


def test_missing_gxx_is_one_line_naming_the_debian_package(monkeypatch):
    monkeypatch.setattr(fw.shutil, "which", lambda name: None)
    with pytest.raises(GestureError, match=r"g\+\+ not found.*Debian package g\+\+") as e:
        fw.build(None, "nano33ble")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("board", BOARDS)
def test_imu_failure_log_repeats_every_second_for_a_port_opened_later(board):
    with fw.start_board(board=board, counts=counts_for(board, 1.0), speed=4, ble=False, imu_fail=True) as b:
        time.sleep(1.0)  # ~4 s of device time with nobody on the port
        host = Host(b.path)
        host.read_until(lambda: sum(f.payload == b"error: IMU not found" for f in host.of(p.FrameType.LOG)) >= 2,
                        what="two IMU-failure LOG frames")
        host.close()
        assert b.running()
    assert not host.of(p.FrameType.IMU) and not host.of(p.FrameType.INFO)


@pytest.mark.parametrize("board", BOARDS)
def test_ble_disconnect_with_full_buffers_then_reconnect_resumes_notifications(board):
    """ArduinoBLE keeps the pending-packet count of a dropped link (its issue #45): without the
    sketch's reset, every later central gets nothing (and the library's replies would spin)."""
    counts = np.tile(counts_for(board, 10), (3, 1))
    with fw.start_board(board=board, counts=counts, speed=4) as b:
        backend = b.backend()

        async def stall_then_drop(link, msgs):
            await asyncio.sleep(0.3)
            backend.stalled = True  # the controller's 4 buffers fill with packets nobody takes
            await asyncio.sleep(0.5)

        asyncio.run(_ble_session(b, backend, stall_then_drop))  # closing the link drops it, buffers full
        backend.stalled = False
        loops_before = b.status.loops

        async def listen(link, msgs):
            await asyncio.sleep(1.0)

        _, msgs, _ = asyncio.run(_ble_session(b, backend, listen))
        st = b.status
    assert sum(m.type == p.FrameType.IMU for m in msgs) > 50  # notifications resumed on the new link
    assert st.loops > loops_before and st.ble_wait_us == 0  # loop() ran on and never busy-waited


def _ble_run(board: str, mtu: int, seconds: float = 2.0):
    """The capture sketch at a 50 ms connection interval with 4 controller buffers, a central asking
    for ATT ``mtu``; returns the IMU notifications, the link stats and the serial host (drop LOGs)."""
    counts = np.tile(counts_for(board, 10), (3, 1))
    with fw.start_board(board=board, counts=counts, speed=2, ble_interval_ms=50, ble_buffers=4) as b:
        backend = b.backend(mtu=mtu)

        async def action(link, msgs):
            assert link.mtu == min(mtu, p.BLE_MAX_MTU)
            await asyncio.sleep(seconds)

        _, msgs, stats = asyncio.run(_ble_session(b, backend, action))
        host = Host(b.path)
        host.send(p.Command.INFO)
        host.read(0.5)
        host.close()
    return [m for m in msgs if m.type == p.FrameType.IMU], stats, host


def test_ble_mtu_247_carries_rev1_119_hz_at_a_50_ms_interval_with_nothing_lost():
    imu, stats, _ = _ble_run("nano33ble", 247)
    sizes = {len(p.decode_imu(m.payload)) for m in imu}
    assert sizes == {p.ble_samples_per_notification(247, 6)}  # 19 samples fill each notification
    assert stats.frames_lost == 0 and np.all(np.diff([m.seq for m in imu]) == 1)
    t = np.array([m.t_us for m in imu], dtype=np.float64)
    assert (len(imu) - 1) * 19 / ((t[-1] - t[0]) / 1e6) == pytest.approx(119, rel=5e-3)  # the whole stream


def test_ble_mtu_23_at_a_50_ms_interval_drops_what_does_not_fit_and_counts_it():
    """4 buffers per 50 ms carry at most 80 one-sample notifications a second: 119 Hz does not fit."""
    imu, stats, host = _ble_run("nano33ble", 23)
    assert {len(p.decode_imu(m.payload)) for m in imu} == {1}
    assert stats.frames_lost > 0  # the host sees the gaps ...
    reports = [fw.parse_drops(f.payload.decode()) for f in host.of(p.FrameType.LOG)]
    assert max(r[1] for r in reports if r) >= stats.frames_lost  # ... and the sketch counted every one


def _rev1_at_952(late: tuple[int, int] | None, seconds: float = 1.5, drops: bool = False):
    counts = counts_for("nano33ble", 30)
    with fw.start_board(board="nano33ble", counts=counts, speed=2, ble=False, late=late) as b:
        host = Host(b.path)
        host.send(p.Command.SET_RATE, 952)
        host.read_until(lambda: bool(host.of(p.FrameType.INFO)), what="INFO at 952 Hz")
        t_info = host.of(p.FrameType.INFO)[-1].t_us
        st0 = b.status
        host.read(seconds)
        st = b.status
        host.read_until(lambda: any(f.payload.startswith(b"dropped:") for f in host.of(p.FrameType.LOG)),
                        what="the drop report") if drops else None
        host.close()
    frames = [f for f in host.of(p.FrameType.IMU) if f.t_us > t_info + 50_000]
    return host, frames, st0, st, b.history


def test_rev1_at_952_hz_reads_every_sample_through_the_fifo():
    """One-shot mode lost samples silently whenever a loop() pass exceeded 1.05 ms; the FIFO keeps them."""
    host, frames, st0, st, _ = _rev1_at_952(late=(40, 3000))  # every 40th pass costs 3 ms (a BLE event, say)
    assert st.overwritten == st0.overwritten  # nothing overwritten at the sensor
    got, sizes = imu_samples(frames)
    t = np.array([f.t_us for f in frames], dtype=np.float64)
    assert sum(sizes[:-1]) / ((t[-1] - t[0]) / 1e6) == pytest.approx(952, rel=5e-3)  # t_us: the samples' own times
    assert np.all(np.diff([f.seq for f in frames]) == 1)


def test_rev1_fifo_overflow_is_counted_and_the_timeline_keeps_the_gap():
    """A 60 ms stall at 952 Hz overflows the 32-slot FIFO: the samples lost are counted in the stream
    (``imu=K`` in the drop report) and the next frame's t_us carries the gap, so the host's timeline
    (t_us + k / rate) stays true."""
    host, frames, st0, st, history = _rev1_at_952(late=(300, 60_000), drops=True)
    assert st.overwritten > 0
    last = [f for f in host.of(p.FrameType.LOG) if fw.parse_drops(f.payload.decode())][-1]
    reported = fw.parse_drops(last.payload.decode())[2]
    # the shim's count of overwritten samples at the report's device time (status lines: every 100 ms,
    # so up to one ~60 ms stall apart); the sketch estimates from the time since the last drain
    at_report = [s.overwritten for s in history if s.t_us <= last.t_us][-1]
    assert reported == pytest.approx(at_report, rel=0.1, abs=40)
    # every frame's samples are at t_us + k/952; a gap between frames is the samples lost
    _, sizes = imu_samples(frames)
    t = np.array([f.t_us for f in frames], dtype=np.float64)
    missing = np.round((np.diff(t) / 1e6) * 952 - np.array(sizes[:-1])).astype(int)
    between = [s.overwritten for s in history if s.t_us <= frames[-1].t_us][-1] - \
        [s.overwritten for s in history if s.t_us <= frames[0].t_us][-1]
    assert missing.min() >= -1 and missing.sum() == pytest.approx(between, rel=0.1, abs=40)
