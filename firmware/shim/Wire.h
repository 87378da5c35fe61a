// Wire.h of the gesture-kit host shim. Follows ArduinoCore-mbed 4.6.0's libraries/Wire/Wire.h
// (`Wire`, `Wire1`; the Nano 33 BLE's sensors are on Wire1).
//
// Modelled: writes reach the simulated LSM9DS1's ODR registers (CTRL_REG1_G 0x10 / CTRL_REG6_XL
// 0x20); a register read of FIFO_SRC (0x2F) returns the simulated FIFO's unread count and overrun
// bit. The bus clock (100 kHz until setClock) sets the device time every transfer costs: the shim's
// IMU libraries charge (3 + n) * 9 bits per n-byte register read (address + register, repeated
// start + address, n data bytes, each with its ACK bit).
#pragma once
#include <Arduino.h>

class TwoWire {
 public:
  void begin() {}
  void setClock(uint32_t hz) { hz_ = hz; }
  void beginTransmission(uint8_t addr) { addr_ = addr; n_ = 0; }
  size_t write(uint8_t b) { if (n_ < sizeof(buf_)) buf_[n_++] = b; return 1; }
  uint8_t endTransmission(bool stopBit = true);
  size_t requestFrom(uint8_t address, size_t len, bool stopBit = true);
  int available() { return static_cast<int>(rx_n_ - rx_off_); }
  int read() { return rx_off_ < rx_n_ ? rx_[rx_off_++] : -1; }
 private:
  friend struct GkShimWire;  // shim.cpp reads the clock: what transfers cost
  uint8_t addr_ = 0, buf_[8] = {0}, rx_[8] = {0};
  size_t n_ = 0, rx_n_ = 0, rx_off_ = 0;
  uint32_t hz_ = 100000;
};
extern TwoWire Wire, Wire1;
