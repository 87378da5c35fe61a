"""The page's live view: a Streamlit custom component that paints every notification the feed pushes.

The component is a folder of plain HTML and JavaScript shipped in the package
(``dashboard/live/``: no bundler, no library, nothing fetched at run time, so it works offline).
Streamlit serves it in an iframe and hands it this module's arguments on each full page run:
where the live feed is (port and secret path) and the labels. From then on the view listens to
the feed itself (``EventSource``) and draws on the next animation frame after each event: the
current gesture and confidence, a bar per label, the last 30 s of predictions and the raw
accelerometer trace. ``live.js`` speaks Streamlit's protocol and hands the canvases to a worker
(``live_worker.js`` running ``live_paint.js``) that reads the feed and paints on OffscreenCanvases:
Streamlit keeps the page's main thread busy re-rendering its fragments, and waiting for it was most
of the latency tail (the same engine runs on the page where a browser has no OffscreenCanvas).
It measures, per prediction, the receive time on the host (sent in the event) against
``Date.now()`` after the frame that draws it, and shows p50/p95 under the view; the benchmark
(bench/bench_dashboard.py) reads the same records (``window.gkLive.paints`` in the iframe).
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Sequence

from dashboard.feed import LiveFeed

NAME = "live_view"  # Streamlit names it dashboard.live_view.live_view: the iframe's URL has that name
KEY = "gk-live"  # the element's key: the iframe (and its open feed) survives page reruns


def frontend_dir() -> Path:
    """``dashboard/live/`` as installed (package data), found like every other file of the kit's own."""
    path = Path(str(importlib.resources.files("dashboard") / "live"))
    if not (path / "index.html").is_file():
        from capture.errors import GestureError

        raise GestureError(f"the dashboard's live view is missing ({path / 'index.html'}); reinstall gesture-kit")
    return path


def live_view(feed: LiveFeed, labels: Sequence[str], *, key: str = KEY) -> None:
    """Place the live view here. Declared on every run (cheap: the registry keeps one entry per
    name) because Streamlit registers a component with the running app only inside a script run."""
    import streamlit.components.v1 as components

    component = components.declare_component(NAME, path=str(frontend_dir()))
    component(feed={"port": feed.port, "path": feed.path}, labels=list(labels), key=key, default=None)
