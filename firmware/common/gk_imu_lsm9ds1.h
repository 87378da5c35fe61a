// gk_imu_lsm9ds1.h: the Nano 33 BLE Sense (Rev1) IMU, an LSM9DS1 driven by Arduino_LSM9DS1 1.1.1.
// One small header per sensor (gk_boards.h names it as GK_IMU_HEADER for the board), like TFLM's
// magic_wand has one IMU handler per board. It includes its library itself, so a sketch needs only
// `#include GK_IMU_HEADER` (the Arduino builder finds libraries by running the preprocessor over
// the sketch's files, local headers included; `gesture flash` scans the folder's .h files too).
//
// Sampling is timed by the sensor's own data-ready, never by micros(): gk_imu_read() returns a
// sample only when the LSM9DS1 produced one (STATUS_REG XLDA in one-shot mode, FIFO not empty in
// continuous mode), so every sample is read once: no repeats, no skips while loop() keeps up.
// In continuous (FIFO) mode one slot holds the gyro and accel of one ODR tick, read out through
// the gyro registers and then the accel registers (reading the accel registers advances the read
// pointer): the gyro is read first, for every slot, so both belong to the same tick.
#pragma once
#include <Arduino_LSM9DS1.h>
#include <Wire.h>

#include "gk_frame.h"

// Board name, sensor name and GK_IMU_RATE_HZ come from capture/boards.py (gk_boards.h / gk_config.h).

// Output data rates the accel+gyro deliver that the protocol can ask for (14.9 and 59.5 Hz are not
// protocol rates).
static inline bool gk_imu_rate_ok(uint32_t hz) { return hz == 119 || hz == 238 || hz == 476 || hz == 952; }

static inline bool gk_imu_begin(bool fifo) {
  if (!IMU.begin()) return false;
  Wire1.setClock(400000);  // 12 bytes per sample at up to 952 Hz
  if (fifo) IMU.setContinuousMode();
  return true;
}

// CTRL_REG1_G (0x10) / CTRL_REG6_XL (0x20) at I2C 0x6B (Wire1): ODR in bits 7..5; gyro FS 11 =
// 2000 dps, accel FS 10 = +-4 g (what the library sets at 119 Hz).
static inline bool gk_imu_set_rate(uint32_t hz) {
  if (!gk_imu_rate_ok(hz)) return false;
  const uint8_t odr = hz <= 119 ? 3 : hz <= 238 ? 4 : hz <= 476 ? 5 : 6;
  Wire1.beginTransmission(0x6B); Wire1.write(0x10); Wire1.write((odr << 5) | (3 << 3)); Wire1.endTransmission();
  Wire1.beginTransmission(0x6B); Wire1.write(0x20); Wire1.write((odr << 5) | (2 << 3)); Wire1.endTransmission();
  return true;
}

// One new sample as int16 counts (ax, ay, az, gx, gy, gz), or false when the sensor has none yet.
static inline bool gk_imu_read(int16_t s[6]) {
  if (!IMU.accelerationAvailable()) return false;
  float ax, ay, az, gx, gy, gz;
  IMU.readGyroscope(gx, gy, gz);      // the slot's gyro (library floats: counts * 2000 / 32768)
  IMU.readAcceleration(ax, ay, az);   // then its accel, which advances the FIFO (counts * 4 / 32768)
  s[0] = gk::to_counts(ax, GK_ACCEL_LSB_PER_G); s[1] = gk::to_counts(ay, GK_ACCEL_LSB_PER_G);
  s[2] = gk::to_counts(az, GK_ACCEL_LSB_PER_G);
  s[3] = gk::to_counts(gx, GK_GYRO_LSB_PER_DPS); s[4] = gk::to_counts(gy, GK_GYRO_LSB_PER_DPS);
  s[5] = gk::to_counts(gz, GK_GYRO_LSB_PER_DPS);
  return true;
}
