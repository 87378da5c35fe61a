"""USB serial link (pyserial): frames from the capture firmware, or text lines from other sketches.

A worker thread reads whatever the port holds (``in_waiting`` bytes in one call; pyserial's
``readline`` goes byte by byte and tops out near 4k lines/s), decodes it there and hands the
messages to the asyncio loop in one ``call_soon_threadsafe`` per read, so a 1 kHz stream costs a
few hundred wake-ups per second, not thousands.

On :meth:`SerialTransport.open` the host asks for INFO (``Command.INFO``) and waits for it. If the
board answers with printable text lines instead of frames, it is running a text sketch
(``IMU_Capture.ino``, an Edge Impulse data forwarder): the link switches to
:mod:`capture.textlines`, which detects rate, axes and units and produces the same IMU messages.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time

from capture import protocol as p
from capture.decoder import StreamDecoder
from capture.errors import GestureError
from capture.textlines import TextLineReader, looks_like_text
from capture.transport.base import Message, Transport

INFO_RETRY_S = 0.5
TEXT_MEASURE_S = 4.0  # extra time to measure a text sketch's rate once text is recognised
SNIFF_LIMIT = 4096


class SerialTransport(Transport):
    """A board on a serial port. ``mode``: ``auto`` (frames, else text), ``frames`` or ``text``.

    ``text_rate``: the rate of a text sketch when known (skips measuring it).
    """

    def __init__(self, port: str, baud: int = 115200, *, info_timeout: float = 3.0, mode: str = "auto",
                 text_rate: float | None = None) -> None:
        super().__init__()
        if mode not in ("auto", "frames", "text"):
            raise GestureError(f"serial mode {mode!r}: expected auto, frames or text")
        self.port = port
        self.baud = baud
        self.info_timeout = info_timeout
        self.mode = mode
        self.text_rate = text_rate
        self.decoder = StreamDecoder(self.stats)
        self.text: TextLineReader | None = None
        self._ser = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._connected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._info_wait: asyncio.Future | None = None
        self._sniff = bytearray()
        self._ctl_seq = 0

    @property
    def connected(self) -> bool:
        return self._connected

    # ------------------------------------------------------------------ open / close
    async def open(self) -> dict[str, str]:
        import serial

        self._loop = asyncio.get_running_loop()
        try:
            self._ser = serial.Serial(self.port, self.baud, timeout=0.05, write_timeout=2)
        except (serial.SerialException, OSError, ValueError) as e:
            if not os.path.exists(self.port) and not self.port.upper().startswith("COM"):
                raise GestureError(f"serial port {self.port} not found; is the board plugged in? "
                                   "`gesture devices` lists the ports and boards it can see") from None
            if os.path.exists(self.port) and not _is_char_device(self.port):
                kind = "a folder" if os.path.isdir(self.port) else "a regular file"
                raise GestureError(f"--port {self.port} is {kind}, not a serial port (a device such as "
                                   "/dev/ttyACM0 or COM3); `gesture devices` lists the ports") from None
            raise GestureError(f"cannot open serial port {self.port}: {e} "
                               "(is another program, e.g. the Serial Monitor, using it?)") from None
        self._ser.reset_input_buffer()  # bytes queued before we listened are stale
        self._closing = False
        self._connected = True
        self._info_wait = self._loop.create_future()
        self._thread = threading.Thread(target=self._reader, name=f"serial {self.port}", daemon=True)
        self._thread.start()
        try:
            await self._wait_info()
        except BaseException:
            await self.close()
            raise
        return self.info

    async def _wait_info(self) -> None:
        assert self._info_wait is not None
        deadline = time.monotonic() + self.info_timeout
        text_seen = False
        while True:
            if self.text is None and self.mode != "text":
                await self.send(p.Command.INFO)
            try:
                async with asyncio.timeout(INFO_RETRY_S):  # not wait_for: it can lose a cancellation on 3.11
                    await asyncio.shield(self._info_wait)
                return
            except TimeoutError:
                pass
            if self.text is not None and not text_seen:
                text_seen = True  # text recognised: give the rate measurement its time
                deadline = max(deadline, time.monotonic() + TEXT_MEASURE_S)
            if time.monotonic() >= deadline:
                break
        if self.text is not None:
            self.text.finish_detection()
            if self.text.ready:  # header only (IMU_Capture waits for motion): its known rate
                self._ready_text()
                return
        raise GestureError(self._no_info_message())

    def _no_info_message(self) -> str:
        if self.text is not None:
            t = self.text
            return (f"{self.port}: text lines arrive but not steadily enough to measure their rate "
                    f"({t.skipped_lines} lines not understood); pass --rate HZ, or check the sketch prints "
                    "3 or 6 numbers per line (ax,ay,az[,gx,gy,gz])")
        if self.decoder.bad_versions:
            v = sorted(self.decoder.bad_versions)
            return (f"the board on {self.port} speaks protocol version {v[-1]}; this host speaks "
                    f"{p.PROTOCOL_VERSION}: reflash it with `gesture firmware` and the Arduino IDE")
        got = self.stats.bytes
        what = f"{got} bytes that are neither frames nor text lines" if got else "nothing"
        return (f"no INFO from {self.port} within {self.info_timeout:g} s (received {what}); "
                "is it running the gesture-kit capture sketch (firmware/capture) or a sketch that "
                "prints one line of numbers per sample?")

    async def close(self) -> None:
        self._closing = True
        self._connected = False
        th, self._thread = self._thread, None
        if th is not None and th is not threading.current_thread():
            await asyncio.to_thread(th.join, 2.0)
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # an unplugged port may fail to close: nothing left to release
                pass

    async def send(self, cmd: p.Command, arg: int = 0) -> None:
        if self.text is not None:
            if cmd == p.Command.SET_RATE:
                raise GestureError(f"the board on {self.port} runs a text sketch at {self.text.rate_hz:g} Hz; "
                                   "its rate cannot be changed from the host (flash firmware/capture to do so)")
            return  # a text sketch has no commands: start/stop/info are no-ops
        ser = self._ser
        if ser is None:
            raise GestureError(f"serial port {self.port} is not open")
        frame = p.encode_frame(p.FrameType.CONTROL, self._ctl_seq, 0, p.encode_control(cmd, arg))
        self._ctl_seq = (self._ctl_seq + 1) & 0xFFFF
        try:
            ser.write(frame)
        except Exception as e:  # SerialException, SerialTimeoutException, OSError: the port went away
            raise GestureError(f"cannot write to serial port {self.port}: {e}") from None

    # ------------------------------------------------------------------ worker thread
    def _reader(self) -> None:
        import serial

        ser = self._ser
        loop = self._loop
        assert ser is not None and loop is not None
        try:
            while not self._closing:
                n = ser.in_waiting
                data = ser.read(n if n else 1)
                if not data:
                    continue
                msgs = self._parse(data, time.monotonic())
                if msgs:
                    loop.call_soon_threadsafe(self._dispatch, msgs)
        except (serial.SerialException, OSError, TypeError) as e:
            # TypeError: pyserial on a closed fd during close(); a real unplug is SerialException/OSError
            if not self._closing:
                try:
                    loop.call_soon_threadsafe(self._on_lost, str(e) or type(e).__name__)
                except RuntimeError:  # loop already closed
                    pass

    def _parse(self, data: bytes, now: float) -> list[Message]:
        if self.text is not None:
            skipped = self.text.skipped_bytes
            msgs = self.text.feed(data, now)
            self.stats.bytes += len(data)
            self.stats.garbage_bytes += self.text.skipped_bytes - skipped  # lines that were not samples
            return msgs
        frames = self.decoder.feed(data)
        if frames:
            if self.mode == "auto":
                self.mode = "frames"
            self._sniff.clear()
            return [Message(f.type, f.seq, f.t_us, f.payload, now) for f in frames]  # type: ignore[arg-type]
        if self.mode == "frames":
            return []
        self._sniff += data
        if self.mode == "text" or looks_like_text(bytes(self._sniff[-SNIFF_LIMIT:])):
            self.mode = "text"
            self.text = TextLineReader(rate_hz=self.text_rate)
            self.stats.garbage_bytes = 0  # it was text, not noise
            sniffed = bytes(self._sniff)
            self._sniff.clear()
            self.decoder.reset()
            msgs = self.text.feed(sniffed, now)
            self.stats.garbage_bytes += self.text.skipped_bytes
            return msgs
        if len(self._sniff) > SNIFF_LIMIT:
            del self._sniff[:-SNIFF_LIMIT]
        return []

    # ------------------------------------------------------------------ loop thread
    def _ready_text(self) -> None:
        assert self.text is not None
        if self.info:
            return
        self.info = {k: str(v) if not isinstance(v, list) else ",".join(v) for k, v in self.text.info().items()}
        if self._info_wait is not None and not self._info_wait.done():
            self._info_wait.set_result(self.info)

    def _dispatch(self, msgs: list[Message]) -> None:
        if self.text is not None and not self.info and self.text.ready:
            self._ready_text()
        for m in msgs:
            if not self._connected:
                return
            self._received(m)

    def _info_received(self, info: dict[str, str]) -> None:
        if self._info_wait is not None and not self._info_wait.done():
            self._info_wait.set_result(info)

    def _info_rejected(self, why: str) -> None:
        if self._info_wait is not None and not self._info_wait.done():
            self._info_wait.set_exception(GestureError(f"serial port {self.port}: the device sent an invalid "
                                                       f"{why}; is it running a gesture-kit sketch?"))

    def _on_lost(self, reason: str) -> None:
        if self._closing:
            return
        self._connected = False
        msg = f"serial port {self.port} disconnected ({reason})"
        if self._info_wait is not None and not self._info_wait.done():
            self._info_wait.set_exception(GestureError(msg))
        self._lost(msg)


def open_url(url: str, **options: object) -> SerialTransport:
    """``serial:///dev/ttyACM0`` or a bare port name (capture.transport.SCHEMES)."""
    from capture.transport import split_url

    return SerialTransport(split_url(url)[1], **options)  # type: ignore[arg-type]


def _is_char_device(path: str) -> bool:
    """A serial port is a character device (a tty, a pty); a regular file or a folder is not."""
    import stat

    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False
