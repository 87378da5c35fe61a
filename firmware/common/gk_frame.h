// gk_frame.h: the wire protocol's encoders for the firmware (portable C++11, header-only).
//
// Byte layouts are defined in capture/protocol.py; the constants come from the generated
// gesture_protocol.h. tests/test_firmware_frames.py compiles this header with g++ and checks
// every byte against the Python encoders. No Arduino includes: it builds anywhere.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "gesture_protocol.h"

namespace gk {

// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF). Bitwise: no 512-byte table in flash.
inline uint16_t crc16(const uint8_t* data, size_t len, uint16_t crc = 0xFFFF) {
  for (size_t i = 0; i < len; ++i) {
    crc ^= static_cast<uint16_t>(data[i]) << 8;
    for (int b = 0; b < 8; ++b) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

inline void put_u16(uint8_t* p, uint16_t v) { p[0] = v & 0xFF; p[1] = v >> 8; }
inline void put_u32(uint8_t* p, uint32_t v) {
  p[0] = v & 0xFF; p[1] = (v >> 8) & 0xFF; p[2] = (v >> 16) & 0xFF; p[3] = v >> 24;
}
inline uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// Serial frame: sync, version, type, seq, t_us, length, payload, CRC. Returns the frame size,
// or 0 when the payload is too long or out is too small.
inline size_t encode_frame(uint8_t* out, size_t cap, uint8_t type, uint16_t seq, uint32_t t_us,
                           const uint8_t* payload, size_t len) {
  if (len > GK_MAX_PAYLOAD || cap < GK_HEADER_SIZE + len + GK_CRC_SIZE) return 0;
  out[0] = GK_SYNC0;
  out[1] = GK_SYNC1;
  out[2] = GK_PROTOCOL_VERSION;
  out[3] = type;
  put_u16(out + 4, seq);
  put_u32(out + 6, t_us);
  put_u16(out + 10, static_cast<uint16_t>(len));
  for (size_t i = 0; i < len; ++i) out[GK_HEADER_SIZE + i] = payload[i];
  put_u16(out + GK_HEADER_SIZE + len, crc16(out + 2, GK_HEADER_SIZE - 2 + len));
  return GK_HEADER_SIZE + len + GK_CRC_SIZE;
}

// IMU payload: channels, count, then count x channels int16 little-endian, sample-major.
inline size_t encode_imu(uint8_t* out, size_t cap, const int16_t* samples, uint8_t channels, uint8_t count) {
  size_t need = 2 + 2u * channels * count;
  if (cap < need) return 0;
  out[0] = channels;
  out[1] = count;
  for (size_t i = 0; i < static_cast<size_t>(channels) * count; ++i) {
    put_u16(out + 2 + 2 * i, static_cast<uint16_t>(samples[i]));
  }
  return need;
}

// PREDICTION payload: class (GK_UNKNOWN_CLASS when rejected), confidence, n, n scores (0..255).
inline size_t encode_prediction(uint8_t* out, size_t cap, uint8_t cls, uint8_t confidence,
                                const uint8_t* scores, uint8_t n) {
  if (cap < 3u + n) return 0;
  out[0] = cls;
  out[1] = confidence;
  out[2] = n;
  for (uint8_t i = 0; i < n; ++i) out[3 + i] = scores[i];
  return 3u + n;
}

// BLE notifications carry seq and t_us in front of the payload (no sync, length or CRC).
inline size_t ble_header(uint8_t* out, uint16_t seq, uint32_t t_us) {
  put_u16(out, seq);
  put_u32(out + 2, t_us);
  return GK_BLE_NOTIFY_HEADER_SIZE;
}

// Incoming CONTROL frames (host -> board) over serial: feed bytes one at a time; returns true
// when a complete, CRC-valid CONTROL frame has been parsed into cmd/arg.
class ControlParser {
 public:
  bool feed(uint8_t b, uint8_t* cmd, uint32_t* arg) {
    if (n_ == 0 && b != GK_SYNC0) return false;
    if (n_ == 1 && b != GK_SYNC1) { n_ = (b == GK_SYNC0) ? 1 : 0; return false; }
    buf_[n_++] = b;
    if (n_ == GK_HEADER_SIZE) {
      uint16_t len = get_u16(buf_ + 10);
      if (buf_[2] != GK_PROTOCOL_VERSION || buf_[3] != GK_FRAME_CONTROL || len != 5) { n_ = 0; return false; }
    }
    if (n_ == GK_HEADER_SIZE + 5 + GK_CRC_SIZE) {
      n_ = 0;
      if (crc16(buf_ + 2, GK_HEADER_SIZE - 2 + 5) != get_u16(buf_ + GK_HEADER_SIZE + 5)) return false;
      *cmd = buf_[GK_HEADER_SIZE];
      *arg = get_u32(buf_ + GK_HEADER_SIZE + 1);
      return true;
    }
    return false;
  }

 private:
  uint8_t buf_[GK_HEADER_SIZE + 5 + GK_CRC_SIZE];
  size_t n_ = 0;
};

}  // namespace gk
