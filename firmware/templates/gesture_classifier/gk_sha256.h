// gk_sha256.h: SHA-256 (FIPS 180-4), the hash a model package carries of its payload and the
// transfer service's BEGIN carries of the whole package (training/package.py, docs/push.md).
//
// Incremental (init / update / final) so the board can hash a package in flash a few KB per loop()
// while BLE keeps running; sha256() hashes one buffer. Small rather than fast: one 64-byte block
// buffer, the 64-word schedule computed in place in 16 words (about 100 bytes of state in all).
// tests/test_package_parse.py compiles it with g++ and checks it against hashlib on the NIST
// vectors, every length 0..200 and a model package split at many places.
// Portable C++11: no Arduino, no heap, endian-independent.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace gk {

class Sha256 {
 public:
  static const size_t kDigestSize = 32;
  Sha256() { init(); }
  void init() {
    static const uint32_t kInit[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                      0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    for (int i = 0; i < 8; ++i) h_[i] = kInit[i];
    total_ = 0;
    fill_ = 0;
  }
  void update(const uint8_t* data, size_t len) {
    total_ += len;
    while (len > 0) {
      size_t take = 64 - fill_;
      if (take > len) take = len;
      for (size_t i = 0; i < take; ++i) block_[fill_ + i] = data[i];
      fill_ += take;
      data += take;
      len -= take;
      if (fill_ == 64) {
        compress(block_);
        fill_ = 0;
      }
    }
  }
  // Writes the 32-byte digest of everything passed to update() since init(). Pads in a copy, so the
  // object is unchanged: more data may follow and final() may be called again.
  void final(uint8_t out[kDigestSize]) const {
    Sha256 t = *this;
    const uint64_t bits = total_ * 8u;
    uint8_t pad[72];
    size_t n = 0;
    pad[n++] = 0x80;
    while ((t.fill_ + n) % 64 != 56) pad[n++] = 0;
    for (int i = 7; i >= 0; --i) pad[n++] = static_cast<uint8_t>(bits >> (8 * i));
    t.update(pad, n);
    for (int i = 0; i < 8; ++i) {
      out[4 * i] = static_cast<uint8_t>(t.h_[i] >> 24);
      out[4 * i + 1] = static_cast<uint8_t>(t.h_[i] >> 16);
      out[4 * i + 2] = static_cast<uint8_t>(t.h_[i] >> 8);
      out[4 * i + 3] = static_cast<uint8_t>(t.h_[i]);
    }
  }
  uint64_t length() const { return total_; }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void compress(const uint8_t* b) {
    static const uint32_t kK[64] = {
        0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
        0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
        0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
        0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
        0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
        0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
        0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
        0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u};
    uint32_t w[16];
    for (int i = 0; i < 16; ++i) {
      w[i] = (static_cast<uint32_t>(b[4 * i]) << 24) | (static_cast<uint32_t>(b[4 * i + 1]) << 16) |
             (static_cast<uint32_t>(b[4 * i + 2]) << 8) | static_cast<uint32_t>(b[4 * i + 3]);
    }
    uint32_t a = h_[0], bb = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int t = 0; t < 64; ++t) {
      uint32_t wt;
      if (t < 16) {
        wt = w[t];
      } else {  // the schedule in a 16-word ring: w[t] = s1(w[t-2]) + w[t-7] + s0(w[t-15]) + w[t-16]
        const uint32_t w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
        const uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
        const uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
        wt = w[t & 15] = s1 + w[(t - 7) & 15] + s0 + w[t & 15];
      }
      const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[t] + wt;
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = bb;
      bb = a;
      a = t1 + t2;
    }
    h_[0] += a; h_[1] += bb; h_[2] += c; h_[3] += d;
    h_[4] += e; h_[5] += f; h_[6] += g; h_[7] += h;
  }

  uint32_t h_[8];
  uint8_t block_[64];
  uint64_t total_;
  size_t fill_;
};

inline void sha256(const uint8_t* data, size_t len, uint8_t out[Sha256::kDigestSize]) {
  Sha256 s;
  s.update(data, len);
  s.final(out);
}

}  // namespace gk
