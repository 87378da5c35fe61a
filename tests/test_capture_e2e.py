"""End to end: virtual board on a pty -> `gesture capture` -> CSV takes equal to the replayed takes."""
from __future__ import annotations

import asyncio
import os
import threading
import time
import tty
from pathlib import Path

import numpy as np
import pytest

import gesture_cli
from capture import protocol as p
from capture.recorder import Recorder, RecordPlan
from capture.takes import read_takes
from capture.transport.serial import SerialTransport
from capture.virtual.link import Faults
from capture.virtual.serial_board import SerialBoard
from capture.virtual.sources import ReplaySource
from tests.conftest import DATA


def start_board(source, *, speed: float = 4.0, faults: Faults | None = None, make_source=None):
    board = SerialBoard(source, faults=faults, speed=speed, make_source=make_source)
    thread = board.start_thread()
    return board, thread


def stop_board(board: SerialBoard, thread: threading.Thread) -> None:
    board.stop()
    thread.join(5)


def record(port: str, data: Path, plan: RecordPlan, **link_options):
    """Open a SerialTransport, record with the Recorder, return (summary, link stats, info)."""
    async def go():
        link = SerialTransport(port, **link_options)
        await link.open()
        try:
            summary = await Recorder(link, data, plan, quiet=True).run()
        finally:
            await link.close()
        return summary, link.stats, link.info
    return asyncio.run(go())


def find_in(haystack: np.ndarray, needle: np.ndarray) -> int:
    """Index where ``needle`` rows appear contiguously in ``haystack`` (-1 if nowhere)."""
    n = len(needle)
    for k in range(len(haystack) - n + 1):
        if np.array_equal(haystack[k:k + n], needle):
            return k
    return -1


def test_trigger_capture_gives_back_the_replayed_takes(tmp_path, capsys):
    """Three wing takes at their own 119 Hz, 3 channels: every count comes back exactly."""
    probe = ReplaySource(DATA, rate_hz=None, channels=3, labels=["wing"], limit=3)
    seconds = max(t.duration_s for t in probe.takes) + 1.6
    source = ReplaySource(DATA, rate_hz=None, channels=3, labels=["wing"], limit=3, rest_s=seconds + 1.0)
    board, thread = start_board(source, speed=8.0)
    try:
        rc = gesture_cli.main(["capture", "--port", board.path, "--label", "wing", "--takes", "3", "--trigger",
                               "--threshold", "0.3", "--pre-trigger", "1.0", "--seconds", f"{seconds:.2f}",
                               "--data", str(tmp_path), "--subject", "tester", "--quiet"])
    finally:
        stop_board(board, thread)
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "takes saved    3" in out.out and "frames lost    0" in out.out and "CRC errors     0" in out.out
    takes, manifest = read_takes(tmp_path)
    assert [t.label for t in takes] == ["wing"] * 3
    assert len(source.segments) == 3
    for take, seg in zip(takes, source.segments):
        counts = p.units_to_counts(take.values)
        assert take.channels == ("ax", "ay", "az")
        assert find_in(counts, seg.counts) >= 0, f"{seg.path} not found in {take.path}"
        assert np.allclose(np.diff(take.t_ms), 1000 / 119, atol=0.001)  # device clock: 1/119 s apart (1 us steps)
        meta = manifest["takes"][f"wing/{take.path.name}"]
        assert meta["rate_hz"] == 119 and meta["frames_lost"] == 0 and meta["subject"] == "tester"


def test_fixed_length_takes_are_contiguous_device_time(tmp_path):
    """--seconds with no countdown: back-to-back takes of exactly seconds*rate samples, nothing dropped."""
    source = ReplaySource(DATA, rate_hz=119, channels=6, labels=["ring"], limit=4, rest_s=0.5)
    board, thread = start_board(source, speed=4.0)
    try:
        summary, stats, info = record(board.path, tmp_path, RecordPlan("ring", takes=3, seconds=1.0, countdown_s=0))
    finally:
        stop_board(board, thread)
    assert info["rate"] == "119" and info["ch"] == "ax,ay,az,gx,gy,gz"
    takes, _ = read_takes(tmp_path)
    assert [t.n for t in takes] == [119, 119, 119] and summary.samples == 357
    assert abs(summary.measured_rate_hz - 119) < 0.1
    assert stats.frames_lost == stats.crc_errors == stats.garbage_bytes == 0
    # the three takes are one uninterrupted piece of the stream the board sent
    stream = np.vstack([s for s, _ in source.stream()])  # regenerated: same seed, same samples
    joined = np.vstack([p.units_to_counts(t.values) for t in takes])
    assert find_in(stream, joined) >= 0


