"""Importers: other tools' recordings -> takes in this kit's dataset format.

Each importer is a function ``read(src, label=None, subject=None) -> ImportResult``; the
registry below maps the CLI's FORMAT names to them. Importers only parse; saving goes through
``capture.takes.save_takes`` (atomic, manifest updated), so the format has one writer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from capture.takes import ACCEL_CHANNELS, GYRO_CHANNELS, Take, check_label


@dataclass
class ImportResult:
    takes: list[Take] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    defaults: dict = field(default_factory=dict)  # dataset-level manifest fields to set if absent


def make_take(label: str, values: np.ndarray, rate_hz: float, meta: dict | None = None,
              t_ms: np.ndarray | None = None) -> Take:
    """Build a take from (n, 3|6) values in g [, deg/s]; timestamps from the rate unless given."""
    values = np.asarray(values, dtype=np.float64)
    channels = ACCEL_CHANNELS + (GYRO_CHANNELS if values.shape[1] == 6 else ())
    if t_ms is None:
        t_ms = np.arange(values.shape[0]) * (1000.0 / rate_hz)
    meta = dict(meta or {})
    meta.setdefault("rate_hz", rate_hz)
    return Take(label=check_label(label), t_ms=np.asarray(t_ms, dtype=np.float64), values=values,
                channels=channels, meta=meta)


def label_from_name(path: Path, given: str | None) -> str:
    """--label wins; else the file name up to the first dot (Edge Impulse's ``label.id.csv``)."""
    return check_label(given or Path(path).name.split(".")[0], f"{path} (label)")


def _registry() -> dict[str, Callable[..., ImportResult]]:
    from capture.importers import arduino_csv, edge_impulse, magic_wand
    return {"arduino-csv": arduino_csv.read, "edge-impulse": edge_impulse.read, "magic-wand": magic_wand.read}


FORMATS = ("arduino-csv", "edge-impulse", "magic-wand")


def import_files(fmt: str, sources: list[Path], label: str | None = None, subject: str | None = None) -> ImportResult:
    reader = _registry()[fmt]
    out = ImportResult()
    for src in sources:
        r = reader(Path(src), label=label, subject=subject)
        out.takes += r.takes
        out.warnings += r.warnings
        out.defaults.update(r.defaults)
    return out
