"""What a virtual board "senses": event sources in device time.

An event source is any object with ``info()`` (the key/values the firmware puts in its INFO
message) and ``events()`` (an iterator of :data:`Event` in device-time order). The link that
paces, encodes and damages the stream lives apart (``capture.virtual.link``), so one source can
be played over a serial pty, as BLE notifications, or straight into a test, and the classifier
firmware's behaviour (``training.board_sim.ClassifierSource``) is just another source.

Sources emit exactly what the capture firmware would: IMU payloads of ``samples_per_frame(rate)``
int16 samples (the firmware batches to about 100 frames/s), with ``t_us`` the device time of the
batch's first sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from capture import protocol as p
from capture.boards import BOARDS, DEFAULT_BOARD
from capture.device_info import capture_info
from capture.takes import SIMULATED_SENSOR, Take, read_takes

Event = tuple[int, p.FrameType, bytes]  # (device time in us, frame type, exact protocol payload)

REST_COUNTS = (0, 0, int(p.ACCEL_LSB_PER_G))  # board lying flat: +1 g on z
NOISE_COUNTS = BOARDS[DEFAULT_BOARD].accel_noise_counts  # the board a virtual board stands in for


class EventSource(Protocol):
    def info(self) -> dict[str, object]: ...

    def events(self) -> Iterator[Event]: ...


def imu_events(counts: np.ndarray, rate_hz: float, first: int = 0) -> Iterator[Event]:
    """Cut a (n, C) int16 stream, whose first sample is sample ``first`` of the stream, into IMU
    events the way the firmware batches samples; each event's time is rounded once from the
    sample index (rounding a block's start and then each offset would drift by a microsecond)."""
    per = p.samples_per_frame(rate_hz)
    for k in range(0, len(counts), per):
        t_us = int(round((first + k) * 1e6 / rate_hz))
        yield t_us, p.FrameType.IMU, p.encode_imu(counts[k:k + per])


def imu_stream_at_rate(counts: np.ndarray, src_hz: float, dst_hz: float) -> np.ndarray:
    """What an IMU running at ``dst_hz`` would have delivered: float linear interpolation of the
    recorded stream (the simulator's input; not the board's Q16 ``training.preprocess.resample``)."""
    if abs(src_hz - dst_hz) < 1e-9 or len(counts) < 2:
        return np.asarray(counts, dtype=np.int16)
    n_out = int(np.floor((len(counts) - 1) * dst_hz / src_hz)) + 1
    t_out = np.arange(n_out) * (src_hz / dst_hz)
    t_in = np.arange(len(counts))
    cols = [np.interp(t_out, t_in, counts[:, c].astype(np.float64)) for c in range(counts.shape[1])]
    return np.clip(np.rint(np.stack(cols, axis=1)), -32768, 32767).astype(np.int16)


def take_as_imu_counts(take: Take, channels: int) -> np.ndarray:
    """A take as the IMU's int16 counts with ``channels`` columns (gyro zero when the take has none);
    all channels at the take's rate, unlike ``training.preprocess.take_counts`` (model channels, model rate)."""
    counts = p.units_to_counts(take.values)
    if channels == 6 and counts.shape[1] == 3:
        counts = np.hstack([counts, np.zeros_like(counts)])
    return counts[:, :channels]


def rest(n: int, channels: int, rng: np.random.Generator, level: np.ndarray | None = None) -> np.ndarray:
    """``n`` samples of a board at rest (gravity plus sensor noise), optionally at ``level``."""
    base = np.zeros(channels)
    base[:3] = REST_COUNTS if level is None else level[:3]
    x = base + rng.normal(0.0, NOISE_COUNTS, (n, channels))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class Segment:
    """Where a replayed take sits in the stream (for tests and the classifier source)."""

    label: str
    path: Path | None
    start_sample: int  # index of its first sample in the emitted stream
    counts: np.ndarray  # (n, C) int16 exactly as emitted


class BlockSource:
    """A source that produces its IMU stream as blocks (rest, a take, rest, ...): ``stream()``
    yields ``(counts, Segment or None)``; ``events()`` frames it the way the firmware does."""

    rate_hz: float
    channels: int

    def stream(self) -> Iterator[tuple[np.ndarray, Segment | None]]:
        raise NotImplementedError

    def counts(self) -> np.ndarray:
        """The whole (finite) stream as one (n, C) int16 array: what a replaying IMU is loaded with."""
        return np.vstack([block for block, _ in self.stream()]).astype(np.int16)

    def events(self) -> Iterator[Event]:
        """Full frames of ``samples_per_frame`` samples across block boundaries, like the firmware."""
        per = p.samples_per_frame(self.rate_hz)
        pending = np.zeros((0, self.channels), np.int16)
        emitted = 0
        for block, _ in self.stream():
            pending = np.vstack([pending, block])
            whole = len(pending) // per * per
            if whole:
                yield from imu_events(pending[:whole], self.rate_hz, first=emitted)
                emitted += whole
                pending = pending[whole:]
        if len(pending):
            yield from imu_events(pending, self.rate_hz, first=emitted)


class ReplaySource(BlockSource):
    """Replays a dataset's takes one after another, with the board at rest in between.

    ``rate_hz=None`` replays every take at its own rate (so a capture of it gives back the very
    same counts); otherwise takes are resampled to ``rate_hz``, as an IMU running at that rate
    would have seen them. ``loop`` repeats the shuffled list forever (the demo); ``labels`` keeps
    only those labels; ``limit`` caps the number of takes.
    """

    def __init__(self, data_dir: str | Path, *, rate_hz: float | None = p.DEFAULT_RATE_HZ, channels: int = 6,
                 rest_s: float = 1.0, labels: list[str] | None = None, limit: int | None = None,
                 loop: bool = False, shuffle: bool = False, seed: int = 0) -> None:
        takes, _ = read_takes(data_dir)
        if labels:
            takes = [t for t in takes if t.label in labels]
        rng = np.random.default_rng(seed)
        if shuffle:
            takes = [takes[i] for i in rng.permutation(len(takes))]
        self.takes = takes[:limit] if limit else takes
        if not self.takes:
            from capture.errors import DataError
            raise DataError(data_dir, f"no takes to replay (labels {labels})" if labels else "no takes to replay")
        rates = {t.rate_hz for t in self.takes}
        if rate_hz is None and len(rates) != 1:
            raise ValueError(f"takes have several rates {sorted(rates)}; pass rate_hz to resample them")
        self.rate_hz = float(rate_hz if rate_hz is not None else rates.pop())
        self.channels = channels
        self.rest_s = rest_s
        self.loop = loop
        self.seed = seed
        self.segments: list[Segment] = []  # filled as events() runs

    def info(self) -> dict[str, object]:
        return capture_info(self.rate_hz, self.channels)

    def stream(self) -> Iterator[tuple[np.ndarray, Segment | None]]:
        """Blocks of samples: rest, take, rest, take, ... (segment is None for rest)."""
        rng = np.random.default_rng(self.seed)
        n_rest = max(1, int(round(self.rest_s * self.rate_hz)))
        pos = 0
        while True:
            for take in self.takes:
                block = rest(n_rest, self.channels, rng)
                yield block, None
                pos += len(block)
                counts = imu_stream_at_rate(take_as_imu_counts(take, self.channels), take.rate_hz, self.rate_hz)
                seg = Segment(take.label, take.path, pos, counts)
                self.segments.append(seg)
                yield counts, seg
                pos += len(counts)
            if not self.loop:
                block = rest(n_rest, self.channels, rng)
                yield block, None
                return


class HandSource(BlockSource):
    """The simulated hand (:mod:`capture.virtual.hand`) performing gestures, with rest in between.

    Not a recording: every take is computed from a physical model of a hand holding the board's
    IMU (its rate, range, noise). One simulated person performs each label once, in a shuffled
    order, then the next person takes over (or always ``person``); ``loop`` goes on forever,
    otherwise ``limit`` takes (default: each label once).
    """

    def __init__(self, *, board: str = DEFAULT_BOARD, rate_hz: float | None = None, channels: int = 6,
                 labels: list[str] | None = None, people: int = 8, rest_s: float = 1.0, limit: int | None = None,
                 loop: bool = True, seed: int = 0, person: int | None = None) -> None:
        from capture.virtual import hand

        self.labels = list(labels or hand.LABELS)
        unknown = [label for label in self.labels if label not in hand.LABELS]
        if unknown:
            from capture.errors import GestureError
            raise GestureError(f"the simulated hand performs {', '.join(hand.LABELS)}; it cannot do {', '.join(unknown)}")
        self.hand = hand.Hand(board, seed, rate_hz)
        self.board = board
        self.rate_hz = self.hand.imu.rate_hz
        self.channels = channels
        self.people = people
        self.person = person  # one simulated person throughout (``gesture demo`` records each with --subject)
        self.rest_s = rest_s
        self.limit = limit if limit is not None else (None if loop else len(self.labels))
        self.seed = seed
        self.segments: list[Segment] = []

    def info(self) -> dict[str, object]:
        return capture_info(self.rate_hz, self.channels, board=self.board, sensor=SIMULATED_SENSOR)

    def _counts(self, values: np.ndarray) -> np.ndarray:
        return p.units_to_counts(values)[:, :self.channels]

    def stream(self) -> Iterator[tuple[np.ndarray, Segment | None]]:
        rng = np.random.default_rng([self.seed, 0x48534F55])
        pos = done = 0
        while True:
            who = self.person if self.person is not None else int(rng.integers(self.people))
            for label in rng.permutation(self.labels):
                if self.limit is not None and done >= self.limit:
                    yield self._counts(self.hand.rest(self.rest_s, who, done)), None
                    return
                block = self._counts(self.hand.rest(self.rest_s * rng.uniform(0.6, 1.4), who, done))
                yield block, None
                pos += len(block)
                counts = self._counts(self.hand.take(str(label), who, 1000 + done).values)
                seg = Segment(str(label), None, pos, counts)
                self.segments.append(seg)
                yield counts, seg
                pos += len(counts)
                done += 1


class IdleSource:
    """A board lying on the desk: gravity and sensor noise, forever (or ``seconds``)."""

    def __init__(self, *, rate_hz: float = p.DEFAULT_RATE_HZ, channels: int = 6, seconds: float | None = None,
                 seed: int = 0) -> None:
        self.rate_hz = float(rate_hz)
        self.channels = channels
        self.seconds = seconds
        self.seed = seed

    def info(self) -> dict[str, object]:
        return capture_info(self.rate_hz, self.channels)

    def events(self) -> Iterator[Event]:
        rng = np.random.default_rng(self.seed)
        per = p.samples_per_frame(self.rate_hz)
        total = None if self.seconds is None else int(round(self.seconds * self.rate_hz))
        k = 0
        while total is None or k < total:
            n = per if total is None else min(per, total - k)
            yield int(round(k * 1e6 / self.rate_hz)), p.FrameType.IMU, p.encode_imu(rest(n, self.channels, rng))
            k += n
