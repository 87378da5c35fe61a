// gk_slots.h: two model slots (A/B) in flash, each with a commit record, and what boot runs.
//
// A slot is GK_SLOT_BYTES (gk_package.h) of flash at base + slot * GK_SLOT_BYTES: the package bytes
// from its start (at most GK_MAX_PACKAGE_BYTES), and in its last sector the commit record. The
// record is programmed only after the package was received, checked and switched to (gk_push.h),
// and as the last write of a push; its CRC word is programmed after the rest, so an erased or
// half-programmed record never checks. Boot runs the verified slot with the highest sequence
// number: record valid *and* the package bytes in flash hash to the record's SHA-256, so a power
// cut anywhere leaves either the previous model or the new one whole, never a mixture.
//
// A new push goes to the slot that does not hold the running model, erasing its record sector
// first: from then on that slot is invalid until its new record is written.
// Portable C++ (tests/push_driver.cpp drives it against a NOR-flash model on the host).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gesture_protocol.h"
#include "gk_crc32.h"
#include "gk_flash.h"
#include "gk_package.h"
#include "gk_sha256.h"

namespace gk {

// The commit record at the start of a slot's last sector, little-endian like the package.
struct CommitRecord {
  static const uint32_t kMagic = 0x52434B47u;  // "GKCR"
  static const uint32_t kBytes = 48;
  uint32_t sequence;   // higher is newer
  uint32_t length;     // package bytes
  uint8_t sha256[32];  // of the whole package

  // bytes: magic, sequence, length, sha256 (44 bytes), then the CRC32 of those 44 bytes.
  void encode(uint8_t out[kBytes]) const {
    put32(out, kMagic);
    put32(out + 4, sequence);
    put32(out + 8, length);
    memcpy(out + 12, sha256, 32);
    put32(out + 44, crc32(out, 44));
  }
  bool decode(const uint8_t* in) {
    if (get32(in) != kMagic || get32(in + 44) != crc32(in, 44)) return false;
    sequence = get32(in + 4);
    length = get32(in + 8);
    memcpy(sha256, in + 12, 32);
    return length > 0 && length <= GK_MAX_PACKAGE_BYTES;
  }
  static void put32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
  }
  static uint32_t get32(const uint8_t* p) {
    return p[0] | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
           (static_cast<uint32_t>(p[3]) << 24);
  }
};

class Slots {
 public:
  static const int kCount = 2;
  static const uint8_t kBuiltin = GK_PUSH_BUILTIN_SLOT;

  Slots(Flash& flash, uint32_t base) : flash_(flash), base_(base) {}

  uint32_t address(int slot) const { return base_ + static_cast<uint32_t>(slot) * GK_SLOT_BYTES; }
  uint32_t record_address(int slot) const { return address(slot) + GK_SLOT_BYTES - flash_.sector_size(); }
  const uint8_t* package(int slot) const { return flash_.map(address(slot)); }
  Flash& flash() { return flash_; }

  // The slot's commit record checks (magic, CRC, a length that fits).
  bool record(int slot, CommitRecord* rec) const { return rec->decode(flash_.map(record_address(slot))); }

  // The record checks and the package bytes in flash hash to it (reads the whole package).
  bool verified(int slot, CommitRecord* rec) const {
    if (!record(slot, rec)) return false;
    uint8_t digest[32];
    sha256(package(slot), rec->length, digest);
    return memcmp(digest, rec->sha256, 32) == 0;
  }

  // Verified slots, newest first, into order[]; returns how many (0..2). Boot tries them in this
  // order and falls back to the built-in model when none can be set up.
  int boot_order(int order[kCount], CommitRecord recs[kCount]) const {
    int n = 0;
    for (int s = 0; s < kCount; ++s) {
      if (verified(s, &recs[s])) order[n++] = s;
    }
    if (n == 2 && recs[order[1]].sequence > recs[order[0]].sequence) {
      const int t = order[0];
      order[0] = order[1];
      order[1] = t;
    }
    return n;
  }

  // The sequence number the next commit record gets: one more than any valid record's.
  uint32_t next_sequence() const {
    uint32_t next = 1;
    CommitRecord rec;
    for (int s = 0; s < kCount; ++s) {
      if (record(s, &rec) && rec.sequence >= next) next = rec.sequence + 1;
    }
    return next;
  }

  // Where a new push goes: never the slot of the running model; with the built-in model running,
  // the slot without a valid record, else the older one (the newest valid model stays).
  int target(uint8_t running) const {
    if (running < kCount) return 1 - running;
    CommitRecord a, b;
    const bool va = record(0, &a), vb = record(1, &b);
    if (!va) return 0;
    if (!vb) return 1;
    return a.sequence <= b.sequence ? 0 : 1;
  }

  // Program the record: 44 bytes, then the CRC word, so a cut in between leaves it invalid.
  bool write_record(int slot, const CommitRecord& rec) {
    uint8_t bytes[CommitRecord::kBytes];
    rec.encode(bytes);
    const uint32_t at = record_address(slot);
    return flash_.program(at, bytes, 44) && flash_.program(at + 44, bytes + 44, 4);
  }

 private:
  Flash& flash_;
  uint32_t base_;
};

}  // namespace gk
