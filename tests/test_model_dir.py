"""The model folder (training/model_dir.py) is written whole and read checked: a kill mid-write
keeps the old folder, damaged or mismatched models are refused with the file named."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from capture.errors import DataError, GestureError
from capture.fileio import stale_temporaries
from gesture_cli import main
from tests.conftest import ROOT
from training.model_dir import CALIBRATION_FILES, KNOWN_FILES, check_target, load_model_dir, sha256

KILLER = textwrap.dedent("""
    import os, signal, sys
    calls = 0
    real = os.fsync
    def fsync(fd):
        global calls
        real(fd)
        calls += 1
        if calls == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
    os.fsync = fsync
    from training.model_dir import write_model_dir
    from training.preprocess import PreprocessConfig
    cfg = PreprocessConfig.load(sys.argv[1])
    cfg = PreprocessConfig(**{**cfg.__dict__, "labels": cfg.labels[:2]})
    write_model_dir(sys.argv[1], tflite=b"new model", keras=b"new keras", cfg=cfg,
                    report={"labels": cfg.labels}, extra={"report.md": b"new"})
""")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("kill_at_fsync", [1, 3, 6])  # after model.tflite; after config.json; before the rename
def test_a_kill_while_writing_leaves_the_old_folder_intact(small_model, tmp_path, kill_at_fsync):
    m = _copy(small_model.model_dir, tmp_path / "m")
    before = _snapshot(m)
    proc = subprocess.run([sys.executable, "-c", KILLER, str(m), str(kill_at_fsync)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _snapshot(m) == before  # every old file, no new one, nothing stray inside the folder
    load_model_dir(m)
    assert stale_temporaries(m)  # the killed write's hidden sibling ...
    proc = subprocess.run([sys.executable, "-c", KILLER, str(m), "999"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not stale_temporaries(m)  # ... is removed by the next write, which replaces the folder whole
    assert (m / "model.tflite").read_bytes() == b"new model" and not (m / "confusion.png").exists()
    assert json.loads((m / "report.json").read_text())["model_sha256"] == sha256(b"new model")


def test_flipped_weight_bytes_are_refused(small_model, tmp_path):
    m = _copy(small_model.model_dir, tmp_path / "m")
    data = bytearray((m / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (m / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"model.tflite: sha256 .* does not match report.json's model_sha256"):
        load_model_dir(m)
    assert main(["export", str(m), "--sketch", str(tmp_path / "sk")]) == 2
    assert not (tmp_path / "sk").exists()


@pytest.mark.parametrize("keep", [0.5, 0.05, 7 / 8])
def test_a_truncated_model_is_refused_with_the_file_named(small_model, tmp_path, keep):
    m = _copy(small_model.model_dir, tmp_path / "m")
    cut = (m / "model.tflite").read_bytes()
    cut = cut[:int(len(cut) * keep)]
    (m / "model.tflite").write_bytes(cut)
    with pytest.raises(DataError, match="model.tflite: sha256"):
        load_model_dir(m)
    # the same cut file with a matching checksum: the flatbuffer check names it (never struct.error)
    report = json.loads((m / "report.json").read_text())
    (m / "report.json").write_text(json.dumps(dict(report, model_sha256=sha256(cut))))
    with pytest.raises(DataError, match=r"model.tflite: (truncated or corrupt TFLite model|not a TFLite model)"):
        load_model_dir(m)


def test_model_and_config_from_different_runs_are_refused(small_model, tmp_path):
    m = _copy(small_model.model_dir, tmp_path / "m")
    cfg = json.loads((m / "config.json").read_text())
    (m / "config.json").write_text(json.dumps(dict(cfg, labels=cfg["labels"][:-1])))
    with pytest.raises(DataError, match=rf"output has {len(cfg['labels'])} values .* but config.json has "
                                        rf"{len(cfg['labels']) - 1} labels"):
        load_model_dir(m)


def test_a_report_without_checksum_is_refused(small_model, tmp_path):
    m = _copy(small_model.model_dir, tmp_path / "m")
    report = json.loads((m / "report.json").read_text())
    del report["model_sha256"]
    (m / "report.json").write_text(json.dumps(report))
    with pytest.raises(DataError, match="report.json, field 'model_sha256': missing"):
        load_model_dir(m)


def test_train_output_written_whole_and_foreign_folders_refused(small_model, tmp_path):
    assert sorted(p.name for p in small_model.model_dir.iterdir()) == sorted(KNOWN_FILES - CALIBRATION_FILES)
    check_target(small_model.model_dir)  # a model folder may be replaced
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(GestureError, match="holds files that are not a model folder's"):
        check_target(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(GestureError, match="exists and is not a folder"):
        check_target(tmp_path / "file")
