"""The model package (training/package.py): what `gesture push` sends, checked like the board checks it."""
from __future__ import annotations

import struct
import subprocess
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from capture import protocol as p
from capture.errors import DataError
from conftest import need_tool
from training import package as pkg
from training.model_dir import load_model_dir
from training.preprocess import lowpass_taps, resample_step


def test_round_trip_carries_every_number_the_board_needs(small_model):
    small_model = small_model.model_dir
    cfg, tflite, report = load_model_dir(small_model)
    data = pkg.build_package(small_model, "nano33ble_rev2")
    got = pkg.parse_package(data)
    assert got.payload == tflite
    assert got.model_sha256 == report["model_sha256"] == got.payload_sha256
    assert got.board == "nano33ble_rev2" and got.imu_rate_hz == 100
    assert got.labels == tuple(cfg.labels) and got.channels == list(cfg.channels)
    assert got.window == cfg.window and got.stride == cfg.stride and got.model_rate_hz == cfg.model_rate_hz
    assert list(got.mean) == list(cfg.mean) and list(got.mult) == list(cfg.mult)
    assert got.input_zero_point == cfg.input_zero_point
    assert got.resample_step == resample_step(100, cfg.model_rate_hz)
    assert list(got.lowpass) == [int(v) for v in lowpass_taps(100, cfg.model_rate_hz)]
    assert got.arena_bytes == report["arena_board_bytes"]
    assert got.header_length % pkg.HEADER_ALIGN == 0  # the flatbuffer starts aligned
    assert len(data) == got.header_length + len(tflite)


@pytest.mark.parametrize("offset, what", [(0, "magic"), (100, "header CRC32"), (-1, "payload CRC32")])
def test_one_flipped_byte_is_refused_with_its_place(small_model, offset, what):
    small_model = small_model.model_dir
    data = bytearray(pkg.build_package(small_model, "nano33ble"))
    data[offset] ^= 0x01
    with pytest.raises(DataError, match=what):
        pkg.parse_package(bytes(data))


def test_a_fixed_crc_does_not_hide_a_changed_payload(small_model):
    small_model = small_model.model_dir
    data = bytearray(pkg.build_package(small_model, "nano33ble"))
    h = pkg.parse_package(bytes(data)).header_length
    data[h + 10] ^= 0x40
    # recompute both CRC32s so only the SHA-256 can tell
    struct.pack_into("<I", data, 12, zlib.crc32(bytes(data[h:])))
    struct.pack_into("<I", data, h - 4, zlib.crc32(bytes(data[:h - 4])))
    with pytest.raises(DataError, match="SHA-256"):
        pkg.parse_package(bytes(data))


def test_limits_are_refused_before_anything_is_sent(small_model):
    small_model = small_model.model_dir
    cfg, tflite, report = load_model_dir(small_model)
    sha = report["model_sha256"]
    with pytest.raises(DataError, match="window"):
        pkg.encode(replace(cfg, window=pkg.MAX_WINDOW + 1), tflite, board="nano33ble", model_sha256=sha, arena_bytes=4096)
    with pytest.raises(DataError, match="arena"):
        pkg.encode(cfg, tflite, board="nano33ble", model_sha256=sha, arena_bytes=pkg.MAX_ARENA_BYTES + 1)
    labels = [f"g{i}" for i in range(pkg.MAX_LABELS + 1)]
    with pytest.raises(DataError, match="labels"):
        pkg.encode(replace(cfg, labels=labels), tflite, board="nano33ble", model_sha256=sha, arena_bytes=4096)
    with pytest.raises(DataError, match="slot holds"):
        pkg.encode(cfg, tflite + bytes(pkg.MAX_PACKAGE_BYTES), board="nano33ble", model_sha256=sha, arena_bytes=4096)


def test_limits_follow_the_link_and_flash():
    assert pkg.MAX_LABELS == p.max_labels_per_prediction(p.BLE_NOTIFY_MTU) == 11
    assert pkg.SLOT_BYTES % pkg.FLASH_SECTOR == 0 and pkg.MAX_PACKAGE_BYTES < pkg.SLOT_BYTES
    assert p.push_chunk_size(23) == 16 and p.push_chunk_size(247) == p.PUSH_CHUNK_MAX == 224
    assert all(p.push_chunk_size(m) % p.PUSH_CHUNK_ALIGN == 0 for m in range(23, 248))


def test_slot_addresses_are_defined_once_and_the_board_header_agrees(tmp_path):
    """The slots' place is defined in training/package.py and generated into gk_package.h, which
    gk_flash_iap.h (the board's FlashIAP glue) uses: compiled with g++, the header's addresses are
    Python's, and the push-ready sketch's flash limit is what lies below the slots."""
    assert pkg.SLOTS_BASE == pkg.SLOTS_END - 2 * pkg.SLOT_BYTES == 0xBC000
    assert pkg.PUSH_READY_FLASH_BYTES == pkg.SLOTS_BASE - pkg.APP_FLASH_START == 704_512
    iap = (Path(__file__).resolve().parents[1] / "firmware/templates/gesture_classifier/gk_flash_iap.h").read_text()
    assert "#define GK_SLOTS_BASE" not in iap and "#define GK_SLOTS_END" not in iap and '#include "gk_package.h"' in iap
    gxx = need_tool("g++")
    (tmp_path / "gk_package.h").write_text(pkg.c_header())
    (tmp_path / "main.cpp").write_text(
        '#include <stdio.h>\n#include "gk_package.h"\n'
        'static_assert(GK_SLOTS_BASE == GK_SLOTS_END - 2u * GK_SLOT_BYTES, "slot base");\n'
        'int main() { printf("%lu %lu %lu\\n", (unsigned long)GK_APP_FLASH_START, (unsigned long)GK_SLOTS_BASE, '
        '(unsigned long)GK_SLOTS_END); }\n')
    exe = tmp_path / "slots"
    r = subprocess.run([gxx, "-std=c++11", "-Wall", "-Werror", "-o", str(exe), str(tmp_path / "main.cpp")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert [int(v) for v in out] == [pkg.APP_FLASH_START, pkg.SLOTS_BASE, pkg.SLOTS_END]


def test_push_status_round_trip():
    s = p.PushStatus(p.PushState.FAILED, p.PushError.WRONG_BOARD, 1024, 12688, 1, "built for nano33ble_rev2")
    assert p.decode_push_status(p.encode_push_status(s)) == s
    with pytest.raises(ValueError, match="shorter"):
        p.decode_push_status(b"\x01\x02")
