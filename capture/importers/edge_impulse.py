"""Edge Impulse data: its data-acquisition format (JSON or CBOR), its CSV, and whole exports.

Data-acquisition format (JSON, or the same structure in CBOR as the C ingestion SDK writes it):
``{"protected": {...}, "signature": "...", "payload": {"device_name", "device_type",
"interval_ms", "sensors": [{"name", "units"}], "values": [[...], ...]}}``.
CSV: a ``timestamp`` column (ms) then one column per axis; ``,`` or ``;`` separated, with or
without a UTF-8 BOM (a ``;`` file may use decimal commas). An export is a folder with
``training/`` and ``testing/`` and an ``info.labels`` file (``{"version": 1, "files": [{"path",
"category", "label": {"type": "label", "label"}}]}``), at the root and/or in each sub-folder;
the label and the training/testing category come from it, else from the file name
(``label.sample-id.ext``) and the folder. Edge Impulse's "Export data" downloads the export as a
``.zip``: it is read as that folder (unpacked into a temporary folder; names in messages are the
zip's path followed by the member's).

Units are checked against gravity rather than trusted, and decided once per export or folder
(per declared unit) from all its files, not file by file: one take's median |a| may mislead (a
free fall in m/s^2 has a median of 0.4-3, like g), a whole export does not. A take in the right
unit reads 1 g at rest somewhere and does not sit above 3 g; the folder's unit is the declared
one unless most files cannot be in it, and an undeclared one (``N/A``, the data forwarder's) is
the unit most files can be in. A single file departs from its folder only when it cannot be in
the folder's unit and can be in another (a file of g declared m/s^2); each decision is one
notice. An unknown unit is refused unless ``--accel-units`` says what it is. Gyroscope values
become deg/s (rad/s converted).
"""
from __future__ import annotations

import csv
import functools
import io
import json
import re
import shutil
import tempfile
import zipfile
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import DataError
from capture.units import G
from capture.importers import (
    ImportResult,
    Notice,
    label_from_name,
    make_take,
    safe_label,
)
from capture.takes import Take

DATA_EXT = (".json", ".cbor", ".csv")
UNKNOWN_DEVICE = "UNKNOWN"  # what export-data writes when no device was ever recorded
CATEGORIES = ("training", "testing")
ABSURD_G = 64.0  # no IMU or phone measures more; beyond this a value is corrupt, not motion
ABSURD_DPS = 10000.0
MAX_ZIP_BYTES = 4 << 30  # unpacked: far above any real export, far below a zip bomb's
MIN_INTERVAL_MS = 0.2  # 5 kHz: no IMU streams faster (and t_ms is stored to 1 us)

ACC_UNITS = {"m/s2": "m/s2", "m/s^2": "m/s2", "m/s²": "m/s2", "ms2": "m/s2", "mps2": "m/s2", "m/s/s": "m/s2",
             "g": "g", "gs": "g", "gravity": "g", "mg": "mg", "milli-g": "mg", "millig": "mg"}
GYR_UNITS = {"dps": "deg/s", "deg/s": "deg/s", "°/s": "deg/s", "degrees/s": "deg/s", "deg/sec": "deg/s",
             "rad/s": "rad/s", "rads": "rad/s", "rad/sec": "rad/s", "mdps": "mdps"}
UNDECLARED = {"", "n/a", "na", "none", "unknown", "null", "-"}
TO_G = {"g": 1.0, "m/s2": 1.0 / G, "mg": 1e-3}
TO_DPS = {"deg/s": 1.0, "rad/s": 180.0 / np.pi, "mdps": 1e-3}
# median |a| of a take in each unit (gravity, give or take the motion)
GRAVITY_BANDS = {"g": (0.4, 3.0), "m/s2": (3.9, 30.0), "mg": (400.0, 3000.0)}

TIME_UNITS = {"": 1.0, "ms": 1.0, "millis": 1.0, "msec": 1.0, "millisecond": 1.0, "milliseconds": 1.0,
              "s": 1000.0, "sec": 1000.0, "second": 1000.0, "seconds": 1000.0,
              "us": 1e-3, "µs": 1e-3, "micros": 1e-3, "usec": 1e-3, "microsecond": 1e-3, "microseconds": 1e-3}
