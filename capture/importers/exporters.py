"""Takes -> an Edge Impulse export (CSV or JSON files + info.labels), so data moves there and back.

The output is laid out like Edge Impulse's own export: ``training/`` and ``testing/`` folders
and an ``info.labels`` at the root giving each file's label and category, so Edge Impulse's
uploader (and this kit's importer) keep the split. A take's category is the one it was
imported with (meta ``category``), else ``testing`` for the dataset's ``test_subjects``, else
``training``. Acceleration is written in m/s^2 (Edge Impulse's unit), gyroscope in deg/s.

Nothing is rounded away: CSV timestamps are the take's own (microsecond) milliseconds, the
JSON ``interval_ms`` is the exact float the take was recorded or imported with, and values
keep 9 significant digits, so import -> export-data -> import gives the same samples back.
The device is the one recorded at import or capture (meta ``device``), not a fixed board, and
each take's subject/session go into the entry's ``metadata`` (Edge Impulse's per-sample
key/value strings), so a person split survives the trip.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from capture.errors import DataError
from capture.units import G
from capture.importers.edge_impulse import UNKNOWN_DEVICE
from capture.fileio import atomic_write_text
from capture.takes import Take

EI_NAMES = ["accX", "accY", "accZ", "gyrX", "gyrY", "gyrZ"]
FORMATS = ("edge-impulse-csv", "edge-impulse-json")
METADATA_KEYS = ("subject", "session")
KIT_DEVICE = "ARDUINO_NANO33BLE"  # Edge Impulse's device type for the Nano 33 BLE Sense


def _ei_values(take: Take) -> np.ndarray:
    v = take.values.copy()
    v[:, :3] *= G
    return v


def _num(x: float) -> str:
    return f"{x:.9g}"


def _t(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def device_of(take: Take) -> str:
    """The recording device: as imported (EI device_type), else this kit's board when captured here."""
    dev = take.meta.get("device")
    if dev:
        return str(dev)
    source = str(take.meta.get("source", ""))
    if source.startswith(("device:", "arduino-csv:")):
        return KIT_DEVICE
    return UNKNOWN_DEVICE


def interval_ms(take: Take) -> float:
    if take.meta.get("interval_ms"):
        return float(take.meta["interval_ms"])
    rate = take.rate_hz
    if rate <= 0:
        raise DataError(take.path or take.label, "cannot tell the sample rate (one sample); cannot write interval_ms")
    return 1000.0 / rate


def to_csv(take: Take) -> str:
    buf = io.StringIO()
    buf.write(",".join(["timestamp"] + EI_NAMES[:len(take.channels)]) + "\n")
    for ti, row in zip(take.t_ms - take.t_ms[0], _ei_values(take)):
        buf.write(",".join([_t(float(ti))] + [_num(float(x)) for x in row]) + "\n")
    return buf.getvalue()


def to_json(take: Take) -> str:
    n = len(take.channels)
    doc = {
        "protected": {"ver": "v1", "alg": "none"},
        "signature": "0" * 64,
        "payload": {
            "device_name": str(take.meta.get("device_name") or take.meta.get("subject") or "gesture-kit"),
            "device_type": device_of(take),
            "interval_ms": interval_ms(take),
            "sensors": [{"name": EI_NAMES[k], "units": "m/s2" if k < 3 else "deg/s"} for k in range(n)],
            "values": [[float(_num(float(x))) for x in row] for row in _ei_values(take)],
        },
    }
    return json.dumps(doc)


def category_of(take: Take, test_subjects: set[str]) -> str:
    cat = take.meta.get("category")
    if cat in ("training", "testing"):
        return str(cat)
    return "testing" if str(take.meta.get("subject", "")) in test_subjects else "training"


def export(takes: list[Take], fmt: str, out_dir: Path, manifest: dict | None = None) -> list[Path]:
    """Write every take, then ``info.labels``; returns the data files written."""
    out_dir = Path(out_dir)
    test_subjects = {str(s) for s in (manifest or {}).get("test_subjects", []) or []}
    ext = "csv" if fmt == "edge-impulse-csv" else "json"
    written, entries = [], []
    used: set[str] = set()
    for take in takes:
        cat = category_of(take, test_subjects)
        stem = take.path.stem if take.path else "take"
        name = f"{take.label}.{stem}.{ext}"
        k = 2
        while f"{cat}/{name}" in used:  # same file name under two labels' folders
            name = f"{take.label}.{stem}-{k}.{ext}"
            k += 1
        used.add(f"{cat}/{name}")
        path = out_dir / cat / name
        atomic_write_text(path, to_csv(take) if ext == "csv" else to_json(take))
        written.append(path)
        entry = {"path": f"{cat}/{name}", "name": name.rsplit(".", 1)[0], "category": cat,
                 "label": {"type": "label", "label": take.label}}
        meta = {k: str(take.meta[k]) for k in METADATA_KEYS if take.meta.get(k)}
        if meta:  # Edge Impulse keeps per-sample string metadata: the person split survives the trip
            entry["metadata"] = meta
        entries.append(entry)
    atomic_write_text(out_dir / "info.labels", json.dumps({"version": 1, "files": entries}, indent=1) + "\n")
    return written
