"""The classifier firmware's behaviour in Python: what the exported sketch does, sample by sample.

The virtual board's "classifier" mode, the parity tests and the dashboard benchmark need the
board's live loop without a board. This module runs the *same* steps as
``firmware/templates/gesture_classifier`` (gk_preprocess.h + gk_model.cpp + the .ino glue), in the
same order, with the same integer arithmetic, and the int8 model in the TFLM interpreter:

    IMU counts at the IMU rate (6 channels, as the board's IMU delivers them)
      -> pick the model's channels (config.channels)
      -> Resampler      streaming anti-alias FIR (preprocess.lowpass_taps) then Q16 linear
                        interpolation to config.model_rate_hz
                        (== preprocess.resample on the whole stream; tests prove it)
      -> LiveWindow     preprocess.live_windows' rule, one model-rate sample at a time
      -> quantize_input, TFLM invoke, Smoother (training.preprocess)
      -> one PREDICTION per candidate window
      -> Detector (training.postprocess: the calibrated post-processor) -> an EVENT when it fires

Emission rule (the sketch does exactly the same): every ``stride``-th model-rate sample, once the
window is full, is a *candidate*. A candidate whose motion reaches the threshold runs the model
and emits the smoothed prediction (class, or UNKNOWN_CLASS below the confidence threshold); an
idle candidate clears the smoother and emits ``UNKNOWN_CLASS`` with confidence 0 and all-zero
scores. So predictions arrive at a steady model_rate_hz / stride (12.5/s at 25 Hz, stride 2),
which doubles as a heartbeat for the dashboard. Device time of a PREDICTION is the time of the
IMU sample whose arrival completed the window. Serial prints :func:`format_prediction_line` for
every PREDICTION.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from capture import protocol as p
from capture.errors import DataError, GestureError
from capture.takes import IMU_CHANNELS
from training.model_dir import default_data_dir, load_model_dir
from training.postprocess import Detector, detector_config, unknown_index
from capture.boards import DEFAULT_BOARD, get_board
from capture.device_info import capture_info
from capture.virtual.push_target import PushTarget
from capture.virtual.sources import BlockSource, Event, HandSource, ReplaySource, Segment
from training.preprocess import (Q16, PreprocessConfig, Smoother, lowpass, lowpass_taps, motion, quantize_input,
                                 resample_step, scores_u8)



# ----------------------------------------------------------------------------- output line

def percent(score: int) -> int:
    """0..255 score -> whole percent, integer rounding (the sketch uses the same formula)."""
    return (int(score) * 100 + 127) // 255


def format_prediction_line(labels: list[str], prediction: p.Prediction) -> str:
    """The human-readable line the sketch prints on Serial for one PREDICTION.

    ``idle`` when the window had no motion (UNKNOWN_CLASS, confidence 0); otherwise the label
    (or ``unknown`` below the confidence threshold), its confidence and every class' score, e.g.
    ``wing 92% | negative 3 ring 1 slope 4 wing 92``. gk_format.h builds the same bytes.
    """
    if prediction.class_index == p.UNKNOWN_CLASS and prediction.confidence == 0:
        return "idle"
    name = labels[prediction.class_index] if prediction.class_index < len(labels) else "unknown"
    scores = " ".join(f"{l} {percent(s)}" for l, s in zip(labels, prediction.scores))
    return f"{name} {percent(prediction.confidence)}% | {scores}"


def format_event_line(labels: list[str], event: p.Event) -> str:
    """The Serial line the sketch prints when its post-processor fires, e.g. ``EVENT wing 87%``."""
    name = labels[event.class_index] if event.class_index < len(labels) else "unknown"
    return f"EVENT {name} {percent(event.score)}%"


# ----------------------------------------------------------------------------- streaming stages

class Resampler:
    """Streaming twin of ``gk::Resampler`` (and of ``preprocess.resample`` on the whole stream).

    Each input sample first goes through the causal anti-alias FIR (``preprocess.lowpass``: the
    history starts filled with the first sample), then output k sits at filtered-input position
    k * step / 65536; it is emitted when the input sample at or after that position arrives.
    ``push`` takes a block of any length and returns the outputs it completes plus, for each, the
    index of the input sample that completed it (its device time).
    """

    def __init__(self, src_rate_hz: float, dst_rate_hz: float, channels: int) -> None:
        self.step = resample_step(src_rate_hz, dst_rate_hz)
        self.taps = lowpass_taps(src_rate_hz, dst_rate_hz)
        self.channels = channels
        self.n_in = 0  # input samples consumed
        self.next_pos = 0  # Q16 input position of the next output
        self.prev = np.zeros(channels, np.int64)  # last filtered sample
        self.history = np.zeros((0, channels), np.int64)  # last len(taps) - 1 raw samples

    def _filter(self, x: np.ndarray) -> np.ndarray:
        k = len(self.taps)
        if k == 1:
            return lowpass(x, self.taps).astype(np.int64)
        if self.n_in == 0:
            self.history = np.repeat(x[:1], k - 1, axis=0)
        ext = np.vstack([self.history, x])
        y = lowpass(ext, self.taps)[k - 1:]  # the first k-1 outputs only warm the filter up
        self.history = ext[-(k - 1):].copy()
        return y.astype(np.int64)

    def push(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(block, dtype=np.int64).reshape(-1, self.channels)
        if len(x) == 0:
            return np.zeros((0, self.channels), np.int16), np.zeros(0, np.int64)
        x = self._filter(x)
        last = self.n_in + len(x) - 1
        limit = last << Q16
        m = (limit - self.next_pos) // self.step + 1 if self.next_pos <= limit else 0
        pos = self.next_pos + self.step * np.arange(m, dtype=np.int64)
        if self.n_in > 0:
            ext, base = np.vstack([self.prev[None, :], x]), self.n_in - 1
        else:
            ext, base = x, 0
        i = (pos >> Q16) - base
        f = (pos & 0xFFFF)[:, None]
        j = np.minimum(i + 1, len(ext) - 1)
        y = (ext[i] * ((1 << Q16) - f) + ext[j] * f + (1 << (Q16 - 1))) >> Q16
        src = (pos + 0xFFFF) >> Q16  # the input sample whose arrival completes each output
        self.next_pos += self.step * m
        self.prev = x[-1].copy()
        self.n_in += len(x)
        return y.astype(np.int16), src


class LiveWindow:
    """Streaming twin of ``gk::LiveWindow``: ``preprocess.live_windows`` one sample at a time."""

    NONE, IDLE, READY = 0, 1, 2

    def __init__(self, cfg: PreprocessConfig) -> None:
        self.cfg = cfg
        self.ring: deque[np.ndarray] = deque(maxlen=cfg.window)
        self.energy: deque[int] = deque(maxlen=cfg.window)
        self.count = 0

    def push(self, sample: np.ndarray) -> int:
        s = np.asarray(sample, dtype=np.int64)
        e = int(motion(np.stack([self.ring[-1], s]), self.cfg.channels)[1]) if self.ring else 0
        self.ring.append(s)
        self.energy.append(e)
        self.count += 1
        w = self.cfg.window
        if self.count < w or (self.count - w) % self.cfg.stride:
            return self.NONE
        peak = max(list(self.energy)[1:], default=0)  # the oldest sample's motion is outside
        return self.READY if peak >= self.cfg.motion_threshold else self.IDLE

    def window(self) -> np.ndarray:
        return np.stack(self.ring).astype(np.int16)


# ----------------------------------------------------------------------------- the board

@dataclass(frozen=True)
class LiveResult:
    """One candidate window: the IMU sample that completed it and what the board emitted."""

    imu_index: int  # index of the IMU sample (at the IMU rate) that completed the window
    prediction: p.Prediction
    input_int8: np.ndarray | None  # the model input (None when idle)
    output_int8: np.ndarray | None = None  # the model's raw int8 scores (None when idle)
    event: tuple[int, int] | None = None  # the post-processor fired: (class index, mean score)


class BoardPipeline:
    """The sketch's live loop on a stream of 6-channel IMU counts at ``imu_rate_hz``."""

    def __init__(self, cfg: PreprocessConfig, model_bytes: bytes, imu_rate_hz: float,
                 imu_channels: tuple[str, ...] = IMU_CHANNELS) -> None:
        from training.evaluate import TflmModel

        missing = [c for c in cfg.channels if c not in imu_channels]
        if missing:
            raise GestureError(f"the model needs channels {missing} that the IMU stream ({list(imu_channels)}) lacks")
        self.cfg = cfg
        self.pick = [list(imu_channels).index(c) for c in cfg.channels]
        self.resampler = Resampler(imu_rate_hz, cfg.model_rate_hz, len(cfg.channels))
        self.live = LiveWindow(cfg)
        self.smoother = Smoother(cfg)
        self.detector = Detector(detector_config(cfg), len(cfg.labels), unknown_index(cfg))
        self.model = TflmModel(model_bytes)
        self.n_labels = len(cfg.labels)

    def push(self, counts: np.ndarray) -> list[LiveResult]:
        """Feed IMU samples (n, 6); return the candidate windows they completed, in order."""
        out: list[LiveResult] = []
        y, src = self.resampler.push(np.asarray(counts)[:, self.pick])
        for sample, imu_index in zip(y, src):
            ev = self.live.push(sample)
            if ev == LiveWindow.NONE:
                continue
            if ev == LiveWindow.IDLE:
                self.smoother.idle()
                pred = p.Prediction(p.UNKNOWN_CLASS, 0, (0,) * self.n_labels)
                out.append(LiveResult(int(imu_index), pred, None, None, self.detector.push(None)))
                continue
            q = quantize_input(self.live.window(), self.cfg)
            raw = self.model.predict(q)
            u8 = scores_u8(raw)
            cls, conf, smoothed = self.smoother.update(u8)
            pred = p.Prediction(int(cls), int(conf), tuple(int(v) for v in smoothed))
            out.append(LiveResult(int(imu_index), pred, q, raw, self.detector.push(u8)))
        return out


