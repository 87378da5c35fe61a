// gk_imu_bmi270.h: the Nano 33 BLE Sense Rev2 IMU, a BMI270 (+ BMM150) driven by
// Arduino_BMI270_BMM150 1.2.3. One small header per sensor (gk_boards.h names it as GK_IMU_HEADER),
// like TFLM's magic_wand has one IMU handler per board. It includes its library itself.
//
// The library's begin() runs accel and gyro at ODR 100 Hz (+-4 g, +-2000 dps) and has no public
// setter for the ODR, so 100 Hz is the only rate this board delivers (anything faster would repeat
// samples): the capture sketch boots at it and refuses others. Sampling is timed by the sensor's
// data-ready interrupt status (accelerationAvailable()), never by micros().
//
// One burst read per sample. The library's readAcceleration() and readGyroscope() each call the
// Bosch API's bmi2_get_sensor_data(), which reads accel AND gyro every time: two full reads per
// sample, ~2 ms apart. And the BMI270 boots with advanced power save on, which makes the API wait
// 450 us after every register access; on the library's 100 kHz I2C that was ~6 ms of every 10 ms.
// So: power save off and I2C at 400 kHz (the BMI270 supports fast mode) at begin, then ONE
// bmi2_get_sensor_data() per sample: accel and gyro of the same instant, ~0.5 ms. The library's
// bmi2_dev is private; it is reached by the standard explicit-instantiation access idiom (no
// library change; if the member is renamed this stops compiling). The axes are mapped as the
// library maps them for the Nano 33 BLE (TARGET_ARDUINO_NANO33BLE: x = -y, y = -x), in integer
// counts (the library's float path gives the same counts: +-4 g is 8192 LSB/g, 2000 dps 16.384).
#pragma once
#include <Arduino_BMI270_BMM150.h>
#include <Wire.h>

#include "gk_frame.h"

// Board name, sensor name and GK_IMU_RATE_HZ come from capture/boards.py (gk_boards.h / gk_config.h).

template <typename Tag, typename Tag::type Member>
struct GkBmiAccess {
  friend typename Tag::type gk_bmi_member(Tag) { return Member; }
};
struct GkBmiDev {
  typedef struct bmi2_dev BoschSensorClass::*type;
  friend type gk_bmi_member(GkBmiDev);
};
template struct GkBmiAccess<GkBmiDev, &BoschSensorClass::bmi2>;

static inline struct bmi2_dev* gk_bmi2() { return &(IMU.*gk_bmi_member(GkBmiDev())); }

static inline bool gk_imu_rate_ok(uint32_t hz) { return hz == 100; }

static uint32_t gk_imu_lost = 0;  // samples never read: not detectable in data-ready mode (no overrun flag)
static uint32_t gk_imu_sample_us = 0;

// Device time (us) of the sample gk_imu_read() returned last (read at once: no backlog at 100 Hz).
static inline uint32_t gk_imu_time_us() { return gk_imu_sample_us; }

static inline bool gk_imu_begin(bool /*fifo: the 100 Hz data-ready poll keeps up without it*/) {
  if (IMU.begin() == 0) return false;
  Wire1.setClock(400000);                             // the library leaves the bus at 100 kHz
  bmi2_set_adv_power_save(BMI2_DISABLE, gk_bmi2());  // no 450 us wait after each register access
  return true;
}

static inline bool gk_imu_set_rate(uint32_t hz) { return gk_imu_rate_ok(hz); }

static inline int16_t gk_bmi_neg(int16_t v) { return v == -32768 ? 32767 : static_cast<int16_t>(-v); }

// One new sample as int16 counts (ax, ay, az, gx, gy, gz), or false when the sensor has none yet.
static inline bool gk_imu_read(int16_t s[6]) {
  // No INT_STATUS poll within 90% of a period of the last sample (nothing new can be there yet; the
  // margin covers the ODR tolerance):
  // polling it on every loop() pass cost half the loop's time.
  if (gk_imu_sample_us != 0 && micros() - gk_imu_sample_us < 9000u) return false;
  if (!IMU.accelerationAvailable()) return false;
  struct bmi2_sens_data d;
  gk_imu_sample_us = micros();
  if (bmi2_get_sensor_data(&d, gk_bmi2()) != BMI2_OK) return false;
  s[0] = gk_bmi_neg(d.acc.y); s[1] = gk_bmi_neg(d.acc.x); s[2] = d.acc.z;
  s[3] = gk_bmi_neg(d.gyr.y); s[4] = gk_bmi_neg(d.gyr.x); s[5] = d.gyr.z;
  return true;
}
