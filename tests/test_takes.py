"""The take format: round trip, validation messages, atomic writes."""
from __future__ import annotations

import os

import numpy as np
import pytest

from capture.errors import DataError
from capture.fileio import atomic_write_text
from capture.takes import Take, read_take, save_takes, write_take, read_takes
from capture.protocol import counts_to_units, units_to_counts


def make(label="wave", n=50, ch=6, rate=119.0):
    rng = np.random.default_rng(0)
    counts = rng.integers(-30000, 30000, size=(n, ch))
    return Take(label, np.arange(n) * 1000.0 / rate, counts_to_units(counts),
                channels=("ax", "ay", "az", "gx", "gy", "gz")[:ch])


@pytest.mark.parametrize("ch", [3, 6])
def test_round_trip_keeps_int16_counts_exact(tmp_path, ch):
    t = make(ch=ch)
    p = write_take(tmp_path / "wave" / "a.csv", t)
    back = read_take(p)
    assert back.label == "wave" and back.channels == t.channels
    assert np.array_equal(units_to_counts(back.values), units_to_counts(t.values))
    assert back.rate_hz == 119.0


@pytest.mark.parametrize("text, expected", [
    ("", "line 1: empty file"),
    ("t_ms,ax,ay\n0,1,2\n", "line 1: header is 't_ms,ax,ay'; expected 't_ms,ax,ay,az' or 't_ms,ax,ay,az,gx,gy,gz' (missing column az)"),
    ("t_ms,ax,ay,az\n0,1,2\n", "line 2: 3 cells; expected 4"),
    ("t_ms,ax,ay,az\n0,1,2,3\n10,1,abc,3\n", "line 3, field 'ay': 'abc' is not a number"),
    ("t_ms,ax,ay,az\n0,1,nan,3\n", "line 2, field 'ay': 'nan' is not a finite number"),
    ("t_ms,ax,ay,az\n0,1,2,3\n0,1,2,3\n", "line 3, field 't_ms': t_ms 0 is not after the previous row's 0"),
    ("t_ms,ax,ay,az\n", "line 2: no samples"),
])
def test_read_take_errors_name_file_line_field(tmp_path, text, expected):
    p = tmp_path / "wave" / "bad.csv"
    p.parent.mkdir()
    p.write_text(text)
    with pytest.raises(DataError) as e:
        read_take(p)
    assert str(e.value).startswith(str(p)) and expected in str(e.value)


def test_atomic_write_leaves_old_file_and_no_temp_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(p, "new")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_save_takes_numbers_files_and_skips_hidden_temp(tmp_path):
    save_takes(tmp_path, [make(), make()], defaults={"sample_rate_hz": 119})
    (tmp_path / "wave" / ".take_0003.csv.x.tmp").write_text("partial")
    takes, manifest = read_takes(tmp_path)
    assert [t.path.name for t in takes] == ["take_0001.csv", "take_0002.csv"]
    assert manifest["sample_rate_hz"] == 119


def test_atomic_write_makes_an_ordinary_file_not_a_private_one(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    from capture.fileio import _UMASK
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~_UMASK


@pytest.mark.parametrize("t_ms, values, expected", [
    (np.zeros(0), np.zeros((0, 3)), "take has no samples"),
    (np.arange(4) * 1e-9, np.zeros((4, 3)), "sample 1 is at t_ms 1e-09, not after sample 0's 0 once written to 1 us"),
    (np.arange(4) * 10.0, np.array([[0, 0, 1.0]] * 3 + [[0, 0, 1e6]]), "sample 3 holds 1e+06 in az, not a plausible IMU reading"),
])
def test_save_takes_refuses_a_take_read_take_would_refuse_and_writes_nothing(tmp_path, t_ms, values, expected):
    """A 0-sample take (capture --seconds 0.001) or timestamps that collapse at 1 us (interval_ms 1e-9)
    would break every later `data`/`train`: refused before any file of the batch is written."""
    good = make(ch=3)
    bad = Take("wave", t_ms, values, channels=("ax", "ay", "az"), meta={"source": "test:bad"})
    with pytest.raises(DataError) as e:
        save_takes(tmp_path / "ds", [good, bad])
    assert str(e.value).startswith("test:bad") and expected in str(e.value)
    assert not list((tmp_path / "ds").rglob("*.csv")) and not (tmp_path / "ds" / "dataset.json").exists()
    with pytest.raises(DataError, match="take has no samples"):
        write_take(tmp_path / "one.csv", Take("wave", np.zeros(0), np.zeros((0, 3))))
    assert not (tmp_path / "one.csv").exists()


def test_read_takes_finds_upper_case_csv_and_numbers_new_takes_past_it(tmp_path):
    """Take_0001.CSV (another tool, a case-insensitive disk) was silently ignored."""
    save_takes(tmp_path, [make(n=10, ch=3), make(n=12, ch=3)])
    (tmp_path / "wave" / "take_0001.csv").rename(tmp_path / "wave" / "Take_0001.CSV")
    takes, _ = read_takes(tmp_path)
    assert sorted(t.n for t in takes) == [10, 12]
    (new,) = save_takes(tmp_path, [make(n=14, ch=3)])
    assert new.name == "take_0003.csv"  # never a lower-case twin of Take_0001.CSV
    assert len(read_takes(tmp_path)[0]) == 3


@pytest.mark.parametrize("folder, expected", [
    ("wave hand", "label 'wave hand' (the folder's name) must be letters, digits, '_' or '-' (ASCII): it names the model's "
                  "output and a C++ string in the sketch; rename the folder, e.g. to 'wave_hand'"),
    ("café", "label 'café' (the folder's name) must be letters, digits, '_' or '-' (ASCII)"),
    ("x" * 70, "is 70 characters, over 64"),
])
def test_read_takes_refuses_a_label_folder_the_sketch_cannot_name(tmp_path, folder, expected):
    """Labels with spaces or non-ASCII passed `data` and `train` and were refused only at export."""
    save_takes(tmp_path, [make(ch=3), make(label="ring", ch=3)])
    (tmp_path / "ring").rename(tmp_path / folder)
    with pytest.raises(DataError) as e:
        read_takes(tmp_path)
    assert str(e.value).startswith(str(tmp_path / folder)) and expected in str(e.value)
    (tmp_path / "notes here").mkdir()  # a folder without takes is not a label: ignored
    (tmp_path / folder).rename(tmp_path / "ring")
    assert {t.label for t in read_takes(tmp_path)[0]} == {"wave", "ring"}
