"""``gesture simulate --serial``: a virtual capture board on a pseudo-terminal.

Prints the port (e.g. ``/dev/pts/7``) as the first line on stdout, so scripts can read it, then
streams until Ctrl-C, SIGTERM, the end of the replayed takes or an injected disconnect. Any tool
that reads a serial port (``gesture capture --port``, the dashboard, a terminal) sees exactly what
the capture firmware sends.
"""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from capture import protocol as p
from capture.boards import BOARDS, DEFAULT_BOARD
from capture.errors import GestureError
from capture.virtual.options import click_options, parse_link_options


def make_source_factory(*, data: Path | None, idle: bool, channels: int, labels: list[str] | None, loop: bool,
                        native_rate: bool, rest: float, seed: int, seconds: float | None, board: str = DEFAULT_BOARD):
    """``rate -> EventSource`` for the options (the board calls it again on SET_RATE): the
    simulated hand unless ``data`` names takes to replay.

    A classifier mode (``training.board_sim.ClassifierSource``) is one more branch here.
    """
    from capture.virtual.sources import HandSource, IdleSource, ReplaySource

    def make(rate: float | None):
        if idle:
            return IdleSource(rate_hz=rate or p.DEFAULT_RATE_HZ, channels=channels, seconds=seconds, seed=seed)
        if data is None:
            return HandSource(board=board, rate_hz=rate, channels=channels, labels=labels, loop=loop, rest_s=rest,
                              seed=seed)
        return ReplaySource(data, rate_hz=None if native_rate and rate is None else (rate or p.DEFAULT_RATE_HZ),
                            channels=channels, labels=labels, loop=loop, rest_s=rest, seed=seed, shuffle=loop)
    return make


@click.command("simulate")
@click.option("--serial", "serial_", is_flag=True,
              help="serve the board on a pseudo-terminal (prints its path on stdout)")
@click.option("--ble", is_flag=True,
              help="with --firmware: serve its BLE radio (prints a virtual://firmware?socket=... URL on stdout)")
@click.option("--firmware", is_flag=True,
              help="run the sketch's own .ino compiled for the host (firmware/shim) instead of the Python board")
@click.option("--board", type=click.Choice(list(BOARDS)), default=DEFAULT_BOARD, show_default=True,
              help="with --firmware: which board (and IMU) the sketch is built for")
@click.option("--sketch", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="with --firmware: an exported classifier sketch folder (default: the capture sketch)")
@click.option("--tflm", type=click.Path(path_type=Path, exists=True),
              help="with --sketch: the TFLM source tree or tarball to build the classifier with "
                   "(default: $GESTURE_TFLM or the user cache)")
@click.option("--data", type=click.Path(path_type=Path, file_okay=False), default=None,
              show_default="none: the simulated hand performs", help="dataset whose takes the board replays")
