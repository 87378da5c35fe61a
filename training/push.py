"""``gesture push``'s client: a model package into a running push-ready classifier over BLE.

The exchange is docs/push.md's; the board side is the sketch's transfer service (and its Python
twin ``capture.virtual.push_target`` behind the virtual board). One bleak ``BleakClient`` does it
all, so the same code pushes to a real Nano 33 BLE, the host-compiled firmware and the Python
virtual board (bleak's ``backend=``).

Flow control: PUSH_DATA chunks (``protocol.push_chunk_size(mtu)``) go as writes without response,
at most :func:`window_bytes` beyond what the board has acknowledged, so the link's buffers never
hold more than the board can answer for. The board notifies RECEIVING with its offset after
``ack_every`` chunks since its last notification; a notification anywhere else is its go-back-N
("I want this offset"), and the host resends from there. A quiet board is asked (STATUS) before
the host gives up. After a disconnect ``reconnect()`` gives a new client, BEGIN with the same
length and sha256 resumes at the offset the board has, and the count of resumes is reported.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from capture import protocol as p
from capture.errors import DataError, GestureError

STATUS_POLL_S = 0.05  # how often a wait checks that the link is still up
QUIET_S = 2.0  # no status for this long while data is in flight: ask the board (STATUS)


@dataclass
class PushResult:
    """What a push did: ``sent_bytes`` counts every package byte written (a resent chunk again),
    ``seconds`` from BEGIN to DONE, ``resumed`` the reconnections, ``status`` the board's last
    PUSH_STATUS (DONE) and ``info`` its INFO afterwards (model, labels, slot)."""

    sent_bytes: int
    seconds: float
    resumed: int
    status: p.PushStatus
    info: dict[str, str]

    @property
    def bytes_per_s(self) -> float:
        return self.status.total / self.seconds if self.seconds > 0 else 0.0


def window_bytes(chunk: int, ack_every: int) -> int:
    """Bytes the host keeps in flight beyond the last acknowledgement: two acknowledgement
    periods, so the next chunks are already on their way while an acknowledgement travels back."""
    return 2 * ack_every * chunk


def check_package(package: bytes, info: dict[str, str], where: str = "package") -> Any:
    """The host's refusal before a byte is sent: a package that cannot fit or run on the board
    whose INFO is ``info`` (size, header, board, its INFO with the new labels, ops). Returns the parsed package."""
    from training import package as pk
    from training.tflm_ops import check_supported, missing_firmware_ops, model_ops

    if len(package) > pk.MAX_PACKAGE_BYTES:
        raise GestureError(f"{where}: {len(package):,} bytes; a slot of the board holds at most "
                           f"{pk.MAX_PACKAGE_BYTES:,} (model.tflite + header): make the model smaller")
    pkg = pk.parse_package(package, where)
    board = info.get("board", "")
    if pkg.board != board:
        raise GestureError(f"{where}: built for board {pkg.board}, but the board's INFO says {board or '(none)'}: "
                           f"build the package for {board or 'the board'} (gesture push does)")
    # the board's INFO names the running model's labels, sha256 and slot: it must still fit its characteristic
    from training.export import check_info_fits

    after: dict[str, object] = {**info, "labels": ",".join(pkg.labels), "model": pkg.model_sha256, "slot": p.INFO_SLOT_BUILTIN}
    check_info_fits(p.encode_info(after).decode("ascii"), where)
    ops = model_ops(pkg.payload)
    check_supported(ops)
    missing = missing_firmware_ops(ops)
    if missing:
        raise GestureError(f"{where}: the model uses op(s) {', '.join(missing)} that the push-ready firmware's resolver "
                           "does not hold (training.tflm_ops.FIRMWARE_OPS): train one of the kit's model families, "
                           "or export and flash this model by cable")
    return pkg


async def read_info(client: Any) -> dict[str, str]:
    try:
        return p.decode_info(bytes(await client.read_gatt_char(p.INFO_CHAR_UUID)))
    except ValueError as e:
        raise GestureError(f"the board sent an invalid {e}") from None


async def push_package(client: Any, package: bytes, *, ack_every: int = p.PUSH_ACK_EVERY_DEFAULT,
                       progress: Callable[[int, int], None] | None = None,
                       reconnect: Callable[[], Awaitable[Any]] | None = None,
                       timeout_s: float = 30.0) -> PushResult:
    """Push ``package`` (training.package bytes) through a connected ``bleak.BleakClient``.

    Reads INFO and refuses locally what cannot fit or run (:func:`check_package`), then
    :func:`transfer_package`. ``progress(acknowledged_bytes, total)`` follows the board's
    acknowledgements; ``reconnect()`` returns a new connected client after a disconnect (without
    it a disconnect is an error saying how to resume). Raises GestureError with the board's reason
    (FAILED) or the local check's.
    """
    check_package(package, await read_info(client))
    return await transfer_package(client, package, ack_every=ack_every, progress=progress, reconnect=reconnect,
                                  timeout_s=timeout_s)


class _Link:
    """One connection's PUSH_STATUS notifications, as a queue."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.queue: asyncio.Queue[p.PushStatus] = asyncio.Queue()
        self.bad = 0
        self.sent = 0  # package bytes written in DATA on this connection

    def _notified(self, sender: Any, data: bytearray) -> None:
        try:
            self.queue.put_nowait(p.decode_push_status(bytes(data)))
        except ValueError:
            self.bad += 1

    async def start(self) -> None:
        if self.client.services.get_characteristic(p.PUSH_STATUS_CHAR_UUID) is None:
            raise GestureError("the board has no transfer service (PUSH_STATUS): it runs a sketch that cannot take a "
                               "pushed model; export a classifier and flash it once by cable (gesture export, gesture flash)")
        acquire = getattr(getattr(self.client, "_backend", None), "_acquire_mtu", None)
        if acquire is not None:  # BlueZ reports 23 until asked (bleak's mtu_size example)
            try:
                await acquire()
            except Exception:  # noqa: BLE001 - then the chunks are sized for MTU 23: slower, still right
                pass
        await self.client.start_notify(p.PUSH_STATUS_CHAR_UUID, self._notified)

    async def stop(self) -> None:
        try:
            if self.client.is_connected:
                await self.client.stop_notify(p.PUSH_STATUS_CHAR_UUID)
        except Exception:  # noqa: BLE001 - tidying up a link that may be gone
            pass

    async def whole(self, s: p.PushStatus) -> p.PushStatus:
        """``s`` with the reason whole: a notification holds MTU - 3 bytes (9 characters of text at MTU 23),
        while a read of the characteristic returns its whole value (ATT Read Blob)."""
        try:
            read = p.decode_push_status(bytes(await self.client.read_gatt_char(p.PUSH_STATUS_CHAR_UUID)))
        except Exception:  # noqa: BLE001 - the notified text is what there is
            return s
        return read if (read.state, read.error) == (s.state, s.error) and len(read.text) > len(s.text) else s

    async def next(self, timeout: float) -> p.PushStatus | None:
        """The next status within ``timeout`` s; None when none came; _Lost when the link dropped."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.queue.empty():
                return self.queue.get_nowait()
            if not self.client.is_connected:
                raise _Lost()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                return await asyncio.wait_for(self.queue.get(), min(left, STATUS_POLL_S))
            except asyncio.TimeoutError:
                continue

    async def control(self, data: bytes) -> None:
        await self._write(p.PUSH_CONTROL_CHAR_UUID, data, True)

    async def data(self, data: bytes) -> None:
        await self._write(p.PUSH_DATA_CHAR_UUID, data, False)

    async def _write(self, uuid: str, data: bytes, response: bool) -> None:
        from bleak.exc import BleakError

        if not self.client.is_connected:
            raise _Lost()
        try:
            await self.client.write_gatt_char(uuid, data, response=response)
        except (BleakError, OSError, asyncio.TimeoutError) as e:
            if not self.client.is_connected:
                raise _Lost() from None
            raise GestureError(f"the board rejected a push write: {e}") from None


class _Lost(Exception):
    """The link dropped."""


def _failed(s: p.PushStatus) -> GestureError:
    err = p.PushError(s.error).name if s.error in p.PushError._value2member_map_ else str(s.error)
    return GestureError(f"the board refused the model ({err}): {s.text or 'no reason given'}; it still runs its "
                        "previous model")


async def transfer_package(client: Any, package: bytes, *, ack_every: int = p.PUSH_ACK_EVERY_DEFAULT,
                           progress: Callable[[int, int], None] | None = None,
                           reconnect: Callable[[], Awaitable[Any]] | None = None,
                           timeout_s: float = 30.0) -> PushResult:
    """The exchange alone, without the host's checks: for tests and benchmarks that want the
    board's own refusal (a package for the other board, a flipped byte). See :func:`push_package`."""
    if not 1 <= ack_every <= 0xFFFF:
        raise GestureError(f"ack_every={ack_every}: expected 1..65535 chunks")
    total = len(package)
    sha = hashlib.sha256(package).digest()
    begin = p.encode_push_begin(total, sha, ack_every)
    sent = resumed = 0
    t0 = time.monotonic()
    link = _Link(client)
    acked = 0
    first = True
    while True:  # one pass per connection
        try:
            await link.start()
            status = await _begin(link, begin, timeout_s)
            if first and status.offset:
                resumed += 1  # an earlier push left part of this very package: the board resumes there
            first = False
            acked = status.offset
            if progress is not None:
                progress(acked, total)
            await _send(link, package, acked, ack_every, progress, timeout_s)
            await link.control(bytes([p.PushOp.COMMIT]))
            done = await _until(link, (p.PushState.DONE,), timeout_s, "COMMIT")
            info = await read_info(link.client)
            await link.stop()
            sent += link.sent
            break
        except _Lost:
            sent += link.sent
            if reconnect is None:
                raise GestureError(f"the board disconnected during the push ({acked:,} of {total:,} bytes acknowledged); "
                                   "run gesture push again: it resumes where the board is") from None
            link = _Link(await reconnect())
            resumed += 1
    seconds = time.monotonic() - t0
    from training.package import parse_package

    want = parse_package(package).model_sha256
    if info.get("model") != want:
        raise GestureError(f"the board said DONE but its INFO reports model {info.get('model', '(none)')}, not the pushed "
                           f"{want}: its firmware does not report the running model")
    return PushResult(sent, seconds, resumed, done, info)


