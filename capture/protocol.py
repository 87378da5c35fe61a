"""The wire protocol between the board and the host: the single source of truth.

Everything the firmware and the host must agree on is defined here once: frame layout, frame
types, control commands, IMU scales, BLE UUIDs. :func:`c_header` turns these definitions into
``gesture_protocol.h``, which the Arduino sketches include, and a test compiles the sketch's C++
encoder on the host and checks its bytes against :func:`encode_frame`.

Serial frame (little-endian)::

    offset size field
    0      2    sync        0xA5 0x5A
    2      1    version     PROTOCOL_VERSION
    3      1    type        FrameType
    4      2    seq         u16, +1 per frame of that stream, wraps (gaps = frames lost)
    6      4    t_us        u32 device time in microseconds (first sample of the frame), wraps
    10     2    length      u16 payload length (<= MAX_PAYLOAD)
    12     n    payload
    12+n   2    crc         CRC-16/CCITT-FALSE over bytes 2 .. 12+n (version through payload)

Payloads:

* ``IMU``: ``u8 channels, u8 count`` then ``count * channels`` int16 samples, sample-major
  (ax, ay, az[, gx, gy, gz] for sample 0, then sample 1, ...). Counts to units:
  ``ACCEL_LSB_PER_G`` and ``GYRO_LSB_PER_DPS``.
* ``INFO``: ASCII ``key=value`` pairs joined by ``;`` (see :func:`encode_info`).
* ``PREDICTION``: ``u8 class`` (``UNKNOWN_CLASS`` when rejected), ``u8 confidence`` (0-255 =
  probability * 255), ``u8 n``, then ``n`` u8 per-class scores (probability * 255).
* ``EVENT``: ``u8 class, u8 score``: the board's post-processor (training/postprocess.py) fired
  for ``class`` with mean score ``score`` (0-255); at most one per PREDICTION, right after it.
* ``CONTROL`` (host to device): ``u8 command, u32 argument``.
* ``LOG``: ASCII text (boot messages, errors), for humans.

BLE carries the same payloads in one custom GATT service; notifications drop sync, version,
length and CRC (the link layer has its own CRC) but keep ``seq`` and ``t_us`` in front:
``IMU`` and ``PREDICTION`` notifications are ``<HI`` seq, t_us followed by the payload.
"""
from __future__ import annotations

import binascii
import enum
import re
import struct
from dataclasses import dataclass

import numpy as np

PROTOCOL_VERSION = 1
SYNC = b"\xA5\x5A"
HEADER = struct.Struct("<2sBBHIH")  # sync, version, type, seq, t_us, length
HEADER_SIZE = HEADER.size  # 12
CRC_SIZE = 2
MAX_PAYLOAD = 512
MAX_SAMPLES_PER_FRAME = 10
FRAMES_PER_SECOND_TARGET = 100  # the firmware batches samples so it sends about this many frames/s
UNKNOWN_CLASS = 0xFF

# IMU scales (datasheet full-scale ranges the capture firmware configures: accel +-4 g,
# gyro +-2000 dps, so an int16 count is 4/32768 g and 2000/32768 deg/s).
ACCEL_RANGE_G = 4
GYRO_RANGE_DPS = 2000
ACCEL_LSB_PER_G = 32768 / ACCEL_RANGE_G  # 8192
GYRO_LSB_PER_DPS = 32768 / GYRO_RANGE_DPS  # 16.384
DEFAULT_RATE_HZ = 119
SUPPORTED_RATES_HZ = (10, 25, 50, 100, 119, 238, 476, 952, 1000)

