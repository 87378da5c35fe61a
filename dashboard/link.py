"""The dashboard's connection to a board: one background thread with its own asyncio loop.

Streamlit reruns the page script in its own threads, many times a second; bleak needs one
long-lived event loop that owns the ``BleakClient``. So a :class:`LinkThread` (one per Streamlit
server process, made with ``st.cache_resource``) runs a daemon thread with an asyncio loop that
owns the transport, reconnects with exponential backoff when the board drops, and decodes every
notification into :class:`dashboard.buffers.LiveBuffers`. Pages never touch asyncio: they call
the thread-safe methods here (``connect``, ``disconnect``, ``scan``, ``status``) and read
``buffers.snapshot()`` from a ``st.fragment(run_every=...)``.

State machine (:class:`LinkState`)::

    idle --connect--> connecting --open ok--> connected --device lost--> reconnecting(attempt, next in s)
                          |  open failed ----------------------------------> reconnecting
                          |  no Bluetooth on this machine ---------------> no_bluetooth (no retry)
    reconnecting --backoff elapsed--> connecting ... after max_attempts --> lost(reason)
    any --disconnect--> idle
"""
from __future__ import annotations

import asyncio
import enum
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable, TypeVar

from capture import protocol as p
from capture.errors import GestureError
from capture.transport import Message, Transport, open_transport
from capture.transport.ble import BleFound, NoBluetoothError, scan
from dashboard.buffers import LiveBuffers

NO_BLUETOOTH_HINT = ("Use `gesture dashboard --simulate` to run the dashboard against the virtual board, "
                     "or connect the board over USB serial.")


class LinkState(str, enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    LOST = "lost"
    NO_BLUETOOTH = "no_bluetooth"


@dataclass(frozen=True)
class LinkStatus:
    """What the connection panel shows; an immutable copy, safe to hand to any thread."""

    state: LinkState = LinkState.IDLE
    target: str | None = None
    info: dict[str, str] = field(default_factory=dict)
    reason: str = ""  # why the link dropped / failed (device lost, no Bluetooth, open error)
    address: str | None = None  # of the connected device (a name matches any board advertising it)
    attempt: int = 0  # reconnection attempt number (1 = first retry)
    next_attempt_at: float | None = None  # time.monotonic() of the next attempt
    frames_lost: int = 0  # sequence gaps since the link thread started (all connections)
    disconnects: int = 0  # unsolicited drops since the link thread started
    bad_payloads: int = 0
    since: float = field(default_factory=time.monotonic)  # when this state began

    def next_attempt_in(self, now: float | None = None) -> float | None:
        if self.next_attempt_at is None:
            return None
        return max(0.0, self.next_attempt_at - (time.monotonic() if now is None else now))


@dataclass(frozen=True)
class Backoff:
    """Reconnection delays: initial * factor**(attempt-1), capped; give up after max_attempts."""

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 10.0
    max_attempts: int | None = 8  # None = retry forever

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))


def no_bluetooth_message(reason: str) -> str:
    return f"No Bluetooth adapter found on this machine ({reason}). {NO_BLUETOOTH_HINT}"


Opener = Callable[[str], Transport]
T = TypeVar("T")


