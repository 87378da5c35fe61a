"""BleTransport on its own: a minimal fake GATT server behind bleak's ``backend=`` hook, and the
no-Bluetooth paths (the real one on this machine and each bleak error a host can raise)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bleak import BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason, BleakDBusError, BleakError

from capture import protocol as p
from capture.errors import GestureError
from capture.transport import open_transport
from capture.transport.ble import BleTransport, is_address
from capture.transport.base import SeqTracker

IMU = p.encode_imu([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]])  # type: ignore[arg-type]
INFO = {"proto": 1, "fw": "9.9.9", "mode": "capture", "rate": 119, "ch": ["ax", "ay", "az", "gx", "gy", "gz"]}


class FakeBoard(BaseBleakClient):
    """A hand-driven GATT server: the test pushes raw notification bytes and reads CONTROL writes."""

    service_uuid = p.SERVICE_UUID

    def __init__(self, address: Any, **kwargs: Any) -> None:
        super().__init__(address, disconnected_callback=kwargs.get("disconnected_callback"),
                         timeout=kwargs.get("timeout", 10.0))
        self.callbacks: dict[str, NotifyCallback] = {}
        self.writes: list[tuple[bytes, bool]] = []
        self._up = False

    @property
    def mtu_size(self) -> int:
        return 185

    @property
    def is_connected(self) -> bool:
        return self._up

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        coll = BleakGATTServiceCollection()
        svc = BleakGATTService(None, 1, self.service_uuid)
        coll.add_service(svc)
        for h, (uuid, props) in enumerate([(p.INFO_CHAR_UUID, ["read"]), (p.CONTROL_CHAR_UUID, ["write"]),
                                           (p.IMU_CHAR_UUID, ["notify"])], start=2):
            coll.add_characteristic(BleakGATTCharacteristic(None, h, uuid, props, lambda: 20, svc))  # type: ignore[arg-type]
        self.services = coll
        self._up = True

    async def disconnect(self) -> None:
        self._up = False

    async def pair(self, *a: Any, **k: Any) -> None: ...
    async def unpair(self) -> None: ...

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, **kwargs: Any) -> bytearray:
        assert characteristic.uuid == p.INFO_CHAR_UUID
        return bytearray(p.encode_info(INFO))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any, response: bool) -> None:
        assert characteristic.uuid == p.CONTROL_CHAR_UUID
        self.writes.append((bytes(data), response))

    async def read_gatt_descriptor(self, *a: Any, **k: Any) -> bytearray:
        raise BleakError("no descriptors")

    async def write_gatt_descriptor(self, *a: Any, **k: Any) -> None:
        raise BleakError("no descriptors")

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kw: Any) -> None:
        self.callbacks[characteristic.uuid] = callback

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self.callbacks.pop(characteristic.uuid, None)

    def push(self, data: bytes) -> None:
        self.callbacks[p.IMU_CHAR_UUID](bytearray(data))


def test_notifications_become_messages_and_bad_ones_are_counted() -> None:
    async def go() -> None:
        link = BleTransport("fake", backend=FakeBoard)
        msgs: list = []
        link.on_message(msgs.append)
        info = await link.open()
        assert info["fw"] == "9.9.9" and link.mtu == 185
        fake = link.client._backend  # noqa: SLF001
        assert set(fake.callbacks) == {p.IMU_CHAR_UUID}  # no PREDICTION characteristic on this board
        fake.push(p.ble_notification(10, 1000, IMU))
        fake.push(b"\x01\x02\x03")  # shorter than the <HI header
        fake.push(p.ble_notification(11, 2000, IMU[:-1]))  # IMU payload one byte short
        fake.push(p.ble_notification(14, 3000, IMU))  # seq 12, 13 lost on the air
        fake.push(p.ble_notification(0xFFFF, 4000, IMU))
        fake.push(p.ble_notification(0, 5000, IMU))  # u16 wrap is not a gap
        assert [(m.type, m.seq, m.t_us, m.payload) for m in msgs] == [
            (p.FrameType.IMU, 10, 1000, IMU), (p.FrameType.IMU, 14, 3000, IMU),
            (p.FrameType.IMU, 0xFFFF, 4000, IMU), (p.FrameType.IMU, 0, 5000, IMU)]
        assert link.stats.bad_payloads == 2
        assert link.stats.frames_lost == 2 + (0xFFFF - 14 - 1)
        assert link.stats.frames == 4
        assert link.stats.bytes == 4 * (6 + len(IMU)) + 3 + 6 + len(IMU) - 1
        await link.send(p.Command.SET_RATE, 238)
        assert fake.writes == [(p.encode_control(p.Command.SET_RATE, 238), True)]
        await link.close()
        assert not fake.is_connected
    asyncio.run(go())


def test_a_device_without_the_kit_service_is_refused() -> None:
    class OtherDevice(FakeBoard):
        service_uuid = "0000180d-0000-1000-8000-00805f9b34fb"  # heart rate

    async def go() -> None:
        link = BleTransport("HRM", backend=OtherDevice)
        with pytest.raises(GestureError, match="does not offer the gesture-kit service"):
            await link.open()
        assert not link.connected
    asyncio.run(go())


def test_send_before_open_is_a_clear_error() -> None:
    with pytest.raises(GestureError, match="not connected"):
        asyncio.run(BleTransport("GestureKit").send(p.Command.START))


def test_open_without_bluetooth_on_this_machine_is_a_clear_error() -> None:
    """The real path, nothing patched: CI has no Bluetooth, so the scan fails with our message.
    (With an adapter and no board, the scan times out: the other clear message.)"""
    link = open_transport("ble://GestureKit", scan_timeout=0.5)
    assert isinstance(link, BleTransport)
    with pytest.raises(GestureError) as err:
        asyncio.run(link.open())
    msg = str(err.value)
    assert ("no Bluetooth adapter found" in msg and "serial" in msg) or \
        "no BLE board with name 'GestureKit' found within 0.5 s" in msg


@pytest.mark.parametrize("exc,reason", [
    (FileNotFoundError(2, "No such file or directory"), "no system D-Bus socket"),
    (BleakBluetoothNotAvailableError("Bluetooth is turned off", BleakBluetoothNotAvailableReason.POWERED_OFF),
     "powered off"),
    (BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", []), "BlueZ not reachable"),
    (BleakError("No Bluetooth adapters found."), "No Bluetooth adapters found."),
])
def test_each_no_adapter_error_becomes_one_message(monkeypatch: pytest.MonkeyPatch, exc: Exception,
                                                   reason: str) -> None:
    async def fail(*a: Any, **k: Any) -> None:
        raise exc
    monkeypatch.setattr(BleakScanner, "find_device_by_name", fail)
    with pytest.raises(GestureError, match=f"no Bluetooth adapter found \\(.*{reason}"):
        asyncio.run(BleTransport("GestureKit").open())


def test_scan_chooses_address_name_or_service_and_reports_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, object]] = []

    def finder(kind: str):
        async def find(arg: object, timeout: float = 10.0, **k: Any) -> None:
            calls.append((kind, arg))
            return None
        return find
    for kind in ("name", "address", "filter"):
        monkeypatch.setattr(BleakScanner, f"find_device_by_{kind}", finder(kind))
    for target, message in [("GestureKit", "no BLE board with name 'GestureKit' found within 0.2 s"),
                            ("AA:BB:CC:DD:EE:FF", "no BLE board with address AA:BB:CC:DD:EE:FF found"),
                            ("", f"no BLE board with service {p.SERVICE_UUID} found")]:
        with pytest.raises(GestureError, match=message):
            asyncio.run(BleTransport(target, scan_timeout=0.2).open())
    assert [c[0] for c in calls] == ["name", "address", "filter"]
    assert calls[0][1] == "GestureKit" and calls[1][1] == "AA:BB:CC:DD:EE:FF"
    # the service filter accepts a board advertising the kit's service and nothing else
    keep = calls[2][1]
    adv = lambda uuids: type("Adv", (), {"service_uuids": uuids})()  # noqa: E731
    assert keep(None, adv([p.SERVICE_UUID.upper()])) and not keep(None, adv(["180d"]))


def test_found_device_that_cannot_connect_without_bluetooth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scan succeeds (patched) but the platform client has no Bluetooth stack: still no traceback."""
    async def found(*a: Any, **k: Any) -> BLEDevice:
        return BLEDevice("AA:BB:CC:DD:EE:FF", "GestureKit", {"path": "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF", "props": {}})
    monkeypatch.setattr(BleakScanner, "find_device_by_name", found)
    with pytest.raises(GestureError, match="cannot connect to BLE board 'GestureKit'"):
        asyncio.run(BleTransport("GestureKit", connect_timeout=2).open())


def test_is_address_and_seq_tracker_wrap() -> None:
    assert is_address("AA:BB:CC:DD:EE:FF") and is_address("12345678-1234-1234-1234-123456789abc")
    assert not is_address("GestureKit") and not is_address("AA:BB:CC")
    t = SeqTracker()
    assert [t.gap(p.FrameType.IMU, s) for s in (65534, 65535, 0, 3)] == [0, 0, 0, 2]
