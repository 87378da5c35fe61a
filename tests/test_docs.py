"""The protocol page must state the constants the code uses (the code is the one definition)."""
from __future__ import annotations

import re
from pathlib import Path

from capture import protocol as p

DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


def test_uuids_and_name_match_code():
    for uuid in (p.SERVICE_UUID, p.IMU_CHAR_UUID, p.INFO_CHAR_UUID, p.CONTROL_CHAR_UUID, p.PREDICTION_CHAR_UUID):
        assert f"`{uuid}`" in DOC, uuid
    assert f"**{p.BLE_LOCAL_NAME}**" in DOC


def test_frame_types_commands_and_scales_match_code():
    for t in p.FrameType:
        assert re.search(rf"\| {t.name} \| 0x{t.value:02X} \|", DOC), t
    for c in p.Command:
        assert re.search(rf"\| {c.name} \| 0x{c.value:02X} \|", DOC), c
    assert f"Protocol version: **{p.PROTOCOL_VERSION}**" in DOC
    assert f"**{p.ACCEL_LSB_PER_G:g} counts per g**" in DOC
    assert f"**{p.GYRO_LSB_PER_DPS:g} counts per deg/s**" in DOC
    assert ", ".join(map(str, p.SUPPORTED_RATES_HZ)) in DOC
    assert f"at most {p.MAX_PAYLOAD}" in DOC and "0xA5 0x5A" in DOC and p.SYNC == b"\xA5\x5A"


def test_ble_batch_sizes_stated_match_code():
    assert p.ble_samples_per_notification(23, 6) == 1 and p.ble_samples_per_notification(23, 3) == 2
    assert p.ble_samples_per_notification(247, 6) == 19 and p.ble_samples_per_notification(247, 3) == 39
    assert "MTU 23: 1 sample of 6 channels or 2 of 3" in DOC and "MTU 247: 19 of 6 channels or 39 of 3" in DOC
