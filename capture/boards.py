"""The boards the kit supports: everything the code knows about a board, in one table.

export (budget, sketch), flash (FQBN, core, libraries, -D flags), the capture firmware generator
(``gk_boards.h``), the virtual board (sensor noise) and the board table in the docs read from
here. Adding a board is one :class:`Board` entry here plus, for a new sensor, its C IMU header
``firmware/common/gk_imu_<sensor>.h`` (named by ``imu_header``).

Both Nano 33 BLE Sense revisions share one FQBN; the capture sketch selects its IMU code by the
board's ``defines`` (``-DGK_BOARD_REV2``), which ``gesture flash`` passes to arduino-cli.
"""
from __future__ import annotations

import re

from dataclasses import dataclass

from capture.errors import GestureError

NANO33_CORE = "arduino:mbed_nano"
NANO33_FQBN = "arduino:mbed_nano:nano33ble"
# nRF52840: 1 MB flash of which the Arduino mbed core leaves 983,040 bytes to a sketch (the rest is
# the bootloader), 256 KB RAM. A push-ready classifier must also end below the model slots
# (training/package.py PUSH_READY_FLASH_BYTES, 704,512 bytes): the export's budget uses that limit.
NANO33_FLASH = 983_040
NANO33_RAM = 262_144


@dataclass(frozen=True)
class Board:
    key: str  # the name on the command line, in export.json and in the INFO record
    title: str
    fqbn: str
    core: str  # arduino-cli core that provides fqbn
    libraries: tuple[str, ...]  # Arduino libraries this board's sketches need (IMU library included)
    sensor: str  # IMU name, as the INFO record reports it
    imu_header: str  # firmware/common/gk_imu_*.h: the sensor's setup/read shim for both sketches
    imu_library: str  # the Arduino library that drives the sensor (also in ``libraries``)
    imu_include: str  # its #include line
    imu_rate_hz: int  # rate the IMU library configures (LSM9DS1: 119 Hz; BMI270 library: 100 Hz)
    max_rate_hz: int  # fastest rate the sensor delivers new samples at (faster would repeat samples)
    accel_range_g: int  # full scale the firmware configures (the wire's counts scale, capture.protocol)
    gyro_range_dps: int
    accel_noise_counts: float  # rms accelerometer noise at rest, in wire counts (the virtual board's noise)
    flash_bytes: int  # program storage the core lets a sketch use
    ram_bytes: int
    # Real links (arduino-cli's figures: flash .text+.data+.rodata*, RAM .data+.bss), see the note above BOARDS
    base_flash_bytes: int  # empty sketch including ArduinoBLE and the IMU library, with the core
    base_ram_bytes: int
    classifier_flash_bytes: int  # the push-ready classifier of the reference model (training/export.py REFERENCE)
    classifier_ram_bytes: int
    defines: tuple[str, ...] = ()  # preprocessor symbols that select this board in the sketches
    # The sensor as the simulated hand (capture/virtual/hand.py) models it at the configured full scale
    accel_lsb_g: float = 0.000122  # LSM9DS1 datasheet: 0.122 mg/LSB at +-4 g
    gyro_lsb_dps: float = 0.070  # LSM9DS1 datasheet: 70 mdps/LSB at +-2000 dps
    gyro_noise_dps: float = 0.1  # rms at rest at the output rate (an assumption of the simulation)


# Flash/RAM of real links (issue #19, docs/benchmarks.md "Real builds"): ArduinoCore-mbed 4.6.0 (b4ad4e7)
# with ArduinoCore-API 1.5.2, ArduinoBLE 2.0.1, Arduino_LSM9DS1 1.1.1, Arduino_BMI270_BMM150 1.2.3, built with
# Debian's arm-none-eabi-gcc 12.2.1 by the core's platform.txt recipes (compile, recipe.c.combine,
# recipe.size.regex) and linked against a libmbed.a rebuilt for ARDUINO_NANO33BLE from Mbed OS 6.17.0
# (17dc3dc) plus the core's patches/, as its mbed-os-to-arduino script makes it (develop profile, the
# variant's conf/mbed_app.json); the core's published package ships a libmbed.a of its own toolchain.
# base: an empty sketch that includes ArduinoBLE.h and the IMU library's header; classifier: the push-ready
# sketch `gesture export` writes for the reference model (every FIRMWARE_OPS kernel, the 32 KB arena,
# buffers for the package maxima, flash slots and the BLE transfer service; linked 2026-12-06 from main
# 93d7b00 + the slot constants of branch i19r), the anchor of the export's budget.
BOARDS: dict[str, Board] = {b.key: b for b in (
    Board(key="nano33ble", title="Arduino Nano 33 BLE Sense (Rev1, LSM9DS1 IMU)", fqbn=NANO33_FQBN,
          core=NANO33_CORE, libraries=("ArduinoBLE", "Arduino_LSM9DS1"), sensor="LSM9DS1",
          imu_header="gk_imu_lsm9ds1.h", imu_library="Arduino_LSM9DS1", imu_include="<Arduino_LSM9DS1.h>",
          imu_rate_hz=119, max_rate_hz=952, accel_range_g=4, gyro_range_dps=2000,
          accel_noise_counts=12.0,  # ~1.5 mg rms, the LSM9DS1 accelerometer at 119 Hz
          flash_bytes=NANO33_FLASH, ram_bytes=NANO33_RAM, base_flash_bytes=339_740, base_ram_bytes=70_984,
          classifier_flash_bytes=490_212, classifier_ram_bytes=123_976),
    Board(key="nano33ble_rev2", title="Arduino Nano 33 BLE Sense Rev2 (BMI270 + BMM150 IMU)", fqbn=NANO33_FQBN,
          core=NANO33_CORE, libraries=("ArduinoBLE", "Arduino_BMI270_BMM150"), sensor="BMI270",
          imu_header="gk_imu_bmi270.h", imu_library="Arduino_BMI270_BMM150",
          imu_include="<Arduino_BMI270_BMM150.h>", imu_rate_hz=100, max_rate_hz=100, accel_range_g=4,
          gyro_range_dps=2000,
          accel_noise_counts=12.0,  # BMI270 datasheet: 160 ug/sqrt(Hz), ~1.1 mg rms at 50 Hz bandwidth
          flash_bytes=NANO33_FLASH, ram_bytes=NANO33_RAM, base_flash_bytes=347_716, base_ram_bytes=71_624,
          classifier_flash_bytes=510_300, classifier_ram_bytes=124_616,
          defines=("GK_BOARD_REV2",), accel_lsb_g=1 / 8192, gyro_lsb_dps=1 / 16.4,
          gyro_noise_dps=0.008 * 50 ** 0.5),  # BMI270 datasheet: 8192 LSB/g, 16.4 LSB/dps, 0.008 dps/sqrt(Hz)
)}
DEFAULT_BOARD = "nano33ble"