_UNIT_RE = re.compile(r"^(.*?)\s*[(\[]\s*([^)\]]*?)\s*[)\]]\s*$")  # "timestamp (millis)", "accX [m/s2]"
_AXIS_RE = re.compile(r"^(acc|accel|accelerometer|acceleration|a|linacc)?([xyz])$")
_GYRO_RE = re.compile(r"^(gyr|gyro|gyroscope|g|rot|rotation|angvel)([xyz])$")


def canonical(name: str) -> str | None:
    """``accx``..``accz``, ``gyrx``..``gyrz`` for the usual spellings of IMU axes, else None."""
    n = re.sub(r"[^a-z0-9]", "", str(name).lower())
    m = _GYRO_RE.match(n)
    if m:
        return "gyr" + m.group(2)
    m = _AXIS_RE.match(n)
    if m:
        return "acc" + m.group(2)
    return None


def gravity_unit(median_abs: float) -> str | None:
    for unit, (lo, hi) in GRAVITY_BANDS.items():
        if lo <= median_abs <= hi:
            return unit
    return None


NEAR_GRAVITY_G = (0.8, 1.25)  # |a| at rest: a take in the right unit passes through it somewhere
MAX_MEDIAN_G = GRAVITY_BANDS["g"][1]  # no take sits above this for most of its length


@dataclass
class RawImu:
    """One file's IMU columns as written, before any unit is applied: units are decided once for
    all the files of an export or folder (``group``), so the file's own reading never decides alone."""

    where: str
    values: np.ndarray  # every column as read
    names: list[str]
    acc: list[int]  # column indices of x, y, z acceleration
    gyr: list[int]  # of x, y, z angular rate, or empty
    acc_unit: str  # declared, as written
    gyr_unit: str
    group: str = ""

    @functools.cached_property
    def norms(self) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # absurd values are refused after scaling, with their row
            return np.linalg.norm(self.values[:, self.acc], axis=1)

    @functools.cached_property
    def median(self) -> float:
        return float(np.median(self.norms))

    def plausible(self, unit: str) -> bool:
        """In ``unit``, the take sits at most at MAX_MEDIAN_G and passes through 1 g (gravity at
        rest) in at least 2% of its samples: a free fall in m/s2 (median |a| 0.4-3) still rests
        before or after it, while g read as m/s2 never comes near 1 g."""
        a = self.norms * TO_G[unit]
        need = min(len(a), max(2, int(np.ceil(0.02 * len(a)))))
        with np.errstate(invalid="ignore"):
            near = int(np.count_nonzero((a >= NEAR_GRAVITY_G[0]) & (a <= NEAR_GRAVITY_G[1])))
        return bool(np.median(a) <= MAX_MEDIAN_G and near >= need)


def select_imu(values: np.ndarray, names: list[str], units: list[str], where: str) -> RawImu:
    """The acc (+gyro) columns in x, y, z order, with their declared units."""
    canon = [canonical(n) for n in names]
    missing = [a for a, c in zip(("accX", "accY", "accZ"), ("accx", "accy", "accz")) if c not in canon]
    if missing:
        raise DataError(where, f"no {'/'.join(missing)} column among the sensors {', '.join(map(str, names))}; "
                               "expected accX,accY,accZ[,gyrX,gyrY,gyrZ] (or accel_x.., ax.., x,y,z)")
    acc = [canon.index(a) for a in ("accx", "accy", "accz")]
    gyr = [canon.index(g) for g in ("gyrx", "gyry", "gyrz") if g in canon]
    if len(gyr) < 3:
        gyr = []
    unit_of = [(units[j] if j < len(units) else "") for j in range(len(names))]
    return RawImu(where, values, list(names), acc, gyr, unit_of[acc[0]], unit_of[gyr[0]] if gyr else "")


def _span(meds: list[float]) -> str:
    lo, hi = min(meds), max(meds)
    return f"{lo:.2f}" if len(meds) == 1 or abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}"


def _files(n: int) -> str:
    return f"{n} files" if n != 1 else "1 file"


