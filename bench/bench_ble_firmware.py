"""The sketches' own firmware (compiled for the host against firmware/shim) over the shim's model of
the Nano 33 BLE's BLE link, and its IMU read time per sample.

BLE: the capture sketch (Rev1, raw IMU at 119 Hz) and, when a TFLM tree is found, an exported
classifier sketch (Rev1, raw IMU at 119 Hz + one prediction per window stride), each through the real
client path (bleak + BleTransport) at a 50 ms connection interval with the controller's 4 TX buffers,
for a central that keeps ATT MTU 23 and one that negotiates 247. Reported: what arrived, the
sequence gaps the host saw, and what the sketch itself counted as dropped (its `dropped:` LOG line).
Device time runs at real speed (the central's acknowledgements are host events).

IMU read time: device time the sketch spends in IMU register reads per sample (the shim charges
each register read its bytes on the I2C bus at the clock the sketch set, plus the BMI270 API's
waits), Rev1 at 119 and 952 Hz (FIFO), Rev2 at 100 Hz (one burst read, power save off, 400 kHz).
These are the shim's bus-time model, not a board measurement.

    python bench/bench_ble_firmware.py --seconds 8
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import numpy as np

from common import SHARED_TFLM, log  # noqa: F401  (puts the checkout on sys.path)

from capture import protocol as p  # noqa: E402
from capture.transport.ble import BleTransport  # noqa: E402
from capture.virtual import firmware as fw  # noqa: E402


def _gaps(seqs: list[int]) -> int:
    return int(np.sum((np.diff(seqs) - 1) % 65536)) if len(seqs) > 1 else 0


def ble_row(sketch: Path | None, tflm: Path | None, mtu: int, seconds: float) -> dict[str, float]:
    from tests.conftest import DATA

    counts = np.tile(fw.replay_counts(DATA, 119, rest_s=0.5, shuffle=True), (4, 1))
    with fw.start_board(board="nano33ble", sketch=sketch, counts=counts, speed=1.0, tflm=tflm,
                        ble_interval_ms=50, ble_buffers=4) as b:
        backend = b.backend(mtu=mtu)

        async def go():
            link = BleTransport("bench", backend=backend)
            msgs: list = []
            link.on_message(msgs.append)
            await link.open()
            t0 = b.status.t_us
            await asyncio.sleep(seconds)
            t1 = b.status.t_us
            await link.close()
            return msgs, (t1 - t0) / 1e6, link.mtu

        msgs, dev_s, got_mtu = asyncio.run(go())
        host = _serial_drops(b.path)
    imu = [m for m in msgs if m.type == p.FrameType.IMU]
    pred = [m for m in msgs if m.type == p.FrameType.PREDICTION]
    per = p.ble_samples_per_notification(got_mtu or 23, 6)
    samples = sum(len(p.decode_imu(m.payload)) for m in imu)
    return {"mtu": got_mtu, "per": per, "dev_s": dev_s, "notes_s": (len(imu) + len(pred)) / dev_s,
            "samples_s": samples / dev_s, "imu_gaps": _gaps([m.seq for m in imu]),
            "preds": len(pred), "pred_gaps": _gaps([m.seq for m in pred]),
            "ble_dropped": host[1] if host else 0}


def _serial_drops(path: str) -> tuple[int, int, int] | None:
    """The sketch's own drop counters: its latest `dropped:` line on serial (LOG frame or text)."""
    import os
    import select
    import time

    from capture.decoder import StreamDecoder

    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    os.write(fd, p.encode_frame(p.FrameType.CONTROL, 0, 0, p.encode_control(p.Command.INFO)))
    data, dec, best = b"", StreamDecoder(), None
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        if select.select([fd], [], [], 0.05)[0]:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            data += chunk
            for f in dec.feed(chunk):
                if f.type == p.FrameType.LOG:
                    best = fw.parse_drops(f.payload.decode(errors="replace")) or best
    os.close(fd)
    for line in data.decode(errors="replace").splitlines():  # the classifier's text lines
        best = fw.parse_drops(line) or best
    return best


