"""BLE link through the real client path (bleak BleakClient + BleTransport) to the virtual board.

Streams an idle 6-channel board in real time at 119 Hz and 1000 Hz, at the default ATT MTU (23)
and the MTU a Nano 33 BLE negotiates with a modern host (247), and reports what the host sees:
notifications/s, samples/s, notification bytes per sample (value only; the radio adds ATT and
link-layer overhead on top), sequence gaps, and the host CPU the link costs (process CPU time /
wall time, one process playing both board and host, so an upper bound for the host side).

    python bench/bench_ble.py --seconds 5
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capture import protocol as p  # noqa: E402
from capture.transport.ble import BleTransport  # noqa: E402
from capture.virtual.ble import virtual_backend  # noqa: E402
from capture.virtual.sources import IdleSource  # noqa: E402


async def run(rate: int, mtu: int, seconds: float) -> dict[str, float]:
    link = BleTransport("bench", backend=virtual_backend(IdleSource(rate_hz=rate, channels=6), mtu=mtu, speed=1.0))
    samples = 0

    def count(msg: object) -> None:
        nonlocal samples
        samples += p.decode_imu(msg.payload).shape[0]  # type: ignore[attr-defined]
    link.on_message(count)
    await link.open()
    wall0, cpu0 = time.monotonic(), time.process_time()
    frames0, bytes0, samples0 = link.stats.frames, link.stats.bytes, samples
    await asyncio.sleep(seconds)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    frames, nbytes, n = link.stats.frames - frames0, link.stats.bytes - bytes0, samples - samples0
    lost = link.stats.frames_lost
    await link.close()
    return {"notif_s": frames / wall, "samples_s": n / wall, "bytes_sample": nbytes / max(1, n),
            "per": p.ble_samples_per_notification(mtu, 6), "lost": lost, "cpu": 100 * cpu / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds streamed per configuration")
    args = ap.parse_args()
    rows = []
    for rate in (119, 1000):
        for mtu in (23, 247):
            print(f"bench_ble: {rate} Hz, MTU {mtu}, {args.seconds:g} s ...", file=sys.stderr)
            r = asyncio.run(run(rate, mtu, args.seconds))
            rows.append(f"| {rate} | {mtu} | {r['per']} | {r['notif_s']:.1f} | {r['samples_s']:.1f} | "
                        f"{r['bytes_sample']:.2f} | {r['lost']} | {r['cpu']:.1f} |")
    print("## BLE link (virtual board through BleakClient + BleTransport)\n")
    print(f"Idle 6-channel board streamed in real time for {args.seconds:g} s per row.\n")
    print("| IMU rate (Hz) | ATT MTU | samples/notification | notifications/s | samples/s | "
          "bytes/sample | seq gaps | host CPU % |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
