// gk_frame.h: the wire protocol's encoders for the firmware (portable C++11, header-only).
//
// Byte layouts are defined in capture/protocol.py; the constants come from the generated
// gesture_protocol.h. tests/test_firmware_capture.py compiles this header with g++ and checks
// every byte against the Python encoders. No Arduino includes: it builds anywhere.
// `gesture firmware` copies it into firmware/capture/ (Arduino compiles only the sketch folder).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

// EVENT payload: class, score (0..255): the post-processor (gk_detect.h) fired.
inline size_t encode_event(uint8_t* out, size_t cap, uint8_t cls, uint8_t score) {
  if (cap < 2u) return 0;
  out[0] = cls;
  out[1] = score;
  return 2u;
}

// BLE notifications carry seq and t_us in front of the payload (no sync, length or CRC).
inline size_t ble_header(uint8_t* out, uint16_t seq, uint32_t t_us) {
  put_u16(out, seq);
  put_u32(out + 2, t_us);
  return GK_BLE_NOTIFY_HEADER_SIZE;
}

// Incoming CONTROL frames (host -> board) over serial: feed bytes one at a time; returns true
// when a complete, CRC-valid CONTROL frame has been parsed into cmd/arg. After a bad header or
// CRC it drops one byte and rescans what it holds (like capture/decoder.py), so noise right
// before a frame never costs that frame.
class ControlParser {
 public:
  bool feed(uint8_t b, uint8_t* cmd, uint32_t* arg) {
    if (n_ == kSize) n_ = 0;  // cannot happen (a full buffer is always resolved), but stay in bounds
    buf_[n_++] = b;
    for (;;) {
      const int s = check();
      if (s == kNeedMore) return false;
      if (s == kComplete) {
        *cmd = buf_[GK_HEADER_SIZE];
        *arg = get_u32(buf_ + GK_HEADER_SIZE + 1);
        n_ = 0;
        return true;
      }
      for (size_t i = 1; i < n_; ++i) buf_[i - 1] = buf_[i];  // bad: resync one byte later
      --n_;
    }
  }

 private:
  enum { kNeedMore, kBad, kComplete };
  static const size_t kSize = GK_HEADER_SIZE + 5 + GK_CRC_SIZE;
  int check() const {
    if (n_ == 0) return kNeedMore;
    if (buf_[0] != GK_SYNC0) return kBad;
    if (n_ > 1 && buf_[1] != GK_SYNC1) return kBad;
    if (n_ > 2 && buf_[2] != GK_PROTOCOL_VERSION) return kBad;
    if (n_ > 3 && buf_[3] != GK_FRAME_CONTROL) return kBad;
    if (n_ < GK_HEADER_SIZE) return kNeedMore;
    if (get_u16(buf_ + 10) != 5) return kBad;
    if (n_ < kSize) return kNeedMore;
    return crc16(buf_ + 2, GK_HEADER_SIZE - 2 + 5) == get_u16(buf_ + GK_HEADER_SIZE + 5) ? kComplete : kBad;
  }
  uint8_t buf_[kSize];
  size_t n_ = 0;
};


// ---------------------------------------------------------------------------- capture firmware
// The capture sketch's logic that does not touch hardware, so g++ can test it on the host.

// Samples per serial frame at rate_hz: about GK_FRAMES_PER_SECOND_TARGET frames/s
// (capture/protocol.py samples_per_frame).
inline uint8_t samples_per_frame(uint32_t rate_hz) {
  uint32_t n = (rate_hz + GK_FRAMES_PER_SECOND_TARGET - 1) / GK_FRAMES_PER_SECOND_TARGET;
  if (n < 1) n = 1;
  if (n > GK_MAX_SAMPLES_PER_FRAME) n = GK_MAX_SAMPLES_PER_FRAME;
  return static_cast<uint8_t>(n);
}

// Samples per IMU notification at the negotiated ATT MTU (protocol.ble_samples_per_notification).
inline uint8_t ble_samples_per_notification(uint16_t mtu, uint8_t channels) {
  int room = static_cast<int>(mtu) - GK_ATT_OVERHEAD - GK_BLE_NOTIFY_HEADER_SIZE - 2;
  int n = room / (2 * channels);
  if (n < 1) n = 1;
  if (n > 255) n = 255;
  return static_cast<uint8_t>(n);
}

inline bool rate_supported(uint32_t rate_hz) {
  static const uint32_t rates[GK_NUM_SUPPORTED_RATES] = GK_SUPPORTED_RATES;
  for (int i = 0; i < GK_NUM_SUPPORTED_RATES; ++i) {
    if (rates[i] == rate_hz) return true;
  }
  return false;
}

// INFO payload, the same key order and text as capture/virtual/sources.py capture_info():
// proto, fw, board, sensor, mode, rate, ch, acc_fs, gyr_fs. Returns its length (0: does not fit).
inline size_t build_info(char* out, size_t cap, const char* fw, const char* board, const char* sensor,
                         const char* mode, uint32_t rate_hz, uint8_t channels) {
  int n = snprintf(out, cap, "proto=%d;fw=%s;board=%s;sensor=%s;mode=%s;rate=%lu;ch=%s;acc_fs=%d;gyr_fs=%d",
                   GK_PROTOCOL_VERSION, fw, board, sensor, mode, static_cast<unsigned long>(rate_hz),
                   channels == 6 ? "ax,ay,az,gx,gy,gz" : "ax,ay,az", GK_ACCEL_RANGE_G, GK_GYRO_RANGE_DPS);
  return (n < 0 || static_cast<size_t>(n) >= cap) ? 0 : static_cast<size_t>(n);
}

