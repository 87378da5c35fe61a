"""Push over BLE through the shim's link model: the exported classifier sketch compiled for the host
(firmware/shim), its transfer service (gk_push.h) on the shim's NOR flash, and gesture push's
client (training/push.py) over bleak, for connection intervals 7.5 / 15 / 30 / 50 ms and ATT MTU
23 and 247, with the controller's 4 TX and 4 RX buffers (mbed_config.h CORDIO_LL_TX_BUFFERS /
CORDIO_LL_RX_BUFFERS).

What the link model charges (firmware/shim/README.md): per connection event at most 4 writes from
the central, each its air time at 1 Mbit/s (data length extension assumed: one packet per write);
every write goes through ArduinoBLE's 256-byte HCI ring, which drops a packet that finds no room
before the sketch's next BLE.poll(); a page erase halts the CPU for 85 ms (no connection events
then), a word program 41 us (the nRF52840's maxima). Not charged: the CPU time of the sketch's own
code, unless the "loop() late" rows add it (every 600th loop() pass 8 ms late: what the default
model's ~8 ms inference at 64 MHz would do about every 150 ms; the sketch pauses inference while
chunks arrive, so these rows show what that pause avoids).

Reported per row: the DATA phase's throughput (first to last acknowledgement, host seconds with
device time paced 1:1), the whole push (BEGIN to DONE: erase, transfer, hashing, switch, commit
record), bytes sent again after go-back-N, and the writes the HCI ring dropped.

    python bench/bench_push.py [--model MODEL_DIR]

Without --model, the default architecture is trained for one epoch on the magic_wand recordings
(its size, not its accuracy, is what a push moves).
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from common import log, magic_wand, tflm_tree

from capture import protocol as p  # noqa: E402
from capture.virtual import firmware as fw  # noqa: E402
from training import package as pk  # noqa: E402
from training.push import transfer_package  # noqa: E402

INTERVALS_MS = (7.5, 15.0, 30.0, 50.0)
MTUS = (23, 247)


def row(sketch: Path, tflm: Path, package: bytes, interval_ms: float, mtu: int,
        late: tuple[int, int] | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        with fw.start_board(board="nano33ble", sketch=sketch, speed=1.0, tflm=tflm, loop=True,
                            flash=Path(tmp) / "flash.bin", ble_interval_ms=interval_ms, late=late) as b:
            marks: dict[int, float] = {}

            async def go():
                from bleak import BleakClient

                client = BleakClient("bench", backend=b.backend(mtu=mtu))
                await client.connect()
                t0 = time.monotonic()
                try:
                    result = await transfer_package(
                        client, package, progress=lambda done, total: marks.setdefault(done, time.monotonic()))
                finally:
                    await client.disconnect()
                return result, time.monotonic() - t0

            result, whole = asyncio.run(asyncio.wait_for(go(), 600))
            time.sleep(0.25)  # one more status line
            st = b.status
    first, last = marks[min(marks)], marks[len(package)]
    return {"data_s": last - first, "bps": (len(package) - min(marks)) / (last - first), "push_s": whole,
            "resent": result.sent_bytes - len(package), "rx_dropped": st.ble_rx_dropped,
            "done": result.status.state == p.PushState.DONE}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="MODEL_DIR to push (default: the default architecture, 1 epoch)")
    args = ap.parse_args()
    tflm = tflm_tree()
    if tflm is None:
        raise SystemExit("no TFLM tree (gesture tflm fetch): the host-compiled classifier needs it")
    from training.export import export_sketch

    tmp = tempfile.TemporaryDirectory()
    model = args.model
    if model is None:
        from training.train import train

        log("bench_push: training the default architecture for one epoch on magic_wand ...")
        model = train(magic_wand(), Path(tmp.name) / "model", epochs=1, seed=0, quiet=True).model_dir
    sketch = Path(tmp.name) / "clf"
    export_sketch(model, sketch, board="nano33ble", tflm=tflm)
    package = pk.build_package(model, "nano33ble")
    log(f"bench_push: package of {len(package):,} bytes ({(model / 'model.tflite').stat().st_size:,}-byte model)")
    rows = []
    for interval in INTERVALS_MS:
        for mtu in MTUS:
            log(f"  interval {interval} ms, MTU {mtu}")
            rows.append((f"{interval:g} ms", mtu, "", row(sketch, tflm, package, interval, mtu)))
    for interval in (15.0, 50.0):
        log(f"  interval {interval} ms, MTU 247, loop() 8 ms late every 600 passes")
        rows.append((f"{interval:g} ms", 247, "8 ms every ~150 ms", row(sketch, tflm, package, interval, 247,
                                                                           late=(600, 8000))))
    print(f"## Push over BLE through the shim's link model ({len(package):,}-byte package)\n")
    print("| interval | MTU | loop() late | DATA throughput | whole push (BEGIN to DONE) | "
          "bytes sent again | writes dropped by the HCI ring | result |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for interval, mtu, busy, r in rows:
        print(f"| {interval} | {mtu} | {busy or 'no'} | {r['bps'] / 1000:.1f} KB/s | {r['push_s']:.2f} s | "
              f"{r['resent']:,} | {r['rx_dropped']} | {'DONE' if r['done'] else 'not DONE'} |")


if __name__ == "__main__":
    main()
