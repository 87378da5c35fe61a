"""Takes: one recorded gesture, stored as one CSV file in a dataset folder.

A dataset is a folder with one sub-folder per label and one CSV per take::

    data/magic_wand/
        dataset.json            optional manifest (rates, sensor, board, subject/session per take)
        wing/hyw_0001.csv       header t_ms,ax,ay,az[,gx,gy,gz]
        ring/...

Acceleration is in g, angular rate in deg/s, ``t_ms`` is milliseconds since the start of the
take. This module is the only place that reads or writes that format: the capture tool, the
importers and the training loader all go through it, so the format has one definition.
Writes are atomic (temp file in the same folder, fsync, rename), so a crash or a pulled cable
never leaves a half-written take behind.
"""
from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from capture.errors import DataError
from capture.fileio import atomic_write_text

ACCEL_CHANNELS = ("ax", "ay", "az")
GYRO_CHANNELS = ("gx", "gy", "gz")
IMU_CHANNELS = ACCEL_CHANNELS + GYRO_CHANNELS  # what the board's IMU delivers, in this order
HEADERS = {
    3: ("t_ms",) + ACCEL_CHANNELS,
    6: ("t_ms",) + IMU_CHANNELS,
}
MANIFEST_NAME = "dataset.json"
MANIFEST_FORMAT = "gesture-dataset/1"
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass
class Take:
    """One labelled recording. ``values`` is (n, channels) float64 in g and deg/s."""

    label: str
    t_ms: np.ndarray
    values: np.ndarray
    channels: tuple[str, ...] = ACCEL_CHANNELS
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def duration_s(self) -> float:
        return float(self.t_ms[-1] - self.t_ms[0]) / 1000.0 if self.n > 1 else 0.0

    @property
    def rate_hz(self) -> float:
        """Nominal sample rate: the manifest's ``rate_hz`` if recorded, else from the timestamps.

        The mean interval over the take is precise (t_ms is written to 1 us) but a lost sample
        skews it, so it is used only when it agrees with the median interval within 2%,
        or within 1 ms when timestamps are whole milliseconds; the result is rounded to 0.01 Hz
        so that 119 Hz reads as 119, not 118.99.
        """
        if self.meta.get("rate_hz"):
            return float(self.meta["rate_hz"])
        if self.n < 2:
            return 0.0
        median_dt = float(np.median(np.diff(self.t_ms)))
        mean_dt = float(self.t_ms[-1] - self.t_ms[0]) / (self.n - 1)
        # timestamps may be whole milliseconds (Edge Impulse): allow that much disagreement too
        dt = mean_dt if abs(mean_dt - median_dt) <= max(0.02 * median_dt, 1.0) else median_dt
        return round(1000.0 / dt, 2) if dt > 0 else 0.0


def check_label(label: str, where: str = "label") -> str:
    if not LABEL_RE.match(label or ""):
        raise DataError(where, f"label {label!r} must be letters, digits, '_' or '-' (it names a folder and a C++ string)")
    return label


# ----------------------------------------------------------------------------- CSV take I/O

def take_to_csv(take: Take) -> str:
    """Format a take; 5 decimals in g keep int16 counts of a ±4 g IMU (1/8192 g) exact."""
    header = HEADERS.get(len(take.channels))
    if header is None or tuple(take.channels) != header[1:]:
        raise DataError(take.path or take.label, f"channels {take.channels} are not {HEADERS[3][1:]} or {HEADERS[6][1:]}")
    buf = io.StringIO()
    buf.write(",".join(header) + "\n")
    nacc = 3
    for t, row in zip(take.t_ms, take.values):
        cells = [f"{t:.3f}".rstrip("0").rstrip(".")]
        cells += [f"{v:.5f}" for v in row[:nacc]]
        cells += [f"{v:.3f}" for v in row[nacc:]]
        buf.write(",".join(cells) + "\n")
    return buf.getvalue()


def write_take(path: str | Path, take: Take) -> Path:
    """Atomically write one take CSV."""
    path = Path(path)
    atomic_write_text(path, take_to_csv(take))
    take.path = path
    return path


def next_take_path(dataset_dir: str | Path, label: str, prefix: str = "take") -> Path:
    """First free ``DIR/label/prefix_NNNN.csv`` (never overwrites an existing take)."""
    folder = Path(dataset_dir) / check_label(label)
    folder.mkdir(parents=True, exist_ok=True)
    existing = {p.stem for p in folder.glob(f"{prefix}_*.csv")}
    i = 1
    while f"{prefix}_{i:04d}" in existing:
        i += 1
    return folder / f"{prefix}_{i:04d}.csv"


