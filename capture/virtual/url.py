"""``virtual://`` URLs: an in-process virtual board behind the real BLE code path.

``open_transport("virtual://...")`` returns a :class:`capture.transport.ble.BleTransport` whose
bleak ``BleakClient`` talks to :class:`capture.virtual.ble.VirtualBleBackend`, so a demo or test
without a board runs the same client code as a real Nano 33 BLE. URL forms::

    virtual://hand?labels=wing,ring&board=nano33ble&people=8&loop=1   (the simulated hand: the default board)
    virtual://replay?data=data/mine&rate=119&channels=6&loop=1&speed=1   (replays a dataset you have)
    virtual://idle?rate=119
    virtual://classifier?model=models/wand&data=data/mine&rate=119   (data: default the model's dataset)
    virtual://classifier?model=models/wand&board=nano33ble_rev2   (board: what INFO names, for gesture push;
                                          push_disconnect_at=BYTES: drop the link once, mid-push;
                                          push_flip_at=OFFSET: flip a bit of that package byte on the air)
    virtual://firmware?board=nano33ble_rev2&data=data/mine   (the host-compiled sketch; default the simulated hand)
    virtual://firmware?socket=/tmp/gk-fw-.../ble.sock               (a `gesture simulate --firmware --ble`)

Common parameters (``capture.virtual.options``, shared with ``gesture simulate --serial``):
``speed`` (1 = real time, 0 = as fast as possible), ``mtu`` (ATT MTU the virtual board
negotiates, 23..517), ``loss`` (0..1, notifications dropped), ``disconnect_after`` (seconds of
device time before the board drops the link), ``seed``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, urlencode, urlparse

from capture import protocol as p
from capture.errors import GestureError
from capture.virtual.options import NAMES as LINK_NAMES
from capture.virtual.options import VirtualOptions, parse_link_options
from capture.virtual.sources import EventSource, HandSource, IdleSource, ReplaySource

COMMON = LINK_NAMES  # capture.virtual.options: the same on the serial board
PATH_PARAMS = ("data", "model")  # folders: relative ones mean the caller's working directory
PARAMS = {
    "hand": ("board", "rate", "channels", "labels", "people", "person", "limit", "rest", "loop") + COMMON,
    "replay": ("data", "rate", "channels", "loop", "shuffle", "labels", "limit", "rest") + COMMON,
    "idle": ("rate", "channels", "seconds") + COMMON,
    "classifier": ("model", "data", "board", "rate", "loop", "shuffle", "raw_imu", "push_disconnect_at", "push_flip_at") + COMMON,
    "firmware": ("socket", "board", "sketch", "data", "loop", "labels", "rest") + COMMON,
}


class _Query:
    """Typed access to URL parameters with errors that name the URL and the parameter."""

    def __init__(self, url: str, kind: str, pairs: list[tuple[str, str]]) -> None:
        self.url = url
        self.values: dict[str, str] = {}
        for key, value in pairs:
            if key not in PARAMS[kind]:
                raise GestureError(f"{url}: unknown parameter {key!r} for virtual://{kind}; "
                                   f"expected one of {', '.join(PARAMS[kind])}")
            self.values[key] = value

    def _num(self, key: str, default: float | None, conv: Callable[[str], float], what: str,
             lo: float | None = None, hi: float | None = None) -> float | None:
        if key not in self.values:
            return default
        try:
            v = conv(self.values[key])
        except ValueError:
            raise GestureError(f"{self.url}: {key}={self.values[key]!r} is not {what}") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            bounds = f"in {lo:g}..{hi:g}" if hi is not None else f">= {lo:g}"
            raise GestureError(f"{self.url}: {key}={self.values[key]} is out of range; expected {what} {bounds}")
        return v

    def number(self, key: str, default: float | None, lo: float | None = None, hi: float | None = None) -> float | None:
        return self._num(key, default, float, "a number", lo, hi)

    def integer(self, key: str, default: int | None, lo: int | None = None, hi: int | None = None) -> int | None:
        v = self._num(key, default, int, "an integer", lo, hi)
        return None if v is None else int(v)

    def flag(self, key: str, default: bool) -> bool:
        if key not in self.values:
            return default
        v = self.values[key].lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off"):
            return False
        raise GestureError(f"{self.url}: {key}={self.values[key]!r} is not a flag; expected 1 or 0")

    def path(self, key: str, required: bool) -> Path | None:
        if key not in self.values or not self.values[key]:
            if required:
                raise GestureError(f"{self.url}: missing {key}=DIR")
            return None
        path = Path(self.values[key]).expanduser()
        if not path.is_dir():
            raise GestureError(f"{self.url}: {key}={self.values[key]}: no such directory")
        return path


def _pairs(url: str) -> list[tuple[str, str]]:
    """The URL's ``key=value`` parameters in order; a GestureError naming the URL when malformed."""
    query = urlparse(url).query
    try:
        return parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise GestureError(f"{url}: malformed query {query!r}; expected key=value&key=value") from None


