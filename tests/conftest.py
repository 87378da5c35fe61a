"""Shared fixtures: repository paths and the bundled real dataset."""
from __future__ import annotations

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