def test_set_rate_and_refused_rate(tmp_path, capsys):
    """--rate asks the board (SET_RATE + new INFO); an unsupported rate is refused with the LOG text."""
    make = lambda r: ReplaySource(DATA, rate_hz=r, channels=6, labels=["slope"], limit=2)  # noqa: E731
    board, thread = start_board(make(119), make_source=make)
    try:
        rc = gesture_cli.main(["capture", "--port", board.path, "--label", "slope", "--takes", "1", "--seconds", "0.5",
                               "--countdown", "0", "--rate", "50", "--data", str(tmp_path), "--quiet"])
        assert rc == 0, capsys.readouterr().err
        rc = gesture_cli.main(["capture", "--port", board.path, "--label", "slope", "--takes", "1", "--seconds", "0.5",
                               "--countdown", "0", "--rate", "120", "--data", str(tmp_path), "--quiet"])
    finally:
        stop_board(board, thread)
    err = capsys.readouterr().err
    assert rc == 2 and "error: the board refused --rate 120: error: rate 120 Hz not supported" in err
    takes, manifest = read_takes(tmp_path)
    assert len(takes) == 1 and takes[0].n == 25 and takes[0].meta["rate_hz"] == 50
    assert (p.Command.SET_RATE, 50) in board.commands and (p.Command.SET_RATE, 120) in board.commands


def test_text_sketch_on_a_pty_is_captured_in_g_and_dps(tmp_path):
    """A pty printing IMU_Capture.ino lines at 119 Hz: rate detected, values kept exactly."""
    master, slave = os.openpty()
    tty.setraw(slave)
    rng = np.random.default_rng(5)
    values = np.round(np.hstack([rng.normal(0, 0.5, (2000, 3)), rng.normal(0, 100, (2000, 3))]), 3)
    values[:, 2] += 1.0
    stop = threading.Event()

    def host_opened() -> bool:
        """Another fd of this process now refers to the slave: the host opened the port."""
        name = os.ttyname(slave)
        fds = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                fds.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                pass
        return fds.count(name) >= 2

    def writer():
        # IMU_Capture.ino does `while (!Serial);` before printing its header: it prints it once the
        # host has opened the port (the host drops bytes queued before it listened)
        deadline = time.monotonic() + 10
        while not host_opened() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # past the host's reset_input_buffer() right after open
        os.write(master, b"aX,aY,aZ,gX,gY,gZ\r\n")
        t0 = time.monotonic()
        for k, row in enumerate(values):
            if stop.is_set():
                return
            delay = t0 + k / 119 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            os.write(master, (",".join(f"{v:.3f}" for v in row) + "\r\n").encode())

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    try:
        summary, stats, info = record(os.ttyname(slave), tmp_path, RecordPlan("flex", takes=2, seconds=1.0, countdown_s=0))
    finally:
        stop.set()
        th.join(5)
        os.close(master)
        os.close(slave)
    assert info["mode"] == "text" and info["rate"] == "119" and info["units"] == "g" and info["fw"] == "text:imu-capture"
    takes, _ = read_takes(tmp_path)
    assert [t.n for t in takes] == [119, 119] and takes[0].channels[3:] == ("gx", "gy", "gz")
    joined = np.vstack([t.values for t in takes])
    k = find_in(p.units_to_counts(values), p.units_to_counts(joined))
    assert k >= 0
    err = np.abs(values[k:k + len(joined)] - joined)  # int16 quantization: half a count (+ CSV rounding)
    assert err[:, :3].max() <= 0.5 / p.ACCEL_LSB_PER_G + 1e-5 and err[:, 3:].max() <= 0.5 / p.GYRO_LSB_PER_DPS + 1e-3


def test_missing_port_is_a_clear_error(tmp_path, capsys):
    rc = gesture_cli.main(["capture", "--port", "/dev/ttyGESTURE_NOPE", "--label", "x", "--takes", "1",
                           "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "/dev/ttyGESTURE_NOPE not found" in err and "gesture devices" in err
    assert "Traceback" not in err


def test_silent_port_names_the_port(tmp_path, capsys):
    """A port where nothing answers (a board running some other sketch) times out with a message."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        async def go():
            await SerialTransport(os.ttyname(slave), info_timeout=1.0).open()
        with pytest.raises(Exception) as e:
            asyncio.run(go())
    finally:
        os.close(master)
        os.close(slave)
    assert "no INFO from" in str(e.value) and "received nothing" in str(e.value)


def test_seconds_too_short_for_one_sample_is_refused_before_recording(tmp_path, capsys):
    """`--seconds 0.001` at 119 Hz saved a 0-sample take that broke every later `data`/`train`."""
    rc = gesture_cli.main(["capture", "--url", "virtual://idle?speed=0", "--label", "rest", "--takes", "1",
                           "--seconds", "0.001", "--countdown", "0", "--data", str(tmp_path / "ds"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--seconds 0.001: a take at the board's 119 Hz would hold 0 sample(s); expected at least 2" in err
    assert "Traceback" not in err and not list(tmp_path.rglob("*.csv"))
