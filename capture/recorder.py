"""Recording takes from any link: countdown or motion trigger, per-take atomic save, summary.

The recorder only sees :class:`~capture.transport.base.Message` objects, so serial, BLE, text
sketches and virtual boards all record the same way. Timing comes from the device: sample ``k`` of
an IMU message is at ``t_us + k / rate`` (the board's clock, unwrapped past 2^32 us), never from
when the bytes reached the host, which USB and BLE deliver in bursts. A lost frame therefore shows
as a gap in ``t_ms`` and a shorter take, never as invented samples.

Motion trigger. ``IMU_Capture.ino`` (the Arduino TinyML tutorial) starts a gesture when
``|aX| + |aY| + |aZ|`` reaches 2.5 g. That sum includes gravity, so it depends on how the board is
held: flat it reads 1 g at rest, tilted up to 1.73 g, and the same flick triggers or not. This
recorder sums the *change* instead: ``|ax - bx| + |ay - by| + |az - bz|`` against a baseline ``b``
that follows the board at rest (exponential average, 0.5 s), and a vs the previous sample would
depend on the sample rate. The default threshold 1.5 g is the tutorial's 2.5 g minus the 1 g a flat
board already reads, so a board held flat behaves as in the tutorial; ``--threshold`` changes it.
A short pre-trigger buffer (default 0.2 s) keeps the start of the motion in the take.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import math
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from capture import protocol as p
from capture.errors import GestureError
from capture.takes import ACCEL_CHANNELS, GYRO_CHANNELS, SIMULATED_SENSOR, Take, check_label, preflight, save_takes
from capture.transport.base import DeviceClock, Message, SeqTracker, Transport

BASELINE_TAU_S = 0.5
STALL_S = 5.0  # no IMU data for this long from a frame-speaking board: something is wrong
MAX_DISCARDS_IN_A_ROW = 5  # --max-lost: stop re-recording after this many consecutive discards
TRIGGER_TIMEOUT_S = 60.0  # --trigger: give up (with a hint) after this long without motion
MIN_TAKE_SAMPLES = 2  # a take shorter than this has no rate of its own (and 0 samples is no take at all)


@dataclass
class RecordPlan:
    """What to record (the ``gesture capture`` options)."""

    label: str
    takes: int
    seconds: float = 2.0  # length of each take (with --trigger: including the pre-trigger part)
    trigger: bool = False
    threshold_g: float = 1.5
    pre_trigger_s: float = 0.2
    countdown_s: float = 3.0
    subject: str | None = None
    session: str | None = None
    max_lost: int | None = None
    trigger_timeout_s: float = TRIGGER_TIMEOUT_S

    def check(self) -> None:
        check_label(self.label, "--label")
        if not (math.isfinite(self.countdown_s) and self.countdown_s >= 0):
            raise GestureError(f"--countdown {self.countdown_s:g}: expected 0 or more seconds")
        if not (math.isfinite(self.seconds) and self.seconds <= 3600):
            raise GestureError(f"--seconds {self.seconds:g}: expected a take length of at most 3600 s")
        if self.trigger and not (self.trigger_timeout_s > 0):
            raise GestureError(f"--trigger-timeout {self.trigger_timeout_s:g}: expected a positive number of seconds")
        if self.takes < 1:
            raise GestureError(f"--takes {self.takes}: expected at least 1")
        if not self.seconds > 0:
            raise GestureError(f"--seconds {self.seconds:g}: expected a positive take length")
        if self.trigger and not self.threshold_g > 0:
            raise GestureError(f"--threshold {self.threshold_g:g}: expected a positive acceleration change in g")
        if self.trigger and not 0 <= self.pre_trigger_s < self.seconds:
            raise GestureError(f"--pre-trigger {self.pre_trigger_s:g}: expected 0 <= it < --seconds {self.seconds:g}")


@dataclass
class Summary:
    takes_saved: int = 0
    paths: list[Path] = field(default_factory=list)
    samples: int = 0  # samples in the saved takes
    rate_hz: float = 0.0  # nominal, from INFO
    measured_rate_hz: float = 0.0  # from device timestamps of consecutive frames
    frames_lost: int = 0  # whole link, including between takes
    crc_errors: int = 0
    garbage_bytes: int = 0
    discarded: int = 0  # takes over --max-lost
    interrupted: str | None = None  # "take 4 interrupted after 0.8 s: not saved"
    error: str | None = None  # why recording stopped early (link lost)
    host_clock: bool = False  # a text sketch sends no timestamps: times are the host's

    def lines(self) -> list[str]:
        rate = (f"{self.rate_hz:g} Hz nominal (a text sketch sends no timestamps: sample times are spaced "
                "at that rate on the host clock, not measured)" if self.host_clock else
                f"{self.measured_rate_hz:.2f} Hz measured (device clock), {self.rate_hz:g} Hz nominal")
        rows = [
            ("takes saved", str(self.takes_saved)),
            ("samples", str(self.samples)),
            ("rate", rate),
            ("frames lost", str(self.frames_lost)),
            ("CRC errors", str(self.crc_errors)),
            ("garbage bytes", str(self.garbage_bytes)),
        ]
        if self.discarded:
            rows.append(("discarded", f"{self.discarded} takes over --max-lost"))
        if self.interrupted:
            rows.append(("interrupted", self.interrupted))
        w = max(len(k) for k, _ in rows)
        return [f"{k.ljust(w)}  {v}" for k, v in rows]


class _Lost(Exception):
    pass


class _NoMotion(Exception):
    """--trigger waited its timeout without motion: stop, keeping the saved takes."""


class Recorder:
    """Records ``plan.takes`` takes from an opened transport into ``data_dir``."""

    def __init__(self, link: Transport, data_dir: str | Path, plan: RecordPlan, *, quiet: bool = False,
                 echo: Callable[[str], None] | None = None) -> None:
        plan.check()
        self.link = link
        self.data_dir = Path(data_dir)
        self.plan = plan
        self.quiet = quiet
        self._echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))
        self.summary = Summary()
        self._queue: asyncio.Queue[Message | str] = asyncio.Queue()
        self._seq = SeqTracker()
        self._clock = DeviceClock()
        self._last_t: int | None = None  # unwrapped device time of the latest IMU message
        self._prev: tuple[int, int, int] | None = None  # seq, t_us, count of the previous IMU message
        self._rate_num = 0
        self._rate_den = 0
        self._lost_in_take = 0
        self._bar = None
        link.on_message(self._queue.put_nowait)
        link.on_disconnect(lambda reason: self._queue.put_nowait(reason))
        self._configure(link.info)

    def _configure(self, info: dict[str, str]) -> None:
        try:
            self.rate = float(info.get("rate", p.DEFAULT_RATE_HZ))
        except ValueError:
            raise GestureError(f"the board's INFO has rate={info.get('rate')!r}; expected a number of Hz") from None
        ch = [c for c in info.get("ch", "ax,ay,az").split(",") if c]
        self.channels = ACCEL_CHANNELS + (GYRO_CHANNELS if len(ch) >= 6 else ())
        self.summary.rate_hz = self.rate
        self.summary.host_clock = info.get("mode") == "text"

    def echo(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            self._echo(text)

    # ------------------------------------------------------------------ device stream
    async def _next(self, timeout: float | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Next IMU samples as (device time in us, unwrapped int64; counts), or None on timeout."""
        while True:
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
                # (SIGTERM, Ctrl-C) that lands as the item arrives, and capture then runs on
                if timeout:
                    async with asyncio.timeout(timeout):
                        item = await self._queue.get()
                else:
                    item = await self._queue.get()
            except TimeoutError:
                return None
            if isinstance(item, str):
                raise _Lost(item)
            if item.type == p.FrameType.INFO:
                self._configure(p.decode_info(item.payload))
                continue
            if item.type == p.FrameType.LOG:
                self.echo(f"board: {item.payload.decode('ascii', errors='replace')}")
                continue
            if item.type != p.FrameType.IMU:
                continue
            try:
                counts = p.decode_imu(item.payload)
            except ValueError as e:
                self.echo(f"warning: skipped a malformed IMU payload (seq {item.seq}): {e}")
                continue
            gap = self._seq.gap(p.FrameType.IMU, item.seq)
            self._lost_in_take += gap
            t0 = self._clock(item.t_us)
            self._last_t = t0
            if self._prev is not None and gap == 0:
                self._rate_num += self._prev[2]
                self._rate_den += (item.t_us - self._prev[1]) & 0xFFFFFFFF
            self._prev = (item.seq, item.t_us, len(counts))
            t = t0 + np.round(np.arange(len(counts)) * (1e6 / self.rate)).astype(np.int64)
            return t, counts

    @property
    def _stall(self) -> float | None:
        return STALL_S if self.link.info.get("mode") != "text" else None

    async def _samples(self, timeout: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        got = await self._next(timeout if timeout is not None else self._stall)
        if got is None:
            raise GestureError(f"no IMU data from the board for {STALL_S:g} s; is it streaming? "
                               "(unplug and replug it, or check the sketch)")
        return got

    async def _drain_for(self, seconds: float) -> None:
        """Consume (and drop) samples for ``seconds`` of host time: the countdown."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            await self._next(left)

    # ------------------------------------------------------------------ takes
    def _progress(self, i: int) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        self._bar = tqdm(total=round(self.plan.seconds, 2), desc=f"take {i}/{self.plan.takes}", unit="s",
                         file=sys.stderr, leave=False, mininterval=0.25 if sys.stderr.isatty() else 2.0,
                         bar_format="{desc}: {bar} {n:.1f}/{total:.1f} s")

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    async def _countdown(self, i: int) -> None:
        s = self.plan.countdown_s
        if s <= 0:
            return
        if not self.quiet:
            self.echo(f"take {i}/{self.plan.takes} ({self.plan.label}) in {s:g} s ...")
        whole = int(math.floor(s))
        await self._drain_for(s - whole)
        for k in range(whole, 0, -1):
            if not self.quiet:
                self.echo(f"  {k}")
            await self._drain_for(1.0)
        if not self.quiet:
            self.echo("  go!")

    async def _wait_trigger(self, i: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
        """Samples until the motion trigger fires; returns the pre-trigger buffer and the rest."""
        if not self.quiet:
            self.echo(f"take {i}/{self.plan.takes} ({self.plan.label}): waiting for motion "
                      f"(change >= {self.plan.threshold_g:g} g)")
        pre_us = self.plan.pre_trigger_s * 1e6
        buf_t: deque[np.ndarray] = deque()
        buf_c: deque[np.ndarray] = deque()
        base: np.ndarray | None = None
        scale = p.ACCEL_LSB_PER_G
        thr = self.plan.threshold_g * scale
        alpha = 1.0 - math.exp(-1.0 / (BASELINE_TAU_S * self.rate))
        first: int | None = None  # device time the wait started (the timeout runs on the board's clock)
        peak = 0.0
        while True:
            t, c = await self._samples()
            if first is None and len(t):
                first = int(t[0])
            if first is not None and len(t) and t[-1] - first > self.plan.trigger_timeout_s * 1e6:
                raise _NoMotion(f"--trigger: no motion for {self.plan.trigger_timeout_s:g} s (largest change "
                                f"{peak / scale:.2f} g, threshold {self.plan.threshold_g:g} g); move the board "
                                "more, lower --threshold, or drop --trigger to record after a countdown")
            acc = c[:, :3].astype(np.float64)
            for k in range(len(c)):
                if base is None:
                    base = acc[k].copy()
                change = float(np.abs(acc[k] - base).sum())
                peak = max(peak, change)
                if change >= thr:
                    buf_t.append(t[:k])
                    buf_c.append(c[:k])
                    return list(buf_t), list(buf_c), t[k:], c[k:]
                base += alpha * (acc[k] - base)
            buf_t.append(t)
            buf_c.append(c)
            while buf_t and len(buf_t) > 1 and t[-1] - buf_t[1][0] >= pre_us:
                buf_t.popleft()
                buf_c.popleft()

    async def _record_one(self, i: int, carry: tuple[np.ndarray, np.ndarray] | None
                          ) -> tuple[Take | None, tuple[np.ndarray, np.ndarray] | None]:
        """One take; returns it and the samples after its end (the next take may start with them)."""
        self._lost_in_take = 0
        ts: list[np.ndarray] = []
        cs: list[np.ndarray] = []
        if self.plan.trigger:
            pre_t, pre_c, t, c = await self._wait_trigger(i)
            self._lost_in_take = 0  # only gaps inside the take count against it
            if len(t):
                start = t[0]
                for bt, bc in zip(pre_t, pre_c):
                    keep = bt >= start - self.plan.pre_trigger_s * 1e6
                    ts.append(bt[keep])
                    cs.append(bc[keep])
                start = min([x[0] for x in ts if len(x)] + [start])
        else:
            await self._countdown(i)
            if self.plan.countdown_s > 0:
                carry = None  # samples from before the countdown are not part of this take
            t, c = carry if carry is not None and len(carry[0]) else await self._samples()
            start = t[0]
        # half a sample short of S: device timestamps are whole microseconds, so the sample due at
        # exactly S may read S - 1 us; a take of S seconds holds round(S * rate) samples
        end = start + int(round(self.plan.seconds * 1e6 - 0.5e6 / self.rate))
        self._progress(i)
        self._taking = (i, start)
        try:
            while True:
                inside = t < end
                ts.append(t[inside])
                cs.append(c[inside])
                if self._bar is not None and len(t):
                    done = round(min(self.plan.seconds, (min(t[-1], end) - start) / 1e6), 2)
                    self._bar.update(done - self._bar.n)  # tqdm throttles redraws (mininterval)
                if not inside.all():
                    rest = (t[~inside], c[~inside])
                    break
                t, c = await self._samples()
        finally:
            self._close_bar()
        self._taking = None
        tt = np.concatenate(ts)
        cc = np.concatenate(cs)
        return self._make_take(tt - start, cc), rest

    def _make_take(self, t_rel_us: np.ndarray, counts: np.ndarray) -> Take:
        meta: dict[str, object] = {
            "rate_hz": self.rate,
            "frames_lost": int(self._lost_in_take),
            "source": "device:" + "/".join(self.link.info.get(k, "?") for k in ("board", "sensor", "fw")),
            "recorded": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if self.link.info.get("sensor") == SIMULATED_SENSOR:  # the simulated hand: never passed off as a recording
            meta["simulated"] = True
        if self.plan.subject:
            meta["subject"] = self.plan.subject
        if self.plan.session:
            meta["session"] = self.plan.session
        values = p.counts_to_units(counts[:, :len(self.channels)])
        return Take(self.plan.label, t_rel_us / 1000.0, values, channels=self.channels, meta=meta)

    async def run(self) -> Summary:
        """Record every take; on a lost link keep what is saved, report the partial take, stop."""
        s = self.summary
        self._taking: tuple[int, int] | None = None
        carry = None
        i = 1
        in_a_row = 0
        # before the first countdown: a take that cannot be saved must not be recorded first
        if round(self.plan.seconds * self.rate) < MIN_TAKE_SAMPLES:
            raise GestureError(f"--seconds {self.plan.seconds:g}: a take at the board's {self.rate:g} Hz would hold "
                               f"{round(self.plan.seconds * self.rate)} sample(s); expected at least {MIN_TAKE_SAMPLES} "
                               f"(--seconds {math.ceil(MIN_TAKE_SAMPLES / self.rate * 1000) / 1000:g} or more)")
        take_bytes = int(self.plan.seconds * self.rate * (8 + 9 * len(self.channels)))  # CSV row ~ 9 chars/cell
        preflight(self.data_dir, self.plan.label, need_bytes=take_bytes * self.plan.takes)
        try:
            await self.link.send(p.Command.START)
            while s.takes_saved < self.plan.takes:
                take, carry = await self._record_one(i, carry)
                if self.plan.max_lost is not None and take.meta["frames_lost"] > self.plan.max_lost:
                    s.discarded += 1
                    in_a_row += 1
                    if in_a_row >= MAX_DISCARDS_IN_A_ROW:
                        s.error = (f"{in_a_row} takes in a row lost more than --max-lost {self.plan.max_lost} frames "
                                   f"(last: {take.meta['frames_lost']}): the link is too lossy (over BLE: move the board "
                                   "closer, or use USB with --port; or allow more with --max-lost); "
                                   f"{s.takes_saved} of {self.plan.takes} takes saved in {self.data_dir}")
                        break
                    self.echo(f"take {i} discarded: {take.meta['frames_lost']} frames lost "
                              f"(more than --max-lost {self.plan.max_lost}); recording it again "
                              f"({in_a_row} of at most {MAX_DISCARDS_IN_A_ROW} in a row)")
                    continue
                in_a_row = 0
                try:
                    path = save_takes(self.data_dir, [take])[0]
                except OSError as e:  # a full disk, the folder made read-only meanwhile: keep what is saved
                    s.error = (f"take {i} could not be saved in {self.data_dir} ({e.strerror or e}); "
                               f"{s.takes_saved} of {self.plan.takes} takes saved there")
                    break
                s.takes_saved += 1
                s.paths.append(path)
                s.samples += take.n
                lost = take.meta["frames_lost"]
                if not self.quiet:
                    self.echo(f"saved {path} ({take.n} samples, {take.n / self.rate:.2f} s"
                              f"{f', {lost} frames lost' if lost else ''})")
                i += 1
        except _Lost as e:
            self._interrupted()
            s.error = f"{e}; {s.takes_saved} of {self.plan.takes} takes saved in {self.data_dir}"
        except _NoMotion as e:
            s.error = f"{e}; {s.takes_saved} of {self.plan.takes} takes saved in {self.data_dir}"
        except (asyncio.CancelledError, KeyboardInterrupt):
            self._interrupted()
            raise
        finally:
            self._close_bar()
            self._finish()
        return s

    def _interrupted(self) -> None:
        if self._taking is None:
            return
        i, start = self._taking
        dur = max(0.0, (self._last_t - start) / 1e6) if self._last_t is not None else 0.0
        self.summary.interrupted = f"take {i} interrupted after {dur:.1f} s: not saved"
        self.echo(self.summary.interrupted)

    def _finish(self) -> None:
        s = self.summary
        st = self.link.stats
        s.frames_lost, s.crc_errors, s.garbage_bytes = st.frames_lost, st.crc_errors, st.garbage_bytes
        s.measured_rate_hz = self._rate_num / self._rate_den * 1e6 if self._rate_den else 0.0


# ----------------------------------------------------------------------------- continuous recording

@dataclass
class ContinuousPlan:
    """What ``gesture capture --continuous`` records: one long stream, gesture events marked."""

    minutes: float
    prompt: tuple[str, ...] = ()  # labels to prompt at random times ("do `wing` now"); () = none
    prompt_gap_s: tuple[float, float] = (20.0, 40.0)  # seconds between prompts, uniform
    chunk_s: float = 60.0
    seed: int | None = None
    subject: str | None = None
    session: str | None = None

    def check(self) -> None:
        if not (math.isfinite(self.minutes) and 0 < self.minutes <= 24 * 60):
            raise GestureError(f"--minutes {self.minutes:g}: expected more than 0 and at most 1440 (24 h)")
        for label in self.prompt:
            check_label(label, "--prompt")
        lo, hi = self.prompt_gap_s
        if not (0 < lo <= hi):
            raise GestureError(f"--prompt-every {lo:g}..{hi:g}: expected 0 < min <= max seconds")
        if not (1.0 <= self.chunk_s <= 3600):
            raise GestureError(f"chunk length {self.chunk_s:g} s: expected 1..3600")


class ContinuousRecorder(Recorder):
    """Records one stream folder (capture/streams.py) from an opened transport.

    Samples are written in whole chunks of ``plan.chunk_s`` seconds (atomic), events.csv is
    rewritten after each mark, so a crash or a pulled cable keeps everything but the chunk being
    filled; a lost link or Ctrl-C also writes that last partial chunk. Event onsets are device
    time (stream time = board clock since the first sample): a prompt is marked at the latest
    sample when it is shown, a key mark (:meth:`mark`) at the latest sample when it arrives.
    """

    def __init__(self, link: Transport, folder: str | Path, plan: ContinuousPlan, *, quiet: bool = False,
                 echo: Callable[[str], None] | None = None) -> None:
        plan.check()
        super().__init__(link, folder, RecordPlan(label="stream", takes=1), quiet=quiet, echo=echo)
        self.cplan = plan
        self.folder = Path(folder)
        self.writer = None
        self.events = 0
        self._marks: asyncio.Queue[str] = asyncio.Queue()
        self._now_ms = 0.0

    def mark(self, label: str) -> None:
        """Mark ``label`` now (call from the event loop; the key reader uses call_soon_threadsafe)."""
        self._marks.put_nowait(label)

    async def run(self) -> Summary:
        import random

        from capture.streams import StreamWriter

        s = self.summary
        plan = self.cplan
        rng = random.Random(plan.seed)
        import shutil

        nbytes = int(plan.minutes * 60 * self.rate * (8 + 9 * len(self.channels)))  # CSV row ~ 9 chars/cell
        meta: dict[str, object] = {
            "source": "device:" + "/".join(self.link.info.get(k, "?") for k in ("board", "sensor", "fw")),
            "recorded": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "prompted": list(plan.prompt),
        }
        if plan.subject:
            meta["subject"] = plan.subject
        if plan.session:
            meta["session"] = plan.session
        try:
            self.writer = writer = StreamWriter(self.folder, self.rate, self.channels, chunk_s=plan.chunk_s, meta=meta)
        except OSError as e:
            raise GestureError(f"{self.folder}: cannot write there: {e.strerror or e}; choose another --data folder") from None
        free = shutil.disk_usage(self.folder).free
        if free < nbytes + 20 * 2**20:
            raise GestureError(f"{self.folder}: only {free / 2**20:.1f} MiB free; {plan.minutes:g} min need about "
                               f"{nbytes / 2**20 + 20:.0f} MiB (free some space or record fewer --minutes)")
        t0: int | None = None
        end_ms = plan.minutes * 60_000.0
        next_prompt = rng.uniform(*plan.prompt_gap_s) * 1000.0 if plan.prompt else math.inf
        last_label: str | None = None
        if not self.quiet:
            self.echo(f"recording {plan.minutes:g} min into {self.folder}"
                      + (f"; do the prompted gesture when asked ({', '.join(plan.prompt)})" if plan.prompt else
                         "; go about ordinary life (a negative stream)"))
        try:
            await self.link.send(p.Command.START)
            while self._now_ms < end_ms:
                t, c = await self._samples()
                if not len(t):
                    continue
                if t0 is None:
                    t0 = int(t[0])
                t_ms = (t - t0) / 1000.0
                writer.add(p.counts_to_units(c[:, :len(self.channels)]), t_ms)
                self._now_ms = writer.last_t_ms
                s.samples = writer.n_samples
                while not self._marks.empty():
                    label = self._marks.get_nowait() or last_label
                    if label:
                        writer.mark(label, self._now_ms)
                        self.events += 1
                        if not self.quiet:
                            self.echo(f"marked {label} at {self._now_ms / 1000:.1f} s")
                if self._now_ms >= next_prompt:
                    last_label = rng.choice(plan.prompt)
                    writer.mark(last_label, self._now_ms)
                    self.events += 1
                    next_prompt = self._now_ms + rng.uniform(*plan.prompt_gap_s) * 1000.0
                    if not self.quiet:
                        self.echo(f">>> do `{last_label}` now ({self._now_ms / 60000:.1f} of {plan.minutes:g} min)")
        except _Lost as e:
            s.error = f"{e}; {writer.n_samples / self.rate / 60:.1f} min and {self.events} events kept in {self.folder}"
        finally:
            writer.close()
            self._finish()
        return s

    def lines(self) -> list[str]:
        w = self.writer
        n = w.n_samples if w is not None else 0
        return [f"stream {self.folder}: {n / self.rate / 60:.2f} min, {n} samples, {self.events} events, "
                f"{w.n_chunks if w is not None else 0} chunks", *self.summary.lines()[1:]]
