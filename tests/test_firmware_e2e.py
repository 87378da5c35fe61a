"""End to end against `gesture simulate --firmware` (the host-compiled capture sketch), both boards:
`gesture capture` records takes over serial and over BLE, and the dashboard's link thread connects."""
from __future__ import annotations

import subprocess
import sys

import pytest

from capture.takes import read_manifest, read_takes
from tests.conftest import DATA, ROOT, need_tool, wait_until

RATE = {"nano33ble": 119, "nano33ble_rev2": 100}


class Simulator:
    """`gesture simulate --firmware ...` as a subprocess; ``target`` is the first stdout line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "gesture_cli", "simulate", "--firmware", "--loop",
                                      "--data", str(DATA), *args], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.target = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert self.target, self.proc.stderr.read()  # type: ignore[union-attr]

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=20)
        return err


@pytest.fixture(autouse=True)
def _gxx():
    need_tool("g++")


def capture(tmp_path, *link: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gesture_cli", "capture", *link, "--label", "wave", "--takes", "2",
                           "--seconds", "1", "--countdown", "0.1", "--data", str(tmp_path / "d"), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("board", RATE)
@pytest.mark.parametrize("link", ["serial", "ble"])
def test_gesture_capture_against_the_firmware(tmp_path, board, link):
    sim = Simulator("--board", board, f"--{link}", "--speed", "2")
    try:
        r = capture(tmp_path, "--port" if link == "serial" else "--url", sim.target)
    finally:
        err = sim.stop()
    assert r.returncode == 0, r.stderr + r.stdout
    takes, _ = read_takes(tmp_path / "d")
    assert len(takes) == 2 and all(t.rate_hz == pytest.approx(RATE[board], rel=0.01) for t in takes)
    assert all(len(t.values) == pytest.approx(RATE[board], abs=2) for t in takes)  # 1 s each
    sources = {e["source"] for e in read_manifest(tmp_path / "d")["takes"].values()}
    assert sources == {f"device:{board}/{'BMI270' if board.endswith('rev2') else 'LSM9DS1'}/1.0.0"}
    assert "firmware board" in err and "stopped" in err


@pytest.mark.parametrize("board", RATE)
def test_dashboard_link_connects_to_the_firmware(board):
    from dashboard.link import LinkState, LinkThread

    sim = Simulator("--board", board, "--ble", "--speed", "2")
    lt = LinkThread()
    try:
        lt.connect(sim.target)
        wait_until(lambda: lt.status.state is LinkState.CONNECTED, timeout=20, what="dashboard connected")
        assert lt.status.info["board"] == board and lt.status.info["rate"] == str(RATE[board])
        wait_until(lambda: lt.buffers.snapshot().raw_samples > RATE[board], timeout=20, what="raw IMU samples")
        raw = lt.buffers.raw(1.0)
        assert raw.rate_hz == RATE[board] and raw.channels == ("ax", "ay", "az", "gx", "gy", "gz")
    finally:
        lt.stop()
        sim.stop()


def test_fault_injection_wraps_the_firmware_serial_output(tmp_path):
    sim = Simulator("--board", "nano33ble", "--serial", "--speed", "2", "--loss", "0.05", "--garbage", "0.05",
                    "--corrupt", "0.05", "--seed", "3")
    try:
        r = capture(tmp_path, "--port", sim.target)
    finally:
        sim.stop()
    assert r.returncode == 0, r.stderr + r.stdout
    figures = dict(line.rsplit(None, 1) for line in r.stdout.splitlines() if line[-1:].isdigit() and "  " in line)
    assert int(figures["frames lost"]) > 0 and int(figures["CRC errors"]) > 0 and int(figures["garbage bytes"]) > 0
