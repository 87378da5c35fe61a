"""Preprocessing: the one definition shared by training, the generated firmware header and the
virtual board.

Everything from raw IMU counts to the model's int8 input tensor is integer arithmetic, so the
Python here and the C++ generated into the sketch (``training/codegen_preprocess.py``) give the
same bytes on any machine, with or without an FPU, and tests prove it byte for byte.

Pipeline (board and training alike)::

    int16 counts at the IMU rate (capture.protocol scales: 8192 counts/g, 16.384 counts/dps)
      -> lowpass()         anti-alias FIR at the IMU rate (integer Q15 taps designed by
                           scipy.signal in lowpass_taps(); identity unless decimating > 1.25x)
      -> resample()        linear interpolation in Q16 fixed point to the model rate
      -> window            training: crop_take() (motion-centred crop / edge pad of a take)
                           live:     live_windows() (every `stride` samples, last `window`
                                     samples, skipped as idle when motion < threshold)
      -> quantize_input()  q = clamp(zp + ((c - mean) * mult + 2^(SHIFT-1)) >> SHIFT, -128, 127)
      -> TFLM model        int8 in, int8 softmax out (scale 1/256, zero point -128)
      -> Smoother          u8 scores = q_out + 128, mean of the last `smoothing` windows,
                           argmax, rejected as unknown below `confidence_threshold`

The float model is trained on ``normalize()`` = (c - mean) / std; ``mult`` folds 1/std and the
converter's input scale into one fixed-point multiplier, set by :meth:`PreprocessConfig.with_input_quant`
after conversion.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from capture.errors import DataError
from capture.takes import ACCEL_CHANNELS, Take
from capture.protocol import UNKNOWN_CLASS, units_to_counts

Q16 = 16
SHIFT = 24  # fixed-point shift of the input multiplier
CONFIG_NAME = "config.json"
CONFIG_VERSION = 1


@dataclass
class PreprocessConfig:
    """Everything the board needs to turn IMU counts into model input and scores into a label."""

    labels: list[str]
    channels: list[str] = field(default_factory=lambda: list(ACCEL_CHANNELS))
    model_rate_hz: int = 25
    window: int = 64  # samples at model_rate_hz
    stride: int = 2  # live: run the model every `stride` new samples
    motion_threshold: int = 0  # live: max per-sample motion (counts) in a window below this = idle
    mean: list[int] = field(default_factory=list)  # per channel, counts
    std: list[float] = field(default_factory=list)  # per channel, counts (float model only)
    input_scale: float = 0.0  # from the TFLite converter
    input_zero_point: int = 0
    mult: list[int] = field(default_factory=list)  # per channel Q(SHIFT) multiplier
    smoothing: int = 1  # live: average the scores of this many windows
    confidence_threshold: int = 0  # live: 0..255; below it the board reports UNKNOWN_CLASS
    unknown_label: str | None = None  # the "no gesture" class, if the dataset has one
    # live: the post-processor's setting (training/postprocess.py DetectorConfig: average, threshold,
    # min_count, suppression); empty = its "default" preset. `gesture calibrate` writes it.
    detector: dict[str, int] = field(default_factory=dict)
    version: int = CONFIG_VERSION

    # ------------------------------------------------------------------ derived
    @property
    def n_channels(self) -> int:
        return len(self.channels)

    def with_normalization(self, mean: np.ndarray, std: np.ndarray) -> "PreprocessConfig":
        return replace(self, mean=[int(round(float(m))) for m in mean],
                       std=[max(float(s), 1.0) for s in std])

    def with_input_quant(self, scale: float, zero_point: int) -> "PreprocessConfig":
        """Fold 1/std and the converter's input scale into per-channel fixed-point multipliers."""
        mult = [int(round((1 << SHIFT) / (s * scale))) for s in self.std]
        return replace(self, input_scale=float(scale), input_zero_point=int(zero_point), mult=mult)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: dict, where: str = CONFIG_NAME) -> "PreprocessConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(where, f"unknown field(s) {unknown}; expected {sorted(known)}")
        if "labels" not in d:
            raise DataError(where, "missing field 'labels'", field="labels")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> "PreprocessConfig":
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_NAME
        try:
            return cls.from_dict(json.loads(path.read_text()), str(path))
        except FileNotFoundError:
            raise DataError(path, "not found; expected the config.json written by `gesture train`")
        except json.JSONDecodeError as e:
            raise DataError(path, f"invalid JSON: {e.msg}", line=e.lineno)


