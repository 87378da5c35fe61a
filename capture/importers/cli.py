"""``gesture import`` and ``gesture export-data``: move data in and out of the kit."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from capture.errors import GestureError
from capture.fileio import building_folder
from capture.importers import FORMATS, KIND_TITLES, Notice, exporters, import_files
from capture.takes import Take, check_not_in_dataset, is_take_file, read_takes, save_takes


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
    @click.option("--label-from", "label_from", type=click.Choice(["auto", "name", "folder"]), default="auto", show_default=True,
                  help="where labels come from when --label is not given: auto = info.labels, else the file name up to its "
                       "first '.' (Edge Impulse's rule: wave.01.csv is 'wave'); name = the file name only; folder = the "
                       "name of the folder holding each file")
    @click.option("--subject", default=None, help="person who recorded the takes")
    @click.option("--accel-units", default=None, help="edge-impulse: force the acceleration unit (g, m/s2, mg)")
    @click.option("--gyro-units", default=None, help="edge-impulse: force the gyroscope unit (deg/s, rad/s)")
    @click.option("--quiet", is_flag=True, help="no progress; one summary line per kind of warning")
    def import_cmd(fmt: str, sources: tuple[Path, ...], data_dir: Path, test_dir: Path | None, label: str | None,
                   label_from: str, subject: str | None, accel_units: str | None, gyro_units: str | None, quiet: bool) -> None:
        """Import recordings from another tool into a dataset folder.

        FORMAT: arduino-csv (IMU_Capture.ino output), edge-impulse (JSON, CBOR or CSV files,
        a folder of them, or an export with info.labels, or its .zip), magic-wand (TensorFlow magic_wand
        logs: a folder or data.tar.gz). Bad files among several are skipped with a warning.
        """
        if fmt != "edge-impulse":
            given = [o for o, v in (("--accel-units", accel_units), ("--gyro-units", gyro_units), ("--test-data", test_dir)) if v]
            if fmt == "magic-wand" and label_from != "auto":
                raise GestureError("--label-from: not for magic-wand (its file names give the label and the person)")
            if given:
                raise GestureError(f"{', '.join(given)}: only for edge-impulse ({fmt} files have fixed units and no category)")
        if label and label_from != "auto":
            raise GestureError(f"--label {label} and --label-from {label_from}: give one")
        result = import_files(fmt, list(sources), label=label, subject=subject, accel_units=accel_units,
                              gyro_units=gyro_units, quiet=quiet, label_from=label_from)
        testing = [t for t in result.takes if t.meta.get("category") == "testing"]
        main = [t for t in result.takes if not (test_dir and t.meta.get("category") == "testing")]
        result.warnings += untrained_test_labels(testing, result.takes, data_dir, test_dir)
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


def untrained_test_labels(testing: list[Take], takes: list[Take], data_dir: Path, test_dir: Path | None) -> list[str]:
    """Testing takes whose label has no training take (in this import or already in DIR): the
    model cannot predict it, so `gesture train --test` scores them out; said now, not at training."""
    trained = {t.label for t in takes if t.meta.get("category") != "testing"}
    if data_dir.is_dir():
        trained |= {d.name for d in data_dir.iterdir() if d.is_dir() and any(is_take_file(f) for f in d.iterdir())}
    missing = Counter(t.label for t in testing if t.label not in trained)
    if not missing:
        return []
    n = sum(missing.values())
    labels = ", ".join(sorted(missing))
    if test_dir:
        return [Notice("test-labels", f"{n} testing take(s) into {test_dir} are labelled {labels}, which no training take "
                                      f"in {data_dir} has: the model cannot predict it, so `gesture train --test {test_dir}` "
                                      "leaves them unscored (import training takes of that label to test it)")]
    return [Notice("test-labels", f"{n} testing-category take(s) in {data_dir} are labelled {labels}, which no training take "
                                  "has: `gesture train` cannot train a label from testing takes alone and will refuse it "
                                  "(import with --test-data DIR to keep them apart, or import training takes of that label)")]


def _prefix(fmt: str) -> str:
    return {"arduino-csv": "arduino", "edge-impulse": "ei", "magic-wand": "mw"}[fmt]