BLE_LOCAL_NAME = "GestureKit"
# 128-bit UUIDs of the custom service, generated once for this project.
SERVICE_UUID = "5f7c0001-8a3e-4c1b-9d2a-6e0b4f3a9c11"
IMU_CHAR_UUID = "5f7c0002-8a3e-4c1b-9d2a-6e0b4f3a9c11"
INFO_CHAR_UUID = "5f7c0003-8a3e-4c1b-9d2a-6e0b4f3a9c11"
CONTROL_CHAR_UUID = "5f7c0004-8a3e-4c1b-9d2a-6e0b4f3a9c11"
PREDICTION_CHAR_UUID = "5f7c0005-8a3e-4c1b-9d2a-6e0b4f3a9c11"
EVENT_CHAR_UUID = "5f7c0006-8a3e-4c1b-9d2a-6e0b4f3a9c11"
BLE_NOTIFY_HEADER = struct.Struct("<HI")  # seq, t_us
ATT_OVERHEAD = 3  # bytes of an ATT notification that are not payload (opcode + handle)
# ATT MTU: 23 (the BLE minimum) until the central asks for more with an MTU exchange, which desktop
# centrals do at connect. ArduinoBLE 2.0.1 answers with at most its max MTU, on the Nano 33 BLE
# 247: utility/HCI.cpp readLeBufferSize() calls ATT.setMaxMtu(pktLen - 9), and the Cordio
# controller's ACL length is 256 (ArduinoCore-mbed 4.6.0 mbed_config.h CORDIO_LL_MAX_ACL_SIZE).
# The sketches read the negotiated MTU (ATT.mtu(), gk_link.h gk_ble_mtu()) and put as many IMU
# samples in a notification as it holds; their characteristics are sized for BLE_MAX_MTU.
BLE_NOTIFY_MTU = 23
BLE_MAX_MTU = 247


class FrameType(enum.IntEnum):
    INFO = 0x01
    IMU = 0x02
    PREDICTION = 0x03
    CONTROL = 0x04
    LOG = 0x05
    EVENT = 0x06


class Command(enum.IntEnum):
    STOP = 0x00
    START = 0x01
    SET_RATE = 0x02  # argument: rate in Hz
    INFO = 0x03  # ask the device to send its INFO frame again


