"""``gesture import`` and ``gesture export-data``: move data in and out of the kit."""
from __future__ import annotations

from pathlib import Path

import click

from capture.importers import FORMATS, import_files
from capture.importers import exporters
from capture.takes import read_takes, save_takes


def register(group: click.Group) -> None:
    @group.command("import")
    @click.argument("fmt", metavar="FORMAT", type=click.Choice(FORMATS))
    @click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path), help="dataset folder to add takes to")
    @click.option("--label", default=None, help="label for every take (default: from the file name)")
    @click.option("--subject", default=None, help="person who recorded the takes")
    def import_cmd(fmt: str, sources: tuple[Path, ...], data_dir: Path, label: str | None, subject: str | None) -> None:
        """Import recordings from another tool into a dataset folder.

        FORMAT: arduino-csv (IMU_Capture.ino output), edge-impulse (CSV or JSON),
        magic-wand (TensorFlow magic_wand logs: a folder or data.tar.gz).
        """
        result = import_files(fmt, list(sources), label=label, subject=subject)
        paths = save_takes(data_dir, result.takes, prefix=_prefix(fmt), defaults=result.defaults)
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)
        counts: dict[str, int] = {}
        for t in result.takes:
            counts[t.label] = counts.get(t.label, 0) + 1
        click.echo(f"imported {len(paths)} takes into {data_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

    @group.command("export-data")
    @click.argument("fmt", metavar="FORMAT", type=click.Choice(exporters.FORMATS))
    @click.argument("data_dir", type=click.Path(path_type=Path))
    @click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
    def export_data(fmt: str, data_dir: Path, out_dir: Path) -> None:
        """Write a dataset's takes as Edge Impulse CSV or JSON files."""
        takes, _ = read_takes(data_dir)
        paths = exporters.export(takes, fmt, out_dir)
        click.echo(f"wrote {len(paths)} files to {out_dir}")


def _prefix(fmt: str) -> str:
    return {"arduino-csv": "arduino", "edge-impulse": "ei", "magic-wand": "mw"}[fmt]
