"""Headless Chromium driven over the DevTools protocol: the dashboard as a person sees it.

The end-to-end test, the latency benchmark and the docs screenshots need a real browser running
the page's JavaScript in real time (Streamlit renders everything client-side over a websocket,
so ``--dump-dom`` on a fresh load shows an empty shell). This is the smallest driver that does
that with what is installed anyway: Debian's ``chromium`` and the ``websockets`` package that
Streamlit depends on. No browser download, no Playwright.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
from contextlib import ExitStack
import time
import urllib.request
from pathlib import Path
from typing import Any

from capture.errors import GestureError

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--no-default-browser-check",
                  "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """One headless Chromium with one page, controlled over CDP (synchronous, single thread).

    Usage::

        with Chromium(width=1400, height=1000) as b:
            b.navigate(url)
            b.wait_for("document.querySelector('.st-key-gk-current') !== null", timeout=60)
            b.screenshot("page.png")
    """

    def __init__(self, executable: str | None = None, width: int = 1400, height: int = 1000,
                 startup_timeout: float = 30.0) -> None:
        self.executable = executable or find_chromium()
        if not self.executable:
            raise GestureError("chromium not found: install Debian's `chromium` package")
        self.width, self.height = width, height
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.profile: str | None = None
        self._ws = None
        self._stack = ExitStack()
        self._id = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Chromium":
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="gk-chromium-")
        cmd = [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
               "--remote-debugging-address=127.0.0.1", f"--window-size={self.width},{self.height}", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.startup_timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise GestureError(f"chromium did not open its DevTools port within {self.startup_timeout:g} s")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        page = None
        while page is None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                targets = json.load(r)
            page = next((t for t in targets if t.get("type") == "page"), None)
            if page is None:
                if time.monotonic() > deadline:
                    self.close()
                    raise GestureError("chromium started without a page target")
                time.sleep(0.05)
        self._stack = ExitStack()
        self._ws = self._stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024,
                                                     open_timeout=10))
        self.call("Page.enable")
        self.call("Runtime.enable")
        return self

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._stack.close()
            except Exception:  # noqa: BLE001 - the browser may already be gone
                pass
            self._ws = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    def __enter__(self) -> "Chromium":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ protocol
    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send one CDP command and return its result (events arriving meanwhile are dropped)."""
        if self._ws is None:
            raise GestureError("browser not started")
        self._id += 1
        my_id = self._id
        self._ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise GestureError(f"chromium did not answer {method} within {timeout:g} s")
            msg = json.loads(self._ws.recv(timeout=left))
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise GestureError(f"chromium {method}: {msg['error'].get('message')}")
                return msg.get("result", {})

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def add_script(self, source: str) -> None:
        """JavaScript run in every document before the page's own scripts."""
        self.call("Page.addScriptToEvaluateOnNewDocument", source=source)

    def evaluate(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            d = r['exceptionDetails']
            raise GestureError(f"page script failed: {d.get('exception', {}).get('description') or d.get('text')} in {expression[:80]!r}")
        return r.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, poll: float = 0.2) -> Any:
        """Poll ``expression`` in the page until it is truthy (real time); returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied {expression!r} within {timeout:g} s")
            time.sleep(poll)

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            h = self.evaluate("Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)") or self.height
            params["clip"] = {"x": 0, "y": 0, "width": self.width, "height": int(h), "scale": 1}
            params["captureBeyondViewport"] = True
        data = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        from capture.fileio import atomic_write_bytes

        atomic_write_bytes(path, data)
        return Path(path)

    def text(self, selector: str) -> str | None:
        """innerText of the first element matching a CSS selector (None if absent)."""
        return self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                             "return e ? e.innerText : null; })()")
