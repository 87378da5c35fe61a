// gk_flash.h: the flash the push-ready classifier keeps pushed models in, as NOR flash behaves.
//
// Why an interface: the slot logic (gk_slots.h) and the transfer service (gk_push.h) are portable
// C++ that tests compile with g++ and drive against a RAM flash with NOR semantics (tests/push_driver.cpp:
// an erase sets a whole sector to 0xFF, programming only clears bits, a power cut can stop anywhere), while the
// board implements it with mbed::FlashIAP (gk_flash_iap.h) and the host shim with a file.
//
// The nRF52840's flash is memory-mapped: a package in a slot is read (and the model run by TFLM)
// in place, through map(). No Arduino, no heap.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace gk {

class Flash {
 public:
  virtual ~Flash() {}
  // The erase unit in bytes (4096 on the nRF52840).
  virtual uint32_t sector_size() const = 0;
  // Erase the sector starting at addr (sector-aligned) to 0xFF. False: the driver refused.
  virtual bool erase_sector(uint32_t addr) = 0;
  // Program len bytes at addr (addr a multiple of 4; len a multiple of 4). NOR: bits only go 1 -> 0.
  virtual bool program(uint32_t addr, const uint8_t* data, uint32_t len) = 0;
  // The bytes at addr as the CPU reads them (memory-mapped flash).
  virtual const uint8_t* map(uint32_t addr) const = 0;
  void read(uint32_t addr, uint8_t* out, uint32_t len) const { memcpy(out, map(addr), len); }
};

}  // namespace gk
