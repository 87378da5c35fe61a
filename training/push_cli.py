"""``gesture push``: a trained model into a running board over BLE, no cable (training.push)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from capture import protocol as p


def confirmation(result, model_dir: Path) -> str:  # result: training.push.PushResult
    """The lines that say what the board runs now, from its INFO after the push."""
    info = result.info
    slot = info.get("slot", "?")
    slot = "built-in" if slot == p.INFO_SLOT_BUILTIN else slot
    kb_s = result.bytes_per_s / 1000
    resumes = f", {result.resumed} resume{'s' if result.resumed != 1 else ''}" if result.resumed else ""
    return (f"pushed {model_dir} ({result.status.total:,} bytes) in {result.seconds:.2f} s ({kb_s:.1f} kB/s{resumes})\n"
            f"the board runs model {info.get('model', '?')} from slot {slot}\n"
            f"labels: {info.get('labels', '?')}")


def register(group: click.Group) -> None:
    @group.command("push")
    @click.argument("model_dir", type=click.Path(path_type=Path))
    @click.option("--ble", default=None, metavar="NAME|ADDRESS", help="the board's BLE name (GestureKit) or address")
    @click.option("--url", default=None, help="a link URL instead: ble://NAME_OR_ADDRESS or virtual://classifier?model=DIR")
    @click.option("--quiet", is_flag=True, help="no progress bar")
    def push_cmd(model_dir: Path, ble: str | None, url: str | None, quiet: bool) -> None:
        """Put a trained MODEL_DIR into a running push-ready classifier over BLE: checked against the
        board before a byte is sent, resumed after a disconnect, confirmed by the board's INFO."""
        from tqdm import tqdm

        from capture.errors import GestureError
        from training.push import push

        if url is not None:
            from capture.virtual.url import absolute_url

            url = absolute_url(url)
        bar: tqdm | None = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if quiet:
                return
            if bar is None:
                bar = tqdm(total=total, desc="push", unit="B", unit_scale=True, unit_divisor=1000, file=sys.stderr,
                           leave=True, postfix={"resumes": 0})
            bar.update(done - bar.n)

        def resumed(count: int) -> None:
            if bar is not None:
                bar.set_postfix({"resumes": count})

        try:
            result = push(model_dir, ble=ble, url=url, progress=progress, on_resume=resumed)
        except GestureError:
            if bar is not None:
                bar.close()
            raise
        if bar is not None:
            bar.close()
        click.echo(confirmation(result, model_dir))
