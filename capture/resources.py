"""Where the kit's own files are: firmware sources and sketch templates.

They ship as package data of a small package, ``gesture_firmware`` (the repository's
``firmware/``), mapped in pyproject.toml, so an installed wheel
finds them with :mod:`importlib.resources` wherever it runs. In a source checkout the folders
beside this code win: several checkouts (worktrees) may share one environment whose editable
install points at another checkout, and the code that runs must use its own firmware.

Every caller asks here; nothing else builds a path from ``__file__`` to these folders.
"""
from __future__ import annotations

import importlib.resources
import os
from functools import cache
from pathlib import Path

from capture.errors import GestureError

_CHECKOUT = Path(__file__).resolve().parent.parent  # the repository root when run from source


@cache
def _root(package: str, folder: str) -> Path:
    src = _CHECKOUT / folder
    if (_CHECKOUT / "pyproject.toml").is_file() and (src / "__init__.py").is_file():
        return src
    try:
        found = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise GestureError(f"the kit's {folder}/ files are missing: package {package} is not installed "
                           "(reinstall gesture-kit)") from None
    path = Path(str(found))
    if not path.is_dir():  # e.g. a zipped install: the compilers and the Arduino IDE need real files
        raise GestureError(f"the kit's {folder}/ files are not on disk ({found}); install gesture-kit unzipped")
    return path


def firmware_dir() -> Path:
    """``firmware/``: the capture sketch, the shared C++ and the classifier templates."""
    return _root("gesture_firmware", "firmware")


def capture_sketch_dir() -> Path:
    """The capture sketch folder (``capture.ino`` and its generated headers)."""
    return firmware_dir() / "capture"


def common_dir() -> Path:
    """C++ both sketches share (``gk_frame.h``, the per-sensor IMU headers)."""
    return firmware_dir() / "common"


def classifier_template_dir() -> Path:
    """The classifier sketch the exporter fills in."""
    return firmware_dir() / "templates" / "gesture_classifier"


def user_cache_dir() -> Path:
    """The kit's folder in the user cache (``$XDG_CACHE_HOME/gesture-kit``, else ``~/.cache/gesture-kit``).

    What the kit builds or unpacks for the user (TFLM trees and objects, host-compiled boards)
    lives here, never in the repository or the install tree; callers add their own subfolder.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gesture-kit"
