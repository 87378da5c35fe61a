"""Shared fixtures: repository paths and the bundled real dataset."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "magic_wand"


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


def wait_until(cond, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``cond`` until true; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


SHARED_TFLM = ROOT.parent / "shared" / "tflm" / "tflm-src.tar.gz"


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
    """The pinned TFLM source tree (../shared/tflm/tflm-src.tar.gz, extracted once per session
    outside the repo and outside the lookup path of find_tree()), or skip with the reason."""
    from training.tflm_tree import find_tree

    if not SHARED_TFLM.is_file():
        pytest.skip(f"no TFLM source tree: {SHARED_TFLM} is absent (CI puts ../shared beside the clone)")
    tree = find_tree(SHARED_TFLM, cache_dir=tmp_path_factory.mktemp("tflm-trees"))
    assert tree is not None
    return tree
