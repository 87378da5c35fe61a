"""Public gesture datasets the kit knows: where each is published, its checksum, how to import it.

``gesture data fetch NAME`` downloads the file from its official source (or takes a copy the
user downloaded, ``--file``), checks its sha256 against the one recorded here, converts it with
the kit's importer and writes the dataset folder with an ``ATTRIBUTION.md`` beside the takes.
Nothing of these datasets ships with the kit: the repository and the wheel hold only this table.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from capture.errors import GestureError
from capture.fileio import atomic_write_text, building_folder, file_sha256


@dataclass(frozen=True)
class PublicDataset:
    name: str
    url: str  # the official download
    sha256: str
    filename: str
    importer: str  # capture.importers format
    prefix: str  # take file names: PREFIX_0001.csv
    attribution: str  # Markdown written beside the takes


MAGIC_WAND = PublicDataset(
    name="magic_wand",
    url="https://download.tensorflow.org/models/tflite/magic_wand/data.tar.gz",
    sha256="f1363203508484c50101e4a9d4096d29bd336a7b581cefe0382d3e0cfb1026bc",
    filename="data.tar.gz",
    importer="magic-wand",
    prefix="mw",
    attribution="""# magic_wand: TensorFlow Lite Micro gesture recordings

- Source: the training archive of TensorFlow Lite for Microcontrollers' `magic_wand` example,
  downloaded from {url} (sha256 `{sha256}`).
- Licence: Apache-2.0 (the TensorFlow repository's licence; no separate data licence is stated).
- Credit: TensorFlow Lite Micro magic_wand example (2019); P. Warden and D. Situnayake, *TinyML*
  (O'Reilly, 2019), chapters 11-12.
- Signal: SparkFun Edge accelerometer, milli-g in the files (imported as g), 25 Hz, accelerometer only.
- Labels: wing, ring, slope, negative; takes named by person; the test people (`test_subjects` in
  dataset.json) are TensorFlow's own person split: liucx, zhangxy, negative_1.
- Imported by `gesture data fetch magic_wand` (capture/importers/magic_wand.py).
""",
)
DATASETS = {d.name: d for d in (MAGIC_WAND,)}


def get(name: str) -> PublicDataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise GestureError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def download(ds: PublicDataset, dest: Path, url: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``ds`` into ``dest`` (a file); an unreachable source says what to do offline."""
    from tqdm import tqdm

    src = url or ds.url
    try:
        with urllib.request.urlopen(src, timeout=timeout) as r, open(dest, "wb") as f:  # noqa: S310 (a URL the user or this table names)
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=ds.filename, leave=False) as bar:
                for block in iter(lambda: r.read(1 << 16), b""):
                    f.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise GestureError(f"could not download {src} ({reason}). Offline? Download {ds.url} on a machine with "
                           f"internet, copy it here and run: gesture data fetch {ds.name} --file PATH/{ds.filename}") from None
    return dest


def fetch(name: str, out: Path, *, file: Path | None = None, url: str | None = None) -> tuple[int, Path]:
    """Fetch (or take ``file``), check, import into the new folder ``out``; returns (takes, out)."""
    from capture.importers import import_files
    from capture.takes import save_takes

    ds = get(name)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GestureError(f"{out} already exists and is not empty; choose another --out (nothing was downloaded)")
    with building_folder(out) as staged:  # filled beside ``out``, put in its place whole, or nothing on error
        archive = Path(file) if file else download(ds, staged / f".{ds.filename}", url)
        if not archive.is_file():
            raise GestureError(f"{archive}: no such file; expected the downloaded {ds.filename} from {ds.url}")
        digest = file_sha256(archive)
        if digest != ds.sha256:
            raise GestureError(f"{archive}: sha256 {digest} is not the published {ds.name} archive's {ds.sha256} "
                               f"(a partial or different download; get it again from {ds.url})")
        result = import_files(ds.importer, [archive])
        if not file:
            archive.unlink()  # the download is not part of the dataset
        save_takes(staged, result.takes, prefix=ds.prefix, defaults=result.defaults)
        atomic_write_text(staged / "ATTRIBUTION.md", ds.attribution.format(url=ds.url, sha256=ds.sha256))
    return len(result.takes), out
