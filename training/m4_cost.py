"""Cortex-M4 cost per model: measured counts remembered by model checksum, and the estimate used
where nothing was measured.

Why a store: `gesture tune` ranks candidates by instructions per inference and should use a
measured count where one exists, without importing the firmware-in-the-loop code
(training.verify sits in the simulation layer). ``gesture verify`` and its cost probe
(``training.verify.measure_cost``) record what they measured for the exact model bytes; anyone
can look it up here.

Why this estimate: MACs alone mislead on the M4. CMSIS-NN pays per output element
(requantize, clamp, store) and per gathered im2col element about as much as for dozens of
MACs, and its depthwise kernel ~10x more per MAC than its full convolutions, so small models
cost far more per MAC than large ones (4.3 to 16.5 instructions per MAC measured). The weights
below are a non-negative least-squares fit to 21 models measured with ``measure_cost`` (cnn and
dscnn, 2-4 blocks of 4-32 filters, flatten and average-pool heads, windows of 64/120/128 x 3
channels; TFLM 90b983c, arm-none-eabi-gcc 12.2 -Os): every one within 5.6 % (rms 2.6 %).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from capture.fileio import atomic_write_text


def _store() -> Path:
    from training.tflm_tree import cache_root

    return cache_root() / "m4-cost"


def record(model_bytes: bytes, figures: dict) -> None:
    """Remember ``figures`` (instructions_per_inference, arena_bytes_m4, flash...) for this model."""
    path = _store() / f"{hashlib.sha256(model_bytes).hexdigest()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(figures, indent=1) + "\n")


def lookup(model_bytes: bytes) -> dict | None:
    path = _store() / f"{hashlib.sha256(model_bytes).hexdigest()}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def m4_instructions(model_bytes: bytes) -> int | None:
    """Instructions per inference `gesture verify` measured for exactly these model bytes, if any."""
    data = lookup(model_bytes)
    n = data.get("instructions_per_inference") if data else None
    return int(n) if isinstance(n, int) and n > 0 else None


# Instructions per unit of each training.model.cost_features() entry, plus a fixed part (see the
# module docstring for where they come from).
ESTIMATE_WEIGHTS = {"conv_macs": 1.61, "depthwise_macs": 18.57, "dense_macs": 0.0, "conv_outputs": 75.0,
                    "im2col": 29.22}
ESTIMATE_FIXED = 12_112


def estimate_instructions(features: dict[str, int]) -> int:
    """Instructions per inference on the M4 from a model's cost features, when none was measured."""
    return int(round(ESTIMATE_FIXED + sum(w * features.get(k, 0) for k, w in ESTIMATE_WEIGHTS.items())))
