"""Serial capture throughput: virtual board on a pty -> SerialTransport -> recorder-like consumer.

The board runs in its own process (``gesture simulate --serial --idle``), so the CPU figure is the
capture side alone (``time.process_time`` of this process: reader thread + asyncio loop + decoding
IMU payloads). Two runs:

* paced: the board at ``--rate`` Hz x ``--channels`` for ``--seconds`` in real time; target
  0 frames lost, 0 CRC errors, capture < 15 % of one core;
* ceiling: the board unpaced (``--speed 0``: it writes as fast as the host reads), frames/s and
  samples/s the host decodes.

Plus BLE arithmetic from capture/protocol.py (no radio here): samples per notification and
notifications per second needed at 119 Hz and 1 kHz. Markdown on stdout, progress on stderr.

    python bench/bench_capture.py --seconds 60
"""
from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, log  # first: puts ROOT on sys.path for the kit's imports below

from capture import protocol as p
from capture.transport.serial import SerialTransport


async def consume(port: str, seconds: float) -> dict[str, float]:
    """Open the port, decode every IMU payload for ``seconds``; what the recorder does per message."""
    link = SerialTransport(port)
    got = {"frames": 0, "samples": 0, "first_t": None, "last_t": None, "last_n": 0, "t_span": 0}
    clock_hi = 0

    def on_msg(m) -> None:
        nonlocal clock_hi
        if m.type != p.FrameType.IMU:
            return
        counts = p.decode_imu(m.payload)
        got["frames"] += 1
        got["samples"] += len(counts)
        if got["last_t"] is not None and m.t_us < got["last_t"]:
            clock_hi += 1 << 32
        if got["first_t"] is None:
            got["first_t"] = m.t_us
        got["last_t"] = m.t_us
        got["t_span"] = clock_hi + m.t_us - got["first_t"]
        got["last_n"] = len(counts)

    link.on_message(on_msg)
    await link.open()
    base = link.stats.as_dict()
    got.update(frames=0, samples=0, first_t=None, last_t=None, t_span=0)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    stats = link.stats.as_dict()
    await link.close()
    span_s = got["t_span"] / 1e6
    return {
        "frames": got["frames"], "samples": got["samples"], "wall_s": wall, "cpu_pct": 100.0 * cpu / wall,
        "frames_lost": stats["frames_lost"] - base["frames_lost"], "crc_errors": stats["crc_errors"] - base["crc_errors"],
        "garbage_bytes": stats["garbage_bytes"] - base["garbage_bytes"],
        "rate_hz": (got["samples"] - got["last_n"]) / span_s if span_s > 0 else 0.0,
    }


def run(rate: int, channels: int, seconds: float, speed: float) -> tuple[dict[str, float], float]:
    """Board process + consumer; returns the consumer's figures and the board process's CPU %."""
    cmd = [sys.executable, "-m", "gesture_cli", "simulate", "--serial", "--idle", "--rate", str(rate),
           "--channels", str(channels), "--speed", str(speed)]
    board = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = board.stdout.readline().strip()  # type: ignore[union-attr]
        if not port.startswith("/dev/"):
            raise SystemExit(f"virtual board did not start: {port!r}")
        board_cpu0 = _proc_cpu(board.pid)
        t0 = time.monotonic()
        res = asyncio.run(consume(port, seconds))
        board_pct = 100.0 * (_proc_cpu(board.pid) - board_cpu0) / (time.monotonic() - t0)
    finally:
        board.terminate()
        board.wait(10)
    return res, board_pct


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), to show which side limits the ceiling."""
    import os
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the paced run")
    ap.add_argument("--rate", type=int, default=1000, choices=p.SUPPORTED_RATES_HZ)
    ap.add_argument("--channels", type=int, default=6, choices=(3, 6))
    ap.add_argument("--ceiling-seconds", type=float, default=5.0, help="length of the unpaced run")
    args = ap.parse_args()

    log(f"paced run: {args.rate} Hz x {args.channels} ch for {args.seconds:g} s ...")
    paced, paced_board = run(args.rate, args.channels, args.seconds, 1.0)
    log(f"ceiling run: unpaced for {args.ceiling_seconds:g} s ...")
    ceil, ceil_board = run(args.rate, args.channels, args.ceiling_seconds, 0.0)

    spf = p.samples_per_frame(args.rate)
    frame_bytes = p.HEADER_SIZE + p.IMU_PAYLOAD_HEADER.size + 2 * spf * args.channels + p.CRC_SIZE
    print("## Serial capture (virtual board on a pty)\n")
    print(f"Board: `gesture simulate --serial --idle` in its own process, {spf} samples per frame "
          f"({frame_bytes} bytes). CPU is `time.process_time()` of the capture process (reader thread, "
          "asyncio loop, IMU payload decoding) over wall time, in % of one core.\n")
    print("| run | seconds | frames | samples | frames/s | samples/s | measured rate (device clock) | frames lost | CRC errors | garbage bytes | capture CPU | board CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r, b in ((f"paced {args.rate} Hz x {args.channels} ch", paced, paced_board),
                       ("ceiling (board unpaced)", ceil, ceil_board)):
        print(f"| {name} | {r['wall_s']:.1f} | {r['frames']:,} | {r['samples']:,} | {r['frames'] / r['wall_s']:,.0f} | "
              f"{r['samples'] / r['wall_s']:,.0f} | {r['rate_hz']:.2f} Hz | {r['frames_lost']} | {r['crc_errors']} | "
              f"{r['garbage_bytes']} | {r['cpu_pct']:.1f} % | {b:.1f} % |")
    ok = paced["frames_lost"] == 0 and paced["crc_errors"] == 0 and paced["cpu_pct"] < 15.0
    print(f"\nTarget (0 frames lost, 0 CRC errors, capture < 15 % of one core): **{'met' if ok else 'NOT met'}**. "
          "In the ceiling run both processes share the machine's cores; the side near 100 % is the limit.\n")

    print("## BLE notification arithmetic (from capture/protocol.py)\n")
    print("| rate | channels | MTU | bytes/sample | samples/notification | notifications/s | payload bytes/s |")
    print("|---|---|---|---|---|---|---|")
    for rate in (119, 1000):
        for ch in (3, 6):
            for mtu in (23, 247):
                per = p.ble_samples_per_notification(mtu, ch)
                note = p.BLE_NOTIFY_HEADER.size + p.IMU_PAYLOAD_HEADER.size + 2 * ch * per
                nps = rate / per
                print(f"| {rate} Hz | {ch} | {mtu} | {2 * ch} | {per} | {nps:,.1f} | {nps * note:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