def absolute_url(url: str, base: str | Path | None = None) -> str:
    """``url`` with its relative ``data=``/``model=`` folders made absolute against ``base`` (the cwd).

    A URL is often handed to another process that runs elsewhere (the Streamlit server runs in
    the install folder), where ``model=models/mine`` would name a different folder or none: so
    whoever takes a URL from the user resolves it, once, where the user typed it.
    """
    parts = urlparse(url)
    if parts.scheme != "virtual" or not parts.query:
        return url
    try:
        pairs = _pairs(url)
    except GestureError:
        return url  # source_from_url reports the malformed query
    root = Path(base) if base is not None else Path.cwd()
    fixed = [(k, str(root / Path(v).expanduser()) if k in PATH_PARAMS and v else v) for k, v in pairs]
    return parts._replace(query=urlencode(fixed, safe="/")).geturl()


def for_label(url: str, label: str) -> str:
    """``url`` performing (hand) or replaying (replay) only ``label`` when it names no ``labels=``:
    ``gesture capture --url virtual://hand --label wing`` must record wings, not whatever comes."""
    parts = urlparse(url)
    kind = parts.netloc or parts.path.strip("/")
    if parts.scheme != "virtual" or kind not in ("hand", "replay"):
        return url
    try:
        pairs = _pairs(url)
    except GestureError:
        return url  # source_from_url reports the malformed query
    if any(k == "labels" for k, _ in pairs):
        return url
    if kind == "hand":
        from capture.virtual.hand import LABELS

        if label not in LABELS:
            raise GestureError(f"--label {label}: the simulated hand performs {', '.join(LABELS)}; record one of "
                               f"those, or add labels=... to the URL to record one of them under your label")
    return parts._replace(query=urlencode(pairs + [("labels", label)], safe="/,")).geturl()


