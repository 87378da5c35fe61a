"""The capture sketch's portable C++ (gk_frame.h + generated gesture_protocol.h) agrees with Python.

A small driver is compiled with ``g++ -std=c++11 -Wall -Wextra -Werror`` and prints, as hex, the
frames and payloads the firmware would send for fixed inputs; every line is compared byte for byte
with the Python encoders and with the virtual board's behaviour. The .ino itself needs the
Arduino core and libraries, which this machine does not have.
"""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from capture import protocol as p
from capture.cli import firmware_files
from capture.resources import capture_sketch_dir
from capture.virtual.serial_board import rate_error_text
from capture.device_info import FIRMWARE_VERSION, capture_info
from tests.conftest import need_tool

IMU = np.array([[1, -2, 3, 32767, -32768, 0], [100, 200, -300, 4, 5, -6], [8192, 0, -8192, 16, -16, 1]],
               dtype=np.int16)
SCORES = (10, 20, 200, 25)
RATES = (1, 10, 25, 50, 99, 100, 101, 119, 238, 476, 952, 1000, 5000)
MTUS = (23, 27, 100, 185, 247, 517)
NOT_RATES = (0, 7, 120, 999, 2000)

DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include "gesture_protocol.h"
#include "gk_capture_version.h"
#include "gk_frame.h"

static void hex(const char* name, const uint8_t* b, size_t n) {
  printf("%s ", name);
  for (size_t i = 0; i < n; ++i) printf("%02x", b[i]);
  printf("\n");
}

