"""The classifier board in Python: streaming stages == training's batch functions, and the
ClassifierSource event stream (raw IMU + PREDICTION) the virtual board and dashboard consume."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from capture import protocol as p
from capture.errors import DataError
from capture.virtual.sources import ReplaySource
from conftest import DATA
from training.board_sim import (BoardPipeline, ClassifierSource, LiveWindow, Resampler, format_prediction_line,
                                percent)
from training.preprocess import PreprocessConfig, live_windows, resample


@pytest.mark.parametrize("src,dst", [(119, 25), (100, 25), (25, 25), (10, 25), (952, 50)])
def test_streaming_resampler_equals_batch_resample_for_any_blocks(src, dst):
    rng = np.random.default_rng(src + dst)
    x = rng.integers(-32768, 32767, (1500, 3)).astype(np.int16)
    rs = Resampler(src, dst, 3)
    ys, srcs, k = [], [], 0
    while k < len(x):
        n = int(rng.integers(1, 12))
        y, s = rs.push(x[k:k + n])
        ys.append(y)
        srcs.append(s)
        k += n
    out = np.vstack(ys)
    assert np.array_equal(out, resample(x, src, dst))
    s = np.concatenate(srcs)
    # each output is emitted by the first input sample at or after its position
    pos = np.arange(len(out)) * rs.step
    assert np.array_equal(s, (pos + 0xFFFF) >> 16) and np.all(np.diff(s) >= 0)


def test_anti_alias_filter_removes_what_would_fold_and_keeps_gestures():
    """119 Hz -> 25 Hz: a 20 Hz vibration would fold to 5 Hz (inside the gesture band) without
    the low-pass; a 2 Hz gesture passes. Integer taps, unit DC gain (a board at rest stays put)."""
    from training.preprocess import lowpass_taps
    taps = lowpass_taps(119, 25)
    assert taps.sum() == 1 << 15 and len(taps) % 2 == 1 and np.array_equal(taps, taps[::-1])
    assert len(lowpass_taps(25, 25)) == 1 and len(lowpass_taps(25 * 1.15, 25)) == 1  # augmentation stretch
    t = np.arange(119 * 8) / 119.0

    def amplitude(f_hz: float) -> float:
        x = (8000 * np.sin(2 * np.pi * f_hz * t))[:, None].astype(np.int16)
        y = resample(x, 119, 25)[50:].astype(float)  # past the filter's warm-up
        return float(np.abs(y).max())
    assert amplitude(20.0) < 0.01 * 8000  # >= 40 dB down (it was folding at full amplitude)
    assert amplitude(2.0) > 0.95 * 8000
    rest = np.full((300, 3), 8192, np.int16)
    assert np.all(resample(rest, 119, 25) == 8192)


def test_streaming_live_window_equals_live_windows():
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.integers(-300, 300, (400, 3)), axis=0).astype(np.int16)
    x[150:260] = x[150]  # a still stretch -> idle windows
    cfg = PreprocessConfig(labels=["a", "b"], window=32, stride=3, motion_threshold=200)
    lw = LiveWindow(cfg)
    got = []
    for j, s in enumerate(x):
        ev = lw.push(s)
        if ev != LiveWindow.NONE:
            got.append((j, lw.window() if ev == LiveWindow.READY else None))
    want = list(live_windows(x, cfg))
    assert [j for j, _ in got] == [j for j, _ in want]
    assert all((a is None) == (b is None) and (a is None or np.array_equal(a, b)) for (_, a), (_, b) in zip(got, want))
    assert any(w is None for _, w in got) and any(w is not None for _, w in got)


def test_format_prediction_line():
    labels = ["negative", "ring", "wing"]
    assert format_prediction_line(labels, p.Prediction(p.UNKNOWN_CLASS, 0, (0, 0, 0))) == "idle"
    assert format_prediction_line(labels, p.Prediction(2, 235, (10, 10, 235))) == "wing 92% | negative 4 ring 4 wing 92"
    assert format_prediction_line(labels, p.Prediction(p.UNKNOWN_CLASS, 90, (80, 85, 90))) == \
        "unknown 35% | negative 31 ring 33 wing 35"
    assert [percent(s) for s in (0, 1, 2, 127, 128, 254, 255)] == [0, 0, 1, 50, 50, 100, 100]


@pytest.fixture(scope="module")
def run(small_model):
    """A finite classifier run over 10 real takes: its source and every event."""
    src = ClassifierSource(small_model.model_dir, DATA, loop=False, shuffle=True, seed=2, limit=10)
    src.keep_results = True
    return src, list(src.events())


def test_info_and_event_order(run, small_model):
    src, events = run
    info = src.info()
    assert info["mode"] == "classifier" and info["labels"] == small_model.config.labels
    assert info["rate"] == 119 and len(info["ch"]) == 6
    assert p.decode_info(p.encode_info(info))["labels"] == ",".join(small_model.config.labels)
    times = [t for t, _, _ in events]
    assert times == sorted(times)
    assert {ft for _, ft, _ in events} <= {p.FrameType.IMU, p.FrameType.PREDICTION, p.FrameType.EVENT}
    assert {p.FrameType.IMU, p.FrameType.PREDICTION} <= {ft for _, ft, _ in events}
    # an EVENT follows its PREDICTION at the same device time: the post-processor's output for it
    for k, (t, ft, pl) in enumerate(events):
        if ft == p.FrameType.EVENT:
            assert events[k - 1][1] == p.FrameType.PREDICTION and events[k - 1][0] == t


def test_events_are_the_post_processor_on_the_board_pipeline(run, small_model):
    src, events = run
    stream = np.vstack([p.decode_imu(pl) for _, ft, pl in events if ft == p.FrameType.IMU])
    pipe = BoardPipeline(small_model.config, (small_model.model_dir / "model.tflite").read_bytes(), 119)
    want = [p.Event(*r.event) for r in pipe.push(stream) if r.event is not None]
    assert [p.decode_event(pl) for _, ft, pl in events if ft == p.FrameType.EVENT] == want


def test_raw_imu_is_the_replayed_stream_batched_like_the_firmware(run):
    src, events = run
    imu = [p.decode_imu(pl) for _, ft, pl in events if ft == p.FrameType.IMU]
    assert all(len(b) == p.samples_per_frame(119) for b in imu[:-1])
    replay = ReplaySource(DATA, rate_hz=119, channels=6, loop=False, shuffle=True, seed=2, limit=10)
    assert np.array_equal(np.vstack(imu), np.vstack([b for b, _ in replay.stream()]))


def test_predictions_are_the_board_pipeline_on_that_stream(run, small_model):
    src, events = run
    stream = np.vstack([p.decode_imu(pl) for _, ft, pl in events if ft == p.FrameType.IMU])
    preds = [(t, p.decode_prediction(pl)) for t, ft, pl in events if ft == p.FrameType.PREDICTION]
    pipe = BoardPipeline(small_model.config, (small_model.model_dir / "model.tflite").read_bytes(), 119)
    want = pipe.push(stream)  # one big block: the result must not depend on batching
    assert [pr for _, pr in preds] == [r.prediction for r in want] == [r.prediction for r in src.results]
    # device time = the time of the IMU sample that completed the window, as a receiver
    # reconstructs it from the IMU events (batch t_us + j / rate)
    sample_t = [t + int(round(j * 1e6 / 119)) for t, ft, pl in events if ft == p.FrameType.IMU
                for j in range(len(p.decode_imu(pl)))]
    assert [t for t, _ in preds] == [sample_t[r.imu_index] for r in want]
    # one prediction per candidate window: every `stride` model samples once the window is full
    cfg = small_model.config
    n_model = len(resample(stream[:, :3], 119, cfg.model_rate_hz))
    assert len(preds) == (n_model - cfg.window) // cfg.stride + 1
    for _, pr in preds:
        assert len(pr.scores) == len(cfg.labels)
        if pr.class_index == p.UNKNOWN_CLASS and pr.confidence == 0:
            assert pr.scores == (0,) * len(cfg.labels)  # idle
        elif pr.class_index != p.UNKNOWN_CLASS:
            assert pr.confidence >= cfg.confidence_threshold and pr.confidence == max(pr.scores)


def test_truth_spans_cover_the_replayed_takes(run):
    src, events = run
    truth = src.truth()
    assert len(truth) == 10 and len(src.segments) == 10
    assert all(a.end_us <= b.start_us for a, b in zip(truth, truth[1:]))
    mid = (truth[3].start_us + truth[3].end_us) // 2
    assert src.label_at(mid) == truth[3].label and src.label_at(truth[0].start_us - 1) is None


def test_looping_source_is_lazy_and_raw_imu_can_be_off(small_model):
    src = ClassifierSource(small_model.model_dir, DATA, loop=True, raw_imu=False, seed=5)
    first = list(itertools.islice(src.events(), 40))
    assert len(first) == 40 and {ft for _, ft, _ in first} <= {p.FrameType.PREDICTION, p.FrameType.EVENT}


def test_default_dataset_comes_from_the_report(small_model):
    src = ClassifierSource(small_model.model_dir, loop=False, limit=1)
    assert src.data_dir.resolve() == DATA.resolve()


def test_bad_inputs_name_the_file(small_model, tmp_path):
    with pytest.raises(DataError, match="model folder not found"):
        ClassifierSource(tmp_path / "nope")
    with pytest.raises(DataError, match="model.tflite: not found"):
        ClassifierSource(tmp_path)
    other = tmp_path / "data" / "circle"
    other.mkdir(parents=True)
    (other / "t.csv").write_text("t_ms,ax,ay,az\n0,0,0,1\n40,0,0,1\n")
    with pytest.raises(DataError, match=r"label\(s\) \['circle'\]"):
        ClassifierSource(small_model.model_dir, tmp_path / "data")
