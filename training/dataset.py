"""A dataset folder, loaded and checked before anything is trained on it.

Reading the files is ``capture.takes``' job (one definition of the format); this module adds
what training needs to know first: the labels, who recorded what, and the problems a user should
hear about before spending minutes training (errors for what cannot work, warnings for what will
work badly).
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import DataError
from capture.protocol import ACCEL_RANGE_G, GYRO_RANGE_DPS
from capture.takes import Take, read_takes

MIN_TAKES_PER_LABEL = 5
IMBALANCE_RATIO = 2.0
CLIP_FRACTION = 0.999  # a value this close to full scale is the IMU saturating


def at_rail(values: np.ndarray, full_scale: float) -> bool:
    """The peak sits at this kit's full scale: saturated. A take that goes beyond it (a phone's
    ±8 g, another board) was not recorded at that scale, so its 4 g samples are not clipped."""
    peak = float(np.abs(values).max()) if values.size else 0.0
    return full_scale * CLIP_FRACTION <= peak <= full_scale * (2 - CLIP_FRACTION)


@dataclass
class Dataset:
    root: Path
    takes: list[Take]
    manifest: dict[str, Any]
    labels: list[str] = field(default_factory=list)

    def by_label(self) -> dict[str, list[Take]]:
        out: dict[str, list[Take]] = defaultdict(list)
        for t in self.takes:
            out[t.label].append(t)
        return dict(out)

    def subjects(self) -> list[str]:
        return sorted({str(t.meta["subject"]) for t in self.takes if t.meta.get("subject")})

    def sessions(self) -> list[str]:
        return sorted({str(t.meta["session"]) for t in self.takes if t.meta.get("session")})

    def channels(self) -> list[tuple[str, ...]]:
        return sorted({tuple(t.channels) for t in self.takes})

    def rates(self) -> list[float]:
        return sorted({t.rate_hz for t in self.takes})


def load_dataset(path: str | Path, *, min_labels: int = 2) -> Dataset:
    """Load every take; raise DataError for what training cannot work with."""
    root = Path(path)
    takes, manifest = read_takes(root)
    if not takes:
        raise DataError(root, "no takes found; expected sub-folders named after labels holding CSV files (see data/README.md)")
    labels = sorted({t.label for t in takes})
    if len(labels) < min_labels:
        raise DataError(root, f"only one label ({labels[0]}); a classifier needs at least {min_labels} labels, one sub-folder each")
    return Dataset(root=root, takes=takes, manifest=manifest, labels=labels)


def validate(ds: Dataset) -> list[str]:
    """Warnings: things that train but train badly. Each names the takes concerned."""
    warnings: list[str] = []
    counts = Counter(t.label for t in ds.takes)
    small = [f"{k} ({v})" for k, v in sorted(counts.items()) if v < MIN_TAKES_PER_LABEL]
    if small:
        warnings.append(f"fewer than {MIN_TAKES_PER_LABEL} takes for: {', '.join(small)}; record more")
    most, least = max(counts.values()), min(counts.values())
    if least and most / least > IMBALANCE_RATIO:
        big = max(counts, key=counts.get)
        little = min(counts, key=counts.get)
        warnings.append(f"class imbalance: {big} has {most} takes, {little} only {least} (ratio {most / least:.1f})")

    seen: dict[str, Path | None] = {}
    for t in ds.takes:
        digest = hashlib.sha1(np.ascontiguousarray(t.values).tobytes()).hexdigest()
        if digest in seen:
            warnings.append(f"duplicate takes: {seen[digest]} and {t.path} hold the same samples")
        else:
            seen[digest] = t.path

    timed = [t for t in ds.takes if t.n >= 2]  # a 1-sample take has no rate of its own
    rates = Counter(round(t.rate_hz, 1) for t in timed)
    if len(rates) > 1:
        common = rates.most_common(1)[0][0]
        odd = [t for t in timed if round(t.rate_hz, 1) != common]
        warnings.append(f"sample rates differ: most takes are {common:g} Hz, {len(odd)} are not "
                        f"(e.g. {odd[0].path} at {odd[0].rate_hz:g} Hz); they are resampled to the model rate")
    wrong_rate = [(t, why) for t in ds.takes if (why := t.rate_disagreement())]
    if wrong_rate:
        t, why = wrong_rate[0]
        warnings.append(f"{len(wrong_rate)} take(s) have a rate_hz that their timestamps contradict, e.g. {t.path}: "
                        f"{why}; training trusts dataset.json, so fix its rate_hz (or delete it to use the timestamps)")
    declared = ds.manifest.get("sample_rate_hz")
    if declared and len(rates) == 1 and abs(next(iter(rates)) - float(declared)) > 0.01 * float(declared):
        warnings.append(f"dataset.json says {declared} Hz but the takes' timestamps say {next(iter(rates)):g} Hz")

    clipped = [t for t in ds.takes if at_rail(t.values[:, :3], ACCEL_RANGE_G)
               or (t.values.shape[1] == 6 and at_rail(t.values[:, 3:], GYRO_RANGE_DPS))]
    if clipped:
        warnings.append(f"{len(clipped)} take(s) reach the IMU's full scale (±{ACCEL_RANGE_G} g / ±{GYRO_RANGE_DPS} dps) "
                        f"and are clipped, e.g. {clipped[0].path}")

    with_subject = sum(1 for t in ds.takes if t.meta.get("subject"))
    if 0 < with_subject < len(ds.takes):
        missing = next(t for t in ds.takes if not t.meta.get("subject"))
        warnings.append(f"{len(ds.takes) - with_subject} take(s) have no subject in dataset.json (e.g. {missing.path}); "
                        "a person split puts them in training")
    from training.plan import LONG_TAKE_FACTOR, long_takes

    long = long_takes(ds.takes)
    if long:
        longest = max(long, key=lambda t: t.duration_s)
        warnings.append(f"{len(long)} take(s) are far longer than the rest (over {LONG_TAKE_FACTOR:g}x the median "
                        f"{np.median([t.duration_s for t in ds.takes if t.duration_s > 0]):.2f} s; longest {longest.duration_s:.1f} s: "
                        f"{longest.path}); a take should hold one gesture, only its motion-centred window is learnt from")
    if len(ds.channels()) > 1:
        warnings.append(f"takes have different channels {ds.channels()}; only the common ones can be used")
    return warnings


def summary_table(ds: Dataset) -> str:
    """Per-label counts and durations, then dataset-wide facts, as aligned text."""
    rows = [("label", "takes", "total s", "mean s", "min s", "max s", "subjects")]
    for label, takes in sorted(ds.by_label().items()):
        d = [t.duration_s for t in takes]
        subj = len({t.meta.get("subject") for t in takes if t.meta.get("subject")})
        rows.append((label, str(len(takes)), f"{sum(d):.1f}", f"{np.mean(d):.2f}", f"{min(d):.2f}", f"{max(d):.2f}", str(subj)))
    d_all = [t.duration_s for t in ds.takes]
    rows.append(("all", str(len(ds.takes)), f"{sum(d_all):.1f}", f"{np.mean(d_all):.2f}", f"{min(d_all):.2f}",
                 f"{max(d_all):.2f}", str(len(ds.subjects()))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0 or k == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    rates = ", ".join(f"{r:g} Hz" for r in ds.rates())
    chans = "; ".join(",".join(c) for c in ds.channels())
    subjects = ds.subjects()
    facts = [
        f"dataset:   {ds.root}",
        f"rate:      {rates} (detected from t_ms, or rate_hz in dataset.json)",
        f"channels:  {chans}",
        f"subjects:  {len(subjects)}" + (f" ({', '.join(subjects)})" if subjects else " (none recorded: person split unavailable)"),
        f"sessions:  {len(ds.sessions())}" + (f" ({', '.join(ds.sessions())})" if ds.sessions() else ""),
    ]
    if ds.manifest.get("test_subjects"):
        facts.append(f"test split: {', '.join(ds.manifest['test_subjects'])} (dataset.json test_subjects)")
    return "\n".join(facts + [""] + lines)
