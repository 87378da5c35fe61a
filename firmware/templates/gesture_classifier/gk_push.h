// gk_push.h: the transfer service that takes a model package over BLE into a flash slot (docs/push.md).
//
// The state machine of the three PUSH characteristics (gesture_protocol.h: ops, states, errors),
// portable C++: the sketch feeds it the written values (on_control, on_data, from BLE.poll()'s
// handlers) and calls poll() once per loop(); it never blocks loop() for more than one flash
// sector erase or a few KB of hashing, so BLE and the IMU keep running during a push.
//
//   BEGIN (length, sha256, ack_every): the slot that does not hold the running model (gk_slots.h)
//     is erased one sector per poll(), its record sector first (ERASING), then RECEIVING at 0.
//     A BEGIN with the length and sha256 of the transfer in progress resumes it (RECEIVING at the
//     offset already received), so a host that lost the link continues where it was acknowledged.
//   DATA (offset, bytes): programmed at `offset` if it is the next byte expected; words are
//     programmed as they fill, a tail of 1..3 bytes waits in RAM for the next chunk (or the end).
//     When ack_every chunks were programmed since the last notification, and at the last byte,
//     RECEIVING(offset) is notified; a chunk at another offset is not programmed and
//     RECEIVING(wanted offset) is notified once (go-back-N). DATA while ERASING is ignored.
//   COMMIT: VALIDATING: a few KB per poll(), the SHA-256 of the whole package in flash against
//     BEGIN's; the header (gk_package_parse.h: magic, version, CRC, the board, every value within
//     the maxima); the payload's CRC32 and SHA-256 against the header; then the sketch's hook checks ops, shapes and AllocateTensors and switches to the
//     model (poll() runs between windows); only then the slot's commit record is written: DONE.
//     Any failure: FAILED with the error and a reason, the running model unchanged.
//   ABORT: FAILED(ABORTED); the running model stays. STATUS: notify the status now.
// A status notification that finds the controller's buffers full is sent again on a later poll().
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gesture_protocol.h"
#include "gk_crc32.h"
#include "gk_flash.h"
#include "gk_package.h"
#include "gk_package_parse.h"
#include "gk_sha256.h"
#include "gk_slots.h"

namespace gk {

struct PushHooks {
  // COMMIT, after header, hashes and board checked, from poll() (between two windows): check the
  // package's ops, tensor shapes and AllocateTensors, and switch the classifier to it. Returns
  // GK_PUSH_ERR_NONE when the new model runs; otherwise the error and `reason`, the previous
  // model running as before.
  // The payload (.tflite) is at package + cfg.header_length, in flash for as long as the slot holds it.
  uint8_t (*activate)(const Config& cfg, const uint8_t* package, uint32_t length, uint8_t slot, char* reason,
                      size_t size);
  // Set the PUSH_STATUS value and notify it; false when it cannot go out now (sent again later).
  bool (*notify)(const uint8_t* data, size_t len);
};

class PushService {
 public:
  static const uint32_t kHashPerPoll = 4096;  // bytes hashed per poll() while VALIDATING

  PushService(Slots& slots, const PushHooks& hooks, const char* board)
      : slots_(slots), hooks_(hooks), board_(board) {
    reason_[0] = 0;
  }

  // Which slot boot set up (0/1), or GK_PUSH_BUILTIN_SLOT.
  void set_running(uint8_t slot) { running_ = slot; }
  uint8_t running() const { return running_; }
  uint8_t state() const { return state_; }
  uint8_t error() const { return error_; }
  uint32_t offset() const { return offset_; }
  const char* reason() const { return reason_; }
  bool busy() const { return state_ == GK_PUSH_STATE_ERASING || state_ == GK_PUSH_STATE_VALIDATING; }

  // A write to PUSH_CONTROL.
  void on_control(const uint8_t* v, size_t n) {
    if (n < 1) return;
    switch (v[0]) {
      case GK_PUSH_OP_BEGIN: begin(v, n); break;
      case GK_PUSH_OP_COMMIT: commit(); break;
      case GK_PUSH_OP_ABORT:
        if (state_ == GK_PUSH_STATE_DONE) {
          notify();  // nothing in progress to abort
        } else {
          fail(GK_PUSH_ERR_ABORTED, "aborted by the host; the running model stays");
        }
        break;
      case GK_PUSH_OP_STATUS: notify(); break;
      default: {
        char text[48];
        snprintf(text, sizeof(text), "unknown PUSH_CONTROL op 0x%02X", v[0]);
        refuse(text);
      }
    }
  }

