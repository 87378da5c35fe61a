"""Links to a board behind one interface, chosen by URL (like pyserial's ``serial_for_url``).

* ``/dev/ttyACM0``, ``COM3`` or ``serial:///dev/ttyACM0``: USB serial (pyserial)
* ``ble://NAME_OR_ADDRESS``: Bluetooth LE (bleak)
* ``virtual://replay?data=data/magic_wand&rate=119``, ``virtual://idle``,
  ``virtual://classifier?model=DIR``: an in-process virtual board behind the real BLE client code
  (``capture.virtual.url``).

Each scheme is one module with ``open_url(url, **options) -> Transport``, registered in
:data:`SCHEMES` by dotted name and imported only when a URL of that scheme is opened (so bleak or
the simulator load only when used). A new link is one module plus :func:`register_scheme`,
as pyserial's ``protocol_handler_packages`` lets a package add URL handlers.
"""
from __future__ import annotations

import importlib
import re
from typing import Callable

from capture.errors import GestureError
from capture.transport.base import LinkStats, Message, SeqTracker, Transport

__all__ = ["LinkStats", "Message", "SCHEMES", "SeqTracker", "Transport", "open_transport", "register_scheme",
           "split_url", "as_url"]

# scheme -> module holding ``open_url``. The virtual board lives with the simulation
# (capture.virtual), which sits above the links: named here, it is loaded on demand, never imported.
SCHEMES: dict[str, str] = {
    "serial": "capture.transport.serial",
    "ble": "capture.transport.ble",
    "virtual": "capture.virtual.url",
}
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.I)


def register_scheme(scheme: str, module: str) -> None:
    """Make ``scheme://...`` URLs open through ``module.open_url``."""
    SCHEMES[scheme.lower()] = module


def split_url(url: str) -> tuple[str, str]:
    """(scheme, rest); a bare serial port (``/dev/ttyACM0``, ``COM3``) is ``serial``."""
    m = _SCHEME.match(url)
    if m is None:
        return "serial", url
    return m.group(1).lower(), url[m.end():]


def as_url(target: str) -> str:
    """A URL for what a person types: a URL or a serial port as is; a bare name or address means BLE."""
    if _SCHEME.match(target) or target.startswith("/dev/") or re.match(r"^COM\d+$", target, re.I):
        return target
    return f"ble://{target}"


def open_transport(url: str, **options: object) -> Transport:
    """A Transport for ``url`` (not yet opened: ``await t.open()``)."""
    scheme, _ = split_url(url)
    module = SCHEMES.get(scheme)
    if module is None:
        raise GestureError(f"unknown link {url!r}: expected a serial port (/dev/ttyACM0, COM3) or one of "
                           + ", ".join(f"{s}://" for s in sorted(SCHEMES)))
    opener: Callable[..., Transport] = importlib.import_module(module).open_url
    return opener(url, **options)
