"""``gesture data DIR``: look at a dataset before training on it."""
from __future__ import annotations

from pathlib import Path

import click

MAX_LISTED = 50


class _DataGroup(click.Group):
    """``gesture data DIR`` (the summary) beside ``gesture data fetch NAME``: a first argument
    that is not a subcommand is the dataset folder of ``show``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


def register(group: click.Group) -> None:
    @group.group("data", cls=_DataGroup)
    def data_group() -> None:
        """Look at a dataset (`gesture data DIR`) or fetch a public one (`gesture data fetch NAME`)."""

    @data_group.command("fetch")
    @click.argument("name")
    @click.option("--out", type=click.Path(path_type=Path), default=None,
                  help="dataset folder to create (default: ./data/NAME)")
    @click.option("--file", "file", type=click.Path(path_type=Path, dir_okay=False),
                  help="a copy of the archive you downloaded yourself (checked the same way)")
    @click.option("--url", help="download from this mirror instead of the official source (checked the same way)")
    def fetch_cmd(name: str, out: Path | None, file: Path | None, url: str | None) -> None:
        """Download a public dataset from its official source, check its sha256, import it, write its attribution.

        Known: magic_wand (TensorFlow Lite Micro's wing/ring/slope/negative recordings, 10 people).
        """
        from capture.importers.public import fetch

        n, where = fetch(name, out or Path("data") / name, file=file, url=url)
        click.echo(f"imported {n} takes into {where} (attribution: {where / 'ATTRIBUTION.md'})")

    @data_group.command("show")
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
