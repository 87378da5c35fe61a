"""Importers on fixture files in each tool's real format, and on malformed variants."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from capture.errors import DataError
from capture.importers import exporters, import_files, make_take
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


# ----------------------------------------------------------------------------- IMU_Capture variants

def test_arduino_csv_blank_line_after_every_row():
    r = import_files("arduino-csv", [FIX / "flex_every_row_blank.csv"])
    assert len(r.takes) == 3 and all(t.values.shape == (119, 6) for t in r.takes)
    rows = [[float(v) for v in line.split(",")] for line in (FIX / "flex_every_row_blank.csv").read_text().splitlines()[1:]
            if line.strip()]
    np.testing.assert_allclose(np.concatenate([t.values for t in r.takes]), rows)
    assert r.warnings == []


def test_arduino_csv_irregular_blank_lines_split_at_trigger_with_warning():
    r = import_files("arduino-csv", [FIX / "punch_irregular.csv"])
    # blocks: 238 rows (2 gestures, blank line lost), 350 rows (3 gestures, 7 rows lost), 119 rows
    assert len(r.takes) == 5 and all(t.n == 119 for t in r.takes)
    assert max(t.duration_s for t in r.takes) < 1.0  # never one 3-second take
    kinds = [w.kind for w in r.warnings]
    assert kinds.count("split") == 1 and kinds.count("threshold") == 1
    thr = next(w for w in r.warnings if w.kind == "threshold")
    assert "line 241" in thr and "350 rows" in thr and "2.5 g" in thr and "2 gestures, 112 rows left out" in thr
    lines = (FIX / "punch_irregular.csv").read_text().splitlines()
    first_of_block = np.array([float(v) for v in lines[240].split(",")])
    np.testing.assert_allclose(r.takes[2].values[0], first_of_block)  # the trigger split starts at the gesture


def test_arduino_csv_header_side_by_side():
    r = import_files("arduino-csv", [FIX / "side_by_side.csv"], label="punch")
    assert len(r.takes) == 5  # 2 recordings in the left group, 3 in the right
    sources = [t.meta["source"] for t in r.takes]
    assert len(set(sources)) == 5 and sum(",col1" in s for s in sources) == 2 and sum(",col8" in s for s in sources) == 3
    left = [line.split(",")[:6] for line in (FIX / "side_by_side.csv").read_text().splitlines()[1:120]]
    np.testing.assert_allclose(r.takes[0].values, np.asarray(left, dtype=float))


def test_arduino_csv_header_repeated_crlf_and_label_hint(capsys):
    r = import_files("arduino-csv", [FIX / "newFlex.csv"])
    assert len(r.takes) == 2 and r.takes[0].label == "newFlex"
    (hint,) = [w for w in r.warnings if w.kind == "label"]
    assert "newFlex.csv" in hint and "--label flex" in hint
    r = import_files("arduino-csv", [FIX / "newFlex.csv"], label="flex")
    assert {t.label for t in r.takes} == {"flex"} and r.warnings == []


def test_arduino_csv_unsafe_file_name_label_and_binary(tmp_path):
    p = tmp_path / "flex (1).csv"
    p.write_text((FIX / "punch.csv").read_text())
    r = import_files("arduino-csv", [p])
    assert {t.label for t in r.takes} == {"flex_1"}
    assert any(w.kind == "label" and "--label" in w for w in r.warnings)
    b = tmp_path / "b.csv"
    b.write_bytes(b"aX,aY\xff\xfe\x00")
    with pytest.raises(DataError, match=r"b.csv, byte offset 5: not UTF-8 text"):
        import_files("arduino-csv", [b])


# ----------------------------------------------------------------------------- Edge Impulse exports

EI = FIX / "ei_export"


def test_edge_impulse_export_root_labels_categories_units_and_skip():
    r = import_files("edge-impulse", [EI])
    assert r.files == 6 and r.skipped == 1
    by_src = {t.meta["source"].split(":", 1)[1].split(".")[1]: t for t in r.takes}
    assert sorted(t.label for t in r.takes) == ["PRUEBA_1", "ring", "ring", "slope", "wing", "wing"]
    assert {k: t.meta["category"] for k, t in by_src.items()} == {
        "3r7s1ech": "training", "3r7s42pb": "training", "4ac6kffr": "training", "6p8jnuqu": "training",
        "5n40na0t": "testing", "4ac77lk4": "testing"}
    # every take comes in in g: the median |a| is gravity whatever the declared (or missing) unit
    for t in r.takes:
        assert 0.8 < np.median(np.linalg.norm(t.values[:, :3], axis=1)) < 1.3, t.meta["source"]
    kinds = Counter(w.kind for w in r.warnings)
    assert kinds == {"skipped": 1, "label": 1, "units": 3}
    skipped = next(w for w in r.warnings if w.kind == "skipped")
    assert "wing.3r7saq9p" in skipped and "invalid JSON" in skipped
    assert any("'m/s2' but the median |a| is 1.02" in w and "read as g" in w for w in r.warnings)
    assert any("'N/A'" in w and "says g" in w for w in r.warnings)


def test_edge_impulse_cbor_as_the_ingestion_sdk_writes_it():
    (t,) = import_files("edge-impulse", [EI / "training" / "ring.6p8jnuqu.ingestion-7f57cc555d-72psx.cbor"]).takes
    assert t.values.shape == (40, 6) and t.meta["device"] == "ARDUINO_NANO33BLE"
    assert t.meta["interval_ms"] == pytest.approx(1000 / 119) and t.rate_hz == pytest.approx(119)
    import cbor2
    doc = cbor2.loads((EI / "training" / "ring.6p8jnuqu.ingestion-7f57cc555d-72psx.cbor").read_bytes())
    raw = np.asarray(doc["payload"]["values"])
    np.testing.assert_allclose(t.values[:, :3], raw[:, :3] / 9.80665)
    np.testing.assert_allclose(t.values[:, 3:], raw[:, 3:])


def test_edge_impulse_csv_semicolon_bom_decimal_comma():
    (t,) = import_files("edge-impulse", [EI / "testing" / "slope.4ac77lk4.ingestion-6c557c666b-hr88t.csv"]).takes
    first = (EI / "testing" / "slope.4ac77lk4.ingestion-6c557c666b-hr88t.csv").read_text(encoding="utf-8-sig").splitlines()[1]
    ax = float(first.split(";")[1].replace(",", "."))
    assert t.values.shape == (40, 3) and t.values[0, 0] == pytest.approx(ax / 9.80665) and t.rate_hz == 25


def test_edge_impulse_sub_folder_uses_folder_category_and_file_name_labels():
    r = import_files("edge-impulse", [EI / "testing"])
    assert sorted(t.label for t in r.takes) == ["PRUEBA_1", "slope"]
    assert {t.meta["category"] for t in r.takes} == {"testing"}


@pytest.mark.parametrize("names", [
    ["accX", "accY", "accZ"], ["accel_x", "accel_y", "accel_z"], ["x", "y", "z"], ["ax", "ay", "az"],
    ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"], ["AccX", "AccY", "AccZ", "gyroX", "gyroY", "gyroZ"],
])
def test_edge_impulse_sensor_names(tmp_path, names):
    rows = [[0.1 * k, 9.81, 0.2] + [10.0, 20.0, 30.0][: len(names) - 3] for k in range(5)]
    doc = {"payload": {"interval_ms": 10, "sensors": [{"name": n, "units": "m/s2" if k < 3 else "dps"}
                                                      for k, n in enumerate(names)], "values": rows}}
    (tmp_path / "w.1.json").write_text(json.dumps(doc))
    (t,) = import_files("edge-impulse", [tmp_path / "w.1.json"]).takes
    assert t.values[0, 1] == pytest.approx(1.0, abs=1e-3) and t.values.shape[1] == (6 if len(names) == 6 else 3)
    if len(names) == 6:
        assert t.values[0, 5] == 30.0


def _doc(rows, units="m/s2", names=("accX", "accY", "accZ")):
    return json.dumps({"payload": {"interval_ms": 10, "sensors": [{"name": n, "units": units} for n in names],
                                   "values": rows}})


@pytest.mark.parametrize("name, data, expected", [
    ("a.json", _doc([[0, 9.8, 0]] * 4, units="furlongs"),
     "field 'units': acceleration unit 'furlongs' is not one of m/s2, g, mg or N/A; the median |a| of 9.8 looks like m/s2: pass --accel-units m/s2"),
    ("a.json", _doc([[0, 9.8, 0], [0, 1e300, 0]]), "field 'accY': row 1 holds 1e+300, beyond any IMU's range"),
    ("a.json", _doc([[0, 0.05, 0]] * 4, units="N/A"), "median |a| of 0.05 is not near 1 g, 9.81 m/s2 or 1000 mg; pass --accel-units"),
    ("a.json", '{"payload": {"interval_ms": 10, "sensors": [{"name": "accX"}], "values": [[NaN]]}}',
     "field 'payload.values': row 0 value 0 is nan"),
    ("a.cbor", b"\xa3\x69protected\xa2", "invalid CBOR"),
    ("a.bin", b"\x00\x01\x02\xff\xfe garbage", "byte offset 3: neither CBOR nor UTF-8 text"),
    ("a.json", _doc([[0, 9.8, "x"]]), "row 0 value 2 is 'x', not a number"),
    ("a.csv", "timestamp,accX,accY,accZ\n0,0,9.8,0\n0.01,0,9.8,0\n0.02,0,9.8,0\n",
     "field 'timestamp': timestamps step by 0.01, over 5 kHz for an IMU; Edge Impulse CSV timestamps are milliseconds"),
])
def test_edge_impulse_bad_values_and_units(tmp_path, name, data, expected):
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    with pytest.raises(DataError) as e:
        import_files("edge-impulse", [p])
    assert name in str(e.value) and expected in str(e.value)


def test_edge_impulse_forced_units_and_unit_override(tmp_path):
    p = tmp_path / "a.json"
    p.write_text(_doc([[0, 9.8, 0]] * 4, units="furlongs"))
    (t,) = import_files("edge-impulse", [p], accel_units="m/s2").takes
    assert t.values[0, 1] == pytest.approx(9.8 / 9.80665)
    with pytest.raises(DataError, match="--accel-units: 'parsec' is not one of g, m/s2, mg"):
        import_files("edge-impulse", [p], accel_units="parsec")


def test_edge_impulse_phone_above_4g_is_not_clipped(tmp_path):
    from training.dataset import load_dataset, validate
    rng = np.random.default_rng(0)
    takes = []
    for k in range(6):
        v = rng.normal(0, 0.3, (60, 3))
        v[:, 2] += 1.0
        v[30, 0] = 5.7 + 0.1 * k  # a hard phone shake: over this kit's ±4 g, not at any rail
        takes.append(make_take("shake" if k % 2 else "idle", v, 100, {"device": "MOBILE_CLIENT"}))
    save_takes(tmp_path / "ds", takes)
    assert not any("full scale" in w for w in validate(load_dataset(tmp_path / "ds")))
    takes[0].values[10, 0] = 4.0  # this kit's board saturating: still reported
    takes[0].values[30, 0] = 3.0
    save_takes(tmp_path / "ds2", takes)
    assert any("full scale" in w for w in validate(load_dataset(tmp_path / "ds2")))


# ----------------------------------------------------------------------------- export-data round trip

def _same(a, b):
    assert [t.label for t in a] == [t.label for t in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.values, y.values)
        np.testing.assert_array_equal(x.t_ms, y.t_ms)
        assert x.meta.get("category") == y.meta.get("category")
        assert x.meta.get("device") == y.meta.get("device")
        assert x.rate_hz == pytest.approx(y.rate_hz, rel=1e-12)


@pytest.mark.parametrize("fmt", exporters.FORMATS)
def test_export_data_round_trip_keeps_samples_labels_categories_device_intervals(tmp_path, fmt):
    save_takes(tmp_path / "ds", import_files("edge-impulse", [EI]).takes, prefix="ei")
    first, _ = read_takes(tmp_path / "ds")
    assert main(["export-data", fmt, str(tmp_path / "ds"), "--out", str(tmp_path / "ei")]) == 0
    info = json.loads((tmp_path / "ei" / "info.labels").read_text())
    assert {e["category"] for e in info["files"]} == {"training", "testing"}
    assert all((tmp_path / "ei" / e["path"]).is_file() for e in info["files"])
    assert sorted(e["label"]["label"] for e in info["files"]) == sorted(t.label for t in first)
    back = import_files("edge-impulse", [tmp_path / "ei"]).takes
    save_takes(tmp_path / "ds2", back, prefix="ei")
    second, _ = read_takes(tmp_path / "ds2")
    if fmt == "edge-impulse-json":
        _same(first, second)
    else:  # CSV carries timestamps, not interval_ms or the device: samples, times and split survive
        assert [t.label for t in first] == [t.label for t in second]
        for x, y in zip(first, second):
            np.testing.assert_array_equal(x.values, y.values)
            np.testing.assert_array_equal(x.t_ms, y.t_ms)
            assert x.meta["category"] == y.meta["category"]


def test_export_data_exact_intervals_and_device(tmp_path):
    takes = import_files("edge-impulse", [EI / "training" / "ring.6p8jnuqu.ingestion-7f57cc555d-72psx.cbor"]).takes
    save_takes(tmp_path / "ds", takes)
    (t,) = read_takes(tmp_path / "ds")[0]
    doc = json.loads(exporters.to_json(t))
    assert doc["payload"]["interval_ms"] == 1000 / 119 and doc["payload"]["device_type"] == "ARDUINO_NANO33BLE"
    rows = exporters.to_csv(t).splitlines()
    assert [r.split(",")[0] for r in rows[1:4]] == ["0", "8.403", "16.807"]  # 119 Hz, not 8/9 ms steps


def test_export_data_test_subjects_become_testing(tmp_path):
    (d := tmp_path / "ds").mkdir()
    takes = import_files("magic-wand", [FIX / "output_wing_alice.txt"]).takes
    save_takes(d, takes, defaults={"test_subjects": ["alice"]})
    assert main(["export-data", "edge-impulse-json", str(d), "--out", str(tmp_path / "ei")]) == 0
    info = json.loads((tmp_path / "ei" / "info.labels").read_text())
    assert {e["category"] for e in info["files"]} == {"testing"} and len(list((tmp_path / "ei" / "testing").iterdir())) == 3
    assert {e["metadata"]["subject"] for e in info["files"]} == {"alice"}
    back = import_files("edge-impulse", [tmp_path / "ei"]).takes
    assert [t.meta["subject"] for t in back] == ["alice"] * 3 and {t.meta["category"] for t in back} == {"testing"}


# ----------------------------------------------------------------------------- CLI: batches, --quiet

def test_import_cli_batch_skips_bad_files_and_summarises(tmp_path, capsys):
    assert main(["import", "edge-impulse", str(EI), "--data", str(tmp_path / "ds"),
                 "--test-data", str(tmp_path / "test")]) == 0
    cap = capsys.readouterr()
    assert "imported 4 takes" in cap.out and "2 testing-category takes" in cap.out and "6 file(s) read, 1 skipped" in cap.out
    assert cap.err.count("warning:") == 6 and "wing.3r7saq9p" in cap.err
    assert "2 testing take(s) into" in cap.err and "labelled PRUEBA_1, slope, which no training take" in cap.err
    assert len(read_takes(tmp_path / "test")[0]) == 2


def test_import_cli_quiet_keeps_one_summary_line_per_kind(tmp_path, capsys):
    assert main(["import", "edge-impulse", str(EI), "--data", str(tmp_path / "ds"), "--quiet"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("warning: ") for line in err)  # + testing-only labels PRUEBA_1, slope
    assert any("1 x files skipped" in line for line in err) and any("3 x units" in line for line in err)


def test_import_cli_warns_about_takes_far_longer_than_the_rest(tmp_path, capsys):
    v = np.zeros((40, 3))
    v[:, 2] = 1
    for k in range(4):
        (tmp_path / f"w.{k}.json").write_text(_doc((v * 9.80665).tolist()))
    (tmp_path / "w.long.json").write_text(_doc((np.tile(v, (10, 1)) * 9.80665).tolist()))
    assert main(["import", "edge-impulse", *map(str, sorted(tmp_path.glob("*.json"))), "--data", str(tmp_path / "ds"),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 x takes far longer than the rest" in err and "w.long.json" in err and "4.0 s" in err


def test_magic_wand_corrupt_archive_names_the_file(tmp_path):
    (tmp_path / "data.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
    with pytest.raises(DataError, match=r"data.tar.gz: cannot read this archive"):
        import_files("magic-wand", [tmp_path / "data.tar.gz"])


def test_import_cli_edge_impulse_only_options_are_refused_elsewhere(tmp_path, capsys):
    assert main(["import", "arduino-csv", str(FIX / "punch.csv"), "--data", str(tmp_path / "ds"), "--accel-units", "g"]) == 2
    assert "error: --accel-units: only for edge-impulse" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_arduino_csv_stray_blank_line_inside_a_gesture_is_joined(tmp_path):
    lines = (FIX / "punch.csv").read_text().splitlines()
    p = tmp_path / "punch.csv"
    p.write_text("\n".join(lines[:61] + [""] + lines[61:]) + "\n")  # blank line after row 60 of gesture 1
    r = import_files("arduino-csv", [p])
    ref = import_files("arduino-csv", [FIX / "punch.csv"])
    assert len(r.takes) == 2 and all(t.n == 119 for t in r.takes)
    np.testing.assert_array_equal(r.takes[0].values, ref.takes[0].values)
    (w,) = r.warnings
    assert w.kind == "split" and "line 63" in w and "60 + 59 rows" in w


def test_edge_impulse_single_file_finds_the_export_info_labels_and_broken_info_is_skipped(tmp_path):
    (t,) = import_files("edge-impulse", [EI / "testing" / "PRUEBA 1.5n40na0t.ingestion-7fc459c96d-4hfsq.json"]).takes
    assert t.label == "PRUEBA_1" and t.meta["category"] == "testing"
    root = tmp_path / "exp"
    (root / "training").mkdir(parents=True)
    src = EI / "training" / "wing.3r7s1ech.ingestion-5c4bbc78bc-nr5x6.json"
    (root / "training" / src.name).write_bytes(src.read_bytes())
    (root / "info.labels").write_text('{"version": 1, "files": [')
    r = import_files("edge-impulse", [root])
    assert [t.label for t in r.takes] == ["wing"] and r.takes[0].meta["category"] == "training"
    assert any(w.kind == "skipped" and "info.labels" in w and "invalid JSON" in w for w in r.warnings)


def test_edge_impulse_shell_glob_is_one_batch(tmp_path):
    files = sorted((EI / "training").iterdir()) + sorted((EI / "testing").iterdir())  # info.labels included
    r = import_files("edge-impulse", files)
    assert r.files == 6 and r.skipped == 1 and len(r.takes) == 6
    assert Counter(w.kind for w in r.warnings) == {"skipped": 1, "label": 1, "units": 3}
    assert {t.meta["category"] for t in r.takes} == {"training", "testing"}


def test_edge_impulse_interval_far_below_any_imu_is_refused(tmp_path):
    """interval_ms 1e-9 made every t_ms 0 once written: the dataset no longer loaded."""
    p = tmp_path / "wave.1.json"
    p.write_text(_doc([[0, 9.8, 0]] * 4).replace('"interval_ms": 10', '"interval_ms": 1e-9'))
    assert "1e-9" in p.read_text()
    with pytest.raises(DataError) as e:
        import_files("edge-impulse", [p])
    assert "field 'payload.interval_ms': interval_ms is 1e-09, over 5000 Hz for an IMU" in str(e.value)


def _synthetic_export(tmp_path: Path) -> Path:
    """An Edge Impulse export (training/, testing/, info.labels) written by export-data from synthetic takes."""
    rng = np.random.default_rng(7)
    takes = []
    for k in range(6):
        v = rng.normal(0, 0.2, (40, 6))
        v[:, 2] += 1.0
        t = make_take("wave" if k % 2 else "ring", v, 100, {"subject": f"p{k % 3}"})
        t.meta["category"] = "testing" if k >= 4 else "training"
        takes.append(t)
    exporters.export(takes, "edge-impulse-json", tmp_path / "export")
    return tmp_path / "export"


def test_edge_impulse_export_zip_imports_like_its_folder(tmp_path, capsys, monkeypatch):
    """Edge Impulse's "Export data" is a zip: it failed as 'neither CBOR nor UTF-8 text'."""
    import tempfile
    import zipfile
    root = _synthetic_export(tmp_path)
    zpath = tmp_path / "training.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in sorted(root.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(root).as_posix())
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    rc = main(["import", "edge-impulse", str(zpath), "--data", str(tmp_path / "ds"), "--test-data", str(tmp_path / "ts")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "imported 4 takes" in out.out and "2 testing-category takes" in out.out
    assert main(["import", "edge-impulse", str(root), "--data", str(tmp_path / "ds2"), "--test-data", str(tmp_path / "ts2")]) == 0
    for a, b in (("ds", "ds2"), ("ts", "ts2")):
        zipped, folder = read_takes(tmp_path / a)[0], read_takes(tmp_path / b)[0]
        assert [(t.label, t.values.tobytes()) for t in zipped] == [(t.label, t.values.tobytes()) for t in folder]
    assert list((tmp_path / "tmp").iterdir()) == []  # the unpacked copy is gone
    # a bad file inside the zip is named by the zip's path, then the member's
    with zipfile.ZipFile(zpath, "a") as z:
        z.writestr("training/ring.bad.json", "{")
    r = import_files("edge-impulse", [zpath])
    assert any(str(zpath / "training" / "ring.bad.json") in w and "invalid JSON" in w for w in r.warnings)


@pytest.mark.parametrize("member, data, expected", [
    (None, b"PK\x03\x04 not really a zip", "not a readable zip archive"),
    ("../evil.json", b"{}", "member '../evil.json' points outside the archive; refused"),
    ("notes.txt", b"hello", "no .json, .cbor or .csv files in this zip"),
])
def test_edge_impulse_bad_zip_is_one_clear_error(tmp_path, member, data, expected):
    import zipfile
    zpath = tmp_path / "export.zip"
    if member is None:
        zpath.write_bytes(data)
    else:
        with zipfile.ZipFile(zpath, "w") as z:
            z.writestr(member, data)
    with pytest.raises(DataError) as e:
        import_files("edge-impulse", [zpath])
    assert str(e.value).startswith(str(zpath)) and expected in str(e.value)
    assert not (tmp_path / "evil.json").exists()


def _ei_csv(path: Path, header: str = "timestamp,accX,accY,accZ", step: float = 10.0, scale: float = 9.80665) -> Path:
    rng = np.random.default_rng(len(path.name))
    v = rng.normal(0, 0.1, (30, 3))
    v[:, 2] += 1.0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(f"{k * step:g}," + ",".join(f"{x * scale:.5f}" for x in row) + "\n"
                                            for k, row in enumerate(v)))
    return path


def test_file_names_without_a_label_prefix_are_not_one_label_each(tmp_path, capsys):
    """A folder of Z1.csv, O3.csv... became one label per file; the folder names are the labels."""
    for letter in "ZO":
        for k in range(1, 7):
            _ei_csv(tmp_path / "src" / letter / f"{letter}{k}.csv")
    rc = main(["import", "edge-impulse", str(tmp_path / "src"), "--data", str(tmp_path / "ds")])
    err = capsys.readouterr().err
    assert rc == 2 and not (tmp_path / "ds").exists()
    assert ("12 files would give 12 labels (O1, O2, O3, O4, ...): a label is the file name up to its first '.' "
            "(Edge Impulse's rule: wave.01.csv is 'wave')") in err
    assert "pass --label-from folder to take the folder names (labels O, Z)" in err
    assert main(["import", "edge-impulse", str(tmp_path / "src"), "--data", str(tmp_path / "ds"), "--label-from", "folder"]) == 0
    takes, _ = read_takes(tmp_path / "ds")
    assert Counter(t.label for t in takes) == {"O": 6, "Z": 6}
    r = import_files("edge-impulse", [tmp_path / "src"], label_from="name")
    assert len({t.label for t in r.takes}) == 12
    # Edge Impulse's own naming still gives the label before the first '.'
    for k in range(12):
        _ei_csv(tmp_path / "ei" / f"{'wave' if k % 2 else 'idle'}.s{k}.csv")
    assert Counter(t.label for t in import_files("edge-impulse", [tmp_path / "ei"]).takes) == {"wave": 6, "idle": 6}


def test_arduino_csv_label_from_folder(tmp_path):
    src = tmp_path / "punches" / "take1.csv"
    src.parent.mkdir()
    src.write_text((FIX / "punch.csv").read_text())
    assert {t.label for t in import_files("arduino-csv", [src], label_from="folder").takes} == {"punches"}


@pytest.mark.parametrize("header, step, scale", [
    ("timestamp (millis),accX,accY,accZ", 10.0, 9.80665),
    ("timestamp (ms),accX (g),accY (g),accZ (g)", 10.0, 1.0),
    ("timestamp [s],accX (m/s2),accY (m/s2),accZ (m/s2)", 0.01, 9.80665),
    ("Timestamp (us),accX,accY,accZ", 10000.0, 9.80665),
])
def test_edge_impulse_csv_units_in_parentheses(tmp_path, header, step, scale):
    """`timestamp (millis)` was refused as a first column that is not 'timestamp'."""
    (t,) = import_files("edge-impulse", [_ei_csv(tmp_path / "wave.1.csv", header, step, scale)]).takes
    assert t.label == "wave" and t.rate_hz == pytest.approx(100)
    assert np.median(np.linalg.norm(t.values, axis=1)) == pytest.approx(1.0, abs=0.1)
    p = _ei_csv(tmp_path / "wave.2.csv", "timestamp (fortnights),accX,accY,accZ")
    with pytest.raises(DataError, match=r"line 1, field 'timestamp \(fortnights\)': timestamp unit 'fortnights' is not one of"):
        import_files("edge-impulse", [p])


def test_edge_impulse_unit_is_decided_once_per_export(tmp_path):
    """A real m/s2 export: free-fall takes (median |a| 0.4-3 m/s2) were each read as g, then refused as
    "beyond any IMU's range" (their impact) or imported 9.81x too large; the folder decides m/s2 for all."""
    rng = np.random.default_rng(3)
    export = tmp_path / "motionsense"
    export.mkdir()

    def write_doc(name, rows):
        (export / name).write_text(_doc(rows.tolist()))
    for k in range(20):  # ordinary takes: gravity plus motion, in m/s2
        v = rng.normal(0, 1.5, (100, 3))
        v[:, 2] += 9.81
        write_doc(f"walk.{k}.json", v)
    for k in range(12):  # rest, a long fall (|a| ~ 1 m/s2 of drag), the impact, rest
        v = rng.normal(0, 0.3, (100, 3))
        v[:15, 2] += 9.81
        v[15:85, 2] += 0.4 + 0.2 * (k % 10)
        v[86:, 2] += 9.81
        v[85] = (0, 0, 100.0 if k else 30.0)  # 100 m/s2 read as g is beyond any IMU; 30 m/s2 passes as 30 g
        write_doc(f"fall.{k}.json", v)
    g_data = rng.normal(0, 0.4, (100, 3))  # one file declares m/s2 but holds g: it never reads 1 g in m/s2
    g_data[:, 2] += 1.0
    write_doc("walk.odd.json", g_data)
    r = import_files("edge-impulse", [export])
    assert r.skipped == 0 and len(r.takes) == 33
    for t in r.takes:
        peak_g = float(np.linalg.norm(t.values, axis=1).max())
        src = t.meta["source"]
        if "fall." in src:
            assert 0.9 < np.median(np.linalg.norm(t.values[:15], axis=1)) < 1.1, src  # rest reads 1 g
            assert peak_g == pytest.approx((100.0 if not src.endswith("fall.0.json") else 30.0) / 9.80665, rel=0.02), src
        else:
            assert 0.8 < np.median(np.linalg.norm(t.values, axis=1)) < 1.3, src
    units = [w for w in r.warnings if w.kind == "units"]
    assert len(units) == 2, units
    assert any(f"12 files in {export} alone would look like another unit" in w and "read as m/s2 like the rest of the folder" in w
               for w in units)
    assert any(f"1 file in {export} declares acceleration in 'm/s2'" in w and "read as g" in w and "walk.odd.json" in w
               for w in units)


def test_import_warns_about_testing_takes_of_a_label_with_no_training_take(tmp_path, capsys):
    """A testing take labelled with a label absent from training imported silently."""
    rng = np.random.default_rng(5)
    takes = []
    for k, (label, cat) in enumerate([("wave", "training")] * 3 + [("ring", "training")] * 3
                                     + [("wave", "testing"), ("jump", "testing"), ("jump", "testing")]):
        v = rng.normal(0, 0.2, (40, 3))
        v[:, 2] += 1.0
        t = make_take(label, v, 100)
        t.meta["category"] = cat
        takes.append(t)
    exporters.export(takes, "edge-impulse-json", tmp_path / "export")
    assert main(["import", "edge-impulse", str(tmp_path / "export"), "--data", str(tmp_path / "ds"),
                 "--test-data", str(tmp_path / "ts")]) == 0
    err = capsys.readouterr().err
    assert (f"2 testing take(s) into {tmp_path / 'ts'} are labelled jump, which no training take in {tmp_path / 'ds'} has: "
            f"the model cannot predict it, so `gesture train --test {tmp_path / 'ts'}` leaves them unscored") in err
    assert main(["import", "edge-impulse", str(tmp_path / "export"), "--data", str(tmp_path / "one"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 x testing takes of a label with no training take" in err and "labelled jump" in err
    # training takes of that label already in the dataset: nothing to say
    save_takes(tmp_path / "ds3", [make_take("jump", takes[0].values, 100)])
    assert main(["import", "edge-impulse", str(tmp_path / "export"), "--data", str(tmp_path / "ds3"),
                 "--test-data", str(tmp_path / "ts3")]) == 0
    assert "labelled jump" not in capsys.readouterr().err
