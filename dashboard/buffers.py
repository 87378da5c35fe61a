"""What the dashboard remembers of the live stream: bounded buffers and link-health counters.

The link thread writes here (on its asyncio loop) and every page session reads consistent copies
(:meth:`LiveBuffers.snapshot`) from the Streamlit script thread, so all access goes through one
lock. Everything is bounded, by count and by device time, because the page must run for hours
without its memory growing: the last ``max_predictions`` predictions and the last
``raw_seconds`` of raw IMU samples, nothing more.

Device time (``t_us``) is a u32 that wraps every 71.6 minutes; it is unwrapped here into a
monotonically increasing int so that windows and timelines never jump backwards. Host receive
times are wall-clock (``time.time()``), not monotonic, so that a browser (``Date.now()``) can
compute the notification -> visible latency against the same clock.

Every new item is also handed to subscribers (:meth:`LiveBuffers.subscribe`, outside the lock, on
the link thread): that is how :mod:`dashboard.feed` pushes each notification to the browser the
moment it is decoded, instead of waiting for a page rerun to poll a snapshot.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

from capture import protocol as p
from capture.transport.base import DeviceClock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictionEvent:
    """One PREDICTION notification, decoded."""

    seq: int  # u16 from the board
    device_us: int  # unwrapped device time the board stamped on the prediction
    class_index: int  # protocol.UNKNOWN_CLASS when the board rejected the window
    confidence: float  # 0..1
    scores: tuple[float, ...]  # 0..1 per class
    received: float  # host wall clock (time.time()) when the notification arrived
    index: int = 0  # running number since the buffers were created (never wraps)

    @property
    def unknown(self) -> bool:
        return self.class_index == p.UNKNOWN_CLASS


@dataclass(frozen=True)
class DetectionEvent:
    """One EVENT notification: the board's post-processor detected a gesture."""

    seq: int
    device_us: int
    class_index: int
    confidence: float  # 0..1, the post-processor's mean score
    received: float
    index: int = 0  # running number since the buffers were created


@dataclass(frozen=True)
class ImuBatch:
    """One IMU notification as stored: what a subscriber needs to draw it without another lookup."""

    device_us: int  # unwrapped device time of the first sample
    counts: np.ndarray  # int16 (n, channels), a private copy (never written after)
    rate_hz: float
    received: float  # host wall clock


@dataclass(frozen=True)
class ConnectionStart:
    """A (re)connection: the device clock restarted, so a drawn raw trace must start afresh."""

    rate_hz: float
    channels: tuple[str, ...]


LiveItem = Union[PredictionEvent, DetectionEvent, ImuBatch, ConnectionStart]
Subscriber = Callable[[LiveItem], None]


@dataclass(frozen=True)
class RawWindow:
    """A copy of raw IMU samples: per-sample device time and int16 counts (n, channels)."""

    device_us: np.ndarray  # int64, unwrapped
    counts: np.ndarray  # int16 (n, channels)
    rate_hz: float
    channels: tuple[str, ...]

    @property
    def n(self) -> int:
        return int(self.counts.shape[0])


@dataclass(frozen=True)
class LiveSnapshot:
    """Everything a page draws, copied under the lock so the page never sees a half update."""

    predictions: tuple[PredictionEvent, ...]
    counts: dict[int, int]  # predictions per class index since the connection started
    n_predictions: int  # running total (the last prediction's ``index`` + 1)
    n_imu: int
    notifications_per_s: float
    predictions_per_s: float
    raw_samples: int  # samples held in the raw buffer
    decode_errors: int
    last_received: float | None  # wall clock of the newest notification of any type
    logs: tuple[str, ...] = field(default_factory=tuple)
    events: tuple[DetectionEvent, ...] = ()  # the board's detected gestures, newest last
    n_events: int = 0  # detected since the connection started
    false_activations: int = 0  # of those, marked false by the user (this connection)
    marked: frozenset[int] = frozenset()  # indices of the events marked false

    @property
    def latest(self) -> PredictionEvent | None:
        return self.predictions[-1] if self.predictions else None


