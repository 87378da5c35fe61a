"""``gesture data DIR``: look at a dataset before training on it."""
from __future__ import annotations

from pathlib import Path

import click


def register(group: click.Group) -> None:
    @group.command("data")
    @click.argument("data_dir", type=click.Path(path_type=Path))
    def data_cmd(data_dir: Path) -> None:
        """Per-label counts, durations, rate, channels, subjects, and warnings for a dataset."""
        from training.dataset import load_dataset, summary_table, validate

        ds = load_dataset(data_dir)
        click.echo(summary_table(ds))
        warnings = validate(ds)
        if warnings:
            click.echo("")
        for w in warnings:
            click.secho(f"warning: {w}", fg="yellow")
