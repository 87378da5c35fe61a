"""The live dashboard page (``streamlit run dashboard/app.py -- --url URL --model DIR --data DIR``).

Layout only: the link lives in :mod:`dashboard.link` (one background thread per server process,
shared by every browser tab through ``st.cache_resource``), the charts in :mod:`dashboard.charts`.
The live predictions and the raw trace are not drawn by Streamlit: the link's buffers push every
notification through :mod:`dashboard.feed` to the live view (:mod:`dashboard.live_view`, a custom
component) that paints each one on the next animation frame. The other live parts (link health,
counts, events, save panels) are ``st.fragment(run_every=...)`` functions that read a snapshot of
the bounded buffers every few seconds, so the script thread never runs asyncio.
Start it with ``gesture dashboard`` (``dashboard.server.DashboardServer``) rather than by hand.

Script arguments (after ``--``): ``--url`` any transport URL (``virtual://classifier?...``),
``--ble NAME_OR_ADDRESS``, ``--model MODEL_DIR`` (labels, window, model panel), ``--data DIR``
(where "save as take" writes; default: the dataset the model was trained on), ``--refresh S``
(the Streamlit-drawn live parts), ``--live-port N`` (the live feed's port; 0 = any free one).
"""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

import streamlit as st

from capture.errors import GestureError
from capture.transport import as_url
from dashboard import charts
from dashboard.buffers import PredictionEvent
from dashboard.charts import display_name
from dashboard.correction import negative_label, save_window, window_take
from dashboard.escape import md_escape
from dashboard.feed import LiveFeed
from dashboard.link import LinkState, LinkThread
from dashboard.live_view import live_view
from dashboard.model_info import ModelInfo, load_model_info
from dashboard.push_panel import push_panel, running_model

