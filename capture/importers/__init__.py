"""Importers: other tools' recordings -> takes in this kit's dataset format.

Each importer is a function ``read(src, label=None, subject=None, **options) -> ImportResult``;
the registry below maps the CLI's FORMAT names to them. Importers only parse; saving goes
through ``capture.takes.save_takes`` (atomic, manifest updated), so the format has one writer.

What an importer noticed but could work around (a dropped partial gesture, a unit inferred
from gravity, a label made safe) is a :class:`Notice`: a string with a ``kind``, so the CLI can
print every one, or under ``--quiet`` one summary line per kind. A file that cannot be read at
all is skipped with a notice when it is one of several (one bad file never stops a batch of
thousands); a single file given alone still raises, so the user sees the one-line error.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from capture.errors import DataError
from capture.takes import ACCEL_CHANNELS, GYRO_CHANNELS, LABEL_RE, Take, check_label

LONG_TAKE_FACTOR = 4.0  # a take this many times the median duration is "far longer than the rest"
LABEL_FROM = ("auto", "name", "folder")  # --label-from: auto = info.labels, else the file name
NAME_LABELS_MIN_FILES = 10  # from this many files, one label per file name is a naming scheme, not labels


class Notice(str):
    """A warning message that also says what kind of problem it is (for --quiet summaries)."""

    kind: str

    def __new__(cls, kind: str, message: str) -> Notice:  # noqa: PYI034 (str subclass, Python 3.11)
        self = super().__new__(cls, message)
        self.kind = kind
        return self


KIND_TITLES = {
    "dropped": "partial gestures dropped",
    "split": "gestures split without blank lines",
    "threshold": "blocks split at the capture threshold (irregular blank lines)",
    "label": "labels taken from file names or made safe",
    "units": "units inferred or corrected from gravity",
    "skipped": "files skipped",
    "long": "takes far longer than the rest",
    "segments": "short segments dropped",
    "category": "files outside info.labels",
    "test-labels": "testing takes of a label with no training take",
}


@dataclass
class ImportResult:
    takes: list[Take] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # Notice (or plain str) items
    defaults: dict = field(default_factory=dict)  # dataset-level manifest fields to set if absent
    files: int = 0  # files read successfully
    skipped: int = 0  # files skipped with a notice
    name_labels: list[tuple[str, Path]] = field(default_factory=list)  # (label, file) labelled by --label-from auto's file name


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


def safe_label(raw: str, where: str) -> tuple[str, Notice | None]:
    """A label the dataset can use (it names a folder and a C++ string), and a note if changed.

    Other tools allow spaces and punctuation ("PRUEBA 1", "Ramsons Stud"); refusing them would
    stop an import over a cosmetic detail, so runs of other characters become ``_``.
    """
    raw = str(raw).strip()
    if LABEL_RE.match(raw):
        return raw, None
    safe = re.sub(r"[^A-Za-z0-9_\-]+", "_", raw).strip("_-")
    if not safe or not LABEL_RE.match(safe):
        raise DataError(where, f"label {raw!r} has no letters or digits; pass --label NAME")
    return safe, Notice("label", f"{where}: label {raw!r} is stored as {safe!r} "
                                 "(labels name a folder and a C++ string: letters, digits, '_' or '-')")


_FILLER = {"new", "old", "my", "test", "data", "final", "copy", "raw", "sample", "samples", "rec",
           "recording", "recordings", "capture", "imu", "file", "output", "gesture", "gestures"}


def suggest_label(stem: str) -> str | None:
    """The gesture name hidden in a file name such as ``newFlex`` or ``punch_data2`` (or None)."""
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", stem)
    keep = [w.lower() for w in words if w.lower() not in _FILLER and not w.isdigit()]
    return "_".join(keep) if keep and len(keep) < len(words) else None


def label_from_name(path: Path, given: str | None, notes: list[str] | None = None, *, suggest: bool = True,
                    label_from: str = "auto") -> str:
    """--label wins; else the file name up to the first dot (Edge Impulse's rule: ``wave.01.csv``
    is ``wave``), or with ``label_from="folder"`` the name of the folder holding the file.

    A label taken from the file name is made safe, and when the name looks like more than a
    gesture name (``newFlex.csv``) a note suggests the ``--label`` that was probably meant.
    """
    if given:
        return check_label(given, "--label")
    if label_from == "folder":
        folder = Path(path).resolve().parent
        label, note = safe_label(folder.name, f"{path} (label from its folder {folder.name!r})")
        if note is not None and notes is not None:
            notes.append(note)
        return label
    stem = Path(path).name.split(".")[0]
    label, note = safe_label(stem, f"{path} (label from the file name)")
    if note is not None and notes is not None:
        notes.append(Notice("label", f"{note}; pass --label NAME to choose another"))
    guess = suggest_label(stem) if suggest else None
    if notes is not None and guess and guess != label and guess != label.lower():
        notes.append(Notice("label", f"{path}: label {label!r} comes from the file name; "
                                     f"if the gesture is {guess!r}, import with --label {guess}"))
    return label


def long_take_notices(takes: list[Take]) -> list[str]:
    """Takes far longer than the rest: usually several gestures (or minutes of idle) in one take."""
    if len(takes) < 3:
        return []
    d = np.array([t.duration_s for t in takes])
    med = float(np.median(d))
    if med <= 0:
        return []
    long = [t for t, di in zip(takes, d) if di > LONG_TAKE_FACTOR * med]
    out: list[str] = []
    for t in long:
        out.append(Notice("long", f"{t.meta.get('source', t.label)}: take of {t.duration_s:.1f} s is over "
                                  f"{LONG_TAKE_FACTOR:g}x the median {med:.2f} s; it may hold several gestures"))
    return out


def check_name_labels(out: ImportResult, where: str | Path, label_from: str = "auto") -> None:
    """Refuse one label per file: ``Z1.csv``, ``O3.csv``... are sample names, not 100 gestures.

    Edge Impulse takes the label from the file name up to its first ``.`` (``wave.01.csv``);
    files named without that ``label.`` prefix would each become their own label. Only for
    labels the file names gave under ``--label-from auto`` and from NAME_LABELS_MIN_FILES files.
    """
    if label_from != "auto" or len(out.name_labels) < NAME_LABELS_MIN_FILES:
        return
    counts = Counter(label for label, _ in out.name_labels)
    if len(counts) * 2 <= len(out.name_labels):
        return
    folders = sorted({p.resolve().parent.name for _, p in out.name_labels})
    shown = ", ".join(list(counts)[:4]) + (", ..." if len(counts) > 4 else "")
    via_folder = f" (labels {', '.join(folders[:6])}{', ...' if len(folders) > 6 else ''})" if folders else ""
    raise DataError(where, f"{len(out.name_labels)} files would give {len(counts)} labels ({shown}): a label is the file "
                           "name up to its first '.' (Edge Impulse's rule: wave.01.csv is 'wave'), and these names have no "
                           f"'label.' prefix; pass --label-from folder to take the folder names{via_folder}, --label NAME, "
                           "or --label-from name to keep one label per name")


def _registry() -> dict[str, Callable[..., ImportResult]]:
    from capture.importers import arduino_csv, edge_impulse, magic_wand
    return {"arduino-csv": arduino_csv.read, "edge-impulse": edge_impulse.read, "magic-wand": magic_wand.read}


FORMATS = ("arduino-csv", "edge-impulse", "magic-wand")


def import_files(fmt: str, sources: list[Path], label: str | None = None, subject: str | None = None,
                 **options) -> ImportResult:
    """Read every source; a bad one among several is skipped with a notice, never stops the batch."""
    reader = _registry()[fmt]
    out = ImportResult()
    sources = [Path(s) for s in sources]
    label_from = options.get("label_from") or "auto"
    if label_from not in LABEL_FROM:
        raise DataError("--label-from", f"{label_from!r} is not one of {', '.join(LABEL_FROM)}")
    where = sources[0] if len(sources) == 1 else f"{len(sources)} sources"
    if fmt == "edge-impulse" and len(sources) > 1:  # one batch: one notice per decision, not per file
        out = reader(sources, label=label, subject=subject, **options)
        check_name_labels(out, where, label_from)
        out.warnings += long_take_notices(out.takes)
        return out
    for src in sources:
        try:
            r = reader(src, label=label, subject=subject, **options)
        except DataError as e:
            if len(sources) == 1:
                raise
            out.warnings.append(Notice("skipped", f"skipped {e}"))
            out.skipped += 1
            continue
        out.takes += r.takes
        out.warnings += r.warnings
        out.files += r.files or 1
        out.skipped += r.skipped
        out.defaults.update(r.defaults)
        out.name_labels += r.name_labels
    if not out.takes:
        first = next((w for w in out.warnings if getattr(w, "kind", "") == "skipped"), None)
        raise DataError(sources[0] if len(sources) == 1 else f"{len(sources)} sources",
                        f"nothing imported: {out.skipped} file(s) skipped" + (f"; first: {first}" if first else ""))
    check_name_labels(out, where, label_from)
    out.warnings += long_take_notices(out.takes)
    return out
