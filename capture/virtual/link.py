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
