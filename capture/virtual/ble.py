"""The virtual board's GATT server, seen from the host through bleak's public ``backend=`` hook.

CI machines have no Bluetooth in the kernel, so instead of faking the *host* side we fake the
*radio*: :class:`VirtualBleBackend` is a ``bleak.backends.client.BaseBleakClient`` that a real
``bleak.BleakClient`` drives exactly as it drives BlueZ or CoreBluetooth. Everything above it
(``BleakClient``, :class:`capture.transport.ble.BleTransport`, the recorder, the dashboard) is the
code that runs against a real board.

What the board does, and therefore what this class does:

* one custom service (``SERVICE_UUID``) with an INFO characteristic (read: ``encode_info``), a
  CONTROL characteristic (write: ``encode_control``), an IMU characteristic (notify) and, when
  the source is the classifier firmware, a PREDICTION characteristic (notify);
* IMU notifications carry as many samples as fit the negotiated MTU
  (``ble_samples_per_notification``), so the source's serial-sized batches are re-batched here;
* every notification is ``ble_notification(seq, t_us, payload)`` with a per-characteristic u16
  ``seq`` that is consumed even when the notification is lost (that is how the host counts gaps);
* a classifier source with a ``push_target`` (``capture.virtual.push_target``: the push-ready
  sketch's transfer service) adds PUSH_CONTROL (write), PUSH_DATA (write without response) and
  PUSH_STATUS (read, notify), so ``gesture push`` runs against it; its erase steps run one per
  event-loop turn like the sketch's ``loop()``, and the target outlives a connection (resume);
* events are paced in real time by their device time (``speed`` > 1 plays faster, 0 as fast as
  possible), STOP/START pause and resume sending (the board's clock keeps running, like
  ``micros()`` on the board, so events while stopped are not sent), and :class:`Faults` injects
  loss and a disconnect.

bleak instantiates the backend class itself (``backend(address, disconnected_callback=...,
services=..., timeout=..., **kwargs)``), so :func:`virtual_backend` binds a source to a subclass.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Iterator

import numpy as np
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode

from capture import protocol as p
from capture.virtual.link import FaultInjector, Faults, Pacer
from capture.virtual.sources import Event, EventSource

log = logging.getLogger(__name__)

DEFAULT_MTU = p.BLE_NOTIFY_MTU  # what the sketches size notifications for (see capture/protocol.py)
MIN_MTU = 23  # the ATT default every BLE host supports
YIELD_EVERY = 64  # at speed=0, let other tasks run after this many events


def source_frame_types(source: EventSource) -> tuple[p.FrameType, ...]:
    """Which notify characteristics the board exposes for ``source``.

    A capture board streams IMU only; the classifier board streams PREDICTION and, when built with
    raw IMU (the dashboard's signal plot), IMU too. A source may say so with ``frame_types``.
    """
    declared = getattr(source, "frame_types", None)
    if declared is not None:
        return tuple(p.FrameType(t) for t in declared)
    if str(source.info().get("mode", "capture")) == "classifier":
        raw = bool(getattr(source, "raw_imu", True))
        return (p.FrameType.IMU, p.FrameType.PREDICTION, p.FrameType.EVENT) if raw else \
            (p.FrameType.PREDICTION, p.FrameType.EVENT)
    return (p.FrameType.IMU,)


class VirtualBleBackend(BaseBleakClient):
    """A virtual gesture-kit board behind bleak's backend interface (see the module docstring).

    Use :func:`virtual_backend` to get a subclass bound to a source; the class attributes below
    are its configuration, overridable per instance through ``BleakClient(..., source=...)``
    keyword arguments (bleak forwards unknown keyword arguments to the backend).
    """

    source: EventSource | None = None
    faults: Faults | None = None
    mtu: int = DEFAULT_MTU
    speed: float = 1.0

    def __init__(self, address_or_ble_device: Any, *, disconnected_callback: Callable[[], None] | None = None,
                 timeout: float = 10.0, source: EventSource | None = None, faults: Faults | None = None,
                 mtu: int | None = None, speed: float | None = None, **kwargs: Any) -> None:
        kwargs.pop("services", None)  # service filter: the board has one service anyway
        kwargs.pop("bluez", None)
        kwargs.pop("winrt", None)
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self.source = source if source is not None else type(self).source
        if self.source is None:
            raise BleakError("VirtualBleBackend needs an event source (use virtual_backend(source))")
        self.faults = faults if faults is not None else (type(self).faults or Faults())
        self.mtu = int(mtu if mtu is not None else type(self).mtu)
        if not MIN_MTU <= self.mtu <= 517:
            raise ValueError(f"ATT MTU {self.mtu} outside {MIN_MTU}..517")
        self.speed = float(speed if speed is not None else type(self).speed)
        self._connected = False
        self._streaming = True  # the capture sketch streams from boot until told STOP
        self._info: dict[str, object] = dict(self.source.info())
        self._callbacks: dict[p.FrameType, NotifyCallback] = {}
        self._seq: dict[p.FrameType, int] = {}
        self._pump: asyncio.Task[None] | None = None
        self._inject = FaultInjector(self.faults)  # the same loss/disconnect rules as the serial board
        self._by_uuid: dict[str, p.FrameType | None] = {}
        self.sent: dict[p.FrameType, int] = {}  # notifications handed to the host, per type
        self.dropped: dict[p.FrameType, int] = {}  # notifications lost to Faults.loss, per type
        self.dropped_seqs: dict[p.FrameType, list[int]] = {}  # and their sequence numbers
        self._rate_changed = False
        self._push = push_target(self.source)
        self._push_loop: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ connection
    @property
    def name(self) -> str:
        return p.BLE_LOCAL_NAME

    @property
    def mtu_size(self) -> int:
        return self.mtu

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        self.services = self._gatt()
        self._connected = True

    async def disconnect(self) -> None:
        """Host-initiated disconnect: no disconnected callback (bleak calls it only when unsolicited)."""
        self._connected = False
        self._unsubscribe_push()
        await self._stop_pump()

    async def pair(self, *args: Any, **kwargs: Any) -> None:  # the sketch needs no pairing
        return None

    async def unpair(self) -> None:
        return None

    def _gatt(self) -> BleakGATTServiceCollection:
        """The board's GATT table: handles as ArduinoBLE would number them (service, then chars)."""
        coll = BleakGATTServiceCollection()
        service = BleakGATTService(None, 0x0010, p.SERVICE_UUID)
        coll.add_service(service)
        chars: list[tuple[str, list[str], p.FrameType | None]] = [
            (p.INFO_CHAR_UUID, ["read"], None),
            (p.CONTROL_CHAR_UUID, ["write"], None),
        ]
        types = source_frame_types(self.source)  # type: ignore[arg-type]
        if p.FrameType.IMU in types:
            chars.append((p.IMU_CHAR_UUID, ["notify"], p.FrameType.IMU))
        if p.FrameType.PREDICTION in types:
            chars.append((p.PREDICTION_CHAR_UUID, ["notify"], p.FrameType.PREDICTION))
        if p.FrameType.EVENT in types:
            chars.append((p.EVENT_CHAR_UUID, ["notify"], p.FrameType.EVENT))
        if self._push is not None:
            chars += [(p.PUSH_CONTROL_CHAR_UUID, ["write"], None),
                      (p.PUSH_DATA_CHAR_UUID, ["write-without-response"], None),
                      (p.PUSH_STATUS_CHAR_UUID, ["read", "notify"], None)]
        handle = service.handle
        for uuid, props, ftype in chars:
            handle += 2  # declaration + value handle, like a real ATT table
            coll.add_characteristic(BleakGATTCharacteristic(
                None, handle, uuid, props, lambda: self.mtu - p.ATT_OVERHEAD, service))  # type: ignore[arg-type]
            self._by_uuid[uuid] = ftype
        return coll

    def _require_connected(self) -> None:
        if not self._connected:
            raise BleakError("Not connected")

    # ------------------------------------------------------------------ GATT I/O
    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False,
                             **kwargs: Any) -> bytearray:
        self._require_connected()
        if characteristic.uuid == p.PUSH_STATUS_CHAR_UUID and self._push is not None:
            return bytearray(p.encode_push_status(self._push.status))
        if characteristic.uuid != p.INFO_CHAR_UUID:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.READ_NOT_PERMITTED)
        # what the source says now (a pushed model changes labels, model, slot), at the rate set here
        return bytearray(p.encode_info({**self.source.info(), "rate": self._info["rate"]}))  # type: ignore[union-attr]

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any, response: bool) -> None:
        self._require_connected()
        if self._push is not None and characteristic.uuid in (p.PUSH_CONTROL_CHAR_UUID, p.PUSH_DATA_CHAR_UUID):
            self._push_write(characteristic.uuid, bytes(data), response)
            return
        if characteristic.uuid != p.CONTROL_CHAR_UUID:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED)
        try:
            cmd, arg = p.decode_control(bytes(data))
        except ValueError as e:  # wrong length or unknown command: the sketch rejects the write
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.VALUE_NOT_ALLOWED) from e
        if cmd == p.Command.STOP:
            self._streaming = False
        elif cmd == p.Command.START:
            self._streaming = True
        elif cmd == p.Command.SET_RATE:
            self._set_rate(arg)
        # Command.INFO: over BLE the INFO characteristic is always readable; nothing to send.

    def _push_write(self, uuid: str, data: bytes, response: bool) -> None:
        """PUSH_CONTROL (with response) or PUSH_DATA (without), through the link's faults."""
        target = self._push
        assert target is not None
        if uuid == p.PUSH_CONTROL_CHAR_UUID:
            if not response:
                raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.REQUEST_NOT_SUPPORTED)
            target.control(data)
            if self._push_loop is None or self._push_loop.done():
                self._push_loop = asyncio.get_running_loop().create_task(self._board_loop(target), name="virtual-push")
            return
        if response:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.REQUEST_NOT_SUPPORTED)
        write = target.faults.data(data)
        if write is not None:
            target.data(write)
        if target.faults.disconnect_now(target.status.offset):
            self._drop_link()

    @staticmethod
    async def _board_loop(target: Any) -> None:
        """The sketch's ``loop()`` for the transfer service: one sector erased per turn."""
        while target.step():
            await asyncio.sleep(0)

    def _unsubscribe_push(self) -> None:
        if self._push is not None:
            self._push.notify = None

    def _set_rate(self, rate: int) -> None:
        """Change the IMU rate, as the sketch reconfigures the IMU's output data rate.

        Only sources that can resample (replay, idle: a ``rate_hz`` attribute) accept a new rate; the
        classifier board runs at the rate its model was trained at and rejects any other.
        """
        current = int(float(self._info.get("rate", 0)))
        if rate == current:
            return
        if rate not in p.SUPPORTED_RATES_HZ or self._info.get("mode") == "classifier" \
                or not hasattr(self.source, "rate_hz"):
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.VALUE_NOT_ALLOWED)
        self.source.rate_hz = float(rate)  # type: ignore[union-attr]
        self._info["rate"] = rate
        self._rate_changed = True

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False,
                                   **kwargs: Any) -> bytearray:
        raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.ATTRIBUTE_NOT_FOUND)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.ATTRIBUTE_NOT_FOUND)

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback,
                           **kwargs: Any) -> None:
        self._require_connected()
        if characteristic.uuid == p.PUSH_STATUS_CHAR_UUID and self._push is not None:
            loop = asyncio.get_running_loop()
            # delivered on the loop after the write that caused it, as a radio would
            self._push.notify = lambda data: loop.call_soon(callback, bytearray(data))
            return
        ftype = self._by_uuid.get(characteristic.uuid)
        if ftype is None:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.REQUEST_NOT_SUPPORTED)
        self._callbacks[ftype] = callback
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run(), name="virtual-ble-board")

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        if characteristic.uuid == p.PUSH_STATUS_CHAR_UUID:
            self._unsubscribe_push()
            return
        ftype = self._by_uuid.get(characteristic.uuid)
        if ftype is not None:
            self._callbacks.pop(ftype, None)

    async def _stop_pump(self) -> None:
        task, self._pump = self._pump, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    # ------------------------------------------------------------------ the board's main loop
    def _notifications(self) -> Iterator[Event]:
        """The source's events as the BLE sketch sends them: IMU re-batched to the MTU.

        ``t_us`` of a batch is the device time of its first sample, and the batch is yielded at the
        device time of its last sample (when the sketch can send it). A SET_RATE restarts the
        source at the new rate with the device clock continuing.
        """
        offset = 0  # device-time offset after a rate change
        while True:
            rate = float(self._info.get("rate", p.DEFAULT_RATE_HZ))
            pending: list[np.ndarray] = []
            n_pending = 0
            t_first = 0
            last_t = offset
            for t_us, ftype, payload in self.source.events():  # type: ignore[union-attr]
                t_us += offset
                if ftype == p.FrameType.IMU:
                    block = p.decode_imu(payload)
                    per = p.ble_samples_per_notification(self.mtu, block.shape[1])
                    for k in range(len(block)):
                        t_k = t_us + int(round(k * 1e6 / rate))
                        if not n_pending:
                            t_first = t_k
                        pending.append(block[k:k + 1])
                        n_pending += 1
                        last_t = t_k
                        if n_pending == per:
                            yield t_k, p.FrameType.IMU, _imu_batch(pending, t_first)
                            pending, n_pending = [], 0
                else:
                    last_t = t_us
                    yield t_us, ftype, (t_us, payload)
                if self._rate_changed:
                    break
            if n_pending:  # a finite source ended (or the rate changed): send what is left
                yield last_t, p.FrameType.IMU, _imu_batch(pending, t_first)
            if not self._rate_changed:
                return
            self._rate_changed = False
            offset = last_t + int(round(1e6 / rate))

    async def _run(self) -> None:
        try:
            await self._serve()
        except asyncio.CancelledError:
            raise
        except Exception:  # the source failed (bad model, unreadable take): like a board crash
            log.exception("virtual board stopped")
            if self._connected:
                self._drop_link()

    async def _serve(self) -> None:
        pacer: Pacer | None = None
        t0_dev = 0
        n = 0
        for due_us, ftype, (t_us, payload) in self._notifications():
            if pacer is None:  # device time of the first sample <-> now
                pacer, t0_dev = Pacer(self.speed), t_us
            elapsed_s = (due_us - t0_dev) / 1e6
            delay = pacer.delay(due_us - t0_dev)
            n += 1
            if delay > 0:
                await asyncio.sleep(delay)
            elif n % YIELD_EVERY == 0:  # behind schedule or unpaced: still let the host run
                await asyncio.sleep(0)
            if not self._connected:
                return
            if self._inject.expired(elapsed_s):
                self._drop_link()
                return
            if not self._streaming:
                continue
            seq = self._seq.get(ftype, 0)
            self._seq[ftype] = (seq + 1) & 0xFFFF
            callback = self._callbacks.get(ftype)
            if callback is None:
                continue  # the host did not subscribe: the sketch's notify goes nowhere
            if self._inject.drop():
                self.dropped[ftype] = self.dropped.get(ftype, 0) + 1
                self.dropped_seqs.setdefault(ftype, []).append(seq)
                continue
            self.sent[ftype] = self.sent.get(ftype, 0) + 1
            try:
                callback(bytearray(p.ble_notification(seq, t_us, payload)))
            except Exception:  # a host callback bug must not kill the radio (bleak logs it too)
                log.exception("notification callback failed")

    def _drop_link(self) -> None:
        """Unsolicited disconnect (board out of range, battery pulled): bleak's callback fires."""
        self._connected = False
        self._unsubscribe_push()
        self._pump = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()


def push_target(source: Any) -> Any:
    """The source's transfer service (``capture.virtual.push_target.PushTarget``), None without one."""
    return getattr(source, "push_target", None)


def _imu_batch(rows: list[np.ndarray], t_first: int) -> tuple[int, bytes]:
    return t_first, p.encode_imu(np.vstack(rows))


def virtual_backend(source: EventSource, faults: Faults | None = None, mtu: int = DEFAULT_MTU,
                    speed: float = 1.0) -> type[VirtualBleBackend]:
    """A ``BaseBleakClient`` class bound to ``source``, for ``BleakClient(addr, backend=...)``.

    bleak takes the backend as a class and builds it itself, hence a subclass per source.
    """
    if not MIN_MTU <= mtu <= 517:
        from capture.errors import GestureError
        raise GestureError(f"mtu={mtu}: the ATT MTU must be between {MIN_MTU} and 517")
    attrs = {"source": source, "faults": faults or Faults(), "mtu": int(mtu), "speed": float(speed)}
    return type("VirtualBoard", (VirtualBleBackend,), attrs)
