"""Regenerate the pictures in docs/img with the kit's own tools.

Trains the default model on the real magic_wand recordings of ../shared (`gesture train`), copies its report plots
(confusion matrix, training curves), then serves the dashboard with that model on the virtual
board and screenshots it in headless Chromium (bench/bench_dashboard.py --screenshot).

    python bench/docs_images.py
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, magic_wand  # first: puts ROOT on sys.path

IMG = ROOT / "docs" / "img"


def main() -> int:
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        subprocess.run([sys.executable, "-m", "gesture_cli", "train", str(magic_wand()),
                        "--out", str(model), "--quiet"], cwd=ROOT, check=True)
        for name in ("confusion.png", "training.png"):
            shutil.copyfile(model / name, IMG / name)
        subprocess.run([sys.executable, str(ROOT / "bench" / "bench_dashboard.py"), "--model", str(model),
                        "--seconds", "10", "--screenshot", str(IMG / "dashboard.png")],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    print(f"wrote {', '.join(sorted(p.name for p in IMG.glob('*.png')))} in {IMG}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
