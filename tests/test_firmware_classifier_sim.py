"""The exported classifier sketch's .ino, compiled for the host (firmware/shim + TFLM from
training.tflm_tree), against the Python pipeline (training/board_sim.py), both boards.

The sketch reads the replayed IMU through its IMU header (LSM9DS1 FIFO / BMI270 data-ready),
runs gk_preprocess + TFLM + smoother + the post-processor, and notifies PREDICTION and EVENT payloads;
the same counts through BoardPipeline must give the very same payloads. Also: INFO over BLE is whole, a label list whose
INFO would not fit is refused by the export with the limit, and a stalled central does not stall
loop() (the LSM9DS1 FIFO never overflows).
"""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from capture import protocol as p
from capture.errors import GestureError
from capture.virtual import firmware as fw
from tests.conftest import DATA, need_tool

RATE = fw.BOARD_IMU_RATE


@pytest.fixture(scope="module")
def sketches(small_model, tflm_tree, tmp_path_factory):
    need_tool("g++")
    from training.export import export_sketch

    out = {}
    for board in RATE:
        d = tmp_path_factory.mktemp("clf") / f"clf_{board}"
        export_sketch(small_model.model_dir, d, board=board)
        fw.build(d, board, tflm=tflm_tree)  # compile once per module (cached by content afterwards)
        out[board] = d
    return out


async def _collect(board: fw.FirmwareBoard, stall_s: float = 0.0):
    from capture.transport.ble import BleTransport

    backend = board.backend()
    link = BleTransport("virtual:firmware", backend=backend)
    msgs: list = []
    link.on_message(msgs.append)
    info = await link.open()
    try:
        if stall_s:
            await asyncio.sleep(0.3)
            backend.stalled = True
            await asyncio.sleep(stall_s)
            backend.stalled = False
        while board.running():  # until the replayed recording ends and the board switches off
            await asyncio.sleep(0.1)
    finally:
        await link.close()
    return info, msgs, link.stats


@pytest.mark.parametrize("board", list(RATE))
def test_classifier_predictions_equal_the_python_pipeline(sketches, small_model, tflm_tree, board):
    from training.board_sim import BoardPipeline, load_model_dir

    counts = fw.replay_counts(DATA, RATE[board], rest_s=0.5, seed=3, shuffle=True)[: 25 * RATE[board]]
    # 255 controller buffers: this test is about the numbers, not flow control (a busy host must not
    # make the sketch drop a prediction here).
    # Every 40th loop() runs 40 ms late (a long invoke or BLE event): samples pile up in the sensor
    # (3-4 in the LSM9DS1 FIFO; the BMI270 keeps only the latest, so not on Rev2).
    late = (40, 40_000) if board == "nano33ble" else None
    with fw.start_board(board=board, sketch=sketches[board], counts=counts, speed=3, tflm=tflm_tree,
                        ble_buffers=255, late=late) as b:
        info, msgs, stats = asyncio.run(_collect(b))
        st = b.status
    preds = [m for m in msgs if m.type == p.FrameType.PREDICTION]
    assert info["mode"] == "classifier" and info["board"] == board
    # INFO is built at run time from the built-in package: the running model, its labels and slot
    assert info["model"] == small_model.report["model_sha256"] and info["slot"] == p.INFO_SLOT_BUILTIN
    assert info["labels"] == ",".join(small_model.config.labels)
    assert stats.frames_lost == 0 and st.overwritten == 0 and st.stale == 0
    seqs = [m.seq for m in preds]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    # Raw IMU notifications: every row is one replayed sample, gyro and accel of the same tick.
    raw = np.vstack([p.decode_imu(m.payload) for m in msgs if m.type == p.FrameType.IMU])
    k = next(i for i in range(len(counts)) if np.array_equal(counts[i:i + 8, :3], raw[:8, :3]))
    assert np.array_equal(raw, counts[k:k + len(raw)])

    cfg, model_bytes, _ = load_model_dir(small_model.model_dir)
    # The simulated sensor produces file sample k at k / ODR for k >= 1 (the first tick is one
    # period after begin()), so the sketch saw counts[1:].
    results = BoardPipeline(cfg, model_bytes, RATE[board]).push(counts[1:])
    expected = [r.prediction for r in results]
    got = [p.decode_prediction(m.payload) for m in preds]
    assert len(got) > 20 and any(g.class_index != p.UNKNOWN_CLASS for g in got)
    assert got == expected[seqs[0]:seqs[0] + len(got)]
    # the post-processor's EVENT notifications (gk_detect.h) are board_sim's events, at their predictions' times
    pred_t = {m.t_us for m in preds}
    events = [m for m in msgs if m.type == p.FrameType.EVENT]
    assert all(m.t_us in pred_t for m in events)
    assert [p.decode_event(m.payload) for m in events] == [
        p.Event(*r.event) for r in results[seqs[0]:seqs[0] + len(got)] if r.event is not None]