  // A write to PUSH_DATA: u32 offset, then package bytes.
  void on_data(const uint8_t* v, size_t n) {
    if (n <= GK_PUSH_DATA_HEADER_SIZE) return;
    if (state_ != GK_PUSH_STATE_RECEIVING) {
      // ERASING, VALIDATING, DONE, FAILED: chunks still in flight, ignored (a failure keeps its
      // reason); never a transfer since boot: refused
      if (state_ == GK_PUSH_STATE_IDLE) fail(GK_PUSH_ERR_BAD_REQUEST, "DATA without a transfer: send BEGIN first");
      return;
    }
    const uint32_t at = CommitRecord::get32(v);
    const uint8_t* data = v + GK_PUSH_DATA_HEADER_SIZE;
    const uint32_t len = static_cast<uint32_t>(n - GK_PUSH_DATA_HEADER_SIZE);
    if (at != offset_) {  // go-back-N: say once which offset comes next
      if (!complained_) notify();
      complained_ = true;
      return;
    }
    if (len > total_ - offset_) {
      char text[96];
      snprintf(text, sizeof(text), "a chunk of %lu bytes at %lu runs past the package's %lu bytes",
               static_cast<unsigned long>(len), static_cast<unsigned long>(at), static_cast<unsigned long>(total_));
      fail(GK_PUSH_ERR_BAD_REQUEST, text);
      return;
    }
    if (!program(data, len)) {
      fail(GK_PUSH_ERR_FLASH, "flash program failed");
      return;
    }
    complained_ = false;
    if (offset_ == total_ || ++chunks_ >= ack_every_) notify();  // chunks counted since the last notification
  }

  // From loop(): erase one sector, or hash a few KB, or finish a commit; resend a pending status.
  void poll() {
    if (state_ == GK_PUSH_STATE_ERASING) {
      erase_step();
    } else if (state_ == GK_PUSH_STATE_VALIDATING) {
      validate_step();
    }
    if (pending_) send();
  }

  // The PUSH_STATUS value: state, error, offset, total, slot, reason text.
  size_t encode_status(uint8_t* out, size_t size) const {
    if (size < GK_PUSH_STATUS_SIZE) return 0;
    out[0] = state_;
    out[1] = error_;
    CommitRecord::put32(out + 2, offset_);
    CommitRecord::put32(out + 6, total_);
    out[10] = state_ == GK_PUSH_STATE_DONE || state_ == GK_PUSH_STATE_IDLE || state_ == GK_PUSH_STATE_FAILED
                  ? running_ : static_cast<uint8_t>(slot_);
    size_t n = GK_PUSH_STATUS_SIZE;
    for (size_t i = 0; reason_[i] && i < GK_PUSH_STATUS_TEXT_MAX && n < size; ++i) out[n++] = static_cast<uint8_t>(reason_[i]);
    return n;
  }