@dataclass(frozen=True)
class TruthSpan:
    """Ground truth: ``label`` was being replayed from ``start_us`` to ``end_us`` (device time)."""

    label: str
    start_us: int
    end_us: int
    path: Path | None


class ClassifierSource:
    """Event source of a board running the exported classifier sketch on replayed takes.

    ``events()`` yields raw IMU events (if ``raw_imu``; batched exactly as the capture firmware
    and ``capture.virtual.sources.imu_events`` batch them) interleaved in device-time order with
    PREDICTION events (see the module docstring for when the board emits one).
    ``segments`` / :meth:`truth` tell which label was being replayed when.
    """

    def __init__(self, model_dir: str | Path, data_dir: str | Path | None = None, *, rate_hz: float = p.DEFAULT_RATE_HZ,
                 loop: bool = True, shuffle: bool = True, seed: int = 0, raw_imu: bool = True,
                 labels: list[str] | None = None, limit: int | None = None, board: str = DEFAULT_BOARD) -> None:
        self.model_dir = Path(model_dir)
        self.cfg, self.model_bytes, self.report = load_model_dir(self.model_dir)
        self.labels = list(self.cfg.labels)
        self.board = get_board(board).key
        # the push-ready sketch's transfer service (gesture push): a committed model replaces
        # cfg/model_bytes, and events() switches to it between two windows
        self._model_version = 0
        from training.tflm_ops import model_ops

        self.push_target = PushTarget(self.board, str(self.report.get("model_sha256", "")), self._switch,
                                      builtin_ops=model_ops(self.model_bytes))
        self.rate_hz = float(rate_hz)
        self.raw_imu = raw_imu
        self.data_dir: Path | None = Path(data_dir) if data_dir is not None else default_data_dir(self.report)
        self.replay: BlockSource
        if self.data_dir is None:  # trained on the simulated hand: the hand performs the model's gestures
            from capture.virtual.hand import LABELS as HAND_LABELS

            known = [label for label in (labels or self.labels) if label in HAND_LABELS]
            if not known:
                raise DataError(self.model_dir, f"the model's labels {self.labels} are none the simulated hand performs "
                                f"({', '.join(HAND_LABELS)}): pass the takes to replay (data=DIR, --data DIR)")
            self.replay = HandSource(rate_hz=rate_hz, labels=known, loop=loop, limit=limit, seed=seed)
            return
        self.replay = ReplaySource(self.data_dir, rate_hz=rate_hz, channels=len(IMU_CHANNELS), loop=loop,
                                   shuffle=shuffle, seed=seed, labels=labels, limit=limit)
        unknown = sorted({t.label for t in self.replay.takes} - set(self.labels))
        if unknown:
            raise DataError(self.data_dir, f"has label(s) {unknown} that the model in {self.model_dir} does not know ({self.labels})")
        self.results: list[LiveResult] = []  # every candidate window so far (tests, benchmark)
        self.keep_results = False

    def info(self) -> dict[str, object]:
        info = capture_info(self.rate_hz, len(IMU_CHANNELS), mode="classifier", labels=list(self.labels),
                            board=self.board, **self.push_target.info())
        if not info["model"]:
            del info["model"]  # a folder without report.json: no sha256 to report
        return info

    def _switch(self, cfg: PreprocessConfig, model_bytes: bytes) -> None:
        """Run a pushed model: events() builds its pipeline at its next IMU batch (between windows)."""
        self.cfg, self.model_bytes, self.labels = cfg, bytes(model_bytes), list(cfg.labels)
        self._model_version += 1

    @property
    def segments(self) -> list[Segment]:
        return self.replay.segments

    def truth(self) -> list[TruthSpan]:
        """The replayed takes so far as device-time spans (rest in between belongs to none)."""
        us = 1e6 / self.rate_hz
        return [TruthSpan(s.label, int(round(s.start_sample * us)), int(round((s.start_sample + len(s.counts)) * us)), s.path)
                for s in self.replay.segments]

    def label_at(self, t_us: int) -> str | None:
        """The label being replayed at device time ``t_us`` (None during rest)."""
        for span in self.truth():
            if span.start_us <= t_us < span.end_us:
                return span.label
        return None

    def events(self) -> Iterator[Event]:
        pipeline = BoardPipeline(self.cfg, self.model_bytes, self.rate_hz)
        version = self._model_version
        first = 0  # stream index of the batch's first sample
        for t_us, ftype, payload in self.replay.events():
            if version != self._model_version:  # a pushed model was committed: it takes the next window
                pipeline, version = BoardPipeline(self.cfg, self.model_bytes, self.rate_hz), self._model_version
            if self.raw_imu:
                yield t_us, ftype, payload
            counts = p.decode_imu(payload)
            for r in pipeline.push(counts):
                if self.keep_results:
                    self.results.append(r)
                # the completing sample's time as a receiver reconstructs it from this IMU event
                t = t_us + int(round((r.imu_index - first) * 1e6 / self.rate_hz))
                yield t, p.FrameType.PREDICTION, p.encode_prediction(r.prediction)
                if r.event is not None:
                    yield t, p.FrameType.EVENT, p.encode_event(p.Event(*r.event))
            first += len(counts)
