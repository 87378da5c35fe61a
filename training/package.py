"""The model package: what ``gesture push`` sends and the push-ready classifier keeps in flash.

A package is one model folder as the board needs it: a header (identity, hashes, the board it was
built for, every preprocessing and post-processing number the firmware reads at run time, the
labels) followed by the ``.tflite`` bytes. This module owns the format; :func:`c_header` turns the
constants into ``gk_package.h`` for the firmware, whose parser (``gk_package_parse.h``) tests compile
with g++ and check against :func:`parse_package`.

Layout, little-endian (offsets in bytes)::

    0    4   magic            b"GKMP"
    4    2   format version   FORMAT_VERSION
    6    2   header length    H: the payload starts here (a multiple of 16, so the flatbuffer is aligned)
    8    4   payload length   P: the .tflite bytes
    12   4   payload CRC32    zlib.crc32 of the payload
    16   32  payload SHA-256
    48   32  model sha256     report.json's model_sha256 (the INFO the board sends reports it)
    80   16  board            registry key (capture/boards.py), NUL-padded
    96   PRE                  PreprocessBlock: rates, window, stride, counts, thresholds, detector, arena
    ..   n_channels x u8      channel index in the IMU order ax ay az gx gy gz
    ..   n_channels x i32     mean (counts)
    ..   n_channels x i64     Q24 multiplier (1/std and the input scale folded)
    ..   n_taps x i32         Q15 anti-alias FIR taps
    ..   n_labels x (u8 length, ASCII)
    ..   zero padding
    H-4  4   header CRC32     zlib.crc32 of bytes 0 .. H-4
    H    P   payload          model.tflite, byte for byte

The built-in model of an exported sketch is a package too (model_data.cpp), parsed at boot by the
same C++ parser as a pushed one, so a pushed model is preprocessed exactly as an exported one. The
compile-time maxima (``MAX_*``) bound what a push-ready firmware can hold; :func:`build_package`
refuses anything outside them before a byte is sent, naming the field.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from capture import protocol as p
from capture.boards import get_board
from capture.errors import DataError
from capture.takes import ACCEL_CHANNELS, IMU_CHANNELS, LABEL_RE, MAX_LABEL_LEN
from training.postprocess import MAX_AVERAGE, detector_config
from training.preprocess import LOWPASS_MAX_TAPS, LOWPASS_Q, Q16, SHIFT, PreprocessConfig, lowpass_taps, resample_step

MAGIC = b"GKMP"
FORMAT_VERSION = 1
PACKAGE_SUFFIX = ".gkpkg"
FIXED = struct.Struct("<4sHHII32s32s16s")  # magic .. board (96 bytes)
# imu_rate_hz, model_rate_hz, resample_step, window, stride, n_channels, n_labels, n_taps, smoothing,
# motion_threshold, confidence_threshold, input_zero_point, unknown_label_index, detect average,
# detect threshold, detect min_count, detect suppression, arena_bytes
PRE = struct.Struct("<HHIHHBBBBiBbbBBBHI")
HEADER_ALIGN = 16

# Compile-time maxima of the push-ready firmware (generated into gk_package.h).
MAX_LABELS = p.max_labels_per_prediction(p.BLE_NOTIFY_MTU)  # 11: a prediction fits one MTU-23 notification
MAX_CHANNELS = len(IMU_CHANNELS)
MAX_WINDOW = 256
MAX_TAPS = LOWPASS_MAX_TAPS
MAX_ARENA_BYTES = 32 * 1024
FLASH_SECTOR = 4096  # nRF52840 page: the FlashIAP erase unit
SLOT_SECTORS = 18  # one slot: the package, then one sector for the board's commit record
SLOT_BYTES = SLOT_SECTORS * FLASH_SECTOR
MAX_PACKAGE_BYTES = SLOT_BYTES - FLASH_SECTOR
# Where the two slots live on the Nano 33 BLE (docs/push.md, "Where the slots are"; gk_flash_iap.h):
# the sketch's flash starts at 0x10000 (the core's linker script; the Arduino bootloader below), the
# slots end where the core's SoftDevice-capable bootloader would go (0xE0000). A push-ready sketch
# must end below SLOTS_BASE, so its application flash is PUSH_READY_FLASH_BYTES, not the 983,040 the
# core lets any sketch use.
APP_FLASH_START = 0x10000
SLOTS_END = 0xE0000
SLOTS_BASE = SLOTS_END - 2 * SLOT_BYTES  # 0xBC000
PUSH_READY_FLASH_BYTES = SLOTS_BASE - APP_FLASH_START  # 720,896
# More maxima the firmware's fixed buffers need (added with the runtime-config firmware, issue 21):
MAX_SMOOTHING = 64  # gk::Smoother's score history (codegen_preprocess.check_config's limit too)
MAX_DETECT_AVERAGE = MAX_AVERAGE  # gk::Detector's history (training.postprocess)
MAX_UPSAMPLE = 8  # model rate <= 8 x IMU rate: at most 8 (+2) resampled samples per IMU sample
MIN_RESAMPLE_STEP = (1 << Q16) // MAX_UPSAMPLE
MAX_RESAMPLE_OUT = (1 << Q16) // MIN_RESAMPLE_STEP + 2  # gk::Resampler's output buffer
MAX_LABELS_TEXT = 256  # the labels joined by ',': what INFO (at most MAX_PAYLOAD bytes) has room for
MAX_ABS_MEAN = 32768  # |mean| of int16 counts
MAX_MULT = 1 << 46  # (c - mean) * mult stays within int64 for int16 counts
# Offsets in the header of the fields the checks name (a refusal points at the byte, like the board's).
_PRE_OFFSETS = dict(zip(("imu_rate_hz", "model_rate_hz", "resample_step", "window", "stride", "n_channels",
                         "n_labels", "n_taps", "smoothing", "motion_threshold", "confidence_threshold",
                         "input_zero_point", "unknown_label_index", "detect_average", "detect_threshold",
                         "detect_min_count", "detect_suppression", "arena_bytes"),
                        (96, 98, 100, 104, 106, 108, 109, 110, 111, 112, 116, 117, 118, 119, 120, 121, 122, 124)))
BOARD_OFFSET = 80


class PackageError(DataError):
    """A package the board would refuse: ``code`` is the PushError the firmware answers with
    (BAD_HEADER, TOO_LARGE, WRONG_BOARD, BAD_HASH), ``offset`` the byte it points at."""

    def __init__(self, where: str, message: str, code: p.PushError, offset: int) -> None:
        super().__init__(where, message, offset=offset)
        self.code = code
        self.reason = message


@dataclass(frozen=True)
class Package:
    """A parsed package: what the board reads from its header, and the model bytes."""

    board: str
    model_sha256: str
    payload_sha256: str
    payload_crc32: int
    header_length: int
    imu_rate_hz: int
    model_rate_hz: int
    resample_step: int
    window: int
    stride: int
    smoothing: int
    motion_threshold: int
    confidence_threshold: int
    input_zero_point: int
    unknown_label_index: int
    detect_average: int
    detect_threshold: int
    detect_min_count: int
    detect_suppression: int
    arena_bytes: int
    channel_index: tuple[int, ...]
    mean: tuple[int, ...]
    mult: tuple[int, ...]
    lowpass: tuple[int, ...]
    labels: tuple[str, ...]
    payload: bytes

    @property
    def channels(self) -> list[str]:
        return [IMU_CHANNELS[i] for i in self.channel_index]


def _limits(cfg: PreprocessConfig, taps: list[int], arena: int, where: str) -> None:
    for field_, ok, expected in (
        ("labels", 1 <= len(cfg.labels) <= MAX_LABELS, f"1..{MAX_LABELS} labels (a prediction fits one MTU-23 notification)"),
        ("channels", 1 <= len(cfg.channels) <= MAX_CHANNELS and all(c in IMU_CHANNELS for c in cfg.channels),
         f"1..{MAX_CHANNELS} channels among {IMU_CHANNELS}"),
        ("window", 2 <= cfg.window <= MAX_WINDOW, f"2..{MAX_WINDOW} samples (the push-ready firmware's buffers)"),
        ("stride", 1 <= cfg.stride <= cfg.window, "1..window"),
        ("model_rate_hz", 1 <= cfg.model_rate_hz <= 0xFFFF, "1..65535 Hz"),
        ("lowpass taps", 1 <= len(taps) <= MAX_TAPS, f"at most {MAX_TAPS} taps"),
        ("arena_board_bytes", 0 < arena <= MAX_ARENA_BYTES, f"1..{MAX_ARENA_BYTES} bytes (the firmware's tensor arena)"),
        ("smoothing", 1 <= max(1, cfg.smoothing) <= MAX_SMOOTHING, f"1..{MAX_SMOOTHING} windows"),
        ("motion_threshold", -(2**31) <= int(cfg.motion_threshold) < 2**31, "an int32"),
        ("mean", all(-MAX_ABS_MEAN <= int(m) < MAX_ABS_MEAN for m in cfg.mean), "int16 counts"),
        ("mult", all(0 < int(m) < MAX_MULT for m in cfg.mult), f"1..2^{MAX_MULT.bit_length() - 1}"),
        ("labels", len(",".join(cfg.labels)) <= MAX_LABELS_TEXT,
         f"at most {MAX_LABELS_TEXT} characters of labels joined by ',' (the board's INFO must fit)"),
    ):
        if not ok:
            raise DataError(where, f"{field_} = {getattr(cfg, field_, None)!r}; a pushed model needs {expected}", field=field_)
    for label in cfg.labels:
        if len(label.encode("ascii")) > MAX_LABEL_LEN:
            raise DataError(where, f"label {label!r} is longer than {MAX_LABEL_LEN} characters", field="labels")


def encode(cfg: PreprocessConfig, tflite: bytes, *, board: str, model_sha256: str, arena_bytes: int,
           where: str = "config.json") -> bytes:
    """The package bytes of ``tflite`` with ``cfg`` for ``board`` (a registry key)."""
    b = get_board(board)
    taps = [int(v) for v in lowpass_taps(b.imu_rate_hz, cfg.model_rate_hz)]
    _limits(cfg, taps, arena_bytes, where)
    if resample_step(b.imu_rate_hz, cfg.model_rate_hz) < MIN_RESAMPLE_STEP:
        raise DataError(where, f"model_rate_hz = {cfg.model_rate_hz}; a pushed model runs at most {MAX_UPSAMPLE} x the "
                        f"IMU rate of {b.key} ({b.imu_rate_hz} Hz)", field="model_rate_hz")
    if len(cfg.mean) != len(cfg.channels) or len(cfg.mult) != len(cfg.channels):
        raise DataError(where, "mean/mult must hold one value per channel (run `gesture train`)", field="mult")
    det = detector_config(cfg)
    unknown = cfg.labels.index(cfg.unknown_label) if cfg.unknown_label in cfg.labels else -1
    pre = PRE.pack(b.imu_rate_hz, int(cfg.model_rate_hz), resample_step(b.imu_rate_hz, cfg.model_rate_hz),
                   cfg.window, cfg.stride, len(cfg.channels), len(cfg.labels), len(taps), max(1, cfg.smoothing),
                   int(cfg.motion_threshold), int(cfg.confidence_threshold), int(cfg.input_zero_point), unknown,
                   det.average, det.threshold, det.min_count, det.suppression, int(arena_bytes))
    n = len(cfg.channels)
    arrays = (struct.pack(f"<{n}B", *[IMU_CHANNELS.index(c) for c in cfg.channels])
              + struct.pack(f"<{n}i", *[int(m) for m in cfg.mean])
              + struct.pack(f"<{n}q", *[int(m) for m in cfg.mult])
              + struct.pack(f"<{len(taps)}i", *taps)
              + b"".join(bytes([len(lab)]) + lab.encode("ascii") for lab in cfg.labels))
    body_len = FIXED.size + len(pre) + len(arrays) + 4
    header_len = -(-body_len // HEADER_ALIGN) * HEADER_ALIGN
    fixed = FIXED.pack(MAGIC, FORMAT_VERSION, header_len, len(tflite), zlib.crc32(tflite),
                       hashlib.sha256(tflite).digest(), bytes.fromhex(model_sha256), b.key.encode("ascii"))
    head = fixed + pre + arrays
    head += b"\0" * (header_len - 4 - len(head))
    head += struct.pack("<I", zlib.crc32(head))
    package = head + tflite
    if len(package) > MAX_PACKAGE_BYTES:
        raise DataError(where, f"the package is {len(package):,} bytes; a slot holds at most {MAX_PACKAGE_BYTES:,} "
                        "(model.tflite + header): make the model smaller", field="model_bytes")
    return package


def build_package(model_dir: str | Path, board: str) -> bytes:
    """The package of a model folder (checked by load_model_dir) for ``board``."""
    from training.model_dir import load_model_dir

    model_dir = Path(model_dir)
    cfg, tflite, report = load_model_dir(model_dir)
    arena = report.get("arena_board_bytes")
    if not isinstance(arena, int) or arena <= 0:
        raise DataError(model_dir / "report.json", "missing or invalid 'arena_board_bytes'; re-run `gesture train`",
                        field="arena_board_bytes")
    return encode(cfg, tflite, board=board, model_sha256=str(report["model_sha256"]), arena_bytes=arena,
                  where=str(model_dir / "config.json"))


def parse_package(data: bytes, where: str = "package", *, board: str | None = None,
                  check_payload: bool = True) -> Package:
    """Parse and check a package: the checks the board makes before it takes one, in the same order
    as gk_package_parse.h, so both refuse a package with the same PushError and offset
    (:class:`PackageError`). ``board``: the registry key the package must be built for (None: any).
    ``check_payload``: also the payload's CRC32 and SHA-256 (the board hashes flash separately)."""
    B = p.PushError.BAD_HEADER

    def fail(message: str, offset: int, code: p.PushError = B) -> PackageError:
        return PackageError(where, message, code, offset)

    if len(data) < FIXED.size + PRE.size + 4:
        raise fail(f"{len(data)} bytes is shorter than a package header", 0)
    magic, version, header_len, payload_len, crc, sha, model_sha, board_raw = FIXED.unpack_from(data)
    if magic != MAGIC:
        raise fail(f"magic {magic!r}; expected {MAGIC!r} (not a gesture-kit model package)", 0)
    if version != FORMAT_VERSION:
        raise fail(f"format version {version}; this kit reads {FORMAT_VERSION}", 4)
    if header_len % HEADER_ALIGN or header_len < FIXED.size + PRE.size + 4 or header_len > len(data):
        raise fail(f"header length {header_len} is not a multiple of {HEADER_ALIGN} within the package", 6)
    if len(data) != header_len + payload_len:
        raise fail(f"{len(data)} bytes; the header says {header_len} + {payload_len}", 8)
    if len(data) > MAX_PACKAGE_BYTES:
        raise fail(f"{len(data)} bytes; a slot holds at most {MAX_PACKAGE_BYTES}", 8, p.PushError.TOO_LARGE)
    (head_crc,) = struct.unpack_from("<I", data, header_len - 4)
    if zlib.crc32(data[:header_len - 4]) != head_crc:
        raise fail("header CRC32 mismatch", header_len - 4)
    if not board_raw.rstrip(b"\0").isascii() or b"\0" in board_raw.rstrip(b"\0"):
        raise fail("board name is not NUL-padded ASCII", BOARD_OFFSET)
    board_key = board_raw.rstrip(b"\0").decode("ascii")
    if board is not None and board_key != board:
        raise fail(f"built for {board_key}; this board is {board}", BOARD_OFFSET, p.PushError.WRONG_BOARD)
    vals = PRE.unpack_from(data, FIXED.size)
    (imu_rate, model_rate, step, window, stride, n, n_labels, n_taps, smoothing, motion, conf, zp, unknown,
     d_avg, d_thr, d_min, d_sup, arena) = vals
    for name, ok, expected in (
        ("imu_rate_hz", imu_rate >= 1, "1..65535 Hz"),
        ("model_rate_hz", model_rate >= 1, "1..65535 Hz"),
        ("resample_step", MIN_RESAMPLE_STEP <= step <= 1 << 24, f"{MIN_RESAMPLE_STEP}..2^24 (at most {MAX_UPSAMPLE}x upsampling)"),
        ("window", 2 <= window <= MAX_WINDOW, f"2..{MAX_WINDOW}"),
        ("stride", 1 <= stride <= window, "1..window"),
        ("n_channels", 1 <= n <= MAX_CHANNELS, f"1..{MAX_CHANNELS}"),
        ("n_labels", 1 <= n_labels <= MAX_LABELS, f"1..{MAX_LABELS}"),
        ("n_taps", 1 <= n_taps <= MAX_TAPS, f"1..{MAX_TAPS}"),
        ("smoothing", 1 <= smoothing <= MAX_SMOOTHING, f"1..{MAX_SMOOTHING}"),
        ("unknown_label_index", -1 <= unknown < n_labels, "-1..n_labels-1"),
        ("detect_average", 1 <= d_avg <= MAX_DETECT_AVERAGE, f"1..{MAX_DETECT_AVERAGE}"),
        ("detect_min_count", 1 <= d_min <= d_avg, "1..detect_average"),
        ("arena_bytes", 1 <= arena <= MAX_ARENA_BYTES, f"1..{MAX_ARENA_BYTES}"),
    ):
        if not ok:
            raise fail(f"{name} {dict(zip(_PRE_OFFSETS, vals))[name]} is outside {expected}", _PRE_OFFSETS[name])
    off = FIXED.size + PRE.size
    end = header_len - 4
    if off + n * 13 + n_taps * 4 > end:
        raise fail("header arrays run past the header", off)
    index = struct.unpack_from(f"<{n}B", data, off)
    mean = struct.unpack_from(f"<{n}i", data, off + n)
    mult = struct.unpack_from(f"<{n}q", data, off + 5 * n)
    taps = struct.unpack_from(f"<{n_taps}i", data, off + 13 * n)
    for c in range(n):
        if index[c] >= len(IMU_CHANNELS) or index[c] in index[:c]:
            raise fail(f"channel {c} index {index[c]} is not a distinct IMU channel 0..{len(IMU_CHANNELS) - 1}", off + c)
        if not -MAX_ABS_MEAN <= mean[c] < MAX_ABS_MEAN:
            raise fail(f"channel {c} mean {mean[c]} is outside int16 counts", off + n + 4 * c)
        if not 0 < mult[c] < MAX_MULT:
            raise fail(f"channel {c} mult {mult[c]} is outside 1..2^{MAX_MULT.bit_length() - 1}", off + 5 * n + 8 * c)
    off += 13 * n + 4 * n_taps
    labels: list[str] = []
    text = 0
    for i in range(n_labels):
        if off >= end or off + 1 + data[off] > end:
            raise fail("header arrays run past the header", off)
        k = data[off]
        raw = bytes(data[off + 1:off + 1 + k])
        if not 1 <= k <= MAX_LABEL_LEN or not raw.isascii() or not LABEL_RE.fullmatch(raw.decode("ascii")):
            raise fail(f"label {i} is not 1..{MAX_LABEL_LEN} letters, digits, '_' or '-'", off)
        text += k + (i > 0)
        if text > MAX_LABELS_TEXT:
            raise fail(f"the labels joined by ',' exceed {MAX_LABELS_TEXT} characters", off)
        labels.append(raw.decode("ascii"))
        off += 1 + k
    payload = bytes(data[header_len:])
    if check_payload:
        if zlib.crc32(payload) != crc:
            raise fail("payload CRC32 mismatch", 12, p.PushError.BAD_HASH)
        if hashlib.sha256(payload).digest() != sha:
            raise fail("payload SHA-256 mismatch", 16, p.PushError.BAD_HASH)
    return Package(board_key, model_sha.hex(), sha.hex(), crc, header_len, imu_rate, model_rate,
                   step, window, stride, smoothing, motion, conf, zp, unknown, d_avg, d_thr, d_min, d_sup, arena,
                   tuple(index), tuple(mean), tuple(mult), tuple(taps), tuple(labels), payload)


