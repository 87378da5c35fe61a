"""The Arduino TinyML tutorial's ``IMU_Capture.ino`` output, as copied from the Serial Monitor.

The sketch prints a header ``aX,aY,aZ,gX,gY,gZ``, then waits until ``|aX|+|aY|+|aZ|`` reaches
2.5 g, prints the next 119 samples (g, deg/s, 119 Hz) one row each, and a blank line; repeat.
Real copies vary, and each variant is handled rather than refused:

* blank lines lost: a block of k x 119 rows is cut into k gestures; without any blank line the
  rows are cut every 119 (a short last block is dropped with a notice naming its line);
* a blank line after *every* row (some terminals, some editors): the usual gap between rows is
  then one blank line, and gestures are separated by runs longer than that usual gap;
* irregular blank lines (a block that is not a whole number of gestures): the block is split
  again the way the sketch itself splits the stream, at the 2.5 g trigger with 119 rows per
  gesture, with a notice (never imported as one 40-second take);
* the header repeated mid-file (the board was reset, or files were concatenated): a separator;
* the header written twice side by side (``aX,…,gZ,,aX,…,gZ``, two recordings pasted as
  columns of one sheet): each column group is read as its own recording.
"""
from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np

from capture.errors import DataError
from capture.importers import ImportResult, Notice, label_from_name, make_take

RATE_HZ = 119
SAMPLES_PER_GESTURE = 119  # numSamples in IMU_Capture.ino
TRIGGER_G = 2.5  # accelerationThreshold in IMU_Capture.ino (summed |a|, in g)
HEADER = ["aX", "aY", "aZ", "gX", "gY", "gZ"]
HARD = 1 << 30  # gap value meaning "a repeated header": always a separator


def _read_text(src: Path) -> str:
    try:
        data = src.read_bytes()
    except OSError as e:
        raise DataError(src, f"cannot read: {e.strerror or e}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(src, "not UTF-8 text; expected the Serial Monitor text of IMU_Capture.ino "
                             "(header aX,aY,aZ,gX,gY,gZ)", offset=e.start)


def _header_groups(cells: list[str]) -> list[int] | None:
    """Start columns of each ``aX..gZ`` group in a header row, or None if it is not a header."""
    starts, k = [], 0
    while k < len(cells):
        if cells[k] == "":
            k += 1
            continue
        if cells[k:k + 6] != HEADER:
            return None
        starts.append(k)
        k += 6
    return starts or None


class _Stream:
    """One recording's rows (one column group of the file), with the blank-line gap before each."""

    def __init__(self, col: int, name: str) -> None:
        self.col = col
        self.name = name
        self.rows: list[list[float]] = []
        self.lines: list[int] = []
        self.gaps: list[int] = []
        self.pending = 0

    def blank(self, hard: bool = False) -> None:
        self.pending = HARD if hard else self.pending + 1

    def add(self, lineno: int, row: list[float]) -> None:
        self.rows.append(row)
        self.lines.append(lineno)
        self.gaps.append(self.pending if self.rows[:-1] else 0)
        self.pending = 0


def _parse(src: Path, text: str) -> list[_Stream]:
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError(src, "empty file; expected the header aX,aY,aZ,gX,gY,gZ and rows of 6 numbers", line=1)
    header = [c.strip() for c in lines[first].split(",")]
    starts = _header_groups(header)
    if starts is None:
        raise DataError(src, f"header is {lines[first].strip()!r}; expected 'aX,aY,aZ,gX,gY,gZ' (IMU_Capture.ino output)",
                        line=first + 1)
    streams = [_Stream(c, "" if len(starts) == 1 else f" (column group {i + 1})") for i, c in enumerate(starts)]
    width = starts[-1] + 6
    for lineno, line in enumerate(lines[first + 1:], start=first + 2):
        if not line.strip():
            for s in streams:
                s.blank()
            continue
        cells = [c.strip() for c in line.split(",")]
        if _header_groups(cells) is not None:  # header printed again: a reset or a concatenation
            for s in streams:
                s.blank(hard=True)
            continue
        while len(cells) > width and cells[-1] == "":
            cells.pop()
        if len(streams) == 1 and len(cells) != 6:
            raise DataError(src, f"{len(cells)} values; expected 6 (aX,aY,aZ,gX,gY,gZ)", line=lineno)
        if len(cells) > width:
            raise DataError(src, f"{len(cells)} cells; expected at most {width} ({len(streams)} groups of aX..gZ)", line=lineno)
        for s in streams:
            part = (cells[s.col:s.col + 6] + [""] * 6)[:6]
            if all(c == "" for c in part):
                s.blank()
                continue
            row = []
            for col, cell in zip(HEADER, part):
                try:
                    v = float(cell)
                except ValueError:
                    raise DataError(src, f"{cell!r} is not a number", line=lineno, field=col + s.name)
                if not np.isfinite(v):
                    raise DataError(src, f"{cell!r} is not a finite number", line=lineno, field=col + s.name)
                row.append(v)
            s.add(lineno, row)
    return streams


