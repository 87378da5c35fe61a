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
    @click.option("--tflm", type=click.Path(path_type=Path), default=None,
                  help="TFLM source tree (folder or tflm-src.tar.gz) to bundle; default: $GESTURE_TFLM, else the "
                       "user cache (`gesture tflm fetch`)")
    @click.option("--arena", "arena_bytes", type=click.IntRange(1024, 256 * 1024), default=None,
                  help="the tensor arena need written into the built-in model package instead of the measured one "
                       "(at most GK_MAX_ARENA_BYTES, the sketch's arena)")
    def export_cmd(model_dir: Path, sketch_dir: Path, board: str, force: bool, tflm: Path | None,
                   arena_bytes: int | None) -> None:
        """Generate the TFLM Arduino sketch for a trained MODEL_DIR, with the TFLM runtime and the model's
        kernels bundled (checks the board's flash/RAM budget)."""
        from training.export import export_sketch

        result = export_sketch(model_dir, sketch_dir, board=board, force=force, arena_bytes=arena_bytes, tflm=tflm)
        for note in result.notes:
            click.echo(f"warning: {note}", err=True)
        click.echo(str(result))

    @group.command("verify")
    @click.argument("model_dir", type=click.Path(path_type=Path))
    @click.option("--sketch", "sketch_dir", type=click.Path(path_type=Path), default=None,
                  help="exported sketch folder to verify (default: export MODEL_DIR into a temporary folder)")
    @click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
                  help="also write the figures to this JSON file")
    @click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
                  help="dataset whose takes are fed (default: the one the model was trained on)")
    @click.option("--tflm", type=click.Path(path_type=Path), default=None,
                  help="TFLM tree for the temporary export (without --sketch)")
    @click.option("--limit", "take_limit", type=click.IntRange(min=1), default=None,
                  help="feed only the first N takes (default: all)")
    @click.option("--stream", "stream_takes", type=click.IntRange(min=1), default=60, show_default=True,
                  help="takes replayed in the continuous IMU stream (6 s of rest between them)")
    @click.pass_context
    def verify_cmd(ctx: click.Context, model_dir: Path, sketch_dir: Path | None, json_path: Path | None,
                   data_dir: Path | None, tflm: Path | None, take_limit: int | None, stream_takes: int) -> None:
        """Build the sketch's model + preprocessing for Cortex-M4, run it under QEMU, compare every byte
        with the Python evaluation and measure instructions, arena and flash (into report.json/.md)."""
        from training.verify import run

        result = run(model_dir, sketch_dir, json_path=json_path, data_dir=data_dir, tflm=tflm, take_limit=take_limit,
                     stream_takes=stream_takes)
        click.echo(result.summary())
        for ex in result.mismatch_examples:
            click.echo(f"  {ex}", err=True)
        if result.mismatches:
            ctx.exit(1)

    @group.group("tflm")
    def tflm_group() -> None:
        """The pinned TensorFlow Lite Micro source tree the export bundles."""

    @tflm_group.command("fetch")
    @click.option("--url", default=None,
                  help="a mirror of the pruned tflm-src.tar.gz, checked by its sha256 (default: $GESTURE_TFLM_URL; "
                       "without one, the upstream archives are downloaded)")
    @click.option("--upstream", "base_url", default=None, metavar="BASE_URL",
                  help="host serving the upstream archives in GitHub's /OWNER/REPO/archive/REF.zip layout "
                       "(default: $GESTURE_TFLM_UPSTREAM, else https://github.com)")
    def tflm_fetch(url: str | None, base_url: str | None) -> None:
        """Download the pinned TFLM tree into the user cache: by default the source archives of
        tflite-micro, CMSIS-NN, CMSIS_6, flatbuffers, gemmlowp and ruy at the commits TFLM pins,
        pruned to the pinned files and checked file by file (sha256). Prints the tree's path."""
        from training.tflm_tree import fetch_tree

        click.echo(str(fetch_tree(url, base_url=base_url, echo=lambda s: click.echo(s, err=True))))

    @tflm_group.command("where")
    @click.option("--tflm", type=click.Path(path_type=Path), default=None)
    def tflm_where(tflm: Path | None) -> None:
        """Print the TFLM tree the export would use (or what is missing)."""
        from training.tflm_tree import find_tree, missing_tree_hint

        tree = find_tree(tflm)
        click.echo(str(tree) if tree else missing_tree_hint())

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
