"""Takes -> Edge Impulse CSV or JSON, so a dataset can move to Edge Impulse and back.

Both write acceleration in m/s^2 (Edge Impulse's unit) and name files ``label.<take>.ext`` so
that Edge Impulse's uploader (and this kit's importer) read the label from the name. JSON uses
the data-acquisition format with ``alg: none`` (unsigned), which the uploader accepts.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from capture.fileio import atomic_write_text
from capture.takes import Take
from capture.units import G

EI_NAMES = ["accX", "accY", "accZ", "gyrX", "gyrY", "gyrZ"]
FORMATS = ("edge-impulse-csv", "edge-impulse-json")


def _ei_values(take: Take) -> np.ndarray:
    v = take.values.copy()
    v[:, :3] *= G
    return v


def _name(take: Take, ext: str) -> str:
    stem = take.path.stem if take.path else "take"
    return f"{take.label}.{stem}.{ext}"


def to_csv(take: Take) -> str:
    buf = io.StringIO()
    buf.write(",".join(["timestamp"] + EI_NAMES[:len(take.channels)]) + "\n")
    t = np.rint(take.t_ms - take.t_ms[0]).astype(np.int64)
    for ti, row in zip(t, _ei_values(take)):
        buf.write(",".join([str(ti)] + [f"{x:.5f}" for x in row]) + "\n")
    return buf.getvalue()


def to_json(take: Take) -> str:
    n = len(take.channels)
    doc = {
        "protected": {"ver": "v1", "alg": "none"},
        "signature": "0" * 64,
        "payload": {
            "device_name": take.meta.get("subject", "gesture-kit"),
            "device_type": take.meta.get("board", "ARDUINO_NANO33BLE"),
            "interval_ms": round(1000.0 / take.rate_hz, 6),
            "sensors": [{"name": EI_NAMES[k], "units": "m/s2" if k < 3 else "deg/s"} for k in range(n)],
            "values": [[round(float(x), 5) for x in row] for row in _ei_values(take)],
        },
    }
    return json.dumps(doc)


def export(takes: list[Take], fmt: str, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    written = []
    for take in takes:
        if fmt == "edge-impulse-csv":
            path = out_dir / _name(take, "csv")
            atomic_write_text(path, to_csv(take))
        else:
            path = out_dir / _name(take, "json")
            atomic_write_text(path, to_json(take))
        written.append(path)
    return written
