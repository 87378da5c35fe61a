"""Serving the dashboard: ``streamlit run dashboard/app.py`` as a managed subprocess.

Streamlit owns its own server, event loop and script threads, so the kit runs it as a child
process (exactly the command a user could type) and only manages its lifetime: refuse a busy
port up front with a clear message, wait until the health endpoint answers, surface Streamlit's
own stderr when it fails to start, and terminate it cleanly (SIGTERM, then SIGKILL).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from capture.errors import GestureError

APP = Path(__file__).resolve().parent / "app.py"
HEALTH = "/_stcore/health"


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _port_busy(address: str, port: int) -> str | None:
    """Why Streamlit could not listen on ``address:port``, or None.

    With SO_REUSEADDR, as Streamlit's own server (tornado) binds: without it, the connections of
    a dashboard stopped a moment ago (TIME-WAIT, up to 60 s) would make the port look busy.
    """
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM) as s:
        if os.name != "nt":  # on Windows SO_REUSEADDR would let two servers share the port
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError as e:
            return e.strerror or str(e)
    return None


def simulate_url(model_dir: str | Path, data_dir: str | Path | None = None, rate: float | None = None) -> str:
    """The ``virtual://classifier`` URL of the virtual board running ``model_dir``."""
    url = f"virtual://classifier?model={quote(str(model_dir), safe='/')}"
    if data_dir is not None:
        url += f"&data={quote(str(data_dir), safe='/')}"
    if rate is not None:
        url += f"&rate={rate:g}"
    return url


def _trained_on(model_dir: Path) -> Path | None:
    """The model's dataset as report.json names it, resolved here, in the caller's directory.

    Older reports hold the path as typed (``data/mine``); the server runs in the install folder,
    where that names nothing (or, worse, the bundled dataset), so it is resolved before handing over.
    """
    import json

    try:
        d = json.loads((model_dir / "report.json").read_text()).get("dataset")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(d, str) or not d or Path(d).is_absolute():
        return None  # absolute (or none): the page and the virtual board read it as it is
    path = Path(d).resolve()
    return path if path.is_dir() else None


def check_link(url: str) -> None:
    """Refuse at the command line a link URL the page could only fail on (in its sidebar): an unknown
    scheme, or a virtual board whose parameters or folders are wrong (``model=/nope``). The
    virtual board's source is built once here for that (cheap; the page builds its own)."""
    from capture.transport import SCHEMES, split_url

    scheme, rest = split_url(url)
    if scheme not in SCHEMES:
        raise GestureError(f"--url {url}: unknown link {scheme}://; expected "
                           + ", ".join(f"{s}://" for s in sorted(SCHEMES)) + " or a serial port")
    if scheme == "virtual" and not rest.startswith("firmware"):
        from capture.virtual.url import source_from_url

        source_from_url(url)