# ----------------------------------------------------------------------------- resampling

def resample_step(src_rate_hz: float, dst_rate_hz: float) -> int:
    """Q16 step between output samples, in input samples. The firmware gets it as a constant."""
    return int(round(float(src_rate_hz) * (1 << Q16) / float(dst_rate_hz)))


LOWPASS_Q = 15  # taps are Q15 integers summing to exactly 2^15 (unit gain at DC)
LOWPASS_MIN_RATIO = 1.25  # decimating by less than this needs no filter (augmentation's stretch)
LOWPASS_PASS = 0.3  # cutoff as a fraction of the model rate (0.6 of its Nyquist frequency)
LOWPASS_MAX_TAPS = 63


@lru_cache(maxsize=64)
def _lowpass_taps(src_rate_hz: float, dst_rate_hz: float) -> tuple[int, ...]:
    ratio = float(src_rate_hz) / float(dst_rate_hz)
    if ratio <= LOWPASS_MIN_RATIO:
        return (1 << LOWPASS_Q,)
    from scipy.signal import firwin

    # Hamming window: transition width ~3.3 fs / N. Everything above dst - cutoff must be
    # attenuated (it would fold into the passband); the band between folds above the cutoff.
    cutoff = LOWPASS_PASS * float(dst_rate_hz)
    transition = float(dst_rate_hz) - 2 * cutoff
    n = int(np.ceil(3.3 * float(src_rate_hz) / transition)) | 1
    n = min(max(n, 3), LOWPASS_MAX_TAPS)
    h = firwin(n, cutoff, fs=float(src_rate_hz), window="hamming")
    q = np.rint(h * (1 << LOWPASS_Q)).astype(np.int64)
    q[n // 2] += (1 << LOWPASS_Q) - int(q.sum())  # exact unit DC gain: a board at rest stays put
    return tuple(int(v) for v in q)


def lowpass_taps(src_rate_hz: float, dst_rate_hz: float) -> np.ndarray:
    """Integer anti-alias FIR taps (Q15, sum 2^15) for decimating ``src_rate_hz`` to ``dst_rate_hz``.

    Designed once with ``scipy.signal.firwin`` and rounded to integers: the integers are the
    definition (carried in the model package, training/package.py), so Python and the board filter alike.
    A single tap 2^15 (identity) when the rate drops by no more than LOWPASS_MIN_RATIO.
    """
    return np.array(_lowpass_taps(round(float(src_rate_hz), 4), round(float(dst_rate_hz), 4)), dtype=np.int64)


def lowpass(counts: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Causal FIR over int16 counts (n, C): y[i] = (sum_k taps[k] x[i-k] + 2^14) >> 15, clamped,
    with x[i < 0] = x[0] (the board at rest before the first sample), the same as the streaming
    filter in gk::Resampler and board_sim.Resampler."""
    x = np.asarray(counts, dtype=np.int64)
    taps = np.asarray(taps, dtype=np.int64)
    if len(taps) == 1 and taps[0] == 1 << LOWPASS_Q or x.shape[0] == 0:
        return x.astype(np.int16)
    k = len(taps)
    ext = np.concatenate([np.repeat(x[:1], k - 1, axis=0), x])
    # y[i] = sum_j taps[j] * ext[i + k - 1 - j]
    acc = np.zeros(x.shape, dtype=np.int64)
    n = x.shape[0]
    for j in range(k):
        acc += taps[j] * ext[k - 1 - j:k - 1 - j + n]
    y = (acc + (1 << (LOWPASS_Q - 1))) >> LOWPASS_Q
    return np.clip(y, -32768, 32767).astype(np.int16)


def interpolate(counts: np.ndarray, step: int) -> np.ndarray:
    """Linear interpolation of int16 counts (n, C) with a Q16 ``step`` (input samples per output).

    Output k sits at input position k * step / 65536 and is
    (x[i] * (65536 - f) + x[i+1] * f + 32768) >> 16 with i, f the integer and fraction parts.
    """
    x = np.asarray(counts, dtype=np.int64)
    n = x.shape[0]
    if step == 1 << Q16 or n == 0:
        return x.astype(np.int16)
    m = (((n - 1) << Q16) // step) + 1
    pos = np.arange(m, dtype=np.int64) * step
    i = pos >> Q16
    f = (pos & 0xFFFF)[:, None]
    j = np.minimum(i + 1, n - 1)
    y = (x[i] * ((1 << Q16) - f) + x[j] * f + (1 << (Q16 - 1))) >> Q16
    return y.astype(np.int16)


def resample(counts: np.ndarray, src_rate_hz: float, dst_rate_hz: float) -> np.ndarray:
    """int16 counts (n, C) at ``src_rate_hz`` -> ``dst_rate_hz``: :func:`lowpass` with
    :func:`lowpass_taps` (anti-alias, when decimating), then :func:`interpolate`."""
    x = lowpass(counts, lowpass_taps(src_rate_hz, dst_rate_hz))
    return interpolate(x, resample_step(src_rate_hz, dst_rate_hz))


def take_counts(take: Take, cfg: PreprocessConfig, rate_hz: float | None = None) -> np.ndarray:
    """A take's model channels as int16 counts at the model rate (what the board would hold).

    ``rate_hz`` overrides the take's own rate: the dataset's rate for a take whose timestamps
    cannot tell it (training.dataset.take_rates). A 1-sample take needs no rate.
    """
    missing = [c for c in cfg.channels if c not in take.channels]
    if missing:
        raise DataError(take.path or take.label, f"take has channels {list(take.channels)}; the model needs {cfg.channels} (missing {missing})")
    counts = units_to_counts(take.values)
    idx = [list(take.channels).index(c) for c in cfg.channels]
    rate = float(rate_hz or take.rate_hz)
    if take.n < 2:
        return counts[:, idx].astype(np.int16)
    if rate <= 0:
        raise DataError(take.path or take.label, "cannot tell the sample rate (t_ms not increasing); record rate_hz in dataset.json")
    return resample(counts[:, idx], rate, cfg.model_rate_hz)


# ----------------------------------------------------------------------------- windows

def motion(counts: np.ndarray, channels: list[str]) -> np.ndarray:
    """Per-sample motion energy: sum over accelerometer channels of |x[i] - x[i-1]|; e[0] = 0."""
    acc = [k for k, c in enumerate(channels) if c in ACCEL_CHANNELS]
    x = np.asarray(counts, dtype=np.int64)[:, acc]
    e = np.zeros(x.shape[0], dtype=np.int64)
    if x.shape[0] > 1:
        e[1:] = np.abs(np.diff(x, axis=0)).sum(axis=1)
    return e


def crop_take(counts: np.ndarray, cfg: PreprocessConfig, shift: int = 0) -> np.ndarray:
    """One training window (window, C) from a whole take, centred on its motion.

    Longer takes: the window is centred on the motion centroid sum(i*e)/sum(e) (integer
    division), moved by ``shift`` samples (augmentation) and clamped inside the take.
    Shorter takes: centred, padded with the first / last sample (the board at rest).
    """
    x = np.asarray(counts, dtype=np.int16)
    n, w = x.shape[0], cfg.window
    if n >= w:
        e = motion(x, cfg.channels)
        total = int(e.sum())
        centroid = int((np.arange(n, dtype=np.int64) * e).sum() // total) if total > 0 else n // 2
        start = min(max(centroid - w // 2 + shift, 0), n - w)
        return x[start:start + w].copy()
    before = (w - n) // 2 + shift
    before = min(max(before, 0), w - n)
    return np.pad(x, ((before, w - n - before), (0, 0)), mode="edge")


def live_windows(stream: np.ndarray, cfg: PreprocessConfig) -> Iterator[tuple[int, np.ndarray | None]]:
    """The firmware's live rule over a model-rate stream (n, C) of counts.

    After sample j (0-based) with j + 1 >= window and (j + 1 - window) % stride == 0, the last
    ``window`` samples are a candidate. Yields (j, window) when its largest per-sample motion
    (within the window) reaches ``motion_threshold``, else (j, None): the board reports idle
    without running the model.
    """
    x = np.asarray(stream, dtype=np.int16)
    e = motion(x, cfg.channels)
    w = cfg.window
    for j in range(w - 1, x.shape[0], cfg.stride):
        # motion inside the window only: e of the window's first sample is not counted
        peak = int(e[j - w + 2:j + 1].max()) if w > 1 else 0
        yield j, (x[j - w + 1:j + 1] if peak >= cfg.motion_threshold else None)


# ----------------------------------------------------------------------------- input tensor

def normalize(window: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Float model input (window, C) float32: (counts - mean) / std."""
    return ((np.asarray(window, np.float32) - np.asarray(cfg.mean, np.float32)) / np.asarray(cfg.std, np.float32)).astype(np.float32)


def quantize_input(window: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """int8 model input (window, C), exactly as the board computes it."""
    if not cfg.mult:
        raise ValueError("config has no input quantization yet (call with_input_quant after conversion)")
    c = np.asarray(window, dtype=np.int64) - np.asarray(cfg.mean, dtype=np.int64)
    q = cfg.input_zero_point + ((c * np.asarray(cfg.mult, dtype=np.int64) + (1 << (SHIFT - 1))) >> SHIFT)
    return np.clip(q, -128, 127).astype(np.int8)


# ----------------------------------------------------------------------------- post-processing

def scores_u8(output_int8: np.ndarray) -> np.ndarray:
    """int8 softmax output (scale 1/256, zero point -128) -> 0..255 probabilities."""
    return (np.asarray(output_int8, dtype=np.int16).reshape(-1) + 128).astype(np.uint8)


class Smoother:
    """Turns per-window scores into the board's prediction: mean of the last ``smoothing``
    score vectors (integer, rounded), argmax (first maximum), UNKNOWN_CLASS below threshold.
    An idle window clears the history, so a new gesture is not averaged with an old one."""

    def __init__(self, cfg: PreprocessConfig) -> None:
        self.cfg = cfg
        self.history: list[np.ndarray] = []

    def idle(self) -> tuple[int, int, np.ndarray]:
        self.history.clear()
        return UNKNOWN_CLASS, 0, np.zeros(len(self.cfg.labels), dtype=np.uint8)

    def update(self, scores: np.ndarray) -> tuple[int, int, np.ndarray]:
        """scores: u8 per class. Returns (class index or UNKNOWN_CLASS, confidence, smoothed)."""
        self.history.append(np.asarray(scores, dtype=np.uint8))
        k = max(1, self.cfg.smoothing)
        if len(self.history) > k:
            self.history.pop(0)
        n = len(self.history)
        total = np.sum(np.stack(self.history).astype(np.int32), axis=0)
        smoothed = ((total + n // 2) // n).astype(np.uint8)
        cls = int(np.argmax(smoothed))
        conf = int(smoothed[cls])
        if conf < self.cfg.confidence_threshold:
            return UNKNOWN_CLASS, conf, smoothed
        return cls, conf, smoothed
