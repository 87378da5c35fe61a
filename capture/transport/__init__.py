"""Links to a board behind one interface, chosen by URL (like pyserial's ``serial_for_url``).

* ``/dev/ttyACM0``, ``COM3`` or ``serial:///dev/ttyACM0``: USB serial (pyserial)
* ``ble://NAME_OR_ADDRESS``: Bluetooth LE (bleak)
* ``virtual://replay?data=data/magic_wand&rate=119``, ``virtual://idle``,
  ``virtual://classifier?model=DIR``: an in-process virtual board. It is reached through the real
  BLE client code (``BleTransport`` + bleak's ``BleakClient`` with the virtual board plugged in as
  bleak backend), so everything but the radio is exercised; see ``capture.transport.virtual``.
"""
from __future__ import annotations

from urllib.parse import urlparse

from capture.errors import GestureError
from capture.transport.base import LinkStats, Message, SeqTracker, Transport

__all__ = ["LinkStats", "Message", "SeqTracker", "Transport", "open_transport"]


def open_transport(url: str, **options: object) -> Transport:
    """A Transport for ``url`` (not yet opened: ``await t.open()``)."""
    scheme = urlparse(url).scheme if "://" in url else "serial"
    if scheme == "serial":
        from capture.transport.serial import SerialTransport
        return SerialTransport(url.split("://", 1)[1] if "://" in url else url, **options)
    if scheme == "ble":
        from capture.transport.ble import BleTransport
        return BleTransport(url.split("://", 1)[1], **options)
    if scheme == "virtual":
        from capture.transport.virtual import open_virtual
        return open_virtual(url, **options)
    raise GestureError(f"unknown link {url!r}: expected a serial port (/dev/ttyACM0, COM3), ble://NAME or virtual://...")
