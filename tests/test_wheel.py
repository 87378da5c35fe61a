"""The installable wheel: built from this checkout, it carries the firmware, templates and the
bundled dataset, and an install of it (not editable, no checkout on sys.path) exports a sketch
and writes the capture firmware from an unrelated working directory."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _packages_in_checkout() -> set[str]:
    out = set()
    for top in ("capture", "training", "dashboard"):
        for init in (ROOT / top).rglob("__init__.py"):
            out.add(".".join(init.parent.relative_to(ROOT).parts))
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the checkout without build/ or *.egg-info (setuptools would ship stale
    files left in build/lib) and without tests/bench caches."""
    out = tmp_path_factory.mktemp("wheel")
    src = tmp_path_factory.mktemp("src") / "gesture-kit"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", ".ruff_cache", ".mypy_cache", "out",
                                                             "models", "artifacts"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}")
    (whl,) = out.glob("gesture_kit-*.whl")
    return whl


def test_wheel_holds_every_package_and_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for pkg in _packages_in_checkout():
        assert pkg.replace(".", "/") + "/__init__.py" in names, f"{pkg} is not in the wheel (pyproject packages)"
    for src in (ROOT / "firmware").rglob("*"):
        if src.is_file() and src.suffix in (".h", ".ino", ".cpp", ".tmpl", ".md"):
            assert "gesture_firmware/" + src.relative_to(ROOT / "firmware").as_posix() in names, src
    # no recordings ship: nothing from outside is in the wheel (the demo records from the simulated hand)
    assert not any(n.endswith((".csv", ".tar.gz", ".cbor")) or n.startswith("gesture_data/") for n in names)
    assert "training/tflm_pinned.sha256" in names  # what `gesture tflm fetch` keeps and checks
    for src in (ROOT / "dashboard" / "live").iterdir():  # the live view's page, served from the install
        assert "dashboard/live/" + src.name in names, src
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    # test tools stay out of the product (the browser driver, the C++ parity harness)
    assert not any(n.endswith(("browser.py", "parity_driver.cpp", "parity_harness.py")) for n in names)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A venv with the wheel installed; its dependencies come from this interpreter's site-packages
    through a path line in a .pth (the lines there are added as paths; .pth files inside that
    folder are not run, so an editable install of the kit stays out)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"pip install of the wheel failed:\n{proc.stdout}\n{proc.stderr}")
    return venv


def _gesture(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / "gesture"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_installed_wheel_uses_its_own_files(installed, tmp_path):
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import capture, capture.resources as r; print(capture.__file__); "
                            "print(r.firmware_dir()); print(r.capture_sketch_dir()); "
                            "import importlib.resources as ir, training.tflm_tree as t; "
                            "print(ir.files('training').joinpath(t.MANIFEST_NAME)); assert len(t.pinned_manifest()) > 900"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert len(where) == 4
    for path in where:
        assert Path(path).is_relative_to(installed), f"{path} is not inside the installed venv {installed}"
        assert not Path(path).is_relative_to(ROOT)


def test_installed_wheel_writes_firmware_and_exports(installed, small_model, tmp_path):
    fw = _gesture(installed, tmp_path, "firmware", "--out", "capture_fw")
    assert fw.returncode == 0, fw.stderr
    for name in ("capture_fw.ino", "gesture_protocol.h", "gk_capture_version.h", "gk_frame.h"):
        assert (tmp_path / "capture_fw" / name).read_text() == (ROOT / "firmware" / "capture" /
                                                                (name if name != "capture_fw.ino" else "capture.ino")).read_text()
    ex = _gesture(installed, tmp_path, "export", str(small_model.model_dir), "--sketch", "sk", "--board", "nano33ble_rev2")
    assert ex.returncode == 0, ex.stderr
    manifest = json.loads((tmp_path / "sk" / "export.json").read_text())
    assert manifest["board"] == "nano33ble_rev2"
    for name in manifest["files"]:
        assert (tmp_path / "sk" / name).is_file(), name
    assert (tmp_path / "sk" / "gk_preprocess.h").read_text() == \
        (ROOT / "firmware" / "templates" / "gesture_classifier" / "gk_preprocess.h").read_text()