def test_stalled_central_never_overflows_the_lsm9ds1_fifo(sketches, tflm_tree):
    counts = fw.replay_counts(DATA, RATE["nano33ble"], rest_s=0.5)[: 12 * 119]
    with fw.start_board(board="nano33ble", sketch=sketches["nano33ble"], counts=counts, speed=3, tflm=tflm_tree) as b:
        _, _, stats = asyncio.run(_collect(b, stall_s=1.5))
        st = b.status
    assert st.ble_wait_us == 0 and st.overwritten == 0  # no busy-wait, no FIFO overflow
    assert stats.frames_lost > 0  # notifications were dropped instead (the host sees the gaps)


def _with_labels(small_model, tmp_path, length: int):
    """A copy of the small model whose label names are ``length`` characters long (same count)."""
    import hashlib
    import json
    import shutil

    d = tmp_path / f"model_{length}"
    shutil.copytree(small_model.model_dir, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["labels"] = [(name + "_" * length)[:length] for name in cfg["labels"]]
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "labels.txt").write_text("\n".join(cfg["labels"]) + "\n")
    report = json.loads((d / "report.json").read_text())  # as if trained so: the changed files' sha256 recorded
    report["files_sha256"].update({n: hashlib.sha256((d / n).read_bytes()).hexdigest()
                                   for n in ("config.json", "labels.txt")})
    (d / "report.json").write_text(json.dumps(report))
    return d, cfg["labels"]


def test_long_label_list_fits_the_info_characteristic_or_export_refuses_it(small_model, tflm_tree, tmp_path):
    from capture.takes import MAX_LABEL_LEN
    from training.export import check_info_fits

    # Labels as long as a package carries (GK_MAX_LABELS_TEXT joined, each below MAX_LABEL_LEN): the
    # whole INFO, with the model's sha256 and slot, arrives over BLE (ArduinoBLE would cut it at the
    # characteristic's size, which used to be the length of a short INFO).
    from training.package import MAX_LABELS_TEXT

    length = (MAX_LABELS_TEXT - 3) // 4
    assert length < MAX_LABEL_LEN
    fits, labels = _with_labels(small_model, tmp_path, length)
    export_sketch_dir = tmp_path / "long_ok"
    from training.export import export_sketch
    export_sketch(fits, export_sketch_dir, board="nano33ble")
    with fw.start_board(board="nano33ble", sketch=export_sketch_dir, counts=np.zeros((300, 6), np.int16),
                        speed=3, tflm=tflm_tree) as b:
        info, _, _ = asyncio.run(_collect(b))
    assert info["labels"].split(",") == labels
    assert len(p.encode_info(info)) > 300
    # More such labels (6 and up) would not fit: the export refuses, naming the limit. (The small
    # model has 4 labels, so the refusal is checked on the INFO text the export computes.)
    ok = "proto=1;" + "x" * (p.MAX_PAYLOAD - 8)
    check_info_fits(ok, "config.json")  # exactly MAX_PAYLOAD bytes: fits
    with pytest.raises(GestureError, match=rf"{p.MAX_PAYLOAD + 1} bytes, over the protocol's limit of {p.MAX_PAYLOAD}"):
        check_info_fits(ok + "y", "config.json")