async def _until(link: _Link, states: tuple[p.PushState, ...], timeout_s: float, what: str) -> p.PushStatus:
    """Wait for one of ``states``; FAILED raises the board's reason; a quiet board is asked."""
    deadline = time.monotonic() + timeout_s
    asked = False
    while True:
        s = await link.next(min(QUIET_S, max(0.0, deadline - time.monotonic())))
        if s is None:
            if time.monotonic() >= deadline:
                raise GestureError(f"the board did not answer {what} within {timeout_s:g} s")
            if not asked:
                await link.control(bytes([p.PushOp.STATUS]))
                asked = True
            continue
        if s.state == p.PushState.FAILED or s.error not in (0, p.PushError.NONE):
            raise _failed(await link.whole(s))
        if s.state in states:
            return s


async def _begin(link: _Link, begin: bytes, timeout_s: float) -> p.PushStatus:
    await link.control(begin)
    return await _until(link, (p.PushState.RECEIVING,), timeout_s, "BEGIN")


async def _send(link: _Link, package: bytes, acked: int, ack_every: int,
                progress: Callable[[int, int], None] | None, timeout_s: float) -> None:
    """DATA from ``acked`` to the end, windowed, with go-back-N (``link.sent`` counts the bytes)."""
    total = len(package)
    chunk = p.push_chunk_size(link.client.mtu_size)
    window = window_bytes(chunk, ack_every)
    grid = ack_every * chunk
    nxt = acked
    last = acked  # the offset of the board's last notification
    last_heard = time.monotonic()
    asked = False
    while acked < total:
        while nxt < total and nxt - acked < window:
            piece = package[nxt:nxt + chunk]
            await link.data(p.encode_push_data(nxt, piece))
            nxt += len(piece)
            link.sent += len(piece)
        s = await link.next(STATUS_POLL_S)
        if s is None:
            quiet = time.monotonic() - last_heard
            if quiet > timeout_s:
                raise GestureError(f"the board stopped acknowledging at {acked:,} of {total:,} bytes "
                                   f"(nothing for {timeout_s:g} s)")
            if quiet > QUIET_S and not asked:  # an acknowledgement lost or never sent: ask where it is
                await link.control(bytes([p.PushOp.STATUS]))
                asked = True
            continue
        answer, last_heard, asked = asked, time.monotonic(), False
        if s.state == p.PushState.FAILED:
            raise _failed(await link.whole(s))
        if s.state != p.PushState.RECEIVING:
            continue
        # an acknowledgement comes every ack_every chunks (counted since BEGIN, or since the last
        # notification: both are met); anything else, a repeated offset or the answer to STATUS is
        # the offset the board wants next
        regular = s.offset == total or (not answer and s.offset != last and
                                        (s.offset == min(total, last + grid) or s.offset % grid == 0))
        acked = max(acked, s.offset)
        if not regular or s.offset > nxt:
            nxt = s.offset  # go-back-N
        last = s.offset
        if progress is not None:
            progress(acked, total)


