// utility/HCI.h of the gesture-kit host shim (ArduinoBLE's HCI layer; see ArduinoBLE.h).
#pragma once
#include <Arduino.h>

// The HCI layer, with the two private members the flow control is made of (same names and
// types as ArduinoBLE's utility/HCI.h), so sketch code that reads them builds here and there.
class HCIClass {
 public:
  void poll();
  int sendAclPkt(uint16_t handle, uint8_t cid, uint8_t plen, void* data);
  int readLeBufferSize(uint16_t& pktLen, uint8_t& maxPkt);

 private:
  friend struct GkShimHci;
  uint8_t _maxPkt = 0;
  uint8_t _pendingPkt = 0;
};
extern HCIClass& HCI;
