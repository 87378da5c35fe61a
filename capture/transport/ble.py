"""Bluetooth LE link (bleak): GATT notifications in, :class:`Message` objects out.

The board exposes one custom service (``capture.protocol.SERVICE_UUID``): INFO (read), CONTROL
(write), IMU (notify) and, on the classifier sketch, PREDICTION (notify). Each notification is
``<HI`` seq, t_us followed by the exact protocol payload, so after stripping that header the rest
of the kit sees the same payloads as over serial. Sequence gaps are counted per characteristic
(a few lost notifications are normal over BLE), payloads that do not decode are counted and
skipped, and an unsolicited disconnect reaches ``on_disconnect`` instead of an exception.

``backend=`` is bleak's own hook for a custom ``BaseBleakClient``: the virtual board
(``capture.virtual.ble``) plugs in there, so tests and demos run this very code without Bluetooth.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError

from capture import protocol as p
from capture.errors import GestureError
from capture.transport.base import Message, Transport

_NOTIFY_CHARS = {p.IMU_CHAR_UUID: p.FrameType.IMU, p.PREDICTION_CHAR_UUID: p.FrameType.PREDICTION,
                 p.EVENT_CHAR_UUID: p.FrameType.EVENT}  # EVENT: classifier sketches since the post-processor
# a MAC address (Linux, Windows) or the per-host UUID macOS uses instead of it
_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")


def no_bluetooth_reason(exc: BaseException) -> str | None:
    """Why this machine cannot do BLE at all, or None if ``exc`` is some other failure.

    bleak reports a missing adapter differently per OS: on Linux without a system D-Bus the socket
    path is missing (FileNotFoundError), BlueZ may be absent (BleakDBusError ServiceUnknown) or
    the adapter off/absent (BleakBluetoothNotAvailableError, BleakError "No Bluetooth adapters").
    """
    from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError

    if isinstance(exc, FileNotFoundError):
        return "no system D-Bus socket, so no BlueZ"
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return f"{exc.reason.name.lower().replace('_', ' ')}: {exc.args[0] if exc.args else exc}"
    if isinstance(exc, BleakDBusError):
        return f"BlueZ not reachable over D-Bus ({exc.dbus_error})"
    if isinstance(exc, (BleakError, OSError)) and re.search(r"adapter|bluetooth|bluez|dbus", str(exc), re.I):
        return str(exc)
    return None


class NoBluetoothError(GestureError):
    """This machine cannot do BLE at all; ``reason`` is :func:`no_bluetooth_reason`'s diagnosis.

    A type of its own so that callers (``gesture devices``, the dashboard) tell "no Bluetooth here"
    from "this board is not answering" without parsing messages: the first will not get better by
    retrying.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class BleFound:
    """A device seen by :func:`scan`."""

    name: str
    address: str
    rssi: int | None = None

    @property
    def url(self) -> str:
        return f"ble://{self.address}"


async def scan(timeout: float, show_all: bool = False) -> list[BleFound]:
    """BLE devices advertising the kit's service (or named like the board), strongest first;
    every device seen with ``show_all``. Raises NoBluetoothError on a machine without Bluetooth,
    GestureError when the scan fails otherwise."""
    try:
        found = await BleakScanner.discover(timeout=timeout, return_adv=True)
    except (OSError, BleakError) as e:
        reason = no_bluetooth_reason(e)
        if reason is not None:
            raise NoBluetoothError(f"no Bluetooth adapter found ({reason})", reason) from None
        raise GestureError(f"{type(e).__name__}: {e}") from None
    out = []
    for device, adv in found.values():
        ours = p.SERVICE_UUID in [u.lower() for u in adv.service_uuids] or adv.local_name == p.BLE_LOCAL_NAME
        if ours or show_all:
            out.append(BleFound(adv.local_name or device.name or "-", device.address, adv.rssi))
    return sorted(out, key=lambda d: -(d.rssi if d.rssi is not None else -999))


def is_address(target: str) -> bool:
    return bool(_ADDRESS.match(target))


