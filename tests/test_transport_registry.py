"""Links: URL schemes are registered modules (a new link is one module), and per-message handling
(sequence gaps, payload check, bad-payload count, INFO, delivery) lives once in Transport."""
from __future__ import annotations

import pytest

from capture import protocol as p
from capture.errors import GestureError
from capture.transport import SCHEMES, Message, Transport, as_url, open_transport, register_scheme, split_url


class LoopbackTransport(Transport):
    """A whole link in a dozen lines: only open/close/send are its own."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    async def open(self) -> dict[str, str]:
        return self.info

    async def close(self) -> None:
        pass

    async def send(self, cmd: p.Command, arg: int = 0) -> None:
        pass

    @property
    def connected(self) -> bool:
        return True


def open_url(url: str, **options: object) -> LoopbackTransport:
    return LoopbackTransport(split_url(url)[1])


@pytest.fixture
def loop_scheme():
    register_scheme("loop", __name__)
    yield
    del SCHEMES["loop"]


def test_a_registered_module_opens_its_scheme(loop_scheme):
    link = open_transport("loop://board7")
    assert isinstance(link, LoopbackTransport) and link.name == "board7"
    with pytest.raises(GestureError, match=r"unknown link 'nope://x'.*ble://, loop://, serial://, virtual://"):
        open_transport("nope://x")


def test_per_message_handling_is_the_transports():
    link = LoopbackTransport("x")
    got: list[Message] = []
    link.on_message(got.append)
    imu = p.encode_imu(__import__("numpy").zeros((2, 6), "int16"))
    link._received(Message(p.FrameType.IMU, 1, 0, imu))
    link._received(Message(p.FrameType.IMU, 4, 0, imu))  # 2 and 3 lost
    link._received(Message(p.FrameType.IMU, 5, 0, imu[:-1]))  # arrived (seq counts) but does not decode
    link._received(Message(p.FrameType.IMU, 7, 0, imu))  # 6 lost
    info = p.encode_info({"proto": 1, "fw": "9.9", "mode": "capture"})
    link._received(Message(p.FrameType.INFO, 0, 0, info))
    assert [m.seq for m in got] == [1, 4, 7, 0]
    assert (link.stats.frames_lost, link.stats.bad_payloads, link.stats.frames) == (3, 1, 4)
    assert link.info["fw"] == "9.9"


@pytest.mark.parametrize("typed, url", [
    ("/dev/ttyACM0", "/dev/ttyACM0"), ("COM3", "COM3"), ("serial:///dev/ttyUSB0", "serial:///dev/ttyUSB0"),
    ("GestureKit", "ble://GestureKit"), ("AA:BB:CC:DD:EE:FF", "ble://AA:BB:CC:DD:EE:FF"),
    ("virtual://idle", "virtual://idle"), ("COMPASS", "ble://COMPASS"),
])
def test_as_url(typed, url):
    assert as_url(typed) == url


def test_split_url():
    assert split_url("/dev/ttyACM0") == ("serial", "/dev/ttyACM0")
    assert split_url("BLE://Kit") == ("ble", "Kit")


def test_virtual_link_options_are_parsed_once_for_both_links():
    from capture.virtual.options import parse_link_options
    from capture.virtual.url import source_from_url

    with pytest.raises(GestureError, match="garbage applies to the serial virtual board only"):
        source_from_url("virtual://idle?garbage=0.1")
    with pytest.raises(GestureError, match=r"--mtu applies to the ble virtual board only"):
        parse_link_options({"mtu": 100}, "serial", "gesture simulate", spell=lambda n: "--" + n)
    with pytest.raises(GestureError, match=r"virtual://idle\?loss=2: loss=2 is out of range; expected a number in 0..1"):
        source_from_url("virtual://idle?loss=2")
    serial = parse_link_options({"loss": 0.25, "corrupt": 0.5, "seed": 3}, "serial", "x")
    _, ble = source_from_url("virtual://idle?loss=0.25&seed=3&mtu=247")
    assert (serial.faults.loss, serial.faults.corrupt, serial.faults.seed) == (0.25, 0.5, 3)
    assert (ble.faults.loss, ble.faults.seed, ble.mtu) == (0.25, 3, 247)
