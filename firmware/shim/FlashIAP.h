// FlashIAP.h of the gesture-kit host shim: mbed::FlashIAP (mbed-os drivers/include/drivers/FlashIAP.h
// as ArduinoCore-mbed 4.6.0 ships it; a sketch reaches it with #include "FlashIAP.h") over the
// nRF52840's 1 MB of internal flash, with NOR semantics, backed by a file (shim.cpp, GK_SHIM_FLASH):
// * The flash is memory-mapped at its own addresses (0x10000 .. 0x100000 of the process, the file's
//   bytes), as on the chip, so code that reads a package in place through a pointer runs unchanged.
// * erase(addr, size): whole 4 KB sectors (get_sector_size) to 0xFF; program(buf, addr, size): addr a
//   multiple of get_page_size() (4, the nRF52 HAL's word), bits only go 1 -> 0 (the new byte is
//   old AND new), a tail shorter than a word padded with the erase value like FlashIAP does.
// * Device time: an erase costs 85 ms per sector and a program 41 us per word (nRF52840 product
//   specification, tERASEPAGE and tWRITE maxima). An erase halts the CPU in one piece: the link
//   layer misses the connection events meanwhile (no packets taken, the central keeps them). A
//   program halts it a word at a time (the HAL writes word by word), interrupts run in between,
//   so the link layer keeps going and only loop() is late.
// * Power cut (GK_SHIM_FLASH_CUT=N): the process _exit()s after N programmed bytes in total, in
//   the middle of a program call, so a word or the commit record can be left half programmed.
// * FLASHIAP_APP_ROM_END_ADDR: the end of the sketch's image in flash; the real header computes it
//   from the linker's __etext; the shim takes GK_SHIM_APP_END (default 0x70000, a 384 KB sketch).
#pragma once
#include <stdint.h>

extern "C" uint32_t gk_shim_app_rom_end(void);
#define FLASHIAP_APP_ROM_END_ADDR (gk_shim_app_rom_end())

namespace mbed {

class FlashIAP {
 public:
  constexpr FlashIAP() {}
  int init();
  int deinit();
  int read(void* buffer, uint32_t addr, uint32_t size);
  int program(const void* buffer, uint32_t addr, uint32_t size);
  int erase(uint32_t addr, uint32_t size);
  uint32_t get_sector_size(uint32_t addr) const;
  uint32_t get_flash_start() const;
  uint32_t get_flash_size() const;
  uint32_t get_page_size() const;
  uint8_t get_erase_value() const;
};

}  // namespace mbed
