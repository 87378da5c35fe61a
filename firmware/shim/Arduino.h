// Arduino.h of the gesture-kit host shim: just enough of the Arduino mbed core (ArduinoCore-mbed,
// Nano 33 BLE) for the project's sketches to compile UNMODIFIED with g++ and run as a process.
//
// Modelled behaviour (see README.md for the sources read):
// * time: millis()/micros()/delay() run on a virtual device clock (shim.cpp). loop() costs
//   GK_SHIM_LOOP_US of device time; delay() and every blocking wait advance it too. The clock is
//   paced against the host clock by a speed factor (0 = unpaced).
// * Serial: the mbed core's USB CDC port. `if (Serial)` is the DTR line (here: the pty's slave side
//   is open). write() returns 0 at once when DTR is low and otherwise WAITS until each 64-byte
//   packet is taken by the host (USBCDC::send waits for the transfer), i.e. forever when a
//   terminal has the port open but does not read. availableForWrite() is Print's default, 0: the
//   core's UART class does not override it. _SerialUSB.send_nb() is the core's non-blocking call.
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARDUINO_ARCH_MBED 1
#define GK_HOST_SHIM 1

unsigned long millis();
unsigned long micros();
void delay(unsigned long ms);
void delayMicroseconds(unsigned int us);

class Print {
 public:
  virtual ~Print() {}
  virtual size_t write(uint8_t c) = 0;
  virtual size_t write(const uint8_t* buf, size_t n) {
    size_t k = 0;
    while (n--) k += write(*buf++);
    return k;
  }
  size_t write(const char* s) { return s ? write(reinterpret_cast<const uint8_t*>(s), strlen(s)) : 0; }
  virtual int availableForWrite() { return 0; }  // ArduinoCore-API Print default (not overridden by mbed UART)
  size_t print(const char* s) { return write(s); }
  size_t print(char c) { return write(static_cast<uint8_t>(c)); }
  size_t print(long v) { return printf_("%ld", v); }
  size_t print(int v) { return print(static_cast<long>(v)); }
  size_t print(unsigned long v) { return printf_("%lu", v); }
  size_t print(unsigned int v) { return print(static_cast<unsigned long>(v)); }
  size_t print(double v, int digits = 2) { return printf_("%.*f", digits, v); }
  size_t println() { return write("\r\n"); }
  template <typename T> size_t println(T v) { size_t n = print(v); return n + println(); }

 private:
  template <typename... A> size_t printf_(const char* fmt, A... a) {
    char b[48];
    int n = snprintf(b, sizeof(b), fmt, a...);
    return n > 0 ? write(reinterpret_cast<const uint8_t*>(b), static_cast<size_t>(n)) : 0;
  }
};

class UART : public Print {
 public:
  void begin(unsigned long) {}
  void end() {}
  int available();
  int read();
  int peek();
  void flush() {}
  size_t write(uint8_t c) override { return write(&c, 1); }
  size_t write(const uint8_t* buf, size_t n) override;
  using Print::write;
  explicit operator bool();
};
extern UART Serial;  // the mbed core: #define Serial _UART_USB_
// _SerialUSB (the USB CDC port's non-blocking side) is NOT here: like the real core, only
// USB/PluggableUSBSerial.h declares it.
