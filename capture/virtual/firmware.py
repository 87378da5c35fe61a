"""The sketches' own board code as the virtual board: each ``.ino`` compiled for the host.

``gesture simulate --firmware`` and ``virtual://firmware?...`` run the capture sketch
(``firmware/capture/capture.ino``) or an exported classifier sketch, unmodified, compiled with g++
against the small Arduino shim in ``firmware/shim`` (virtual device clock, USB serial on a pty,
LSM9DS1 / BMI270 replaying recorded takes at the sensor's own rate, ArduinoBLE with the
controller's flow control; each header says what of the real core or library it models). So
"the same bytes as the firmware" holds by construction: the bytes *are* the firmware's.

Where the Python virtual board (``capture.virtual.serial_board`` / ``ble`` with
``capture.virtual.sources``) still serves: ``gesture simulate`` without ``--firmware`` and the
``virtual://replay|idle|classifier`` URLs, for machines without g++ and for link tests that need
what the firmware cannot do (arbitrary rates such as 1000 Hz on any board, 3-channel streams,
replaying takes at their own rate, ``speed=0`` unpaced runs).

Binaries are cached in the user cache (``$XDG_CACHE_HOME/gesture-kit/firmware``), keyed by a hash
of every source and flag, so they are rebuilt exactly when a source changes.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from capture import protocol as p
from capture.boards import BOARDS, get_board
from capture.errors import GestureError
from capture.resources import capture_sketch_dir, firmware_dir, user_cache_dir

WARNINGS = ("-Wall", "-Wextra", "-Werror")
BOARD_IMU_RATE = {key: b.imu_rate_hz for key, b in BOARDS.items()}  # what each IMU library's begin() configures
FLASH_CUT_EXIT = 75  # exit status of the shim's injected power cut (GK_SHIM_FLASH_CUT)
DROPS_RE = re.compile(r"dropped: serial=(\d+) ble=(\d+)(?: imu=(\d+))?")


def cache_root() -> Path:
    """Where compiled boards live: the user cache, never the repository."""
    return user_cache_dir() / "firmware"


def gxx() -> str:
    path = shutil.which("g++")
    if path is None:
        raise GestureError("g++ not found: the host-compiled firmware needs it (Debian package g++: apt-get install g++)")
    return path


def check_board(board: str) -> None:
    get_board(board)  # GestureError listing the choices


def shim_dir() -> Path:
    return firmware_dir() / "shim"


def parse_drops(text: str) -> tuple[int, int, int] | None:
    """(serial frames, BLE notifications, IMU samples) from the sketches' ``dropped: serial=N ble=M imu=K``
    LOG text (IMU samples: the sensor's FIFO overflowed)."""
    m = DROPS_RE.search(text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


# ----------------------------------------------------------------------------- build

@dataclass
class Sketch:
    """What to compile: the sketch folder, its .ino, extra sources and how to build them."""

    dir: Path
    ino: Path
    kind: str  # "capture" | "classifier"
    sources: list[Path] = field(default_factory=list)
    include_dirs: list[Path] = field(default_factory=list)
    defines: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    libs: list[Path] = field(default_factory=list)


def find_sketch(sketch_dir: str | Path | None) -> Sketch:
    """The capture sketch (default) or an exported classifier sketch folder."""
    d = Path(sketch_dir) if sketch_dir is not None else capture_sketch_dir()
    if not d.is_dir():
        raise GestureError(f"--sketch {d}: no such folder")
    inos = sorted(d.glob("*.ino"))
    if len(inos) != 1:
        raise GestureError(f"--sketch {d}: expected exactly one .ino (found {len(inos)})")
    if (d / "gk_model.cpp").is_file():
        return Sketch(d, inos[0], "classifier", sources=[d / "gk_model.cpp", d / "model_data.cpp"])
    return Sketch(d, inos[0], "capture")


def _classifier_runtime(sketch: Sketch, tflm: str | Path | None) -> None:
    """TFLM for the host, from training.tflm_tree (the one owner of the TFLM build)."""
    from training.tflm_tree import build_runtime, find_tree, missing_tree_hint

    tree = find_tree(tflm)
    if tree is None:
        raise GestureError(missing_tree_hint())
    rt = build_runtime(tree, "host", cmsis_nn=False)
    sketch.flags += rt.compile_flags(cxx=True)
    sketch.libs.append(Path(rt.library))


def _digest(sketch: Sketch, argv: list[str]) -> str:
    h = hashlib.sha256()
    version = subprocess.run([gxx(), "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    h.update(version.encode() + b"\0" + "\0".join(argv).encode())
    files = sorted(shim_dir().rglob("*.[hc]*")) + sorted(f for f in sketch.dir.iterdir() if f.suffix in (".ino", ".h", ".cpp"))
    for f in files + sketch.libs:
        h.update(str(f.name).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:20]


def build(sketch_dir: str | Path | None = None, board: str = "nano33ble", *, cache: Path | None = None,
          tflm: str | Path | None = None) -> Path:
    """Compile the sketch for the host (cached); returns the executable. A classifier sketch also
    links the TFLM runtime built from ``tflm`` (else ``training.tflm_tree.find_tree``'s lookup)."""
    check_board(board)
    sketch = find_sketch(sketch_dir)
    gxx()
    if sketch.kind == "classifier":
        _classifier_runtime(sketch, tflm)
    defines = [f"-D{d}" for d in get_board(board).defines + tuple(sketch.defines)]
    includes = [f"-I{d}" for d in [shim_dir(), sketch.dir, *sketch.include_dirs]]
    argv = ["-std=c++17", "-O1", *WARNINGS, *defines, *includes, *sketch.flags]
    out_dir = (cache or cache_root()) / f"{sketch.kind}-{board}-{_digest(sketch, argv)}"
    exe = out_dir / "firmware"
    if exe.is_file():
        return exe
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        main = Path(tmp) / "main.cpp"
        # What the Arduino builder does with a sketch: Arduino.h first, then the .ino as C++.
        main.write_text(f'#include <Arduino.h>\n#include "{sketch.ino.name}"\n')
        tmp_exe = Path(tmp) / "firmware"
        cmd = [gxx(), *argv, str(main), str(shim_dir() / "shim.cpp"), *map(str, sketch.sources), "-o", str(tmp_exe),
               *map(str, sketch.libs), "-lm"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise GestureError(f"{sketch.ino}: g++ failed for the host build ({board}):\n{r.stderr.strip()[-3000:]}")
        os.replace(tmp_exe, exe)  # atomic: a half-built binary is never cached
    return exe


# ----------------------------------------------------------------------------- what it senses

def replay_counts(data: Path | None, rate_hz: float, *, labels: list[str] | None = None, rest_s: float = 1.0,
                  seed: int = 0, shuffle: bool = False, board: str = "nano33ble", takes: int = 40) -> np.ndarray:
    """(n, 6) int16 counts the simulated IMU replays: the dataset's takes with rest in between
    (``capture.virtual.sources.ReplaySource``, resampled to the sensor's rate), or, with no
    dataset, ``takes`` gestures of the simulated hand (``HandSource``) wearing ``board``'s IMU."""
    from capture.virtual.sources import BlockSource, HandSource, ReplaySource

    src: BlockSource
    if data is None:
        src = HandSource(board=board, rate_hz=rate_hz, labels=labels, rest_s=rest_s, limit=takes, loop=False, seed=seed)
    else:
        src = ReplaySource(data, rate_hz=rate_hz, channels=6, rest_s=rest_s, labels=labels, seed=seed, shuffle=shuffle)
    return src.counts()


# ----------------------------------------------------------------------------- the running board

@dataclass
class Status:
    """The shim's counters (``status ...`` lines, every 100 ms of device time)."""

    t_us: int = 0
    loops: int = 0
    produced: int = 0  # samples the sensor produced
    reads: int = 0  # new samples the sketch read
    stale: int = 0  # reads with no new sample (repeats)
    overwritten: int = 0  # samples overwritten unread (skips)
    serial_wait_us: int = 0  # device time the sketch spent blocked in Serial.write
    ble_wait_us: int = 0  # ... and in HCI.sendAclPkt's busy-wait
    ble_write_no_radio: int = 0  # writeValue calls while BLE was not begun
    notifications: int = 0
    serial_in_ble_handler: int = 0  # Serial output made from inside a BLE event handler (BLE.poll())
    i2c_us: int = 0  # device time spent in IMU register reads (the shim's I2C bus-time model)
    ble_rx: int = 0  # central -> peripheral writes the sketch took
    ble_rx_dropped: int = 0  # ... lost in ArduinoBLE's 256-byte HCI ring between two BLE.poll()
    ble_events_dropped: int = 0  # completed-packets events lost there (their TX buffers stay taken)
    flash_erases: int = 0  # FlashIAP sectors erased
    flash_programmed: int = 0  # FlashIAP bytes programmed
    flash_us: int = 0  # device time the CPU stalled in flash erases and programs
    why: str = ""

    @classmethod
    def parse(cls, line: str) -> "Status | None":
        parts = line.split()
        if len(parts) < 2 or parts[0] != "status":
            return None
        kv = dict(x.split("=", 1) for x in parts[2:] if "=" in x)
        return cls(**{k: int(v) for k, v in kv.items() if k in cls.__dataclass_fields__}, why=parts[1])


class FirmwareBoard:
    """The compiled sketch running as a process: USB serial on a pty (``path``), BLE on a Unix socket.

    The pty's slave side is closed until a host opens ``path``: that is the board's DTR line. The
    IMU replays ``counts`` recorded at ``counts_rate`` Hz (interpolated at the sensor's ODR).
    """

    def __init__(self, exe: Path, counts: np.ndarray, counts_rate: float, *, speed: float = 1.0,
                 ble: bool = True, ble_fail: bool = False, ble_buffers: int = 4, loop: bool = False,
                 late: tuple[int, int] | None = None, imu_fail: bool = False, ble_interval_ms: float = 0.0,
                 flash: str | Path | None = None, flash_cut: int | None = None, ble_rx_buffers: int = 4,
                 ble_phy: int = 1) -> None:
        self.tmp = tempfile.mkdtemp(prefix="gk-fw-")
        imu = Path(self.tmp) / "imu.bin"
        np.asarray(counts, dtype="<i2").reshape(-1, 6).tofile(imu)
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)
        self.ble_path = str(Path(self.tmp) / "ble.sock") if ble else None
        status_r, status_w = os.pipe()
        env = dict(os.environ, GK_SHIM_SERIAL_FD=str(self.master), GK_SHIM_IMU=str(imu),
                   GK_SHIM_IMU_RATE=repr(float(counts_rate)), GK_SHIM_SPEED=repr(float(speed)),
                   GK_SHIM_STATUS_FD=str(status_w), GK_SHIM_BLE_BUFFERS=str(ble_buffers),
                   GK_SHIM_IMU_LOOP="1" if loop else "0", GK_SHIM_BLE_FAIL="1" if ble_fail else "0",
                   GK_SHIM_IMU_FAIL="1" if imu_fail else "0",
                   GK_SHIM_BLE_INTERVAL_US=str(int(round(ble_interval_ms * 1000))),
                   GK_SHIM_BLE_RX_BUFFERS=str(int(ble_rx_buffers)), GK_SHIM_BLE_PHY=str(int(ble_phy)),
                   # the board's internal flash: a file that outlives the process when the caller names it
                   GK_SHIM_FLASH=str(flash if flash is not None else Path(self.tmp) / "flash.bin"))
        env.pop("GK_SHIM_FLASH_CUT", None)
        if flash_cut is not None:  # a power cut after this many programmed bytes (exit status FLASH_CUT_EXIT)
            env["GK_SHIM_FLASH_CUT"] = str(int(flash_cut))
        if late:  # every late[0]-th loop() costs late[1] us more (samples pile up in the IMU FIFO)
            env["GK_SHIM_LATE"] = f"{int(late[0])}:{int(late[1])}"
        if self.ble_path:
            env["GK_SHIM_BLE"] = self.ble_path
        else:
            env.pop("GK_SHIM_BLE", None)
        self.speed = speed
        self.proc = subprocess.Popen([str(exe)], env=env, pass_fds=(self.master, status_w), stdin=subprocess.DEVNULL)
        os.close(status_w)
        self.status = Status()
        self.history: list[Status] = []
        self._status_file = os.fdopen(status_r, "r")
        self._reader = threading.Thread(target=self._read_status, daemon=True, name="firmware-status")
        self._reader.start()

    def _read_status(self) -> None:
        for line in self._status_file:
            s = Status.parse(line)
            if s is not None:
                self.status = s
                self.history.append(s)
                if len(self.history) > 100_000:
                    del self.history[:50_000]

    def backend(self, faults: Any = None, mtu: int = p.BLE_NOTIFY_MTU):  # -> type[BaseBleakClient]
        """The bleak backend class for this board's BLE radio (a central asking for ATT ``mtu``)."""
        if self.ble_path is None:
            raise GestureError("this firmware board was started without BLE")
        return firmware_backend(self.ble_path, faults, self.speed, alive=self.running, mtu=mtu)

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(2)
        return rc

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        try:
            os.close(self.master)
        except OSError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "FirmwareBoard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_board(*, board: str = "nano33ble", sketch: str | Path | None = None, data: Path | None = None,
                speed: float = 1.0, ble: bool = True, ble_fail: bool = False, ble_buffers: int = 4,
                loop: bool = False, labels: list[str] | None = None, rest_s: float = 1.0, seed: int = 0,
                counts: np.ndarray | None = None, tflm: str | Path | None = None,
                late: tuple[int, int] | None = None, imu_fail: bool = False,
                ble_interval_ms: float = 0.0, flash: str | Path | None = None, flash_cut: int | None = None,
                ble_rx_buffers: int = 4, ble_phy: int = 1) -> FirmwareBoard:
    """Build (cached) and start the board replaying ``data`` (or ``counts``; with neither, the
    simulated hand) at its IMU's rate."""
    exe = build(sketch, board, tflm=tflm)
    rate = BOARD_IMU_RATE[board]
    if counts is None:
        counts = replay_counts(data, rate, labels=labels, rest_s=rest_s, seed=seed, shuffle=loop, board=board)
    return FirmwareBoard(exe, counts, rate, speed=speed, ble=ble, ble_fail=ble_fail, ble_buffers=ble_buffers,
                         loop=loop, late=late, imu_fail=imu_fail, ble_interval_ms=ble_interval_ms, flash=flash,
                         flash_cut=flash_cut, ble_rx_buffers=ble_rx_buffers, ble_phy=ble_phy)


# ----------------------------------------------------------------------------- serial faults

class FaultRelay:
    """``--loss/--garbage/--corrupt/--disconnect-after`` around the firmware's serial output.

    The host opens ``path`` (an outer pty); the relay opens the firmware's pty (so the firmware
    sees DTR high), decodes its frames, passes each through :class:`capture.virtual.link.FaultInjector`
    and writes them out; host bytes go back unchanged. When the host does not read, the relay stops
    reading too, so the firmware's own USB flow control (and its drop counting) still applies.
    """

    def __init__(self, inner_path: str, faults: Any, speed: float = 1.0) -> None:
        from capture.decoder import StreamDecoder
        from capture.virtual.link import FaultInjector

        self.injector = FaultInjector(faults)
        self.inner = os.open(inner_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.inner)
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        os.set_blocking(self.master, False)
        self.decoder = StreamDecoder()
        self.speed = speed
        self.stop = threading.Event()
        self._out = bytearray()

    def run(self, on_disconnect: Callable[[str], None] | None = None) -> str:
        import time

        t0 = time.monotonic()
        while not self.stop.is_set():
            if self.injector.expired((time.monotonic() - t0) * (self.speed or 1.0)):
                return "disconnected (injected)"
            want_read = len(self._out) < 4096
            r, w, _ = select.select([self.master] + ([self.inner] if want_read else []),
                                    [self.master] if self._out else [], [], 0.05)
            if self.inner in r:
                try:
                    data = os.read(self.inner, 4096)
                except BlockingIOError:
                    data = b""
                except OSError:
                    return "firmware stopped"
                for f in self.decoder.feed(data):
                    if self.injector.drop():
                        continue
                    self._out += self.injector.damage(p.encode_frame(f.type, f.seq, f.t_us, f.payload))
            if self.master in r:
                try:
                    os.write(self.inner, os.read(self.master, 4096))
                except OSError:
                    pass
            if self._out:
                try:
                    n = os.write(self.master, self._out)
                    del self._out[:n]
                except BlockingIOError:
                    pass
        return "stopped"

    def close(self) -> None:
        for fd in (self.inner, self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


# ----------------------------------------------------------------------------- BLE (bleak backend)

def wait_socket(path: str, timeout: float = 10.0, alive: Callable[[], bool] = lambda: True) -> None:
    """Wait until the firmware's BLE socket exists (its BLE.begin() ran)."""
    import time

    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if not alive() or time.monotonic() > deadline:
            raise GestureError(f"{path}: no firmware BLE radio there (BLE.begin() failed, or the board is not running)")
        time.sleep(0.01)


def firmware_backend(ble_path: str, faults: Any = None, speed: float = 1.0,
                     alive: Callable[[], bool] = lambda: True, mtu: int = p.BLE_NOTIFY_MTU):  # -> type[BaseBleakClient]
    """A bleak backend class whose GATT server is the firmware listening on ``ble_path``; ``mtu``
    above 23 is asked for with an ATT MTU exchange at connect, as desktop centrals do."""
    from capture.virtual.link import Faults

    attrs = {"ble_path": ble_path, "faults": faults or Faults(), "speed": speed, "alive": staticmethod(alive),
             "mtu": int(mtu)}
    return type("FirmwareBoard", (_backend_class(),), attrs)


_BACKEND: type | None = None


def _backend_class() -> type:
    """Defined lazily so importing this module does not import bleak."""
    global _BACKEND
    if _BACKEND is not None:
        return _BACKEND
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
    from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode

    from capture.virtual.link import FaultInjector

    props_names = ((0x02, "read"), (0x04, "write-without-response"), (0x08, "write"), (0x10, "notify"),
                   (0x20, "indicate"))

    class FirmwareBleBackend(BaseBleakClient):
        """bleak's view of the firmware's ArduinoBLE peripheral (the shim's socket protocol).

        Every notification the sketch sends is acknowledged when it arrives (the central's link layer
        took it, freeing the controller buffer it held) and then delivered to the subscriber; ``stalled = True`` is a central that stops taking
        packets (out of range, a host stack that stopped reading): no acknowledgements, so the
        controller's buffers fill. :class:`capture.virtual.link.Faults` loss and disconnect apply.
        """

        ble_path: str
        faults: Any
        speed: float = 1.0
        alive: Callable[[], bool]
        stalled: bool = False  # set on the class (tests): the central stops taking packets
        mtu: int = p.BLE_NOTIFY_MTU  # the ATT MTU this central asks for at connect (23: no exchange)

        def __init__(self, address_or_ble_device: Any, **kwargs: Any) -> None:
            cb = kwargs.pop("disconnected_callback", None)
            timeout = kwargs.pop("timeout", 10.0)
            super().__init__(address_or_ble_device, disconnected_callback=cb, timeout=timeout)
            self._inject = FaultInjector(self.faults)
            self._reader: asyncio.StreamReader | None = None
            self._writer: asyncio.StreamWriter | None = None
            self._task: asyncio.Task[None] | None = None
            self._connected = False
            self._chars: dict[int, str] = {}
            self._index: dict[str, int] = {}
            self._callbacks: dict[int, Callable[[bytearray], None]] = {}
            self._reads: dict[int, asyncio.Future[bytes]] = {}
            self._responses: dict[int, asyncio.Future[None]] = {}
            self.delivered = 0
            self._t0 = 0.0
            self._mtu = p.BLE_NOTIFY_MTU

        @property
        def name(self) -> str:
            return p.BLE_LOCAL_NAME

        @property
        def mtu_size(self) -> int:
            return self._mtu

        @property
        def is_connected(self) -> bool:
            return self._connected

        async def connect(self, pair: bool, **kwargs: Any) -> None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: wait_socket(self.ble_path, alive=self.alive))
            self._reader, self._writer = await asyncio.open_unix_connection(self.ble_path)
            coll = BleakGATTServiceCollection()
            service = BleakGATTService(None, 0x0010, p.SERVICE_UUID)
            coll.add_service(service)
            while True:
                kind, idx, data = await self._recv()
                if kind == ord("E"):
                    break
                uuid = data[1:].decode("ascii")
                props = [n for bit, n in props_names if data[0] & bit]
                self._chars[idx], self._index[uuid] = uuid, idx
                coll.add_characteristic(BleakGATTCharacteristic(
                    None, 0x0012 + 2 * idx, uuid, props, lambda: p.BLE_NOTIFY_MTU - p.ATT_OVERHEAD, service))
            self.services = coll
            self._mtu = p.BLE_NOTIFY_MTU
            if self.mtu > p.BLE_NOTIFY_MTU:  # ATT Exchange MTU: the peripheral answers what it accepts
                self._send("M", 0, int(self.mtu).to_bytes(2, "little"))
                while True:
                    kind, _, data = await self._recv()
                    if kind == ord("M"):
                        self._mtu = int.from_bytes(data[:2], "little")
                        break
            self._connected = True
            self._t0 = loop.time()
            self._task = loop.create_task(self._pump(), name="firmware-ble")

        async def _recv(self) -> tuple[int, int, bytes]:
            assert self._reader is not None
            head = await self._reader.readexactly(3)
            body = await self._reader.readexactly(head[1] | head[2] << 8)
            return head[0], body[0], body[1:]

        def _send(self, kind: str, idx: int, data: bytes = b"") -> None:
            if self._writer is None:
                raise BleakError("Not connected")
            body = bytes([idx]) + data
            self._writer.write(bytes([ord(kind), len(body) & 0xFF, len(body) >> 8]) + body)

        async def _pump(self) -> None:
            loop = asyncio.get_running_loop()
            try:
                while True:
                    kind, idx, data = await self._recv()
                    if kind == ord("V"):
                        fut = self._reads.pop(idx, None)
                        if fut is not None and not fut.done():
                            fut.set_result(data)
                        continue
                    if kind == ord("A"):  # ATT Write Response
                        wfut = self._responses.pop(idx, None)
                        if wfut is not None and not wfut.done():
                            wfut.set_result(None)
                        continue
                    if kind != ord("N"):
                        continue
                    if self._inject.expired((loop.time() - self._t0) * (self.speed or 1.0)):
                        self._drop_link()
                        return
                    while self.stalled:  # the central stopped taking packets: no acknowledgement
                        await asyncio.sleep(0.01)
                    self._send("K", 1)  # received over the air: Number Of Completed Packets frees a buffer
                    cb = self._callbacks.get(idx)
                    if cb is not None and not self._inject.drop():
                        self.delivered += 1
                        try:
                            cb(bytearray(data))
                        except Exception:  # noqa: BLE001  a host callback bug must not kill the radio
                            pass
            except (asyncio.IncompleteReadError, ConnectionError):
                self._drop_link()

        def _drop_link(self) -> None:
            was = self._connected
            self._connected = False
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            for futs in (self._responses, self._reads):
                for f in futs.values():
                    if not f.done():
                        f.set_exception(BleakError("Not connected: the link dropped"))
                futs.clear()
            if was and self._disconnected_callback is not None:
                self._disconnected_callback()

        async def disconnect(self) -> None:
            self._connected = False
            task, self._task = self._task, None
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
            if self._writer is not None:
                self._writer.close()
                self._writer = None

        async def pair(self, *args: Any, **kwargs: Any) -> None:
            return None

        async def unpair(self) -> None:
            return None

        def _idx(self, characteristic: BleakGATTCharacteristic) -> int:
            if not self._connected:
                raise BleakError("Not connected")
            try:
                return self._index[characteristic.uuid]
            except KeyError:
                raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.ATTRIBUTE_NOT_FOUND) from None

        async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, **kwargs: Any) -> bytearray:
            idx = self._idx(characteristic)
            fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._reads[idx] = fut
            self._send("R", idx)
            return bytearray(await asyncio.wait_for(fut, 10))

        async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any, response: bool) -> None:
            """A write request ('Q', answered 'A' once the sketch handled it) or a write command ('W')."""
            idx = self._idx(characteristic)
            if not response:
                self._send("W", idx, bytes(data))
                return
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._responses[idx] = fut
            self._send("Q", idx, bytes(data))
            try:
                await asyncio.wait_for(fut, 30)  # the ATT transaction timeout
            except asyncio.TimeoutError:
                raise BleakError("write request not answered within 30 s (ATT timeout)") from None

        async def read_gatt_descriptor(self, descriptor: Any, **kwargs: Any) -> bytearray:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.ATTRIBUTE_NOT_FOUND)

        async def write_gatt_descriptor(self, descriptor: Any, data: Any) -> None:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.ATTRIBUTE_NOT_FOUND)

        async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: Any, **kwargs: Any) -> None:
            idx = self._idx(characteristic)
            self._callbacks[idx] = callback
            self._send("S", idx, b"\x01")

        async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
            idx = self._idx(characteristic)
            self._callbacks.pop(idx, None)
            self._send("S", idx, b"\x00")

    _BACKEND = FirmwareBleBackend
    return _BACKEND