class BleTransport(Transport):
    """A board over BLE, found by name (``GestureKit``), address, or the kit's service UUID.

    ``target`` is the advertised name or the address ("" = the first board advertising the kit's
    service). ``device`` skips the scan with a ``BLEDevice`` from ``gesture devices``-style
    discovery. ``backend`` is a ``BaseBleakClient`` class (the virtual board): no scan happens,
    ``target`` is handed to it as the address.
    """

    def __init__(self, target: str, *, backend: type[BaseBleakClient] | None = None, scan_timeout: float = 5.0,
                 device: BLEDevice | None = None, connect_timeout: float = 20.0) -> None:
        super().__init__()
        self.target = target
        self.backend = backend
        self.scan_timeout = scan_timeout
        self.device = device
        self.connect_timeout = connect_timeout
        self.client: BleakClient | None = None
        self.mtu: int | None = None
        self.address: str | None = None  # of the connected device: shown so the user can pin it
        self._closing = False
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    def __repr__(self) -> str:
        return f"BleTransport({self.target!r})"

    # ------------------------------------------------------------------ open / close
    async def _find(self) -> BLEDevice:
        what = f"address {self.target}" if is_address(self.target) else \
            f"name {self.target!r}" if self.target else f"service {p.SERVICE_UUID}"
        try:
            if is_address(self.target):
                dev = await BleakScanner.find_device_by_address(self.target, timeout=self.scan_timeout)
            elif self.target:
                dev = await BleakScanner.find_device_by_name(self.target, timeout=self.scan_timeout)
            else:
                dev = await BleakScanner.find_device_by_filter(
                    lambda d, adv: p.SERVICE_UUID in [u.lower() for u in adv.service_uuids],
                    timeout=self.scan_timeout)
        except (OSError, BleakError) as e:
            reason = no_bluetooth_reason(e)
            if reason is not None:
                raise NoBluetoothError(f"cannot scan for BLE board {what}: no Bluetooth adapter found ({reason}); "
                                       "connect the board over USB serial instead (gesture devices lists ports)",
                                       reason) from None
            raise GestureError(f"BLE scan for {what} failed: {e}") from None
        if dev is None:
            raise GestureError(f"no BLE board with {what} found within {self.scan_timeout:g} s: is it powered, "
                               "running a gesture-kit sketch, and not connected to another host? (gesture devices)")
        return dev

    async def open(self) -> dict[str, str]:
        if self._connected:
            return self.info
        self._closing = False
        self._seq.reset()
        target: BLEDevice | str
        if self.backend is not None:
            target = self.device or self.target
        else:
            target = self.device or await self._find()
        client = BleakClient(target, disconnected_callback=self._bleak_disconnected, timeout=self.connect_timeout,
                             backend=self.backend)
        try:
            await client.connect()
        except (OSError, BleakError, asyncio.TimeoutError) as e:
            reason = no_bluetooth_reason(e)
            if reason is not None:
                raise NoBluetoothError(f"cannot connect to BLE board {self.target!r}: no Bluetooth adapter found "
                                       f"({reason})", reason) from None
            raise GestureError(f"cannot connect to BLE board {self.target!r}: {str(e) or type(e).__name__}") from None
        self.client = client
        try:
            services = client.services
            if services.get_service(p.SERVICE_UUID) is None:
                raise GestureError(f"BLE device {self.target!r} does not offer the gesture-kit service "
                                   f"{p.SERVICE_UUID}: flash firmware/capture or an exported classifier sketch")
            self.mtu = client.mtu_size
            self.address = str(client.address)
            try:
                self.info = p.decode_info(bytes(await client.read_gatt_char(p.INFO_CHAR_UUID)))
            except ValueError as e:
                raise GestureError(f"BLE device {self.target!r} ({self.address}) sent an invalid {e}; "
                                   "is it a gesture-kit board? Pin yours with --ble ADDRESS") from None
            subscribed = 0
            for uuid in _NOTIFY_CHARS:
                if services.get_characteristic(uuid) is not None:
                    await client.start_notify(uuid, self._notified)
                    subscribed += 1
            if not subscribed:
                raise GestureError(f"BLE device {self.target!r} has the gesture-kit service but neither the IMU "
                                   "nor the PREDICTION characteristic: is its sketch older than this host?")
        except GestureError:
            await self._disconnect_quietly(client)
            raise
        except (OSError, BleakError, asyncio.TimeoutError) as e:
            await self._disconnect_quietly(client)
            raise GestureError(f"BLE board {self.target!r}: setting up the link failed: {e}") from None
        self._connected = True
        return self.info

    async def _disconnect_quietly(self, client: BleakClient) -> None:
        self._closing = True
        try:
            await client.disconnect()
        except (OSError, BleakError, asyncio.TimeoutError):
            pass
        self.client = None

    async def close(self) -> None:
        self._closing = True
        self._connected = False
        if self.client is not None:
            await self._disconnect_quietly(self.client)

    # ------------------------------------------------------------------ traffic
    async def send(self, cmd: p.Command, arg: int = 0) -> None:
        if not self._connected or self.client is None:
            raise GestureError(f"cannot send {p.Command(cmd).name}: BLE board {self.target!r} is not connected")
        try:
            await self.client.write_gatt_char(p.CONTROL_CHAR_UUID, p.encode_control(cmd, arg), response=True)
            if cmd in (p.Command.INFO, p.Command.SET_RATE):
                # Over serial the board answers with an INFO frame; over BLE its answer is the INFO
                # characteristic's new value. Deliver it as an INFO message so the recorder and the
                # dashboard wait for a confirmation the same way on every link.
                raw = bytes(await self.client.read_gatt_char(p.INFO_CHAR_UUID))
                try:
                    self.info = p.decode_info(raw)
                except ValueError as e:
                    raise GestureError(f"BLE board {self.target!r} sent an invalid {e}") from None
                self._deliver(Message(p.FrameType.INFO, 0, 0, raw, received=time.monotonic()))
        except BleakError as e:
            hint = f"; supported rates: {', '.join(map(str, p.SUPPORTED_RATES_HZ))}" \
                if cmd == p.Command.SET_RATE else ""
            why = e.args[-1] if isinstance(e, BleakGATTProtocolError) else e  # not the (code, text) tuple
            raise GestureError(f"BLE board {self.target!r} rejected {p.Command(cmd).name} {arg}: {why}{hint}") from None

    def _notified(self, sender: BleakGATTCharacteristic, data: bytearray) -> None:
        """One notification -> one Message (bleak calls this on the event loop)."""
        self.stats.bytes += len(data)
        ftype = _NOTIFY_CHARS.get(sender.uuid)
        try:
            if ftype is None:
                raise ValueError(f"notification from unexpected characteristic {sender.uuid}")
            seq, t_us, payload = p.split_ble_notification(bytes(data))
        except ValueError:
            self.stats.bad_payloads += 1
            return
        self._received(Message(ftype, seq, t_us, payload, received=time.monotonic()))

    def _bleak_disconnected(self, client: Any) -> None:
        was = self._connected
        self._connected = False
        if not self._closing and was:
            self._lost("device disconnected")


def open_url(url: str, **options: object) -> BleTransport:
    """``ble://NAME_OR_ADDRESS`` (capture.transport.SCHEMES)."""
    from capture.transport import split_url

    return BleTransport(split_url(url)[1], **options)  # type: ignore[arg-type]
