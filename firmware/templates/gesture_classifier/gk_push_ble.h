// gk_push_ble.h: the transfer service on the board (docs/push.md): the three PUSH characteristics,
// the model slots in internal flash, and which model boot runs. Included by the .ino only (it needs
// the core and ArduinoBLE), like gk_link.h; the state machine itself is portable (gk_push.h).
//
// The sketch provides gk_switch_model() (the runtime-config classifier: set up the package's model
// and preprocessing between two windows, or keep the running one and say why), calls
// gk_push_boot() in setup() before anything uses the model, gk_push_add() while it builds its GATT
// service, and gk_push_poll() once per loop(). Writes are handled inside BLE.poll() (ArduinoBLE
// runs the handlers there); flash erases and the validation happen in gk_push_poll(), a sector or
// a few KB per loop(), so loop() keeps reading the IMU while a push goes on.
#pragma once
#include <ArduinoBLE.h>

#include "gesture_protocol.h"
#include "gk_config.h"  // GK_BOARD_NAME: the registry key a package must be built for
#include "gk_flash_iap.h"
#include "gk_link.h"
#include "gk_package_parse.h"
#include "gk_push.h"
#include "gk_slots.h"

// Provided by the sketch: switch the classifier to the model of a checked package (cfg parsed from
// its header; the .tflite at payload, in flash for as long as `slot` holds it). GK_PUSH_ERR_NONE:
// the new model runs; else the error (MISSING_OP, ARENA, SHAPE, SCHEMA) and a reason, the previous
// model still running.
uint8_t gk_switch_model(const gk::Config& cfg, const uint8_t* payload, uint32_t payload_len, uint8_t slot,
                        char* reason, size_t reason_size);

static gk::FlashIap gk_flash;
static gk::Slots gk_slots(gk_flash, GK_SLOTS_BASE);
static BLECharacteristic gk_push_control_char(GK_PUSH_CONTROL_CHAR_UUID, BLEWrite, GK_PUSH_BEGIN_SIZE);
static BLECharacteristic gk_push_data_char(GK_PUSH_DATA_CHAR_UUID, BLEWriteWithoutResponse,
                                           GK_BLE_MAX_MTU - GK_ATT_OVERHEAD);
static BLECharacteristic gk_push_status_char(GK_PUSH_STATUS_CHAR_UUID, BLERead | BLENotify,
                                             GK_PUSH_STATUS_SIZE + GK_PUSH_STATUS_TEXT_MAX);

static uint8_t gk_push_activate(const gk::Config& cfg, const uint8_t* package, uint32_t, uint8_t slot, char* reason,
                                size_t size) {
  return gk_switch_model(cfg, package + cfg.header_length, cfg.payload_length, slot, reason, size);
}

// The status goes out when a controller buffer is free; else gk_push.h tries again next loop().
static bool gk_push_notify(const uint8_t* data, size_t n) {
  if (BLE.connected() && gk_push_status_char.subscribed() && !gk_ble_can_send()) return false;
  gk_push_status_char.writeValue(data, static_cast<int>(n));  // the value for reads, and the notification
  return true;
}

static const gk::PushHooks gk_push_hooks = {gk_push_activate, gk_push_notify};
static gk::PushService gk_push(gk_slots, gk_push_hooks, GK_BOARD_NAME);
static bool gk_push_ok = false;  // the flash holds the slots: pushes are taken

static const char* gk_push_off_why = "";  // why the flash cannot hold the slots (gk_push_boot)

static void gk_push_on_control(BLEDevice, BLECharacteristic ch) {
  if (!gk_push_ok) {  // FAILED / FLASH with the reason: this board runs its built-in model only
    uint8_t off[GK_PUSH_STATUS_SIZE + GK_PUSH_STATUS_TEXT_MAX] = {GK_PUSH_STATE_FAILED, GK_PUSH_ERR_FLASH, 0, 0, 0, 0,
                                                                  0, 0, 0, 0, GK_PUSH_BUILTIN_SLOT};
    size_t n = GK_PUSH_STATUS_SIZE;
    for (const char* c = gk_push_off_why; *c && n < sizeof(off); ++c) off[n++] = static_cast<uint8_t>(*c);
    gk_push_notify(off, n);
    return;
  }
  gk_push.on_control(ch.value(), static_cast<size_t>(ch.valueLength()));
}

