"""The dashboard's push panel: a retrained model into the watched board over BLE, no cable.

Pick a model folder, see what changes against the model the board runs (labels, window, accuracy,
size), push it with a progress bar. The push goes through the link the page already has open
(``LinkThread.submit``: a board takes one central), with ``training.push.push_package``, the code
``gesture push`` runs. Afterwards the board's INFO (read again over the link) names the running
model's sha256 and labels; :func:`running_model` then hands the page the pushed folder, so the live
view, the model tab and "save as take" use the new labels and window. Models pushed from this
server are remembered by sha256 for every tab (:data:`PUSHED`); a board that runs a model the page
does not know (pushed from the terminal) is shown with the labels its INFO gives.
"""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import streamlit as st

from capture import protocol as p
from capture.errors import GestureError
from dashboard.escape import md_escape
from dashboard.link import LinkState, LinkThread
from dashboard.model_info import ModelInfo, load_model_info

PUSHED: dict[str, Path] = {}  # model sha256 -> the folder this server pushed it from (every tab)
RECONNECT_WAIT_S = 30.0
PANEL_REFRESH_S = 2.0


def _sha(model: ModelInfo | None) -> str | None:
    sha = model.report.get("model_sha256") if model is not None else None
    return sha if isinstance(sha, str) else None


def running_model(link: LinkThread, model: ModelInfo | None) -> ModelInfo | None:
    """The model the board runs, as far as the page knows it: ``model`` (``--model``) while the
    board's INFO names no other; the folder pushed from here when INFO names that; None when the
    board runs a model the page has no folder for (the labels then come from INFO)."""
    sha = link.status.info.get("model")
    if not sha or sha == _sha(model):
        return model
    folder = PUSHED.get(sha)
    if folder is None:
        return None
    try:
        return load_model_info(folder)
    except GestureError:
        return None


def _rows(running: ModelInfo | None, info: dict[str, str], new: ModelInfo, package_bytes: int) -> list[dict[str, str]]:
    def acc(m: ModelInfo | None) -> str:
        v = m.report.get("int8_accuracy") if m is not None else None
        return f"{v:.1%}" if isinstance(v, (int, float)) else "–"

    old_labels = running.labels if running is not None else [s for s in info.get("labels", "").split(",") if s]
    rows = [
        ("labels", ", ".join(old_labels) or "–", ", ".join(new.labels)),
        ("window", f"{running.window_s:.2f} s" if running is not None else "–", f"{new.window_s:.2f} s"),
        ("int8 accuracy", acc(running), acc(new)),
        ("model size", f"{running.model_bytes:,} B" if running is not None else "–", f"{new.model_bytes:,} B"),
        ("sha256", (info.get("model") or _sha(running) or "–")[:16], (_sha(new) or "–")[:16]),
    ]
    out = [{"what": name, "on the board": a, "pushed": b, "changes": "yes" if a != b else ""} for name, a, b in rows]
    out.append({"what": "package", "on the board": "", "pushed": f"{package_bytes:,} B", "changes": ""})
    return out


def _reason(link: LinkThread) -> str | None:
    s = link.status
    if s.state is not LinkState.CONNECTED:
        return "not connected to a board"
    if s.info.get("mode") != "classifier":
        return f"the board runs the {s.info.get('mode', 'unknown')} sketch; pushing needs an exported classifier"
    if "model" not in s.info:
        return "the board's firmware has no transfer service (its INFO names no running model): export and flash once by cable"
    return None


def _package(folder: Path, board: str) -> bytes:
    """The package for the board INFO names, refused here if it cannot fit or run."""
    from capture.boards import BOARDS
    from capture.errors import DataError
    from training.package import build_package

    if board not in BOARDS:
        raise GestureError(f"the board's INFO names board {board!r}, not one of {', '.join(BOARDS)}")
    try:
        package = build_package(folder, board)
    except DataError as e:
        raise GestureError(f"not pushed: {e}") from None
    from training.push import check_package

    check_package(package, {"board": board}, str(folder))
    return package


