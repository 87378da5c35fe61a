"""``gesture calibrate``: the post-processor's setting chosen on continuous recordings."""
from __future__ import annotations

import json
from pathlib import Path

import click


def register(group: click.Group) -> None:
    @group.command("calibrate")
    @click.argument("model_dir", type=click.Path(path_type=Path))
    @click.argument("streams", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("--target-fa-per-hour", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
                  help="false activations per hour the chosen setting may not exceed")
    @click.option("--max-frr", type=click.FloatRange(0.0, 1.0), default=0.05, show_default=True,
                  help="the most missed gestures (false rejection rate) the chosen setting may have; within it, the "
                       "target is met if any setting can, else the fewest false activations are chosen")
    @click.option("--tolerance-ms", type=click.FloatRange(min=0.0), default=500.0, show_default=True,
                  help="a detection this much before an event's onset still counts as a hit")
    @click.option("--after-ms", type=click.FloatRange(min=0.0), default=None,
                  help="... and this much after its end (onset + 2.5 s when the recording marked no end); "
                       "default: the model's window duration")
    @click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
                  help="also write the figures to this JSON file")
    @click.option("--dry-run", is_flag=True, help="report only; leave the model folder unchanged")
    def calibrate_cmd(model_dir: Path, streams: tuple[Path, ...], target_fa_per_hour: float, max_frr: float, tolerance_ms: float,
                      after_ms: float | None, json_path: Path | None, dry_run: bool) -> None:
        """Replay continuous recordings (STREAM folders, or folders holding them) through what the board
        runs, sweep the post-processor (threshold, averaging window, minimum count, suppression), report
        false activations per hour and false rejections per event, and write the chosen setting into
        MODEL_DIR (config.json `detector`, calibration.json, calibration.png); re-export to put it on the board."""
        from capture.fileio import atomic_write_text
        from capture.streams import find_streams
        from training.calibrate import calibrate, default_tolerance, summary
        from training.model_dir import load_model_dir

        paths = find_streams(streams)
        cfg, _, _ = load_model_dir(model_dir)
        result = calibrate(model_dir, paths, target_fa_per_hour=target_fa_per_hour, max_frr=max_frr,
                           tolerance=default_tolerance(cfg, tolerance_ms, after_ms), write=not dry_run)
        click.echo(summary(result))
        if json_path is not None:
            atomic_write_text(json_path, json.dumps(result, indent=1) + "\n")
        if not dry_run:
            click.echo(f"wrote {model_dir / 'config.json'} (detector), calibration.json, calibration.png; "
                       f"`gesture export {model_dir}` puts it on the board")
