// capture.ino: gesture-kit capture firmware for Arduino Nano 33 BLE Sense (Rev1 and Rev2).
//
// Streams the IMU (accel +-4 g, gyro +-2000 dps, int16 counts) over USB serial as binary frames
// and over BLE as notifications, in the protocol defined once in capture/protocol.py. This file is
// glue only: frame building, batching, INFO text and control parsing live in gk_frame.h, which
// tests/test_firmware_capture.py compiles with g++ and checks byte for byte against Python.
// gesture_protocol.h and gk_capture_version.h are GENERATED (`gesture firmware`); gk_frame.h is a
// copy of firmware/common/gk_frame.h. The virtual board (`gesture simulate --serial`) behaves
// like this sketch; see README.md for what could not be checked without a board.
//
// Board revision: Rev1 has an LSM9DS1 (library Arduino_LSM9DS1), Rev2 a BMI270 + BMM150 (library
// Arduino_BMI270_BMM150). Uncomment the define below for Rev2, or compile with
//   arduino-cli compile --fqbn arduino:mbed_nano:nano33ble --build-property "compiler.cpp.extra_flags=-DGK_BOARD_REV2"
// #define GK_BOARD_REV2

#include <ArduinoBLE.h>
#include <Wire.h>

#ifdef GK_BOARD_REV2
#include <Arduino_BMI270_BMM150.h>
#define GK_BOARD_NAME "nano33ble_rev2"
#define GK_SENSOR_NAME "BMI270"
// The library's begin() runs accel and gyro at 100 Hz (+-4 g, +-2000 dps) and has no public
// setter for the output data rate, so faster rates would only repeat samples: refused.
#define GK_IMU_MAX_RATE_HZ 100
#else
#include <Arduino_LSM9DS1.h>
#define GK_BOARD_NAME "nano33ble"
#define GK_SENSOR_NAME "LSM9DS1"
// LSM9DS1 accel+gyro output data rates: 14.9, 59.5, 119, 238, 476, 952 Hz.
#define GK_IMU_MAX_RATE_HZ 952
#endif

#include "gesture_protocol.h"
#include "gk_capture_version.h"
#include "gk_frame.h"

// IMU notifications are sized for GK_BLE_NOTIFY_MTU (gesture_protocol.h, generated from
// capture/protocol.py): ArduinoBLE has no public call for the negotiated MTU.

static const uint8_t kChannels = 6;
static uint32_t rate_hz = GK_DEFAULT_RATE_HZ;
static uint32_t period_us = 1000000UL / GK_DEFAULT_RATE_HZ;
static uint32_t next_us = 0;
static bool streaming = true;
static uint16_t seq_imu = 0, seq_info = 0, seq_log = 0, seq_ble = 0;
static gk::ImuBatcher serial_batch, ble_batch;
static gk::ControlParser serial_control;
static uint8_t frame_buf[GK_HEADER_SIZE + GK_MAX_PAYLOAD + GK_CRC_SIZE];
static char info_text[160];
static size_t info_len = 0;

BLEService gk_service(GK_SERVICE_UUID);
BLECharacteristic imu_char(GK_IMU_CHAR_UUID, BLENotify, 244);
BLECharacteristic info_char(GK_INFO_CHAR_UUID, BLERead, sizeof(info_text));
BLECharacteristic control_char(GK_CONTROL_CHAR_UUID, BLEWrite, 5);

#ifndef GK_BOARD_REV2
// LSM9DS1 accel/gyro at I2C 0x6B (Wire1 on the Nano 33 BLE). CTRL_REG1_G / CTRL_REG6_XL:
// ODR in bits 7..5; gyro FS 11 = 2000 dps; accel FS 10 = +-4 g (what Arduino_LSM9DS1 sets at 119 Hz).
static void lsm9ds1_set_odr(uint32_t hz) {
  uint8_t odr = hz <= 14 ? 1 : hz <= 59 ? 2 : hz <= 119 ? 3 : hz <= 238 ? 4 : hz <= 476 ? 5 : 6;
  Wire1.beginTransmission(0x6B); Wire1.write(0x10); Wire1.write((odr << 5) | (3 << 3)); Wire1.endTransmission();
  Wire1.beginTransmission(0x6B); Wire1.write(0x20); Wire1.write((odr << 5) | (2 << 3)); Wire1.endTransmission();
}
#endif

static void send_frame(uint8_t type, uint16_t seq, uint32_t t_us, const uint8_t* payload, size_t len) {
  size_t n = gk::encode_frame(frame_buf, sizeof(frame_buf), type, seq, t_us, payload, len);
  // No host listening (DTR low): drop the frame like a USB CDC port nobody reads; seq stays used.
  if (n && Serial) Serial.write(frame_buf, n);
}

