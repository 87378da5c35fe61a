"""Plain-text IMU lines from sketches that are already on the board, as protocol IMU messages.

Two common sketches print one sample per line instead of this kit's binary frames:

* the Arduino TinyML tutorial's ``IMU_Capture.ino``: a header ``aX,aY,aZ,gX,gY,gZ`` then rows of
  six numbers in g and deg/s at 119 Hz (only while a gesture is being recorded);
* Edge Impulse ``data forwarder`` sketches: comma- or tab-separated numbers, 3 or 6 axes, one line
  per sample, acceleration in m/s^2 (gyroscope in deg/s, as the Nano 33 BLE libraries return it).

Neither says its rate or units, so they are detected: the rate from host arrival times over a
steady stretch of lines, snapped to a known IMU rate (USB delivers lines in bursts, so the raw
estimate wobbles by a few %), and the units from the acceleration magnitude, which is ~1 for a
board in g and ~9.8 in m/s^2 (gravity dominates even during most gestures; the median is used).
The rows become int16 counts with ``protocol.units_to_counts``, so the recorder sees exactly the
messages a board running the capture firmware would send, and a synthesized INFO.

Device time: these sketches send no timestamps, so sample ``k`` gets ``k / rate``; after a pause in
the flow (IMU_Capture sends nothing between gestures) the clock jumps to the host time of the
pause, so takes measured in device time still span real seconds.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from capture import protocol as p
from capture.boards import BOARDS
from capture.units import G
from capture.transport.base import Message

IMU_CAPTURE_HEADER = ("ax", "ay", "az", "gx", "gy", "gz")  # case-insensitive aX,aY,aZ,gX,gY,gZ
IMU_CAPTURE_RATE_HZ = BOARDS["nano33ble"].imu_rate_hz  # IMU_Capture.ino runs Arduino_LSM9DS1 at its default
# rates the common IMUs and sketches run at; a measured rate within RATE_SNAP of one is snapped to it
KNOWN_RATES_HZ = tuple(sorted(set(p.SUPPORTED_RATES_HZ) | {20, 52, 62.5, 104, 200, 208, 400, 416, 500}))
RATE_SNAP = 0.08
MIN_ROWS = 30  # rows of steady flow needed to measure the rate ...
MIN_SPAN_S = 0.5  # ... over at least this much host time
PAUSE_S = 0.25  # a longer silence ends a burst (IMU_Capture between gestures)
MAX_BATCH = 100
_SPLIT = re.compile(r"[,\t; ]+")


def snap_rate(measured: float) -> float:
    """The known rate within ``RATE_SNAP`` of ``measured``, else ``measured`` rounded to 1 Hz."""
    best = min(KNOWN_RATES_HZ, key=lambda r: abs(math.log(measured / r)))
    return float(best) if abs(measured / best - 1) <= RATE_SNAP else float(round(measured))


def looks_like_text(data: bytes) -> bool:
    """At least two complete lines of printable ASCII: a text sketch, not binary frames or noise."""
    if data.count(b"\n") < 2:
        return False
    printable = sum(1 for b in data if 0x20 <= b < 0x7F or b in (9, 10, 13))
    return printable >= 0.97 * len(data)


@dataclass
class _Burst:
    t_first: float = 0.0
    t_last: float = 0.0
    rows_after_first: int = 0
    chunks: int = 0


@dataclass
class TextLineReader:
    """Turns text lines into IMU :class:`Message` objects once rate, axes and units are known.

    ``rate_hz`` given: no measurement (the user said ``--rate``). Rows that arrive before the
    format is known are kept and released with the first messages, so nothing is lost.
    """

    rate_hz: float | None = None
    header: tuple[str, ...] | None = None
    channels: int | None = None
    accel_scale: float | None = None  # divide by this to get g (1 or G)
    skipped_lines: int = 0
    skipped_bytes: int = 0
    _partial: bytes = b""
    _pending: list[tuple[float, list[float]]] = field(default_factory=list)
    _burst: _Burst = field(default_factory=_Burst)
    _seq: int = 0
    _next_us: float = 0.0
    _t0: float | None = None
    _last_arrival: float | None = None

    # ------------------------------------------------------------------ parsing
    def _rows(self, data: bytes, now: float) -> list[list[float]]:
        text = self._partial + data
        lines = text.split(b"\n")
        self._partial = lines.pop()
        rows = []
        for raw in lines:
            line = raw.decode("ascii", errors="replace").strip()
            if not line:
                continue
            cells = [c for c in _SPLIT.split(line) if c]
            try:
                values = [float(c) for c in cells]
            except ValueError:
                names = tuple(c.lower() for c in cells)
                named = len(names) >= 3 and all(re.match(r"^[a-z_][a-z0-9_]*$", n) for n in names)
                if self.header is None and named and ("," in line or "\t" in line):
                    self.header = names
                else:
                    self.skipped_lines += 1
                    self.skipped_bytes += len(raw) + 1
                continue
            if len(values) >= 9:
                values = values[:6]  # 9-axis forwarders: the magnetometer is not used
            if len(values) not in (3, 6) or not all(math.isfinite(v) for v in values):
                self.skipped_lines += 1
                self.skipped_bytes += len(raw) + 1
                continue
            if self.channels is None:
                self.channels = len(values)
            if len(values) != self.channels:
                self.skipped_lines += 1
                self.skipped_bytes += len(raw) + 1
                continue
            rows.append(values)
        return rows

    def _measure(self, n_rows: int, now: float) -> None:
        b = self._burst
        if b.chunks == 0 or now - b.t_last > PAUSE_S:
            self._burst = _Burst(t_first=now, t_last=now, rows_after_first=0, chunks=1)
            return
        b.t_last = now
        b.rows_after_first += n_rows
        b.chunks += 1

    @property
    def measured_rate(self) -> float | None:
        b = self._burst
        span = b.t_last - b.t_first
        if b.rows_after_first >= MIN_ROWS and span >= MIN_SPAN_S:
            return b.rows_after_first / span
        return None

    @property
    def is_imu_capture(self) -> bool:
        return self.header == IMU_CAPTURE_HEADER

    @property
    def ready(self) -> bool:
        return self.rate_hz is not None and self.channels is not None and self.accel_scale is not None

    def _decide(self, fallback: bool = False) -> None:
        if self.rate_hz is None:
            m = self.measured_rate
            if m is not None:
                self.rate_hz = snap_rate(m)
            elif fallback and self.is_imu_capture:
                self.rate_hz = float(IMU_CAPTURE_RATE_HZ)
        if self.channels is None and fallback and self.is_imu_capture:
            self.channels = 6
        if self.accel_scale is None:
            if self.is_imu_capture:
                self.accel_scale = 1.0
            elif len(self._pending) >= 10:
                acc = np.asarray([r for _, r in self._pending])[:, :3]
                mag = float(np.median(np.linalg.norm(acc, axis=1)))
                # nearer (in ratio) to 9.8 than to 1: m/s^2; a board at rest reads |a| = 1 g
                self.accel_scale = G if mag > 0 and abs(math.log(mag / G)) < abs(math.log(mag)) else 1.0

    def finish_detection(self) -> None:
        """Open timed out before a measurement: use what the header alone tells (IMU_Capture)."""
        self._decide(fallback=True)

    # ------------------------------------------------------------------ output
    def feed(self, data: bytes, now: float) -> list[Message]:
        rows = self._rows(data, now)
        if rows:
            self._measure(len(rows), now)
            self._pending.extend((now, r) for r in rows)
        if not self.ready:
            self._decide()
            if not self.ready:
                return []
        return self._release()

    def _release(self) -> list[Message]:
        pending, self._pending = self._pending, []
        out: list[Message] = []
        assert self.rate_hz is not None and self.accel_scale is not None
        step_us = 1e6 / self.rate_hz
        i = 0
        while i < len(pending):
            now = pending[i][0]
            j = i
            while j < len(pending) and pending[j][0] == now and j - i < MAX_BATCH:
                j += 1
            batch = np.asarray([r for _, r in pending[i:j]], dtype=np.float64)
            batch[:, :3] /= self.accel_scale
            if self._t0 is None:
                self._t0 = now - (len(batch) - 1) * step_us / 1e6
            host_us = (now - self._t0) * 1e6 - (len(batch) - 1) * step_us
            if self._last_arrival is not None and now - self._last_arrival > PAUSE_S and host_us > self._next_us:
                self._next_us = host_us  # a pause: the device clock kept running while silent
            self._last_arrival = now
            counts = p.units_to_counts(batch)
            out.append(Message(p.FrameType.IMU, self._seq, int(round(self._next_us)) & 0xFFFFFFFF,
                               p.encode_imu(counts), received=now))
            self._seq = (self._seq + 1) & 0xFFFF
            self._next_us += len(batch) * step_us
            i = j
        return out

    def info(self) -> dict[str, object]:
        """The INFO a capture firmware would send, for this text sketch."""
        from capture.device_info import capture_info

        fmt = "imu-capture" if self.is_imu_capture else "data-forwarder"
        rate = self.rate_hz or 0
        info = capture_info(rate, self.channels or 3, mode="text", board="unknown", sensor="unknown",
                            fw=f"text:{fmt}")
        info["rate"] = f"{rate:g}"
        info["units"] = "g" if self.accel_scale == 1.0 else "m/s2"
        return info
