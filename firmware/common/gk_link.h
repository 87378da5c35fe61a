// gk_link.h: output for the sketches that never blocks loop() (Arduino mbed core + ArduinoBLE).
// Included by the .ino only (it needs the Arduino core); copied into each sketch folder like
// gk_frame.h. Both behaviours below were read in the core's and library's sources
// (ArduinoCore-mbed 4.6.0, ArduinoBLE 2.0.1) and are what firmware/shim models:
//
// * USB serial. `if (Serial)` is only the DTR line (and costs a delay(1)). With DTR high,
//   Serial.write() waits until the host has taken every 64-byte USB packet, which is forever
//   when a terminal holds the port open without reading. Serial.availableForWrite() is Print's
//   default on this core, always 0, so it cannot guard writes. The core's USBCDC::send_nb() is
//   the non-blocking call: it takes up to one packet only when no transfer is in progress. So
//   frames go into a queue (whole or not at all: counted as dropped) and gk_serial_pump() hands the
//   queue to send_nb() once per loop().
// * BLE notifications. writeValue() on a subscribed characteristic ends in HCI.sendAclPkt(), which
//   busy-waits while every controller ACL buffer holds an unacknowledged packet (_pendingPkt >=
//   _maxPkt). ArduinoBLE has no public call for that state, so gk_ble_can_send() reads the two
//   members through the standard explicit-instantiation access idiom (no library change; if the
//   members are renamed this stops compiling instead of blocking again). A notification that would
//   wait is dropped and counted; its sequence number stays used, so the host sees the gap.
//   The Nano 33 BLE's Cordio controller has 4 such buffers (mbed_config.h: CORDIO_LL_TX_BUFFERS 4).
#pragma once
#include <Arduino.h>
#include <ArduinoBLE.h>
#include <USB/PluggableUSBSerial.h>  // _SerialUSB: the core's Arduino.h does not declare it
#include <utility/ATT.h>
#include <utility/HCI.h>

#include "gk_frame.h"

template <typename Tag, typename Tag::type Member>
struct GkHciAccess {
  friend typename Tag::type gk_hci_member(Tag) { return Member; }
};
struct GkHciPending {
  typedef uint8_t HCIClass::*type;
  friend type gk_hci_member(GkHciPending);
};
struct GkHciMax {
  typedef uint8_t HCIClass::*type;
  friend type gk_hci_member(GkHciMax);
};
template struct GkHciAccess<GkHciPending, &HCIClass::_pendingPkt>;
template struct GkHciAccess<GkHciMax, &HCIClass::_maxPkt>;

static gk::TxQueue<2048> gk_serial_queue;  // ~0.8 s of capture frames at 119 Hz
static uint32_t gk_serial_dropped = 0;      // frames not queued for a host that is there but not reading
static uint32_t gk_ble_dropped = 0;         // notifications not sent (controller buffers full)

// Queue one whole frame for USB serial; false (and counted) when it does not fit or nobody listens.
static inline bool gk_serial_send(const uint8_t* frame, size_t n) {
  if (!_SerialUSB.connected()) {  // DTR low: nobody listens, like the core's write() returning 0
    gk_serial_queue.clear();
    return false;
  }
  if (!gk_serial_queue.push(frame, n)) {
    ++gk_serial_dropped;
    return false;
  }
  return true;
}

// Hand queued bytes to the USB stack without waiting (call once per loop()).
static inline void gk_serial_pump() {
  size_t n = 0;
  const uint8_t* p = gk_serial_queue.front(&n);
  if (!n) return;
  uint32_t taken = 0;
  _SerialUSB.send_nb(const_cast<uint8_t*>(p), static_cast<uint32_t>(n), &taken, true);
  gk_serial_queue.pop(taken);
}

// A controller buffer is free (with `reserve` more kept free for what matters more).
static inline bool gk_ble_can_send(uint8_t reserve = 0) {
  return HCI.*gk_hci_member(GkHciPending()) + reserve < HCI.*gk_hci_member(GkHciMax());
}

// The ATT MTU of the link: 23 until the central asks for more (MTU exchange), then up to
// GK_BLE_MAX_MTU (247 on this core). ArduinoBLE keeps it per connection handle and has no call
// that returns the central's handle, so this takes the smallest MTU over the connected handles
// (a notification goes to every connected central, cut to each one's MTU - 3).
static inline uint16_t gk_ble_mtu() {
  uint16_t mtu = 0;
  for (uint16_t h = 0; h < 16; ++h) {  // Cordio's connection handles are its connection indices
    if (!ATT.connected(h)) continue;
    const uint16_t m = ATT.mtu(h);
    if (mtu == 0 || m < mtu) mtu = m;
  }
  return mtu ? mtu : GK_BLE_NOTIFY_MTU;
}

// Call from the sketch's BLEDisconnected handler. ArduinoBLE 2.0.1 never resets _pendingPkt when a
// link drops (ArduinoBLE issue #45): packets pending on the dead link are never reported completed,
// so with full buffers gk_ble_can_send() would stay false for every later central, and the
// library's own ATT replies would spin in sendAclPkt() inside BLE.poll(), stopping loop(). The
// controller frees a dropped link's buffers, so the count goes back to 0 with it.
static inline void gk_ble_link_dropped() { HCI.*gk_hci_member(GkHciPending()) = 0; }

// Notify if a central subscribed and a controller buffer is free (leaving `reserve` buffers free:
// the classifier keeps one for its predictions, so raw IMU at MTU 23 cannot crowd them out);
// never waits.
static inline bool gk_notify(BLECharacteristic& c, const uint8_t* data, size_t n, uint8_t reserve = 0) {
  if (!BLE.connected() || !c.subscribed()) return false;
  if (!gk_ble_can_send(reserve)) {
    ++gk_ble_dropped;
    return false;
  }
  c.writeValue(data, static_cast<int>(n));
  return true;
}
