"""Test scaffolding for the dashboard: a Transport whose board the test drives by hand.

The dashboard's link thread accepts any ``Transport``; these let a test decide exactly which
notifications arrive, when the board drops, and whether reconnecting works, without timing
luck. (The real BLE path is exercised through ``virtual://`` in test_dashboard_link.py and the
end-to-end browser test.)
"""
from __future__ import annotations

import asyncio
import http.client
import json
import queue
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from capture import protocol as p
from capture.errors import GestureError
from capture.transport import Message, Transport
from capture.transport.ble import NoBluetoothError
from tests.conftest import wait_until

INFO = {"proto": "1", "fw": "9.8.7", "board": "fake-nano", "sensor": "LSM9DS1", "mode": "classifier",
        "rate": "100", "ch": "ax,ay,az,gx,gy,gz", "labels": "negative,ring,slope,wing"}


class FakeTransport(Transport):
    def __init__(self, hub: "FakeHub", url: str) -> None:
        super().__init__()
        self.hub = hub
        self.url = url
        self.loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self.closed = False

    @property
    def connected(self) -> bool:
        return self._connected

    async def open(self) -> dict[str, str]:
        self.loop = asyncio.get_running_loop()
        self.hub.opens += 1
        if self.hub.open_error is not None:
            raise self.hub.open_error()
        self._connected = True
        self.info = dict(self.hub.info)
        return self.info

    async def close(self) -> None:
        self._connected = False
        self.closed = True

    async def send(self, cmd: p.Command, arg: int = 0) -> None:
        self.hub.sent.append((cmd, arg))

    # ---- driven by the test thread; delivered on the link's loop like a real backend
    def emit(self, ftype: p.FrameType, seq: int, t_us: int, payload: bytes) -> None:
        msg = Message(ftype, seq, t_us, payload, received=time.monotonic())
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._deliver, msg)

    def gap(self, n: int) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(lambda: setattr(self.stats, "frames_lost", self.stats.frames_lost + n))

    def drop(self, reason: str) -> None:
        assert self.loop is not None

        def lost() -> None:
            self._connected = False
            self._lost(reason)

        self.loop.call_soon_threadsafe(lost)


class FakeHub:
    """Makes FakeTransports (pass ``hub.open`` as the link's opener) and remembers them."""

    def __init__(self, info: dict[str, str] | None = None) -> None:
        self.info = dict(info or INFO)
        self.transports: list[FakeTransport] = []
        self.open_error: Callable[[], BaseException] | None = None  # set to make open() fail
        self.opens = 0
        self.sent: list[tuple[p.Command, int]] = []
        self._lock = threading.Lock()

    def open(self, url: str) -> FakeTransport:
        t = FakeTransport(self, url)
        with self._lock:
            self.transports.append(t)
        return t

    @property
    def current(self) -> FakeTransport:
        return self.transports[-1]

    def wait_connected(self, n: int = 1, timeout: float = 10.0) -> FakeTransport:
        """Wait until the n-th transport is open (the link thread opens it asynchronously)."""
        wait_until(lambda: len(self.transports) >= n and self.transports[n - 1].connected, timeout,
                   f"transport #{n} never connected")
        return self.transports[n - 1]


