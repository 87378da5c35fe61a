"""The live feed: every decoded notification pushed to the browser as a Server-Sent Event.

Why not Streamlit itself: Streamlit only sends the browser something when a script (or a
fragment) reruns, and the browser asks for each rerun and redraws whole elements, so at 13
predictions/s a polled view painted about a third of them, 150-300 ms late
(docs/benchmarks.md, the previous view). Here the link thread hands each item to
:class:`LiveFeed` (a :meth:`dashboard.buffers.LiveBuffers.subscribe` subscriber) the moment it
is decoded; the feed encodes it once as JSON and writes it to every connected page over a plain
``text/event-stream`` response; the page's live view (:mod:`dashboard.live_view`) draws it on
the next animation frame. No rerun, no polling, no library on either side.

One small HTTP server (stdlib, a thread per connected page) per Streamlit server process,
listening on the page's own address (127.0.0.1 by default) on a port of its own. The feed's
path holds a random token that only the page knows (it is handed to the view as an argument),
so another local program cannot read the stream by guessing the port.

The link thread writes each event into the page's socket itself, without blocking
(``MSG_DONTWAIT``): handing it to the page's thread instead costs a GIL hand-over, and while
Streamlit runs a page script that hand-over waited tens of milliseconds (the benchmark's
notification -> in the page p95 dropped from ~70 to ~20 ms). Only what the socket does not take
at once is queued for the page's thread, which then writes in order until its queue is empty.
Everything is bounded: a page that stops reading (a frozen tab) fills its queue and is
disconnected (its EventSource reconnects and starts from a fresh snapshot), so a slow browser
never grows this process.

Events (one JSON object per ``data:`` line, ``type`` says which):

- ``prediction``: ``i`` running index (``snap``: sent again to a page that just connected), ``seq``, ``cls`` class index, ``name`` what the page shows
  (:func:`dashboard.charts.display_name`: a label, ``unknown`` or ``idle``), ``conf``, ``scores``
  (0..1 per class), ``rx`` host wall-clock receive time (s; the browser's ``Date.now()`` is the
  same clock on this machine, which is how the page measures notification -> painted), ``dev``
  device time (s)
- ``imu``: ``t`` device time of the first sample (s), ``dt`` sample period (s), ``g`` the
  accelerometer samples in g (``[[ax, ay, az], ...]``), ``rx``
- ``event``: the board's post-processor detected ``name`` (``i``, ``seq``, ``conf``, ``rx``)
- ``reset``: the board (re)connected; the device clock restarted
- ``hello``: sent first on every connection, ``labels`` (the names the current run knows)
"""
from __future__ import annotations

import json
import queue
import secrets
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence

import numpy as np

from capture import protocol as p
from dashboard.buffers import ConnectionStart, DetectionEvent, ImuBatch, LiveBuffers, LiveItem, PredictionEvent
from dashboard.charts import display_name, label_of

DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)  # 0 where there is none (Windows): every event is queued
QUEUE_ITEMS = 2000  # per page: ~18 s of 13 predictions/s + 100 IMU notifications/s before it is dropped
KEEPALIVE_S = 10.0  # a comment line this often keeps proxies and the page's "feed alive" check happy
SNAPSHOT_RAW_S = 10.0  # raw IMU sent to a page that (re)connects, so its trace is not empty
RETRY_MS = 1000  # the EventSource reconnection delay the page is told to use


