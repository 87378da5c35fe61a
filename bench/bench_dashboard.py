"""Dashboard benchmark: notification -> visible latency in a real browser, and memory over time.

The virtual board (classifier mode: the int8 model in TFLM on replayed takes, IMU at 100 Hz, one
PREDICTION every ``stride`` model samples) streams through bleak into the dashboard server;
headless Chromium shows the page in real time. A MutationObserver injected before the page loads
watches the "seq N · received t=..." caption next to the current gesture and, on the next
animation frame after a new seq appears (the frame that paints it), records
``Date.now() - received``: both are this machine's wall clock, so no clock offset is involved.
The streamlit process' RSS and the page's JS heap are sampled every few seconds to show that the
buffers stay bounded.

    python bench/bench_dashboard.py                  # 60 s
    python bench/bench_dashboard.py --seconds 600    # the 10-minute soak
    python bench/bench_dashboard.py --screenshot docs/img/dashboard.png

Target (issue): p95 < 300 ms at ~10 predictions/s with a 100 Hz raw trace; no memory growth.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, log, magic_wand  # first: puts ROOT on sys.path for the kit's imports below

OBSERVER = r"""
(() => {
  const gk = window.__gk = {visible: [], dom: [], last: null};
  const RE = /seq (\d+) · received t=([\d.]+)/;
  const check = () => {
    const el = document.querySelector('.st-key-gk-seq');
    if (!el) return;
    const m = RE.exec(el.textContent);
    if (!m || m[0] === gk.last) return;
    gk.last = m[0];
    const received = parseFloat(m[2]) * 1000;
    gk.dom.push([+m[1], Date.now() - received]);
    requestAnimationFrame(() => gk.visible.push([+m[1], Date.now() - received]));
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, characterData: true});
})();
"""

# the page's own metric tiles (notifications/s, gaps, server-side latency) as one line
METRICS_JS = r"""Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
  .map(e => e.innerText.replace(/\n+/g, ' ')).join(' | ')"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def save_screenshots(browser, path: Path) -> None:
    """The live tab at ``path`` and the model tab at ``path`` with a ``-model`` suffix."""
    browser.screenshot(path)
    browser.evaluate("document.querySelectorAll('[role=\"tab\"]')[1].click(), 0")
    time.sleep(3)  # the tab's charts are embedded when it becomes visible
    model_png = path.with_name(path.stem + "-model" + path.suffix)
    browser.screenshot(model_png)
    log(f"screenshots: {path}, {model_png}")


def small_model(out: Path) -> Path:
    from training.train import train

    log("training a small model (3 epochs, 30 takes per label) ...")
    return train(magic_wand(), out, epochs=3, limit_per_label=30, augment=1, seed=1, quiet=True).model_dir


