// USB/PluggableUSBSerial.h of the gesture-kit host shim. Follows ArduinoCore-mbed 4.6.0's
// cores/arduino/USB/PluggableUSBSerial.h: the only header of the real core that declares
// `_SerialUSB` (Arduino.h does not), so a sketch that uses it must include this file on the board
// and here alike.
#pragma once
#include <Arduino.h>

// The USBCDC part of the core's USBSerial, public there too: send_nb copies into the 64-byte
// packet buffer only when the terminal is connected and no transfer is in progress.
class USBSerial {
 public:
  void send_nb(uint8_t* buffer, uint32_t size, uint32_t* actual, bool now = true);
  bool connected();
};
extern USBSerial _SerialUSB;