def get_board(key: str) -> Board:
    """The board called ``key``; a GestureError listing the choices otherwise."""
    try:
        return BOARDS[key]
    except KeyError:
        raise GestureError(f"unknown board {key!r}; expected one of {', '.join(BOARDS)}") from None


def c_header() -> str:
    """``gk_boards.h``: each board's name, sensor, IMU header and rates, selected by its define.

    The board without defines is the default (``#else``), so a plain compile builds for it.
    """
    lines = ["// GENERATED by capture/boards.py (gesture-kit). Do not edit: run `gesture firmware`.",
             "#pragma once", ""]
    default = BOARDS[DEFAULT_BOARD]
    chosen = [b for b in BOARDS.values() if b.defines] + [default]
    for i, b in enumerate(chosen):
        cond = " && ".join(f"defined({d})" for d in b.defines)
        lines.append(("#if " if i == 0 else "#elif ") + cond if b.defines else "#else")
        lines += [f'#define GK_BOARD_NAME "{b.key}"', f'#define GK_SENSOR_NAME "{b.sensor}"',
                  f'#define GK_IMU_HEADER "{b.imu_header}"', f"#define GK_IMU_RATE_HZ {b.imu_rate_hz}",
                  f"#define GK_IMU_MAX_RATE_HZ {b.max_rate_hz}"]
    lines += ["#endif", ""]
    return "\n".join(lines)


CHOICE_HEADER = "gk_board_choice.h"


def choice_header(key: str = DEFAULT_BOARD) -> str:
    """``gk_board_choice.h``: the board a capture sketch folder is written for (``gesture firmware --board``).

    The Arduino IDE cannot pass ``-D`` flags, so the choice lives in the sketch: this header defines
    the board's symbols before ``gk_boards.h`` reads them. A ``-D`` on the command line still works.
    """
    b = get_board(key)
    lines = ["// GENERATED by `gesture firmware --board KEY` (gesture-kit): the board this sketch is built for.",
             f"// board: {b.key} ({b.title})",
             "// Another board: `gesture firmware --board KEY --out THIS_FOLDER`, or write its define here",
             "// (" + "; ".join(f"{o.key}: {' '.join('#define ' + d for d in o.defines) or 'none'}"
                                 for o in BOARDS.values()) + ").",
             "#pragma once"]
    lines += [f"#ifndef {d}\n#define {d}\n#endif" for d in b.defines]
    return "\n".join(lines) + "\n"


def board_from_defines(text: str) -> str | None:
    """The board whose defines are exactly the ``#define GK_BOARD_*`` lines of ``text`` (a choice header)."""
    found = set(re.findall(r"^\s*#\s*define\s+(GK_BOARD_\w+)", text, re.M))
    for b in BOARDS.values():
        if set(b.defines) == found:
            return b.key
    return None


def markdown_table() -> str:
    """The board table of the docs (tests keep docs/user-guide.md equal to it)."""
    rows = ["| board key | board | IMU | IMU rate | FQBN | libraries | defines |",
            "|---|---|---|---|---|---|---|"]
    for b in BOARDS.values():
        rows.append(f"| `{b.key}` | {b.title} | {b.sensor} | {b.imu_rate_hz} Hz | `{b.fqbn}` | "
                    f"{', '.join(b.libraries)} | {' '.join('-D' + d for d in b.defines) or '—'} |")
    return "\n".join(rows) + "\n"