static unsigned long gk_push_data_ms = 0;  // millis() of the last PUSH_DATA write

static void gk_push_on_data(BLEDevice, BLECharacteristic ch) {
  if (!gk_push_ok) return;
  gk_push_data_ms = millis();
  gk_push.on_data(ch.value(), static_cast<size_t>(ch.valueLength()));
}

// Chunks are arriving (RECEIVING, the last one less than a second ago). Every packet the
// controller receives waits in ArduinoBLE's 256-byte HCI ring until BLE.poll(), and what does not
// fit is dropped (on the board possibly leaving its HCI type byte behind, which can desynchronise
// ArduinoBLE's parser): a loop() made late by a model inference (~8 ms) while up to four chunks
// arrive per connection event would overflow it. So the sketch skips inference meanwhile.
static inline bool gk_push_receiving() {
  return gk_push_ok && gk_push.state() == GK_PUSH_STATE_RECEIVING && millis() - gk_push_data_ms < 1000;
}

// setup(), first: the newest verified slot whose model sets up, else GK_PUSH_BUILTIN_SLOT (the
// sketch then sets up its built-in model). Logs what it found.
static uint8_t gk_push_boot(void (*log)(const char*)) {
  const char* why = "";
  gk_push_ok = gk_flash.begin(&why);
  gk_push_off_why = why;
  char line[GK_PUSH_STATUS_TEXT_MAX + 96];
  if (!gk_push_ok) {
    snprintf(line, sizeof(line), "push: off (%s); running the built-in model", why);
    log(line);
    return GK_PUSH_BUILTIN_SLOT;
  }
  int order[gk::Slots::kCount];
  gk::CommitRecord recs[gk::Slots::kCount];
  const int n = gk_slots.boot_order(order, recs);
  static gk::Config cfg;  // large: not on the stack
  for (int i = 0; i < n; ++i) {
    const int s = order[i];
    gk::PackageError err;
    char reason[GK_PUSH_STATUS_TEXT_MAX + 1] = {0};
    uint8_t code = GK_PUSH_ERR_NONE;
    if (!gk::parse_header(gk_slots.package(s), recs[s].length, GK_BOARD_NAME, &cfg, &err)) {
      code = err.code;
      snprintf(reason, sizeof(reason), "%s", err.text);
    } else {
      code = gk_switch_model(cfg, gk_slots.package(s) + cfg.header_length, cfg.payload_length,
                             static_cast<uint8_t>(s), reason, sizeof(reason));
    }
    if (code == GK_PUSH_ERR_NONE) {
      snprintf(line, sizeof(line), "push: running the model in slot %d (commit %lu)", s,
               static_cast<unsigned long>(recs[s].sequence));
      log(line);
      gk_push.set_running(static_cast<uint8_t>(s));
      return static_cast<uint8_t>(s);
    }
    snprintf(line, sizeof(line), "push: the model in slot %d does not run on this firmware: %s", s, reason);
    log(line);
  }
  return GK_PUSH_BUILTIN_SLOT;
}

static void gk_push_add(BLEService& service) {
  service.addCharacteristic(gk_push_control_char);
  service.addCharacteristic(gk_push_data_char);
  service.addCharacteristic(gk_push_status_char);
  uint8_t status[GK_PUSH_STATUS_SIZE + GK_PUSH_STATUS_TEXT_MAX];
  gk_push_status_char.writeValue(status, static_cast<int>(gk_push.encode_status(status, sizeof(status))));
  gk_push_control_char.setEventHandler(BLEWritten, gk_push_on_control);
  gk_push_data_char.setEventHandler(BLEWritten, gk_push_on_data);
}

static inline void gk_push_poll() {
  if (gk_push_ok) gk_push.poll();
}
