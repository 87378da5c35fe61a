// gk_imu_lsm9ds1.h: the Nano 33 BLE Sense (Rev1) IMU, an LSM9DS1 driven by Arduino_LSM9DS1 1.1.1.
// One small header per sensor (gk_boards.h names it as GK_IMU_HEADER for the board), like TFLM's
// magic_wand has one IMU handler per board. It includes its library itself, so a sketch needs only
// `#include GK_IMU_HEADER` (the Arduino builder finds libraries by running the preprocessor over
// the sketch's files, local headers included; `gesture flash` scans the folder's .h files too).
//
// Sampling is timed by the sensor's own data-ready, never by micros(): gk_imu_read() returns a
// sample only when the LSM9DS1 produced one, so every sample is read once.
//
// Both sketches run the sensor's 32-slot FIFO (continuous mode): in one-shot mode a loop() pass
// longer than one ODR period (1.05 ms at 952 Hz, 2.1 ms at 476 Hz) overwrites a sample and nothing
// says so. With the FIFO, gk_imu_read() reads FIFO_SRC itself (Wire1 0x6B, register 0x2F: unread
// slots in bits 5..0, OVRN in bit 6) once per drained batch, so the FIFO absorbs 32 periods of a slow
// loop; when it overflowed anyway (OVRN), the samples lost are counted in gk_imu_lost (from the time
// since the FIFO was last drained: ticks elapsed minus the 32 kept) and the sketches flush their
// batches, so the next frame starts at a true time. gk_imu_time_us() is the time of the sample just
// read (the FIFO_SRC read time less one period per slot counted after it), so a backlog read in one
// burst keeps its timeline. One slot holds the gyro and accel of one ODR tick, read out through the gyro
// registers and then the accel registers (reading the accel registers advances the read pointer):
// the gyro is read first, for every slot, so both belong to the same tick.
#pragma once
#include <Arduino_LSM9DS1.h>
#include <Wire.h>

#include "gk_frame.h"

// Board name, sensor name and GK_IMU_RATE_HZ come from capture/boards.py (gk_boards.h / gk_config.h).

static uint32_t gk_imu_lost = 0;  // samples the sensor produced that were never read (FIFO overruns)
static bool gk_imu_fifo = false;
static uint32_t gk_imu_hz = 119;       // the ODR set (begin(): 119 Hz)
static uint8_t gk_imu_queued = 0;      // FIFO slots known unread behind the next one
static uint32_t gk_imu_drained_us = 0;  // when the FIFO was last seen empty
static uint32_t gk_imu_src_us = 0;      // when FIFO_SRC was read: its newest slot is from just before
static uint32_t gk_imu_sample_us = 0;   // time of the sample gk_imu_read() returned last

// Output data rates the accel+gyro deliver that the protocol can ask for (14.9 and 59.5 Hz are not
// protocol rates).
static inline bool gk_imu_rate_ok(uint32_t hz) { return hz == 119 || hz == 238 || hz == 476 || hz == 952; }

static inline uint8_t gk_lsm9ds1_register(uint8_t reg) {
  Wire1.beginTransmission(0x6B);
  Wire1.write(reg);
  if (Wire1.endTransmission(false) != 0) return 0;
  if (Wire1.requestFrom(static_cast<uint8_t>(0x6B), static_cast<size_t>(1)) != 1) return 0;
  return static_cast<uint8_t>(Wire1.read());
}

static inline bool gk_imu_begin(bool fifo) {
  if (!IMU.begin()) return false;
  Wire1.setClock(400000);  // 12 bytes per sample at up to 952 Hz
  gk_imu_fifo = fifo;
  if (fifo) IMU.setContinuousMode();
  gk_imu_drained_us = micros();
  return true;
}

// CTRL_REG1_G (0x10) / CTRL_REG6_XL (0x20) at I2C 0x6B (Wire1): ODR in bits 7..5; gyro FS 11 =
// 2000 dps, accel FS 10 = +-4 g (what the library sets at 119 Hz).
static inline bool gk_imu_set_rate(uint32_t hz) {
  if (!gk_imu_rate_ok(hz)) return false;
  const uint8_t odr = hz <= 119 ? 3 : hz <= 238 ? 4 : hz <= 476 ? 5 : 6;
  Wire1.beginTransmission(0x6B); Wire1.write(0x10); Wire1.write((odr << 5) | (3 << 3)); Wire1.endTransmission();
  Wire1.beginTransmission(0x6B); Wire1.write(0x20); Wire1.write((odr << 5) | (2 << 3)); Wire1.endTransmission();
  gk_imu_hz = hz;
  return true;
}

// Device time (us) of the sample gk_imu_read() returned last.
static inline uint32_t gk_imu_time_us() { return gk_imu_sample_us; }

// One new sample as int16 counts (ax, ay, az, gx, gy, gz), or false when the sensor has none yet.
static inline bool gk_imu_read(int16_t s[6]) {
  if (gk_imu_fifo) {
    if (gk_imu_queued == 0) {  // what is there now: one FIFO_SRC read per drained batch
      // No bus poll within half a period of the last drain (the FIFO keeps what comes meanwhile):
      // polling FIFO_SRC on every loop() pass cost half the loop's time at 119 Hz.
      if (micros() - gk_imu_drained_us < 500000u / gk_imu_hz) return false;
      const uint8_t src = gk_lsm9ds1_register(0x2F);
      const uint32_t now = micros();
      if (src & 0x40) {  // OVRN: the FIFO filled and overwrote its oldest slots since it was drained
        const uint32_t ticks = static_cast<uint32_t>(static_cast<uint64_t>(now - gk_imu_drained_us) * gk_imu_hz / 1000000u);
        gk_imu_lost += ticks > 32 ? ticks - 32 : 1;
      }
      const uint8_t n = src & 0x3F;
      if (n == 0) {
        gk_imu_drained_us = now;
        return false;
      }
      gk_imu_queued = n;
      gk_imu_src_us = now;
    }
    --gk_imu_queued;
    // slots are one period apart, the last one counted by FIFO_SRC produced just before it was read
    gk_imu_sample_us = gk_imu_src_us - static_cast<uint32_t>(static_cast<uint64_t>(gk_imu_queued) * 1000000u / gk_imu_hz);
    if (gk_imu_queued == 0) gk_imu_drained_us = micros();
  } else {
    if (!IMU.accelerationAvailable()) return false;
    gk_imu_sample_us = micros();
  }
  float ax, ay, az, gx, gy, gz;
  IMU.readGyroscope(gx, gy, gz);      // the slot's gyro (library floats: counts * 2000 / 32768)
  IMU.readAcceleration(ax, ay, az);   // then its accel, which advances the FIFO (counts * 4 / 32768)
  s[0] = gk::to_counts(ax, GK_ACCEL_LSB_PER_G); s[1] = gk::to_counts(ay, GK_ACCEL_LSB_PER_G);
  s[2] = gk::to_counts(az, GK_ACCEL_LSB_PER_G);
  s[3] = gk::to_counts(gx, GK_GYRO_LSB_PER_DPS); s[4] = gk::to_counts(gy, GK_GYRO_LSB_PER_DPS);
  s[5] = gk::to_counts(gz, GK_GYRO_LSB_PER_DPS);
  return true;
}
