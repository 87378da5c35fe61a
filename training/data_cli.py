"""``gesture data DIR``: look at a dataset before training on it."""
from __future__ import annotations

from pathlib import Path

import click

MAX_LISTED = 50


def register(group: click.Group) -> None:
    @group.command("data")
    @click.argument("data_dir", type=click.Path(path_type=Path))
    def data_cmd(data_dir: Path) -> None:
        """Per-label counts, durations, rate, channels, subjects, and warnings for a dataset; hours and
        events per label for continuous recordings (a stream folder, or a folder holding only streams)."""
        from capture.streams import STREAM_FILE, find_streams, is_stream, summary
        from training.dataset import load_dataset, summary_table, validate

        subs = [d for d in data_dir.iterdir() if d.is_dir() and not d.name.startswith(".")] if data_dir.is_dir() else []
        if is_stream(data_dir) or (subs and all((d / STREAM_FILE).is_file() for d in subs)):
            click.echo(summary(find_streams([data_dir])))
            return

        from training.plan import make_plan

        ds = load_dataset(data_dir)
        click.echo(summary_table(ds))
        test = set(ds.manifest.get("test_subjects") or [])
        train_takes = [t for t in ds.takes if str(t.meta.get("subject", "")) not in test]
        plan = make_plan(train_takes, ds.takes)
        click.echo(f"training:  model rate {plan.rate_hz} Hz, window {plan.window} samples "
                   f"({plan.window / plan.rate_hz:.2f} s), chosen from the {len(train_takes)} training takes"
                   + (" (test people left out)" if test else ""))
        warnings = validate(ds)
        if plan.skipped:
            warnings.append(plan.summary().replace("each is listed in the report", "listed below"))
        if warnings:
            click.echo("")
        for w in warnings:
            click.secho(f"warning: {w}", fg="yellow")
        for sk in plan.skipped[:MAX_LISTED]:
            click.echo(f"  skip {sk.take.path}: {sk.reason}")
        if len(plan.skipped) > MAX_LISTED:
            click.echo(f"  ... and {len(plan.skipped) - MAX_LISTED} more (train lists them all in report.md)")