class DashboardServer:
    """``start()`` -> URL; ``wait(seconds or None)``; ``stop()``. Also a context manager.

    The link target is one of ``simulate=True`` (the virtual board in classifier mode with
    ``model_dir``), ``ble=NAME_OR_ADDRESS`` or ``url=`` (any transport URL); with none, the page
    opens with the scan/connect panel. ``data_dir`` is where "save as take" writes. The page's live
    view listens to a second port of the same process (``live_port``, any free one by default).
    """

    def __init__(self, *, simulate: bool = False, model_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 ble: str | None = None, url: str | None = None, save_dir: str | Path | None = None,
                 port: int = 8501, address: str = "127.0.0.1",
                 refresh: float | None = None, rate: float | None = None, python: str = sys.executable,
                 startup_timeout: float = 60.0, live_port: int = 0) -> None:
        if sum(bool(x) for x in (simulate, ble, url)) > 1:
            raise GestureError("choose one of --simulate, --ble NAME_OR_ADDRESS or --url URL")
        if simulate and model_dir is None:
            raise GestureError("--simulate needs a model: pass --model MODEL_DIR (written by `gesture train`)")
        for what, d in (("model", model_dir), ("data", data_dir)):
            if d is not None and not Path(d).is_dir():
                raise GestureError(f"--{what} {d}: no such directory")
        if model_dir is not None and not (Path(model_dir) / "model.tflite").is_file():
            raise GestureError(f"--model {model_dir}: no model.tflite there; expected a MODEL_DIR written by `gesture train`")
        self.model_dir = Path(model_dir).resolve() if model_dir is not None else None
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        if self.data_dir is None and self.model_dir is not None:
            self.data_dir = _trained_on(self.model_dir)
        # where "save as take" writes: the replayed dataset unless told otherwise (the demo keeps
        # the bundled dataset untouched)
        self.save_dir = Path(save_dir).resolve() if save_dir is not None else self.data_dir
        if simulate:
            url = simulate_url(self.model_dir, self.data_dir, rate)  # type: ignore[arg-type]
        elif url:
            from capture.virtual.url import absolute_url

            url = absolute_url(url)  # the server runs in another directory: resolve here, in the user's
        self.url_target = url
        self.cwd = Path.cwd()  # what a URL typed into the page is relative to
        self.ble = ble
        self.port = port
        self.address = address
        self.refresh = refresh
        self.live_port = live_port  # the live view's feed (dashboard.feed); 0 = any free port
        self.python = python
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self._log = None
        self._old_handlers: dict = {}

    def app_args(self) -> list[str]:
        args: list[str] = []
        if self.url_target:
            args += ["--url", self.url_target]
        if self.ble:
            args += ["--ble", self.ble]
        if self.model_dir is not None:
            args += ["--model", str(self.model_dir)]
        if self.save_dir is not None:
            args += ["--data", str(self.save_dir)]
        if self.refresh is not None:
            args += ["--refresh", f"{self.refresh:g}"]
        if self.live_port:
            args += ["--live-port", str(self.live_port)]
        args += ["--cwd", str(self.cwd)]
        return args

    def command(self) -> list[str]:
        return [self.python, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
                "--server.address", self.address, "--server.port", str(self.port),
                "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
                "--client.toolbarMode", "minimal",  # no "Deploy" button: this page is a local tool
                "--", *self.app_args()]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        """Start Streamlit and wait until it serves; the child never outlives this process: a
        failure or an interrupt while starting stops it, and SIGTERM/SIGHUP to this process (the
        main thread's) become SystemExit, so the ``finally`` of :func:`watch` stops it too."""
        if self.proc is not None:
            raise GestureError("dashboard server already started")
        self._exit_on_signals()
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _exit_on_signals(self) -> None:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return

        def exit_(signum, _frame) -> None:
            raise SystemExit(128 + signum)

        self._old_handlers = {}
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
                self._old_handlers[sig] = signal.signal(sig, exit_)

    def _start(self) -> str:
        if self.port == 0:
            self.port = free_port(self.address)
        busy = _port_busy(self.address, self.port)
        if busy:
            raise GestureError(f"cannot serve the dashboard on {self.address}:{self.port}: {busy} "
                               "(another dashboard running?); pass --port N")
        self._log = tempfile.TemporaryFile(prefix="gesture-dashboard-", suffix=".log")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        root = str(APP.parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=root, start_new_session=True)
        host = f"[{self.address}]" if ":" in self.address else self.address
        base = f"http://{host}:{self.port}"
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                tail = self.output_tail()
                self.stop()
                raise GestureError(f"streamlit exited with status {self.proc.returncode} before serving "
                                   f"the dashboard:\n{tail}")
            try:
                with urllib.request.urlopen(base + HEALTH, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                tail = self.output_tail()
                self.stop()
                raise GestureError(f"the dashboard did not answer on {base} within {self.startup_timeout:g} s:\n{tail}")
            time.sleep(0.2)
        self.url = base + "/"
        return self.url

    def output_tail(self, lines: int = 20) -> str:
        """The last lines Streamlit printed (it writes errors and tracebacks there)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait(self, duration: float | None = None) -> None:
        """Wait ``duration`` seconds, or until Ctrl-C (None); raise if Streamlit dies meanwhile."""
        if self.proc is None:
            raise GestureError("dashboard server not started")
        end = None if duration is None else time.monotonic() + duration
        while end is None or time.monotonic() < end:
            if self.proc.poll() is not None:
                raise GestureError(f"the dashboard server stopped (status {self.proc.returncode}):\n{self.output_tail()}")
            time.sleep(0.2 if end is None else max(0.0, min(0.2, end - time.monotonic())))

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        for sig, old in getattr(self, "_old_handlers", {}).items():
            signal.signal(sig, old)
        self._old_handlers = {}
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: no stray children
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)

    def __enter__(self) -> "DashboardServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def has_display() -> bool:
    """A browser can only open where there is a screen (not on CI or over ssh)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def watch(server: DashboardServer, duration: float | None, *, open_browser: bool) -> None:
    """Open the started server's page when there is a screen, serve until ``duration`` or Ctrl-C,
    and always stop the server (``gesture dashboard`` and ``gesture demo`` end the same way)."""
    import webbrowser

    import click

    if open_browser and has_display():
        webbrowser.open(server.url or "")
    else:
        click.echo(f"  open {server.url} in a browser to watch", err=True)
    try:
        server.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
