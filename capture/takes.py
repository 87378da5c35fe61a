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
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from capture.errors import DataError, GestureError
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
MAX_LABEL_LEN = 64  # a folder name, a C++ string in the sketch, a column in the report: keep it short
LOCK_NAME = ".dataset.lock"
# No IMU this kit reads goes past ±16 g or ±2000 dps; a value far beyond that is a unit mistake or
# corrupt data, not motion (training would clip it and learn nothing from the take)
PLAUSIBLE_G = 64.0
PLAUSIBLE_DPS = 8000.0
# The INFO ``sensor`` of the simulated hand (capture/virtual/hand.py); its takes carry meta "simulated": true
SIMULATED_SENSOR = "simulated-hand"
RATE_TOLERANCE = 0.10  # a take's timestamps may disagree this much with its declared rate


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
        return self.timestamp_rate_hz

    @property
    def timestamp_rate_hz(self) -> float:
        """The rate the ``t_ms`` column says, whatever the manifest declares (see :attr:`rate_hz`)."""
        if self.n < 2:
            return 0.0
        median_dt = float(np.median(np.diff(self.t_ms)))
        mean_dt = float(self.t_ms[-1] - self.t_ms[0]) / (self.n - 1)
        # timestamps may be whole milliseconds (Edge Impulse): allow that much disagreement too
        dt = mean_dt if abs(mean_dt - median_dt) <= max(0.02 * median_dt, 1.0) else median_dt
        return round(1000.0 / dt, 2) if dt > 0 else 0.0


    def rate_disagreement(self) -> str | None:
        """Why the declared ``rate_hz`` (dataset.json) cannot be right for this take, or None.

        A take recorded at 50 Hz but declared 119 Hz would be resampled as if it were 2.4 times
        faster: every gesture would look short and quick. Needs 10 samples to judge.
        """
        declared = self.meta.get("rate_hz")
        if not declared or self.n < 10:
            return None
        seen = self.timestamp_rate_hz
        if seen > 0 and abs(seen - float(declared)) > RATE_TOLERANCE * float(declared):
            return f"dataset.json says {float(declared):g} Hz but its timestamps say {seen:g} Hz"
        return None


def check_label(label: str, where: str = "label") -> str:
    if not LABEL_RE.fullmatch(label or ""):
        raise DataError(where, f"label {label!r} must be letters, digits, '_' or '-' (it names a folder and a C++ string)")
    if len(label) > MAX_LABEL_LEN:
        raise DataError(where, f"label of {len(label)} characters is too long; expected at most {MAX_LABEL_LEN}")
    return label


# ----------------------------------------------------------------------------- CSV take I/O

def take_to_csv(take: Take) -> str:
    """Format a take; 5 decimals in g keep int16 counts of a ±4 g IMU (1/8192 g) exact.

    A take that :func:`read_take` would refuse is refused here, before anything is written: a
    take with no samples (``capture --seconds 0.001``), timestamps that do not increase once
    written to 1 us (an ``interval_ms`` of 1e-9), non-finite or implausible values. Written, such
    a take would stop every later ``gesture data``/``train`` on the whole dataset.
    """
    where = take.path or (take.meta.get("source") if take.meta else None) or take.label
    header = HEADERS.get(len(take.channels))
    if header is None or tuple(take.channels) != header[1:]:
        raise DataError(where, f"channels {take.channels} are not {HEADERS[3][1:]} or {HEADERS[6][1:]}")
    values = np.asarray(take.values, dtype=np.float64)
    t_ms = np.asarray(take.t_ms, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise DataError(where, "take has no samples; not saved (a take needs at least one row)")
    if values.shape != (len(t_ms), len(take.channels)):
        raise DataError(where, f"values of shape {values.shape} for {len(t_ms)} timestamps and {len(take.channels)} channels")
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(t_ms))):
        raise DataError(where, "take holds NaN or infinite values; not saved")
    limits = np.array([PLAUSIBLE_G if c in ACCEL_CHANNELS else PLAUSIBLE_DPS for c in take.channels])
    bad = np.argwhere(np.abs(values) > limits)
    if len(bad):
        i, j = (int(x) for x in bad[0])
        raise DataError(where, f"sample {i} holds {values[i, j]:g} in {take.channels[j]}, not a plausible IMU reading "
                               f"(within ±{limits[j]:g}); not saved")
    t_cells = [f"{t:.3f}".rstrip("0").rstrip(".") for t in t_ms]
    t_written = np.array([float(c) for c in t_cells])
    same = np.flatnonzero(np.diff(t_written) <= 0)
    if len(same):
        k = int(same[0]) + 1
        raise DataError(where, f"sample {k} is at t_ms {t_ms[k]:.6g}, not after sample {k - 1}'s {t_ms[k - 1]:.6g} "
                               "once written to 1 us; timestamps must increase (sample interval too small?); not saved")
    buf = io.StringIO()
    buf.write(",".join(header) + "\n")
    nacc = 3
    for tc, row in zip(t_cells, values):
        cells = [tc]
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


