"""Shared fixtures: repository paths, the simulated-hand dataset and the real recordings in ../shared.

``DATA`` is what most tests train on and replay: a dataset of the simulated hand
(``capture.virtual.hand``: 8 simulated people, wing/ring/slope/negative, 10 takes each, the last
two people declared the test split), written once into ``tests/artifacts`` and keyed by the
simulator's source, so a change to the physics makes a fresh one. Nothing in it is a recording.
Tests that need *real* recordings use the ``magic_wand`` fixture: TensorFlow's archive in
``../shared/datasets/magic_wand`` imported once into the same cache, skipped where it is absent.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
MAGIC_WAND_ARCHIVE = SHARED_DATASETS / "magic_wand" / "data.tar.gz"


def _cached_dataset(name: str, key_files: list[Path], make) -> Path:
    """``ARTIFACTS/name-<hash of key_files>``, made once by ``make(folder)`` (temp folder + rename,
    so concurrent test processes never see a half-written dataset)."""
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in key_files)).hexdigest()[:12]
    folder = ARTIFACTS / f"{name}-{digest}"
    if not folder.is_dir():
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=ARTIFACTS))
        make(tmp)
        try:
            tmp.rename(folder)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _hand_dataset() -> Path:
    from capture.virtual import hand

    sources = [ROOT / "capture" / "virtual" / "hand.py", ROOT / "capture" / "boards.py", ROOT / "capture" / "takes.py"]
    return _cached_dataset("hand", sources, lambda d: hand.write_dataset(d, people=8, per_person=10))


DATA = _hand_dataset()


@pytest.fixture(scope="session")
def magic_wand() -> Path:
    """TensorFlow's magic_wand recordings (real, 10 people) as a dataset, or skip with the reason."""
    if not MAGIC_WAND_ARCHIVE.is_file():
        pytest.skip(f"no real recordings: {MAGIC_WAND_ARCHIVE} is absent (CI lays ../shared beside the clone)")
    from capture.importers.public import fetch

    def make(d: Path) -> None:  # `gesture data fetch magic_wand --file ARCHIVE`: checked, imported, attributed
        fetch("magic_wand", d, file=MAGIC_WAND_ARCHIVE)

    return _cached_dataset("magic_wand", [MAGIC_WAND_ARCHIVE, ROOT / "capture" / "importers" / "magic_wand.py",
                                          ROOT / "capture" / "importers" / "public.py"], make)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def need_tool(name: str) -> str:
    """Path of an external tool, or skip the test with the reason."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make test installs it when run as root)")
    return path


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """One small trained MODEL_DIR for the whole session (export, parity, board sim, dashboard).

    3 epochs on 30 takes per label: accuracy is poor, but every file and figure a real model has
    is there, and it trains in ~25 s on 2 cores.
    """
    from training.train import train

    out = tmp_path_factory.mktemp("small_model")
    return train(DATA, out, epochs=3, limit_per_label=30, augment=1, seed=1, quiet=True)


@pytest.fixture(scope="session")
def other_model(tmp_path_factory) -> Path:
    """A second MODEL_DIR with other labels (ring, slope, negative) than small_model's, so that a
    pushed model's switch shows in the predictions (gesture push, the dashboard's push panel)."""
    from capture.virtual import hand
    from training.train import train

    root = tmp_path_factory.mktemp("other_model")
    hand.write_dataset(root / "data", people=4, per_person=4, labels=("ring", "slope", "negative"), test_people=1)
    train(root / "data", root / "model", epochs=1, augment=1, seed=2, quiet=True)
    return root / "model"


def wait_until(cond, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``cond`` until true; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# The TFLM tree a developer put in their cache (`gesture tflm fetch`) or named in $GESTURE_TFLM,
# looked up before the session hides the user's cache from the tests (isolated_tflm_cache).
def _user_tflm_tree() -> Path | None:
    from training.tflm_tree import find_tree

    try:
        return find_tree()
    except Exception:  # a broken cache is the same as none here: the tests skip with the reason
        return None


USER_TFLM = _user_tflm_tree()
NO_TFLM = ("no TFLM source tree: run `gesture tflm fetch` (or set $GESTURE_TFLM); CI has none, "
           "so the Cortex-M4 and host-compiled classifier checks run only where it is present")


@pytest.fixture(scope="session", autouse=True)
def isolated_tflm_cache(tmp_path_factory):
    """Tests never see the user's TFLM tree (an export bundles TFLM only when a test passes
    ``tflm=``), but share the user's cache of compiled objects, which is keyed by content: the
    runtime is compiled once, not once per session."""
    from training import tflm_tree as tt

    saved = {k: os.environ.get(k) for k in (tt.ENV_CACHE, tt.ENV_BUILD_CACHE, tt.ENV_TREE)}
    os.environ[tt.ENV_BUILD_CACHE] = str(tt.build_cache_root())
    os.environ[tt.ENV_CACHE] = str(tmp_path_factory.mktemp("user-cache"))
    os.environ.pop(tt.ENV_TREE, None)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def tflm_tree(tmp_path_factory) -> Path:
    """The pinned TFLM source tree from the developer's cache or $GESTURE_TFLM (found before the
    session isolated the cache), or skip with the reason."""
    if USER_TFLM is None:
        pytest.skip(NO_TFLM)
    return USER_TFLM
