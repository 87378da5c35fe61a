"""Continuous recordings: one long IMU stream with its gesture events marked.

A take is one cut gesture; a *stream* is what the board actually sees: minutes to hours of
ordinary life, with the gestures (if any) somewhere in it. ``gesture calibrate`` replays streams
through the board's pipeline to count false activations per hour and missed gestures.
A stream is a folder (the same family as a dataset: CSV in g and deg/s, a JSON manifest)::

    walk_2026-12-06/
        stream.json         {"format": "gesture-stream/1", "rate_hz": 119, "channels": [...], ...}
        chunk_00000.csv     t_ms,ax,ay,az[,gx,gy,gz]   t_ms since the start of the *stream*
        chunk_00001.csv     ... (one per `chunk_s` seconds, written whole: a crash loses at most
                            the chunk being filled, never a written one)
        events.csv          onset_ms,label[,end_ms]   one row per gesture performed (rewritten
                            whole after each mark); absent or empty: a negative (idle) stream

This module is the one owner of that format: the continuous recorder, the generator that builds
streams from real takes and real idle recordings (:func:`compose_stream`), ``gesture data`` and
``gesture calibrate`` all go through it.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from capture.errors import DataError
from capture.fileio import atomic_write_text
from capture.takes import HEADERS, Take, check_label, parse_numbers, read_take, take_to_csv

STREAM_FILE = "stream.json"
EVENTS_FILE = "events.csv"
FORMAT = "gesture-stream/1"
CHUNK_PREFIX = "chunk_"
EVENTS_HEADER = ("onset_ms", "label", "end_ms")


@dataclass
class StreamEvent:
    """A gesture performed in a stream: ``label`` starting at ``onset_ms`` (stream time)."""

    onset_ms: float
    label: str
    end_ms: float | None = None


@dataclass
class Stream:
    path: Path
    rate_hz: float
    channels: tuple[str, ...]
    t_ms: np.ndarray
    values: np.ndarray  # (n, C) g and deg/s
    events: list[StreamEvent]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.values) / self.rate_hz if self.rate_hz else 0.0


def is_stream(folder: str | Path) -> bool:
    return (Path(folder) / STREAM_FILE).is_file()


def find_streams(paths: Iterable[str | Path]) -> list[Path]:
    """Stream folders among ``paths``: each path is a stream folder or a folder holding some."""
    out: list[Path] = []
    for p in map(Path, paths):
        if is_stream(p):
            out.append(p)
        elif p.is_dir():
            found = sorted(f.parent for f in p.rglob(STREAM_FILE))
            if not found:
                raise DataError(p, f"no continuous recording here (no {STREAM_FILE}); record one with "
                                "`gesture capture --continuous` (see data/README.md)")
            out.extend(found)
        else:
            raise DataError(p, f"not a stream folder (expected a folder with {STREAM_FILE})")
    return out


def events_csv(events: list[StreamEvent]) -> str:
    buf = io.StringIO()
    buf.write(",".join(EVENTS_HEADER) + "\n")
    for e in sorted(events, key=lambda e: e.onset_ms):
        end = "" if e.end_ms is None else f"{e.end_ms:.3f}".rstrip("0").rstrip(".")
        buf.write(f"{e.onset_ms:.3f}".rstrip("0").rstrip(".") + f",{check_label(e.label)},{end}\n")
    return buf.getvalue()


def read_events(path: Path) -> list[StreamEvent]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    head = tuple(c.strip() for c in lines[0].split(",")) if lines else ()
    if head not in (EVENTS_HEADER, EVENTS_HEADER[:2]):
        raise DataError(path, f"header is {','.join(head)!r}; expected {','.join(EVENTS_HEADER)!r}", line=1)
    out = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) not in (2, 3):
            raise DataError(path, f"{len(cells)} cells; expected onset_ms,label[,end_ms]", line=lineno)
        (onset,) = parse_numbers(path, ["onset_ms"], cells[:1], lineno)
        label = check_label(cells[1], f"{path}:{lineno}: label")
        end = parse_numbers(path, ["end_ms"], cells[2:3], lineno)[0] if len(cells) == 3 and cells[2] else None
        if end is not None and end < onset:
            raise DataError(path, f"end_ms {end:g} is before onset_ms {onset:g}", line=lineno, field="end_ms")
        out.append(StreamEvent(onset, label, end))
    return out


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / STREAM_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "not found; a stream folder holds stream.json, chunk_NNNNN.csv and events.csv") from None
    except json.JSONDecodeError as e:
        raise DataError(path, f"invalid JSON: {e.msg}", line=e.lineno) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(path, f"expected a JSON object with \"format\": \"{FORMAT}\"", field="format")
    rate = meta.get("rate_hz")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not rate > 0:
        raise DataError(path, f"rate_hz = {rate!r}; expected a positive number", field="rate_hz")
    ch = tuple(meta.get("channels") or ())
    if ch not in {h[1:] for h in HEADERS.values()}:
        raise DataError(path, f"channels = {list(ch)!r}; expected {list(HEADERS[3][1:])} or {list(HEADERS[6][1:])}",
                        field="channels")
    return meta


def read_stream(folder: str | Path) -> Stream:
    """Read and check a stream folder (chunks in order, continuous time, events inside)."""
    folder = Path(folder)
    meta = read_meta(folder)
    channels = tuple(meta["channels"])
    chunks = sorted(folder.glob(f"{CHUNK_PREFIX}*.csv"))
    parts = [read_take(c, label="stream") for c in chunks]
    for c, part in zip(chunks, parts):
        if tuple(part.channels) != channels:
            raise DataError(c, f"channels {list(part.channels)} differ from stream.json's {list(channels)}", line=1)
    for (a, ta), (b, tb) in zip(zip(chunks, parts), zip(chunks[1:], parts[1:])):
        if tb.t_ms[0] <= ta.t_ms[-1]:
            raise DataError(b, f"starts at t_ms {tb.t_ms[0]:g}, not after {a.name}'s last {ta.t_ms[-1]:g}", line=2, field="t_ms")
    t = np.concatenate([p.t_ms for p in parts]) if parts else np.zeros(0)
    v = np.vstack([p.values for p in parts]) if parts else np.zeros((0, len(channels)))
    events = read_events(folder / EVENTS_FILE)
    end = float(t[-1]) if len(t) else 0.0
    for e in events:
        if e.onset_ms > end:
            raise DataError(folder / EVENTS_FILE, f"event {e.label} at {e.onset_ms:g} ms is after the stream's end ({end:g} ms)")
    return Stream(folder, float(meta["rate_hz"]), channels, t, v, events, meta)


class StreamWriter:
    """Writes a stream folder as it is recorded: stream.json first, then one whole chunk every
    ``chunk_s`` seconds (atomic), events.csv rewritten whole after each :meth:`mark`.
    A crash or a pulled cable loses at most the samples of the chunk being filled."""

    def __init__(self, folder: str | Path, rate_hz: float, channels: tuple[str, ...], *, chunk_s: float = 60.0,
                 meta: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and any(self.folder.iterdir()):
            raise DataError(self.folder, "exists and is not empty; a continuous recording needs a new folder")
        if tuple(channels) not in {h[1:] for h in HEADERS.values()}:
            raise DataError(self.folder, f"channels {list(channels)} are not {list(HEADERS[3][1:])} or {list(HEADERS[6][1:])}")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rate_hz = float(rate_hz)
        self.channels = tuple(channels)
        self.chunk_n = max(1, int(round(chunk_s * self.rate_hz)))
        self.meta = {"format": FORMAT, "rate_hz": rate_hz, "channels": list(channels), "chunk_s": chunk_s, **(meta or {})}
        atomic_write_text(self.folder / STREAM_FILE, json.dumps(self.meta, indent=1) + "\n")
        self.events: list[StreamEvent] = []
        self._t: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self._pending = 0
        self.n_samples = 0
        self.n_chunks = 0
        self.last_t_ms = -1.0

    def add(self, values: np.ndarray, t_ms: np.ndarray | None = None) -> None:
        """Samples (n, C) in g / deg/s; ``t_ms`` since the stream start (default: nominal rate)."""
        v = np.asarray(values, dtype=np.float64).reshape(-1, len(self.channels))
        given = None if t_ms is None else np.asarray(t_ms, dtype=np.float64).reshape(-1)
        t: np.ndarray = np.zeros(0) if given is None else given
        if given is None or len(t) != len(v) or (len(t) and (t[0] <= self.last_t_ms or np.any(np.diff(t) <= 0))):
            # nominal times (also when a device clock repeats or jumps back: the CSV must increase)
            base = 0.0 if self.n_samples == 0 else self.last_t_ms + 1000.0 / self.rate_hz
            t = base + np.arange(len(v)) * 1000.0 / self.rate_hz
        if not len(v):
            return
        self._t.append(t)
        self._v.append(v)
        self._pending += len(v)
        self.n_samples += len(v)
        self.last_t_ms = float(t[-1])
        while self._pending >= self.chunk_n:
            self._write(self.chunk_n)

    def mark(self, label: str, onset_ms: float, end_ms: float | None = None) -> StreamEvent:
        e = StreamEvent(float(onset_ms), check_label(label), end_ms)
        self.events.append(e)
        atomic_write_text(self.folder / EVENTS_FILE, events_csv(self.events))
        return e

    def _write(self, n: int) -> None:
        t, v = np.concatenate(self._t), np.vstack(self._v)
        take = Take("stream", t[:n], v[:n], self.channels)
        atomic_write_text(self.folder / f"{CHUNK_PREFIX}{self.n_chunks:05d}.csv", take_to_csv(take))
        self.n_chunks += 1
        self._t, self._v = ([t[n:]], [v[n:]]) if n < len(t) else ([], [])
        self._pending = len(t) - n

    def close(self) -> None:
        if self._pending:
            self._write(self._pending)
        if not (self.folder / EVENTS_FILE).exists():
            atomic_write_text(self.folder / EVENTS_FILE, events_csv(self.events))

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate_hz


def write_stream(folder: str | Path, values: np.ndarray, rate_hz: float, channels: tuple[str, ...],
                 events: list[StreamEvent], *, chunk_s: float = 60.0, meta: dict[str, Any] | None = None) -> Path:
    """A whole stream at once (the generator); the same files the recorder writes."""
    w = StreamWriter(folder, rate_hz, channels, chunk_s=chunk_s, meta=meta)
    w.add(values)
    for e in events:
        w.mark(e.label, e.onset_ms, e.end_ms)
    w.close()
    return Path(folder)


# ----------------------------------------------------------------------------- generator

RAMP_SAMPLES = 5  # linear blend between the background and a placed take (0.2 s at 25 Hz)


def compose_stream(background: np.ndarray, takes: list[tuple[str, np.ndarray]], rate_hz: float, *,
                   gap_s: tuple[float, float] = (8.0, 14.0), seed: int = 0) -> tuple[np.ndarray, list[StreamEvent], int]:
    """Place real takes into a real idle/negative recording: a stream with known events.

    ``background`` (n, C) and each take's values (m, C) are in the same units and at ``rate_hz``.
    Takes are *inserted* (the background is kept whole, so every second of it is still there to
    fire false activations on) at random gaps of ``gap_s`` seconds, each joined by a
    RAMP_SAMPLES linear blend from the background's last sample to the take's first and back.
    Returns (values, events with onset/end at the take's first/last sample, takes placed);
    placing stops when the background runs out.
    """
    rng = np.random.default_rng(seed)
    bg = np.asarray(background, dtype=np.float64)
    out: list[np.ndarray] = []
    events: list[StreamEvent] = []
    pos, n_out, placed = 0, 0, 0
    ms = 1000.0 / rate_hz
    for label, values in takes:
        gap = int(round(rng.uniform(*gap_s) * rate_hz))
        if pos + gap >= len(bg):
            break
        out.append(bg[pos:pos + gap])
        n_out += gap
        pos += gap
        take = np.asarray(values, dtype=np.float64)
        a, b = bg[pos - 1], bg[min(pos, len(bg) - 1)]
        w = (np.arange(1, RAMP_SAMPLES + 1) / (RAMP_SAMPLES + 1))[:, None]
        out.append(a + (take[0] - a) * w)
        n_out += RAMP_SAMPLES
        events.append(StreamEvent(round(n_out * ms, 3), label, round((n_out + len(take) - 1) * ms, 3)))
        out.append(take)
        n_out += len(take)
        out.append(take[-1] + (b - take[-1]) * w)
        n_out += RAMP_SAMPLES
        placed += 1
    out.append(bg[pos:])
    return np.vstack(out), events, placed


def summary(paths: list[Path]) -> str:
    """``gesture data`` for streams: hours, events per label, per stream."""
    rows, total_s, per_label = [], 0.0, {}  # type: ignore[var-annotated]
    for p in paths:
        s = read_stream(p)
        total_s += s.duration_s
        for e in s.events:
            per_label[e.label] = per_label.get(e.label, 0) + 1
        rows.append(f"  {p.name:<32} {s.duration_s / 60:8.1f} min  {s.rate_hz:g} Hz  {len(s.channels)} ch  "
                    f"{len(s.events)} events")
    labels = ", ".join(f"{k} {v}" for k, v in sorted(per_label.items())) or "none (negative streams)"
    return "\n".join([f"{len(paths)} continuous recording(s), {total_s / 3600:.2f} h; events: {labels}", *rows])
