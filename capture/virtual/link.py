"""How a virtual board's events reach the host: pacing and injected faults.

Shared by the serial pty board (``capture.virtual.serial_board``) and the BLE backend
(``capture.virtual.ble``), so "10 % loss" means the same thing on both links.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    """Damage to inject into a virtual link (all off by default).

    ``loss``: probability that a frame/notification is dropped (its sequence number is still used,
    so the host sees a gap, exactly like a frame lost on a real link). ``garbage``: probability that
    random bytes are inserted before a serial frame (noise on the line; BLE has no equivalent).
    ``corrupt``: probability that one byte of a serial frame is flipped (a CRC error).
    ``disconnect_after_s``: the link drops after this many seconds of device time (cable pulled,
    board out of range). ``seed`` makes a run repeatable.
    """

    loss: float = 0.0
    garbage: float = 0.0
    corrupt: float = 0.0
    disconnect_after_s: float | None = None
    seed: int = 0


class FaultInjector:
    """Applies :class:`Faults` to encoded serial frames, repeatably (one RNG seeded by ``seed``).

    Garbage never contains the first sync byte, so every injected fault is counted exactly once by
    the host (a random ``A5 5A`` would start a false frame and add an extra CRC error); the decoder's
    handling of sync-like noise is tested on its own. Corruption flips a payload (or CRC) byte, never
    the header, so it always shows up as a CRC error rather than as skipped garbage.
    """

    def __init__(self, faults: Faults) -> None:
        import numpy as np

        self.faults = faults
        self.rng = np.random.default_rng(faults.seed)
        self.dropped = 0
        self.garbage_bytes = 0
        self.corrupted = 0
        self.corrupted_bytes = 0  # size of the corrupted frames (the host skips them as garbage)

    def expired(self, device_s: float) -> bool:
        """True once the link should drop (``disconnect_after_s`` of device time have passed)."""
        limit = self.faults.disconnect_after_s
        return limit is not None and device_s >= limit

    def drop(self) -> bool:
        """Decide whether the next frame/notification is lost (its sequence number stays used)."""
        if self.faults.loss and self.rng.random() < self.faults.loss:
            self.dropped += 1
            return True
        return False

    def damage(self, frame: bytes) -> bytes:
        """A serial frame with garbage in front and/or one flipped byte, per the fault rates."""
        out = frame
        if self.faults.corrupt and self.rng.random() < self.faults.corrupt:
            from capture.protocol import HEADER_SIZE

            b = bytearray(out)
            k = int(self.rng.integers(HEADER_SIZE, len(b)))
            b[k] ^= int(self.rng.integers(1, 256))
            out = bytes(b)
            self.corrupted += 1
            self.corrupted_bytes += len(b)
        if self.faults.garbage and self.rng.random() < self.faults.garbage:
            n = int(self.rng.integers(1, 33))
            junk = self.rng.integers(0, 255, n, dtype="uint8")  # 0..254: never 0xA5 after the shift
            junk[junk >= 0xA5] += 1
            out = junk.tobytes() + out
            self.garbage_bytes += n
        return out


class Pacer:
    """Maps device time to host time: an event at ``t_us`` is due ``t_us / speed`` after start.

    ``speed`` 1 is real time, 2 twice as fast (tests), 0 unpaced (as fast as the host reads: the
    benchmark's ceiling run).
    """

    def __init__(self, speed: float = 1.0) -> None:
        import time

        self.speed = speed
        self._clock = time.monotonic
        self.t0 = self._clock()

    def delay(self, t_us: int) -> float:
        """Seconds until the event at device time ``t_us`` is due (<= 0: now)."""
        if self.speed <= 0:
            return 0.0
        return self.t0 + t_us / 1e6 / self.speed - self._clock()