def _read_port(path: str, until, timeout: float = 20.0) -> bytes:
    """Open the board's port (DTR high from now on) and read until ``until(data)`` or the timeout."""
    import os
    import select
    import time

    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    data = b""
    end = time.monotonic() + timeout
    try:
        while not until(data) and time.monotonic() < end:
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    data += os.read(fd, 4096)
                except BlockingIOError:
                    pass
    finally:
        os.close(fd)
    return data


@pytest.mark.parametrize("board", list(RATE))
def test_imu_failure_line_repeats_every_second_for_a_port_opened_later(sketches, tflm_tree, board):
    """A Serial Monitor opened after boot still sees why the board does nothing (once, before, it saw nothing)."""
    import time

    line = b"error: IMU.begin() failed"
    counts = fw.replay_counts(DATA, RATE[board], rest_s=0.5)[: RATE[board]]
    with fw.start_board(board=board, sketch=sketches[board], counts=counts, speed=4, ble=False, tflm=tflm_tree,
                        imu_fail=True) as b:
        time.sleep(1.5)  # ~6 s of device time: the boot lines went to a port nobody had open
        data = _read_port(b.path, lambda d: d.count(line) >= 2)
        assert b.running()  # it keeps saying so, it does not stop
    assert data.count(line) >= 2, data[-400:]
    assert b"labels:" not in data  # the boot banner went out before the port was open: only the repeat helps


@pytest.mark.parametrize("mtu", [23, 247])
def test_rev1_raw_at_119_hz_plus_predictions_on_a_50_ms_link(sketches, tflm_tree, mtu):
    """4 controller buffers per 50 ms interval: at MTU 247 raw IMU (19 samples a notification) and
    predictions fit; at MTU 23 the raw stream (119 notifications/s) does not: the sketch drops raw
    notifications (it keeps one buffer for predictions) and counts every drop, so nothing is lost
    silently. (The figures, 0 lost at MTU 247, are in docs/benchmarks.md: the central here is a
    Python process whose acknowledgements can lag on a loaded machine.)"""
    counts = fw.replay_counts(DATA, RATE["nano33ble"], rest_s=0.5)[: 12 * 119]
    with fw.start_board(board="nano33ble", sketch=sketches["nano33ble"], counts=counts, speed=1, tflm=tflm_tree,
                        ble_interval_ms=50, ble_buffers=4) as b:
        backend = b.backend(mtu=mtu)

        async def session():
            from capture.transport.ble import BleTransport

            link = BleTransport("virtual:firmware", backend=backend)
            msgs: list = []
            link.on_message(msgs.append)
            await link.open()
            await asyncio.sleep(6.0)
            await link.close()
            return msgs

        msgs = asyncio.run(session())
        serial = _read_port(b.path, lambda d: b"dropped:" in d, timeout=3.0)
    imu = [m for m in msgs if m.type == p.FrameType.IMU]
    pred = [m for m in msgs if m.type == p.FrameType.PREDICTION]
    imu_gaps = int(np.sum(np.diff([m.seq for m in imu]) - 1))
    pred_gaps = int(np.sum(np.diff([m.seq for m in pred]) - 1))
    drops = [fw.parse_drops(line) for line in serial.decode(errors="replace").splitlines()]
    counted = max([d[1] for d in drops if d], default=0)
    assert len(pred) > 10
    assert imu_gaps + pred_gaps <= counted  # every notification the host missed, the sketch counted
    if mtu == 247:
        assert {len(p.decode_imu(m.payload)) for m in imu[1:-1]} == {19}
    else:
        assert {len(p.decode_imu(m.payload)) for m in imu} == {1} and imu_gaps > 0
        assert pred_gaps < len(pred) // 4  # the kept buffer: raw IMU does not crowd the predictions out