class SseClient:
    """A page of the live feed as the browser's EventSource sees it: one GET, then ``data:`` lines.

    A thread reads the stream and queues each event's JSON; ``next(type)`` returns the next one of
    that type (skipping others), ``closed`` is set when the server ends the stream.
    """

    def __init__(self, port: int, path: str, host: str = "127.0.0.1") -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=30)  # > the feed's keepalive period
        self.conn.request("GET", path, headers={"Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        self.events: queue.Queue[dict] = queue.Queue()
        self.comments: list[str] = []
        self.closed = threading.Event()
        if self.response.status == 200:
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self.closed.set()

    def _read(self) -> None:
        try:
            while True:
                line = self.response.fp.readline()
                if not line:
                    break
                text = line.decode().rstrip("\n")
                if text.startswith("data: "):
                    self.events.put(json.loads(text[6:]))
                elif text.startswith((":", "retry:")):
                    self.comments.append(text)
        except (OSError, ValueError):
            pass
        finally:
            self.closed.set()

    def next(self, type_: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {type_!r} event from the live feed within {timeout:g} s")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev.get("type") == type_:
                return ev

    def close(self) -> None:
        self.conn.close()


def prediction(class_index: int, scores: list[int]) -> bytes:
    return p.encode_prediction(p.Prediction(class_index, max(scores) if class_index != p.UNKNOWN_CLASS else 0,
                                            tuple(scores)))


def imu_stream(n: int, channels: int = 6, seed: int = 0) -> np.ndarray:
    """n samples of plausible int16 counts (a slow wave plus noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    x = 3000 * np.sin(t / 17.0 + np.arange(channels)) + rng.normal(0, 50, (n, channels))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def emit_imu(t: FakeTransport, counts: np.ndarray, rate_hz: float, per: int = 10, t0_us: int = 0, seq0: int = 0) -> int:
    """Send counts as IMU notifications of ``per`` samples; returns the device time after the last."""
    seq = seq0
    for k in range(0, len(counts), per):
        t.emit(p.FrameType.IMU, seq & 0xFFFF, (t0_us + int(round(k * 1e6 / rate_hz))) & 0xFFFFFFFF,
               p.encode_imu(counts[k:k + per]))
        seq += 1
    return t0_us + int(round(len(counts) * 1e6 / rate_hz))


def io_only_tflite(shape_in: tuple[int, ...], shape_out: tuple[int, ...]) -> bytes:
    """A TFLite flatbuffer with one int8 input and one int8 output tensor and no operators."""
    import flatbuffers
    import numpy as np
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def tensor(name: str, shape: tuple[int, ...]) -> "schema.TensorT":
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), np.array(shape, np.int32), schema.TensorType.INT8, 0
        return t

    sg = schema.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = [tensor("in", shape_in), tensor("out", shape_out)], [0], [1], []
    model = schema.ModelT()
    model.version, model.subgraphs, model.buffers, model.operatorCodes = 3, [sg], [schema.BufferT()], []
    b = flatbuffers.Builder(256)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def fake_model_dir(root: Path, labels: list[str], window: int = 50, rate: int = 25) -> Path:
    """A MODEL_DIR as `gesture train` lays it out, for pages that only read it (never run it).

    config.json is a real PreprocessConfig; report.json holds made-up but consistent figures;
    model.tflite is a flatbuffer with the right input and output tensors and no operators (the
    dashboard checks and shows it, never runs it).
    """
    import json

    from training.model_dir import sha256
    from training.preprocess import PreprocessConfig

    root.mkdir(parents=True, exist_ok=True)
    cfg = PreprocessConfig(labels=labels, window=window, model_rate_hz=rate, mean=[0, 0, 0], std=[1.0, 1.0, 1.0],
                           input_scale=0.05, input_zero_point=0, mult=[1, 1, 1])
    (root / "config.json").write_text(cfg.to_json())
    tflite = io_only_tflite((1, window, 3, 1), (1, len(labels)))
    (root / "model.tflite").write_bytes(tflite)
    n = len(labels)
    cm = [[5 if i == j else (1 if j == (i + 1) % n else 0) for j in range(n)] for i in range(n)]
    report = {"labels": labels, "int8_accuracy": 0.8333, "float_accuracy": 0.85, "model_bytes": len(tflite),
              "arena_bytes": 4321, "arena_board_bytes": 5000, "confusion_matrix": cm,
              "per_class": {l: {"precision": 0.83, "recall": 0.83, "support": 6} for l in labels},
              "window": window, "model_rate_hz": rate, "model_sha256": sha256(tflite)}
    (root / "labels.txt").write_text("\n".join(labels) + "\n")
    report["files_sha256"] = {name: sha256((root / name).read_bytes()) for name in ("config.json", "labels.txt")}
    (root / "report.json").write_text(json.dumps(report))
    return root


def no_adapter_error() -> BaseException:
    """What BleTransport raises on a machine without Bluetooth: a NoBluetoothError (bleak's error as context)."""
    try:
        try:
            raise FileNotFoundError(2, "No such file or directory")
        except FileNotFoundError:
            raise NoBluetoothError("cannot scan for BLE board name 'X': no Bluetooth adapter found "
                                   "(no system D-Bus socket, so no BlueZ)", "no system D-Bus socket, so no BlueZ") from None
    except GestureError as e:
        return e


def run_until(at, cond, what: str, timeout: float = 15.0):
    """Rerun the AppTest page until ``cond(at)``, failing on any page exception."""
    def ok() -> bool:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return cond(at)
    wait_until(ok, timeout, what)
    return at


def live_args(at) -> dict:
    """The arguments the page gives its live view (dashboard/live_view.py): labels, feed port and path."""
    (view,) = [c for c in at.get("component_instance") if c.proto.component_name == "dashboard.live_view.live_view"]
    return json.loads(view.proto.json_args)


__all__ = ["FakeHub", "FakeTransport", "INFO", "SseClient", "emit_imu", "fake_model_dir", "imu_stream", "live_args",
           "no_adapter_error", "prediction", "run_until", "wait_until"]