 private:
  void begin(const uint8_t* v, size_t n) {
    if (n != GK_PUSH_BEGIN_SIZE) {
      char text[64];
      snprintf(text, sizeof(text), "BEGIN of %u bytes; expected %d", static_cast<unsigned>(n), GK_PUSH_BEGIN_SIZE);
      refuse(text);
      return;
    }
    const uint32_t length = CommitRecord::get32(v + 1);
    const uint8_t* sha = v + 5;
    const uint16_t ack = static_cast<uint16_t>(v[37] | (v[38] << 8));
    const bool same = total_ == length && memcmp(sha_, sha, 32) == 0;
    if (same && (state_ == GK_PUSH_STATE_ERASING || state_ == GK_PUSH_STATE_RECEIVING ||
                 state_ == GK_PUSH_STATE_VALIDATING)) {
      ack_every_ = ack ? ack : 1;  // resume: the host may ask for another pace
      complained_ = false;
      set_reason(state_ == GK_PUSH_STATE_RECEIVING && offset_ ? "resumed" : "");
      notify();
      return;
    }
    if (length == 0 || length > GK_MAX_PACKAGE_BYTES) {
      char text[96];
      snprintf(text, sizeof(text), "a package of %lu bytes; a slot holds 1..%lu", static_cast<unsigned long>(length),
               static_cast<unsigned long>(GK_MAX_PACKAGE_BYTES));
      fail(GK_PUSH_ERR_TOO_LARGE, text);
      return;
    }
    slot_ = slots_.target(running_);
    total_ = length;
    memcpy(sha_, sha, 32);
    ack_every_ = ack ? ack : 1;
    offset_ = 0;
    tail_n_ = 0;
    chunks_ = 0;
    complained_ = false;
    sectors_ = (length + slots_.flash().sector_size() - 1) / slots_.flash().sector_size();
    erase_next_ = -1;  // the record sector first
    state_ = GK_PUSH_STATE_ERASING;
    error_ = GK_PUSH_ERR_NONE;
    set_reason("");
    notify();
  }

  void erase_step() {
    Flash& f = slots_.flash();
    const uint32_t at = erase_next_ < 0 ? slots_.record_address(slot_)
                                        : slots_.address(slot_) + static_cast<uint32_t>(erase_next_) * f.sector_size();
    if (!f.erase_sector(at)) {
      fail(GK_PUSH_ERR_FLASH, "flash erase failed");
      return;
    }
    if (++erase_next_ >= static_cast<int32_t>(sectors_)) {
      state_ = GK_PUSH_STATE_RECEIVING;
      notify();
    }
  }

  // Append len bytes at offset_: whole words straight to flash, 1..3 bytes kept for the next chunk.
  bool program(const uint8_t* data, uint32_t len) {
    Flash& f = slots_.flash();
    const uint32_t base = slots_.address(slot_);
    uint32_t i = 0;
    while (tail_n_ && i < len) {
      tail_[tail_n_++] = data[i++];
      if (tail_n_ == 4) {
        if (!f.program(base + offset_ + i - 4, tail_, 4)) return false;
        tail_n_ = 0;
      }
    }
    const uint32_t words = (len - i) & ~3u;
    if (words && !f.program(base + offset_ + i, data + i, words)) return false;
    i += words;
    while (i < len) tail_[tail_n_++] = data[i++];
    offset_ += len;
    if (offset_ == total_ && tail_n_) {  // the package's last bytes: the word padded with the erased value
      for (uint32_t k = tail_n_; k < 4; ++k) tail_[k] = 0xFF;
      if (!f.program(base + offset_ - tail_n_, tail_, 4)) return false;
      tail_n_ = 0;
    }
    return true;
  }

  void commit() {
    if (state_ == GK_PUSH_STATE_VALIDATING || state_ == GK_PUSH_STATE_DONE) {  // a repeated COMMIT
      notify();
      return;
    }
    if (state_ != GK_PUSH_STATE_RECEIVING || offset_ != total_) {
      char text[96];
      if (state_ == GK_PUSH_STATE_RECEIVING) {
        snprintf(text, sizeof(text), "COMMIT with %lu of %lu bytes received", static_cast<unsigned long>(offset_),
                 static_cast<unsigned long>(total_));
      } else {
        snprintf(text, sizeof(text), "COMMIT without a transfer: send BEGIN and every byte first");
      }
      refuse(text);
      return;
    }
    // The payload's offset for the one hashing pass (parse_header() checks it properly after).
    const uint8_t* pkg = slots_.package(slot_);
    header_ = total_ >= 8 ? static_cast<uint16_t>(pkg[6] | (pkg[7] << 8)) : 0;
    state_ = GK_PUSH_STATE_VALIDATING;
    hashed_ = 0;
    whole_.init();
    payload_sha_.init();
    payload_crc_.init();
    set_reason("");
    notify();
  }

