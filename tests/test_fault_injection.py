"""Fault injection: the reproductions of issue 14, each giving a clear error or the right result.

Every test here runs what a user would run (``python -m gesture_cli ...`` in a subprocess, with
the user's working directory) or calls the one function at fault, and checks that nothing saved
is lost, nothing is silently wrong, and a user mistake is a one-line ``error: ...`` (exit 2),
never a traceback.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DATA, ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def gesture(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gesture_cli", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def assert_user_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, one ``error: ...`` line naming the problem, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def capture_args(data: Path, *extra: str, url: str = "virtual://idle?speed=0", label: str = "same") -> list[str]:
    return ["capture", "--url", url, "--label", label, "--takes", "2", "--seconds", "0.2", "--countdown", "0",
            "--data", str(data), "--quiet", *extra]


# ----------------------------------------------------------------------------- silent loss

def test_three_concurrent_captures_into_one_label_keep_all_30_takes(tmp_path):
    data = tmp_path / "D"
    procs = [subprocess.Popen([sys.executable, "-m", "gesture_cli", "capture", "--url", f"virtual://idle?seed={i}",
                               "--label", "same", "--takes", "10", "--seconds", "0.5", "--countdown", "0",
                               "--data", str(data), "--quiet"], cwd=tmp_path, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (1, 2, 3)]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    files = sorted(p.name for p in (data / "same").glob("*.csv"))
    assert len(files) == 30, files
    manifest = json.loads((data / "dataset.json").read_text())
    assert sorted(k.split("/")[1] for k in manifest["takes"]) == files
