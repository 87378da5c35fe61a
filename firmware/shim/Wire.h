// Wire.h of the gesture-kit host shim: I2C writes reach the simulated LSM9DS1's registers
// (CTRL_REG1_G 0x10 / CTRL_REG6_XL 0x20 set its output data rate), reads are not modelled.
#pragma once
#include <Arduino.h>

class TwoWire {
 public:
  void begin() {}
  void setClock(uint32_t) {}
  void beginTransmission(uint8_t addr) { addr_ = addr; n_ = 0; }
  size_t write(uint8_t b) { if (n_ < sizeof(buf_)) buf_[n_++] = b; return 1; }
  uint8_t endTransmission(bool = true);

 private:
  uint8_t addr_ = 0, buf_[8] = {0};
  size_t n_ = 0;
};
extern TwoWire Wire, Wire1;