def free_take_paths(dataset_dir: str | Path, label: str, prefix: str = "take") -> Iterator[Path]:
    """Free ``DIR/label/prefix_NNNN.csv`` paths in order (never an existing take).

    The folder is listed once, so saving a batch of N takes costs one listing, not N (an import
    of thousands of takes spent most of its time re-listing the folder per take).
    """
    folder = Path(dataset_dir) / check_label(label)
    folder.mkdir(parents=True, exist_ok=True)
    # case-insensitively: a copied-in Take_0001.CSV is a take too, and must not get a twin
    existing = {p.stem.lower() for p in folder.iterdir() if is_take_file(p)}
    i = 1
    while True:
        if f"{prefix}_{i:04d}".lower() not in existing:
            yield folder / f"{prefix}_{i:04d}.csv"
        i += 1


def next_take_path(dataset_dir: str | Path, label: str, prefix: str = "take") -> Path:
    """First free ``DIR/label/prefix_NNNN.csv`` (never overwrites an existing take)."""
    return next(free_take_paths(dataset_dir, label, prefix))


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
        for name, v in zip(header[1:], row[1:]):
            limit = PLAUSIBLE_G if name in ACCEL_CHANNELS else PLAUSIBLE_DPS
            if abs(v) > limit:
                unit = "g" if name in ACCEL_CHANNELS else "deg/s"
                raise DataError(path, f"{v:g} {unit} is not a plausible IMU reading (expected within ±{limit:g} {unit}; "
                                "wrong units or corrupt data?)", line=lineno, field=name)
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
    _check_rate(path, data, "sample_rate_hz", "sample_rate_hz")
    for key, meta in data["takes"].items():
        if not isinstance(meta, dict):
            raise DataError(path, f"takes[{key!r}] is {type(meta).__name__}; expected an object of metadata", field=key)
        _check_rate(path, meta, "rate_hz", f"takes[{key!r}].rate_hz")
        for name in ("subject", "session"):
            if name in meta and not isinstance(meta[name], (str, int)):
                raise DataError(path, f"{type(meta[name]).__name__} {meta[name]!r}; expected a name", field=f"takes[{key!r}].{name}")
    return data


def _check_rate(path: Path, obj: dict[str, Any], key: str, where: str) -> None:
    """A rate in the manifest is a positive number (a string or 0 would fail deep inside training)."""
    if key not in obj or obj[key] is None:
        return
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise DataError(path, f"{v!r} is not a sample rate; expected a positive number of Hz", field=where)


def write_manifest(dataset_dir: str | Path, manifest: dict[str, Any]) -> None:
    manifest = dict(manifest)
    manifest["format"] = MANIFEST_FORMAT
    manifest["takes"] = dict(sorted(manifest.get("takes", {}).items()))
    atomic_write_text(Path(dataset_dir) / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")


def save_takes(dataset_dir: str | Path, takes: Iterable[Take], prefix: str = "take",
               defaults: dict[str, Any] | None = None) -> list[Path]:
    """Write takes under ``DIR/label/`` and record their metadata in ``dataset.json``.

    Every take is checked and formatted before the first file is written (a bad take refuses the
    whole batch, leaving the dataset as it was). Each take file is written atomically, then the
    manifest; if anything fails on the way (a full disk, a read-only folder, Ctrl-C) the takes this
    call wrote are removed again, so the dataset is as it was and ``dataset.json`` always describes
    the files (a caller saving one take at a time, like the recorder, keeps every take saved before).
    """
    dataset_dir = Path(dataset_dir)
    takes = list(takes)
    for take in takes:  # labels and contents first: a bad take refuses the batch before any file is written
        check_label(take.label)
    texts = [take_to_csv(take) for take in takes]
    paths: list[Path] = []
    with dataset_lock(dataset_dir):
        manifest = read_manifest(dataset_dir)
        for k, v in (defaults or {}).items():
            manifest.setdefault(k, v)
        free: dict[str, Iterator[Path]] = {}
        new_folders = []
        try:
            for take, text in zip(takes, texts):
                if take.label not in free:
                    free[take.label] = free_take_paths(dataset_dir, take.label, prefix)
                    if not (dataset_dir / take.label).exists():
                        new_folders.append(dataset_dir / take.label)
                p = next(free[take.label])
                atomic_write_text(p, text)
                take.path = p
                paths.append(p)
                if take.meta:
                    manifest["takes"][f"{take.label}/{p.name}"] = take.meta
            write_manifest(dataset_dir, manifest)
        except BaseException:
            for p in paths:
                p.unlink(missing_ok=True)
            for folder in new_folders:
                try:
                    folder.rmdir()
                except OSError:
                    pass
            raise
    return paths


def dataset_lock(dataset_dir: str | Path, timeout: float = 30.0):
    """An inter-process lock on a dataset folder (``DIR/.dataset.lock``).

    Held around take numbering and the read-modify-write of ``dataset.json``: two captures (or a
    capture and the dashboard's "save as take") into one dataset would otherwise pick the same
    ``take_NNNN.csv`` and each rewrite the manifest without the other's takes. ``filelock`` uses
    ``fcntl``/``msvcrt`` locks, which the OS releases when a process dies, so a killed capture
    never leaves the dataset locked.
    """
    from filelock import FileLock

    dataset_dir = Path(dataset_dir)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(dataset_dir / LOCK_NAME), timeout=timeout)


