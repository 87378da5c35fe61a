// gk_crc32.h: CRC-32 as zlib.crc32 computes it (IEEE 802.3, reflected, poly 0xEDB88320, init and
// final xor 0xFFFFFFFF), the check value of a model package's header and payload
// (training/package.py).
//
// Incremental (init / update / final) so the board can check a package in flash a few KB per
// loop() without holding it in RAM; crc32() does a whole buffer at once. A 16-entry nibble table:
// 64 bytes of flash, two lookups per byte. tests/test_package_parse.py compiles it with g++ and
// checks it against zlib. Portable C++11: no Arduino, no heap.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace gk {

class Crc32 {
 public:
  Crc32() { init(); }
  void init() { state_ = 0xFFFFFFFFu; }
  void update(const uint8_t* data, size_t len) {
    static const uint32_t kNibble[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
        0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    uint32_t c = state_;
    for (size_t i = 0; i < len; ++i) {
      c ^= data[i];
      c = (c >> 4) ^ kNibble[c & 0x0Fu];
      c = (c >> 4) ^ kNibble[c & 0x0Fu];
    }
    state_ = c;
  }
  // The CRC of everything passed to update() since init(); the state is unchanged (more may follow).
  uint32_t final() const { return state_ ^ 0xFFFFFFFFu; }

 private:
  uint32_t state_;
};

inline uint32_t crc32(const uint8_t* data, size_t len) {
  Crc32 c;
  c.update(data, len);
  return c.final();
}

}  // namespace gk