# Every fragment rerun is requested by the browser and runs one at a time on the server, and the
# browser re-embeds a Vega chart on each update: polling the current gesture that way painted about
# a third of the predictions, p95 ~230 ms late (bench/bench_dashboard.py, the previous view). So
# predictions and raw samples go through the live feed, and Streamlit redraws only the slow parts.
DEFAULT_REFRESH_S = 3.0
SAVE_REFRESH_S = 2.0
STATUS_REFRESH_S = 1.0


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Script arguments; a bad one is reported on the page (never a SystemExit in Streamlit)."""
    ap = argparse.ArgumentParser(prog="dashboard/app.py", add_help=False, exit_on_error=False)
    ap.add_argument("--url", default=None)
    ap.add_argument("--ble", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--refresh", type=float, default=DEFAULT_REFRESH_S)
    ap.add_argument("--live-port", type=int, default=0)
    ap.add_argument("--cwd", default=None)  # the user's working directory: typed relative paths mean it
    try:
        args, unknown = ap.parse_known_args(argv)
    except argparse.ArgumentError as e:
        raise GestureError(f"dashboard arguments {' '.join(argv)!r}: {e}") from None
    if not 0.02 <= args.refresh <= 10:
        raise GestureError(f"--refresh {args.refresh:g}: expected seconds between 0.02 and 10")
    if not 0 <= args.live_port <= 65535:
        raise GestureError(f"--live-port {args.live_port}: expected a port number (0 = any free port)")
    return args, unknown


@st.cache_resource(show_spinner=False, on_release=lambda link: link.stop())
def get_link(target: str | None) -> LinkThread:
    """One link per server process and target: every browser tab watches the same board."""
    link = LinkThread()
    if target:
        link.connect(target)
    return link


@st.cache_resource(show_spinner=False, on_release=lambda feed: feed.stop())
def get_feed(target: str | None, port: int) -> LiveFeed:
    """The live feed of that link: one per server process, on the page's own address (this machine
    only unless the dashboard was started on another address)."""
    return LiveFeed(get_link(target).buffers, host=st.get_option("server.address") or "127.0.0.1", port=port).start()


@st.cache_data(show_spinner=False, max_entries=4)
def get_model(model_dir: str, stamp: float) -> ModelInfo:  # stamp: report.json mtime, to reload a retrained model
    return load_model_info(model_dir)


def _stamp(model_dir: str) -> float:
    path = Path(model_dir) / "report.json"
    return path.stat().st_mtime if path.exists() else 0.0


def label_names(model: ModelInfo | None, link: LinkThread) -> list[str]:
    if model is not None:
        return model.labels
    return [s for s in link.status.info.get("labels", "").split(",") if s]


# ----------------------------------------------------------------------------- connection panel

def status_box(link: LinkThread) -> None:
    s = link.status
    if s.state is LinkState.CONNECTED:
        info = s.info
        st.success(f"Connected to {md_escape(s.target)}")
        if s.address and s.address != s.target and not s.address.startswith("virtual:"):
            # (a virtual board's "address" names its kind: `--ble virtual:classifier` would not connect)
            # a name accepts any device advertising it: the address names this one
            st.caption(f"address {md_escape(s.address)} · pin this board with "
                       f"`gesture dashboard --ble {s.address.replace('`', '')}`")
        # plain text, not Markdown: the values come from the device (validated by decode_info)
        st.text(" · ".join(f"{k} {info[k]}" for k in ("board", "fw", "mode", "sensor") if k in info)
                + (f" · {info['rate']} Hz" if "rate" in info else ""))
        with st.expander("Device INFO"):
            st.text("\n".join(f"{k} = {v}" for k, v in info.items()))
    elif s.state is LinkState.CONNECTING:
        st.info(f"Connecting to {md_escape(s.target)} …" + (f" (attempt {s.attempt})" if s.attempt else ""))
    elif s.state is LinkState.RECONNECTING:
        wait = s.next_attempt_in() or 0.0
        most = link.backoff.max_attempts
        st.warning(f"{md_escape(s.reason or 'Device lost')}. Reconnecting: attempt {s.attempt}"
                   + (f" of {most}" if most else "") + f" in {wait:.1f} s")
    elif s.state is LinkState.LOST:
        st.error(f"Device lost: {md_escape(s.reason)}")
    elif s.state is LinkState.NO_BLUETOOTH:
        st.error(md_escape(s.reason))
    else:
        st.info("Not connected. Scan for a board or enter its name, address or a link URL.")


@st.fragment(run_every=STATUS_REFRESH_S)
def connection_status(link: LinkThread, model: ModelInfo | None, labels: list[str]) -> None:
    status_box(link)
    if label_names(model, link) != labels:
        # the board's INFO named its labels after the page ran (no --model): the live view and the
        # panels were handed the old ones, so run the whole page once with the new
        st.rerun(scope="app")


@st.fragment  # no timer: it changes only when clicked (a click reruns just this fragment, or the page)
def connection_controls(link: LinkThread, default_target: str | None) -> None:
    s = link.status
    target = st.text_input("Board name, address or URL", value=s.target or default_target or "",
                           placeholder="GestureKit  ·  ble://AA:BB:..  ·  virtual://classifier?model=DIR",
                           key="target")
    c1, c2 = st.columns(2)
    if c1.button("Connect", key="connect", disabled=not target.strip(), width="stretch",
                 help="connect, or reconnect to the same board, now"):
        from capture.virtual.url import absolute_url

        link.connect(absolute_url(as_url(target.strip()), st.session_state.get("cwd")))
        st.rerun()
    if c2.button("Disconnect", key="disconnect", disabled=s.state is LinkState.IDLE, width="stretch"):
        link.disconnect()
        st.rerun()
    if st.button("Scan for boards", key="scan", width="stretch"):
        try:
            with st.spinner("Scanning for boards advertising the gesture-kit service …"):
                st.session_state["boards"] = link.scan(timeout=5.0)
            st.session_state.pop("scan_error", None)
        except GestureError as e:
            st.session_state["scan_error"] = str(e)
            st.session_state["boards"] = []
    if st.session_state.get("scan_error"):
        st.error(md_escape(st.session_state["scan_error"]))
    boards = st.session_state.get("boards")
    if boards:
        pick = st.selectbox("Boards found", boards, format_func=lambda b: f"{b.name} ({b.address}, {b.rssi} dBm)",
                            key="board_pick")
        if st.button("Connect to selected board", key="connect_pick", width="stretch"):
            link.connect(pick.url)
            st.rerun()
    elif boards is not None and not st.session_state.get("scan_error"):
        st.caption("No board found: is it powered and running a gesture-kit sketch?")


# ----------------------------------------------------------------------------- live view

def link_health(link: LinkThread, snap) -> None:
    s = link.status
    h = st.columns(3)
    h[0].metric("notifications/s", f"{snap.notifications_per_s:.0f}")
    h[1].metric("predictions/s", f"{snap.predictions_per_s:.1f}")
    h[2].metric("sequence gaps", f"{s.frames_lost}", help="notifications lost on the link (u16 sequence gaps)")


def live_history(link: LinkThread, labels: list[str]) -> None:
    """The slow part (every --refresh s): link health and the per-gesture counts, a Vega chart that
    is costly to redraw. (Notification -> painted is measured by the live view, in the browser.)"""
    snap = link.buffers.snapshot(last=0)
    c1, c2 = st.columns([3, 2])
    with c1:
        link_health(link, snap)
    if snap.counts:
        with c2:
            st.markdown("**Predictions per gesture** (this connection)")
            st.altair_chart(charts.counts_chart(snap.counts, labels), width="stretch")


@st.fragment(run_every=SAVE_REFRESH_S)  # follows the shown prediction; a click reruns it at once
def save_panel(link: LinkThread, labels: list[str], model: ModelInfo | None, data_dir: Path | None) -> None:
    st.markdown("**Wrong prediction?** Save the window the model just saw as a take with the right label.")
    # the newest prediction when the click reaches the server: the live view shows each one within
    # about a frame, so that is the one on the screen (give or take the one in flight)
    ev: PredictionEvent | None = link.buffers.snapshot(last=1).latest
    has_raw = link.buffers.snapshot(last=0).raw_samples > 0
    window_s = model.window_s if model is not None else None
    reason = None
    if data_dir is None:
        reason = "no dataset folder: start the dashboard with --data DIR"
    elif window_s is None:
        reason = "no model window length: start the dashboard with --model MODEL_DIR"
    elif link.status.state is not LinkState.CONNECTED:
        reason = "not connected to a board"
    elif not has_raw:
        reason = "the board does not stream raw IMU samples, so there is no window to save"
    elif ev is None:
        reason = "no prediction shown yet"
    elif not labels:
        reason = "no labels known (pass --model MODEL_DIR)"
    c1, c2, c3 = st.columns([2, 2, 2])
    label = c1.selectbox("Correct label", labels or ["-"], key="take_label", disabled=reason is not None)
    subject = c2.text_input("Subject", value=_default_subject(), key="take_subject", disabled=reason is not None)
    clicked = c3.button("Save last window as take", key="save_take", disabled=reason is not None,
                        help=reason or f"saves {window_s:.1f} s of raw samples ending at the newest prediction into {data_dir}",
                        type="primary")
    if data_dir is not None:
        st.text(f"saves into {data_dir}")  # plain text: a path may hold Markdown characters
    if reason:
        st.caption(f"Saving disabled: {md_escape(reason)}.")
    elif clicked and ev is not None and window_s is not None and data_dir is not None:
        try:
            take = window_take(link.buffers, ev, label, window_s, predicted=display_name(ev, labels), subject=subject)
            path = save_window(data_dir, take)
            st.session_state["saved"] = f"Saved {take.n} samples as {label!r}: {path}"
        except GestureError as e:
            st.session_state["saved"] = None
            st.error(md_escape(e))
    if st.session_state.get("saved"):
        st.success(md_escape(st.session_state["saved"]))


@st.fragment(run_every=SAVE_REFRESH_S)
def events_panel(link: LinkThread, labels: list[str], model: ModelInfo | None, data_dir: Path | None) -> None:
    """The board's detected gestures (EVENT notifications), the false-activation counter, and one
    click to save a false activation's window as a negative take."""
    snap = link.buffers.snapshot(last=0)
    st.markdown("**Detected gestures** (the board's post-processor: what an always-on user feels)")
    m = st.columns(3)
    m[0].metric("events", f"{snap.n_events}", help="EVENT notifications this connection")
    m[1].metric("false activations", f"{snap.false_activations}", help="events you marked as false below")
    last = snap.events[-1] if snap.events else None
    m[2].metric("last event", charts.label_of(last.class_index, labels) if last else "–")
    if snap.events:
        rows = [f"#{e.index} {charts.label_of(e.class_index, labels)} {e.confidence:.0%}"
                + (" (false)" if e.index in snap.marked else "") for e in list(snap.events)[-8:]]
        st.text(" · ".join(reversed(rows)))  # plain text: labels come from the board
    elif link.status.state is LinkState.CONNECTED:
        st.caption("No events yet (a sketch exported before the post-processor sends none).")
    neg = negative_label(labels, model.unknown_label if model is not None else None)
    reason = None
    if last is None:
        reason = "no event yet"
    elif last.index in snap.marked:
        reason = "the last event is already marked"
    elif data_dir is None or model is None:
        reason = "start the dashboard with --model MODEL_DIR (and --data DIR)"
    elif snap.raw_samples == 0:
        reason = "the board does not stream raw IMU samples, so there is no window to save"
    clicked = st.button(f"Mark last event as a false activation (save its window as '{neg}')", key="mark_false",
                        disabled=reason is not None, help=reason)
    if clicked and last is not None and model is not None and data_dir is not None:
        try:
            take = window_take(link.buffers, last, neg, model.window_s,
                               predicted=charts.label_of(last.class_index, labels), subject=_default_subject())
            path = save_window(data_dir, take)
            link.buffers.mark_false(last.index)
            st.session_state["marked"] = f"Marked #{last.index} false; saved {take.n} samples as {neg!r}: {path}"
        except GestureError as e:
            st.error(md_escape(e))
    if st.session_state.get("marked"):
        st.success(md_escape(st.session_state["marked"]))


