"""The capture firmware on a pseudo-terminal: a serial port that behaves like a plugged-in board.

``SerialBoard(source).run()`` opens a pty in raw mode (pyserial treats the slave side, e.g.
``/dev/pts/7``, as a real serial port and ignores the baud rate) and then does what
``firmware/capture/capture.ino`` does, byte for byte:

* at boot and on ``Command.INFO`` it sends an INFO frame (``encode_info(source.info())``);
* it streams the source's IMU (and PREDICTION) payloads as frames, with per-type sequence
  numbers starting at 0 and ``t_us`` = device time of the first sample, paced in real time;
* ``Command.STOP`` / ``Command.START`` pause / resume streaming (the device clock keeps running, the
  sequence numbers do not advance while paused);
* ``Command.SET_RATE`` rebuilds the source at the new rate (must be in ``SUPPORTED_RATES_HZ``, else a
  LOG frame with :func:`rate_error_text`) and re-sends INFO.

Faults (:class:`capture.virtual.link.Faults`) are applied on the way out. When the host is not
reading, frames are dropped whole (their sequence numbers stay used), like the firmware does when
the USB CDC buffer has no room, so the board never blocks on a port nobody listens to.
Any object with ``info()`` and ``events()`` can be the source (``capture.virtual.sources`` or the
classifier firmware's ``training.board_sim.ClassifierSource``).
"""
from __future__ import annotations

import os
import select
import threading
import tty
from collections import defaultdict
from typing import Callable

from capture import protocol as p
from capture.decoder import StreamDecoder
from capture.virtual.link import FaultInjector, Faults, Pacer
from capture.virtual.sources import EventSource

MakeSource = Callable[[int], EventSource]


def rate_error_text(rate: int) -> str:
    """The LOG text the firmware sends for an unsupported SET_RATE (gk_frame.h has the C twin)."""
    return f"error: rate {rate} Hz not supported"


class SerialBoard:
    """A virtual capture board on a pty. ``path`` is the port to give ``gesture capture --port``.

    ``make_source(rate)`` builds the source again at another rate for ``SET_RATE`` (without it the
    board answers with a LOG error). ``speed`` scales time (2 = twice as fast; 0 = unpaced, and then
    writes wait for the host instead of dropping, to measure the host's ceiling).
    """

    def __init__(self, source: EventSource, *, make_source: MakeSource | None = None,
                 faults: Faults | None = None, speed: float = 1.0) -> None:
        self.source = source
        self.make_source = make_source
        self.faults = faults or Faults()
        self.injector = FaultInjector(self.faults)
        self.speed = speed
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.seq: dict[int, int] = defaultdict(int)
        self.streaming = True
        self.frames_sent = 0
        self.unread_drops = 0  # frames dropped because the host was not reading
        self.commands: list[tuple[p.Command, int]] = []
        self.reason = ""
        self._stop = threading.Event()
        self._out = bytearray()
        self._control = StreamDecoder()
        self._pending_rate: int | None = None
        self._closed = False

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Ask run() to return (from another thread or a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        """Close the pty (the port disappears, like a pulled cable)."""
        if not self._closed:
            self._closed = True
            for fd in (self.master, self._slave):
                try:
                    os.close(fd)
                except OSError:
                    pass

    # ------------------------------------------------------------------ output
    def _emit(self, ftype: int, t_us: int, payload: bytes) -> None:
        """Encode one frame with the next sequence number of its type, apply faults, write it."""
        seq = self.seq[ftype]
        self.seq[ftype] = (seq + 1) & 0xFFFF
        if self.injector.drop():
            return
        frame = self.injector.damage(p.encode_frame(ftype, seq, t_us, payload))
        self._write(frame)

    def _write(self, data: bytes) -> None:
        if self.speed <= 0:
            view = memoryview(data)
            while view and not self._stop.is_set():
                select.select([], [self.master], [], 0.1)
                try:
                    n = os.write(self.master, view)
                except BlockingIOError:
                    continue
                view = view[n:]
            self.frames_sent += 1
            return
        self._flush()
        if self._out:  # the previous frame is still half out: the host is not keeping up
            self.unread_drops += 1
            return
        try:
            n = os.write(self.master, data)
        except BlockingIOError:
            self.unread_drops += 1
            return
        if n < len(data):
            self._out += data[n:]  # never cut a frame: finish it before the next one
        self.frames_sent += 1

    def _flush(self) -> None:
        if self._out:
            try:
                n = os.write(self.master, self._out)
            except BlockingIOError:
                return
            del self._out[:n]

    def _send_info(self, t_us: int) -> None:
        self._emit(p.FrameType.INFO, t_us, p.encode_info(self.source.info()))

    # ------------------------------------------------------------------ input
    def _poll(self, timeout: float, now_us: int) -> None:
        """Wait up to ``timeout`` s for CONTROL frames from the host and act on them."""
        try:
            ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        except ValueError:  # closed
            return
        self._flush()
        if not ready:
            return
        try:
            data = os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return
        for f in self._control.feed(data):
            if f.type != p.FrameType.CONTROL:
                continue
            try:
                cmd, arg = p.decode_control(f.payload)
            except ValueError:
                continue
            self.commands.append((cmd, arg))
            if cmd == p.Command.INFO:
                self._send_info(now_us)
            elif cmd == p.Command.STOP:
                self.streaming = False
            elif cmd == p.Command.START:
                self.streaming = True
            elif cmd == p.Command.SET_RATE:
                if arg in p.SUPPORTED_RATES_HZ and self.make_source is not None:
                    self._pending_rate = arg
                else:
                    self._emit(p.FrameType.LOG, now_us, rate_error_text(arg).encode("ascii"))

    # ------------------------------------------------------------------ main loop
    def run(self) -> str:
        """Stream until the source ends, stop() is called or the injected disconnect; returns why."""
        pacer = Pacer(self.speed)
        offset = 0  # device time at which the current source's t=0 falls
        now_us = 0
        self._send_info(0)
        events = iter(self.source.events())
        polled = 0
        try:
            while not self._stop.is_set():
                ev = next(events, None)
                if ev is None:
                    self.reason = "source ended"
                    return self.reason
                t_us, ftype, payload = ev
                t_dev = offset + t_us
                while self.speed > 0 and not self._stop.is_set():
                    d = pacer.delay(t_dev)
                    if d <= 0:
                        self._poll(0, now_us)
                        break
                    self._poll(min(d, 0.05), now_us)
                if self.speed <= 0:
                    polled += 1
                    if polled % 64 == 0:
                        self._poll(0, now_us)
                now_us = t_dev
                if self.injector.expired(t_dev / 1e6):
                    self.reason = f"disconnected after {t_dev / 1e6:.2f} s (injected)"
                    return self.reason
                if self._pending_rate is not None:  # SET_RATE: the IMU restarts at the new rate
                    rate, self._pending_rate = self._pending_rate, None
                    self.source = self.make_source(rate)  # type: ignore[misc]
                    events = iter(self.source.events())
                    offset = t_dev
                    self._send_info(t_dev)
                    continue
                if self.streaming:
                    self._emit(ftype, t_dev, payload)
            self.reason = "stopped"
            return self.reason
        finally:
            self.close()

    def start_thread(self) -> threading.Thread:
        """Run in a daemon thread (tests, benchmarks); stop() and join() to end it."""
        th = threading.Thread(target=self.run, name=f"SerialBoard {self.path}", daemon=True)
        th.start()
        return th