def pct(a: np.ndarray, q: float) -> str:
    return f"{np.percentile(a, q):.0f}" if len(a) else "–"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="measured time after warm-up (600 = soak)")
    ap.add_argument("--model", type=Path, default=None, help="MODEL_DIR (default: train a small one)")
    ap.add_argument("--rate", type=float, default=100.0, help="IMU rate of the virtual board (Hz)")
    ap.add_argument("--refresh", type=float, default=None, help="the page's live refresh period (s; default: the app's)")
    ap.add_argument("--warmup", type=float, default=12.0, help="seconds before measuring (window fill, page load)")
    ap.add_argument("--screenshot", type=Path, default=None, help="also save a screenshot of the page here")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))
    from browser import Chromium, find_chromium
    from dashboard.server import DashboardServer

    if find_chromium() is None:
        print("## Dashboard\n\nskipped: chromium is not installed (apt-get install chromium)\n")
        return 0
    tmp = tempfile.TemporaryDirectory(prefix="gk-bench-dash-")
    model_dir = args.model or small_model(Path(tmp.name) / "model")
    cfg = json.loads((model_dir / "config.json").read_text())
    pred_rate = cfg["model_rate_hz"] / cfg["stride"]
    server = DashboardServer(simulate=True, model_dir=model_dir, data_dir=magic_wand(), port=0,
                             rate=args.rate, refresh=args.refresh)
    url = server.start()
    log(f"dashboard at {url} (pid {server.pid}); warming up {args.warmup:g} s ...")
    rss: list[tuple[float, float]] = []
    heap: list[tuple[float, float]] = []
    try:
        with Chromium(width=1400, height=1800) as browser:
            browser.add_script(OBSERVER)
            browser.navigate(url)
            browser.wait_for("document.querySelector('.st-key-gk-seq') !== null", timeout=120)
            time.sleep(args.warmup)
            browser.evaluate("window.__gk.visible.length = 0, window.__gk.dom.length = 0, 0")
            t0 = time.monotonic()
            load = [os.getloadavg()[0]]
            next_sample = 0.0
            while (elapsed := time.monotonic() - t0) < args.seconds:
                if elapsed >= next_sample:
                    rss.append((elapsed, rss_mb(server.pid)))
                    heap.append((elapsed, (browser.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
                                           or 0) / 2**20))
                    log(f"  {elapsed:5.0f} s  streamlit RSS {rss[-1][1]:.0f} MB  page JS heap {heap[-1][1]:.0f} MB  "
                        f"frames {browser.evaluate('window.__gk.visible.length')}")
                    next_sample += max(5.0, args.seconds / 60)
                time.sleep(0.5)
            load.append(os.getloadavg()[0])
            rss.append((args.seconds, rss_mb(server.pid)))
            heap.append((args.seconds, (browser.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0") or 0) / 2**20))
            visible = browser.evaluate("window.__gk.visible")
            dom = browser.evaluate("window.__gk.dom")
            page_figures = browser.evaluate(METRICS_JS)
            if args.screenshot:
                save_screenshots(browser, args.screenshot)
    finally:
        server.stop()
        tmp.cleanup()

    lat = np.array([v for _, v in visible], dtype=float)
    dom_lat = np.array([v for _, v in dom], dtype=float)
    seqs = [s for s, _ in visible]
    span = ((seqs[-1] - seqs[0]) & 0xFFFF) + 1 if seqs else 0
    first_rss = rss[1][1] if len(rss) > 1 else rss[0][1]  # after the first interval: caches warmed
    refresh = f"{args.refresh:g} s" if args.refresh else "the app's default"
    print("## Dashboard: notification -> visible in Chromium\n")
    print(f"Virtual board in classifier mode ({Path(model_dir).name}: {cfg['window']} samples at "
          f"{cfg['model_rate_hz']} Hz, one prediction every {cfg['stride']} samples = {pred_rate:g}/s) with raw IMU at "
          f"{args.rate:g} Hz over bleak, page refresh {refresh}, headless Chromium, {args.seconds:g} s measured "
          f"after {args.warmup:g} s warm-up.\n")
    print("| metric | value |")
    print("|---|---:|")
    print(f"| predictions displayed / emitted | {len(lat)} / {span} |")
    print(f"| latency p50 (notification -> painted) | {pct(lat, 50)} ms |")
    print(f"| latency p95 | **{pct(lat, 95)} ms** (target < 300) |")
    print(f"| latency max | {pct(lat, 100)} ms |")
    print(f"| latency p95, notification -> in DOM | {pct(dom_lat, 95)} ms |")
    print(f"| streamlit RSS after {rss[1][0] if len(rss) > 1 else 0:.0f} s -> end (max) | "
          f"{first_rss:.0f} -> {rss[-1][1]:.0f} MB ({max(r for _, r in rss):.0f}) |")
    print(f"| machine load average (1 min) at start / end | {load[0]:.1f} / {load[-1]:.1f} on {os.cpu_count()} cores |")
    print(f"| page JS heap start -> end (max) | {heap[0][1]:.0f} -> {heap[-1][1]:.0f} MB ({max(h for _, h in heap):.0f}) |")
    print()
    if page_figures:
        print(f"The page's own figures at the end: {page_figures}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
