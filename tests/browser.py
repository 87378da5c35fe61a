"""Headless Chromium for the dashboard's end-to-end test, its benchmark and the docs pictures.

Driven by Playwright (PyPI ``playwright``, whose wheel bundles its driver) against Debian's
``/usr/bin/chromium``: ``executable_path`` points at the system browser, so nothing is downloaded
(never run ``playwright install``). Streamlit renders the page client-side over a websocket, so a
real browser running the page's JavaScript is what shows what a person sees.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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
    """One headless Chromium with one page (synchronous).

    Usage::

        with Chromium(width=1400, height=1000) as b:
            b.navigate(url)
            live = b.frame('iframe[title="dashboard.live_view.live_view"]', timeout=60)
            b.screenshot("page.png")
    """

    def __init__(self, executable: str | None = None, width: int = 1400, height: int = 1000) -> None:
        self.executable = executable or find_chromium()
        if not self.executable:
            raise RuntimeError("chromium not found: install Debian's `chromium` package")
        self.width, self.height = width, height
        self._pw: Any = None
        self._browser: Any = None
        self.page: Any = None

    def start(self) -> "Chromium":
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=self.executable, headless=True,
                                                 args=list(CHROMIUM_FLAGS))
        self.page = self._browser.new_page(viewport={"width": self.width, "height": self.height})
        return self

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._pw is not None:
            self._pw.stop()
            self._pw = None

    def __enter__(self) -> "Chromium":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def navigate(self, url: str) -> None:
        self.page.goto(url)

    def add_script(self, source: str) -> None:
        """Run ``source`` in every document before the page's own scripts."""
        self.page.add_init_script(source)

    def evaluate(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def wait_for(self, expression: str, timeout: float, poll: float = 0.2) -> Any:
        """The first truthy value of ``expression``, polled every ``poll`` s; TimeoutError after ``timeout`` s."""
        handle = self.page.wait_for_function(expression, timeout=timeout * 1000, polling=int(poll * 1000))
        return handle.json_value()

    def frame(self, selector: str, timeout: float) -> Any:
        """The document inside the iframe ``selector`` (a custom component), once it is loaded.

        Streamlit may replace the iframe element while the page settles, so this waits for one
        whose document runs, rather than taking the first element it sees."""
        self.page.wait_for_selector(selector, timeout=timeout * 1000)
        handle = self.page.query_selector(selector)
        frame = handle.content_frame() if handle is not None else None
        if frame is None:
            raise TimeoutError(f"no document in {selector}")
        frame.wait_for_load_state("load", timeout=timeout * 1000)
        return frame

    @staticmethod
    def wait_for_in(frame: Any, expression: str, timeout: float, poll: float = 0.2) -> Any:
        """:meth:`wait_for` inside a frame from :meth:`frame`."""
        handle = frame.wait_for_function(expression, timeout=timeout * 1000, polling=int(poll * 1000))
        return handle.json_value()

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def text(self, selector: str) -> str | None:
        el = self.page.query_selector(selector)
        return None if el is None else el.inner_text()
