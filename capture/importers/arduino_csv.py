"""The Arduino TinyML tutorial's ``IMU_Capture.ino`` output, as copied from the Serial Monitor.

A header ``aX,aY,aZ,gX,gY,gZ`` then rows of six numbers (g, deg/s), 119 rows per gesture at
119 Hz, with a blank line after each gesture. Copies often lose the blank lines or end in a
partial gesture: without blank lines the rows are cut every 119; a short last block is dropped
with a warning that names its line.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from capture.errors import DataError
from capture.importers import ImportResult, label_from_name, make_take

RATE_HZ = 119
SAMPLES_PER_GESTURE = 119  # numSamples in IMU_Capture.ino
HEADER = ["aX", "aY", "aZ", "gX", "gY", "gZ"]


def read(src: Path, label: str | None = None, subject: str | None = None) -> ImportResult:
    src = Path(src)
    try:
        lines = src.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(src, f"cannot read as text: {e}")
    name = label_from_name(src, label)
    first = next((i for i, l in enumerate(lines) if l.strip()), None)
    if first is None:
        raise DataError(src, "empty file; expected the header aX,aY,aZ,gX,gY,gZ and rows of 6 numbers", line=1)
    header = [c.strip() for c in lines[first].split(",")]
    if header != HEADER:
        raise DataError(src, f"header is {lines[first].strip()!r}; expected 'aX,aY,aZ,gX,gY,gZ' (IMU_Capture.ino output)", line=first + 1)

    blocks: list[tuple[int, list[list[float]]]] = []
    rows: list[list[float]] = []
    saw_blank = False
    for lineno, line in enumerate(lines[first + 1:], start=first + 2):
        if not line.strip():
            saw_blank = True
            if rows:
                blocks.append((lineno - len(rows), rows))
                rows = []
            continue
        cells = line.split(",")
        if len(cells) != 6:
            raise DataError(src, f"{len(cells)} values; expected 6 (aX,aY,aZ,gX,gY,gZ)", line=lineno)
        row = []
        for col, cell in zip(HEADER, cells):
            try:
                row.append(float(cell))
            except ValueError:
                raise DataError(src, f"{cell.strip()!r} is not a number", line=lineno, field=col)
        if not np.all(np.isfinite(row)):
            raise DataError(src, "NaN or infinite value", line=lineno)
        rows.append(row)
    if rows:
        blocks.append((len(lines) + 1 - len(rows), rows))
    if not saw_blank and blocks:  # no separators: cut every SAMPLES_PER_GESTURE rows
        line0, allrows = blocks[0]
        blocks = [(line0 + k, allrows[k:k + SAMPLES_PER_GESTURE]) for k in range(0, len(allrows), SAMPLES_PER_GESTURE)]

    out = ImportResult(defaults={"sample_rate_hz": RATE_HZ, "board": "Arduino Nano 33 BLE Sense"})
    for i, (line0, block) in enumerate(blocks):
        if len(block) < SAMPLES_PER_GESTURE:
            out.warnings.append(f"{src}, line {line0}: gesture of {len(block)} rows is shorter than {SAMPLES_PER_GESTURE}; dropped")
            continue
        meta = {"source": f"arduino-csv:{src.name}#line{line0}", "rate_hz": RATE_HZ}
        if subject:
            meta["subject"] = subject
        out.takes.append(make_take(name, np.asarray(block), RATE_HZ, meta))
    if not out.takes:
        raise DataError(src, f"no complete gesture of {SAMPLES_PER_GESTURE} rows found")
    return out