  // One piece of the hashing pass per poll(); after the last, the checks in the order a host can
  // act on: the bytes are not what BEGIN announced (resend) before what they say (a bad package).
  void validate_step() {
    const uint8_t* pkg = slots_.package(slot_);
    uint32_t n = total_ - hashed_;
    if (n > kHashPerPoll) n = kHashPerPoll;
    whole_.update(pkg + hashed_, n);
    if (hashed_ + n > header_) {  // the payload part of this piece
      const uint32_t from = hashed_ > header_ ? hashed_ : header_;
      payload_sha_.update(pkg + from, hashed_ + n - from);
      payload_crc_.update(pkg + from, hashed_ + n - from);
    }
    hashed_ += n;
    if (hashed_ < total_) return;
    uint8_t digest[32];
    whole_.final(digest);
    if (memcmp(digest, sha_, 32) != 0) {
      fail(GK_PUSH_ERR_BAD_HASH, "SHA-256 of the package in flash differs from BEGIN's: resend it");
      return;
    }
    PackageError err;
    if (!parse_header(pkg, total_, board_, &cfg_, &err)) {
      fail(err.code, err.text);
      return;
    }
    payload_sha_.final(digest);
    if (!check_payload_digest(cfg_, payload_crc_.final(), digest, &err)) {
      fail(err.code, err.text);
      return;
    }
    char why[GK_PUSH_STATUS_TEXT_MAX + 1] = {0};
    const uint8_t code = hooks_.activate(cfg_, pkg, total_, static_cast<uint8_t>(slot_), why, sizeof(why));
    if (code != GK_PUSH_ERR_NONE) {
      fail(code, why[0] ? why : "the model cannot run on this firmware");
      return;
    }
    running_ = static_cast<uint8_t>(slot_);  // the new model runs: now remember it
    CommitRecord rec;
    rec.sequence = slots_.next_sequence();
    rec.length = total_;
    memcpy(rec.sha256, sha_, 32);
    state_ = GK_PUSH_STATE_DONE;
    error_ = GK_PUSH_ERR_NONE;
    set_reason(slots_.write_record(slot_, rec) ? "" : "running, but the commit record could not be written: "
                                                    "a reset returns to the previous model");
    notify();
  }

  void refuse(const char* text) { fail(GK_PUSH_ERR_BAD_REQUEST, text); }

  void fail(uint8_t err, const char* text) {
    state_ = GK_PUSH_STATE_FAILED;
    error_ = err;
    set_reason(text);
    total_ = 0;  // a BEGIN after a failure starts over (never resumes into a refused transfer)
    memset(sha_, 0, sizeof(sha_));
    notify();
  }

  void set_reason(const char* text) {
    size_t i = 0;
    for (; text[i] && i < GK_PUSH_STATUS_TEXT_MAX; ++i) reason_[i] = text[i];
    reason_[i] = 0;
  }

  // Every notification restarts the acknowledgement count (docs/push.md, "The acknowledgement rules").
  void notify() {
    chunks_ = 0;
    pending_ = true;
    send();
  }

  void send() {
    uint8_t buf[GK_PUSH_STATUS_SIZE + GK_PUSH_STATUS_TEXT_MAX];
    const size_t n = encode_status(buf, sizeof(buf));
    if (hooks_.notify(buf, n)) pending_ = false;
  }

  Slots& slots_;
  PushHooks hooks_;
  const char* board_;
  uint8_t running_ = GK_PUSH_BUILTIN_SLOT;
  uint8_t state_ = GK_PUSH_STATE_IDLE;
  uint8_t error_ = GK_PUSH_ERR_NONE;
  int slot_ = 0;
  uint32_t total_ = 0;
  uint8_t sha_[32] = {0};
  uint16_t ack_every_ = 1;
  uint32_t offset_ = 0;  // package bytes received in order (programmed, or in tail_)
  uint8_t tail_[4] = {0};
  uint32_t tail_n_ = 0;
  uint32_t chunks_ = 0;
  bool complained_ = false;
  uint32_t sectors_ = 0;
  int32_t erase_next_ = -1;
  uint16_t header_ = 0;
  Config cfg_;
  uint32_t hashed_ = 0;
  Sha256 whole_, payload_sha_;
  Crc32 payload_crc_;
  bool pending_ = false;
  char reason_[GK_PUSH_STATUS_TEXT_MAX + 1];
};

}  // namespace gk
