"""``gesture dashboard``: serve the live dashboard for a board over BLE or the virtual board."""
from __future__ import annotations

from pathlib import Path

import click

from capture.errors import GestureError

DEFAULT_MODEL = Path("out/demo/model")  # where `gesture demo` writes its model


def register(group: click.Group) -> None:
    @group.command()
    @click.option("--ble", metavar="NAME_OR_ADDRESS", default=None, help="connect to this board over Bluetooth LE")
    @click.option("--simulate", is_flag=True, help="no board: the virtual board runs the model on replayed takes")
    @click.option("--url", default=None, help="any link URL instead (virtual://..., ble://...)")
    @click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
                  help=f"MODEL_DIR for labels and the model panel (--simulate default: {DEFAULT_MODEL})")
    @click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
                  help="dataset that 'save as take' writes to (default: the model's dataset)")
    @click.option("--port", type=click.IntRange(0, 65535), default=8501, show_default=True, help="0 = any free port")
    @click.option("--address", default="127.0.0.1", show_default=True, help="bind address (127.0.0.1 = this machine only)")
    @click.option("--live-port", type=click.IntRange(0, 65535), default=0,
                  help="port of the live view's feed, which the browser also reaches (default: any free port; "
                       "fix it to forward it, e.g. over ssh, with the page's)")
    @click.option("--no-browser", is_flag=True, help="only print the URL")
    @click.option("--duration", type=float, default=None, help="stop after S seconds (default: Ctrl-C)")
    def dashboard(ble: str | None, simulate: bool, url: str | None, model_dir: Path | None, data_dir: Path | None,
                  port: int, address: str, live_port: int, no_browser: bool, duration: float | None) -> None:
        """Watch live predictions: gesture dashboard [--ble NAME_OR_ADDRESS | --simulate [--model MODEL_DIR]]."""
        from dashboard.server import DashboardServer, check_link, watch

        if simulate and model_dir is None:
            if not (DEFAULT_MODEL / "model.tflite").is_file():
                raise GestureError(f"--simulate needs a trained model and {DEFAULT_MODEL} has none: run `gesture demo` "
                                   "or `gesture train DATA --out MODEL_DIR` first, or pass --model MODEL_DIR")
            model_dir = DEFAULT_MODEL
        server = DashboardServer(simulate=simulate, model_dir=model_dir, data_dir=data_dir, ble=ble, url=url,
                                 port=port, address=address, live_port=live_port)
        if url:
            check_link(server.url_target)  # here, not only in the page's sidebar
        link = server.url_target or (f"ble://{ble}" if ble else "none (scan from the page)")
        no_ble = None if server.url_target else bluetooth_unavailable()
        page = server.start()
        click.secho(f"dashboard: {page}", fg="green", err=True)
        click.echo(f"  link: {link}", err=True)
        if no_ble:
            click.echo(f"  warning: no Bluetooth on this machine ({no_ble}): the page cannot reach a board over BLE; "
                       "use --simulate, or --url virtual://... / a serial port", err=True)
        if address not in ("127.0.0.1", "localhost", "::1"):
            click.echo(f"  warning: bound to {address}: anyone who can reach this machine can see the page "
                       "and save takes", err=True)
        watch(server, duration, open_browser=not no_browser)


def bluetooth_unavailable(timeout: float = 0.5) -> str | None:
    """Why this machine cannot do BLE (said in the terminal too, not only on the page), or None."""
    import asyncio

    from capture.transport.ble import NoBluetoothError, scan

    try:
        asyncio.run(scan(timeout))
    except NoBluetoothError as e:
        return e.reason
    except GestureError:
        return None  # some other scan failure: the page reports it when the user scans
    return None
