"""``gesture import`` and ``gesture export-data``: move data in and out of the kit."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from capture.errors import GestureError
from capture.fileio import building_folder
from capture.importers import FORMATS, KIND_TITLES, exporters, import_files
from capture.takes import check_not_in_dataset, read_takes, save_takes


def print_notices(warnings: list[str], quiet: bool) -> None:
    """Every notice, or under --quiet one summary line per kind (data problems never go silent)."""
    if not quiet:
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        return
    groups: dict[str, list[str]] = {}
    for w in warnings:
        groups.setdefault(getattr(w, "kind", "other"), []).append(w)
    for kind, items in groups.items():
        title = KIND_TITLES.get(kind, kind)
        click.echo(f"warning: {len(items)} x {title}; first: {items[0]}", err=True)


def register(group: click.Group) -> None:
    @group.command("import")
    @click.argument("fmt", metavar="FORMAT", type=click.Choice(FORMATS))
    @click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path), help="dataset folder to add takes to")
    @click.option("--test-data", "test_dir", default=None, type=click.Path(path_type=Path),
                  help="put takes of Edge Impulse's testing category here (for `gesture train --test`)")
    @click.option("--label", default=None, help="label for every take (default: info.labels, else the file name)")
    @click.option("--subject", default=None, help="person who recorded the takes")
    @click.option("--accel-units", default=None, help="edge-impulse: force the acceleration unit (g, m/s2, mg)")
    @click.option("--gyro-units", default=None, help="edge-impulse: force the gyroscope unit (deg/s, rad/s)")
    @click.option("--quiet", is_flag=True, help="no progress; one summary line per kind of warning")
    def import_cmd(fmt: str, sources: tuple[Path, ...], data_dir: Path, test_dir: Path | None, label: str | None,
                   subject: str | None, accel_units: str | None, gyro_units: str | None, quiet: bool) -> None:
        """Import recordings from another tool into a dataset folder.

        FORMAT: arduino-csv (IMU_Capture.ino output), edge-impulse (JSON, CBOR or CSV files,
        a folder of them, or an export with info.labels), magic-wand (TensorFlow magic_wand
        logs: a folder or data.tar.gz). Bad files among several are skipped with a warning.
        """
        if fmt != "edge-impulse":
            given = [o for o, v in (("--accel-units", accel_units), ("--gyro-units", gyro_units), ("--test-data", test_dir)) if v]
            if given:
                raise GestureError(f"{', '.join(given)}: only for edge-impulse ({fmt} files have fixed units and no category)")
        result = import_files(fmt, list(sources), label=label, subject=subject, accel_units=accel_units,
                              gyro_units=gyro_units, quiet=quiet)
        testing = [t for t in result.takes if t.meta.get("category") == "testing"]
        main = [t for t in result.takes if not (test_dir and t.meta.get("category") == "testing")]
        paths = save_takes(data_dir, main, prefix=_prefix(fmt), defaults=result.defaults)
        if test_dir and testing:
            save_takes(test_dir, testing, prefix=_prefix(fmt), defaults=result.defaults)
        print_notices(result.warnings, quiet)
        counts = Counter(t.label for t in main)
        line = f"imported {len(paths)} takes into {data_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if test_dir and testing:
            line += f"; {len(testing)} testing-category takes into {test_dir}"
        elif testing:
            line += f" ({len(testing)} of them in Edge Impulse's testing category; --test-data DIR keeps them apart)"
        if result.skipped:
            line += f"; {result.files} file(s) read, {result.skipped} skipped"
        click.echo(line)

    @group.command("export-data")
    @click.argument("fmt", metavar="FORMAT", type=click.Choice(exporters.FORMATS))
    @click.argument("data_dir", type=click.Path(path_type=Path))
    @click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
    def export_data(fmt: str, data_dir: Path, out_dir: Path) -> None:
        """Write a dataset as an Edge Impulse export: training/, testing/, info.labels."""
        if out_dir.exists() and not out_dir.is_dir():
            raise GestureError(f"--out {out_dir}: is a file; expected a folder for training/, testing/ and info.labels")
        check_not_in_dataset(out_dir, "--out", [data_dir])
        if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "info.labels").is_file():
            raise GestureError(f"--out {out_dir}: holds files that are not an earlier export (no info.labels); "
                               "choose an empty or new folder")
        takes, manifest = read_takes(data_dir)
        try:  # the export replaces the folder as a whole: a full disk leaves the previous one as it was
            with building_folder(out_dir) as tmp:
                paths = exporters.export(takes, fmt, tmp, manifest)
        except OSError as e:
            raise GestureError(f"--out {out_dir}: cannot write the export ({e.strerror or e}); nothing was "
                               "changed there") from None
        n_test = sum(1 for p in paths if p.parent.name == "testing")
        click.echo(f"wrote {len(paths)} files to {out_dir} ({len(paths) - n_test} training, {n_test} testing) and info.labels")


def _prefix(fmt: str) -> str:
    return {"arduino-csv": "arduino", "edge-impulse": "ei", "magic-wand": "mw"}[fmt]