CONTROL_PAYLOAD = struct.Struct("<BI")
IMU_PAYLOAD_HEADER = struct.Struct("<BB")  # channels, count
PREDICTION_PAYLOAD_HEADER = struct.Struct("<BBB")  # class, confidence, n
EVENT_PAYLOAD = struct.Struct("<BB")  # class, score


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out).

    ``binascii.crc_hqx`` is exactly this CRC, in C: a per-bit Python loop cost ~1 ms per frame,
    too slow for a 1 kHz stream. The firmware uses the bitwise 8-iteration loop (no 512-byte
    table in flash); tests/test_protocol_core.py checks both against a bitwise reference.
    Check value: crc16_ccitt(b"123456789") == 0x29B1.
    """
    return binascii.crc_hqx(data, crc)


def samples_per_frame(rate_hz: float) -> int:
    """How many samples the firmware packs into one serial frame at ``rate_hz``."""
    n = -(-int(rate_hz) // FRAMES_PER_SECOND_TARGET)  # ceil
    return max(1, min(MAX_SAMPLES_PER_FRAME, n))


def max_labels_per_prediction(mtu: int = BLE_NOTIFY_MTU) -> int:
    """How many per-class scores one PREDICTION notification carries whole at ATT ``mtu``.

    At MTU 23 that is 11: ArduinoBLE cuts a longer notification to MTU - 3 bytes and the host
    rejects the cut payload, so the export refuses larger label sets."""
    return mtu - ATT_OVERHEAD - BLE_NOTIFY_HEADER.size - PREDICTION_PAYLOAD_HEADER.size


def ble_samples_per_notification(mtu: int, channels: int) -> int:
    """How many samples fit one IMU notification at the negotiated ATT ``mtu``."""
    room = mtu - ATT_OVERHEAD - BLE_NOTIFY_HEADER.size - IMU_PAYLOAD_HEADER.size
    return max(1, min(255, room // (2 * channels)))


# ----------------------------------------------------------------------------- push over BLE
# The transfer service (docs/push.md): a model package (training/package.py) goes into the
# running classifier through three more characteristics of the same GATT service.
#   PUSH_CONTROL  write (with response): u8 PushOp, then its arguments (PUSH_BEGIN for BEGIN)
#   PUSH_DATA     write without response: u32 offset, then bytes of the package at that offset
#   PUSH_STATUS   read + notify: PUSH_STATUS header (state, error, offset, total, slot), then ASCII text
# The board acknowledges with a STATUS notification every `ack_every` chunks (BEGIN's argument) and
# whenever the state changes; `offset` is the count of package bytes received in order and
# programmed. A chunk at another offset than `offset` is not programmed: the board answers with a
# STATUS holding the offset it wants (go-back-N), so a lost write costs a rewind, never a gap.
PUSH_CONTROL_CHAR_UUID = "5f7c0007-8a3e-4c1b-9d2a-6e0b4f3a9c11"
PUSH_DATA_CHAR_UUID = "5f7c0008-8a3e-4c1b-9d2a-6e0b4f3a9c11"
PUSH_STATUS_CHAR_UUID = "5f7c0009-8a3e-4c1b-9d2a-6e0b4f3a9c11"
PUSH_BEGIN = struct.Struct("<BI32sH")  # op BEGIN, package length, sha256 of the whole package, ack_every
PUSH_DATA_HEADER = struct.Struct("<I")  # offset
PUSH_STATUS = struct.Struct("<BBIIB")  # state, error, offset, total, slot (0xFF: built-in model)
PUSH_STATUS_TEXT_MAX = 100  # bytes of ASCII after the header, at most
PUSH_CHUNK_ALIGN = 4  # flash programs 32-bit words: every chunk but the last is a multiple of this
PUSH_ACK_EVERY_DEFAULT = 8
PUSH_BUILTIN_SLOT = 0xFF


class PushOp(enum.IntEnum):
    BEGIN = 0x01  # PUSH_BEGIN: erase a slot for a package (the same length+sha again: resume)
    COMMIT = 0x02  # every byte is in: validate, switch between windows, remember as newest
    ABORT = 0x03  # forget the transfer; the running model stays
    STATUS = 0x04  # notify PUSH_STATUS now


class PushState(enum.IntEnum):
    IDLE = 0
    ERASING = 1  # BEGIN accepted; sectors are erased one per loop() so BLE keeps running
    RECEIVING = 2  # ready for / taking DATA at `offset`
    VALIDATING = 3  # COMMIT: hashes, ops, AllocateTensors, shapes
    DONE = 4  # the new model runs (slot says where it lives)
    FAILED = 5  # `error` + text say why; the running model did not change


class PushError(enum.IntEnum):
    NONE = 0
    TOO_LARGE = 1  # the package does not fit a slot
    BAD_REQUEST = 2  # malformed BEGIN/DATA/COMMIT, or DATA/COMMIT without BEGIN
    BAD_HEADER = 3  # magic, format version, header CRC, or a preprocessing value outside the maxima
    WRONG_BOARD = 4  # built for another board
    BAD_HASH = 5  # CRC32 / SHA-256 of what is in flash differ from the header / BEGIN
    MISSING_OP = 6  # the model uses an op this firmware's resolver does not hold
    ARENA = 7  # AllocateTensors failed within the arena
    SHAPE = 8  # input/output tensors do not match the package's preprocessing and labels
    FLASH = 9  # erase or program failed
    ABORTED = 10  # the host sent ABORT
    SCHEMA = 11  # TFLite schema version this TFLM does not support


# At most this many package bytes per PUSH_DATA write, whatever the MTU. ArduinoBLE on the Nano 33
# BLE's mbed core puts every packet the controller receives into a 256-byte ring (HCICordioTransport
# RingBufferN<256>) that only BLE.poll() empties, and drops what does not fit: a chunk is 16 bytes
# of HCI, L2CAP and ATT headers and the offset plus its data, so 224 leaves room beside it for two
# 8-byte Number Of Completed Packets events (a lost one keeps a TX buffer taken until the link
# drops). 240 (MTU 247's room) would fill the ring alone (docs/push.md, "What the link can take").
PUSH_CHUNK_MAX = 224


def push_chunk_size(mtu: int) -> int:
    """Package bytes per PUSH_DATA write at ATT ``mtu``: the write's payload less the offset,
    rounded down to whole flash words, at most PUSH_CHUNK_MAX (16 at MTU 23, 224 from MTU 231)."""
    room = min(mtu - ATT_OVERHEAD - PUSH_DATA_HEADER.size, PUSH_CHUNK_MAX)
    return max(PUSH_CHUNK_ALIGN, room - room % PUSH_CHUNK_ALIGN)


@dataclass(frozen=True)
class PushStatus:
    state: PushState | int
    error: PushError | int
    offset: int
    total: int
    slot: int
    text: str = ""


def encode_push_status(s: PushStatus) -> bytes:
    text = s.text.encode("ascii", "replace")[:PUSH_STATUS_TEXT_MAX]
    return PUSH_STATUS.pack(int(s.state), int(s.error), s.offset, s.total, s.slot) + text


def decode_push_status(data: bytes) -> PushStatus:
    if len(data) < PUSH_STATUS.size:
        raise ValueError(f"PUSH_STATUS of {len(data)} bytes is shorter than its {PUSH_STATUS.size}-byte header")
    state, error, offset, total, slot = PUSH_STATUS.unpack_from(data)
    text = bytes(data[PUSH_STATUS.size:]).decode("ascii", "replace")
    st = PushState(state) if state in PushState._value2member_map_ else state
    err = PushError(error) if error in PushError._value2member_map_ else error
    return PushStatus(st, err, offset, total, slot, text)


def encode_push_begin(length: int, sha256: bytes, ack_every: int = PUSH_ACK_EVERY_DEFAULT) -> bytes:
    if len(sha256) != 32:
        raise ValueError("sha256 must be 32 bytes")
    return PUSH_BEGIN.pack(PushOp.BEGIN, length, sha256, ack_every)


def encode_push_data(offset: int, chunk: bytes) -> bytes:
    return PUSH_DATA_HEADER.pack(offset) + chunk


# ----------------------------------------------------------------------------- frames

@dataclass(frozen=True)
class Frame:
    type: FrameType | int
    seq: int
    t_us: int
    payload: bytes


def encode_frame(ftype: int, seq: int, t_us: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
    head = HEADER.pack(SYNC, PROTOCOL_VERSION, int(ftype), seq & 0xFFFF, t_us & 0xFFFFFFFF, len(payload))
    crc = crc16_ccitt(head[2:] + payload)
    return head + payload + struct.pack("<H", crc)


def decode_frame(buf: bytes) -> Frame:
    """Decode exactly one complete frame (the streaming decoder lives in capture.decoder)."""
    if len(buf) < HEADER_SIZE + CRC_SIZE:
        raise ValueError(f"frame of {len(buf)} bytes is shorter than {HEADER_SIZE + CRC_SIZE}")
    sync, ver, ftype, seq, t_us, length = HEADER.unpack_from(buf)
    if sync != SYNC:
        raise ValueError(f"bad sync {sync.hex()} at byte offset 0; expected {SYNC.hex()}")
    if ver != PROTOCOL_VERSION:
        raise ValueError(f"protocol version {ver}; this host speaks {PROTOCOL_VERSION}")
    end = HEADER_SIZE + length
    if len(buf) != end + CRC_SIZE:
        raise ValueError(f"frame length field says {length} payload bytes but {len(buf) - HEADER_SIZE - CRC_SIZE} are present")
    (crc,) = struct.unpack_from("<H", buf, end)
    if crc != crc16_ccitt(buf[2:end]):
        raise ValueError("CRC mismatch")
    return Frame(FrameType(ftype) if ftype in FrameType._value2member_map_ else ftype, seq, t_us, bytes(buf[HEADER_SIZE:end]))


# ----------------------------------------------------------------------------- payloads

def encode_imu(samples: np.ndarray) -> bytes:
    """(count, channels) int16 counts -> IMU payload."""
    s = np.asarray(samples)
    if s.ndim != 2 or s.shape[0] > 255 or s.shape[1] not in (3, 6):
        raise ValueError(f"IMU samples must be (count<=255, 3 or 6), got {s.shape}")
    return IMU_PAYLOAD_HEADER.pack(s.shape[1], s.shape[0]) + s.astype("<i2").tobytes()


def decode_imu(payload: bytes) -> np.ndarray:
    """IMU payload -> (count, channels) int16 counts."""
    if len(payload) < IMU_PAYLOAD_HEADER.size:
        raise ValueError("IMU payload shorter than its 2-byte header")
    ch, count = IMU_PAYLOAD_HEADER.unpack_from(payload)
    need = IMU_PAYLOAD_HEADER.size + 2 * ch * count
    if ch not in (3, 6) or len(payload) != need:
        raise ValueError(f"IMU payload: {ch} channels x {count} samples needs {need} bytes, got {len(payload)}")
    return np.frombuffer(payload, dtype="<i2", offset=IMU_PAYLOAD_HEADER.size).reshape(count, ch).astype(np.int16)


def counts_to_units(counts: np.ndarray) -> np.ndarray:
    """int16 counts (n, 3|6) -> float g (accel) and deg/s (gyro)."""
    c = np.asarray(counts, dtype=np.float64)
    out = c / ACCEL_LSB_PER_G
    if c.shape[1] == 6:
        out[:, 3:] = c[:, 3:] / GYRO_LSB_PER_DPS
    return out


def units_to_counts(values: np.ndarray) -> np.ndarray:
    """float g / deg/s (n, 3|6) -> int16 counts, saturating like the IMU does at full scale."""
    v = np.asarray(values, dtype=np.float64)
    scale = np.full(v.shape[1], ACCEL_LSB_PER_G)
    scale[3:] = GYRO_LSB_PER_DPS
    return np.clip(np.rint(v * scale), -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class Prediction:
    class_index: int  # UNKNOWN_CLASS when the board rejected the window
    confidence: int  # 0..255
    scores: tuple[int, ...]  # 0..255 per class


def encode_prediction(p: Prediction) -> bytes:
    return PREDICTION_PAYLOAD_HEADER.pack(p.class_index, p.confidence, len(p.scores)) + bytes(p.scores)


def decode_prediction(payload: bytes) -> Prediction:
    if len(payload) < PREDICTION_PAYLOAD_HEADER.size:
        raise ValueError("PREDICTION payload shorter than its 3-byte header")
    cls, conf, n = PREDICTION_PAYLOAD_HEADER.unpack_from(payload)
    if len(payload) != PREDICTION_PAYLOAD_HEADER.size + n:
        raise ValueError(f"PREDICTION payload: {n} scores need {PREDICTION_PAYLOAD_HEADER.size + n} bytes, got {len(payload)}")
    return Prediction(cls, conf, tuple(payload[PREDICTION_PAYLOAD_HEADER.size:]))


@dataclass(frozen=True)
class Event:
    class_index: int  # the label the post-processor detected
    score: int  # 0..255, its mean score over the averaging window


def encode_event(e: Event) -> bytes:
    return EVENT_PAYLOAD.pack(e.class_index, e.score)


def decode_event(payload: bytes) -> Event:
    if len(payload) != EVENT_PAYLOAD.size:
        raise ValueError(f"EVENT payload must be {EVENT_PAYLOAD.size} bytes, got {len(payload)}")
    cls, score = EVENT_PAYLOAD.unpack(payload)
    return Event(cls, score)


def encode_control(cmd: int, arg: int = 0) -> bytes:
    return CONTROL_PAYLOAD.pack(int(cmd), arg)


def decode_control(payload: bytes) -> tuple[Command, int]:
    if len(payload) != CONTROL_PAYLOAD.size:
        raise ValueError(f"CONTROL payload must be {CONTROL_PAYLOAD.size} bytes, got {len(payload)}")
    cmd, arg = CONTROL_PAYLOAD.unpack(payload)
    return Command(cmd), arg


def check_payload(ftype: int, payload: bytes) -> None:
    """Raise ValueError when an IMU/PREDICTION/CONTROL/INFO payload does not decode (or validate).

    Every link calls this before delivering a message, so a CRC-valid frame (or a BLE
    notification, which has no CRC of ours) with a malformed payload is counted and skipped in
    one place instead of failing later in whoever reads it.
    """
    decoder = {FrameType.IMU: decode_imu, FrameType.PREDICTION: decode_prediction,
               FrameType.CONTROL: decode_control, FrameType.INFO: decode_info,
               FrameType.EVENT: decode_event}.get(ftype)  # type: ignore[call-overload]
    if decoder is not None:
        decoder(payload)


INFO_KEYS = ("proto", "fw", "board", "sensor", "mode", "rate", "ch", "acc_fs", "gyr_fs", "labels", "model", "slot")
# The push-ready classifier also reports the running model: `model` = its sha256 (report.json's
# model_sha256, 64 hex digits) and `slot` = the flash slot it runs from ("0", "1") or INFO_SLOT_BUILTIN.
INFO_SLOT_BUILTIN = "builtin"


def encode_info(info: dict[str, object]) -> bytes:
    """``{"fw": "1.0.0", ...}`` -> b"fw=1.0.0;...". Values must not contain ';' or '='."""
    parts = []
    for k, v in info.items():
        s = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
        if ";" in s or "=" in s or ";" in k or "=" in k:
            raise ValueError(f"INFO {k}={s!r} may not contain ';' or '='")
        parts.append(f"{k}={s}")
    return ";".join(parts).encode("ascii")


INFO_MAX_BYTES = 512  # a BLE characteristic value is at most 512 bytes (Core spec, ATT)
INFO_VALUE_MAX = 64  # every value but `labels`
_INFO_TEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+\-]*$")  # fw, board, sensor, mode: no markup, no URL
_INFO_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_INFO_LIST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*(,[A-Za-z0-9][A-Za-z0-9_\-]*)*$")  # ch, labels
_INFO_SHA256 = re.compile(r"^[0-9a-f]{64}$")  # model
_INFO_SLOT = re.compile(rf"^([0-9]{{1,3}}|{INFO_SLOT_BUILTIN})$")  # slot
_INFO_FORMAT = {"proto": _INFO_NUMBER, "rate": _INFO_NUMBER, "acc_fs": _INFO_NUMBER, "gyr_fs": _INFO_NUMBER,
                "fw": _INFO_TEXT, "board": _INFO_TEXT, "sensor": _INFO_TEXT, "mode": _INFO_TEXT,
                "ch": _INFO_LIST, "labels": _INFO_LIST, "model": _INFO_SHA256, "slot": _INFO_SLOT}


_INFO_EXPECTED = {_INFO_NUMBER: "a number", _INFO_LIST: "comma-separated names", _INFO_SHA256: "64 hex digits",
                  _INFO_SLOT: f"a slot number or {INFO_SLOT_BUILTIN!r}"}


def decode_info(payload: bytes) -> dict[str, str]:
    """Parse and validate an INFO payload from a device; ValueError says which key is wrong.

    The payload comes from whatever answers on the port or advertises the kit's BLE name, so it
    is untrusted: only the keys of :data:`INFO_KEYS` are kept (unknown keys are *ignored*, so a
    newer firmware that adds one still works with this host, but nothing unknown reaches a page
    or a file), and each value must match its key's format: numbers for proto/rate/acc_fs/gyr_fs,
    comma-separated identifiers (letters, digits, ``_``, ``-``) for ch/labels, and plain words
    (letters, digits, space, ``. _ + -``) of at most 64 characters for fw/board/sensor/mode.
    Markdown, HTML, URLs and control characters therefore cannot pass. docs/protocol.md says so.
    """
    if len(payload) > INFO_MAX_BYTES:
        raise ValueError(f"INFO of {len(payload)} bytes; expected at most {INFO_MAX_BYTES}")
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError as e:
        raise ValueError(f"INFO byte {e.start} is not ASCII (0x{payload[e.start]:02x})") from None
    out: dict[str, str] = {}
    for part in text.split(";"):
        if "=" not in part:
            continue
        k, v = part.split("=", 1)
        k, v = k.strip(), v.strip()
        fmt = _INFO_FORMAT.get(k)
        if fmt is None:
            continue  # unknown key: ignored (forward compatible), never shown
        limit = INFO_MAX_BYTES if k == "labels" else INFO_VALUE_MAX
        if len(v) > limit or not fmt.match(v):
            raise ValueError(f"INFO {k}={v[:40]!r}{'...' if len(v) > 40 else ''} is not a valid {k} "
                             f"(expected {_INFO_EXPECTED.get(fmt, 'a plain word')}"
                             f" of at most {limit} characters)")
        out[k] = v
    return out


def ble_notification(seq: int, t_us: int, payload: bytes) -> bytes:
    return BLE_NOTIFY_HEADER.pack(seq & 0xFFFF, t_us & 0xFFFFFFFF) + payload


def split_ble_notification(data: bytes) -> tuple[int, int, bytes]:
    if len(data) < BLE_NOTIFY_HEADER.size:
        raise ValueError(f"BLE notification of {len(data)} bytes is shorter than its {BLE_NOTIFY_HEADER.size}-byte header")
    seq, t_us = BLE_NOTIFY_HEADER.unpack_from(data)
    return seq, t_us, bytes(data[BLE_NOTIFY_HEADER.size:])


# ----------------------------------------------------------------------------- C header

def c_header() -> str:
    """The generated ``gesture_protocol.h``: every constant above, for the firmware."""
    lines = [
        "// GENERATED by capture/protocol.py (gesture-kit). Do not edit: run `gesture firmware`",
        "// or re-export a sketch to regenerate. Python and this header are checked equal by tests.",
        "#pragma once",
        "#include <stdint.h>",
        "",
        f"#define GK_PROTOCOL_VERSION {PROTOCOL_VERSION}",
        f"#define GK_SYNC0 0x{SYNC[0]:02X}",
        f"#define GK_SYNC1 0x{SYNC[1]:02X}",
        f"#define GK_HEADER_SIZE {HEADER_SIZE}",
        f"#define GK_CRC_SIZE {CRC_SIZE}",
        f"#define GK_MAX_PAYLOAD {MAX_PAYLOAD}",
        f"#define GK_MAX_SAMPLES_PER_FRAME {MAX_SAMPLES_PER_FRAME}",
        f"#define GK_FRAMES_PER_SECOND_TARGET {FRAMES_PER_SECOND_TARGET}",
        f"#define GK_UNKNOWN_CLASS 0x{UNKNOWN_CLASS:02X}",
        f"#define GK_ACCEL_RANGE_G {ACCEL_RANGE_G}",
        f"#define GK_GYRO_RANGE_DPS {GYRO_RANGE_DPS}",
        f"#define GK_ACCEL_LSB_PER_G {ACCEL_LSB_PER_G!r}f",
        f"#define GK_GYRO_LSB_PER_DPS {GYRO_LSB_PER_DPS!r}f",
        f"#define GK_DEFAULT_RATE_HZ {DEFAULT_RATE_HZ}",
        f"#define GK_BLE_LOCAL_NAME \"{BLE_LOCAL_NAME}\"",
        f"#define GK_SERVICE_UUID \"{SERVICE_UUID}\"",
        f"#define GK_IMU_CHAR_UUID \"{IMU_CHAR_UUID}\"",
        f"#define GK_INFO_CHAR_UUID \"{INFO_CHAR_UUID}\"",
        f"#define GK_CONTROL_CHAR_UUID \"{CONTROL_CHAR_UUID}\"",
        f"#define GK_PREDICTION_CHAR_UUID \"{PREDICTION_CHAR_UUID}\"",
        f"#define GK_EVENT_CHAR_UUID \"{EVENT_CHAR_UUID}\"",
        f"#define GK_BLE_NOTIFY_HEADER_SIZE {BLE_NOTIFY_HEADER.size}",
        f"#define GK_ATT_OVERHEAD {ATT_OVERHEAD}",
        f"#define GK_BLE_NOTIFY_MTU {BLE_NOTIFY_MTU}",
        f"#define GK_BLE_MAX_MTU {BLE_MAX_MTU}",
        "",
    ]
    for t in FrameType:
        lines.append(f"#define GK_FRAME_{t.name} 0x{t.value:02X}")
    for c in Command:
        lines.append(f"#define GK_CMD_{c.name} 0x{c.value:02X}")
    lines += [
        f"#define GK_PUSH_CONTROL_CHAR_UUID \"{PUSH_CONTROL_CHAR_UUID}\"",
        f"#define GK_PUSH_DATA_CHAR_UUID \"{PUSH_DATA_CHAR_UUID}\"",
        f"#define GK_PUSH_STATUS_CHAR_UUID \"{PUSH_STATUS_CHAR_UUID}\"",
        f"#define GK_PUSH_BEGIN_SIZE {PUSH_BEGIN.size}",
        f"#define GK_PUSH_DATA_HEADER_SIZE {PUSH_DATA_HEADER.size}",
        f"#define GK_PUSH_STATUS_SIZE {PUSH_STATUS.size}",
        f"#define GK_PUSH_STATUS_TEXT_MAX {PUSH_STATUS_TEXT_MAX}",
        f"#define GK_PUSH_CHUNK_ALIGN {PUSH_CHUNK_ALIGN}",
        f"#define GK_PUSH_BUILTIN_SLOT 0x{PUSH_BUILTIN_SLOT:02X}",
        f"#define GK_INFO_SLOT_BUILTIN \"{INFO_SLOT_BUILTIN}\"",
    ]
    for enum_cls, prefix in ((PushOp, "GK_PUSH_OP_"), (PushState, "GK_PUSH_STATE_"), (PushError, "GK_PUSH_ERR_")):
        for m in enum_cls:
            lines.append(f"#define {prefix}{m.name} {m.value}")
    lines.append(f"#define GK_SUPPORTED_RATES {{{', '.join(map(str, SUPPORTED_RATES_HZ))}}}")
    lines.append(f"#define GK_NUM_SUPPORTED_RATES {len(SUPPORTED_RATES_HZ)}")
    return "\n".join(lines) + "\n"