# ----------------------------------------------------------------------------- the command's entry

def push(model_dir: str | Path, *, ble: str | None = None, url: str | None = None,
         progress: Callable[[int, int], None] | None = None,
         on_resume: Callable[[int], None] | None = None) -> PushResult:
    """Push MODEL_DIR to the board at ``ble`` (name or address) or ``url`` (``ble://``, ``virtual://``).

    Reads the board's INFO, builds the package for the board it names and refuses before a byte is
    sent what cannot fit or run; reconnects and resumes after a disconnect (``on_resume(count)``).
    """
    if (ble is None) == (url is None):
        raise GestureError("name the board: --ble NAME|ADDRESS or --url URL (one of them)")
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise GestureError(f"{model_dir}: no such folder; expected a MODEL_DIR written by gesture train")
    from training.model_dir import load_model_dir

    load_model_dir(model_dir)  # not a model folder: said now, before the board is looked for
    return asyncio.run(_push(model_dir, url if url is not None else f"ble://{ble}", progress, on_resume))


def _opener(url: str) -> Callable[[], Any]:
    """A factory of not-yet-opened BleTransports to the same board (a virtual one is made once)."""
    from capture.transport import open_transport, split_url
    from capture.transport.ble import BleTransport

    scheme, _ = split_url(url)
    if scheme not in ("ble", "virtual"):
        raise GestureError(f"{url}: gesture push goes over BLE; name the board with --ble NAME|ADDRESS or a "
                           "ble:// or virtual:// URL")
    first = open_transport(url)
    if not isinstance(first, BleTransport):
        raise GestureError(f"{url}: not a BLE link")
    made = [first]

    def make() -> BleTransport:
        if made:
            return made.pop()
        return BleTransport(first.target, backend=first.backend)  # the same board (virtual: the same source)
    return make


