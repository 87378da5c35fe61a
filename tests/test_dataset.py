"""Loading and checking datasets: the real magic_wand recordings (../shared), the simulated hand, broken ones."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from capture.errors import DataError
from capture.takes import Take, save_takes
from gesture_cli import main
from training.dataset import load_dataset, validate

ROOT = Path(__file__).resolve().parent.parent


def test_real_magic_wand_loads_with_subjects_and_split(magic_wand):
    ds = load_dataset(magic_wand)
    assert ds.labels == ["negative", "ring", "slope", "wing"]
    counts = {k: len(v) for k, v in ds.by_label().items()}
    assert counts == {"negative": 133, "ring": 218, "slope": 228, "wing": 223}
    assert {"liucx", "zhangxy", "hyw"} <= set(ds.subjects())
    assert ds.manifest["test_subjects"] == ["liucx", "zhangxy", "negative_1"]
    assert ds.rates() == [25.0] and ds.channels() == [("ax", "ay", "az")]
    assert validate(ds) == []


def test_gesture_data_prints_table(capsys, magic_wand):
    assert main(["data", str(magic_wand)]) == 0
    out = capsys.readouterr().out
    for text in ("ring", "218", "25 Hz", "ax,ay,az", "subjects:  17", "liucx"):
        assert text in out


def test_simulated_hand_dataset_is_marked_and_split_by_person(capsys):
    from conftest import DATA

    ds = load_dataset(DATA)
    assert ds.labels == ["negative", "ring", "slope", "wing"]
    assert {k: len(v) for k, v in ds.by_label().items()} == {"negative": 80, "ring": 80, "slope": 80, "wing": 80}
    assert len(ds.subjects()) == 8 and ds.manifest["test_subjects"] == ["sim06", "sim07"]
    assert ds.manifest["simulated"] is True and all(t.meta["simulated"] for t in ds.takes)
    assert ds.rates() == [119.0] and ds.channels() == [("ax", "ay", "az", "gx", "gy", "gz")]
    assert validate(ds) == []


def synth(label, n=40, value=0.1, subject=None, rate=100.0, seed=0):
    v = np.random.default_rng(seed).normal(0, value, size=(n, 3))
    return Take(label, np.arange(n) * 1000 / rate, v, meta={"subject": subject} if subject else {})


def test_warnings(tmp_path):
    takes = [synth("a", seed=i, subject="p1") for i in range(12)] + [synth("b", seed=100 + i) for i in range(2)]
    takes.append(synth("b", seed=0, subject="p1"))  # duplicate of a's first take
    clipped = synth("b", seed=999)
    clipped.values[5, 0] = 4.0
    takes.append(clipped)
    takes.append(synth("b", seed=555, rate=50.0))
    save_takes(tmp_path, takes)
    w = "\n".join(validate(load_dataset(tmp_path)))
    assert "class imbalance: a has 12 takes, b only 5 (ratio 2.4)" in w
    assert "duplicate takes:" in w and "a/take_0001.csv" in w and "b/take_0003.csv" in w
    assert "reach the IMU's full scale" in w
    assert "sample rates differ: most takes are 100 Hz" in w
    assert "have no subject" in w


def test_too_few_takes_warning(tmp_path):
    save_takes(tmp_path, [synth("a", seed=i) for i in range(6)] + [synth("b", seed=50)])
    assert any("fewer than 5 takes for: b (1)" in w for w in validate(load_dataset(tmp_path)))


def test_one_label_and_empty_errors(tmp_path):
    with pytest.raises(DataError, match="no takes found"):
        load_dataset(tmp_path)
    save_takes(tmp_path, [synth("a", seed=i) for i in range(3)])
    with pytest.raises(DataError, match=r"only one label \(a\)"):
        load_dataset(tmp_path)


def test_gesture_data_bad_file_exit_2_no_traceback(tmp_path):
    save_takes(tmp_path, [synth("a"), synth("b")])
    (tmp_path / "b" / "take_0002.csv").write_text("t_ms,ax,ay,az\n0,1,2,3\n40,1,,3\n")
    proc = subprocess.run([sys.executable, "-m", "gesture_cli", "data", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "take_0002.csv, line 3, field 'ay': '' is not a number" in proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
