"""The board registry (capture/boards.py) is the one place board facts live: the generated C
header, the docs table, flash's plan and the export agree with it."""
from __future__ import annotations

import subprocess

import pytest

from capture import boards
from capture import protocol as p
from capture.errors import GestureError
from tests.conftest import ROOT, need_tool
from training.flash import installed_cores, installed_libraries


def test_get_board_names_the_choices_for_an_unknown_key():
    assert boards.get_board("nano33ble_rev2").sensor == "BMI270"
    with pytest.raises(GestureError, match="unknown board 'uno'; expected one of nano33ble, nano33ble_rev2"):
        boards.get_board("uno")


def test_every_board_is_consistent():
    for b in boards.BOARDS.values():
        assert b.imu_library in b.libraries
        assert b.imu_rate_hz in p.SUPPORTED_RATES_HZ and b.imu_rate_hz <= b.max_rate_hz
        # the firmware configures the IMU so its counts are the wire's counts
        assert (b.accel_range_g, b.gyro_range_dps) == (p.ACCEL_RANGE_G, p.GYRO_RANGE_DPS)
        assert b.base_flash_bytes < b.classifier_flash_bytes < b.flash_bytes
        assert b.base_ram_bytes < b.classifier_ram_bytes < b.ram_bytes
        assert b.imu_header.startswith("gk_imu_") and b.imu_header.endswith(".h")
    assert [b for b in boards.BOARDS.values() if not b.defines] == [boards.BOARDS[boards.DEFAULT_BOARD]]


def test_readme_board_table_is_the_registry():
    assert boards.markdown_table() in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("key", list(boards.BOARDS))
def test_generated_board_header_selects_each_board(tmp_path, key):
    gxx = need_tool("g++")
    b = boards.BOARDS[key]
    (tmp_path / "gk_boards.h").write_text(boards.c_header())
    (tmp_path / "probe.cpp").write_text('#include <cstdio>\n#include "gk_boards.h"\n'
                                        'int main() { std::printf("%s %s %s %d %d\\n", GK_BOARD_NAME, GK_SENSOR_NAME, '
                                        'GK_IMU_HEADER, GK_IMU_RATE_HZ, GK_IMU_MAX_RATE_HZ); }\n')
    flags = [f"-D{d}" for d in b.defines]
    subprocess.run([gxx, "-Wall", "-Wextra", "-Werror", *flags, str(tmp_path / "probe.cpp"), "-o",
                    str(tmp_path / "probe")], check=True)
    out = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True, check=True).stdout.split()
    assert out == [b.key, b.sensor, b.imu_header, str(b.imu_rate_hz), str(b.max_rate_hz)]


def test_arduino_cli_json_of_both_major_versions_is_read():
    assert installed_cores('{"platforms": [{"id": "arduino:mbed_nano", "installed_version": "4.2.4"}]}') == \
        {"arduino:mbed_nano"}
    assert installed_cores('[{"id": "arduino:mbed_nano", "installed": "2.0.0"}]') == {"arduino:mbed_nano"}
    assert installed_cores("not json") == set() and installed_cores("{}") == set()
    v1 = '{"installed_libraries": [{"library": {"name": "ArduinoBLE", "version": "1.3.7"}}]}'
    v0 = '[{"library": {"name": "ArduinoBLE", "version": "1.3.7"}}]'
    assert installed_libraries(v1) == installed_libraries(v0) == {"ArduinoBLE": "1.3.7"}
