"""Measured Cortex-M4 cost per model, remembered by model checksum (``gesture verify`` writes it).

Why a store: `gesture tune` ranks candidates by instructions per inference and should use a
measured count where one exists, but it must not run QEMU per candidate nor import the
firmware-in-the-loop code (training.verify sits in the simulation layer). ``gesture verify``
records what it measured for the exact model bytes; anyone can look it up here.
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