// LOG text for a refused SET_RATE (capture/virtual/serial_board.py rate_error_text()).
inline size_t format_rate_error(char* out, size_t cap, uint32_t rate_hz) {
  int n = snprintf(out, cap, "error: rate %lu Hz not supported", static_cast<unsigned long>(rate_hz));
  return (n < 0 || static_cast<size_t>(n) >= cap) ? 0 : static_cast<size_t>(n);
}

// Library floats (g, deg/s) back to the IMU's int16 counts at the protocol's full scale,
// rounding half away from zero and saturating like the sensor (protocol.units_to_counts).
inline int16_t to_counts(float value, float lsb_per_unit) {
  float v = value * lsb_per_unit;
  v = v < 0 ? v - 0.5f : v + 0.5f;
  if (v >= 32767.0f) return 32767;
  if (v <= -32768.0f) return -32768;
  return static_cast<int16_t>(v);
}

// Collects samples into one batch (a serial frame or a BLE notification) with the device time of
// its first sample.
class ImuBatcher {
 public:
  static const uint8_t kMaxSamples = 96;  // MTU 517 with 3 channels needs 84
  ImuBatcher() : channels_(6), target_(1), count_(0), t_first_(0) {}
  void configure(uint8_t channels, uint8_t per_batch) {
    channels_ = channels;
    target_ = per_batch < 1 ? 1 : (per_batch > kMaxSamples ? kMaxSamples : per_batch);
    count_ = 0;
  }
  // Adds one sample (channels_ values) taken at t_us; true when the batch is full.
  bool push(const int16_t* sample, uint32_t t_us) {
    if (count_ == 0) t_first_ = t_us;
    if (count_ < target_) {
      for (uint8_t c = 0; c < channels_; ++c) buf_[count_ * channels_ + c] = sample[c];
      ++count_;
    }
    return count_ >= target_;
  }
  uint8_t count() const { return count_; }
  uint8_t channels() const { return channels_; }
  uint32_t t_first() const { return t_first_; }
  void clear() { count_ = 0; }
  // The IMU payload of the batch (protocol.encode_imu).
  size_t payload(uint8_t* out, size_t cap) const { return encode_imu(out, cap, buf_, channels_, count_); }
  // A complete serial frame carrying the batch.
  size_t frame(uint8_t* out, size_t cap, uint16_t seq) const {
    uint8_t p[2 + 2 * kMaxSamples * 6];
    size_t n = payload(p, sizeof(p));
    return n ? encode_frame(out, cap, GK_FRAME_IMU, seq, t_first_, p, n) : 0;
  }
  // A BLE notification carrying the batch: seq, t_us, IMU payload.
  size_t notification(uint8_t* out, size_t cap, uint16_t seq) const {
    if (cap < GK_BLE_NOTIFY_HEADER_SIZE) return 0;
    size_t n = payload(out + GK_BLE_NOTIFY_HEADER_SIZE, cap - GK_BLE_NOTIFY_HEADER_SIZE);
    if (!n) return 0;
    ble_header(out, seq, t_first_);
    return GK_BLE_NOTIFY_HEADER_SIZE + n;
  }

 private:
  int16_t buf_[kMaxSamples * 6];
  uint8_t channels_;
  uint8_t target_;
  uint8_t count_;
  uint32_t t_first_;
};

// A CONTROL payload (BLE control characteristic writes): command, u32 argument. False if malformed.
inline bool parse_control_payload(const uint8_t* data, size_t len, uint8_t* cmd, uint32_t* arg) {
  if (len != 5) return false;
  *cmd = data[0];
  *arg = get_u32(data + 1);
  return true;
}

// Bytes waiting for a link that takes them only when it can (USB serial without blocking).
// push() takes a whole frame or nothing, so the host never receives half a frame followed by
// another; the sketch counts what did not fit.
template <size_t N>
class TxQueue {
 public:
  bool push(const uint8_t* data, size_t n) {
    if (n > N - n_) return false;
    for (size_t i = 0; i < n; ++i) buf_[(head_ + n_ + i) % N] = data[i];
    n_ += n;
    return true;
  }
  // The longest run of queued bytes that is contiguous in memory (for a driver's send call).
  const uint8_t* front(size_t* n) const {
    *n = n_ < N - head_ ? n_ : N - head_;
    return buf_ + head_;
  }
  void pop(size_t n) {
    if (n > n_) n = n_;
    head_ = (head_ + n) % N;
    n_ -= n;
  }
  void clear() { head_ = n_ = 0; }
  size_t size() const { return n_; }

 private:
  uint8_t buf_[N];
  size_t head_ = 0, n_ = 0;
};

// LOG text reporting what a sketch dropped instead of blocking (capture/virtual/firmware.py
// parse_drops reads it back).
// imu_samples: samples the sensor produced that were never read (an overflowed FIFO).
inline size_t format_drops(char* out, size_t cap, uint32_t serial_frames, uint32_t ble_notifications,
                           uint32_t imu_samples = 0) {
  int n = snprintf(out, cap, "dropped: serial=%lu ble=%lu imu=%lu", static_cast<unsigned long>(serial_frames),
                   static_cast<unsigned long>(ble_notifications), static_cast<unsigned long>(imu_samples));
  return (n < 0 || static_cast<size_t>(n) >= cap) ? 0 : static_cast<size_t>(n);
}

}  // namespace gk
