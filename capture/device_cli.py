"""``gesture devices``: which boards can this machine talk to?

Lists serial ports (pyserial's ``list_ports``, marking Arduino USB IDs so the board stands out
among other adapters) and BLE devices advertising the kit's service. Many machines (CI runners,
containers, desktops without a dongle) have no Bluetooth at all: that is reported in one line and
the serial listing still stands, because "no Bluetooth" is a fact about the machine, not an error.
pyserial and bleak are imported inside the command so ``gesture --help`` stays fast.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Sequence

import click

from capture.errors import GestureError

if TYPE_CHECKING:
    from capture.transport.ble import BleFound

ARDUINO_VIDS = {0x2341: "Arduino", 0x2A03: "Arduino (arduino.org)"}
NANO33BLE_PIDS = {0x805A: "Nano 33 BLE (sketch)", 0x005A: "Nano 33 BLE (bootloader)"}


def arduino_note(vid: int | None, pid: int | None) -> str:
    """"likely Arduino" marks for a USB VID:PID ('' when it is some other adapter)."""
    if vid not in ARDUINO_VIDS:
        return ""
    board = NANO33BLE_PIDS.get(pid or -1)
    return f"likely Arduino: {board}" if board else "likely Arduino"


def serial_ports() -> list[Any]:
    from serial.tools import list_ports
    return sorted(list_ports.comports(), key=lambda port: port.device)


def format_ports(ports: Sequence[Any]) -> str:
    if not ports:
        return "serial ports: none found (is the board plugged in with a data cable?)"
    rows = [("PORT", "VID:PID", "DESCRIPTION", "")]
    for port in ports:
        vidpid = f"{port.vid:04X}:{port.pid:04X}" if port.vid is not None and port.pid is not None else "-"
        desc = port.description if port.description and port.description != "n/a" else "-"
        rows.append((port.device, vidpid, desc, arduino_note(port.vid, port.pid)))
    return "serial ports:\n" + _table(rows)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def format_ble(found: Sequence[BleFound], timeout: float, show_all: bool = False) -> str:
    if not found:
        what = "BLE devices" if show_all else "gesture-kit boards advertising over BLE"
        return f"{what}: none found in {timeout:g} s"
    rows = [("NAME", "ADDRESS", "RSSI")]
    rows += [(d.name, d.address, f"{d.rssi} dBm" if d.rssi is not None else "-") for d in found]
    return ("BLE devices:\n" if show_all else "gesture-kit boards (BLE):\n") + _table(rows)


@click.command("devices")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to scan for BLE advertisements.")
@click.option("--all", "show_all", is_flag=True, help="List every BLE device seen, not only gesture-kit boards.")
@click.option("--no-ble", is_flag=True, help="Serial ports only; do not scan BLE.")
def devices(timeout: float, show_all: bool, no_ble: bool) -> None:
    """List serial ports (likely Arduinos marked) and BLE boards advertising the kit's service."""
    ports = serial_ports()
    click.echo(format_ports(ports))
    found: list = []
    if not no_ble:
        from capture.transport.ble import NoBluetoothError, scan

        try:
            found = asyncio.run(scan(timeout, show_all))
            click.echo(format_ble(found, timeout, show_all))
        except NoBluetoothError as e:
            click.echo(f"no Bluetooth adapter found ({e.reason}): serial ports only")
        except GestureError as e:
            click.echo(f"BLE scan failed ({e}): serial ports only")
    if not found and not any(arduino_note(port.vid, port.pid) for port in ports):
        click.echo(SIMULATOR_HINT, err=True)  # a hint, not part of the listing


SIMULATOR_HINT = ("no board? the virtual board stands in for one: "
                  "gesture capture --url virtual://replay --label wing --data my_data  (or `gesture simulate --serial` "
                  "for a serial port; see docs/user-guide.md)")


def register(group: click.Group) -> None:
    group.add_command(devices)
