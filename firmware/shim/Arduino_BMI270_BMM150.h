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
// * Conversions: accel = counts / 8192 g, gyro = counts / 16.384 deg/s. (The library also swaps
//   x/y for the Nano 33 BLE's mounting; the replayed counts are already in the board's frame.)
#pragma once
#include <Arduino.h>
#include <Wire.h>

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
};
extern BoschSensorClass IMU;
