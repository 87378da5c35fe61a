"""``gesture train``."""
from __future__ import annotations

from pathlib import Path

import click

from capture.errors import GestureError
from training.train import DEFAULTS


def check_out_dir(out_dir: Path) -> None:
    """--out must be a folder we can create and write (a file there is refused up front)."""
    import os
    import tempfile

    if out_dir.exists() and not out_dir.is_dir():
        raise GestureError(f"--out {out_dir}: is a file; expected a MODEL_DIR folder (new or written by gesture train)")
    probe_dir = out_dir if out_dir.is_dir() else next((d for d in out_dir.absolute().parents if d.exists()), Path("/"))
    if not probe_dir.is_dir():
        raise GestureError(f"--out {out_dir}: {probe_dir} is a file, so the folder cannot be created")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise GestureError(f"--out {out_dir}: cannot write in {probe_dir} ({e.strerror or e})") from None


def register(group: click.Group) -> None:
    @group.command("train")
    @click.argument("data", type=click.Path(path_type=Path))
    @click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="MODEL_DIR to write")
    @click.option("--test", "test_data", type=click.Path(path_type=Path), default=None, help="a separate test dataset")
    @click.option("--split", type=click.Choice(["person", "session", "random"]), default=None,
                  help="how to hold out test takes (default: person when the dataset records subjects)")
    @click.option("--epochs", type=click.IntRange(1), default=DEFAULTS["epochs"], show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--rate", "rate_hz", type=click.IntRange(1, 1000), default=DEFAULTS["rate"], show_default=True,
                  help="model sample rate (Hz)")
    @click.option("--window", type=click.IntRange(2, 4096), default=None,
                  help="window length in samples (default: from the data)")
    @click.option("--channels", type=click.Choice(["accel", "imu"]), default="accel", show_default=True,
                  help="accel: ax,ay,az; imu: also gx,gy,gz")
    @click.option("--quiet", is_flag=True, help="no progress output")
    def train_cmd(data: Path, out_dir: Path, test_data: Path | None, split: str | None, epochs: int, seed: int,
                  rate_hz: int, window: int | None, channels: str, quiet: bool) -> None:
        """Train a classifier, quantize it to int8 and evaluate it as the board runs it."""
        check_out_dir(out_dir)  # before minutes of training, not after
        from training.train import train

        r = train(data, out_dir, test=test_data, split=split, epochs=epochs, seed=seed, rate_hz=rate_hz,
                  window=window, channels=channels, quiet=quiet).report
        click.echo(f"int8 accuracy {r['int8_accuracy']:.1%} (float {r['float_accuracy']:.1%}) on {r['n_test']} test takes; "
                   f"model {r['model_bytes']:,} bytes, arena {r['arena_bytes']:,} bytes; report: {out_dir / 'report.md'}")
