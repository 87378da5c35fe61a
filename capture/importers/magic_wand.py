"""TensorFlow Lite Micro ``magic_wand`` example logs.

Files ``output_<gesture>_<person>.txt`` were logged from a terminal (``screen``), so they start with
"Script started..." and escape codes. Data lines are ``x,y,z`` in milli-g from the SparkFun Edge
accelerometer at a nominal 25 Hz; gestures are separated by lines ``-,-,-``. The continuous
negative recordings ``output_negative_1..5`` have no separators and are cut into non-overlapping
120-sample takes, as the example's ``data_prepare.py`` does. The source may be the folder tree or
the original ``data.tar.gz``.
"""
from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from capture.errors import DataError
from capture.importers import ImportResult, make_take

RATE_HZ = 25
NEGATIVE_PIECE = 120
MIN_SAMPLES = 10
NAME_RE = re.compile(r"^output_(wing|ring|slope|negative)_(.+)\.txt$")
CONTINUOUS_RE = re.compile(r"^\d+$")  # output_negative_1 .. _5
NUMBER = r"-?\d+(?:\.\d*)?"
ROW_RE = re.compile(rf"^\s*({NUMBER}),\s*({NUMBER}),\s*({NUMBER})\s*$")
SEPARATOR = "-,-,-"


def _files(src: Path) -> Iterator[tuple[str, str]]:
    """(name, text) of every log under a folder or inside a .tar.gz (macOS ``._`` files skipped)."""
    if src.is_dir():
        for p in sorted(src.rglob("output_*.txt")):
            yield str(p), p.read_text(encoding="utf-8", errors="replace")
    elif src.is_file() and (_looks_like_archive(src) or tarfile.is_tarfile(src)):
        try:
            with tarfile.open(src) as tar:
                members = sorted(tar.getmembers(), key=lambda m: m.name)
                for m in members:
                    name = Path(m.name).name
                    if m.isfile() and not name.startswith("._") and NAME_RE.match(name):
                        f = tar.extractfile(m)
                        yield f"{src}:{m.name}", (f.read() if f else b"").decode("utf-8", errors="replace")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            why = str(e).splitlines()[0].rstrip(":") if str(e) else "truncated"
            if "could not be opened" in why:
                why = "not a gzip, bzip2, xz or tar archive"
            raise DataError(src, f"cannot read this archive ({why}); "
                                 "expected the magic_wand data.tar.gz (download it again) or its extracted folder")
    elif src.is_file():
        yield str(src), src.read_text(encoding="utf-8", errors="replace")
    else:
        raise DataError(src, "not found; expected a magic_wand data folder, data.tar.gz or an output_<gesture>_<person>.txt file")


def _looks_like_archive(src: Path) -> bool:
    """A .tar/.tar.gz/.tgz name or gzip/bzip2/xz magic bytes: read it as an archive, whatever its state."""
    if src.name.lower().endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return True
    with open(src, "rb") as f:
        head = f.read(6)
    return head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ"))


def parse_log(name: str, text: str) -> tuple[list[tuple[int, np.ndarray]], int]:
    """Segments as (first line number, (n, 3) milli-g) and the count of noise lines skipped."""
    segments: list[tuple[int, np.ndarray]] = []
    rows: list[list[float]] = []
    start = 0
    noise = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().strip("\r")
        if line == SEPARATOR:
            if rows:
                segments.append((start, np.asarray(rows)))
            rows, start = [], 0
            continue
        m = ROW_RE.match(line)
        if m:
            if not rows:
                start = lineno
            rows.append([float(v) for v in m.groups()])
        elif line:
            noise += 1
    if rows:
        segments.append((start, np.asarray(rows)))
    return segments, noise


# TensorFlow's own person split (train/data_split_person.py tests on these): declared as the
# dataset's test people, so `gesture train` on the imported archive holds out the same people.
TEST_SUBJECTS = ["liucx", "zhangxy", "negative_1"]


def read(src: Path, label: str | None = None, subject: str | None = None, **_options) -> ImportResult:
    out = ImportResult(defaults={"sample_rate_hz": RATE_HZ, "sensor": "SparkFun Edge accelerometer",
                                 "board": "SparkFun Edge", "test_subjects": TEST_SUBJECTS})
    found = 0
    for name, text in _files(Path(src)):
        m = NAME_RE.match(Path(name.split(":")[-1]).name)
        if not m:
            raise DataError(name, "file name must look like output_<wing|ring|slope|negative>_<person>.txt (it gives the label and the person)")
        found += 1
        gesture, person = m.groups()
        take_label = label or gesture
        who = subject or (f"negative_{person}" if gesture == "negative" and (CONTINUOUS_RE.match(person) or person.startswith("ccw")) else person)
        segments, _noise = parse_log(name, text)
        if not segments:
            raise DataError(name, "no x,y,z data lines found; expected lines like '-515.0,412.0,716.0' separated by '-,-,-'")
        if gesture == "negative" and CONTINUOUS_RE.match(person):
            # one continuous stream: cut into non-overlapping pieces, drop the short tail
            pieces = []
            for line0, seg in segments:
                for k in range(0, len(seg) - NEGATIVE_PIECE + 1, NEGATIVE_PIECE):
                    pieces.append((line0 + k, seg[k:k + NEGATIVE_PIECE]))
            segments = pieces
        short = 0
        for index, (line0, seg) in enumerate(segments):
            if len(seg) < MIN_SAMPLES:
                short += 1
                continue
            meta = {"subject": who, "source": f"magic-wand:{Path(name.split(':')[-1]).name}#line{line0}",
                    "rate_hz": RATE_HZ}
            out.takes.append(make_take(take_label, seg / 1000.0, RATE_HZ, meta))
        if short:
            out.warnings.append(f"{name}: dropped {short} segment(s) shorter than {MIN_SAMPLES} samples")
    if not found:
        raise DataError(src, "no output_<gesture>_<person>.txt files found")
    return out
