"""The post-processor: from the model's per-window scores to *events* ("wing detected now").

The classifier sketch runs a candidate window every ``stride`` model-rate samples (12.5 per second
at 25 Hz, stride 2) and emits a PREDICTION for each (training/board_sim.py). A user does not want
12.5 predictions a second: they want one event per gesture, and none while they are doing
something else. This module is that step, defined once in integer arithmetic; the sketch runs the
same rule in C++ (``gk_detect.h`` with the numbers from the model package) and
tests/test_parity.py proves the two give the same events, bit for bit.

Rule (one :class:`Detector` step per candidate window; every quantity is an integer)::

    history  the last `average` candidate windows: a model result (u8 scores, q_out + 128)
             or idle (no motion, the model did not run)
    count    model results in the history; fewer than `min_count`: no event
    mean     per class, (sum + count // 2) // count over the model results in the history
    top      first argmax of mean; no event when top is the "no gesture" class (unknown_label)
             or mean[top] < `threshold` (0..255)
    event    unless top is the label of the last event and at most `suppression` candidate
             windows have passed since it; an event sets (last label, last step) = (top, now)

Time is counted in candidate windows, not milliseconds: the board emits them at a steady
``model_rate_hz / stride`` per second, so the rule needs no clock and is exact on any CPU.
:func:`steps` converts milliseconds at a config's rate.

The two published rules fit as settings (:func:`preset`):

* ``micro_speech`` (TFLM's ``RecognizeCommands``): 1000 ms average, threshold 200/255,
  1500 ms suppression, minimum count 3;
* ``magic_wand`` (TFLM's magic_wand example as the issue states it): the mean of the last 5
  predictions, threshold 0.8 (204/255), no suppression and no minimum count, so it fires on every
  window above threshold (the original re-fires after its consecutive count too);
* ``default``: what a model folder without a calibrated setting runs: the trained smoothing and
  confidence threshold as average and threshold, one window's worth of candidates as suppression.

The chosen setting lives in the model folder's config.json (``PreprocessConfig.detector``);
``gesture calibrate`` writes it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from capture.errors import DataError
from training.preprocess import PreprocessConfig

MAX_AVERAGE = 64  # the C++ keeps a fixed history of this many candidate windows
PRESETS = ("default", "micro_speech", "magic_wand")
FIELDS = ("average", "threshold", "min_count", "suppression")


@dataclass(frozen=True)
class DetectorConfig:
    """One post-processor setting (see the module docstring). Steps are candidate windows."""

    average: int = 1
    threshold: int = 204
    min_count: int = 1
    suppression: int = 0

    def check(self, where: str = "config.json detector") -> "DetectorConfig":
        for name, ok, expected in (
            ("average", 1 <= self.average <= MAX_AVERAGE, f"1..{MAX_AVERAGE} candidate windows"),
            ("threshold", 0 <= self.threshold <= 255, "0..255"),
            ("min_count", 1 <= self.min_count <= self.average, "1..average"),
            ("suppression", 0 <= self.suppression <= 65535, "0..65535 candidate windows"),
        ):
            if not ok:
                raise DataError(where, f"{name} = {getattr(self, name)!r}; expected {expected}", field=name)
        return self

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config.json detector") -> "DetectorConfig":
        if not isinstance(d, dict):
            raise DataError(where, f"expected an object with {list(FIELDS)}, got {type(d).__name__}")
        unknown = sorted(set(d) - set(FIELDS))
        if unknown:
            raise DataError(where, f"unknown field(s) {unknown}; expected {list(FIELDS)}")
        bad = [k for k, v in d.items() if not isinstance(v, int) or isinstance(v, bool)]
        if bad:
            raise DataError(where, f"{bad[0]} = {d[bad[0]]!r}; expected an integer", field=bad[0])
        return cls(**d).check(where)

    def describe(self, cfg: PreprocessConfig) -> str:
        ms = 1000.0 * cfg.stride / cfg.model_rate_hz
        return (f"average {self.average} ({self.average * ms:.0f} ms), threshold {self.threshold}/255, "
                f"min count {self.min_count}, suppression {self.suppression} ({self.suppression * ms:.0f} ms)")


def steps(ms: float, cfg: PreprocessConfig) -> int:
    """Milliseconds -> candidate windows at ``cfg``'s rate, rounded half up (integer arithmetic)."""
    den = 1000 * cfg.stride
    return int((int(round(ms)) * cfg.model_rate_hz * 2 + den) // (2 * den))


def preset(name: str, cfg: PreprocessConfig) -> DetectorConfig:
    """A named rule at ``cfg``'s candidate rate (see the module docstring)."""
    if name == "micro_speech":
        avg = min(MAX_AVERAGE, max(3, steps(1000, cfg)))
        return DetectorConfig(average=avg, threshold=200, min_count=3, suppression=steps(1500, cfg)).check()
    if name == "magic_wand":
        return DetectorConfig(average=5, threshold=204, min_count=1, suppression=0).check()
    if name == "default":
        avg = min(MAX_AVERAGE, max(1, cfg.smoothing))
        return DetectorConfig(average=avg, threshold=max(1, min(255, cfg.confidence_threshold)), min_count=1,
                              suppression=max(0, cfg.window // max(1, cfg.stride))).check()
    raise ValueError(f"unknown preset {name!r}; expected one of {PRESETS}")


def detector_config(cfg: PreprocessConfig) -> DetectorConfig:
    """The setting a model folder runs: config.json's ``detector`` if set, else the default preset."""
    if cfg.detector:
        return DetectorConfig.from_dict(cfg.detector)
    return preset("default", cfg)


def unknown_index(cfg: PreprocessConfig) -> int:
    """Index of the "no gesture" class (never an event), -1 if the model has none."""
    return cfg.labels.index(cfg.unknown_label) if cfg.unknown_label in cfg.labels else -1


class Detector:
    """The post-processor, one candidate window at a time (the C++ twin is ``gk::Detector``)."""

    def __init__(self, det: DetectorConfig, n_labels: int, unknown: int = -1) -> None:
        self.det = det.check()
        self.n_labels = n_labels
        self.unknown = unknown
        self.history: list[np.ndarray | None] = []
        self.step = 0  # candidate windows seen
        self.last_label = -1
        self.last_step = 0

    def push(self, scores: np.ndarray | None) -> tuple[int, int] | None:
        """One candidate window: u8 scores (q_out + 128) of a model result, None when idle.
        Returns (class index, mean score) when an event fires, else None."""
        self.step += 1
        self.history.append(None if scores is None else np.asarray(scores, dtype=np.int64).reshape(-1))
        if len(self.history) > self.det.average:
            self.history.pop(0)
        ready = [s for s in self.history if s is not None]
        count = len(ready)
        if count < self.det.min_count:
            return None
        mean = (np.sum(np.stack(ready), axis=0) + count // 2) // count
        top = int(np.argmax(mean))
        score = int(mean[top])
        if top == self.unknown or score < self.det.threshold:
            return None
        if top == self.last_label and self.step - self.last_step <= self.det.suppression:
            return None
        self.last_label, self.last_step = top, self.step
        return top, score


def detect(records: list[np.ndarray | None], det: DetectorConfig, unknown: int = -1) -> list[tuple[int, int, int]]:
    """Run a fresh :class:`Detector` over candidate windows; (candidate index, class, score) per event."""
    n = next((len(r) for r in records if r is not None), 0)
    d = Detector(det, n, unknown)
    out = []
    for i, r in enumerate(records):
        ev = d.push(r)
        if ev is not None:
            out.append((i, ev[0], ev[1]))
    return out


# ----------------------------------------------------------------------------- fast sweep

class SweepStream:
    """One stream's candidate windows as arrays, for evaluating many settings quickly.

    :meth:`events` gives exactly :func:`detect`'s events (a test proves it) with the averaging
    done once per (average, min_count) in numpy and the sequential part (suppression) run only
    over the candidates that pass the threshold.
    """

    def __init__(self, records: list[np.ndarray | None], n_labels: int, unknown: int = -1) -> None:
        self.n = len(records)
        self.ready = np.array([r is not None for r in records], dtype=bool)
        self.scores = np.zeros((self.n, n_labels), dtype=np.int64)
        for i, r in enumerate(records):
            if r is not None:
                self.scores[i] = np.asarray(r, dtype=np.int64).reshape(-1)
        self.unknown = unknown
        self._means: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def means(self, average: int, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(valid, top, score) per candidate for an averaging setting."""
        key = (average, min_count)
        if key not in self._means:
            cs = np.vstack([np.zeros((1, self.scores.shape[1]), np.int64), np.cumsum(self.scores, axis=0)])
            cc = np.concatenate([[0], np.cumsum(self.ready.astype(np.int64))])
            i = np.arange(1, self.n + 1)
            lo = np.maximum(i - average, 0)
            total = cs[i] - cs[lo]
            count = cc[i] - cc[lo]
            safe = np.maximum(count, 1)
            mean = (total + (safe // 2)[:, None]) // safe[:, None]
            top = np.argmax(mean, axis=1) if self.n else np.zeros(0, np.int64)
            score = mean[np.arange(self.n), top] if self.n else np.zeros(0, np.int64)
            valid = (count >= min_count) & (top != self.unknown)
            self._means[key] = (valid, top, score)
        return self._means[key]

    def events(self, det: DetectorConfig) -> list[tuple[int, int, int]]:
        valid, top, score = self.means(det.average, det.min_count)
        out: list[tuple[int, int, int]] = []
        last_label, last_step = -1, 0
        for i in np.flatnonzero(valid & (score >= det.threshold)):
            step, cls = int(i) + 1, int(top[i])
            if cls == last_label and step - last_step <= det.suppression:
                continue
            last_label, last_step = cls, step
            out.append((int(i), cls, int(score[i])))
        return out