class LinkThread:
    """Owns the transport on a private asyncio loop in a daemon thread; see the module docstring.

    ``opener`` turns a target URL into a Transport (``capture.transport.open_transport``; tests
    pass their own). ``open_timeout`` bounds one connection attempt.
    """

    def __init__(self, *, opener: Opener | None = None, backoff: Backoff = Backoff(),
                 buffers: LiveBuffers | None = None, open_timeout: float = 30.0) -> None:
        self._opener = opener
        self.backoff = backoff
        self.open_timeout = open_timeout
        self.buffers = buffers or LiveBuffers()
        self._lock = threading.Lock()
        self._status = LinkStatus()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gesture-link", daemon=True)
        self._thread.start()
        self._task: asyncio.Task | None = None
        self._transport: Transport | None = None
        self._lost_before = 0  # frames lost on transports already closed
        self._bad_before = 0
        self._disconnects = 0
        self._stopped = False

    # ------------------------------------------------------------------ page-side API (any thread)
    @property
    def status(self) -> LinkStatus:
        with self._lock:
            st = self._status
            t = self._transport
        if t is not None:
            st = replace(st, frames_lost=self._lost_before + t.stats.frames_lost,
                         bad_payloads=self._bad_before + getattr(t.stats, "bad_payloads", 0))
        return st

    @property
    def transport(self) -> Transport | None:
        return self._transport

    def connect(self, target: str) -> None:
        """Start (or restart) connecting to ``target`` (a transport URL); returns at once."""
        self._call(self._start(target)).result(timeout=30)  # closing the previous link may take 10 s

    def disconnect(self) -> None:
        """Close the link and go idle (waits for the transport to close, up to 10 s)."""
        self._call(self._stop_task(LinkState.IDLE)).result(timeout=30)

    def scan(self, timeout: float = 5.0) -> list[BleFound]:
        """Boards advertising the kit's service. Raises NoBluetoothError without an adapter."""
        return self._call(self._scan(timeout)).result(timeout=timeout + 10)

    def send(self, cmd: p.Command, arg: int = 0) -> None:
        t = self._transport
        if t is None:
            raise GestureError(f"cannot send {p.Command(cmd).name}: no board connected")
        self._call(t.send(cmd, arg)).result(timeout=10)

    def submit(self, job: Callable[[Transport], Awaitable[T]]) -> Future:
        """Run ``job(transport)`` on the link's loop, over the open connection (the dashboard's
        push: a board takes one central, so the push goes through the link the page watches).
        Returns a concurrent Future; GestureError when no board is connected."""
        t = self._transport
        if t is None or self.status.state is not LinkState.CONNECTED:
            raise GestureError("no board connected")
        return self._call(job(t))

    def stop(self) -> None:
        """Disconnect and end the thread (the LinkThread cannot be used afterwards)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._call(self._stop_task(LinkState.IDLE)).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    # ------------------------------------------------------------------ loop side
    def _call(self, coro) -> Future:
        if self._stopped and not self._thread.is_alive():
            coro.close()
            raise GestureError("the dashboard's link thread has stopped")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _set(self, state: LinkState, **changes: object) -> None:
        with self._lock:
            base = self._status
            keep = {"target": base.target, "info": base.info, "frames_lost": base.frames_lost,
                    "disconnects": self._disconnects, "bad_payloads": base.bad_payloads}
            keep.update(changes)
            self._status = LinkStatus(state=state, **keep)  # type: ignore[arg-type]

    async def _start(self, target: str) -> None:
        await self._stop_task(LinkState.CONNECTING)
        self._set(LinkState.CONNECTING, target=target, info={})
        self._task = asyncio.create_task(self._run(target))

    async def _stop_task(self, final: LinkState) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self._close_transport()
        if final is LinkState.IDLE:
            self._set(LinkState.IDLE, info={}, reason="")

    async def _close_transport(self) -> None:
        t, self._transport = self._transport, None
        if t is None:
            return
        self._lost_before += t.stats.frames_lost
        self._bad_before += getattr(t.stats, "bad_payloads", 0)
        try:
            await asyncio.wait_for(t.close(), timeout=10)
        except Exception:  # closing a link that already died must not take the thread down
            pass
        with self._lock:
            self._status = replace(self._status, frames_lost=self._lost_before, bad_payloads=self._bad_before)

    async def _run(self, target: str) -> None:
        """Connect, stay connected, reconnect with backoff; ends in no_bluetooth or lost."""
        attempt = 0
        reason = ""
        while True:
            if attempt:
                if self.backoff.max_attempts is not None and attempt > self.backoff.max_attempts:
                    self._set(LinkState.LOST, reason=f"{reason} (gave up after {attempt - 1} attempts)",
                              attempt=attempt - 1)
                    return
                delay = self.backoff.delay(attempt)
                self._set(LinkState.RECONNECTING, reason=reason, attempt=attempt,
                          next_attempt_at=time.monotonic() + delay)
                await asyncio.sleep(delay)
                self._set(LinkState.CONNECTING, reason=reason, attempt=attempt)
            dropped = asyncio.Event()
            why: list[str] = []
            try:
                transport = (self._opener or open_transport)(target)
            except GestureError as e:  # a malformed URL will not get better by retrying
                self._set(LinkState.LOST, reason=str(e))
                return
            transport.on_message(self._on_message)

            def on_drop(r: str, ev: asyncio.Event = dropped, box: list[str] = why) -> None:
                box.append(r)
                self._loop.call_soon_threadsafe(ev.set)

            transport.on_disconnect(on_drop)
            self._transport = transport
            try:
                info = await asyncio.wait_for(transport.open(), timeout=self.open_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure is shown, then retried
                await self._close_transport()
                if isinstance(e, NoBluetoothError):
                    self._set(LinkState.NO_BLUETOOTH, reason=no_bluetooth_message(e.reason))
                    return
                reason = str(e) or type(e).__name__
                if isinstance(e, asyncio.TimeoutError):
                    reason = f"no answer within {self.open_timeout:g} s"
                attempt += 1
                continue
            self.buffers.start_connection(_rate(info), _channels(info))
            attempt = 0
            self._set(LinkState.CONNECTED, info=dict(info), reason="", address=getattr(transport, "address", None))
            await dropped.wait()
            self._disconnects += 1
            reason = f"device lost: {why[0] if why else 'disconnected'}"
            await self._close_transport()
            attempt = 1

    def _on_message(self, msg: Message) -> None:
        """Decode one notification into the buffers (runs on the loop, must never raise)."""
        # the transport stamps arrival on the monotonic clock; pages compare with wall clocks
        received = time.time() - (time.monotonic() - msg.received)
        try:
            if msg.type == p.FrameType.PREDICTION:
                self.buffers.add_prediction(msg.seq, msg.t_us, p.decode_prediction(msg.payload), received)
            elif msg.type == p.FrameType.IMU:
                self.buffers.add_imu(msg.t_us, p.decode_imu(msg.payload), received)
            elif msg.type == p.FrameType.EVENT:
                self.buffers.add_event(msg.seq, msg.t_us, p.decode_event(msg.payload), received)
            elif msg.type == p.FrameType.INFO:
                with self._lock:
                    self._status = replace(self._status, info=p.decode_info(msg.payload))
            elif msg.type == p.FrameType.LOG:
                self.buffers.add_log(msg.payload.decode("utf-8", "replace"))
        except ValueError:
            self.buffers.decode_error()

    async def _scan(self, timeout: float) -> list[BleFound]:
        try:
            return await scan(timeout)
        except NoBluetoothError as e:  # the page's wording, with what to do instead
            raise NoBluetoothError(no_bluetooth_message(e.reason), e.reason) from None
        except GestureError as e:
            raise GestureError(f"BLE scan failed: {e}") from None


def _rate(info: dict[str, str]) -> float | None:
    try:
        return float(info.get("rate", ""))
    except ValueError:
        return None


def _channels(info: dict[str, str]) -> tuple[str, ...]:
    return tuple(c for c in info.get("ch", "").split(",") if c)
