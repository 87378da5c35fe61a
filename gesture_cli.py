"""``gesture``: the one command that fronts every job.

Each package contributes its subcommands through a ``register(group)`` function, so this file
only wires them together and turns user mistakes (:class:`capture.errors.GestureError`) into a
one-line message and exit status 2 instead of a traceback. Heavy imports (TensorFlow, Streamlit)
happen inside the commands, so ``gesture --help`` and ``gesture devices`` start instantly.
"""
from __future__ import annotations

import errno
import importlib
import sys

import click

from capture.errors import GestureError

# module that defines ``register(group)``, in the order the data flows
COMMAND_MODULES = (
    "capture.cli",  # capture, firmware
    "capture.device_cli",  # devices
    "capture.virtual.cli",  # simulate
    "capture.importers.cli",  # import, export-data
    "training.data_cli",  # data
    "training.cli",  # train
    "training.export_cli",  # export, flash
    "training.push_cli",  # push
    "training.calibrate_cli",  # calibrate
    "dashboard.cli",  # dashboard
    "dashboard.demo",  # demo (the most downstream package: it runs every step)
)


# OSErrors of the machine, not of the kit: a full disk or quota, a read-only file system, no permission
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES})


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="gesture-kit")
def cli() -> None:
    """Gesture recognition for Arduino Nano 33 BLE Sense: record, train, export, watch."""


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(cli)


_register_all()


def main(argv: list[str] | None = None) -> int:
    try:
        rc = cli.main(args=argv, prog_name="gesture", standalone_mode=False)
        if isinstance(rc, int) and rc:  # a command's ctx.exit(N): e.g. `gesture verify` with mismatches
            return rc
    except GestureError as e:
        click.echo(f"error: {e}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        # the disk filled or the folder is read-only: the kit's writers leave the old file or folder
        # (capture.fileio), so one line says what and where
        where = f" ({e.filename})" if e.filename else ""
        click.echo(f"error: cannot write{where}: {e.strerror or e}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