def motion_channels(pkg: Package) -> list[int]:
    """1 for each accelerometer channel (the live trigger's motion energy), as gk::Config motion_channel."""
    return [int(IMU_CHANNELS[i] in ACCEL_CHANNELS) for i in pkg.channel_index]


def c_header() -> str:
    """``gk_package.h``: the format's constants and the firmware's compile-time maxima."""
    lines = [
        "// GENERATED by training/package.py (gesture-kit). Do not edit: re-run `gesture export`.",
        "// The model package format (see training/package.py) and the push-ready firmware's maxima.",
        "#pragma once",
        "#include <stdint.h>",
        "",
        f"#define GK_PKG_MAGIC \"{MAGIC.decode()}\"",
        f"#define GK_PKG_FORMAT_VERSION {FORMAT_VERSION}",
        f"#define GK_PKG_FIXED_SIZE {FIXED.size}",
        f"#define GK_PKG_PRE_SIZE {PRE.size}",
        f"#define GK_PKG_HEADER_ALIGN {HEADER_ALIGN}",
        f"#define GK_PKG_BOARD_SIZE {FIXED.size - 80}",
        f"#define GK_MAX_LABELS {MAX_LABELS}",
        f"#define GK_MAX_LABEL_LEN {MAX_LABEL_LEN}",
        f"#define GK_MAX_CHANNELS {MAX_CHANNELS}",
        f"#define GK_MAX_WINDOW {MAX_WINDOW}",
        f"#define GK_MAX_TAPS {MAX_TAPS}",
        f"#define GK_MAX_ARENA_BYTES {MAX_ARENA_BYTES}",
        f"#define GK_FLASH_SECTOR {FLASH_SECTOR}",
        f"#define GK_SLOT_SECTORS {SLOT_SECTORS}",
        f"#define GK_SLOT_BYTES {SLOT_BYTES}",
        f"#define GK_MAX_PACKAGE_BYTES {MAX_PACKAGE_BYTES}",
        f"#define GK_APP_FLASH_START 0x{APP_FLASH_START:X}u",
        f"#define GK_SLOTS_END 0x{SLOTS_END:X}u",
        f"#define GK_SLOTS_BASE 0x{SLOTS_BASE:X}u  // GK_SLOTS_END - 2 * GK_SLOT_BYTES",
        f"#define GK_MAX_SMOOTHING {MAX_SMOOTHING}",
        f"#define GK_MAX_DETECT_AVERAGE {MAX_DETECT_AVERAGE}",
        f"#define GK_MIN_RESAMPLE_STEP {MIN_RESAMPLE_STEP}",
        f"#define GK_MAX_RESAMPLE_OUT {MAX_RESAMPLE_OUT}",
        f"#define GK_MAX_LABELS_TEXT {MAX_LABELS_TEXT}",
        f"#define GK_MAX_ABS_MEAN {MAX_ABS_MEAN}",
        f"#define GK_MAX_MULT {MAX_MULT}LL",
        f"#define GK_PKG_BOARD_OFFSET {BOARD_OFFSET}",
        f"#define GK_PKG_MULT_SHIFT {SHIFT}  // mult is Q{SHIFT}",
        f"#define GK_PKG_LOWPASS_SHIFT {LOWPASS_Q}  // the low-pass taps are Q{LOWPASS_Q}",
        "",
    ]
    return "\n".join(lines)