def _default_subject() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return ""


# ----------------------------------------------------------------------------- model panel

def model_panel(model: ModelInfo | None, error: str | None) -> None:
    if error:
        st.error(md_escape(error))
    if model is None:
        st.info("Start the dashboard with --model MODEL_DIR to see the model's labels, accuracy and size.")
        return
    r = model.report
    st.text(f"{model.model_dir}")
    st.markdown("**Labels:** " + ", ".join(f"`{l}`" for l in model.labels))
    if r.get("simulated"):
        st.caption("Trained and tested on the simulated hand (virtual://hand), not on recordings of people: "
                   "the accuracy says the pipeline works, not how it does on your gestures.")
    m = st.columns(5)
    if "int8_accuracy" in r:
        m[0].metric("int8 accuracy (TFLM)", f"{r['int8_accuracy']:.1%}")
    if "float_accuracy" in r:
        m[1].metric("float accuracy", f"{r['float_accuracy']:.1%}")
    m[2].metric("model", f"{model.model_bytes:,} B")
    if "arena_bytes" in r:
        m[3].metric("tensor arena", f"{r['arena_bytes']:,} B",
                    help=f"{r.get('arena_board_bytes', r['arena_bytes']):,} B reserved on the board")
    m[4].metric("window", f"{model.window_s:.2f} s")
    cm = model.confusion_matrix
    if cm is not None:
        st.markdown("**Confusion matrix** (int8 model on the test takes; rows = true label)")
        st.altair_chart(charts.confusion_chart(cm, model.labels), width="stretch")
    elif model.confusion_png is not None:
        st.image(str(model.confusion_png), caption="confusion matrix")
    pc = r.get("per_class")
    if isinstance(pc, dict) and pc:
        st.dataframe([{"label": k, **v} for k, v in pc.items()], hide_index=True)


