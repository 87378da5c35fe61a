"""Shared fixtures: repository paths and the bundled real dataset."""
from __future__ import annotations

import shutil
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