def _push(link: LinkThread, package: bytes, bar: Any) -> Any:
    """Push over the link's connection, painting ``bar``; returns training.push.PushResult."""
    from training.push import push_package

    done = {"bytes": 0, "total": len(package)}
    lock = threading.Lock()

    def progress(n: int, total: int) -> None:
        with lock:
            done["bytes"], done["total"] = n, total

    async def reconnect() -> Any:  # the link thread reconnects by itself: wait for its new connection
        old = link.transport
        deadline = time.monotonic() + RECONNECT_WAIT_S
        while time.monotonic() < deadline:
            t = link.transport
            client = getattr(t, "client", None)
            if t is not old and link.status.state is LinkState.CONNECTED and client is not None and client.is_connected:
                return client
            await asyncio.sleep(0.1)
        raise GestureError(f"the board disconnected during the push and was not back within {RECONNECT_WAIT_S:g} s")

    async def job(transport: Any) -> Any:
        client = getattr(transport, "client", None)
        if client is None:
            raise GestureError("the link to the board is not BLE: pushing needs a BLE link")
        result = await push_package(client, package, progress=progress, reconnect=reconnect)
        await link.transport.send(p.Command.INFO)  # type: ignore[union-attr]  # the page's INFO follows the board
        return result

    future = link.submit(job)
    t0 = time.monotonic()
    while True:
        try:
            return future.result(timeout=0.1)
        except FutureTimeout:
            with lock:
                n, total = done["bytes"], done["total"]
            rate = n / max(1e-6, time.monotonic() - t0) / 1000
            bar.progress(min(1.0, n / max(1, total)), text=f"{n:,} of {total:,} bytes · {rate:.1f} kB/s")


@st.fragment(run_every=PANEL_REFRESH_S)  # follows the link (connecting, INFO); a click reruns it at once
def push_panel(link: LinkThread, running: ModelInfo | None, cwd: str | None) -> None:
    """The Push tab."""
    st.markdown("**Push a model to the board** over BLE, no cable: the board checks it, switches "
                "between two windows and keeps its previous model if anything is wrong.")
    typed = st.text_input("Model folder (written by gesture train)", key="push_dir",
                          placeholder="models/retrained").strip()
    if not typed:
        st.caption("Retrain (gesture train DATA --out MODEL_DIR) after saving takes, then enter the folder here.")
        _last()
        return
    folder = Path(typed).expanduser()
    if not folder.is_absolute() and cwd:
        folder = Path(cwd) / folder
    try:
        new = load_model_info(folder)
    except GestureError as e:
        st.error(md_escape(e))
        return
    info = link.status.info
    reason = _reason(link)
    package: bytes | None = None
    if reason is None:
        try:
            package = _package(folder, info.get("board", ""))
        except GestureError as e:
            reason = str(e)
    st.dataframe(_rows(running, info, new, len(package) if package else 0), hide_index=True)
    if reason:
        st.caption(f"Push disabled: {md_escape(reason)}.")
    same = _sha(new) is not None and _sha(new) == info.get("model")
    if same:
        st.caption("The board already runs this model.")
    if st.button("Push to the board", key="push", type="primary", disabled=reason is not None or package is None):
        assert package is not None
        bar = st.progress(0.0, text="starting …")
        try:
            result = _push(link, package, bar)
        except GestureError as e:
            st.session_state["push_result"] = ("error", str(e))
        else:
            sha = result.info.get("model", "")
            PUSHED[sha] = folder
            slot = result.info.get("slot", "?")
            resumes = f", {result.resumed} resume(s)" if result.resumed else ""
            st.session_state["push_result"] = (
                "ok", f"Pushed {folder.name}: {result.status.total:,} bytes in {result.seconds:.2f} s "
                      f"({result.bytes_per_s / 1000:.1f} kB/s{resumes}). The board runs model {sha[:16]}… from slot "
                      f"{'built-in' if slot == p.INFO_SLOT_BUILTIN else slot}; labels {result.info.get('labels', '')}.")
        st.rerun(scope="app")  # the whole page: the live view takes the new labels
    _last()


def _last() -> None:
    last = st.session_state.get("push_result")
    if last is None:
        return
    kind, text = last
    (st.success if kind == "ok" else st.error)(md_escape(text))
