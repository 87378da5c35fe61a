"""What the benchmark scripts share: the repository root (put on sys.path, so ``python
bench/NAME.py`` imports the kit from this checkout), the pinned TFLM tarball that CI puts beside
the clone, and progress lines on stderr (stdout carries the Markdown table)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED_TFLM = ROOT.parent / "shared" / "tflm" / "tflm-src.tar.gz"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