async def _push(model_dir: Path, url: str, progress: Callable[[int, int], None] | None,
                on_resume: Callable[[int], None] | None) -> PushResult:
    from capture.boards import BOARDS
    from training.package import build_package

    from capture.transport.ble import NoBluetoothError

    make = _opener(url)
    transport = make()
    try:
        info = await transport.open()
    except NoBluetoothError as e:
        raise GestureError(f"cannot push to {url}: no Bluetooth adapter on this machine ({e.reason}); gesture push "
                           "goes over BLE (the virtual board takes it too: --url virtual://classifier?model=DIR)") from None
    try:
        if info.get("mode") != "classifier":
            raise GestureError(f"{url}: the board runs the {info.get('mode', 'unknown')} sketch; gesture push needs "
                               "an exported classifier (gesture export, then gesture flash once by cable)")
        board = info.get("board", "")
        if board not in BOARDS:
            raise GestureError(f"{url}: the board's INFO names board {board!r}, not one of {', '.join(BOARDS)}: "
                               "is its firmware older than the transfer service?")
        try:
            package = build_package(model_dir, board)
        except DataError as e:
            raise GestureError(f"not pushed: {e}") from None
        resumes = [0]

        async def reconnect() -> Any:
            nonlocal transport
            await transport.close()
            resumes[0] += 1
            if on_resume is not None:
                on_resume(resumes[0])
            last: Exception | None = None
            for attempt in range(5):
                transport = make()
                try:
                    await transport.open()
                    return transport.client
                except GestureError as e:
                    last = e
                    await asyncio.sleep(0.5 * (attempt + 1))
            raise GestureError(f"the board disconnected during the push and did not come back: {last}")

        return await push_package(transport.client, package, progress=progress, reconnect=reconnect)
    finally:
        await transport.close()
