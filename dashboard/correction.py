"""Closing the loop: turn the window behind a wrong prediction into a labelled take.

When the board mislabels a gesture, the user picks the right label and one click stores the raw
samples the model had just looked at as a take in the dataset; when it detects a gesture nobody
made (a false activation: an EVENT), one click stores that window as a negative take (``capture.takes.save_takes``:
atomic file write, then the manifest), so the next ``gesture train`` learns from the mistake.
The window is anchored at the prediction's device time, not at the click, because the click
comes seconds after the gesture.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from capture import protocol as p
from capture.errors import GestureError
from capture.takes import ACCEL_CHANNELS, GYRO_CHANNELS, Take, check_label, save_takes
from dashboard.buffers import DetectionEvent, LiveBuffers, PredictionEvent

MIN_COVERAGE = 0.9  # refuse a window with less than 90 % of the model's span of samples


def window_take(buffers: LiveBuffers, prediction: PredictionEvent | DetectionEvent, label: str, window_s: float,
                predicted: str, subject: str | None = None) -> Take:
    """The raw samples of the ``window_s`` seconds ending at ``prediction``, as a Take in g / deg/s."""
    check_label(label)
    raw = buffers.raw(window_s, end_us=prediction.device_us)
    if raw.n < 2 or (raw.device_us[-1] - raw.device_us[0]) < MIN_COVERAGE * window_s * 1e6 - 2e6 / raw.rate_hz:
        held = raw.n / raw.rate_hz if raw.rate_hz else 0.0
        raise GestureError(f"only {held:.1f} s of raw samples are buffered for prediction #{prediction.seq}; "
                           f"the model's window is {window_s:.1f} s (the buffer keeps {buffers.raw_seconds:g} s: "
                           "save sooner after the gesture)")
    channels = tuple(raw.channels)
    if channels not in (ACCEL_CHANNELS, ACCEL_CHANNELS + GYRO_CHANNELS):
        raise GestureError(f"the board streams channels {list(channels)}; a take needs {list(ACCEL_CHANNELS)} "
                           f"or {list(ACCEL_CHANNELS + GYRO_CHANNELS)}")
    t_ms = (raw.device_us - raw.device_us[0]).astype(np.float64) / 1000.0
    meta: dict[str, object] = {"source": "dashboard", "predicted": predicted,
                               "confidence": round(prediction.confidence, 3), "rate_hz": raw.rate_hz}
    if subject:
        meta["subject"] = subject
    return Take(label=label, t_ms=t_ms, values=p.counts_to_units(raw.counts), channels=channels, meta=meta)


def negative_label(labels: list[str], unknown_label: str | None) -> str:
    """The label a false activation is saved under: the model's "no gesture" class, else 'negative'."""
    return unknown_label if unknown_label in labels else "negative"


def save_window(data_dir: str | Path, take: Take) -> Path:
    """Store ``take`` in the dataset (atomic) and return its path."""
    return save_takes(data_dir, [take], prefix="dash")[0]
