"""How a virtual board's link behaves (pacing, faults, MTU): the options, parsed in one place.

``gesture simulate --serial`` (click options) and ``virtual://`` URLs (query parameters) both
go through :func:`parse_link_options`, so the names, ranges and messages are the same, and an
option that has no meaning on a link is refused with the reason instead of being ignored:
``garbage``/``corrupt`` damage serial bytes (a BLE link layer has its own CRC and delivers whole
notifications or none), ``mtu`` sizes BLE notifications (serial has no MTU).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import click

from capture import protocol as p
from capture.errors import GestureError
from capture.virtual.link import Faults

BOTH = ("serial", "ble")


@dataclass(frozen=True)
class Option:
    name: str
    type: type  # float or int
    default: Any
    lo: float | None
    hi: float | None
    help: str
    links: tuple[str, ...] = BOTH


LINK_OPTIONS: tuple[Option, ...] = (
    Option("speed", float, 1.0, 0, None, "time factor (2 = twice as fast; 0 = as fast as the host reads)"),
    Option("loss", float, 0.0, 0, 1, "probability a frame/notification is lost (the host sees a sequence gap)"),
    Option("garbage", float, 0.0, 0, 1, "probability of noise bytes before a frame", ("serial",)),
    Option("corrupt", float, 0.0, 0, 1, "probability a frame has a flipped byte (a CRC error)", ("serial",)),
    Option("disconnect_after", float, None, 0, None, "drop the link after this many seconds of device time"),
    Option("seed", int, 0, None, None, "seed of the board's noise and faults (repeatable runs)"),
    Option("mtu", int, p.BLE_NOTIFY_MTU, 23, 517, "ATT MTU the board negotiates", ("ble",)),
)
NAMES = tuple(o.name for o in LINK_OPTIONS)


@dataclass
class VirtualOptions:
    """How the virtual board's link behaves (not what it senses)."""

    faults: Faults = field(default_factory=Faults)
    mtu: int = p.BLE_NOTIFY_MTU
    speed: float = 1.0


def _value(o: Option, raw: object, where: str, spell: Callable[[str], str]) -> Any:
    if raw is None:
        return o.default
    what = "an integer" if o.type is int else "a number"
    try:
        v = o.type(raw)
    except (TypeError, ValueError):
        raise GestureError(f"{where}: {spell(o.name)}={raw!r} is not {what}") from None
    if (o.lo is not None and v < o.lo) or (o.hi is not None and v > o.hi):
        bounds = f"in {o.lo:g}..{o.hi:g}" if o.hi is not None else f">= {o.lo:g}"
        raise GestureError(f"{where}: {spell(o.name)}={raw} is out of range; expected {what} {bounds}")
    return v


def parse_link_options(values: Mapping[str, object], link: str, where: str,
                       spell: Callable[[str], str] = lambda n: n) -> VirtualOptions:
    """Validate ``values`` (name -> raw value or None) for a ``link`` ("serial" or "ble").

    ``spell`` names an option the way the user typed it (``--disconnect-after`` or ``disconnect_after``).
    """
    got: dict[str, Any] = {}
    for o in LINK_OPTIONS:
        raw = values.get(o.name)
        if link not in o.links and raw is not None and raw != o.default:
            other = " and ".join(o.links)
            raise GestureError(f"{where}: {spell(o.name)} applies to the {other} virtual board only "
                               f"({'gesture simulate --serial' if o.links == ('serial',) else 'virtual:// URLs'})")
        got[o.name] = _value(o, raw, where, spell)
    faults = Faults(loss=got["loss"], garbage=got["garbage"], corrupt=got["corrupt"],
                    disconnect_after_s=got["disconnect_after"], seed=got["seed"])
    return VirtualOptions(faults=faults, mtu=got["mtu"], speed=got["speed"])


def click_options(link: str) -> Callable[[Callable], Callable]:
    """The link options of ``link`` as click options (``--disconnect-after`` etc.)."""
    def decorate(f: Callable) -> Callable:
        for o in reversed([o for o in LINK_OPTIONS if link in o.links]):
            f = click.option(f"--{o.name.replace('_', '-')}", o.name, type=o.type, default=o.default,
                             show_default=o.default is not None, help=o.help)(f)
        return f
    return decorate