def _encode(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n\n"


def _accel_g(counts: np.ndarray) -> list[list[float]]:
    """The accelerometer columns in g, rounded (the trace needs 1 mg, not 17 digits of JSON)."""
    if counts.size == 0:
        return []
    return np.round(p.counts_to_units(counts)[:, :3], 4).tolist()


@dataclass
class _Client:
    """One connected page. ``queued``: its thread owns the socket's byte order (the snapshot, or a
    backlog the socket would not take at once), so new events join the queue; otherwise the link
    thread writes them directly. ``lock`` guards the switch between the two."""

    sock: socket.socket | None = None
    items: queue.Queue[bytes | None] = field(default_factory=lambda: queue.Queue(QUEUE_ITEMS))
    lock: threading.Lock = field(default_factory=threading.Lock)
    queued: bool = True
    dropped: bool = False

    def offer(self, data: bytes) -> bool:
        """Send now if the socket takes it, else queue it; False if the queue is full."""
        with self.lock:
            if not self.queued and self.sock is not None:
                try:
                    n = self.sock.send(data, DONTWAIT)
                except BlockingIOError:
                    n = 0
                except OSError:  # the page went away: end its thread (it removes the page)
                    self.queued = True
                    _end(self)
                    return True
                if n == len(data):
                    return True
                data = data[n:]
                self.queued = True
            try:
                self.items.put_nowait(data)
            except queue.Full:
                return False
            return True

    def drained(self) -> None:
        """The page's thread wrote all it had: new events may go straight to the socket again."""
        with self.lock:
            if DONTWAIT and self.items.empty():
                self.queued = False

    def keepalive(self) -> bytes:
        """What the page's thread must write after a quiet period: the comment line, or what of it
        the socket did not take when sent directly (the page's thread then owns the order again)."""
        line = b": keepalive\n\n"
        with self.lock:
            if self.queued or self.sock is None:
                return line
            try:
                n = self.sock.send(line, DONTWAIT)
            except OSError:  # full (then the page is busy reading anyway) or gone (the write says so)
                return b""
            if n < len(line) and n > 0:
                self.queued = True
                return line[n:]
            return b""


class LiveFeed:
    """``start()`` serves ``http://HOST:port/live/<token>``; ``stop()`` ends it and every stream.

    ``labels`` (set by the page on every run) name the classes in prediction events, so a model
    with new labels is shown with them from the next prediction on.
    """

    def __init__(self, buffers: LiveBuffers, host: str = "127.0.0.1", port: int = 0) -> None:
        self.buffers = buffers
        self.host = host
        self.requested_port = port
        self.token = secrets.token_urlsafe(18)
        self.labels: tuple[str, ...] = ()
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.dropped_pages = 0  # pages disconnected because they stopped reading

    # ------------------------------------------------------------------ lifecycle
    @property
    def path(self) -> str:
        return f"/live/{self.token}"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the live feed is not started")
        return int(self._server.server_address[1])

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def start(self) -> "LiveFeed":
        feed = self

        class Handler(_FeedHandler):
            pass

        Handler.feed = feed
        server_cls = _Server6 if ":" in self.host else _Server
        self._server = server_cls((self.host, self.requested_port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="gesture-live-feed", daemon=True)
        self._thread.start()
        self._unsubscribe = self.buffers.subscribe(self._on_item)
        return self

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            _end(c)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def set_labels(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)  # one assignment: the link thread reads either the old or the new tuple

    # ------------------------------------------------------------------ link thread side
    def encode(self, item: LiveItem, snapshot: bool = False) -> bytes | None:
        """The event for one buffered item (None for an item the page does not draw). ``snapshot``
        marks a prediction sent again to a page that just connected: shown, not timed."""
        labels = self.labels
        if isinstance(item, PredictionEvent):
            ev = {"type": "prediction", "i": item.index, "seq": item.seq, "cls": item.class_index,
                  "name": display_name(item, labels), "conf": round(item.confidence, 4),
                  "scores": [round(s, 4) for s in item.scores], "rx": item.received, "dev": item.device_us / 1e6}
            if snapshot:
                ev["snap"] = True
            return _encode(ev)
        if isinstance(item, ImuBatch):
            return _encode({"type": "imu", "t": item.device_us / 1e6, "dt": 1.0 / item.rate_hz,
                            "g": _accel_g(item.counts), "rx": item.received})
        if isinstance(item, DetectionEvent):
            return _encode({"type": "event", "i": item.index, "seq": item.seq, "cls": item.class_index,
                            "name": label_of(item.class_index, labels), "conf": round(item.confidence, 4),
                            "rx": item.received})
        if isinstance(item, ConnectionStart):
            return _encode({"type": "reset", "rate": item.rate_hz})
        return None

    def _on_item(self, item: LiveItem) -> None:
        data = self.encode(item)
        if data is None:
            return
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            if not c.offer(data):  # this page stopped reading: let it go rather than hold its backlog
                self._drop(c)

    def _drop(self, client: _Client) -> None:
        with self._lock:
            if client not in self._clients:
                return
            self._clients.remove(client)
            self.dropped_pages += 1
        client.dropped = True
        _end(client)
        if client.sock is not None:  # its thread may be blocked writing to it: that write fails now
            try:
                client.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ------------------------------------------------------------------ page side (handler threads)
    def _join(self, sock: socket.socket) -> tuple[_Client, bytes]:
        """A new page: subscribe first, then take the snapshot, so nothing falls between the two
        (an item in both is told apart by the page: predictions by index, samples by device time)."""
        client = _Client(sock)
        with self._lock:
            self._clients.append(client)
        first = [f"retry: {RETRY_MS}\n\n".encode(), _encode({"type": "hello", "labels": list(self.labels)})]
        snap = self.buffers.snapshot(last=1)
        raw = self.buffers.raw(seconds=SNAPSHOT_RAW_S)
        if raw.n:
            first.append(_encode({"type": "imu", "t": int(raw.device_us[0]) / 1e6, "dt": 1.0 / raw.rate_hz,
                                  "g": _accel_g(raw.counts), "rx": None}))
        if snap.latest is not None:
            first.append(self.encode(snap.latest, snapshot=True) or b"")
        return client, b"".join(first)

    def _leave(self, client: _Client) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)


def _end(client: _Client) -> None:
    """Wake the client's writer with the end marker (emptying its queue first if it is full)."""
    while True:
        try:
            client.items.put_nowait(None)
            return
        except queue.Full:
            try:
                client.items.get_nowait()
            except queue.Empty:
                pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a page's stream thread never keeps the dashboard alive
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _FeedHandler(BaseHTTPRequestHandler):
    """GET /live/<token>: the event stream; anything else: 404 (no listing, no other files)."""

    feed: LiveFeed
    server_version = "gesture-kit-live"

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        feed = self.feed
        if self.path.split("?", 1)[0] != feed.path:
            self.send_error(404)
            return
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each event leaves at once
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        # the page's view is an iframe of the Streamlit server (another port, so another origin);
        # the token in the path, not the origin, is what keeps the stream private
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        client, first = feed._join(self.connection)
        try:
            self.wfile.write(first)
            client.drained()
            while True:
                try:
                    item = client.items.get(timeout=KEEPALIVE_S)
                except queue.Empty:
                    self.wfile.write(client.keepalive())
                    client.drained()
                    continue
                if item is None:
                    return
                chunk = [item]
                while True:  # whatever else is already waiting goes in the same write
                    try:
                        more = client.items.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self.wfile.write(b"".join(chunk))
                        return
                    chunk.append(more)
                self.wfile.write(b"".join(chunk))
                client.drained()
        except OSError:  # the page went away (closed tab, reload): its EventSource is gone
            pass
        finally:
            feed._leave(client)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        pass  # one line per page load on Streamlit's console helps nobody
