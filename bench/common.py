"""What the benchmark scripts share: the repository root (put on sys.path, so ``python
bench/NAME.py`` imports the kit from this checkout), the TFLM tree of the user cache
(`gesture tflm fetch`), the real recordings of ``../shared/datasets`` imported once into a cache,
and progress lines on stderr (stdout carries the Markdown table).

Benchmarks measure on real recordings only, never on the simulated hand: its numbers would say
how well the kit learns its own physics model, not how it does on people.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def tflm_tree() -> Path | None:
    """The TFLM tree `gesture tflm fetch` put in the user cache (or $GESTURE_TFLM), else None."""
    from training.tflm_tree import find_tree

    return find_tree()


def magic_wand() -> Path:
    """TensorFlow's magic_wand recordings (``../shared/datasets/magic_wand/data.tar.gz``) as a
    dataset in ``bench/results/``, imported once, with TensorFlow's person split declared."""
    archive = SHARED_DATASETS / "magic_wand" / "data.tar.gz"
    out = ROOT / "bench" / "results" / "magic_wand"
    if not (out / "dataset.json").is_file():
        if not archive.is_file():
            sys.exit(f"{archive} is absent: the benchmarks measure on real recordings (../shared/datasets, "
                     "or `gesture data fetch magic_wand --out bench/results/magic_wand`)")
        from capture.importers.public import fetch

        log(f"importing {archive} into {out} (once)")
        fetch("magic_wand", out, file=archive)
    return out