def imu_row(board: str, rate: int, seconds: float) -> dict[str, float]:
    from tests.conftest import DATA

    counts = np.tile(fw.replay_counts(DATA, fw.BOARD_IMU_RATE[board], rest_s=0.5), (3, 1))
    with fw.start_board(board=board, counts=counts, speed=8, ble=False) as b:
        if rate != fw.BOARD_IMU_RATE[board]:
            import os
            fd = os.open(b.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            os.write(fd, p.encode_frame(p.FrameType.CONTROL, 0, 0, p.encode_control(p.Command.SET_RATE, rate)))
        import time
        time.sleep(0.5)
        s0 = b.status
        time.sleep(seconds)
        s1 = b.status
    reads = max(1, s1.reads - s0.reads)
    dev = (s1.t_us - s0.t_us) / 1e6
    return {"read_us": (s1.i2c_us - s0.i2c_us) / reads, "busy": 100 * (s1.i2c_us - s0.i2c_us) / 1e6 / dev,
            "lost": s1.overwritten - s0.overwritten, "reads": reads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds of device time per BLE row")
    args = ap.parse_args()
    from training.tflm_tree import find_tree

    tflm = find_tree(SHARED_TFLM) if SHARED_TFLM.is_file() else find_tree()
    sketches: list[tuple[str, Path | None]] = [("capture", None)]
    tmp = tempfile.TemporaryDirectory()
    if tflm is not None:
        from tests.conftest import DATA
        from training.export import export_sketch
        from training.train import train

        log("bench_ble_firmware: training a small model for the classifier sketch ...")
        res = train(DATA, Path(tmp.name) / "model", epochs=3, limit_per_label=30, augment=1, seed=1, quiet=True)
        clf = Path(tmp.name) / "clf_bench"
        export_sketch(res.model_dir, clf, board="nano33ble", tflm=tflm)
        sketches.append(("classifier", clf))
    rows = []
    for name, sk in sketches:
        for mtu in (23, 247):
            log(f"bench_ble_firmware: {name}, MTU {mtu}, {args.seconds:g} s ...")
            r = ble_row(sk, tflm, mtu, args.seconds)
            rows.append(f"| {name} | {r['mtu']} | {r['per']} | {r['dev_s']:.1f} | {r['notes_s']:.1f} | "
                        f"{r['samples_s']:.1f} | {r['imu_gaps']} | {r['preds'] if sk else '—'} | "
                        f"{r['pred_gaps'] if sk else '—'} | {r['ble_dropped']} |")
    imu_rows = []
    for board, rate in (("nano33ble", 119), ("nano33ble", 952), ("nano33ble_rev2", 100)):
        log(f"bench_ble_firmware: IMU read time, {board} at {rate} Hz ...")
        r = imu_row(board, rate, 2.0)
        imu_rows.append(f"| {board} | {rate} | {r['read_us']:.0f} | {r['busy']:.1f} | {r['lost']} |")
    print("## BLE and IMU of the sketches' own firmware (host build through firmware/shim)\n")
    print("Rev1 at 119 Hz, 50 ms connection interval, 4 controller TX buffers (the Nano 33 BLE's Cordio "
          "`CORDIO_LL_TX_BUFFERS 4`), a central keeping ATT MTU 23 or negotiating 247. `gaps`: sequence "
          "numbers the host never saw; `sketch dropped`: notifications the sketch counted as not sent "
          "(its `dropped:` line), every gap is one of them.\n")
    print("| sketch | MTU | samples/notification | device s | notifications/s | samples/s | IMU gaps | "
          "predictions | prediction gaps | sketch dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nIMU read time per sample (the shim's I2C bus-time model: (3 + n) * 9 bits per n-byte register "
          "read at the clock the sketch set, plus the BMI270 API's 2 us wait with power save off), "
          "capture sketch, no BLE:\n")
    print("| board | rate (Hz) | IMU read time per sample (µs) | share of device time (%) | samples overwritten |")
    print("|---|---|---|---|---|")
    print("\n".join(imu_rows))
    tmp.cleanup()


if __name__ == "__main__":
    main()
