"""Importers on fixture files in each tool's real format, and on malformed variants."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capture.errors import DataError
from capture.importers import import_files
from capture.importers import exporters
from capture.takes import read_takes, save_takes
from gesture_cli import main

FIX = Path(__file__).parent / "fixtures" / "importers"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ----------------------------------------------------------------------------- arduino-csv

def test_arduino_csv_blank_line_separated():
    r = import_files("arduino-csv", [FIX / "punch.csv"])
    assert [t.label for t in r.takes] == ["punch", "punch"]
    t = r.takes[0]
    assert t.values.shape == (119, 6) and t.channels == ("ax", "ay", "az", "gx", "gy", "gz")
    assert t.rate_hz == 119
    first = [float(v) for v in (FIX / "punch.csv").read_text().splitlines()[1].split(",")]
    np.testing.assert_allclose(t.values[0], first)
    assert r.warnings == []


def test_arduino_csv_without_blank_lines_cuts_every_119_and_drops_partial():
    r = import_files("arduino-csv", [FIX / "flex_noblank.csv"], label="flex")
    assert len(r.takes) == 2 and {t.label for t in r.takes} == {"flex"}
    assert len(r.warnings) == 1 and "50 rows is shorter than 119" in r.warnings[0] and "line 240" in r.warnings[0]


@pytest.mark.parametrize("text, expected", [
    ("", "empty file"),
    ("ax,ay,az\n1,2,3\n", "line 1: header is 'ax,ay,az'; expected 'aX,aY,aZ,gX,gY,gZ'"),
    ("aX,aY,aZ,gX,gY,gZ\n1,2,3,4,5\n", "line 2: 5 values; expected 6"),
    ("aX,aY,aZ,gX,gY,gZ\n1,2,3,4,5,6\n1,2,x,4,5,6\n", "line 3, field 'aZ': 'x' is not a number"),
    ("aX,aY,aZ,gX,gY,gZ\n1,2,3,4,5,6\n\n", "no complete gesture of 119 rows"),
])
def test_arduino_csv_errors(tmp_path, text, expected):
    p = write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError) as e:
        import_files("arduino-csv", [p])
    assert "bad.csv" in str(e.value) and expected in str(e.value)


# ----------------------------------------------------------------------------- edge impulse

def test_edge_impulse_csv_converts_ms2_to_g_and_label_from_name():
    r = import_files("edge-impulse", [FIX / "wave.s1.csv"])
    (t,) = r.takes
    assert t.label == "wave" and t.channels[-1] == "gz"
    assert t.values[0, 1] == pytest.approx(-1.0)  # -9.80665 m/s2 is -1 g
    assert t.values[3, 3] == pytest.approx(13.0)  # gyro stays deg/s
    assert t.rate_hz == pytest.approx(62.5)


def test_edge_impulse_json():
    (t,) = import_files("edge-impulse", [FIX / "circle.4f2a.json"]).takes
    assert t.label == "circle" and t.values.shape == (50, 3)
    assert t.rate_hz == 100 and t.values[0, 0] == pytest.approx(1.0) and t.values[1, 0] == 0


@pytest.mark.parametrize("name, text, expected", [
    ("a.csv", "time,accX,accY,accZ\n0,1,2,3\n", "line 1, field 'time': first column is 'time'; expected 'timestamp'"),
    ("a.csv", "timestamp,accX,accY,accZ\n0,1,2,3\n16,1,nan,3\n", "line 3, field 'accY'"),
    ("a.csv", "timestamp,accX,accY,accZ\n16,1,2,3\n16,1,2,3\n", "line 3, field 'timestamp': timestamp does not increase"),
    ("a.csv", "timestamp,accX,accY\n0,1,2\n", "no accZ column"),
    ("a.json", '{"payload": {"interval_ms": 10, "sensors": []}}', "field 'payload.values': payload has no 'values'"),
    ("a.json", '{"payload": {"interval_ms": 0, "sensors": [], "values": []}}', "interval_ms is 0"),
    ("a.json", '{"payload": ', "line 1: invalid JSON"),
    ("a.json", '{"payload": {"interval_ms": 10, "sensors": [{"name": "accX"}, {"name": "accY"}, {"name": "accZ"}], "values": [[1, 2]]}}',
     "values have shape (1, 2); expected rows of 3 numbers"),
])
def test_edge_impulse_errors(tmp_path, name, text, expected):
    p = write(tmp_path, name, text)
    with pytest.raises(DataError) as e:
        import_files("edge-impulse", [p])
    assert name in str(e.value) and expected in str(e.value)


@pytest.mark.parametrize("fmt", exporters.FORMATS)
def test_edge_impulse_round_trip(tmp_path, fmt):
    src = import_files("arduino-csv", [FIX / "punch.csv"]).takes
    save_takes(tmp_path / "ds", src)
    takes, _ = read_takes(tmp_path / "ds")
    files = exporters.export(takes, fmt, tmp_path / "ei")
    assert files[0].name.startswith("punch.")
    back = import_files("edge-impulse", files).takes
    assert [t.label for t in back] == ["punch", "punch"]
    for a, b in zip(takes, back):
        np.testing.assert_allclose(b.values, a.values, atol=2e-5)
        assert b.rate_hz == pytest.approx(119, rel=0.01)


# ----------------------------------------------------------------------------- magic wand

def test_magic_wand_log_segments_noise_and_short():
    r = import_files("magic-wand", [FIX / "output_wing_alice.txt"])
    assert [len(t.values) for t in r.takes] == [40, 45, 50]
    assert {t.meta["subject"] for t in r.takes} == {"alice"}
    np.testing.assert_allclose(r.takes[0].values[0], [-0.515, 0.412, 0.716])
    assert r.takes[0].rate_hz == 25
    assert any("shorter than 10 samples" in w for w in r.warnings)


def test_magic_wand_continuous_negative_cut_into_120():
    r = import_files("magic-wand", [FIX / "output_negative_1.txt"])
    assert [len(t.values) for t in r.takes] == [120, 120]  # 250 samples: two pieces, tail dropped
    assert r.takes[0].label == "negative" and r.takes[0].meta["subject"] == "negative_1"
    assert r.takes[1].values[0, 0] == pytest.approx(0.120)


def test_magic_wand_bad_name_and_no_data(tmp_path):
    p = write(tmp_path, "wing_alice.txt", "1,2,3\n")
    with pytest.raises(DataError, match="wing_alice.txt: file name must look like output_"):
        import_files("magic-wand", [p])
    p = write(tmp_path, "output_ring_bob.txt", "Script started\n-,-,-\n")
    with pytest.raises(DataError, match="output_ring_bob.txt: no x,y,z data lines"):
        import_files("magic-wand", [p])


# ----------------------------------------------------------------------------- CLI

def test_import_cli_writes_takes_and_manifest(tmp_path, capsys):
    d = tmp_path / "ds"
    assert main(["import", "magic-wand", str(FIX / "output_wing_alice.txt"), "--data", str(d)]) == 0
    assert "imported 3 takes" in capsys.readouterr().out
    takes, manifest = read_takes(d)
    assert len(takes) == 3 and manifest["sample_rate_hz"] == 25
    assert all(t.meta["subject"] == "alice" for t in takes)
    # importing again adds, never overwrites
    assert main(["import", "magic-wand", str(FIX / "output_wing_alice.txt"), "--data", str(d)]) == 0
    assert len(read_takes(d)[0]) == 6


def test_import_cli_error_is_one_line_exit_2(tmp_path, capsys):
    p = write(tmp_path, "bad.csv", "aX,aY,aZ,gX,gY,gZ\n1,2,3,4,5\n")
    assert main(["import", "arduino-csv", str(p), "--data", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.csv, line 2" in err and "Traceback" not in err
    assert not (tmp_path / "ds").exists()
