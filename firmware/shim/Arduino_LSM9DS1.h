// Arduino_LSM9DS1.h of the gesture-kit host shim: the library's public API (v1.1.1) over a
// simulated LSM9DS1 that replays recorded IMU counts (shim.cpp, GK_SHIM_IMU).
//
// Modelled behaviour of the sensor and library:
// * begin(): accel and gyro at 119 Hz, +-4 g and +-2000 dps; accelerationSampleRate() and
//   gyroscopeSampleRate() return the constant 119 (the library never reads the ODR back).
// * The ODR follows CTRL_REG6_XL (0x20) bits 7..5 written over Wire1 (14.9 .. 952 Hz).
// * One-shot mode: a new sample appears in the output registers every 1/ODR; STATUS_REG XLDA/GDA
//   (accelerationAvailable()/gyroscopeAvailable()) are set then and cleared by reading that
//   sensor's output registers; an unread sample is overwritten by the next.
// * Continuous mode (setContinuousMode()): a 32-slot FIFO; each slot holds the gyro and accel of
//   one ODR tick and is read out through the gyro registers then the accel registers: the read
//   pointer advances when the accel registers are read. accelerationAvailable() is "FIFO not
//   empty"; gyroscopeAvailable() still reads STATUS_REG. A full FIFO overwrites its oldest slot.
// * Conversions: accel = counts * 4 / 32768 g, gyro = counts * 2000 / 32768 deg/s.
#pragma once
#include <Arduino.h>
#include <Wire.h>

class LSM9DS1Class {
 public:
  int begin();
  void end() {}
  void setContinuousMode();
  void setOneShotMode();
  int readAcceleration(float& x, float& y, float& z);
  int accelerationAvailable();
  float accelerationSampleRate() { return 119.0F; }
  int readGyroscope(float& x, float& y, float& z);
  int gyroscopeAvailable();
  float gyroscopeSampleRate() { return 119.0F; }
  int readMagneticField(float& x, float& y, float& z) { x = y = z = 0; return 1; }
  int magneticFieldAvailable() { return 0; }
  float magneticFieldSampleRate() { return 20.0F; }
};
extern LSM9DS1Class IMU;