static void send_info() {
  info_len = gk::build_info(info_text, sizeof(info_text), GK_FIRMWARE_VERSION, GK_BOARD_NAME, GK_SENSOR_NAME,
                            "capture", rate_hz, kChannels);
  send_frame(GK_FRAME_INFO, seq_info++, micros(), reinterpret_cast<const uint8_t*>(info_text), info_len);
  info_char.writeValue(reinterpret_cast<const uint8_t*>(info_text), info_len);
}

static void configure_batches() {
  serial_batch.configure(kChannels, gk::samples_per_frame(rate_hz));
  ble_batch.configure(kChannels, gk::ble_samples_per_notification(GK_BLE_NOTIFY_MTU, kChannels));
}

static void set_rate(uint32_t hz) {
  if (!gk::rate_supported(hz) || hz > GK_IMU_MAX_RATE_HZ) {
    char text[48];
    size_t n = gk::format_rate_error(text, sizeof(text), hz);
    send_frame(GK_FRAME_LOG, seq_log++, micros(), reinterpret_cast<const uint8_t*>(text), n);
    return;
  }
  rate_hz = hz;
  period_us = 1000000UL / hz;
#ifndef GK_BOARD_REV2
  lsm9ds1_set_odr(hz);
#endif
  configure_batches();
  next_us = micros();
  send_info();
}

static void handle_command(uint8_t cmd, uint32_t arg) {
  switch (cmd) {
    case GK_CMD_STOP: streaming = false; serial_batch.clear(); ble_batch.clear(); break;
    case GK_CMD_START: streaming = true; break;
    case GK_CMD_SET_RATE: set_rate(arg); break;
    case GK_CMD_INFO: send_info(); break;
    default: break;
  }
}

static void on_control_written(BLEDevice, BLECharacteristic c) {
  uint8_t cmd;
  uint32_t arg;
  if (gk::parse_control_payload(c.value(), c.valueLength(), &cmd, &arg)) handle_command(cmd, arg);
}

static void on_ble_connect(BLEDevice) { configure_batches(); }

static void read_imu(int16_t* s) {
  float x, y, z;
  IMU.readAcceleration(x, y, z);  // library floats are exact multiples of 1/8192 g
  s[0] = gk::to_counts(x, GK_ACCEL_LSB_PER_G);
  s[1] = gk::to_counts(y, GK_ACCEL_LSB_PER_G);
  s[2] = gk::to_counts(z, GK_ACCEL_LSB_PER_G);
  IMU.readGyroscope(x, y, z);  // and of 1/16.384 deg/s
  s[3] = gk::to_counts(x, GK_GYRO_LSB_PER_DPS);
  s[4] = gk::to_counts(y, GK_GYRO_LSB_PER_DPS);
  s[5] = gk::to_counts(z, GK_GYRO_LSB_PER_DPS);
}

void setup() {
  Serial.begin(115200);  // USB CDC: the baud rate is ignored
  if (!IMU.begin()) {
    while (true) {
      const char msg[] = "error: IMU not found";
      send_frame(GK_FRAME_LOG, seq_log++, micros(), reinterpret_cast<const uint8_t*>(msg), sizeof(msg) - 1);
      delay(1000);
    }
  }
#ifndef GK_BOARD_REV2
  Wire1.setClock(400000);
#endif
  if (BLE.begin()) {
    BLE.setLocalName(GK_BLE_LOCAL_NAME);
    BLE.setAdvertisedService(gk_service);
    gk_service.addCharacteristic(imu_char);
    gk_service.addCharacteristic(info_char);
    gk_service.addCharacteristic(control_char);
    control_char.setEventHandler(BLEWritten, on_control_written);
    BLE.setEventHandler(BLEConnected, on_ble_connect);
    BLE.addService(gk_service);
    BLE.advertise();
  }
  set_rate(GK_DEFAULT_RATE_HZ);  // also sends the boot INFO
}

void loop() {
  BLE.poll();
  uint8_t cmd;
  uint32_t arg;
  while (Serial.available() > 0) {
    if (serial_control.feed(static_cast<uint8_t>(Serial.read()), &cmd, &arg)) handle_command(cmd, arg);
  }
  uint32_t now = micros();
  if (static_cast<int32_t>(now - next_us) < 0) return;
  next_us += period_us;
  if (static_cast<int32_t>(now - next_us) > static_cast<int32_t>(4 * period_us)) next_us = now + period_us;  // fell behind: no burst
  if (!streaming) return;
  int16_t s[kChannels];
  read_imu(s);
  if (serial_batch.push(s, now)) {
    uint8_t payload[2 + 2 * GK_MAX_SAMPLES_PER_FRAME * kChannels];
    size_t n = serial_batch.payload(payload, sizeof(payload));
    send_frame(GK_FRAME_IMU, seq_imu++, serial_batch.t_first(), payload, n);
    serial_batch.clear();
  }
  if (BLE.connected() && imu_char.subscribed() && ble_batch.push(s, now)) {
    uint8_t note[244];
    size_t n = ble_batch.notification(note, sizeof(note), seq_ble++);
    if (n) imu_char.writeValue(note, n);
    ble_batch.clear();
  }
}
