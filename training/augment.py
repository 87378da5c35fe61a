"""Training-time augmentation, applied to integer counts before normalization.

Each transform mimics something that really differs between recordings: when the motion starts
in the window (shift), how fast the person moves (stretch), how hard (scale), how the board sits
in the hand (a small 3-D rotation of the accelerometer and gyro vectors), and sensor noise. The
output is again int16 counts, so augmented windows go through exactly the board's preprocessing.
"""
from __future__ import annotations

import numpy as np

from capture.takes import ACCEL_CHANNELS, GYRO_CHANNELS
from training.preprocess import PreprocessConfig, crop_take, resample

SHIFT_FRACTION = 0.125  # of the window, either way
STRETCH = 0.15  # +-15 % speed
SCALE = 0.10  # +-10 % amplitude
ROTATION_DEG = 10.0  # standard deviation per axis
NOISE_COUNTS = 40.0  # about 5 mg, a little above the LSM9DS1's noise density at 119 Hz


def rotation(rng: np.random.Generator, sigma_deg: float = ROTATION_DEG) -> np.ndarray:
    ax, ay, az = np.radians(rng.normal(0.0, sigma_deg, 3))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rx @ ry @ rz


def augmented_window(counts: np.ndarray, cfg: PreprocessConfig, rng: np.random.Generator,
                     strength: float = 1.0) -> np.ndarray:
    """One randomly transformed training window (window, C) int16 from a take's counts.

    ``strength`` scales every transform's range (1 = the defaults above; ``gesture tune``
    searches it)."""
    k = float(strength)
    factor = rng.uniform(1 - STRETCH * k, 1 + STRETCH * k)
    x = resample(counts, cfg.model_rate_hz * factor, cfg.model_rate_hz) if abs(factor - 1) > 0.01 else counts
    max_shift = int(cfg.window * SHIFT_FRACTION * k)
    w = crop_take(x, cfg, shift=int(rng.integers(-max_shift, max_shift + 1))).astype(np.float64)
    rot = rotation(rng, ROTATION_DEG * k)
    for group in (ACCEL_CHANNELS, GYRO_CHANNELS):
        idx = [cfg.channels.index(c) for c in group if c in cfg.channels]
        if len(idx) == 3:
            w[:, idx] = w[:, idx] @ rot.T
    w *= rng.uniform(1 - SCALE * k, 1 + SCALE * k)
    w += rng.normal(0.0, NOISE_COUNTS * k, w.shape)
    return np.clip(np.rint(w), -32768, 32767).astype(np.int16)