def parse_numbers(path: str | Path, header: Iterable[str], cells: Iterable[str], lineno: int) -> list[float]:
    """One CSV row of finite numbers; a bad cell raises DataError naming line and column."""
    row = []
    for name, cell in zip(header, cells):
        try:
            v = float(cell)
        except ValueError:
            raise DataError(path, f"{cell.strip()!r} is not a number", line=lineno, field=name.strip())
        if not math.isfinite(v):
            raise DataError(path, f"{cell.strip()!r} is not a finite number (NaN/inf)", line=lineno, field=name.strip())
        row.append(v)
    return row


def read_take(path: str | Path, label: str | None = None) -> Take:
    """Read and validate one take CSV; any defect raises DataError naming file, line and field."""
    path = Path(path)
    label = label if label is not None else path.parent.name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text (byte offset {e.start}); expected a CSV with header t_ms,ax,ay,az")
    except OSError as e:
        raise DataError(path, f"cannot read: {e.strerror}")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError(path, "empty file; expected a header t_ms,ax,ay,az[,gx,gy,gz] and at least one row", line=1)
    header = tuple(c.strip() for c in lines[0].split(","))
    if header not in HEADERS.values():
        missing = [c for c in HEADERS[3] if c not in header]
        hint = f" (missing column {', '.join(missing)})" if missing else ""
        raise DataError(path, f"header is {','.join(header)!r}; expected 't_ms,ax,ay,az' or 't_ms,ax,ay,az,gx,gy,gz'{hint}", line=1)
    rows: list[list[float]] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != len(header):
            raise DataError(path, f"{len(cells)} cells; expected {len(header)} ({','.join(header)})", line=lineno)
        row = parse_numbers(path, header, cells, lineno)
        if rows and row[0] <= rows[-1][0]:
            raise DataError(path, f"t_ms {row[0]:g} is not after the previous row's {rows[-1][0]:g}; timestamps must increase", line=lineno, field="t_ms")
        rows.append(row)
    if not rows:
        raise DataError(path, "no samples; expected at least one data row after the header", line=2)
    arr = np.asarray(rows, dtype=np.float64)
    return Take(label=label, t_ms=arr[:, 0], values=arr[:, 1:], channels=header[1:], path=path)


# ----------------------------------------------------------------------------- manifest

def read_manifest(dataset_dir: str | Path) -> dict[str, Any]:
    """The optional ``dataset.json``; an empty manifest when the file does not exist."""
    path = Path(dataset_dir) / MANIFEST_NAME
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "takes": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(path, f"invalid JSON: {e.msg}", line=e.lineno)
    if not isinstance(data, dict) or not isinstance(data.get("takes", {}), dict):
        raise DataError(path, "expected an object with a 'takes' object mapping 'label/file.csv' to metadata")
    data.setdefault("takes", {})
    return data


def write_manifest(dataset_dir: str | Path, manifest: dict[str, Any]) -> None:
    manifest = dict(manifest)
    manifest["format"] = MANIFEST_FORMAT
    manifest["takes"] = dict(sorted(manifest.get("takes", {}).items()))
    atomic_write_text(Path(dataset_dir) / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")


def save_takes(dataset_dir: str | Path, takes: Iterable[Take], prefix: str = "take",
               defaults: dict[str, Any] | None = None) -> list[Path]:
    """Write takes under ``DIR/label/`` and record their metadata in ``dataset.json``.

    Each take file is written atomically before the manifest is rewritten, so an interruption
    leaves every finished take on disk (a take missing from the manifest just has no metadata).
    """
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    for k, v in (defaults or {}).items():
        manifest.setdefault(k, v)
    paths = []
    for take in takes:
        p = next_take_path(dataset_dir, take.label, prefix)
        write_take(p, take)
        if take.meta:
            manifest["takes"][f"{take.label}/{p.name}"] = take.meta
        paths.append(p)
    write_manifest(dataset_dir, manifest)
    return paths


def read_takes(dataset_dir: str | Path) -> tuple[list[Take], dict[str, Any]]:
    """Every take of a dataset folder (sorted by label, then file), with manifest metadata merged.

    Hidden files (``.take_0001.csv.xyz.tmp`` left by an interrupted atomic write) are skipped.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DataError(root, "dataset folder not found; expected a folder with one sub-folder per label")
    manifest = read_manifest(root)
    defaults = {k: manifest[k] for k in ("sample_rate_hz",) if k in manifest}
    takes = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in folder.glob("*.csv") if not p.name.startswith(".")):
            take = read_take(path, label=folder.name)
            meta = dict(manifest["takes"].get(f"{folder.name}/{path.name}", {}))
            if "rate_hz" not in meta and "sample_rate_hz" in defaults and take.n < 2:
                meta["rate_hz"] = defaults["sample_rate_hz"]
            take.meta = meta
            takes.append(take)
    return takes, manifest