def _trigger_split(block: np.ndarray) -> tuple[list[int], int]:
    """Gesture starts found as the sketch finds them: first row with summed |a| >= 2.5 g, then 119 rows."""
    asum = np.abs(block[:, :3]).sum(axis=1)
    starts, p = [], 0
    while True:
        hits = np.flatnonzero(asum[p:] >= TRIGGER_G)
        if not len(hits) or p + hits[0] + SAMPLES_PER_GESTURE > len(block):
            break
        q = p + int(hits[0])
        starts.append(q)
        p = q + SAMPLES_PER_GESTURE
    return starts, len(block) - SAMPLES_PER_GESTURE * len(starts)


def _gestures(src: Path, s: _Stream, out: ImportResult) -> list[tuple[int, np.ndarray]]:
    """(first line, 119 x 6 rows) for every complete gesture of one stream."""
    if not s.rows:
        return []
    rows = np.asarray(s.rows)
    gaps = np.asarray(s.gaps[1:])
    # the usual gap between rows of one gesture: 0 normally, 1 when a blank line follows every row
    soft = gaps[gaps < HARD]
    usual = Counter(soft.tolist()).most_common(1)[0][0] if len(soft) else 0
    cuts = [0] + [k + 1 for k, g in enumerate(gaps) if g > usual] + [len(rows)]
    n = SAMPLES_PER_GESTURE
    # a stray blank line inside one gesture: two short blocks that make exactly one gesture
    k = 1
    while k < len(cuts) - 1:
        a, m, b = cuts[k - 1], cuts[k], cuts[k + 1]
        if m - a < n and b - m < n and b - a == n and gaps[m - 1] < HARD:
            out.warnings.append(Notice("split", f"{src}, line {s.lines[m]}{s.name}: blank line inside a gesture "
                                                f"({m - a} + {b - m} rows); joined into one gesture"))
            del cuts[k]
        else:
            k += 1
    found: list[tuple[int, np.ndarray]] = []
    single = len(cuts) == 2
    for a, b in itertools.pairwise(cuts):
        block, line0 = rows[a:b], s.lines[a]
        if len(block) == n:
            found.append((line0, block))
        elif single or len(block) % n == 0 or len(block) < n:
            whole = len(block) // n
            for k in range(whole):
                found.append((s.lines[a + k * n], block[k * n:(k + 1) * n]))
            if whole > 1 and not single:
                out.warnings.append(Notice("split", f"{src}, line {line0}{s.name}: {len(block)} rows without a blank line "
                                                    f"between gestures; cut into {whole} gestures of {n} rows"))
            if len(block) % n:
                tail = a + whole * n
                out.warnings.append(Notice("dropped", f"{src}, line {s.lines[tail]}{s.name}: gesture of {len(block) - whole * n} "
                                                      f"rows is shorter than {n}; dropped"))
        else:
            starts, left = _trigger_split(block)
            for q in starts:
                found.append((s.lines[a + q], block[q:q + n]))
            out.warnings.append(Notice("threshold", f"{src}, line {line0}{s.name}: {len(block)} rows between blank lines are not "
                                                    f"a whole number of {n}-row gestures (irregular blank lines); split at the "
                                                    f"sketch's trigger (|aX|+|aY|+|aZ| >= {TRIGGER_G:g} g) into {len(starts)} "
                                                    f"gestures, {left} rows left out"))
    return found


def read(src: Path, label: str | None = None, subject: str | None = None, *, label_from: str | None = None,
         **_options) -> ImportResult:
    src = Path(src)
    if not src.is_file():
        raise DataError(src, "not found; expected a .csv file copied from IMU_Capture.ino's Serial Monitor")
    streams = _parse(src, _read_text(src))
    out = ImportResult(defaults={"sample_rate_hz": RATE_HZ, "board": "Arduino Nano 33 BLE Sense"})
    name = label_from_name(src, label, out.warnings, label_from=label_from or "auto", suggest=label_from != "folder")
    for s in streams:
        for line0, block in _gestures(src, s, out):
            where = f"#line{line0}" + (f",col{s.col + 1}" if len(streams) > 1 else "")
            meta = {"source": f"arduino-csv:{src.name}{where}", "rate_hz": RATE_HZ,
                    "device": "ARDUINO_NANO33BLE"}
            if subject:
                meta["subject"] = subject
            out.takes.append(make_take(name, block, RATE_HZ, meta))
    if not out.takes:
        raise DataError(src, f"no complete gesture of {SAMPLES_PER_GESTURE} rows found")
    if not label and (label_from or "auto") == "auto":
        out.name_labels.append((name, src))
    out.files = 1
    return out
