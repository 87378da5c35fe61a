// utility/ATT.h of the gesture-kit host shim. Follows ArduinoBLE 2.0.1's src/utility/ATT.h: the two
// public calls the sketches use to learn the link's ATT MTU (gk_link.h gk_ble_mtu()).
//
// Modelled: the MTU is 23 when a central connects and stays so until the central sends an MTU
// exchange; ArduinoBLE then answers min(requested, its max MTU), 247 on the Nano 33 BLE (HCI.cpp
// readLeBufferSize: ATT.setMaxMtu(pktLen - 9), the Cordio ACL length 256). The one central of the
// shim has connection handle 0, as the first connection of Cordio's link layer.
#pragma once
#include <Arduino.h>

class ATTClass {
 public:
  bool connected(uint16_t handle) const;
  uint16_t mtu(uint16_t handle) const;
};
extern ATTClass& ATT;
