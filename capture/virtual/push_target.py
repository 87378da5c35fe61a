"""The board's transfer service in Python: the virtual classifier takes ``gesture push`` like a board.

A twin of the push-ready sketch's service (docs/push.md; the C++ one runs in the host-compiled
firmware), so the Python virtual board (``virtual://classifier``) accepts a pushed model over the
same three characteristics, with the same states, acknowledgements and errors:

* **flash** (:class:`NorFlash`): erased to 0xFF by 4 KB sector; programming only clears bits (the
  new byte is ``old & data``), so a byte programmed twice without an erase is garbage, as on the nRF52840.
* **two slots** of ``training.package.SLOT_BYTES``: the package, then a sector for the slot's
  commit record (:data:`RECORD`: magic, sequence, length, sha256 of the package, CRC32). BEGIN
  erases the slot that does not hold the running model, its record sector first, one sector per
  :meth:`PushTarget.step` (the board's ``loop()``). :meth:`PushTarget.boot` runs the newest slot
  whose record and package are valid, else the built-in model.
* **the exchange**, state for state as the firmware's ``gk_push.h``: BEGIN -> ERASING -> RECEIVING
  at 0 (or, the same length and sha256 again, RECEIVING at the offset already received: resume);
  DATA at the expected offset is programmed (whole words; 1..3 trailing bytes wait in RAM), and
  RECEIVING is notified after ``ack_every`` chunks since the last notification and when the last
  byte is in; DATA at another offset is not programmed: the status is notified once, then further
  such chunks are ignored until one at the wanted offset arrives (go-back-N); DATA while erasing,
  validating, done or failed is ignored, before any BEGIN refused; COMMIT
  checks (BEGIN's SHA-256, the header through ``training.package.parse_package``, the payload's
  hashes, schema, ops against the resolver, AllocateTensors, shapes), switches the classifier
  (between windows: the source swaps its pipeline at its next IMU batch), writes the commit
  record and notifies DONE, or FAILED with the reason, the running model unchanged.

The commit record's layout is this twin's own (the firmware keeps its own): only the exchange on
the air is shared.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from capture import protocol as p
from capture.errors import DataError
from training import package as pk
from training.preprocess import PreprocessConfig

RECORD = struct.Struct("<4sIII32s")  # magic, sequence, package length, reserved, sha256 of the package; then CRC32
RECORD_MAGIC = b"GKCR"
SLOTS = 2


class NorFlash:
    """NOR flash: erase sets a 4 KB sector to 0xFF; program clears bits of 32-bit-aligned words."""

    def __init__(self, size: int, sector: int = pk.FLASH_SECTOR) -> None:
        if size % sector:
            raise ValueError(f"flash size {size} is not a whole number of {sector}-byte sectors")
        self.sector = sector
        self.data = bytearray(b"\xff" * size)
        self.erases = 0
        self.programmed = 0

    def erase(self, addr: int) -> None:
        if addr % self.sector or not 0 <= addr < len(self.data):
            raise ValueError(f"erase at {addr:#x}: not a sector start")
        self.data[addr:addr + self.sector] = b"\xff" * self.sector
        self.erases += 1

    def program(self, addr: int, data: bytes) -> None:
        if addr % p.PUSH_CHUNK_ALIGN or addr + len(data) > len(self.data):
            raise ValueError(f"program {len(data)} bytes at {addr:#x}: not word-aligned or past the end")
        end = addr + len(data)
        old = int.from_bytes(self.data[addr:end], "little")
        self.data[addr:end] = (old & int.from_bytes(data, "little")).to_bytes(len(data), "little")
        self.programmed += len(data)

    def read(self, addr: int, n: int) -> bytes:
        return bytes(self.data[addr:addr + n])


def config_from_package(pkg: pk.Package) -> PreprocessConfig:
    """The preprocessing a package carries, as the Python pipeline (training.board_sim) reads it."""
    unknown = pkg.labels[pkg.unknown_label_index] if 0 <= pkg.unknown_label_index < len(pkg.labels) else None
    return PreprocessConfig(
        labels=list(pkg.labels), channels=pkg.channels, model_rate_hz=pkg.model_rate_hz, window=pkg.window,
        stride=pkg.stride, motion_threshold=pkg.motion_threshold, mean=list(pkg.mean),
        input_zero_point=pkg.input_zero_point, mult=list(pkg.mult), smoothing=pkg.smoothing,
        confidence_threshold=pkg.confidence_threshold, unknown_label=unknown,
        detector={"average": pkg.detect_average, "threshold": pkg.detect_threshold,
                  "min_count": pkg.detect_min_count, "suppression": pkg.detect_suppression})


class Refused(Exception):
    """A COMMIT check failed: the PushError and the reason the board notifies."""

    def __init__(self, error: p.PushError, text: str) -> None:
        super().__init__(text)
        self.error = error
        self.text = text


def validate(data: bytes, sha256: bytes, board: str, resolver: list[str]) -> pk.Package:
    """What the board checks at COMMIT, in gk_push.h's order: the bytes against BEGIN's SHA-256
    (resend), the header (training.package.parse_package, as gk_package_parse.h: BAD_HEADER,
    WRONG_BOARD, maxima), the payload's CRC32 and SHA-256, then what the sketch's switch checks:
    schema, ops against ``resolver``, AllocateTensors, tensor shapes. Refused says why."""
    if hashlib.sha256(data).digest() != sha256:
        raise Refused(p.PushError.BAD_HASH, "SHA-256 of the package in flash differs from BEGIN's: resend it")
    try:
        pkg = pk.parse_package(data, "flash", board=board)
    except pk.PackageError as e:
        raise Refused(e.code, e.reason)
    except DataError as e:
        raise Refused(p.PushError.BAD_HEADER, str(e).removeprefix("flash, "))
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from training.tflm_ops import missing_firmware_ops, model_ops

    try:
        version = schema.Model.GetRootAsModel(pkg.payload, 0).Version()
        ops = model_ops(pkg.payload)
    except Exception as e:  # noqa: BLE001 - the flatbuffer reader raises whatever a cut file makes it
        raise Refused(p.PushError.BAD_HEADER, f"the payload is not a TFLite model ({type(e).__name__})")
    if version != 3:
        raise Refused(p.PushError.SCHEMA, f"TFLite schema version {version}; this TFLM runs 3")
    missing = missing_firmware_ops(ops, resolver)
    if missing:
        raise Refused(p.PushError.MISSING_OP, f"op(s) {', '.join(missing)} not in this firmware's resolver")
    try:
        from training.evaluate import TflmModel

        TflmModel(pkg.payload)  # AllocateTensors (the host's arena: its pointers are twice the board's)
    except Exception as e:  # noqa: BLE001 - the interpreter reports failures as RuntimeError/ValueError
        raise Refused(p.PushError.ARENA, f"AllocateTensors failed: {e}"[:p.PUSH_STATUS_TEXT_MAX])
    from training.model_dir import model_io

    try:
        shape_in, shape_out = model_io(pkg.payload, Path("flash"))
    except DataError as e:
        raise Refused(p.PushError.SHAPE, str(e).removeprefix("flash: "))
    n_in = n_out = 1
    for d in shape_in:
        n_in *= d
    for d in shape_out:
        n_out *= d
    if n_in != pkg.window * len(pkg.channel_index) or n_out != len(pkg.labels):
        raise Refused(p.PushError.SHAPE, f"input {list(shape_in)} / output {list(shape_out)} do not match window "
                      f"{pkg.window} x {len(pkg.channel_index)} channels and {len(pkg.labels)} labels")
    return pkg


@dataclass
class LinkFaults:
    """What the radio does to PUSH_DATA writes (tests): lose the n-th writes, flip a bit of the
    byte at a package offset on its way, drop the link once the board has ``disconnect_at`` bytes."""

    drop_writes: set[int] = field(default_factory=set)  # 0-based index among PUSH_DATA writes
    flip_offset: int | None = None
    disconnect_at: int | None = None
    writes: int = 0

    def data(self, write: bytes) -> bytes | None:
        """The write as the board receives it, None when lost."""
        n, self.writes = self.writes, self.writes + 1
        if n in self.drop_writes:
            return None
        if self.flip_offset is not None and len(write) > p.PUSH_DATA_HEADER.size:
            (off,) = p.PUSH_DATA_HEADER.unpack_from(write)
            k = self.flip_offset - off
            if 0 <= k < len(write) - p.PUSH_DATA_HEADER.size:
                self.flip_offset = None
                b = bytearray(write)
                b[p.PUSH_DATA_HEADER.size + k] ^= 0x10
                return bytes(b)
        return write

    def disconnect_now(self, offset: int) -> bool:
        if self.disconnect_at is not None and offset >= self.disconnect_at:
            self.disconnect_at = None
            return True
        return False


Switch = Callable[[PreprocessConfig, bytes], None]


class PushTarget:
    """The transfer service of one board (lives as long as the board, across connections).

    ``board`` is the registry key the board's INFO reports; ``builtin_sha256`` the sha256 of the
    model compiled in; ``switch(cfg, model_bytes)`` makes the classifier run a committed model.
    ``notify`` is set by the connection that subscribed to PUSH_STATUS (None: nobody listens).
    """

    def __init__(self, board: str, builtin_sha256: str, switch: Switch, flash: NorFlash | None = None,
                 builtin_ops: list[str] | None = None) -> None:
        self.board = board
        self.builtin_sha256 = builtin_sha256
        self.switch = switch
        self.flash = flash or NorFlash(SLOTS * pk.SLOT_BYTES)
        self.notify: Callable[[bytes], None] | None = None
        self.faults = LinkFaults()
        self.builtin_ops = list(builtin_ops or [])
        self.running_slot = p.PUSH_BUILTIN_SLOT
        self.running_sha256 = builtin_sha256
        self.running: pk.Package | None = None
        self._state, self._error, self._reason = p.PushState.IDLE, p.PushError.NONE, ""
        self._total, self._sha = 0, b""  # length and sha256 of the transfer in progress
        self._offset = 0  # package bytes received in order (programmed, or in _tail)
        self._tail = b""
        self._slot = 0
        self._ack_every = p.PUSH_ACK_EVERY_DEFAULT
        self._chunks = 0  # chunks programmed since the last notification: an acknowledgement every ack_every
        self._complained = False  # a wrong chunk was answered: the next ones are ignored silently
        self._erase: list[int] = []
        self.boot()

    def resolver(self) -> list[str]:
        """The ops this firmware's resolver holds: the push-ready sketch's, and its built-in model's."""
        from training.tflm_ops import firmware_ops

        return firmware_ops(self.builtin_ops)

    # ------------------------------------------------------------------ slots
    @staticmethod
    def base(slot: int) -> int:
        return slot * pk.SLOT_BYTES

    def _record_addr(self, slot: int) -> int:
        return self.base(slot) + pk.SLOT_BYTES - pk.FLASH_SECTOR

    def record(self, slot: int) -> tuple[int, int, bytes] | None:
        """(sequence, length, sha256) of the slot's commit record, None when absent or damaged."""
        raw = self.flash.read(self._record_addr(slot), RECORD.size + 4)
        magic, seq, length, _, sha = RECORD.unpack_from(raw)
        (crc,) = struct.unpack_from("<I", raw, RECORD.size)
        if magic != RECORD_MAGIC or crc != zlib.crc32(raw[:RECORD.size]) or not 0 < length <= pk.MAX_PACKAGE_BYTES:
            return None
        return seq, length, sha

    def boot(self) -> None:
        """Run the newest slot whose record and package are valid, else the built-in model."""
        best: tuple[int, int, pk.Package] | None = None
        for slot in range(SLOTS):
            rec = self.record(slot)
            if rec is None:
                continue
            seq, length, sha = rec
            try:
                pkg = validate(self.flash.read(self.base(slot), length), sha, self.board, self.resolver())
            except Refused:
                continue
            if best is None or seq > best[0]:
                best = (seq, slot, pkg)
        if best is not None:
            _, slot, pkg = best
            self._run(pkg, slot)

    def _run(self, pkg: pk.Package, slot: int) -> None:
        self.switch(config_from_package(pkg), pkg.payload)
        self.running, self.running_slot, self.running_sha256 = pkg, slot, pkg.model_sha256

    def info(self) -> dict[str, object]:
        """The INFO keys the push-ready classifier adds: the running model's sha256 and slot."""
        slot = p.INFO_SLOT_BUILTIN if self.running_slot == p.PUSH_BUILTIN_SLOT else self.running_slot
        return {"model": self.running_sha256, "slot": slot}

    # ------------------------------------------------------------------ the exchange
    # (gk_push.h's Transfer, state for state: the same notifications for the same writes)
    def _status(self) -> p.PushStatus:
        busy = self._state in (p.PushState.ERASING, p.PushState.RECEIVING, p.PushState.VALIDATING)
        return p.PushStatus(self._state, self._error, self._offset, self._total,
                            self._slot if busy else self.running_slot, self._reason)

    @property
    def status(self) -> p.PushStatus:
        return self._status()

    def _notify(self) -> None:
        """Every notification restarts the acknowledgement count (docs/push.md)."""
        self._chunks = 0
        if self.notify is not None:
            self.notify(p.encode_push_status(self._status()))

    def _fail(self, error: p.PushError, text: str) -> None:
        """FAILED: the transfer is forgotten (a BEGIN after it starts over), the running model stays."""
        self._state, self._error, self._reason = p.PushState.FAILED, error, text[:p.PUSH_STATUS_TEXT_MAX]
        self._total, self._sha, self._erase = 0, b"", []
        self._notify()

    def control(self, data: bytes) -> None:
        """A PUSH_CONTROL write."""
        if not data:
            return
        op = data[0]
        if op == p.PushOp.BEGIN:
            self._begin_op(data)
        elif op == p.PushOp.COMMIT:
            self._commit()
        elif op == p.PushOp.ABORT:
            if self._state == p.PushState.DONE:
                self._notify()  # nothing in progress to abort
            else:
                self._fail(p.PushError.ABORTED, "aborted by the host; the running model stays")
        elif op == p.PushOp.STATUS:
            self._notify()
        else:
            self._fail(p.PushError.BAD_REQUEST, f"unknown PUSH_CONTROL op 0x{op:02X}")

    def _begin_op(self, data: bytes) -> None:
        if len(data) != p.PUSH_BEGIN.size:
            self._fail(p.PushError.BAD_REQUEST, f"BEGIN of {len(data)} bytes; expected {p.PUSH_BEGIN.size}")
            return
        _, length, sha, ack = p.PUSH_BEGIN.unpack(data)
        if (length, sha) == (self._total, self._sha) and self._state in (
                p.PushState.ERASING, p.PushState.RECEIVING, p.PushState.VALIDATING):
            self._ack_every, self._complained = ack or 1, False  # resume: the host may ask for another pace
            self._reason = "resumed" if self._state == p.PushState.RECEIVING and self._offset else ""
            self._notify()
            return
        if not 0 < length <= pk.MAX_PACKAGE_BYTES:
            self._fail(p.PushError.TOO_LARGE, f"a package of {length} bytes; a slot holds 1..{pk.MAX_PACKAGE_BYTES}")
            return
        self._slot = 0 if self.running_slot == 1 else 1 if self.running_slot == 0 else self._free_slot()
        self._total, self._sha, self._ack_every = length, sha, ack or 1
        self._offset, self._tail, self._chunks, self._complained = 0, b"", 0, False
        base = self.base(self._slot)
        # the record first: from here on a power cut leaves this slot invalid, never half a model
        self._erase = [self._record_addr(self._slot)] + [base + k * pk.FLASH_SECTOR
                                                         for k in range(-(-length // pk.FLASH_SECTOR))]
        self._state, self._error, self._reason = p.PushState.ERASING, p.PushError.NONE, ""
        self._notify()

    def _free_slot(self) -> int:
        """Running the built-in model: the slot with no record, else the older one."""
        recs = [self.record(s) for s in range(SLOTS)]
        if recs[0] is None or recs[1] is None:
            return 0 if recs[0] is None else 1
        return 0 if recs[0][0] < recs[1][0] else 1

    def step(self) -> bool:
        """One ``loop()``: erase one sector of the transfer's slot; True while erasing goes on."""
        if self._state != p.PushState.ERASING or not self._erase:
            return False
        self.flash.erase(self._erase.pop(0))
        if not self._erase:
            self._state = p.PushState.RECEIVING
            self._notify()
        return bool(self._erase)

    def data(self, write: bytes) -> None:
        """A PUSH_DATA write (without response)."""
        if len(write) <= p.PUSH_DATA_HEADER.size:
            return
        if self._state != p.PushState.RECEIVING:
            # ERASING, VALIDATING, DONE, FAILED: chunks still in flight, ignored (a failure keeps its
            # reason); never a transfer since boot: refused
            if self._state == p.PushState.IDLE:
                self._fail(p.PushError.BAD_REQUEST, "DATA without a transfer: send BEGIN first")
            return
        (offset,) = p.PUSH_DATA_HEADER.unpack_from(write)
        chunk = write[p.PUSH_DATA_HEADER.size:]
        if offset != self._offset:  # go-back-N: say once which offset comes next
            if not self._complained:
                self._notify()
            self._complained = True
            return
        if len(chunk) > self._total - self._offset:
            self._fail(p.PushError.BAD_REQUEST, f"a chunk of {len(chunk)} bytes at {offset} runs past the package's "
                       f"{self._total} bytes")
            return
        self._program(chunk)
        self._complained = False
        self._chunks += 1
        if self._offset == self._total or self._chunks >= self._ack_every:
            self._notify()  # chunks counted since the last notification

    def _program(self, chunk: bytes) -> None:
        """Whole words to flash; 1..3 trailing bytes wait in RAM for the next chunk (the package's
        last word is padded with 0xFF, the erased value)."""
        data = self._tail + chunk
        start = self.base(self._slot) + self._offset - len(self._tail)
        words = len(data) - len(data) % p.PUSH_CHUNK_ALIGN
        if words:
            self.flash.program(start, data[:words])
        self._tail = data[words:]
        self._offset += len(chunk)
        if self._offset == self._total and self._tail:
            self.flash.program(start + words, self._tail + b"\xff" * (p.PUSH_CHUNK_ALIGN - len(self._tail)))
            self._tail = b""

    def _commit(self) -> None:
        if self._state in (p.PushState.VALIDATING, p.PushState.DONE):  # a repeated COMMIT
            self._notify()
            return
        if self._state != p.PushState.RECEIVING or self._offset != self._total:
            self._fail(p.PushError.BAD_REQUEST, f"COMMIT with {self._offset} of {self._total} bytes received"
                       if self._state == p.PushState.RECEIVING else
                       "COMMIT without a transfer: send BEGIN and every byte first")
            return
        self._state, self._reason = p.PushState.VALIDATING, ""
        self._notify()
        try:
            pkg = validate(self.flash.read(self.base(self._slot), self._total), self._sha, self.board, self.resolver())
        except Refused as e:
            self._fail(e.error, e.text)
            return
        seq = max([r[0] for r in (self.record(s) for s in range(SLOTS)) if r is not None], default=0) + 1
        self._run(pkg, self._slot)  # the classifier takes it between two windows
        head = RECORD.pack(RECORD_MAGIC, seq, self._total, 0, self._sha)
        self.flash.program(self._record_addr(self._slot), head + struct.pack("<I", zlib.crc32(head)))
        self._state, self._error, self._reason = p.PushState.DONE, p.PushError.NONE, ""
        self._notify()
