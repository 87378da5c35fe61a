"""Reliability: loss, noise, CRC damage, unplugging and kill -9, each through a real pty."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import numpy as np

import gesture_cli
from capture.recorder import Recorder, RecordPlan
from capture.takes import read_manifest, read_takes
from capture.virtual.link import FaultInjector, Faults
from capture.transport.serial import SerialTransport
from capture.virtual.sources import IdleSource
from tests.conftest import ROOT, wait_until
from tests.test_capture_e2e import record, start_board, stop_board


def test_lost_frames_are_counted_never_interpolated(tmp_path):
    """10 % loss at 100 Hz (one sample per frame): each take is short by exactly its lost frames."""
    board, thread = start_board(IdleSource(rate_hz=100, channels=6), speed=2.0, faults=Faults(loss=0.1, seed=4))
    try:
        summary, stats, _ = record(board.path, tmp_path, RecordPlan("idle", takes=3, seconds=1.0, countdown_s=0))
    finally:
        stop_board(board, thread)
    takes, manifest = read_takes(tmp_path)
    assert len(takes) == 3
    total_lost = 0
    for t in takes:
        lost = manifest["takes"][f"idle/{t.path.name}"]["frames_lost"]
        steps = np.rint(np.diff(t.t_ms) / 10.0).astype(int)  # 10 ms per sample at 100 Hz
        missing_inside = int((steps - 1).sum())
        assert missing_inside <= lost <= missing_inside + 1  # a gap right at the take's start has no gap inside it
        assert t.n + missing_inside == 100 - (t.t_ms[-1] < 985) * 1  # no invented samples, ever
        total_lost += lost
    assert total_lost > 0 and stats.frames_lost >= total_lost
    assert stats.frames_lost <= board.injector.dropped
    assert summary.frames_lost == stats.frames_lost and stats.crc_errors == 0


def test_noise_and_crc_errors_are_counted_and_the_stream_resyncs(tmp_path):
    board, thread = start_board(IdleSource(rate_hz=238, channels=6), speed=2.0)
    injector = FaultInjector(Faults(garbage=0.2, corrupt=0.1, seed=7))
    try:
        def damage_from_now(_msg=None):
            board.injector = injector  # damage starts once the host listens, so every fault is seen
        summary_stats = {}

        async def go():
            link = SerialTransport(board.path)
            await link.open()
            damage_from_now()
            rec = Recorder(link, tmp_path, RecordPlan("idle", takes=2, seconds=1.0, countdown_s=0), quiet=True)
            summary = await rec.run()
            board.injector = FaultInjector(Faults())  # no more damage; let the damaged bytes arrive
            await asyncio.sleep(0.3)
            summary_stats.update(link.stats.as_dict())
            await link.close()
            return summary
        asyncio.run(go())
    finally:
        stop_board(board, thread)
    assert injector.corrupted > 0 and injector.garbage_bytes > 0
    assert summary_stats["crc_errors"] == injector.corrupted
    assert summary_stats["garbage_bytes"] == injector.garbage_bytes + injector.corrupted_bytes
    assert summary_stats["frames_lost"] == injector.corrupted  # a corrupt frame is a lost frame
    takes, _ = read_takes(tmp_path)
    assert len(takes) == 2 and all(t.n > 150 for t in takes)


def test_unplug_mid_take_keeps_saved_takes_and_reports_the_partial(tmp_path, capsys):
    board, thread = start_board(IdleSource(rate_hz=100, channels=6), speed=2.0,
                                faults=Faults(disconnect_after_s=3.3))
    try:
        rc = gesture_cli.main(["capture", "--port", board.path, "--label", "idle", "--takes", "10", "--seconds", "1",
                               "--countdown", "0", "--data", str(tmp_path), "--quiet"])
    finally:
        stop_board(board, thread)
    out = capsys.readouterr()
    assert rc == 2
    assert "interrupted after" in out.err and ": not saved" in out.err
    assert f"serial port {board.path} disconnected" in out.err and "Traceback" not in out.err
    takes, _ = read_takes(tmp_path)
    assert 1 <= len(takes) <= 3 and all(t.n == 100 for t in takes)
    assert f"of 10 takes saved in {tmp_path}" in out.err and f"takes saved    {len(takes)}" in out.out


def test_kill_9_leaves_no_half_written_file(tmp_path):
    sim = subprocess.Popen([sys.executable, "-m", "gesture_cli", "simulate", "--serial", "--idle", "--rate", "1000"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    cap = None
    try:
        port = sim.stdout.readline().strip()
        assert port.startswith("/dev/")
        data = tmp_path / "data"
        cap = subprocess.Popen([sys.executable, "-m", "gesture_cli", "capture", "--port", port, "--label", "idle",
                                "--takes", "1000", "--seconds", "0.2", "--countdown", "0", "--data", str(data),
                                "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: len(list((data / "idle").glob("take_*.csv"))) >= 4 if (data / "idle").is_dir() else False, 30,
                   "four saved takes")
        time.sleep(0.13)  # somewhere inside a take or a write
        cap.send_signal(signal.SIGKILL)
        cap.wait(10)
    finally:
        for proc in (cap, sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
    takes, _ = read_takes(data)  # every visible CSV parses (a half-written file would not)
    assert len(takes) >= 4 and all(t.n == 200 for t in takes)
    read_manifest(data)  # valid JSON
    visible = [f for f in os.listdir(data / "idle") if not f.startswith(".")]
    assert all(f.endswith(".csv") for f in visible)


def test_crc_valid_frame_with_a_malformed_payload_is_counted_and_skipped():
    """The CRC only proves the bytes arrived as sent: a payload that does not decode is not delivered."""
    import tty
    from capture import protocol as p

    master, slave = os.openpty()
    tty.setraw(slave)
    good = np.arange(12, dtype=np.int16).reshape(2, 6)
    bad_payload = p.encode_imu(good)[:-2]  # says 2 samples, holds 1.5

    async def go():
        link = SerialTransport(os.ttyname(slave), info_timeout=5)
        got: list = []
        link.on_message(got.append)

        async def board():
            await asyncio.sleep(0.3)  # after the host opened the port and asked for INFO
            os.write(master, p.encode_frame(p.FrameType.INFO, 0, 0, p.encode_info({"proto": 1, "mode": "capture"})))
            await asyncio.sleep(0.1)
            os.write(master, p.encode_frame(p.FrameType.IMU, 0, 0, bad_payload)
                     + p.encode_frame(p.FrameType.IMU, 1, 100, p.encode_imu(good)))

        task = asyncio.create_task(board())
        await link.open()
        await task
        await asyncio.to_thread(wait_until, lambda: any(m.type == p.FrameType.IMU for m in got), 5, "the good frame")
        await link.close()
        return link, got

    try:
        link, got = asyncio.run(go())
    finally:
        os.close(master)
        os.close(slave)
    imu = [m for m in got if m.type == p.FrameType.IMU]
    assert [m.seq for m in imu] == [1] and np.array_equal(p.decode_imu(imu[0].payload), good)
    assert link.stats.bad_payloads == 1 and link.stats.crc_errors == 0 and link.stats.frames_lost == 0