class Units:
    """Unit decisions of one import: acceleration once per export/folder (and declared unit) from
    all its files, a single file apart only when it cannot be in that unit; one notice per decision."""

    def __init__(self, accel: str | None = None, gyro: str | None = None) -> None:
        self.accel = ACC_UNITS.get(accel.lower(), accel) if accel else None
        self.gyro = GYR_UNITS.get(gyro.lower(), gyro) if gyro else None
        if self.accel is not None and self.accel not in TO_G:
            raise DataError("--accel-units", f"{accel!r} is not one of g, m/s2, mg")
        if self.gyro is not None and self.gyro not in TO_DPS:
            raise DataError("--gyro-units", f"{gyro!r} is not one of deg/s, rad/s, mdps")
        self.gyro_seen: dict[str, list[str]] = {}
        self.messages: list[str] = []

    def notices(self) -> list[str]:
        out = [Notice("units", m) for m in self.messages]
        for declared, where in sorted(self.gyro_seen.items()):
            shown = repr(declared) if declared else "none given"
            out.append(Notice("units", f"{_files(len(where))} declare{'s' if len(where) == 1 else ''} no gyroscope unit "
                                       f"({shown}); read as deg/s (pass --gyro-units rad/s if not), e.g. {where[0]}"))
        return out

    def accel_scales(self, raws: list[RawImu]) -> list[float | DataError]:
        """The g-per-unit factor of each file (or why it has none), deciding per group."""
        if self.accel:
            return [TO_G[self.accel]] * len(raws)
        out: list[float | DataError] = [0.0] * len(raws)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, r in enumerate(raws):
            d = r.acc_unit.strip().lower()
            unit = ACC_UNITS.get(d)
            if unit is None and d not in UNDECLARED:
                seen = gravity_unit(r.median)
                hint = f"; the median |a| of {r.median:.3g} looks like {seen}: pass --accel-units {seen}" if seen else ""
                out[i] = DataError(r.where, f"acceleration unit {r.acc_unit!r} is not one of m/s2, g, mg or N/A{hint}",
                                   field="units")
                continue
            groups.setdefault((r.group, unit or ""), []).append(i)
        for (group, declared), idx in groups.items():
            self._decide(group, declared, idx, [raws[i] for i in idx], out)
        return out

    def _decide(self, group: str, declared: str, idx: list[int], rs: list[RawImu], out: list[float | DataError]) -> None:
        where = f" in {group}" if group else ""
        ok = {u: [r for r in rs if r.plausible(u)] for u in TO_G}
        meds = [r.median for r in rs]
        best = max(TO_G, key=lambda u: (len(ok[u]), gravity_unit(float(np.median(meds))) == u))
        unit = declared or None
        mismatch = bool(declared and 2 * len(ok[declared]) < len(rs) and len(ok[best]) > len(ok[declared]))
        if mismatch:
            unit = best  # most files cannot be in the declared unit and can be in another
        elif not declared:
            unit = best if ok[best] else gravity_unit(float(np.median(meds)))
            if unit is None:
                for i, r in zip(idx, rs):
                    out[i] = DataError(r.where, f"no acceleration unit declared ({r.acc_unit!r}) and the median |a| of "
                                                f"{r.median:.3g} is not near 1 g, 9.81 m/s2 or 1000 mg; pass --accel-units",
                                       field="units")
                return
        assert unit is not None
        main: list[RawImu] = []
        apart: dict[str, list[RawImu]] = {}
        along: list[RawImu] = []
        for i, r in zip(idx, rs):
            own = gravity_unit(r.median)
            if not r.plausible(unit):
                others = [u for u in TO_G if u != unit and r.plausible(u)]
                if others:  # cannot be in the folder's unit and can be in another: this file alone
                    u = own if own in others else others[0]
                    apart.setdefault(u, []).append(r)
                    out[i] = TO_G[u]
                    continue
            elif own is not None and own != unit:
                along.append(r)
            main.append(r)
            out[i] = TO_G[unit]

        def declare(files: list[RawImu]) -> str:
            return f"{_files(len(files))}{where} declare{'s' if len(files) == 1 else ''}"

        def shown(files: list[RawImu]) -> str:
            return ", ".join(sorted({repr(r.acc_unit) if r.acc_unit else "none given" for r in files}))
        if main and mismatch:
            self.messages.append(f"{declare(main)} acceleration in {shown(main)} but the median |a| is "
                                 f"{_span([r.median for r in main])} and they read 1 g at rest only in {unit} (gravity is "
                                 f"1 g = 9.81 m/s2): read as {unit}, decided once for the folder (pass --accel-units to "
                                 f"force), e.g. {main[0].where}")
        elif main and not declared:
            self.messages.append(f"{declare(main)} no acceleration unit ({shown(main)}); the median |a| of "
                                 f"{_span([r.median for r in main])} says {unit}: read as {unit}, decided once for the "
                                 f"folder, e.g. {main[0].where}")
        for u, files in apart.items():
            what = f"acceleration in {shown(files)}" if declared else f"no acceleration unit ({shown(files)})"
            self.messages.append(f"{declare(files)} {what} but the median |a| is {_span([r.median for r in files])} "
                                 f"(gravity is 1 g = 9.81 m/s2), which says {u} and never reads 1 g at rest in {unit}, "
                                 f"the unit of the folder: read as {u} (pass --accel-units to force), e.g. {files[0].where}")
        if along:
            self.messages.append(f"{_files(len(along))}{where} alone would look like another unit (median |a| "
                                 f"{_span([r.median for r in along])}, e.g. free fall) but read 1 g at rest in {unit}: "
                                 f"read as {unit} like the rest of the folder, e.g. {along[0].where}")

    def gyro_scale(self, where: str, declared: str) -> float:
        if self.gyro:
            return TO_DPS[self.gyro]
        d = declared.strip().lower()
        unit = GYR_UNITS.get(d)
        if unit is None and d not in UNDECLARED:
            raise DataError(where, f"gyroscope unit {declared!r} is not one of deg/s, dps, rad/s or N/A; "
                                   "pass --gyro-units", field="units")
        if unit is None:
            self.gyro_seen.setdefault(declared, []).append(where)
            return 1.0
        return TO_DPS[unit]