# ----------------------------------------------------------------------------- page

def main() -> None:
    st.set_page_config(page_title="gesture-kit live", page_icon="✋", layout="wide")
    try:
        args, unknown = parse_args(sys.argv[1:])
    except GestureError as e:
        st.error(str(e))
        return
    if args.cwd:
        st.session_state["cwd"] = args.cwd
    target = args.url or (as_url(args.ble) if args.ble else None)
    link = get_link(target)
    model: ModelInfo | None = None
    model_error = None
    if args.model:
        try:
            model = get_model(args.model, _stamp(args.model))
        except GestureError as e:
            model_error = str(e)
    model = running_model(link, model)  # after a push: the pushed folder (or, unknown, the board's INFO labels)
    data_dir = Path(args.data) if args.data else (model.dataset if model is not None else None)
    labels = label_names(model, link)
    feed: LiveFeed | None = None
    feed_error = None
    try:
        feed = get_feed(target, args.live_port)
        feed.set_labels(labels)
    except OSError as e:  # the port is taken (--live-port) or the address is not this machine's
        feed_error = f"cannot serve the live view's feed on port {args.live_port}: {e.strerror or e}"

    with st.sidebar:
        st.subheader("Board")
        connection_status(link, model, labels)
        connection_controls(link, target)
        if unknown:
            st.warning(f"ignored unknown arguments: {' '.join(unknown)}")
    st.title("gesture-kit · live predictions")
    live, about, push = st.tabs(["Live", "Model", "Push"])
    with live:
        if feed is not None:
            live_view(feed, labels)
        else:
            st.error(md_escape(feed_error))
        # a fragment made here because its refresh period comes from the script arguments
        st.fragment(run_every=args.refresh)(live_history)(link, labels)
        st.divider()
        events_panel(link, labels, model, data_dir)
        st.divider()
        save_panel(link, labels, model, data_dir)
    with about:
        model_panel(model, model_error)
    with push:
        push_panel(link, model, st.session_state.get("cwd"))


main()