def preflight(dataset_dir: str | Path, label: str, need_bytes: int = 0, min_free_bytes: int = 20 * 2**20) -> None:
    """Check before a recording that its takes can be saved; raise DataError saying why not.

    Everything that would otherwise fail only after a take was recorded (and lose it): the label
    is valid, the folder can be created and written (a probe file, so read-only mounts and
    permissions are both caught), ``dataset.json`` parses, and the disk has room.
    """
    import shutil

    dataset_dir = Path(dataset_dir)
    check_label(label, "--label")
    folder = dataset_dir / label
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DataError(folder, f"cannot write there: {e.strerror or e}; choose another --data folder") from None
    read_manifest(dataset_dir)
    free = shutil.disk_usage(folder).free
    need = max(need_bytes * 2, min_free_bytes)
    if free < need:
        raise DataError(folder, f"only {free / 2**20:.1f} MiB free on its disk; recording needs at least "
                        f"{need / 2**20:.0f} MiB (free some space or choose another --data folder)")


def is_take_file(path: Path) -> bool:
    """A take CSV of a label folder: ``.csv`` in any case (``Take_0001.CSV`` from another tool or
    a case-insensitive disk), not hidden (``.take_0001.csv.xyz.tmp`` left by an interrupted write)."""
    return path.suffix.lower() == ".csv" and not path.name.startswith(".") and path.is_file()


def check_label_folder(folder: Path) -> str:
    """A label folder's name is its label: checked when the dataset is read, so a name the model,
    the sketch or the report cannot use stops ``data``/``train`` at the start, not ``export``."""
    name = folder.name
    if LABEL_RE.fullmatch(name) and len(name) <= MAX_LABEL_LEN:
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()  # café -> cafe
    safe = re.sub(r"[^A-Za-z0-9_\-]+", "_", ascii_name).strip("_-")[:MAX_LABEL_LEN]
    hint = f", e.g. to {safe!r}" if safe and LABEL_RE.fullmatch(safe) else ""
    why = (f"is {len(name)} characters, over {MAX_LABEL_LEN}" if LABEL_RE.fullmatch(name)
           else "must be letters, digits, '_' or '-' (ASCII)")
    raise DataError(folder, f"label {name!r} (the folder's name) {why}: it names the model's output and a C++ "
                            f"string in the sketch; rename the folder{hint}")


def dataset_around(path: str | Path, datasets: Iterable[str | Path] = ()) -> Path | None:
    """The dataset folder ``path`` is or lies inside, else None: one of ``datasets`` (the ones a
    command reads), a folder holding ``dataset.json`` (``path`` or a parent), or ``path`` itself
    when a sub-folder of it holds takes (a dataset without a manifest; not an Edge Impulse export,
    which has ``info.labels``).

    Outputs (a tune study, an export) written there would become label folders or stray files of
    the dataset, so commands refuse such an ``--out`` (:func:`check_not_in_dataset`).
    """
    target = Path(path).expanduser().absolute().resolve()
    for d in datasets:
        root = Path(d).expanduser().absolute().resolve()
        if target == root or root in target.parents:
            return root
    for folder in (target, *target.parents):
        if (folder / MANIFEST_NAME).is_file():
            return folder
    if target.is_dir() and not (target / "info.labels").is_file():  # an Edge Impulse export is not one
        for sub in target.iterdir():
            if sub.is_dir() and not sub.name.startswith(".") and any(
                    not f.name.startswith(".") for f in sub.glob("*.csv")):
                return target
    return None


def check_not_in_dataset(path: str | Path, option: str, datasets: Iterable[str | Path] = ()) -> None:
    """Refuse an output folder that is, or lies inside, a dataset (GestureError naming both)."""
    root = dataset_around(path, datasets)
    if root is not None:
        raise GestureError(f"{option} {path}: inside the dataset {root}; its files would mix with the takes "
                           f"(choose a folder outside it)")


def read_takes(dataset_dir: str | Path) -> tuple[list[Take], dict[str, Any]]:
    """Every take of a dataset folder (sorted by label, then file), with manifest metadata merged.

    Take files are found whatever the case of ``.csv``; hidden files are skipped (see
    :func:`is_take_file`). Every label folder's name is checked as a label first.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DataError(root, "dataset folder not found; expected a folder with one sub-folder per label")
    manifest = read_manifest(root)
    defaults = {k: manifest[k] for k in ("sample_rate_hz",) if k in manifest}
    takes = []
    folders = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.iterdir() if is_take_file(p))
        if files:
            check_label_folder(folder)
            folders.append((folder, files))
    for folder, files in folders:
        for path in files:
            take = read_take(path, label=folder.name)
            meta = dict(manifest["takes"].get(f"{folder.name}/{path.name}", {}))
            if "rate_hz" not in meta and "sample_rate_hz" in defaults and take.n < 2:
                meta["rate_hz"] = defaults["sample_rate_hz"]
            take.meta = meta
            takes.append(take)
    return takes, manifest
