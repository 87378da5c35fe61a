// ArduinoBLE.h of the gesture-kit host shim: the peripheral-side API the sketches use (v2.0.1),
// with the GATT server reached by a virtual central over a Unix socket (shim.cpp, GK_SHIM_BLE).
//
// Modelled behaviour of ArduinoBLE on the Nano 33 BLE (Cordio HCI):
// * BLECharacteristic::writeValue() keeps min(length, valueSize) bytes (longer values are cut
//   silently) and, when a central subscribed, sends a notification of at most ATT MTU - 3 bytes
//   (the library answers MTU requests with at most its max MTU, 23 unless ATT.setMaxMtu is called).
// * Sending goes through HCI.sendAclPkt(), which busy-waits, calling poll(), while the controller
//   holds as many un-acknowledged ACL packets as it has buffers (_pendingPkt >= _maxPkt). Buffers are
//   freed when the central takes a packet (here: its acknowledgement on the socket) or the link drops.
// * Event handlers (BLEWritten, BLEConnected, ...) run inside BLE.poll().
#pragma once
#include <Arduino.h>

enum BLEProperty {
  BLEBroadcast = 0x01, BLERead = 0x02, BLEWriteWithoutResponse = 0x04, BLEWrite = 0x08,
  BLENotify = 0x10, BLEIndicate = 0x20,
};
enum BLEDeviceEvent { BLEConnected = 0, BLEDisconnected = 1 };
enum BLECharacteristicEvent { BLESubscribed = 0, BLEUnsubscribed = 1, BLEWritten = 3 };

struct GkShimBle;  // shim.cpp: makes the devices and characteristic copies the library hands out

class BLEDevice {
 public:
  BLEDevice() : connected_(false) {}
  bool connected() const;
  const char* address() const { return "00:00:00:00:00:01"; }
  explicit operator bool() const { return connected_; }

 private:
  friend struct GkShimBle;
  explicit BLEDevice(bool connected) : connected_(connected) {}
  bool connected_;
};

class BLECharacteristic;
typedef void (*BLECharacteristicEventHandler)(BLEDevice device, BLECharacteristic characteristic);
typedef void (*BLEDeviceEventHandler)(BLEDevice device);

struct GkShimChar;  // shim.cpp: the characteristic's state, shared by copies (like ArduinoBLE's)

class BLECharacteristic {
 public:
  BLECharacteristic(const char* uuid, uint8_t properties, int valueSize, bool fixedLength = false);
  int writeValue(const uint8_t value[], int length);
  int writeValue(const char* value) { return writeValue(reinterpret_cast<const uint8_t*>(value), strlen(value)); }
  const uint8_t* value() const;
  int valueLength() const;
  int valueSize() const;
  bool subscribed();
  void setEventHandler(int event, BLECharacteristicEventHandler handler);
  const char* uuid() const;

 private:
  friend struct GkShimBle;
  explicit BLECharacteristic(GkShimChar* s) : s_(s) {}  // the copy a handler receives
  GkShimChar* s_;
};

class BLEService {
 public:
  explicit BLEService(const char* uuid) : uuid_(uuid) {}
  void addCharacteristic(BLECharacteristic& c);
  const char* uuid() const { return uuid_; }

 private:
  const char* uuid_;
};

class BLELocalDevice {
 public:
  int begin();
  void end() {}
  void poll(unsigned long timeout = 0);
  bool setLocalName(const char*) { return true; }
  bool setDeviceName(const char*) { return true; }
  bool setAdvertisedService(const BLEService&) { return true; }
  void addService(BLEService& service);
  int advertise();
  void stopAdvertise() {}
  bool connected() const;
  BLEDevice central();
  bool disconnect();
  void setEventHandler(int event, BLEDeviceEventHandler handler);
};
extern BLELocalDevice BLE;
