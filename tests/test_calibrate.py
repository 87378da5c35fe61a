"""Continuous recordings and `gesture calibrate`: the stream format, the generator, the scoring
rule, the sweep, and the operating point written into the model folder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from capture.errors import DataError
from capture.streams import (StreamEvent, StreamWriter, compose_stream, find_streams, read_stream, summary,
                             write_stream)
from conftest import DATA
from gesture_cli import main
from training.calibrate import Replay, Tolerance, calibrate, score
from training.dataset import load_dataset
from training.model_dir import load_model_dir
from training.postprocess import DetectorConfig, SweepStream, detector_config


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """Two small streams built like the benchmark's: real gesture takes placed into real negative
    recordings (the dataset's negative takes joined end to end), and one negative-only stream."""
    ds = load_dataset(DATA)
    first = next(t for t in ds.takes if t.label == "negative")
    rate, channels = round(first.rate_hz, 2), tuple(first.channels)  # the dataset's own (bundled or simulated)
    same = [t for t in ds.takes if tuple(t.channels) == channels and abs(t.rate_hz - rate) < 0.01 * rate]
    neg = [t for t in same if t.label == "negative"][:60]
    gestures = [t for t in same if t.label != "negative"]
    rng = np.random.default_rng(0)
    picks = [gestures[i] for i in rng.choice(len(gestures), 10, replace=False)]
    cut = len(neg) * 3 // 4
    bg = np.vstack([t.values for t in neg[:cut]])
    values, events, placed = compose_stream(bg, [(t.label, t.values) for t in picks], rate, gap_s=(4.0, 6.0), seed=1)
    d = tmp_path_factory.mktemp("streams")
    write_stream(d / "gestures", values, rate, channels, events, chunk_s=20.0)
    write_stream(d / "idle", np.vstack([t.values for t in neg[cut:]]), rate, channels, [], chunk_s=20.0)
    assert placed == len(events) >= 5
    return d


def test_stream_folder_round_trip_and_summary(streams):
    s = read_stream(streams / "gestures")
    assert s.rate_hz > 0 and s.channels[:3] == ("ax", "ay", "az") and len(s.events) >= 5
    assert len(list((streams / "gestures").glob("chunk_*.csv"))) == int(np.ceil(s.duration_s / 20.0))
    assert np.all(np.diff(s.t_ms) > 0) and s.events == sorted(s.events, key=lambda e: e.onset_ms)
    assert all(e.end_ms is not None and e.end_ms > e.onset_ms for e in s.events)
    assert sorted(find_streams([streams])) == [streams / "gestures", streams / "idle"]
    text = summary(find_streams([streams]))
    assert text.startswith("2 continuous recording(s)") and f"{len(s.events)} events" in text


def test_compose_keeps_the_whole_background_and_places_takes_where_the_events_say():
    bg = np.zeros((1000, 3))
    take = np.full((30, 3), 0.5)
    values, events, placed = compose_stream(bg, [("wing", take)] * 3, 25.0, gap_s=(5.0, 5.0))
    assert placed == 3 and len(values) == 1000 + 3 * (30 + 10)
    for e in events:
        i = int(round(e.onset_ms * 25 / 1000))
        assert np.array_equal(values[i:i + 30], take) and e.end_ms == pytest.approx(e.onset_ms + 29 * 40)


def test_writer_is_crash_safe_per_chunk(tmp_path):
    w = StreamWriter(tmp_path / "s", 25, ("ax", "ay", "az"), chunk_s=2.0)
    w.add(np.zeros((120, 3)))
    w.mark("wing", 1000.0)
    # "crash" here: the two whole chunks and the event are on disk, the pending 20 samples are not
    s = read_stream(tmp_path / "s")
    assert len(s.values) == 100 and [e.label for e in s.events] == ["wing"]
    w.close()
    assert len(read_stream(tmp_path / "s").values) == 120
    with pytest.raises(DataError, match="not empty"):
        StreamWriter(tmp_path / "s", 25, ("ax", "ay", "az"))


def test_bad_stream_folders_are_one_line_errors(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "stream.json").write_text('{"format": "gesture-stream/1", "rate_hz": 0, "channels": ["ax","ay","az"]}')
    with pytest.raises(DataError, match="rate_hz"):
        read_stream(tmp_path / "s")
    write_stream(tmp_path / "t", np.zeros((50, 3)), 25, ("ax", "ay", "az"), [])
    (tmp_path / "t" / "events.csv").write_text("onset_ms,label,end_ms\n10,wing,5\n")
    with pytest.raises(DataError, match="before onset"):
        read_stream(tmp_path / "t")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no continuous recording"):
        find_streams([tmp_path / "empty"])


def _replay(records, times, events, duration_s, n_labels=2):
    class S:  # the part of a Stream that scoring reads
        pass
    s = S()
    s.events, s.duration_s = events, duration_s
    return Replay(s, np.asarray(times, float), SweepStream(records, n_labels, -1), records)  # type: ignore[arg-type]


def test_scoring_rule_hits_duplicates_false_activations_and_hours():
    hi0, hi1, lo = np.array([250, 5], np.uint8), np.array([5, 250], np.uint8), np.array([120, 120], np.uint8)
    # candidates every 1 s for 3600 s; label 0 "wing" fires at 10 s, 11 s (duplicate), 500 s (false),
    # label 1 "ring" at 20.2 s (inside wing's event window: a wrong label is false too)
    recs = [lo] * 3600
    for t, r in ((10, hi0), (11, hi0), (500, hi0), (20, hi1)):
        recs[t] = r
    times = np.arange(3600) * 1000.0
    times[20] = 20200.0
    events = [StreamEvent(9000.0, "wing", 10000.0), StreamEvent(19000.0, "wing", 19500.0), StreamEvent(3000000.0, "ring", None)]
    rp = _replay(recs, times, events, 3600.0)
    r = score([rp], DetectorConfig(1, 200, 1, 0), ["wing", "ring"], Tolerance(500, 1500, 2500))
    windows_ms = (10000 + 1500 - 8500) + (19500 + 1500 - 18500) + (2500 + 1500 + 500)
    assert r["events"] == 3 and r["missed"] == 2 and r["duplicates"] == 1
    assert r["false_activations"] == 2 and r["false_rejection_rate"] == pytest.approx(2 / 3)
    assert r["false_activations_per_hour"] == pytest.approx(2 / ((3600e3 - windows_ms) / 3.6e6))
    assert r["latency_ms_median"] == pytest.approx(1000.0)
    assert r["per_label"]["wing"] == {"events": 2, "missed": 1, "false_activations": 1, "false_rejection_rate": 0.5,
                                      "false_activations_per_hour": pytest.approx(r["false_activations_per_hour"] / 2)}


def test_calibrate_sweeps_chooses_and_writes_the_operating_point(small_model, streams, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(small_model.model_dir, model)
    out = tmp_path / "cal.json"
    rc = main(["calibrate", str(model), str(streams), "--target-fa-per-hour", "60", "--json", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    for key in ("false_activations_per_hour", "false_rejection_rate", "tolerance", "curve", "presets", "before", "chosen"):
        assert key in result
    chosen = result["chosen"]
    assert result["false_activations_per_hour"] == chosen["false_activations_per_hour"]
    assert set(result["presets"]) == {"default", "micro_speech", "magic_wand"}
    assert set(chosen["per_label"]) >= {"wing", "ring", "slope"} and result["swept"] > 100
    # the operating point is the best swept FRR under the target (or the lowest FA/h if none reaches it)
    if result["target_met"]:
        assert chosen["false_activations_per_hour"] <= 60
        assert all(c["false_rejection_rate"] >= chosen["false_rejection_rate"] for c in result["curve"]
                   if c["false_activations_per_hour"] <= 60)
    cfg, _, _ = load_model_dir(model)  # the folder still loads (model bytes untouched)
    assert detector_config(cfg).to_dict() == chosen["detector"] == cfg.detector
    assert json.loads((model / "calibration.json").read_text())["chosen"] == chosen
    assert (model / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    # the model folder's own setting now scores what the sweep said it would
    again = calibrate(model, find_streams([streams]), target_fa_per_hour=60, write=False,
                      settings=[DetectorConfig(**chosen["detector"])])
    assert again["before"]["false_activations_per_hour"] == chosen["false_activations_per_hour"]
    assert again["before"]["false_rejection_rate"] == chosen["false_rejection_rate"]


def test_calibrate_refuses_streams_without_events_or_with_unknown_labels(small_model, streams, tmp_path, capsys):
    assert main(["calibrate", str(small_model.model_dir), str(streams / "idle"), "--dry-run"]) == 2
    assert "no events marked" in capsys.readouterr().err
    write_stream(tmp_path / "s", np.zeros((400, 3)), 25, ("ax", "ay", "az"), [StreamEvent(1000.0, "jump")])
    assert main(["calibrate", str(small_model.model_dir), str(tmp_path / "s"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "jump" in err and len(err.strip().splitlines()) == 1


def test_gesture_data_summarises_streams(streams, capsys):
    assert main(["data", str(streams)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 continuous recording(s)") and "gestures" in out and "idle" in out
    assert main(["data", str(streams / "idle")]) == 0
    assert "none (negative streams)" in capsys.readouterr().out


def test_choose_meets_the_target_within_the_frr_limit_and_never_picks_a_deaf_setting():
    from training.calibrate import choose

    def r(fa, frr, a=1):
        return {"false_activations_per_hour": fa, "false_rejection_rate": frr, "latency_ms_median": 100.0,
                "detector": {"average": a, "threshold": 200, "min_count": 1, "suppression": 0}}
    deaf, noisy, ok, good = r(0.0, 1.0), r(50.0, 0.0), r(20.0, 0.04), r(0.5, 0.03)
    assert choose([deaf, noisy, ok, good], target=1.0) is good  # meets the target within FRR <= 5 %
    assert choose([deaf, noisy, ok], target=1.0) is ok  # cannot: the fewest FA at FRR <= 5 %, not the deaf one
    late = r(0.5, 0.2)
    assert choose([deaf, noisy, late], target=1.0, max_frr=0.25) is late  # a looser FRR limit
    assert choose([r(5.0, 1.0), r(9.0, 0.5)], target=1.0)["false_rejection_rate"] == 0.5  # nothing usable: lowest FRR
