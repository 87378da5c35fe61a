// gk_flash_iap.h: gk::Flash (gk_flash.h) on the board's internal flash through mbed::FlashIAP
// (ArduinoCore-mbed 4.6.0, mbed-os drivers/FlashIAP.h; the host shim has a file-backed twin).
// Included by the .ino only (it needs the core), like gk_link.h.
//
// Where the slots live, read in the core (docs/push.md, "Where the slots are"):
// * The Nano 33 BLE's flash is 1 MB; its linker script (variants/ARDUINO_NANO33BLE/linker_script.ld)
//   gives the sketch FLASH 0x10000 .. 0x100000 (the Arduino bootloader holds 0 .. 0x10000).
// * Nothing of the core writes flash at run time: KVStore/TDBStore would take the end of flash
//   (storage_tdb_internal, base address 0 = "the last sectors"), but nothing in the core or in
//   ArduinoBLE (BLE_SECURITY_DATABASE_KVSTORE 0) starts it.
// * The core's Nano33BLE_System example that installs the SoftDevice-capable bootloader puts that
//   bootloader at 0xE0000 and a SoftDevice length record at 0xFF000. So the slots end at 0xE0000,
//   not at the end of flash: 2 x GK_SLOT_BYTES = 0xBC000 .. 0xE0000, and a sketch may be at most
//   0xBC000 - 0x10000 = 704,512 bytes (688 KB; the kit's classifier is about 450 KB); begin() checks the image
//   (FLASHIAP_APP_ROM_END_ADDR, from the linker's symbols) ends below the slots.
// * An upload with bossac (arduino-cli upload) erases what it writes; a pushed model there may be
//   gone after a reflash and the board boots its built-in model, which is what a reflash means.
#pragma once
#include <FlashIAP.h>

#include "gk_flash.h"
#include "gk_package.h"

// GK_SLOTS_BASE and GK_SLOTS_END come from gk_package.h (training/package.py SLOTS_BASE, SLOTS_END).

namespace gk {

class FlashIap : public Flash {
 public:
  // False (and why in *why) when the flash cannot hold the slots: then the sketch runs its
  // built-in model and refuses pushes.
  bool begin(const char** why) {
    if (iap_.init() != 0) {
      *why = "FlashIAP.init() failed";
      return false;
    }
    if (iap_.get_flash_start() + iap_.get_flash_size() < GK_SLOTS_END || iap_.get_sector_size(GK_SLOTS_BASE) != GK_FLASH_SECTOR ||
        iap_.get_page_size() > 4) {
      *why = "the flash layout is not the nRF52840's (1 MB, 4 KB sectors)";
      return false;
    }
    if (FLASHIAP_APP_ROM_END_ADDR > GK_SLOTS_BASE) {
      *why = "the sketch reaches into the model slots (it must end below 0xBC000)";
      return false;
    }
    ok_ = true;
    return true;
  }
  bool ok() const { return ok_; }
  uint32_t sector_size() const override { return GK_FLASH_SECTOR; }
  bool erase_sector(uint32_t addr) override { return ok_ && in_slots(addr, GK_FLASH_SECTOR) && iap_.erase(addr, GK_FLASH_SECTOR) == 0; }
  bool program(uint32_t addr, const uint8_t* data, uint32_t len) override {
    return ok_ && in_slots(addr, len) && iap_.program(data, addr, len) == 0;
  }
  const uint8_t* map(uint32_t addr) const override { return reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(addr)); }

 private:
  static bool in_slots(uint32_t addr, uint32_t len) { return addr >= GK_SLOTS_BASE && addr + len <= GK_SLOTS_END; }
  mbed::FlashIAP iap_;
  bool ok_ = false;
};

}  // namespace gk
