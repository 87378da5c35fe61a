"""``gesture demo``: the whole loop on any machine, no board needed.

It runs the steps a user runs with a board, in order, on the bundled real dataset:
train + int8-quantize + evaluate in TFLM -> export the Arduino sketch -> start the virtual board
in classifier mode with the exported model -> serve the dashboard that shows its predictions.
It lives in ``dashboard`` because that is the most downstream package: it may import every step.
"""
from __future__ import annotations

import time
from pathlib import Path

import click

from capture.errors import GestureError



def _step(n: int, total: int, text: str) -> None:
    click.secho(f"\n[{n}/{total}] {text}", bold=True, err=True)


def run_demo(data: Path, out: Path, *, epochs: int | None, seed: int, port: int, address: str,
             open_browser: bool, duration: float | None, quiet: bool) -> dict:
    """Run every step; returns a summary dict (used by tests and the benchmark)."""
    from training.train import train
    from training.export import export_sketch

    t_start = time.monotonic()
    total = 4
    model_dir = out / "model"
    sketch_dir = out / "gesture_classifier"
    new_takes = out / "new_takes"  # not the bundled dataset: the demo leaves the repository as it was

    _step(1, total, f"train + int8-quantize + evaluate in TFLM on {data}")
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

    _step(2, total, f"export the TFLM Arduino sketch to {sketch_dir}")
    export = export_sketch(model_dir, sketch_dir, board="nano33ble", force=True)
    click.echo(f"  {export}", err=True)

    _step(3, total, "start the virtual board (classifier mode) and the dashboard")
    from dashboard.server import DashboardServer, watch

    server = DashboardServer(simulate=True, model_dir=model_dir, data_dir=data, save_dir=new_takes,
                             port=port, address=address)
    url = server.start()
    click.secho(f"  dashboard: {url}", fg="green", err=True)
    click.echo(f"  takes saved from the dashboard go to {new_takes}", err=True)

    _step(4, total, "watching live predictions" + (f" for {duration:.0f} s" if duration else " (Ctrl-C to stop)"))
    watch(server, duration, open_browser=open_browser)
    summary = {"model_dir": str(model_dir), "sketch_dir": str(sketch_dir), "url": url,
               "report": report, "seconds": time.monotonic() - t_start}
    click.echo(f"\ndemo finished in {summary['seconds']:.0f} s", err=True)
    return summary


def register(group: click.Group) -> None:
    @group.command()
    @click.option("--data", type=click.Path(path_type=Path), default=None,
                  show_default="the bundled data/magic_wand", help="dataset to train on")
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
        """Train, quantize, export and watch the live dashboard on the bundled data, no board needed."""
        if data is None:
            from capture.resources import bundled_dataset
            data = bundled_dataset()
        if not data.is_dir():
            raise GestureError(f"{data}: dataset folder not found (the bundled one is data/magic_wand)")
        run_demo(data, out, epochs=epochs, seed=seed, port=port, address=address,
                 open_browser=not no_browser, duration=duration, quiet=quiet)