int main() {
  static const int16_t imu[3][6] = {{1, -2, 3, 32767, -32768, 0}, {100, 200, -300, 4, 5, -6},
                                    {8192, 0, -8192, 16, -16, 1}};
  uint8_t payload[600], frame[700];
  char text[200];

  size_t n = gk::encode_imu(payload, sizeof(payload), &imu[0][0], 6, 3);
  hex("imu_frame", frame, gk::encode_frame(frame, sizeof(frame), GK_FRAME_IMU, 65535, 4294967295u, payload, n));

  gk::ImuBatcher batch;
  batch.configure(6, 3);
  bool full = false;
  for (int k = 0; k < 3; ++k) full = batch.push(imu[k], 1000u + 8403u * k);
  printf("batch_full %d\n", full ? 1 : 0);
  hex("batch_frame", frame, batch.frame(frame, sizeof(frame), 7));
  hex("batch_notification", frame, batch.notification(frame, sizeof(frame), 9));
  gk::ImuBatcher b3;
  b3.configure(3, 2);
  b3.push(imu[1], 42u);
  hex("batch3_partial_frame", frame, b3.frame(frame, sizeof(frame), 0));

  size_t len = gk::build_info(text, sizeof(text), GK_FIRMWARE_VERSION, "nano33ble", "LSM9DS1", "capture", 119, 6);
  hex("info_frame", frame, gk::encode_frame(frame, sizeof(frame), GK_FRAME_INFO, 3, 123456, (const uint8_t*)text, len));
  len = gk::build_info(text, sizeof(text), GK_FIRMWARE_VERSION, "virtual", "virtual", "capture", 25, 3);
  hex("info3", (const uint8_t*)text, len);
  printf("info_too_small %d\n", (int)gk::build_info(text, 10, "1", "b", "s", "capture", 119, 6));

  const uint8_t scores[4] = {10, 20, 200, 25};
  n = gk::encode_prediction(payload, sizeof(payload), 2, 200, scores, 4);
  hex("prediction_frame", frame, gk::encode_frame(frame, sizeof(frame), GK_FRAME_PREDICTION, 12, 99, payload, n));
  n = gk::encode_prediction(payload, sizeof(payload), GK_UNKNOWN_CLASS, 17, scores, 4);
  hex("unknown_prediction", payload, n);

  n = gk::format_rate_error(text, sizeof(text), 123);
  hex("rate_error", (const uint8_t*)text, n);

  const uint32_t rates[] = {RATES};
  for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); ++i)
    printf("spf %lu %d\n", (unsigned long)rates[i], gk::samples_per_frame(rates[i]));
  const uint16_t mtus[] = {MTUS};
  for (size_t i = 0; i < sizeof(mtus) / sizeof(mtus[0]); ++i)
    printf("bspn %d %d %d\n", mtus[i], gk::ble_samples_per_notification(mtus[i], 3), gk::ble_samples_per_notification(mtus[i], 6));
  const uint32_t supported[] = GK_SUPPORTED_RATES;
  for (int i = 0; i < GK_NUM_SUPPORTED_RATES; ++i) printf("supported %lu %d\n", (unsigned long)supported[i], gk::rate_supported(supported[i]) ? 1 : 0);
  const uint32_t not_rates[] = {NOT_RATES};
  for (size_t i = 0; i < sizeof(not_rates) / sizeof(not_rates[0]); ++i)
    printf("supported %lu %d\n", (unsigned long)not_rates[i], gk::rate_supported(not_rates[i]) ? 1 : 0);

  const float units[] = {1.0f, -5.0f, 0.5f, 0.0001f, -0.25f, 3.99995f};
  printf("acc_counts");
  for (size_t i = 0; i < 6; ++i) printf(" %d", gk::to_counts(units[i], GK_ACCEL_LSB_PER_G));
  printf("\n");
  const float dps[] = {100.0f, -3000.0f, 0.0f, 1999.9f, -0.7f, 12.3f};
  printf("gyr_counts");
  for (size_t i = 0; i < 6; ++i) printf(" %d", gk::to_counts(dps[i], GK_GYRO_LSB_PER_DPS));
  printf("\n");

  // control bytes from stdin: ControlParser results, one line per parsed command
  gk::ControlParser parser;
  int c;
  uint8_t cmd;
  uint32_t arg;
  while ((c = getchar()) != EOF) {
    if (parser.feed(static_cast<uint8_t>(c), &cmd, &arg)) printf("control %d %lu\n", cmd, (unsigned long)arg);
  }
  const uint8_t ble_ctl[5] = {2, 0xE8, 0x03, 0, 0};
  if (gk::parse_control_payload(ble_ctl, 5, &cmd, &arg)) printf("ble_control %d %lu\n", cmd, (unsigned long)arg);
  printf("ble_control_short %d\n", gk::parse_control_payload(ble_ctl, 4, &cmd, &arg) ? 1 : 0);
  return 0;
}
"""


def _control_stream() -> tuple[bytes, list[tuple[int, int]]]:
    """Host -> board bytes with noise, a corrupt frame and a non-CONTROL frame; and what must parse."""
    c = lambda cmd, arg, seq=0: p.encode_frame(p.FrameType.CONTROL, seq, 0, p.encode_control(cmd, arg))  # noqa: E731
    bad = bytearray(c(p.Command.SET_RATE, 50))
    bad[14] ^= 0xFF  # CRC error: must be ignored
    stream = (b"\x00\xA5\xA5" + c(p.Command.INFO, 0) + b"junk\xA5" + bytes(bad) + c(p.Command.SET_RATE, 952, 1)
              + p.encode_frame(p.FrameType.IMU, 0, 0, p.encode_imu(IMU[:1])) + c(p.Command.STOP, 0, 2)
              + b"\xA5\x5A" + c(p.Command.START, 0, 3))
    return stream, [(p.Command.INFO, 0), (p.Command.SET_RATE, 952), (p.Command.STOP, 0), (p.Command.START, 0)]


@pytest.fixture(scope="module")
def driver_output(tmp_path_factory) -> dict[str, list[str]]:
    gpp = need_tool("g++")
    tmp = tmp_path_factory.mktemp("fw")
    for name, text in firmware_files().items():  # exactly what `gesture firmware` writes
        (tmp / name).write_text(text)
    src = tmp / "driver.cpp"
    src.write_text(DRIVER.replace("{RATES}", "{" + ", ".join(map(str, RATES)) + "}")
                   .replace("{MTUS}", "{" + ", ".join(map(str, MTUS)) + "}")
                   .replace("{NOT_RATES}", "{" + ", ".join(map(str, NOT_RATES)) + "}"))
    exe = tmp / "driver"
    build = subprocess.run([gpp, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-I", str(tmp), str(src), "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    stream, _ = _control_stream()
    run = subprocess.run([str(exe)], input=stream, capture_output=True, check=True)
    out: dict[str, list[str]] = {}
    for line in run.stdout.decode().splitlines():
        key, _, rest = line.partition(" ")
        out.setdefault(key, []).append(rest)
    return out


def test_imu_frames_and_notifications_match_python(driver_output):
    assert driver_output["imu_frame"] == [p.encode_frame(p.FrameType.IMU, 65535, 2**32 - 1, p.encode_imu(IMU)).hex()]
    assert driver_output["batch_full"] == ["1"]
    assert driver_output["batch_frame"] == [p.encode_frame(p.FrameType.IMU, 7, 1000, p.encode_imu(IMU)).hex()]
    assert driver_output["batch_notification"] == [p.ble_notification(9, 1000, p.encode_imu(IMU)).hex()]
    assert driver_output["batch3_partial_frame"] == [p.encode_frame(p.FrameType.IMU, 0, 42, p.encode_imu(IMU[1:2, :3])).hex()]


def test_info_matches_the_virtual_board(driver_output):
    info = capture_info(119, 6, board="nano33ble", sensor="LSM9DS1")
    assert driver_output["info_frame"] == [p.encode_frame(p.FrameType.INFO, 3, 123456, p.encode_info(info)).hex()]
    assert driver_output["info3"] == [p.encode_info(capture_info(25, 3)).hex()]
    assert driver_output["info_too_small"] == ["0"]


def test_prediction_and_log_match_python(driver_output):
    pred = p.encode_prediction(p.Prediction(2, 200, SCORES))
    assert driver_output["prediction_frame"] == [p.encode_frame(p.FrameType.PREDICTION, 12, 99, pred).hex()]
    assert driver_output["unknown_prediction"] == [p.encode_prediction(p.Prediction(p.UNKNOWN_CLASS, 17, SCORES)).hex()]
    assert driver_output["rate_error"] == [rate_error_text(123).encode().hex()]


def test_batch_sizes_and_rates_match_python(driver_output):
    assert driver_output["spf"] == [f"{r} {p.samples_per_frame(r)}" for r in RATES]
    assert driver_output["bspn"] == [f"{m} {p.ble_samples_per_notification(m, 3)} {p.ble_samples_per_notification(m, 6)}"
                                     for m in MTUS]
    assert driver_output["supported"] == [f"{r} 1" for r in p.SUPPORTED_RATES_HZ] + [f"{r} 0" for r in NOT_RATES]


def test_float_to_counts_matches_units_to_counts(driver_output):
    acc = p.units_to_counts(np.array([[1.0, -5.0, 0.5], [0.0001, -0.25, 3.99995]])).ravel()
    gyr = p.units_to_counts(np.array([[0, 0, 0, 100.0, -3000.0, 0.0], [0, 0, 0, 1999.9, -0.7, 12.3]]))[:, 3:].ravel()
    assert driver_output["acc_counts"] == [" ".join(map(str, acc))]
    assert driver_output["gyr_counts"] == [" ".join(map(str, gyr))]


def test_control_parser_skips_noise_and_bad_crc(driver_output):
    _, expected = _control_stream()
    assert driver_output["control"] == [f"{int(c)} {a}" for c, a in expected]
    assert driver_output["ble_control"] == ["2 1000"]
    assert driver_output["ble_control_short"] == ["0"]


def test_generated_header_constants_equal_python(tmp_path):
    """Compile a probe that prints the header's constants; they must equal capture.protocol."""
    gpp = need_tool("g++")
    for name, text in firmware_files().items():
        (tmp_path / name).write_text(text)
    src = tmp_path / "probe.cpp"
    src.write_text('#include <stdio.h>\n#include "gesture_protocol.h"\n#include "gk_capture_version.h"\nint main() {\n'
                   'printf("%d %d %d %d %d %d %d %d\\n", GK_PROTOCOL_VERSION, GK_SYNC0, GK_SYNC1, GK_HEADER_SIZE, '
                   'GK_MAX_PAYLOAD, GK_FRAME_IMU, GK_CMD_SET_RATE, GK_UNKNOWN_CLASS);\n'
                   'printf("%.6f %.6f %d %d\\n", (double)GK_ACCEL_LSB_PER_G, (double)GK_GYRO_LSB_PER_DPS, GK_ACCEL_RANGE_G, GK_GYRO_RANGE_DPS);\n'
                   'printf("%s %s %s %s\\n", GK_SERVICE_UUID, GK_IMU_CHAR_UUID, GK_BLE_LOCAL_NAME, GK_FIRMWARE_VERSION);\n'
                   'return 0; }\n')
    subprocess.run([gpp, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path), str(src), "-o",
                    str(tmp_path / "probe")], check=True, capture_output=True)
    lines = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines[0].split() == list(map(str, [p.PROTOCOL_VERSION, p.SYNC[0], p.SYNC[1], p.HEADER_SIZE, p.MAX_PAYLOAD,
                                              int(p.FrameType.IMU), int(p.Command.SET_RATE), p.UNKNOWN_CLASS]))
    f32 = lambda v: f"{float(np.float32(v)):.6f}"  # noqa: E731 (the header's constants are C floats)
    assert lines[1].split() == [f32(p.ACCEL_LSB_PER_G), f32(p.GYRO_LSB_PER_DPS), str(p.ACCEL_RANGE_G),
                                str(p.GYRO_RANGE_DPS)]
    assert lines[2].split() == [p.SERVICE_UUID, p.IMU_CHAR_UUID, p.BLE_LOCAL_NAME, FIRMWARE_VERSION]


def test_committed_sketch_files_are_what_the_generator_writes():
    """firmware/capture/ holds the generated header and the gk_frame.h copy: they cannot drift."""
    sketch = capture_sketch_dir()
    for name, text in firmware_files().items():
        path = sketch / name
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `gesture firmware --out firmware/capture`"
    assert (sketch / "capture.ino").is_file()
