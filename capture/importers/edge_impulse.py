"""Edge Impulse data: its CSV export and its JSON data-acquisition format.

CSV: a ``timestamp`` column (ms) then ``accX,accY,accZ[,gyrX,gyrY,gyrZ]``. JSON: an object with
``payload.interval_ms``, ``payload.sensors`` (name + units) and ``payload.values`` (rows).
Edge Impulse stores acceleration in m/s^2; it becomes g here (divided by standard gravity), and
gyroscope rad/s becomes deg/s. The label is the file name up to the first dot (EI's convention
``label.sample-id.csv``) unless ``--label`` is given.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from capture.errors import DataError
from capture.importers import ImportResult, label_from_name, make_take
from capture.units import G
from capture.takes import parse_numbers

ACC = ("accx", "accy", "accz")
GYR = ("gyrx", "gyry", "gyrz")
ALIASES = {"ax": "accx", "ay": "accy", "az": "accz", "gx": "gyrx", "gy": "gyry", "gz": "gyrz",
           "acc_x": "accx", "acc_y": "accy", "acc_z": "accz", "gyr_x": "gyrx", "gyr_y": "gyry", "gyr_z": "gyrz"}


def _canon(name: str) -> str:
    n = name.strip().lower()
    return ALIASES.get(n, n)


def _to_units(values: np.ndarray, names: list[str], units: list[str], where: str) -> np.ndarray:
    """Select acc (+gyro) columns in order, converting m/s^2 -> g and rad/s -> deg/s."""
    canon = [_canon(n) for n in names]
    missing = [a for a in ACC if a not in canon]
    if missing:
        shown = {"accx": "accX", "accy": "accY", "accz": "accZ"}
        raise DataError(where, f"no {'/'.join(shown[m] for m in missing)} column; expected sensors accX,accY,accZ[,gyrX,gyrY,gyrZ] (got {', '.join(names)})")
    cols = list(ACC) + (list(GYR) if all(g in canon for g in GYR) else [])
    out = np.empty((values.shape[0], len(cols)))
    for k, c in enumerate(cols):
        j = canon.index(c)
        u = units[j].strip().lower() if j < len(units) else ""
        v = values[:, j]
        if c in ACC:
            out[:, k] = v if u in ("g",) else v / G  # EI default unit is m/s2
        else:
            out[:, k] = np.degrees(v) if u in ("rad/s", "rads") else v
    return out


def read_csv(src: Path, label: str | None, subject: str | None) -> ImportResult:
    text = src.read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DataError(src, "empty file; expected a header timestamp,accX,accY,accZ[,gyrX,gyrY,gyrZ]", line=1)
    if header[0].strip().lower() != "timestamp":
        raise DataError(src, f"first column is {header[0]!r}; expected 'timestamp' (Edge Impulse CSV)", line=1, field=header[0])
    rows = []
    for lineno, cells in enumerate(reader, start=2):
        if not cells or not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise DataError(src, f"{len(cells)} cells; expected {len(header)} ({','.join(header)})", line=lineno)
        row = parse_numbers(src, header, cells, lineno)
        if rows and row[0] <= rows[-1][0]:
            raise DataError(src, "timestamp does not increase", line=lineno, field="timestamp")
        rows.append(row)
    if not rows:
        raise DataError(src, "no data rows after the header", line=2)
    arr = np.asarray(rows)
    t = arr[:, 0] - arr[0, 0]
    values = _to_units(arr[:, 1:], header[1:], ["m/s2"] * (len(header) - 1), str(src))
    rate = 1000.0 / float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    meta = {"source": f"edge-impulse:{src.name}"}
    if subject:
        meta["subject"] = subject
    take = make_take(label_from_name(src, label), values, rate, meta, t_ms=t)
    take.meta.pop("rate_hz")  # measured from the timestamps, not nominal
    return ImportResult(takes=[take])


def read_json(src: Path, label: str | None, subject: str | None) -> ImportResult:
    try:
        doc = json.loads(src.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(src, f"invalid JSON: {e.msg}", line=e.lineno)
    payload = doc.get("payload") if isinstance(doc, dict) else None
    if not isinstance(payload, dict):
        raise DataError(src, "no 'payload' object; expected Edge Impulse's data-acquisition format", field="payload")
    for key in ("interval_ms", "sensors", "values"):
        if key not in payload:
            raise DataError(src, f"payload has no '{key}'", field=f"payload.{key}")
    interval = payload["interval_ms"]
    if not isinstance(interval, (int, float)) or interval <= 0:
        raise DataError(src, f"interval_ms is {interval!r}; expected a positive number", field="payload.interval_ms")
    sensors = payload["sensors"]
    names = [s.get("name", "") for s in sensors]
    units = [s.get("units", "") for s in sensors]
    try:
        values = np.asarray(payload["values"], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(src, "values must be rows of numbers", field="payload.values")
    if values.ndim != 2 or values.shape[1] != len(sensors) or values.shape[0] == 0:
        raise DataError(src, f"values have shape {values.shape}; expected rows of {len(sensors)} numbers (one per sensor)", field="payload.values")
    if not np.all(np.isfinite(values)):
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise DataError(src, f"row {row} has a NaN or infinite value", field="payload.values")
    meta = {"source": f"edge-impulse:{src.name}", "device": payload.get("device_type", "")}
    if subject:
        meta["subject"] = subject
    take = make_take(label_from_name(src, label), _to_units(values, names, units, str(src)), 1000.0 / interval, meta)
    return ImportResult(takes=[take])


def read(src: Path, label: str | None = None, subject: str | None = None) -> ImportResult:
    src = Path(src)
    if not src.is_file():
        raise DataError(src, "not found")
    if src.suffix.lower() == ".json":
        return read_json(src, label, subject)
    return read_csv(src, label, subject)
