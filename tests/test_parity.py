"""Parity: the exported sketch's C++ gives Python's bytes, and its model bytes give training's scores.

The sketch's portable C++ (gk_package_parse.h + gk_preprocess.h + gk_detect.h + gk_format.h +
gk_frame.h) is compiled with g++ -Wall -Wextra -Werror into a host driver (tests/parity_driver.cpp)
that takes its configuration from a model package, as the push-ready board does: the sketch's
built-in package (model_data.cpp), and a second, different configuration (another board and IMU
rate, window, stride, model rate, channels, labels, normalization, thresholds) through the same
binary. It is fed the simulated-hand takes of ``conftest.DATA`` (and the real magic_wand recordings
where ../shared has them): as whole takes (training's crop_take), and as one continuous stream of
int16 counts at the IMU's rate, as the board's IMU delivers them (the live rule).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from capture import protocol as p
from capture.takes import read_take
from capture.virtual.sources import ReplaySource
from conftest import DATA, need_tool
from training.board_sim import BoardPipeline, LiveWindow, Resampler, format_prediction_line
from parity_harness import build_host_driver, host_crop, host_info, host_live, host_smooth
from training import package as pkg
from training.dataset import load_dataset
from training.evaluate import TflmModel
from training.export import export_sketch, parse_model_data
from training.preprocess import crop_take, live_windows, lowpass_taps, quantize_input, resample, take_counts


@pytest.fixture(scope="module")
def built(small_model, tmp_path_factory):
    gxx = need_tool("g++")
    d = tmp_path_factory.mktemp("parity")
    sketch = d / "gesture_classifier"
    export_sketch(small_model.model_dir, sketch)
    return sketch, build_host_driver(sketch, d / "parity_driver", compiler=gxx)


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    """A continuous 119 Hz, 6-channel stream: 24 real takes with rest between (long rests give
    idle windows too)."""
    src = ReplaySource(DATA, rate_hz=119, channels=6, rest_s=6.0, shuffle=True, seed=3, limit=24)
    return np.vstack([block for block, _ in src.stream()])


def test_crop_and_quantize_match_python_on_every_take(built, small_model, request):
    """Every take of the simulated-hand dataset and, where ../shared has them, of the 802 real
    magic_wand recordings (25 Hz takes resampled to the model rate: the resampler's other path)."""
    _, exe = built
    cfg = small_model.config
    takes = load_dataset(DATA).takes
    try:
        takes += load_dataset(request.getfixturevalue("magic_wand")).takes
    except pytest.skip.Exception:
        pass
    counts = [take_counts(t, cfg) for t in takes]
    cpp = host_crop(exe, counts, cfg.window)
    py = np.stack([quantize_input(crop_take(c, cfg), cfg) for c in counts])
    assert len(takes) >= 320 and cpp.shape == py.shape
    bad = [str(takes[i].path) for i in range(len(takes)) if not np.array_equal(cpp[i], py[i])]
    assert bad == []
    # both short (padded) and long (centroid-cropped) takes were exercised
    assert min(map(len, counts)) < cfg.window < max(map(len, counts))


def test_live_stream_matches_python_streaming_and_batch(built, small_model, stream):
    _, exe = built
    cfg = small_model.config
    cpp = host_live(exe, stream, len(cfg.channels), cfg.window)

    # Python streaming (board_sim), fed in the firmware's 2-sample batches
    rs = Resampler(119, cfg.model_rate_hz, len(cfg.channels))
    parts = [rs.push(stream[k:k + 2, :3]) for k in range(0, len(stream), 2)]
    py_res = np.vstack([y for y, _ in parts])
    py_src = np.concatenate([s for _, s in parts])
    assert np.array_equal(cpp.resampled, py_res) and np.array_equal(cpp.resampled_src, py_src)
    # ... which equals training's batch resample of the whole stream
    assert np.array_equal(py_res, resample(stream[:, :3], 119, cfg.model_rate_hz))
    assert len(lowpass_taps(119, cfg.model_rate_hz)) > 1  # the anti-alias FIR was part of it

    lw, py_windows = LiveWindow(cfg), []
    for sample, src in zip(py_res, py_src):
        ev = lw.push(sample)
        if ev != LiveWindow.NONE:
            py_windows.append((int(src), quantize_input(lw.window(), cfg) if ev == LiveWindow.READY else None))
    batch = [(j, None if w is None else quantize_input(w, cfg)) for j, w in live_windows(py_res, cfg)]
    for name, other in (("streaming", py_windows), ("batch live_windows", [(int(py_src[j]), w) for j, w in batch])):
        assert len(cpp.windows) == len(other), name
        for (ci, cw), (pi, pw) in zip(cpp.windows, other):
            assert ci == pi, name
            assert (cw is None) == (pw is None) and (cw is None or np.array_equal(cw, pw)), (name, ci)
    kinds = [w is None for _, w in cpp.windows]
    assert any(kinds) and not all(kinds)  # idle and ready windows both compared


def test_smoother_and_serial_line_match_python_on_real_tflm_outputs(built, small_model, stream):
    _, exe = built
    cfg = small_model.config
    pipe = BoardPipeline(cfg, (small_model.model_dir / "model.tflite").read_bytes(), 119)
    results = [r for k in range(0, len(stream), 2) for r in pipe.push(stream[k:k + 2])]
    records = [r.output_int8 for r in results]
    cpp = host_smooth(exe, records, len(cfg.labels))
    assert len(cpp) == len(results)
    for (payload, line), r in zip(cpp, results):
        assert payload == p.encode_prediction(r.prediction)
        assert line == format_prediction_line(cfg.labels, r.prediction)
    classes = {r.prediction.class_index for r in results}
    assert p.UNKNOWN_CLASS in classes and len(classes) > 1  # predictions and rejections both compared


def test_model_data_bytes_reproduce_the_training_report_in_tflm(built, small_model):
    sketch, _ = built
    package = parse_model_data((sketch / "model_data.cpp").read_text())
    assert package == pkg.build_package(small_model.model_dir, "nano33ble")  # the built-in model is a package
    buf = pkg.parse_package(package, board="nano33ble").payload
    assert buf == (small_model.model_dir / "model.tflite").read_bytes()
    report = json.loads((small_model.model_dir / "report.json").read_text())
    model, cfg = TflmModel(buf), small_model.config
    preds = report["test_predictions"]
    assert len(preds) == report["n_test"] > 10
    for row in preds:
        take = read_take(DATA / row["take"])
        scores = (model.predict(quantize_input(crop_take(take_counts(take, cfg), cfg), cfg)).astype(int) + 128).tolist()
        assert scores == row["scores"], row["take"]
        assert cfg.labels[int(np.argmax(scores))] == row["pred"]


def test_detector_events_match_python_bit_for_bit(built, small_model, stream):
    """gk_detect.h (the board's post-processor) gives Python's events on real TFLM outputs, for the
    sketch's own generated setting, the micro_speech and magic_wand rules and a spread of others;
    the calibration sweep's fast path gives the same events too."""
    from parity_harness import host_detect
    from training.postprocess import DetectorConfig, SweepStream, detect, detector_config, preset, unknown_index

    _, exe = built
    cfg = small_model.config
    pipe = BoardPipeline(cfg, (small_model.model_dir / "model.tflite").read_bytes(), 119)
    results = [r for k in range(0, len(stream), 2) for r in pipe.push(stream[k:k + 2])]
    raw = [r.output_int8 for r in results]
    u8 = [None if r is None else (np.asarray(r, np.int16) + 128).astype(np.uint8) for r in raw]
    unknown = unknown_index(cfg)
    own = detect(u8, detector_config(cfg), unknown)
    assert own == [(i, *r.event) for i, r in enumerate(results) if r.event is not None]  # board_sim runs it
    assert host_detect(exe, raw, len(cfg.labels)) == own
    sweep = SweepStream(u8, len(cfg.labels), unknown)
    settings = [preset("micro_speech", cfg), preset("magic_wand", cfg), preset("default", cfg)] + [
        DetectorConfig(a, t, m, s) for a, t, m, s in
        ((1, 0, 1, 0), (1, 100, 1, 3), (2, 128, 2, 0), (4, 150, 1, 12), (7, 90, 3, 25), (64, 120, 5, 1), (3, 255, 1, 0))]
    fired = 0
    for det in settings:
        py = detect(u8, det, unknown)
        assert host_detect(exe, raw, len(cfg.labels), (det.average, det.threshold, det.min_count, det.suppression)) == py, det
        assert sweep.events(det) == py, det
        fired += len(py)
    assert fired > 0 and any(r is None for r in raw)  # events and idle windows both exercised


def test_info_is_built_at_run_time_from_the_package(built, small_model):
    """INFO reports the running model (labels, sha256, slot) as capture.protocol decodes it."""
    from capture.boards import get_board
    from training.codegen_preprocess import info_text

    _, exe = built
    b = get_board("nano33ble")
    report = json.loads((small_model.model_dir / "report.json").read_text())
    for slot, text in ((p.PUSH_BUILTIN_SLOT, p.INFO_SLOT_BUILTIN), (1, "1")):
        want = info_text(board=b.key, sensor=b.sensor, imu_rate_hz=b.imu_rate_hz, labels=list(small_model.config.labels),
                         model_sha256=report["model_sha256"], slot=slot)
        got = host_info(exe, slot)
        assert got == want
        info = p.decode_info(got.encode())
        assert info["model"] == report["model_sha256"] and info["slot"] == text
        assert info["labels"] == ",".join(small_model.config.labels)


# ----------------------------------------------------------------------------- a second configuration

@pytest.fixture(scope="module")
def second(built, small_model, tmp_path_factory):
    """The same driver binary on a package with another configuration: the rev2 board (BMI270 at
    100 Hz, another resample step and low-pass), window 36 at 40 Hz, stride 3, four channels in
    another order (two accelerometer, two gyro), six labels, other normalization and thresholds."""
    from dataclasses import replace

    _, exe = built
    cfg = small_model.config
    cfg2 = replace(cfg, window=36, stride=3, model_rate_hz=40, channels=["az", "gx", "ax", "gz"],
                   mean=[-150, 12, 40, -3], mult=[2_100_000, 310_000, 1_900_000, 250_000],
                   labels=["up", "down", "left", "right", "none", "circle"], unknown_label="none",
                   motion_threshold=int(cfg.motion_threshold) // 2 + 1, smoothing=3, confidence_threshold=140,
                   input_zero_point=-7, detector={})
    tflite = (small_model.model_dir / "model.tflite").read_bytes()  # the preprocessing does not look at it
    data = pkg.encode(cfg2, tflite, board="nano33ble_rev2", model_sha256="ab" * 32, arena_bytes=9000)
    return cfg2, exe.with_package(data, tmp_path_factory.mktemp("second") / "second.gkpkg")


def test_second_configuration_crop_and_live_match_python(second, built, small_model):
    cfg2, exe2 = second
    assert exe2.path == built[1].path and exe2.package != built[1].package  # one binary, two packages
    takes = load_dataset(DATA).takes[:120]
    counts = [take_counts(t, cfg2) for t in takes]
    cpp = host_crop(exe2, counts, cfg2.window)
    py = np.stack([quantize_input(crop_take(c, cfg2), cfg2) for c in counts])
    assert cpp.shape == (len(takes), 36, 4) and np.array_equal(cpp, py)

    stream = ReplaySource(DATA, rate_hz=100, channels=6, rest_s=4.0, shuffle=True, seed=9, limit=16).counts()
    live = host_live(exe2, stream, 4, cfg2.window)
    pick = [list(pkg.IMU_CHANNELS).index(c) for c in cfg2.channels]
    rs = Resampler(100, cfg2.model_rate_hz, 4)
    parts = [rs.push(stream[k:k + 3, pick]) for k in range(0, len(stream), 3)]
    py_res = np.vstack([y for y, _ in parts])
    py_src = np.concatenate([src for _, src in parts])
    assert np.array_equal(live.resampled, py_res) and np.array_equal(live.resampled_src, py_src)
    assert np.array_equal(py_res, resample(stream[:, pick], 100, cfg2.model_rate_hz))
    assert len(lowpass_taps(100, 40)) > 1
    lw, py_windows = LiveWindow(cfg2), []
    for sample, src in zip(py_res, py_src):
        ev = lw.push(sample)
        if ev != LiveWindow.NONE:
            py_windows.append((int(src), quantize_input(lw.window(), cfg2) if ev == LiveWindow.READY else None))
    assert len(live.windows) == len(py_windows) > 50
    for (ci, cw), (pi, pw) in zip(live.windows, py_windows):
        assert ci == pi and (cw is None) == (pw is None) and (cw is None or np.array_equal(cw, pw)), ci
    kinds = [w is None for _, w in live.windows]
    assert any(kinds) and not all(kinds)


def test_second_configuration_smoother_detector_and_info_match_python(second):
    from capture.boards import get_board
    from parity_harness import host_detect
    from training.codegen_preprocess import info_text
    from training.postprocess import detect, detector_config, unknown_index
    from training.preprocess import Smoother

    cfg2, exe2 = second
    rng = np.random.default_rng(4)
    raw: list[np.ndarray | None] = []
    for i in range(600):  # runs of one dominant class, idle gaps: predictions, rejections and events
        if i % 40 > 33:
            raw.append(None)
            continue
        logits = rng.normal(0, 1, 6) + 4 * (np.arange(6) == (i // 40) % 6)
        u8 = np.clip(np.round(255 * np.exp(logits) / np.exp(logits).sum()), 0, 255).astype(np.int16)
        raw.append((u8 - 128).astype(np.int8))
    cpp = host_smooth(exe2, raw, 6)
    sm, classes = Smoother(cfg2), set()
    for (payload, line), r in zip(cpp, raw):
        if r is None:
            sm.idle()
            pred = p.Prediction(p.UNKNOWN_CLASS, 0, (0,) * 6)
        else:
            cls, conf, smoothed = sm.update((np.asarray(r, np.int16) + 128).astype(np.uint8))
            pred = p.Prediction(int(cls), int(conf), tuple(int(v) for v in smoothed))
        classes.add(pred.class_index)
        assert payload == p.encode_prediction(pred)
        assert line == format_prediction_line(cfg2.labels, pred)
    assert p.UNKNOWN_CLASS in classes and len(classes) >= 4
    u8s = [None if r is None else (np.asarray(r, np.int16) + 128).astype(np.uint8) for r in raw]
    events = detect(u8s, detector_config(cfg2), unknown_index(cfg2))
    assert host_detect(exe2, raw, 6) == events and len(events) > 3
    b = get_board("nano33ble_rev2")
    assert host_info(exe2, 0) == info_text(board="nano33ble", sensor=get_board("nano33ble").sensor,
                                           imu_rate_hz=119, labels=cfg2.labels, model_sha256="ab" * 32, slot=0)
    assert b.key != "nano33ble"  # INFO's fixed part is the firmware's (its board), the rest the package's
