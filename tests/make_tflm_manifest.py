"""Write training/tflm_pinned.sha256 from the pinned tarball: the keep-list and per-file checksums
`gesture tflm fetch` prunes and checks the upstream archives with.

    python tests/make_tflm_manifest.py [../shared/tflm/tflm-src.tar.gz]

Run it when the pinned tree changes (then update PINNED_SHA256 and the commits in
training/tflm_tree.py too). Only hashes go into the repository, never TFLM's files. The format is
``sha256sum``'s, so ``cd tflm-src && sha256sum -c .../tflm_pinned.sha256`` checks a tree by hand.
"""
from __future__ import annotations

import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training import tflm_tree as tt  # noqa: E402


def main(argv: list[str]) -> int:
    tarball = Path(argv[0]) if argv else ROOT.parent / "shared" / "tflm" / tt.TARBALL_NAME
    out = ROOT / "training" / tt.MANIFEST_NAME
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(tarball) as tf:
            tf.extractall(tmp, filter="data")
        text = tt.manifest_text(Path(tmp) / "tflm-src")
    tt.parse_manifest(text, str(tarball))  # every path under one of the upstream folders
    part = out.with_suffix(".part")
    part.write_text(text)
    part.replace(out)
    digest = tt.file_sha256(tarball)
    print(f"{out}: {text.count(chr(10))} files from {tarball} (sha256 {digest}"
          f"{'' if digest == tt.PINNED_SHA256 else ', NOT the PINNED_SHA256 of training/tflm_tree.py'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
