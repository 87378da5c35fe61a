"""The virtual BLE board through the REAL client path: bleak.BleakClient + BleTransport.

The board is plugged in through bleak's public ``backend=`` hook (CI has no Bluetooth), so these
tests exercise service discovery, characteristic reads/writes and notification callbacks exactly
as a Nano 33 BLE would drive them, and compare what arrives with what the source emitted.
"""
from __future__ import annotations

import asyncio
from typing import Callable, Iterator

import numpy as np
import pytest

from capture import protocol as p
from capture.errors import GestureError
from capture.transport import open_transport
from capture.transport.ble import BleTransport
from capture.virtual.url import source_from_url
from capture.virtual.ble import VirtualBleBackend, virtual_backend
from capture.virtual.link import Faults
from capture.device_info import capture_info
from capture.virtual.sources import IdleSource, ReplaySource
from tests.conftest import DATA

WAIT_S = 20.0  # generous upper bound for "eventually"; never a speed assertion


async def wait_for(cond: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def board(link: BleTransport) -> VirtualBleBackend:
    """The backend instance bleak built for this link (to read what the board injected)."""
    assert link.client is not None
    backend = link.client._backend  # noqa: SLF001 - bleak keeps its backend here; tests only
    assert isinstance(backend, VirtualBleBackend)
    return backend


def replay(limit: int = 3, channels: int = 6) -> ReplaySource:
    return ReplaySource(DATA, rate_hz=119, channels=channels, limit=limit, rest_s=0.2, loop=False, seed=3)


def expected_stream(limit: int = 3, channels: int = 6) -> np.ndarray:
    return np.vstack([block for block, _ in replay(limit, channels).stream()])


def run_link(source: object, *, mtu: int = 247, faults: Faults | None = None, until_samples: int | None = None,
             until_messages: int | None = None) -> tuple[BleTransport, list, dict, VirtualBleBackend]:
    """Open a link to a speed-0 virtual board, collect until the condition, close; return all."""
    async def go() -> tuple[BleTransport, list, dict, VirtualBleBackend]:
        link = BleTransport("virtual", backend=virtual_backend(source, faults=faults, mtu=mtu, speed=0))
        msgs: list = []
        link.on_message(msgs.append)
        info = await link.open()
        dev = board(link)
        if until_samples is not None:
            await wait_for(lambda: sum(len(p.decode_imu(m.payload)) for m in msgs) >= until_samples
                           or dev._pump is None or dev._pump.done(), "all samples")
            await wait_for(lambda: dev._pump is None or dev._pump.done(), "the source to end")
        if until_messages is not None:
            await wait_for(lambda: len(msgs) >= until_messages, f"{until_messages} messages")
        await link.close()
        return link, msgs, info, dev
    return asyncio.run(go())


def test_info_is_read_from_the_info_characteristic() -> None:
    src = replay(limit=1)
    link, _, info, dev = run_link(src, until_messages=1)
    assert info == p.decode_info(p.encode_info(src.info()))
    assert info["rate"] == "119" and info["ch"] == "ax,ay,az,gx,gy,gz" and info["mode"] == "capture"
    assert link.info == info
    assert link.mtu == 247
    # a capture board: IMU notify only, no PREDICTION characteristic in its GATT table
    assert dev.services is not None
    assert dev.services.get_characteristic(p.IMU_CHAR_UUID) is not None
    assert dev.services.get_characteristic(p.PREDICTION_CHAR_UUID) is None


def test_imu_notifications_carry_exactly_the_replayed_counts() -> None:
    src = replay()
    want = expected_stream()
    link, msgs, _, _ = run_link(src, until_samples=len(want))
    assert all(m.type == p.FrameType.IMU for m in msgs)
    got = np.vstack([p.decode_imu(m.payload) for m in msgs])
    np.testing.assert_array_equal(got, want)
    # every replayed take sits where the source says it does, sample for sample
    assert len(src.segments) == 3
    for seg in src.segments:
        np.testing.assert_array_equal(got[seg.start_sample:seg.start_sample + len(seg.counts)], seg.counts)
    assert [m.seq for m in msgs] == list(range(len(msgs)))
    assert link.stats.frames == len(msgs) and link.stats.frames_lost == 0 and link.stats.bad_payloads == 0
    assert link.stats.bytes == sum(p.BLE_NOTIFY_HEADER.size + len(m.payload) for m in msgs)


@pytest.mark.parametrize("mtu,channels", [(23, 6), (23, 3), (247, 6), (247, 3)])
def test_imu_batches_fill_the_negotiated_mtu(mtu: int, channels: int) -> None:
    want = expected_stream(limit=1, channels=channels)
    link, msgs, _, _ = run_link(replay(limit=1, channels=channels), mtu=mtu, until_samples=len(want))
    per = p.ble_samples_per_notification(mtu, channels)
    sizes = [len(p.decode_imu(m.payload)) for m in msgs]
    assert sizes[:-1] == [per] * (len(sizes) - 1) and 1 <= sizes[-1] <= per
    assert sum(sizes) == len(want)
    # whole notification (header + payload + ATT overhead) fits the MTU
    assert max(p.BLE_NOTIFY_HEADER.size + len(m.payload) for m in msgs) + p.ATT_OVERHEAD <= mtu
    # t_us is the device time of each batch's first sample (to the microsecond: times are rounded
    # per source frame and per sample within it)
    first = np.cumsum([0] + sizes[:-1])
    np.testing.assert_allclose([m.t_us for m in msgs], first * 1e6 / 119, atol=1.0)


def test_injected_loss_is_counted_as_sequence_gaps() -> None:
    want = expected_stream()
    link, msgs, _, dev = run_link(replay(), faults=Faults(loss=0.2, seed=7), until_samples=len(want))
    dropped = dev.dropped.get(p.FrameType.IMU, 0)
    per = p.ble_samples_per_notification(247, 6)
    assert dropped > 0
    assert len(msgs) + dropped == -(-len(want) // per)  # every notification either arrived or was dropped
    seqs = [m.seq for m in msgs]
    assert seqs == sorted(seqs)
    # gaps the host can see are the drops between the first and last received notification
    visible = sum(1 for s in dev.dropped_seqs[p.FrameType.IMU] if seqs[0] < s < seqs[-1])
    assert link.stats.frames_lost == visible == len(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))


def test_disconnect_reaches_on_disconnect_without_exception() -> None:
    async def go() -> None:
        src = IdleSource(rate_hz=119)
        faults = Faults(disconnect_after_s=0.5)
        link = BleTransport("virtual", backend=virtual_backend(src, faults=faults, speed=0))
        reasons: list[str] = []
        msgs: list = []
        link.on_disconnect(reasons.append)
        link.on_message(msgs.append)
        await link.open()
        await wait_for(lambda: bool(reasons), "the disconnect")
        assert reasons == ["device disconnected"]
        assert not link.connected and link.stats.disconnects == 1
        # the device time of the last sample delivered is before the disconnect
        assert msgs and max(m.t_us for m in msgs) < 500_000
        with pytest.raises(GestureError, match="not connected"):
            await link.send(p.Command.START)
        await link.close()  # safe after a drop, and no second callback
        await link.close()
        assert reasons == ["device disconnected"]
    asyncio.run(go())


def test_close_is_not_reported_as_a_disconnect() -> None:
    async def go() -> None:
        link = BleTransport("virtual", backend=virtual_backend(IdleSource(), speed=0))
        reasons: list[str] = []
        link.on_disconnect(reasons.append)
        await link.open()
        assert link.connected
        await link.close()
        assert not link.connected and reasons == [] and link.stats.disconnects == 0
    asyncio.run(go())


def test_control_stop_pauses_and_start_resumes() -> None:
    async def go() -> None:
        link = BleTransport("virtual", backend=virtual_backend(IdleSource(rate_hz=952), speed=4))
        msgs: list = []
        link.on_message(msgs.append)
        await link.open()
        await wait_for(lambda: len(msgs) >= 3, "streaming")
        await link.send(p.Command.STOP)
        stopped_at = len(msgs)
        await asyncio.sleep(0.3)  # the board keeps its clock running but sends nothing
        assert len(msgs) == stopped_at
        await link.send(p.Command.START)
        await wait_for(lambda: len(msgs) >= stopped_at + 3, "streaming again")
        # not sending is not losing: no sequence gap across the pause
        assert link.stats.frames_lost == 0
        await link.close()
    asyncio.run(go())


def test_set_rate_changes_the_board_rate_and_bad_rates_are_rejected() -> None:
    async def go() -> None:
        link = BleTransport("virtual", backend=virtual_backend(IdleSource(rate_hz=119), speed=0))
        msgs: list = []
        link.on_message(msgs.append)
        await link.open()
        await link.send(p.Command.SET_RATE, 238)
        # the board's confirmation: its INFO characteristic, delivered as an INFO message (as serial does)
        infos = [p.decode_info(m.payload) for m in msgs if m.type == p.FrameType.INFO]
        assert [i["rate"] for i in infos] == ["238"] and link.info["rate"] == "238"
        await link.send(p.Command.INFO)  # over BLE: re-reads the INFO characteristic
        assert link.info["rate"] == "238"
        msgs[:] = [m for m in msgs if m.type == p.FrameType.IMU]
        with pytest.raises(GestureError, match="rejected SET_RATE 123"):
            await link.send(p.Command.SET_RATE, 123)
        n = len(msgs)
        await wait_for(lambda: len(msgs) >= n + 4, "notifications at the new rate")
        per = p.ble_samples_per_notification(p.BLE_NOTIFY_MTU, 6)  # the default, as the sketches send
        steps = [b.t_us - a.t_us for a, b in zip(msgs[-4:-1], msgs[-3:])]
        np.testing.assert_allclose(steps, per * 1e6 / 238, atol=2.0)  # two 1-us roundings
        assert link.stats.frames_lost == 0
        await link.close()
    asyncio.run(go())


class PredictionSource:
    """A classifier board without raw IMU: PREDICTION events only, one of them malformed."""

    raw_imu = False

    def __init__(self, bad_at: int | None = None, n: int = 20) -> None:
        self.bad_at = bad_at
        self.n = n

    def info(self) -> dict[str, object]:
        return capture_info(119, 6, mode="classifier", labels=["wing", "ring", "slope"])

    def events(self) -> Iterator[tuple[int, p.FrameType, bytes]]:
        for k in range(self.n):
            payload = p.encode_prediction(p.Prediction(k % 3, 200, (200, 30, 25)))
            if k == self.bad_at:
                payload = payload[:-1]  # n says 3 scores, 2 present
            yield k * 250_000, p.FrameType.PREDICTION, payload


def test_prediction_characteristic_and_malformed_payloads_are_skipped() -> None:
    link, msgs, info, dev = run_link(PredictionSource(bad_at=4), until_messages=19)
    assert info["mode"] == "classifier" and info["labels"] == "wing,ring,slope"
    assert dev.services is not None and dev.services.get_characteristic(p.IMU_CHAR_UUID) is None
    assert {m.type for m in msgs} == {p.FrameType.PREDICTION}
    assert link.stats.bad_payloads == 1 and link.stats.frames_lost == 0
    # the bad one arrived (its seq was used) but is skipped, not delivered
    assert [m.seq for m in msgs] == [s for s in range(20) if s != 4]
    assert [p.decode_prediction(m.payload).class_index for m in msgs[:4]] == [0, 1, 2, 0]


def test_open_transport_virtual_url_is_the_ble_code_path() -> None:
    link = open_transport(f"virtual://replay?data={DATA}&rate=119&loop=0&speed=0&limit=1")
    assert isinstance(link, BleTransport)
    assert issubclass(link.backend, VirtualBleBackend)  # type: ignore[arg-type]

    async def go() -> list:
        msgs: list = []
        link.on_message(msgs.append)
        info = await link.open()
        assert info["rate"] == "119"
        await wait_for(lambda: len(msgs) >= 5, "notifications")
        await link.close()
        return msgs
    assert len(asyncio.run(go())) >= 5


def test_source_from_url_parses_options() -> None:
    src, opt = source_from_url(f"virtual://replay?data={DATA}&rate=50&channels=3&loop=0&speed=0&loss=0.1"
                               "&disconnect_after=2&mtu=23&labels=wing,ring&seed=4")
    assert isinstance(src, ReplaySource)
    assert src.rate_hz == 50 and src.channels == 3 and not src.loop
    assert {t.label for t in src.takes} == {"wing", "ring"}
    assert opt.mtu == 23 and opt.speed == 0
    assert opt.faults.loss == 0.1 and opt.faults.disconnect_after_s == 2 and opt.faults.seed == 4
    idle, _ = source_from_url("virtual://idle?rate=238")
    assert isinstance(idle, IdleSource) and idle.rate_hz == 238


@pytest.mark.parametrize("url,message", [
    ("virtual://dance", "unknown virtual board 'dance'"),
    ("virtual://classifier", "missing model=DIR"),  # (replay defaults to the bundled takes)
    ("virtual://replay?data=/nonexistent/dir", "data=/nonexistent/dir: no such directory"),
    ("virtual://idle?rate=fast", "rate='fast' is not a number"),
    ("virtual://idle?rate=0", "rate=0 is out of range"),
    ("virtual://idle?channels=4", "channels=4; expected 3"),
    ("virtual://idle?loss=2", "loss=2 is out of range; expected a number in 0..1"),
    ("virtual://idle?mtu=12", "mtu=12 is out of range"),
    ("virtual://idle?colour=red", "unknown parameter 'colour' for virtual://idle"),
    ("virtual://idle?loop=maybe", "unknown parameter 'loop'"),
    ("virtual://replay?data=.&loop=maybe", "loop='maybe' is not a flag"),
    ("virtual://classifier?data=.", "missing model=DIR"),
])
def test_bad_virtual_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(GestureError, match=__import__("re").escape(message)):
        source_from_url(url)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("training.board_sim", reason="training.board_sim (classifier board) not built yet")
    from training.train import train
    out = tmp_path_factory.mktemp("ble_model")
    train(DATA, out, epochs=1, limit_per_label=8, augment=0, seed=1, quiet=True)
    return out


def test_classifier_board_notifies_predictions_and_raw_imu(tiny_model) -> None:
    """virtual://classifier: the board runs the int8 model (training.board_sim) and the host gets
    PREDICTION and raw IMU notifications on their own characteristics, each with its own seq."""
    link = open_transport(f"virtual://classifier?model={tiny_model}&data={DATA}&loop=0&shuffle=0&speed=0")
    labels = __import__("json").loads((tiny_model / "config.json").read_text())["labels"]

    async def go() -> tuple[list, dict]:
        msgs: list = []
        link.on_message(msgs.append)
        info = await link.open()
        await wait_for(lambda: sum(m.type == p.FrameType.PREDICTION for m in msgs) >= 10, "10 predictions", timeout=60)
        with pytest.raises(GestureError, match="rejected SET_RATE"):  # the model fixes the rate
            await link.send(p.Command.SET_RATE, 238)
        await link.close()
        return msgs, info
    msgs, info = asyncio.run(go())
    assert info["mode"] == "classifier" and info["labels"] == ",".join(labels)
    preds = [m for m in msgs if m.type == p.FrameType.PREDICTION]
    imu = [m for m in msgs if m.type == p.FrameType.IMU]
    assert imu and preds
    for kind in (preds, imu):
        assert [m.seq for m in kind] == list(range(len(kind)))
    for m in preds:
        d = p.decode_prediction(m.payload)
        assert len(d.scores) == len(labels)
        assert d.class_index == p.UNKNOWN_CLASS or d.class_index < len(labels)
    assert link.stats.bad_payloads == 0 and link.stats.frames_lost == 0
