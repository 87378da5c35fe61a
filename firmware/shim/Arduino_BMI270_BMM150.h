// Arduino_BMI270_BMM150.h of the gesture-kit host shim: the library's public API (v1.2.3) over a
// simulated BMI270 that replays recorded IMU counts (shim.cpp, GK_SHIM_IMU).
//
// Modelled behaviour of the sensor and library:
// * begin(): accel and gyro at ODR 100 Hz, +-4 g and +-2000 dps, and no public call to change the
//   ODR. accelerationSampleRate() returns what the library computes from the ODR code,
//   (1 << 8) * 0.39 = 99.84.
// * One-shot mode: the data-ready interrupt status bits (accelerationAvailable() /
//   gyroscopeAvailable()) are set every 1/ODR and cleared when reported; read*() returns the latest
//   sample (an unread one is overwritten).
// * Conversions: accel = counts / 8192 g, gyro = counts / 16.384 deg/s, in the board's frame: for
//   the Nano 33 BLE the library maps the sensor's axes x = -y, y = -x, so bmi2_get_sensor_data()
//   returns the replayed board-frame counts mapped back to the sensor's axes.
//
// From the bundled Bosch BMI270 Sensor API (utilities/BMI270-Sensor-API/bmi2.h, bmi2_defs.h, which
// the library's header includes): bmi2_get_sensor_data() (one burst read of accel AND gyro, what
// the library's readAcceleration() and readGyroscope() each call) and bmi2_set_adv_power_save().
// Device time per call (Wire1, 100 kHz until setClock): each register read costs its bytes on the
// bus ((3 + n) * 9 bits) plus 450 us while advanced power save is on (the BMI270's boot state), 2 us
// otherwise, as bmi2_get_regs() waits. accelerationAvailable() reads INT_STATUS (2 bytes);
// bmi2_get_sensor_data() reads PWR_CTRL (1 byte) then the 12 data bytes.
#pragma once
#include <Arduino.h>
#include <Wire.h>

#define BMI2_OK INT8_C(0)
#define BMI2_ENABLE UINT8_C(1)
#define BMI2_DISABLE UINT8_C(0)

struct bmi2_sens_axes_data {
  int16_t x;
  int16_t y;
  int16_t z;
  uint32_t virt_sens_time;
};
struct bmi2_sens_data {
  struct bmi2_sens_axes_data acc;
  struct bmi2_sens_axes_data gyr;
  uint8_t aux_data[8];
  uint32_t sens_time;
};
struct bmi2_dev {
  uint8_t aps_status = BMI2_ENABLE;  // advanced power save: on after the BMI270 boots
};
int8_t bmi2_get_sensor_data(struct bmi2_sens_data* data, struct bmi2_dev* dev);
int8_t bmi2_set_adv_power_save(uint8_t enable, struct bmi2_dev* dev);

class BoschSensorClass {
 public:
  int begin();
  void end() {}
  void setContinuousMode() {}  // not used by the sketches; not modelled
  void oneShotMode() {}
  int readAcceleration(float& x, float& y, float& z);
  int accelerationAvailable();
  float accelerationSampleRate() { return (1 << 8) * 0.39F; }
  int readGyroscope(float& x, float& y, float& z);
  int gyroscopeAvailable();
  float gyroscopeSampleRate() { return (1 << 8) * 0.39F; }
  int readMagneticField(float& x, float& y, float& z) { x = y = z = 0; return 1; }
  int magneticFieldAvailable() { return 0; }
  float magneticFieldSampleRate() { return 10.0F; }

 private:
  struct bmi2_dev bmi2;  // the library's private Bosch API device (same name and type)
};
extern BoschSensorClass IMU;