def source_from_url(url: str) -> tuple[EventSource, VirtualOptions]:
    """Parse a ``virtual://KIND?...`` URL into the board's event source and link options."""
    parts = urlparse(url)
    kind = parts.netloc or parts.path.strip("/")
    if parts.scheme != "virtual" or kind not in PARAMS:
        raise GestureError(f"{url}: unknown virtual board {kind!r}; expected virtual://hand, virtual://replay?data=DIR, "
                           "virtual://idle or virtual://classifier?model=DIR")
    pairs = _pairs(url)
    if kind == "firmware":
        raise GestureError(f"{url}: virtual://firmware runs the compiled sketch, not a Python event source; "
                           "open it with open_transport()")
    q = _Query(url, kind, pairs)
    rate = q.number("rate", None if kind in ("hand", "classifier") else float(p.DEFAULT_RATE_HZ), lo=1, hi=4000)
    options = parse_link_options({k: v for k, v in q.values.items() if k in LINK_NAMES}, "ble", url)
    seed = options.faults.seed
    source: EventSource
    if kind in ("replay", "idle", "hand"):
        channels = q.integer("channels", 6)
        if channels not in (3, 6):
            raise GestureError(f"{url}: channels={channels}; expected 3 (accelerometer) or 6 (accelerometer + gyroscope)")
    labels = [s for s in q.values.get("labels", "").split(",") if s] or None
    from capture.boards import BOARDS, DEFAULT_BOARD

    board = q.values.get("board", DEFAULT_BOARD)
    if board not in BOARDS:
        raise GestureError(f"{url}: board={board!r}; expected one of {', '.join(BOARDS)}")
    if kind == "hand":
        source = HandSource(board=board, rate_hz=rate, channels=channels, labels=labels,
                            people=q.integer("people", 8, lo=1, hi=1000) or 8, rest_s=q.number("rest", 1.0, lo=0) or 0.0,
                            limit=q.integer("limit", None, lo=1), loop=q.flag("loop", True), seed=seed,
                            person=q.integer("person", None, lo=0))
    elif kind == "replay":
        source = ReplaySource(q.path("data", required=True), rate_hz=rate, channels=channels,
                              rest_s=q.number("rest", 1.0, lo=0), labels=labels, limit=q.integer("limit", None, lo=1),
                              loop=q.flag("loop", True), shuffle=q.flag("shuffle", False), seed=seed)
    elif kind == "idle":
        source = IdleSource(rate_hz=rate or p.DEFAULT_RATE_HZ, channels=channels, seconds=q.number("seconds", None, lo=0), seed=seed)
    else:
        model = q.path("model", required=True)
        try:
            from training.board_sim import ClassifierSource  # lazily: TensorFlow/TFLM load only for this kind
        except ModuleNotFoundError as e:
            raise GestureError(f"{url}: the classifier board needs training.board_sim ({e})") from None
        source = ClassifierSource(model, q.path("data", required=False), rate_hz=rate or BOARDS[board].imu_rate_hz,
                                  loop=q.flag("loop", True), shuffle=q.flag("shuffle", True), seed=seed,
                                  raw_imu=q.flag("raw_imu", True), board=board)
        # faults for gesture push: the board drops the link once it holds this many package bytes (resume);
        # a bit of the package byte at this offset flips on the air (the board refuses: BAD_HASH)
        source.push_target.faults.disconnect_at = q.integer("push_disconnect_at", None, lo=0)
        source.push_target.faults.flip_offset = q.integer("push_flip_at", None, lo=0)
    return source, options


def firmware_from_url(url: str):  # -> type[BaseBleakClient]
    """``virtual://firmware?...``: the bleak backend of a host-compiled sketch (capture.virtual.firmware).

    ``socket=PATH`` attaches to a board that ``gesture simulate --firmware --ble`` runs; otherwise
    the board is built and started here (``board``, ``sketch``, ``data``, ``loop``) and stopped at exit.
    """
    import atexit

    from capture.virtual import firmware as fw

    q = _Query(url, "firmware", _pairs(url))
    options = parse_link_options({k: v for k, v in q.values.items() if k in LINK_NAMES}, "ble", url)
    if "socket" in q.values:
        return fw.firmware_backend(q.values["socket"], options.faults, options.speed)
    board_key = q.values.get("board", "nano33ble")
    fw.check_board(board_key)
    labels = [s for s in q.values.get("labels", "").split(",") if s] or None
    board = fw.start_board(board=board_key, sketch=q.path("sketch", required=False), data=q.path("data", required=False),
                           speed=options.speed, loop=q.flag("loop", True), labels=labels,
                           rest_s=q.number("rest", 1.0, lo=0) or 0.0, seed=options.faults.seed)
    atexit.register(board.close)
    return board.backend(options.faults)


def open_url(url: str, **transport_options: object):  # -> BleTransport (import is lazy)
    """A not-yet-opened BleTransport to the virtual board described by ``url`` (capture.transport.SCHEMES)."""
    from capture.transport.ble import BleTransport
    from capture.virtual.ble import virtual_backend

    if (urlparse(url).netloc or urlparse(url).path.strip("/")) == "firmware":
        return BleTransport("virtual:firmware", backend=firmware_from_url(url), **transport_options)  # type: ignore[arg-type]
    source, opt = source_from_url(url)
    backend = virtual_backend(source, faults=opt.faults, mtu=opt.mtu, speed=opt.speed)
    kind = urlparse(url).netloc or "board"
    return BleTransport(f"virtual:{kind}", backend=backend, **transport_options)  # type: ignore[arg-type]