@click.option("--idle", is_flag=True, help="a board at rest (gravity + noise) instead of replayed takes")
@click.option("--rate", type=float, help=f"IMU rate in Hz (default {p.DEFAULT_RATE_HZ}; takes are resampled)")
@click.option("--native-rate", is_flag=True, help="replay takes at their own rate (exact counts)")
@click.option("--channels", type=click.Choice(["3", "6"]), default="6", show_default=True)
@click.option("--labels", help="comma-separated labels to replay or perform (default all)")
@click.option("--loop", is_flag=True, help="replay the takes forever, shuffled (the hand: perform forever)")
@click.option("--rest", type=float, default=1.0, show_default=True, help="seconds at rest between takes")
@click.option("--seconds", type=float, help="--idle: stop after this many seconds")
@click_options("serial")
def simulate_cmd(serial_: bool, ble: bool, firmware: bool, board: str, sketch: Path | None, tflm: Path | None,
                 data: Path | None, idle: bool,
                 rate: float | None, native_rate: bool, channels: str,
                 labels: str | None, loop: bool, rest: float, seconds: float | None, loss: float, garbage: float,
                 corrupt: float, disconnect_after: float | None, seed: int, speed: float) -> None:
    """Run a virtual capture board (no hardware needed)."""
    from capture.virtual.serial_board import SerialBoard

    if serial_ == ble:
        raise GestureError("choose one link: --serial or --ble")
    if firmware:
        faults = parse_link_options({"loss": loss, "garbage": garbage, "corrupt": corrupt,
                                     "disconnect_after": disconnect_after, "seed": seed, "speed": speed},
                                    "serial" if serial_ else "ble", "gesture simulate --firmware",
                                    spell=lambda n: "--" + n.replace("_", "-")).faults
        if rate is not None or native_rate or channels != "6":
            raise GestureError("--firmware runs at the rate and channels the board's IMU delivers: "
                               "drop --rate/--native-rate/--channels (send SET_RATE to the board instead)")
        _run_firmware(board=board, sketch=sketch, tflm=tflm, data=data, idle=idle, serial_=serial_, faults=faults,
                      speed=speed, loop=loop, labels=labels.split(",") if labels else None, rest=rest, seed=seed,
                      seconds=seconds)
        return
    if ble:
        raise GestureError("--ble needs --firmware (the Python board's BLE is the virtual://replay URL)")

    if rate is not None and rate not in p.SUPPORTED_RATES_HZ:
        raise GestureError(f"--rate {rate:g}: the firmware supports {', '.join(map(str, p.SUPPORTED_RATES_HZ))} Hz")
    if native_rate and (rate is not None or idle):
        raise GestureError("--native-rate replays takes at their own rate: do not combine it with --rate or --idle")
    if native_rate and data is None:
        raise GestureError("--native-rate replays takes at their own rate: it needs --data DIR")
    make = make_source_factory(data=data, idle=idle, channels=int(channels),
                               labels=labels.split(",") if labels else None, loop=loop, native_rate=native_rate,
                               rest=rest, seed=seed, seconds=seconds, board=board)
    try:
        source = make(rate)
    except ValueError as e:  # several rates in the dataset with --native-rate
        raise GestureError(f"{data}: {e}") from None
    opt = parse_link_options({"loss": loss, "garbage": garbage, "corrupt": corrupt, "disconnect_after": disconnect_after,
                              "seed": seed, "speed": speed}, "serial", "gesture simulate",
                             spell=lambda n: "--" + n.replace("_", "-"))
    board = SerialBoard(source, make_source=lambda r: make(float(r)), faults=opt.faults, speed=opt.speed)
    click.echo(board.path)
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: board.stop())
    try:
        reason = board.run()
    except KeyboardInterrupt:
        board.stop()
        reason = "interrupted"
    finally:
        board.close()
    click.echo(f"virtual board stopped: {reason} ({board.frames_sent} frames sent, "
               f"{board.injector.dropped} dropped by --loss, {board.unread_drops} not read by the host)", err=True)


def _run_firmware(*, board: str, sketch: Path | None, tflm: Path | None, data: Path | None, idle: bool, serial_: bool, faults, speed: float,
                  loop: bool, labels: list[str] | None, rest: float, seed: int, seconds: float | None) -> None:
    """``--firmware``: the host-compiled sketch as the board, until it stops, Ctrl-C or SIGTERM."""
    import numpy as np

    from capture.virtual import firmware as fw

    counts = None
    if idle:
        from capture.virtual.sources import rest as rest_counts
        counts = rest_counts(int((seconds or 3600) * fw.BOARD_IMU_RATE[board]), 6, np.random.default_rng(seed))
    fb = fw.start_board(board=board, sketch=sketch, data=data, counts=counts, speed=speed, ble=not serial_,
                        loop=loop, labels=labels, rest_s=rest, seed=seed, tflm=tflm)
    relay = None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    reason = "board stopped (end of the replayed takes)"
    try:
        if serial_:
            damaged = faults.loss or faults.garbage or faults.corrupt or faults.disconnect_after_s is not None
            if damaged:
                relay = fw.FaultRelay(fb.path, faults, speed)
                threading.Thread(target=lambda: stop.set() if relay.run() else None, daemon=True).start()
            click.echo(relay.path if relay else fb.path)
        else:
            fw.wait_socket(fb.ble_path or "", alive=fb.running)
            click.echo(f"virtual://firmware?socket={fb.ble_path}&speed={speed:g}"
                       + (f"&loss={faults.loss:g}" if faults.loss else "")
                       + (f"&disconnect_after={faults.disconnect_after_s:g}" if faults.disconnect_after_s else ""))
        sys.stdout.flush()
        while fb.running() and not stop.wait(0.1):
            pass
        if stop.is_set():
            reason = "stopped"
    except KeyboardInterrupt:
        reason = "interrupted"
    finally:
        if relay is not None:
            relay.stop.set()
        st = fb.status
        fb.close()
        if relay is not None:
            relay.close()
    click.echo(f"firmware board ({board}) stopped: {reason}; device time {st.t_us / 1e6:.1f} s, {st.reads} IMU samples "
               f"read of {st.produced}, {st.notifications} BLE notifications", err=True)


def register(group: click.Group) -> None:
    group.add_command(simulate_cmd)