class LiveBuffers:
    """Bounded, thread-safe memory of the live stream (one per link)."""

    RATE_WINDOW_S = 2.0  # notifications/s are counted over the last 2 s

    def __init__(self, max_predictions: int = 600, raw_seconds: float = 10.0, max_logs: int = 50) -> None:
        self.max_predictions = max_predictions
        self.raw_seconds = raw_seconds
        self._lock = threading.Lock()
        self._predictions: deque[PredictionEvent] = deque(maxlen=max_predictions)
        # raw IMU batches (first-sample device time, counts); trimmed to raw_seconds of device time,
        # and capped in count in case the device clock misbehaves
        self._raw: deque[tuple[int, np.ndarray]] = deque(maxlen=int(raw_seconds * 1000))
        self._raw_samples = 0
        self._arrivals: deque[tuple[float, bool]] = deque(maxlen=20_000)  # (monotonic, is_prediction)
        self._logs: deque[str] = deque(maxlen=max_logs)
        self._counts: Counter[int] = Counter()
        self._events: deque[DetectionEvent] = deque(maxlen=200)
        self._n_events = 0  # this connection
        self._n_events_total = 0
        self._marked: set[int] = set()  # event indices marked as false activations (this connection)
        self._n_predictions = 0
        self._n_imu = 0
        self._decode_errors = 0
        self._last_received: float | None = None
        self._clock = DeviceClock()
        self.rate_hz: float = float(p.DEFAULT_RATE_HZ)
        self.channels: tuple[str, ...] = ()
        self._subscribers: list[Subscriber] = []

    # ------------------------------------------------------------------ subscribers (the live feed)
    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(item)`` for every item added from now on (on the writer's thread, outside the
        lock, so ``fn`` may read the buffers; it must be quick and must not block). Returns the
        function that unsubscribes."""
        with self._lock:
            self._subscribers = [*self._subscribers, fn]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not fn]
        return unsubscribe

    def _publish(self, item: LiveItem) -> None:
        for fn in self._subscribers:  # a copied-on-write list: safe to iterate without the lock
            try:
                fn(item)
            except Exception:  # a subscriber's bug must not break decoding for the page
                log.exception("live-buffer subscriber failed")

    # ------------------------------------------------------------------ writer side (link thread)
    def start_connection(self, rate_hz: float | None, channels: tuple[str, ...]) -> None:
        """A (re)connection: the device clock restarts, so raw samples and counts start afresh.

        The prediction history is kept: the timeline shows what happened before the drop.
        """
        with self._lock:
            self._raw.clear()
            self._raw_samples = 0
            self._counts.clear()
            self._n_events = 0
            self._marked.clear()
            self._clock = DeviceClock()
            if rate_hz:
                self.rate_hz = float(rate_hz)
            self.channels = tuple(channels)
            start = ConnectionStart(self.rate_hz, self.channels)
        self._publish(start)

    def add_prediction(self, seq: int, t_us: int, pred: p.Prediction, received: float) -> PredictionEvent:
        with self._lock:
            ev = PredictionEvent(seq=seq, device_us=self._clock(t_us), class_index=pred.class_index,
                                 confidence=pred.confidence / 255.0, scores=tuple(s / 255.0 for s in pred.scores),
                                 received=received, index=self._n_predictions)
            self._predictions.append(ev)
            self._counts[pred.class_index] += 1
            self._n_predictions += 1
            self._arrived(True, received)
        self._publish(ev)
        return ev

    def add_event(self, seq: int, t_us: int, event: p.Event, received: float) -> DetectionEvent:
        with self._lock:
            ev = DetectionEvent(seq=seq, device_us=self._clock(t_us), class_index=event.class_index,
                                confidence=event.score / 255.0, received=received, index=self._n_events_total)
            self._events.append(ev)
            self._n_events += 1
            self._n_events_total += 1
            self._last_received = received
        self._publish(ev)
        return ev

    def mark_false(self, index: int) -> bool:
        """The user says event ``index`` was a false activation; False if it is not held (or already marked)."""
        with self._lock:
            if index in self._marked or not any(e.index == index for e in self._events):
                return False
            self._marked.add(index)
            return True

    def add_imu(self, t_us: int, counts: np.ndarray, received: float) -> ImuBatch:
        with self._lock:
            t = self._clock(t_us)
            if not self.channels or len(self.channels) != counts.shape[1]:
                # channels normally come from INFO; without it, name them by position
                self.channels = ("ax", "ay", "az", "gx", "gy", "gz")[: counts.shape[1]]
                self._raw.clear()
                self._raw_samples = 0
            batch = ImuBatch(t, np.array(counts, dtype=np.int16, copy=True), self.rate_hz, received)
            self._raw.append((t, batch.counts))
            self._raw_samples += len(counts)
            horizon = t - int(self.raw_seconds * 1e6)
            while self._raw and (self._raw[0][0] < horizon or len(self._raw) == self._raw.maxlen):
                _, old = self._raw.popleft()
                self._raw_samples -= len(old)
            self._n_imu += 1
            self._arrived(False, received)
        self._publish(batch)
        return batch

    def add_log(self, text: str) -> None:
        with self._lock:
            self._logs.append(text)

    def decode_error(self) -> None:
        with self._lock:
            self._decode_errors += 1

    def _arrived(self, is_prediction: bool, received: float) -> None:
        self._arrivals.append((time.monotonic(), is_prediction))
        self._last_received = received

    # ------------------------------------------------------------------ reader side (pages)
    def snapshot(self, last: int | None = None) -> LiveSnapshot:
        """A consistent copy; ``last`` limits how many recent predictions are copied."""
        with self._lock:
            now = time.monotonic()
            while self._arrivals and self._arrivals[0][0] < now - self.RATE_WINDOW_S:
                self._arrivals.popleft()
            n_all = len(self._arrivals)
            n_pred = sum(1 for _, is_pred in self._arrivals if is_pred)
            if last is None:
                preds = tuple(self._predictions)
            else:  # the page's fast refresh wants only the newest: do not copy 600 events for it
                k = min(last, len(self._predictions))
                preds = tuple(self._predictions[-i] for i in range(k, 0, -1))
            return LiveSnapshot(
                predictions=preds, counts=dict(self._counts), n_predictions=self._n_predictions,
                n_imu=self._n_imu, notifications_per_s=n_all / self.RATE_WINDOW_S,
                predictions_per_s=n_pred / self.RATE_WINDOW_S, raw_samples=self._raw_samples,
                decode_errors=self._decode_errors, last_received=self._last_received, logs=tuple(self._logs),
                events=tuple(self._events), n_events=self._n_events, false_activations=len(self._marked),
                marked=frozenset(self._marked))

    def raw(self, seconds: float | None = None, end_us: int | None = None) -> RawWindow:
        """Raw samples of the last ``seconds`` (all held if None), ending at device time ``end_us``
        (inclusive; the newest sample if None). Per-sample times come from the batch time and the
        IMU rate, exactly as the firmware stamps batches."""
        with self._lock:
            batches = list(self._raw)
            rate = self.rate_hz
            channels = self.channels
        if not batches:
            return RawWindow(np.zeros(0, np.int64), np.zeros((0, len(channels) or 3), np.int16), rate, channels)
        dt = 1e6 / rate
        times = np.concatenate([t0 + np.rint(np.arange(len(c)) * dt).astype(np.int64) for t0, c in batches])
        counts = np.concatenate([c for _, c in batches])
        keep = np.ones(len(times), bool)
        if end_us is not None:
            keep &= times <= end_us
        if seconds is not None:
            last = end_us if end_us is not None else int(times[-1])
            keep &= times > last - int(round(seconds * 1e6))
        return RawWindow(times[keep], counts[keep], rate, channels)
