// gk_imu_bmi270.h: the Nano 33 BLE Sense Rev2 IMU, a BMI270 (+ BMM150) driven by
// Arduino_BMI270_BMM150 1.2.3. One small header per sensor (gk_boards.h names it as GK_IMU_HEADER),
// like TFLM's magic_wand has one IMU handler per board. It includes its library itself.
//
// The library's begin() runs accel and gyro at ODR 100 Hz (+-4 g, +-2000 dps) and has no public
// setter for the ODR, so 100 Hz is the only rate this board delivers (anything faster would repeat
// samples): the capture sketch boots at it and refuses others. Sampling is timed by the sensor's
// data-ready interrupt status (accelerationAvailable()), never by micros(); one read returns accel
// and gyro of the same sample (bmi2_get_sensor_data reads both).
#pragma once
#include <Arduino_BMI270_BMM150.h>

#include "gk_frame.h"

// Board name, sensor name and GK_IMU_RATE_HZ come from capture/boards.py (gk_boards.h / gk_config.h).

static inline bool gk_imu_rate_ok(uint32_t hz) { return hz == 100; }

static inline bool gk_imu_begin(bool /*fifo: the 100 Hz data-ready poll keeps up without it*/) { return IMU.begin() != 0; }

static inline bool gk_imu_set_rate(uint32_t hz) { return gk_imu_rate_ok(hz); }

// One new sample as int16 counts (ax, ay, az, gx, gy, gz), or false when the sensor has none yet.
static inline bool gk_imu_read(int16_t s[6]) {
  if (!IMU.accelerationAvailable()) return false;
  float ax, ay, az, gx, gy, gz;
  IMU.readAcceleration(ax, ay, az);  // library floats: counts / 8192 g
  IMU.readGyroscope(gx, gy, gz);     // counts / 16.384 deg/s
  s[0] = gk::to_counts(ax, GK_ACCEL_LSB_PER_G); s[1] = gk::to_counts(ay, GK_ACCEL_LSB_PER_G);
  s[2] = gk::to_counts(az, GK_ACCEL_LSB_PER_G);
  s[3] = gk::to_counts(gx, GK_GYRO_LSB_PER_DPS); s[4] = gk::to_counts(gy, GK_GYRO_LSB_PER_DPS);
  s[5] = gk::to_counts(gz, GK_GYRO_LSB_PER_DPS);
  return true;
}
