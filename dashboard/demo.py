"""``gesture demo``: the whole loop on any machine, no board and no downloaded data needed.

It runs the steps a user runs with a board, in order: record takes from the virtual board
(``virtual://hand``: the simulated hand, a physical model of a hand holding the IMU, several
simulated people) through the real capture path -> train + int8-quantize + evaluate in TFLM ->
export the Arduino sketch -> verify it on the Cortex-M4 under QEMU where the TFLM sources and the
ARM toolchain are present -> start the virtual board in classifier mode with the exported model ->
serve the dashboard that shows its predictions. ``--data DIR`` trains on a dataset you have instead.
It lives in ``dashboard`` because that is the most downstream package: it may import every step.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click

from capture.errors import GestureError

DEMO_PEOPLE = 6  # simulated people recorded (the trainer holds some out as its test people)
DEMO_TAKES = 10  # takes per person and label
DEMO_SECONDS = 2.5
DEMO_THRESHOLD_G = 0.5  # --trigger: wand-sized gestures move the board by less than the tutorial's punch


def record_hand(data: Path, *, people: int = DEMO_PEOPLE, takes: int = DEMO_TAKES, seed: int = 0) -> int:
    """Record takes from ``virtual://hand`` into a fresh ``data`` folder, as `gesture capture --trigger`
    does (one capture per simulated person and label, ``--subject simNN``); returns the takes saved.

    The folder is filled beside ``data`` and put in its place at the end (``building_folder``), so
    an interrupted demo never leaves a half-recorded dataset where the next run would train on it."""
    from capture.cli import run_capture
    from capture.fileio import building_folder
    from capture.recorder import RecordPlan
    from capture.virtual.hand import LABELS

    saved = 0
    with building_folder(data) as tmp:
        for who in range(people):
            for label in LABELS:
                plan = RecordPlan(label=label, takes=takes, seconds=DEMO_SECONDS, trigger=True,
                                  threshold_g=DEMO_THRESHOLD_G, countdown_s=0, subject=f"sim{who:02d}")
                url = f"virtual://hand?speed=0&person={who}&seed={seed}&labels={label}"
                summary = asyncio.run(run_capture(url, tmp, plan, rate=None, quiet=True))
                if summary.error:
                    raise GestureError(f"recording from {url}: {summary.error}")
                saved += summary.takes_saved
    return saved



def _step(n: int, total: int, text: str) -> None:
    click.secho(f"\n[{n}/{total}] {text}", bold=True, err=True)


def _verify(model_dir: Path, sketch_dir: Path, data: Path) -> str:
    """`gesture verify` where it can run; otherwise the one line saying what is missing."""
    from training import tflm_tree, verify

    if tflm_tree.find_tree() is None:
        return "skipped: the sketch has no TFLM runtime to build; " + tflm_tree.missing_tree_hint()
    try:
        verify.check_tools()
    except GestureError as e:
        return f"skipped: {e}"
    return verify.run(model_dir, sketch_dir, data_dir=data, take_limit=40).summary()


def run_demo(data: Path | None, out: Path, *, epochs: int | None, seed: int, port: int, address: str,
             open_browser: bool, duration: float | None, quiet: bool) -> dict:
    """Run every step; returns a summary dict (used by tests and the benchmark)."""
    from training.train import train
    from training.export import export_sketch

    t_start = time.monotonic()
    total = 6
    model_dir = out / "model"
    sketch_dir = out / "gesture_classifier"
    new_takes = out / "new_takes"  # not the training dataset: the demo leaves what it trained on as it was

    if data is None:
        data = out / "data"
        _step(1, total, f"record from the virtual board (virtual://hand: simulated people, not recordings) into {data}")
        n = record_hand(data, seed=seed)
        click.echo(f"  {n} takes from {DEMO_PEOPLE} simulated people ({DEMO_TAKES} per label each, --trigger)", err=True)
    else:
        _step(1, total, f"train on {data} (nothing recorded)")

    _step(2, total, f"train + int8-quantize + evaluate in TFLM on {data}")
    train_kwargs = {"seed": seed, "quiet": quiet}
    if epochs is not None:
        train_kwargs["epochs"] = epochs
    result = train(data, model_dir, **train_kwargs)
    report = result.report
    click.echo(
        f"  labels {', '.join(report['labels'])} | test takes {report['n_test']} ({report['split']} split)\n"
        f"  accuracy float {report['float_accuracy']:.1%}  int8 (TFLM) {report['int8_accuracy']:.1%}\n"
        f"  model {report['model_bytes']:,} bytes  arena {report['arena_bytes']:,} bytes  "
        f"({report['train_seconds']:.0f} s)  report: {model_dir / 'report.md'}",
        err=True)

    _step(3, total, f"export the TFLM Arduino sketch to {sketch_dir}")
    export = export_sketch(model_dir, sketch_dir, board="nano33ble", force=True)
    click.echo(f"  {export}", err=True)
    for note in export.notes:  # e.g. offline with no TFLM tree: the sketch is written, the runtime is not bundled
        click.echo(f"  note: {note}", err=True)

    _step(4, total, "verify the sketch on the Cortex-M4 (QEMU) against the Python evaluation")
    click.echo(f"  {_verify(model_dir, sketch_dir, data)}", err=True)

    _step(5, total, "start the virtual board (classifier mode) and the dashboard")
    from dashboard.server import DashboardServer, watch

    server = DashboardServer(simulate=True, model_dir=model_dir, data_dir=data, save_dir=new_takes,
                             port=port, address=address)
    url = server.start()
    click.secho(f"  dashboard: {url}", fg="green", err=True)
    click.echo(f"  takes saved from the dashboard go to {new_takes}", err=True)

    _step(6, total, "watching live predictions" + (f" for {duration:.0f} s" if duration else " (Ctrl-C to stop)"))
    watch(server, duration, open_browser=open_browser)
    summary = {"model_dir": str(model_dir), "sketch_dir": str(sketch_dir), "url": url,
               "report": report, "seconds": time.monotonic() - t_start}
    click.echo(f"\ndemo finished in {summary['seconds']:.0f} s", err=True)
    return summary


def register(group: click.Group) -> None:
    @group.command()
    @click.option("--data", type=click.Path(path_type=Path), default=None,
                  show_default="record from the simulated hand (virtual://hand) into OUT/data",
                  help="dataset to train on instead of recording")
    @click.option("--out", type=click.Path(path_type=Path), default=Path("out/demo"), show_default=True,
                  help="where the model and the sketch are written")
    @click.option("--epochs", type=int, default=None, help="training epochs (default: the trainer's)")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--port", type=int, default=8501, show_default=True, help="dashboard port")
    @click.option("--address", default="127.0.0.1", show_default=True, help="dashboard bind address")
    @click.option("--no-browser", is_flag=True, help="only print the dashboard URL")
    @click.option("--duration", type=float, default=None, help="stop the dashboard after S seconds")
    @click.option("--quiet", is_flag=True, help="no training progress")
    def demo(data: Path | None, out: Path, epochs: int | None, seed: int, port: int, address: str,
             no_browser: bool, duration: float | None, quiet: bool) -> None:
        """Record, train, quantize, export, verify and watch the live dashboard: no board, no downloads."""
        if data is not None and not data.is_dir():
            raise GestureError(f"{data}: dataset folder not found")
        run_demo(data, out, epochs=epochs, seed=seed, port=port, address=address,
                 open_browser=not no_browser, duration=duration, quiet=quiet)
