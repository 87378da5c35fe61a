"""``gesture export`` and ``gesture flash``."""
from __future__ import annotations

from pathlib import Path

import click

from capture.boards import BOARDS, DEFAULT_BOARD

BOARD_HELP = "; ".join(f"{b.key}: {b.title}" for b in BOARDS.values())


def register(group: click.Group) -> None:
    @group.command("export")
    @click.argument("model_dir", type=click.Path(path_type=Path))
    @click.option("--sketch", "sketch_dir", type=click.Path(path_type=Path), default=Path("firmware/gesture_classifier"),
                  show_default=True, help="sketch folder to write (the .ino takes its name)")
    @click.option("--board", type=click.Choice(list(BOARDS)), default=DEFAULT_BOARD, show_default=True,
                  help=BOARD_HELP)
    @click.option("--force", is_flag=True, help="overwrite a folder that was not written by gesture export")
    @click.option("--arena", "arena_bytes", type=click.IntRange(1024, 256 * 1024), default=None,
                  help="tensor arena in bytes instead of the measured one (when the board says it needs more)")
    def export_cmd(model_dir: Path, sketch_dir: Path, board: str, force: bool, arena_bytes: int | None) -> None:
        """Generate the TFLM Arduino sketch for a trained MODEL_DIR (checks the board's flash/RAM budget)."""
        from training.export import export_sketch

        result = export_sketch(model_dir, sketch_dir, board=board, force=force, arena_bytes=arena_bytes)
        for note in result.notes:
            click.echo(f"warning: {note}", err=True)
        click.echo(str(result))

    @group.command("flash")
    @click.argument("sketch", type=click.Path(path_type=Path))
    @click.option("--port", required=True, help="serial port of the board, e.g. /dev/ttyACM0")
    @click.option("--board", type=click.Choice(list(BOARDS)), default=None,
                  help=f"default: the board the sketch was exported for, else {DEFAULT_BOARD}")
    @click.option("--dry-run", is_flag=True, help="print the arduino-cli commands without running them")
    def flash_cmd(sketch: Path, port: str, board: str | None, dry_run: bool) -> None:
        """Compile and upload a sketch folder with arduino-cli (or print how to do it by hand)."""
        from training.flash import flash

        flash(sketch, port, board=board, dry_run=dry_run, echo=lambda s: click.echo(s, err=True))
        if not dry_run:
            click.echo(f"uploaded {sketch} to {port}")