def to_kit_units(raw: RawImu, acc_scale: float, conv: Units) -> np.ndarray:
    """The acc (+gyro) columns in g and deg/s; a value beyond any IMU's range refuses the file."""
    out = [raw.values[:, raw.acc] * acc_scale]
    if raw.gyr:
        out.append(raw.values[:, raw.gyr] * conv.gyro_scale(raw.where, raw.gyr_unit))
    v = np.concatenate(out, axis=1)
    cols = [raw.names[j] for j in raw.acc + raw.gyr]
    limits = [ABSURD_G] * 3 + [ABSURD_DPS] * 3
    for k, col in enumerate(cols):
        bad = np.flatnonzero(np.abs(v[:, k]) > limits[k])
        if len(bad):
            raise DataError(raw.where, f"row {int(bad[0])} holds {raw.values[bad[0], (raw.acc + raw.gyr)[k]]:.6g}, beyond "
                                       f"any IMU's range ({limits[k]:g} {'g' if k < 3 else 'deg/s'}); the file is corrupt",
                            field=str(col))
    return v


# ----------------------------------------------------------------------------- one file

def _decode_text(src: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(src, "neither CBOR nor UTF-8 text; expected an Edge Impulse .json, .cbor or .csv file",
                        offset=e.start)


def _load_doc(src: Path, data: bytes) -> Any:
    """JSON or CBOR, by content (an EI CBOR file starts with a map byte, JSON with '{')."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if src.suffix.lower() == ".cbor" or (head and head[0] >= 0xA0 and head != b"{"):
        import cbor2
        try:
            return cbor2.loads(data)
        except (cbor2.CBORDecodeError, ValueError, EOFError) as e:
            raise DataError(src, f"invalid CBOR ({e}); expected Edge Impulse's data-acquisition format")
    try:
        return json.loads(_decode_text(src, data))
    except json.JSONDecodeError as e:
        raise DataError(src, f"invalid JSON: {e.msg}", line=e.lineno)


def _number_rows(src: Path, values: Any, n_sensors: int) -> np.ndarray:
    if not isinstance(values, list) or not values:
        raise DataError(src, "values must be a non-empty list of rows", field="payload.values")
    if not isinstance(values[0], list):  # a single-axis payload is a flat list
        values = [[v] for v in values]
    for i, row in enumerate(values):
        if not isinstance(row, list) or len(row) != n_sensors:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise DataError(src, f"row {i} has {got} values; expected {n_sensors} (one per sensor)", field="payload.values")
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise DataError(src, f"row {i} value {j} is {v!r}, not a number", field="payload.values")
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        i, j = (int(x) for x in np.argwhere(~np.isfinite(arr))[0])
        raise DataError(src, f"row {i} value {j} is {arr[i, j]} (NaN or infinite)", field="payload.values")
    return arr


def read_acquisition(src: Path, data: bytes) -> tuple[RawImu, float, dict]:
    """(IMU columns as written, interval_ms, meta) from a JSON or CBOR data-acquisition document."""
    doc = _load_doc(src, data)
    payload = doc.get("payload") if isinstance(doc, dict) else None
    if not isinstance(payload, dict):
        raise DataError(src, "no 'payload' object; expected Edge Impulse's data-acquisition format", field="payload")
    for key in ("interval_ms", "sensors", "values"):
        if key not in payload:
            raise DataError(src, f"payload has no '{key}'", field=f"payload.{key}")
    interval = payload["interval_ms"]
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not np.isfinite(interval) or not 0 < interval < 1e6:
        raise DataError(src, f"interval_ms is {interval!r}; expected a positive number of milliseconds", field="payload.interval_ms")
    if interval < MIN_INTERVAL_MS:
        raise DataError(src, f"interval_ms is {interval:g}, over {1000 / MIN_INTERVAL_MS:g} Hz for an IMU; expected the "
                             "milliseconds between samples (seconds? multiply by 1000)", field="payload.interval_ms")
    sensors = payload["sensors"]
    if not isinstance(sensors, list) or not all(isinstance(s, dict) for s in sensors):
        raise DataError(src, "sensors must be a list of {name, units} objects", field="payload.sensors")
    names = [str(s.get("name", "")) for s in sensors]
    units = [str(s.get("units", "")) for s in sensors]
    values = payload["values"]
    if isinstance(values, list) and values and isinstance(values[0], list) and len(values[0]) != len(sensors):
        shape = (len(values), len(values[0]))
        raise DataError(src, f"values have shape {shape}; expected rows of {len(sensors)} numbers (one per sensor)",
                        field="payload.values")
    arr = _number_rows(src, values, len(sensors))
    device = str(payload.get("device_type") or "")
    meta = {"device": "" if device == UNKNOWN_DEVICE else device, "device_name": str(payload.get("device_name") or "")}
    return select_imu(arr, names, units, str(src)), float(interval), {k: v for k, v in meta.items() if v}


def split_unit(cell: str) -> tuple[str, str]:
    """``timestamp (millis)`` -> (``timestamp``, ``millis``): a unit in parentheses or brackets."""
    m = _UNIT_RE.match(cell)
    return (m.group(1).strip(), m.group(2)) if m else (cell, "")


def read_csv_text(src: Path, text: str) -> tuple[np.ndarray, RawImu]:
    """(t_ms from 0, IMU columns as written) from an Edge Impulse CSV.

    A header cell may carry its unit in parentheses (``timestamp (millis)``, ``accX (m/s2)``):
    the time unit scales the timestamps to ms, an axis's unit is its declared unit."""
    first = text.split("\n", 1)[0]
    sep = ";" if first.count(";") > first.count(",") else ("\t" if first.count("\t") > first.count(",") else ",")
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    header = [h.strip() for h in next(reader, [])]
    if not header or not any(header):
        raise DataError(src, "empty file; expected a header timestamp,accX,accY,accZ[,gyrX,gyrY,gyrZ]", line=1)
    names, col_units = zip(*(split_unit(h) for h in header))
    if names[0].lower() != "timestamp":
        raise DataError(src, f"first column is {header[0]!r}; expected 'timestamp' (Edge Impulse CSV)", line=1, field=header[0])
    t_unit = col_units[0].lower()
    if t_unit not in TIME_UNITS:
        raise DataError(src, f"timestamp unit {col_units[0]!r} is not one of ms, millis, s, us", line=1, field=header[0])
    rows: list[list[float]] = []
    for lineno, cells in enumerate(reader, start=2):
        if not cells or not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise DataError(src, f"{len(cells)} cells; expected {len(header)} ({sep.join(header)})", line=lineno)
        row = []
        for name, cell in zip(header, cells):
            c = cell.strip().replace(",", ".") if sep == ";" else cell.strip()
            try:
                v = float(c)
            except ValueError:
                raise DataError(src, f"{cell.strip()!r} is not a number", line=lineno, field=name)
            if not np.isfinite(v):
                raise DataError(src, f"{cell.strip()!r} is not a finite number (NaN/inf)", line=lineno, field=name)
            row.append(v)
        if rows and row[0] <= rows[-1][0]:
            raise DataError(src, "timestamp does not increase", line=lineno, field="timestamp")
        rows.append(row)
    if not rows:
        raise DataError(src, "no data rows after the header", line=2)
    arr = np.asarray(rows)
    arr[:, 0] *= TIME_UNITS[t_unit]
    if len(arr) > 1 and float(np.median(np.diff(arr[:, 0]))) < MIN_INTERVAL_MS:
        raise DataError(src, f"timestamps step by {float(np.median(np.diff(arr[:, 0]))):g}, over 5 kHz for an IMU; "
                             "Edge Impulse CSV timestamps are milliseconds (seconds? name the column 'timestamp (s)')", field="timestamp")
    return arr[:, 0] - arr[0, 0], select_imu(arr[:, 1:], list(names[1:]), list(col_units[1:]), str(src))


@dataclass
class Parsed:
    """One file read but not yet converted (its acceleration unit is decided with its folder's)."""

    raw: RawImu
    label: str
    meta: dict
    interval_ms: float | None = None  # JSON/CBOR
    t_ms: np.ndarray | None = None  # CSV

    def take(self, acc_scale: float, conv: Units) -> Take:
        values = to_kit_units(self.raw, acc_scale, conv)
        if self.t_ms is None:
            assert self.interval_ms is not None
            return make_take(self.label, values, 1000.0 / self.interval_ms, {**self.meta, "interval_ms": self.interval_ms})
        t = self.t_ms
        take = make_take(self.label, values, 0.0 if len(t) < 2 else 1000.0 / float(np.median(np.diff(t))), self.meta, t_ms=t)
        take.meta.pop("rate_hz")  # measured from the timestamps, not nominal
        return take


def parse_file(src: Path, label: str, meta: dict) -> Parsed:
    try:
        data = src.read_bytes()
    except OSError as e:
        raise DataError(src, f"cannot read: {e.strerror or e}")
    if not data.strip():
        raise DataError(src, "empty file")
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if src.suffix.lower() in (".json", ".cbor") or head == b"{" or (head and head[0] >= 0xA0):
        raw, interval, extra = read_acquisition(src, data)
        return Parsed(raw, label, {**meta, **extra}, interval_ms=interval)
    t, raw = read_csv_text(src, _decode_text(src, data))
    return Parsed(raw, label, meta, t_ms=t)


# ----------------------------------------------------------------------------- folders, info.labels

@functools.lru_cache(maxsize=16)
def _read_info(path: Path, mtime_ns: int) -> tuple[dict[Path, dict], dict[str, dict]]:
    """One info.labels by resolved path and by file name (cached: a shell glob of thousands of
    files from one export reads it once, not once per file)."""
    by_path: dict[Path, dict] = {}
    by_name: dict[str, dict] = {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(path, f"invalid JSON ({getattr(e, 'msg', e)}); expected Edge Impulse's info.labels")
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        raise DataError(path, "no 'files' list; expected {\"version\": 1, \"files\": [...]}", field="files")
    for k, entry in enumerate(files):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise DataError(path, f"entry {k} has no 'path'", field=f"files[{k}].path")
        by_path.setdefault((path.parent / entry["path"]).resolve(), entry)
        by_name.setdefault(Path(entry["path"]).name, entry)
    return by_path, by_name


def _info_labels(infos: list[Path], notes: list[str]) -> tuple[dict[Path, dict], dict[str, dict]]:
    """Entries of these info.labels files; a broken one is skipped with a notice (file names then give labels)."""
    by_path: dict[Path, dict] = {}
    by_name: dict[str, dict] = {}
    for info in infos:
        try:
            p, n = _read_info(info.resolve(), info.stat().st_mtime_ns)
        except DataError as e:
            notes.append(Notice("skipped", f"skipped {e}; labels come from the file names"))
            continue
        for path, entry in p.items():
            by_path.setdefault(path, entry)
        for name, entry in n.items():
            by_name.setdefault(name, entry)
    return by_path, by_name


def _entry_label(entry: dict, where: str) -> str | None:
    lab = entry.get("label")
    if isinstance(lab, dict):
        if lab.get("type") == "label" and isinstance(lab.get("label"), str):
            return lab["label"]
        if lab.get("type") == "unlabeled":
            return None
        raise DataError(where, f"info.labels gives a {lab.get('type')!r} label; only single labels (type 'label') can be imported")
    if isinstance(lab, str):
        return lab
    return None


def is_zip(src: Path) -> bool:
    if not src.is_file():
        return False
    if src.suffix.lower() == ".zip":
        return True
    try:
        with src.open("rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def unpack_zip(src: Path, into: Path) -> Path:
    """An export .zip's data files and info.labels unpacked under ``into/<zip name>``; nothing
    outside it (absolute or ``..`` member names are refused) and at most MAX_ZIP_BYTES."""
    root = into / src.name
    try:
        with zipfile.ZipFile(src) as z:
            members = [m for m in z.infolist() if not m.is_dir()
                       and (Path(m.filename).suffix.lower() in DATA_EXT or Path(m.filename).name == "info.labels")]
            if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise DataError(src, f"unpacks to over {MAX_ZIP_BYTES >> 30} GiB; unzip it yourself and import the folder")
            for m in members:
                parts = Path(m.filename.replace("\\", "/")).parts
                if m.filename.startswith(("/", "\\")) or ".." in parts or not parts or ":" in parts[0]:
                    raise DataError(src, f"member {m.filename!r} points outside the archive; refused")
                dest = root.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as fin, dest.open("wb") as fout:
                    shutil.copyfileobj(fin, fout)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as e:
        raise DataError(src, f"not a readable zip archive ({e}); expected Edge Impulse's \"Export data\" .zip")
    except OSError as e:
        raise DataError(src, f"cannot unpack: {e.strerror or e}")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _collect(src: Path, stack: ExitStack | None = None, unpacked: dict[str, str] | None = None
             ) -> tuple[list[Path], list[Path], str | None]:
    """(data files, info.labels files, the folder whose files share unit decisions, None for a
    single file) of one source: a file, a folder, an export root or its .zip."""
    if not src.exists():
        raise DataError(src, "not found; expected an Edge Impulse .json/.cbor/.csv file, a folder of them, an export folder "
                             "or its .zip")
    if stack is not None and is_zip(src):
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gesture-ei-zip-")))
        root = unpack_zip(src, tmp)
        if unpacked is not None:
            unpacked[str(root)] = str(src)
        try:
            return _collect(root)[:2] + (str(root),)
        except DataError:
            raise DataError(src, "no .json, .cbor or .csv files in this zip")
    if src.name == "info.labels":  # given explicitly (or by a shell glob): labels, not data
        return [], [src], None
    if src.is_file():  # its info.labels: in its folder, or at the export root above training/ or testing/
        return [src], [d / "info.labels" for d in (src.parent, src.parent.parent) if (d / "info.labels").is_file()], None
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in DATA_EXT
                   and not any(part.startswith(".") for part in p.relative_to(src).parts))
    if not files:
        raise DataError(src, "no .json, .cbor or .csv files in this folder")
    return files, sorted(src.rglob("info.labels")), str(src)


def read(src: Path | list[Path], label: str | None = None, subject: str | None = None, *,
         accel_units: str | None = None, gyro_units: str | None = None, quiet: bool = True,
         label_from: str | None = None, **_options) -> ImportResult:
    """Files, folders of files, export roots (training/, testing/, info.labels) or their .zip, read as one batch.

    One batch, so that thousands of files from a shell glob give one notice per unit decision
    and read their info.labels once; a bad file among several is skipped with a notice.
    A zip is unpacked into a temporary folder for the batch; messages name it by the zip's path.
    """
    sources = [Path(p) for p in src] if isinstance(src, (list, tuple)) else [Path(src)]
    conv = Units(accel_units, gyro_units)
    with ExitStack() as stack:
        unpacked: dict[str, str] = {}

        def shown(text: str) -> str:
            for tmp, zip_path in unpacked.items():
                text = text.replace(tmp, zip_path)
            return text
        try:
            out = _read(sources, label, subject, conv, quiet, stack, unpacked, label_from or "auto")
        except DataError as e:
            if not unpacked:
                raise
            e.path, e.args = shown(e.path), (shown(str(e)),)
            raise
        out.warnings = [Notice(getattr(w, "kind", "other"), shown(w)) for w in out.warnings]
        return out


def _read(sources: list[Path], label: str | None, subject: str | None, conv: Units, quiet: bool,
          stack: ExitStack, unpacked: dict[str, str], label_from: str) -> ImportResult:
    out = ImportResult()
    files: list[Path] = []
    infos: list[Path] = []
    group: dict[Path, str] = {}  # the export or folder each file's unit is decided with
    for s in sources:
        try:
            f, i, g = _collect(s, stack, unpacked)
        except DataError as e:
            if len(sources) == 1:
                raise
            out.skipped += 1
            out.warnings.append(Notice("skipped", f"skipped {e}"))
            continue
        files += f
        infos += [x for x in i if x not in infos]
        for path in f:  # a file given alone goes with the other files of its export (or folder)
            group.setdefault(path, g or str(path.parent.parent if path.parent.name in CATEGORIES else path.parent))
    by_path, by_name = _info_labels(infos, out.warnings)
    src = sources[0] if len(sources) == 1 else Path(f"{len(sources)} sources")
    labels: Counter = Counter()
    outside: list[Path] = []
    parsed: list[tuple[Parsed, bool]] = []
    bar = None
    if not quiet and len(files) > 50:
        from tqdm import tqdm
        bar = tqdm(total=len(files), unit="file", desc="edge-impulse", leave=False)
    for path in files:
        if bar is not None:
            bar.update(1)
        try:
            entry = by_path.get(path.resolve()) or by_name.get(path.name)
            meta: dict[str, Any] = {"source": f"edge-impulse:{path.name}"}
            raw = None
            if entry is not None:
                raw = _entry_label(entry, str(path))
                if entry.get("category") in CATEGORIES:
                    meta["category"] = entry["category"]
                extra = entry.get("metadata")
                if isinstance(extra, dict):  # per-sample metadata: export-data writes subject/session here
                    meta.update({k: str(extra[k]) for k in ("subject", "session") if extra.get(k)})
            else:
                if by_path:
                    outside.append(path)
                if path.parent.name in CATEGORIES:
                    meta["category"] = path.parent.name
            from_name = False
            if label:
                name = label_from_name(path, label)
            elif label_from == "folder":
                folder = path.resolve().parent.name
                name = label_from_name(path, None, label_from="folder")
                if name != folder:
                    labels[(folder, name)] += 1
            elif raw is not None and label_from == "auto":
                name, note = safe_label(raw, f"{path} (info.labels)")
                if note is not None:
                    labels[(raw, name)] += 1
            else:
                stem = path.name.split(".")[0]
                name = label_from_name(path, None, suggest=False)
                from_name = label_from == "auto"
                if name != stem:
                    labels[(stem, name)] += 1
            if subject:
                meta["subject"] = subject
            p = parse_file(path, name, meta)
            p.raw.group = group[path]
            parsed.append((p, from_name))
        except DataError as e:
            if len(files) == 1:
                raise
            out.skipped += 1
            out.warnings.append(Notice("skipped", f"skipped {e}"))
    if bar is not None:
        bar.close()
    # acceleration units: decided once per export/folder from all its files, then each file converted
    for (p, from_name), scale in zip(parsed, conv.accel_scales([p.raw for p, _ in parsed])):
        try:
            if isinstance(scale, DataError):
                raise scale
            out.takes.append(p.take(scale, conv))
            out.files += 1
            if from_name:
                out.name_labels.append((p.label, Path(p.raw.where)))
        except DataError as e:
            if len(files) == 1:
                raise
            out.skipped += 1
            out.warnings.append(Notice("skipped", f"skipped {e}"))
    for (raw, name), n in sorted(labels.items()):
        out.warnings.append(Notice("label", f"label {raw!r} is stored as {name!r} ({n} file(s)): labels name a folder "
                                            "and a C++ string (letters, digits, '_' or '-')"))
    if outside:
        out.warnings.append(Notice("category", f"{len(outside)} file(s) are not listed in info.labels; their label comes "
                                               f"from the file name and their category from the folder, e.g. {outside[0]}"))
    out.warnings += conv.notices()
    if not out.takes:
        raise DataError(src, f"nothing imported: {out.skipped} file(s) skipped"
                             + (f"; first: {out.warnings[0]}" if out.warnings else ""))
    return out
