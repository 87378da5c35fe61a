"""The one interface every link to a board implements (serial, BLE, virtual).

Shaped like bleak: a small public API (:class:`Transport`) over per-link backends. All links are
asyncio-based because BLE is; the serial link runs its blocking reads in a worker thread. Whatever
the link, the host sees the same :class:`Message` objects carrying exact protocol payloads, so the
recorder and the dashboard never care how the bytes arrived.
"""
from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import Callable

from capture import protocol as p
from capture.protocol import Command, FrameType


@dataclass(frozen=True)
class Message:
    """One decoded unit from the board: a serial frame or a BLE notification."""

    type: FrameType
    seq: int  # u16 from the device, per frame type
    t_us: int  # u32 device time (first sample of an IMU batch)
    payload: bytes  # exactly the protocol payload (capture.protocol decoders read it)
    received: float = field(default_factory=time.monotonic)  # host clock on arrival


@dataclass
class LinkStats:
    """Link health. Gaps are counted, never interpolated."""

    frames: int = 0
    bytes: int = 0
    crc_errors: int = 0
    garbage_bytes: int = 0  # bytes skipped while resynchronising
    frames_lost: int = 0  # sum of sequence gaps
    disconnects: int = 0
    bad_payloads: int = 0  # messages whose payload did not decode (skipped, never delivered; protocol.check_payload)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


MessageCallback = Callable[[Message], None]
DisconnectCallback = Callable[[str], None]


class Transport(abc.ABC):
    """A link to one board.

    Usage::

        link = open_transport("/dev/ttyACM0")
        link.on_message(handle)          # called on the event loop thread, in arrival order
        info = await link.open()         # connects, returns the device's INFO key/values
        await link.send(Command.START)
        ...
        await link.close()
    """

    def __init__(self) -> None:
        self.stats = LinkStats()
        self.info: dict[str, str] = {}
        self._seq = SeqTracker()
        self._on_message: list[MessageCallback] = []
        self._on_disconnect: list[DisconnectCallback] = []

    # ------------------------------------------------------------------ public API
    def on_message(self, callback: MessageCallback) -> None:
        self._on_message.append(callback)

    def on_disconnect(self, callback: DisconnectCallback) -> None:
        """``callback(reason)`` when the link drops without close() (cable pulled, device lost)."""
        self._on_disconnect.append(callback)

    @abc.abstractmethod
    async def open(self) -> dict[str, str]:
        """Connect and return the device INFO (``capture.protocol.decode_info``)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect; safe to call twice."""

    @abc.abstractmethod
    async def send(self, cmd: Command, arg: int = 0) -> None:
        """Send a CONTROL command (start/stop/rate/info)."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool: ...

    async def __aenter__(self) -> "Transport":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ for backends
    def _received(self, msg: Message) -> bool:
        """What every link does with one message off the wire, so a new link cannot differ:
        count its sequence gap (it arrived, so its seq counts even if the payload is bad), check
        the payload (one that does not decode is counted and skipped, never delivered), take an
        INFO as the device's new INFO (:meth:`_info_received`), deliver. True if delivered."""
        self.stats.frames_lost += self._seq.gap(int(msg.type), msg.seq)
        try:
            p.check_payload(msg.type, msg.payload)
        except ValueError as e:
            self.stats.bad_payloads += 1
            if msg.type == FrameType.INFO:
                self._info_rejected(str(e))
            return False
        if msg.type == FrameType.INFO:
            self.info = p.decode_info(msg.payload)
            self._info_received(self.info)
        self._deliver(msg)
        return True

    def _info_received(self, info: dict[str, str]) -> None:
        """Hook: a link that waits for INFO while opening (serial) resolves its wait here."""
        return None

    def _info_rejected(self, why: str) -> None:
        """Hook: an INFO that failed validation (``decode_info``); a link waiting for INFO fails with it."""
        return None

    def _deliver(self, msg: Message) -> None:
        self.stats.frames += 1
        for cb in self._on_message:
            cb(msg)

    def _lost(self, reason: str) -> None:
        self.stats.disconnects += 1
        for cb in self._on_disconnect:
            cb(reason)


class SeqTracker:
    """Counts frames lost from u16 sequence numbers, per frame type."""

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    def gap(self, ftype: int, seq: int) -> int:
        """Frames missing before this one (0 when in order or first)."""
        last = self._last.get(ftype)
        self._last[ftype] = seq
        if last is None:
            return 0
        return (seq - last - 1) & 0xFFFF

    def reset(self) -> None:
        self._last.clear()


_U32 = 1 << 32


class DeviceClock:
    """u32 device time (``micros()``, wraps every 71.6 min) -> a monotonically increasing int.

    Call it with each message's ``t_us`` in arrival order; a message from just before a wrap
    that arrives just after it keeps its earlier epoch.
    """

    def __init__(self) -> None:
        self._epoch = 0
        self._last: int | None = None

    def __call__(self, t_us: int) -> int:
        if self._last is not None:
            if t_us < self._last and self._last - t_us > _U32 // 2:
                self._epoch += _U32
            elif t_us > self._last and t_us - self._last > _U32 // 2 and self._epoch:
                return self._epoch - _U32 + t_us  # a late packet from before the wrap
        self._last = t_us
        return self._epoch + t_us
