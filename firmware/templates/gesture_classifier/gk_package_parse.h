// gk_package_parse.h: a model package (training/package.py) -> gk::Config + the model bytes.
//
// The push-ready classifier reads everything about its model at run time from a package: the one
// compiled into the sketch (model_data.cpp) at boot, and a pushed one from a flash slot at COMMIT.
// Both go through parse_package(), which checks what the board must trust before it runs a model:
// magic, format version, header CRC32, the board it was built for, every number within the
// firmware's compile-time maxima (gk_package.h, GK_MAX_*) and, optionally, the payload's CRC32
// and SHA-256. A refusal carries the PushError the transfer service reports (gesture_protocol.h
// GK_PUSH_ERR_*), the byte offset it points at and a reason for the host. The checks and their
// order are those of training.package.parse_package: tests/test_package_parse.py compiles this
// with g++ -Wall -Wextra -Werror and checks that both accept the same packages with the same
// fields and refuse corrupted ones with the same error and offset.
// Portable C++11: no Arduino, no heap, no floating point; the package may sit in flash.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gesture_protocol.h"
#include "gk_crc32.h"
#include "gk_package.h"
#include "gk_sha256.h"

namespace gk {

// Everything the live loop needs to know about the running model (gk_preprocess.h, gk_detect.h,
// gk_format.h, gk_model.cpp take it by const reference). Sizes are run-time values within the
// compile-time maxima; the arrays are sized for the maxima.
struct Config {
  char board[GK_PKG_BOARD_SIZE + 1];
  uint8_t model_sha256[32];    // report.json's model_sha256 (INFO `model`)
  uint8_t payload_sha256[32];  // of the .tflite bytes
  uint32_t payload_crc32;
  uint32_t header_length;      // the payload starts here
  uint32_t payload_length;
  int32_t imu_rate_hz;
  int32_t model_rate_hz;
  int32_t resample_step;       // Q16 IMU samples per model-rate sample
  int32_t window;              // model-rate samples per window
  int32_t stride;
  int32_t n_channels;
  int32_t n_labels;
  int32_t n_taps;              // anti-alias FIR taps (1: none needed)
  int32_t smoothing;           // windows averaged by the Smoother
  int32_t motion_threshold;
  int32_t confidence_threshold;  // 0..255
  int32_t input_zero_point;
  int32_t unknown_label_index;   // the "no gesture" class, -1 if none
  int32_t detect_average;
  int32_t detect_threshold;
  int32_t detect_min_count;
  uint32_t detect_suppression;
  uint32_t arena_bytes;          // what the model was measured to need (the firmware has GK_MAX_ARENA_BYTES)
  uint8_t channel_index[GK_MAX_CHANNELS];   // index of each model channel in ax ay az gx gy gz
  uint8_t motion_channel[GK_MAX_CHANNELS];  // 1 for accelerometer channels (the live trigger's motion)
  int32_t mean[GK_MAX_CHANNELS];            // counts
  int64_t mult[GK_MAX_CHANNELS];            // Q24: 1/std and the input scale folded
  int32_t lowpass[GK_MAX_TAPS];             // Q15 taps
  char labels[GK_MAX_LABELS][GK_MAX_LABEL_LEN + 1];

  int32_t input_bytes() const { return window * n_channels; }
};

// Why a package was refused: code (GK_PUSH_ERR_*), the byte it points at, text for PUSH_STATUS.
struct PackageError {
  uint8_t code;
  uint32_t offset;
  char text[GK_PUSH_STATUS_TEXT_MAX + 1];
};

namespace pkg_detail {

inline uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
inline int64_t i64(const uint8_t* p) {
  const uint64_t v = static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32);
  return static_cast<int64_t>(v);
}

inline bool fail(PackageError* err, uint8_t code, uint32_t offset, const char* fmt, long a = 0, long b = 0) {
  if (err != 0) {
    err->code = code;
    err->offset = offset;
    snprintf(err->text, sizeof(err->text), fmt, a, b);
  }
  return false;
}

inline bool label_char(uint8_t c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (!first && (c == '_' || c == '-'));
}

// Header field offsets (training/package.py FIXED + PRE).
enum {
  kMagic = 0, kVersion = 4, kHeaderLen = 6, kPayloadLen = 8, kPayloadCrc = 12, kPayloadSha = 16, kModelSha = 48,
  kBoard = GK_PKG_BOARD_OFFSET, kImuRate = 96, kModelRate = 98, kStep = 100, kWindow = 104, kStride = 106,
  kChannels = 108, kLabels = 109, kTaps = 110, kSmoothing = 111, kMotion = 112, kConfidence = 116, kZeroPoint = 117,
  kUnknown = 118, kDetAverage = 119, kDetThreshold = 120, kDetMinCount = 121, kDetSuppression = 122, kArena = 124,
  kArrays = GK_PKG_FIXED_SIZE + GK_PKG_PRE_SIZE
};

}  // namespace pkg_detail

// The header of the package at data (len bytes: the whole package, as the header's lengths must
// agree with it) into *cfg, with every check but the payload hashes; `board` (nullptr: any) is the
// registry key the package must be built for. False with *err filled when refused.
inline bool parse_header(const uint8_t* data, size_t len, const char* board, Config* cfg, PackageError* err) {
  using namespace pkg_detail;
  const uint8_t bad = GK_PUSH_ERR_BAD_HEADER;
  if (len < static_cast<size_t>(kArrays + 4)) return fail(err, bad, 0, "%ld bytes is shorter than a package header", static_cast<long>(len));
  for (int i = 0; i < 4; ++i) {
    if (data[i] != static_cast<uint8_t>(GK_PKG_MAGIC[i])) return fail(err, bad, 0, "bad magic: not a gesture-kit model package");
  }
  if (u16(data + kVersion) != GK_PKG_FORMAT_VERSION)
    return fail(err, bad, kVersion, "format version %ld; this firmware reads %ld", u16(data + kVersion), GK_PKG_FORMAT_VERSION);
  const uint32_t header_len = u16(data + kHeaderLen);
  if (header_len % GK_PKG_HEADER_ALIGN != 0 || header_len < static_cast<uint32_t>(kArrays + 4) || header_len > len)
    return fail(err, bad, kHeaderLen, "header length %ld is not a multiple of %ld within the package", static_cast<long>(header_len),
                GK_PKG_HEADER_ALIGN);
  const uint32_t payload_len = u32(data + kPayloadLen);
  if (static_cast<uint64_t>(len) != static_cast<uint64_t>(header_len) + payload_len)
    return fail(err, bad, kPayloadLen, "%ld bytes; the header says %ld + payload", static_cast<long>(len), static_cast<long>(header_len));
  if (len > static_cast<size_t>(GK_MAX_PACKAGE_BYTES))
    return fail(err, GK_PUSH_ERR_TOO_LARGE, kPayloadLen, "%ld bytes; a slot holds at most %ld", static_cast<long>(len),
                static_cast<long>(GK_MAX_PACKAGE_BYTES));
  if (crc32(data, header_len - 4) != u32(data + header_len - 4)) return fail(err, bad, header_len - 4, "header CRC32 mismatch");

  // board: NUL-padded ASCII
  bool ended = false;
  for (int i = 0; i < GK_PKG_BOARD_SIZE; ++i) {
    const uint8_t c = data[kBoard + i];
    if (c == 0) { ended = true; continue; }
    if (ended || c > 0x7F) return fail(err, bad, kBoard, "board name is not NUL-padded ASCII");
  }
  for (int i = 0; i < GK_PKG_BOARD_SIZE; ++i) cfg->board[i] = static_cast<char>(data[kBoard + i]);
  cfg->board[GK_PKG_BOARD_SIZE] = '\0';
  if (board != 0) {
    bool same = true;
    for (int i = 0; i <= GK_PKG_BOARD_SIZE; ++i) {  // cfg->board[GK_PKG_BOARD_SIZE] is the NUL
      if (board[i] != cfg->board[i]) { same = false; break; }
      if (board[i] == '\0') break;
    }
    if (!same) {
      if (err != 0) {
        err->code = GK_PUSH_ERR_WRONG_BOARD;
        err->offset = kBoard;
        snprintf(err->text, sizeof(err->text), "built for %s; this board is %s", cfg->board, board);
      }
      return false;
    }
  }

  for (int i = 0; i < 32; ++i) {
    cfg->payload_sha256[i] = data[kPayloadSha + i];
    cfg->model_sha256[i] = data[kModelSha + i];
  }
  cfg->payload_crc32 = u32(data + kPayloadCrc);
  cfg->header_length = header_len;
  cfg->payload_length = payload_len;
  cfg->imu_rate_hz = u16(data + kImuRate);
  cfg->model_rate_hz = u16(data + kModelRate);
  const uint32_t step = u32(data + kStep);
  cfg->window = u16(data + kWindow);
  cfg->stride = u16(data + kStride);
  cfg->n_channels = data[kChannels];
  cfg->n_labels = data[kLabels];
  cfg->n_taps = data[kTaps];
  cfg->smoothing = data[kSmoothing];
  cfg->motion_threshold = static_cast<int32_t>(u32(data + kMotion));
  cfg->confidence_threshold = data[kConfidence];
  cfg->input_zero_point = static_cast<int8_t>(data[kZeroPoint]);
  cfg->unknown_label_index = static_cast<int8_t>(data[kUnknown]);
  cfg->detect_average = data[kDetAverage];
  cfg->detect_threshold = data[kDetThreshold];
  cfg->detect_min_count = data[kDetMinCount];
  cfg->detect_suppression = u16(data + kDetSuppression);
  cfg->arena_bytes = u32(data + kArena);
  cfg->resample_step = static_cast<int32_t>(step > (1u << 24) ? 0 : step);

  // every value within what the firmware's buffers hold (the order of package.py's table)
  const Config& c = *cfg;
  struct Check { bool ok; int offset; const char* what; long value; };
  const Check checks[] = {
      {c.imu_rate_hz >= 1, kImuRate, "imu_rate_hz %ld is outside 1..65535 Hz", c.imu_rate_hz},
      {c.model_rate_hz >= 1, kModelRate, "model_rate_hz %ld is outside 1..65535 Hz", c.model_rate_hz},
      {step >= GK_MIN_RESAMPLE_STEP && step <= (1u << 24), kStep, "resample_step %ld is outside the resampler's range",
       static_cast<long>(step)},
      {c.window >= 2 && c.window <= GK_MAX_WINDOW, kWindow, "window %ld is outside 2..GK_MAX_WINDOW", c.window},
      {c.stride >= 1 && c.stride <= c.window, kStride, "stride %ld is outside 1..window", c.stride},
      {c.n_channels >= 1 && c.n_channels <= GK_MAX_CHANNELS, kChannels, "n_channels %ld is outside 1..GK_MAX_CHANNELS",
       c.n_channels},
      {c.n_labels >= 1 && c.n_labels <= GK_MAX_LABELS, kLabels, "n_labels %ld is outside 1..GK_MAX_LABELS", c.n_labels},
      {c.n_taps >= 1 && c.n_taps <= GK_MAX_TAPS, kTaps, "n_taps %ld is outside 1..GK_MAX_TAPS", c.n_taps},
      {c.smoothing >= 1 && c.smoothing <= GK_MAX_SMOOTHING, kSmoothing, "smoothing %ld is outside 1..GK_MAX_SMOOTHING",
       c.smoothing},
      {c.unknown_label_index >= -1 && c.unknown_label_index < c.n_labels, kUnknown,
       "unknown_label_index %ld is outside -1..n_labels-1", c.unknown_label_index},
      {c.detect_average >= 1 && c.detect_average <= GK_MAX_DETECT_AVERAGE, kDetAverage,
       "detect_average %ld is outside 1..GK_MAX_DETECT_AVERAGE", c.detect_average},
      {c.detect_min_count >= 1 && c.detect_min_count <= c.detect_average, kDetMinCount,
       "detect_min_count %ld is outside 1..detect_average", c.detect_min_count},
      {c.arena_bytes >= 1 && c.arena_bytes <= GK_MAX_ARENA_BYTES, kArena, "arena_bytes %ld is outside 1..GK_MAX_ARENA_BYTES",
       static_cast<long>(c.arena_bytes)},
  };
  for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); ++i) {
    if (!checks[i].ok) return fail(err, bad, static_cast<uint32_t>(checks[i].offset), checks[i].what, checks[i].value);
  }

  // the arrays: channel index, mean, mult, taps, labels
  const uint32_t end = header_len - 4;
  uint32_t off = kArrays;
  const int32_t n = c.n_channels;
  if (off + static_cast<uint32_t>(n) * 13u + static_cast<uint32_t>(c.n_taps) * 4u > end)
    return fail(err, bad, off, "header arrays run past the header");
  for (int32_t k = 0; k < n; ++k) {
    const uint8_t idx = data[off + k];
    bool repeated = false;
    for (int32_t j = 0; j < k; ++j) repeated = repeated || data[off + j] == idx;
    if (idx >= 6 || repeated)
      return fail(err, bad, off + k, "channel %ld index %ld is not a distinct IMU channel 0..5", k, idx);
    const int32_t mean = static_cast<int32_t>(u32(data + off + n + 4 * k));
    if (mean < -GK_MAX_ABS_MEAN || mean >= GK_MAX_ABS_MEAN)
      return fail(err, bad, off + n + 4 * k, "channel %ld mean %ld is outside int16 counts", k, mean);
    const int64_t mult = i64(data + off + 5 * n + 8 * k);
    if (mult <= 0 || mult >= GK_MAX_MULT)
      return fail(err, bad, off + 5 * n + 8 * k, "channel %ld mult is outside 1..2^46", k);
    cfg->channel_index[k] = idx;
    cfg->motion_channel[k] = idx < 3 ? 1 : 0;  // ax ay az
    cfg->mean[k] = mean;
    cfg->mult[k] = mult;
  }
  for (int32_t k = 0; k < c.n_taps; ++k) cfg->lowpass[k] = static_cast<int32_t>(u32(data + off + 13 * n + 4 * k));
  off += 13 * n + 4 * c.n_taps;
  int32_t text = 0;
  for (int32_t i = 0; i < c.n_labels; ++i) {
    if (off >= end || off + 1 + data[off] > end) return fail(err, bad, off, "header arrays run past the header");
    const int32_t k = data[off];
    bool ok = k >= 1 && k <= GK_MAX_LABEL_LEN;
    for (int32_t j = 0; ok && j < k; ++j) ok = label_char(data[off + 1 + j], j == 0);
    if (!ok) return fail(err, bad, off, "label %ld is not 1..%ld letters, digits, '_' or '-'", i, GK_MAX_LABEL_LEN);
    text += k + (i > 0 ? 1 : 0);
    if (text > GK_MAX_LABELS_TEXT)
      return fail(err, bad, off, "the labels joined by ',' exceed %ld characters", GK_MAX_LABELS_TEXT);
    for (int32_t j = 0; j < k; ++j) cfg->labels[i][j] = static_cast<char>(data[off + 1 + j]);
    cfg->labels[i][k] = '\0';
    off += 1 + static_cast<uint32_t>(k);
  }
  return true;
}

// The total length (header + payload) the header at data declares, or 0 when the first `avail`
// bytes do not start like a package of this format (magic, version, an aligned header length) or the
// length exceeds GK_MAX_PACKAGE_BYTES. For finding how much of a flash slot to hand to parse_header().
inline uint32_t declared_length(const uint8_t* data, size_t avail) {
  using namespace pkg_detail;
  if (avail < static_cast<size_t>(kArrays + 4)) return 0;
  for (int i = 0; i < 4; ++i) {
    if (data[i] != static_cast<uint8_t>(GK_PKG_MAGIC[i])) return 0;
  }
  const uint32_t header_len = u16(data + kHeaderLen);
  if (u16(data + kVersion) != GK_PKG_FORMAT_VERSION || header_len % GK_PKG_HEADER_ALIGN != 0 ||
      header_len < static_cast<uint32_t>(kArrays + 4))
    return 0;
  const uint64_t total = static_cast<uint64_t>(header_len) + u32(data + kPayloadLen);
  return total > static_cast<uint64_t>(GK_MAX_PACKAGE_BYTES) ? 0 : static_cast<uint32_t>(total);
}

// The payload's CRC32 and SHA-256 (computed by the caller, e.g. incrementally over flash) against
// the header's. False with *err (BAD_HASH) when either differs.
inline bool check_payload_digest(const Config& cfg, uint32_t crc, const uint8_t sha[32], PackageError* err) {
  if (crc != cfg.payload_crc32) return pkg_detail::fail(err, GK_PUSH_ERR_BAD_HASH, 12, "payload CRC32 mismatch");
  for (int i = 0; i < 32; ++i) {
    if (sha[i] != cfg.payload_sha256[i]) return pkg_detail::fail(err, GK_PUSH_ERR_BAD_HASH, 16, "payload SHA-256 mismatch");
  }
  return true;
}

// The whole check: parse_header(), then (check_payload) the payload's CRC32 and SHA-256. On success
// *payload / *payload_len point at the .tflite bytes inside data (16-byte aligned when data is).
inline bool parse_package(const uint8_t* data, size_t len, const char* board, bool check_payload, Config* cfg,
                          const uint8_t** payload, size_t* payload_len, PackageError* err) {
  if (!parse_header(data, len, board, cfg, err)) return false;
  const uint8_t* body = data + cfg->header_length;
  if (check_payload) {
    uint8_t sha[32];
    sha256(body, cfg->payload_length, sha);
    if (!check_payload_digest(*cfg, crc32(body, cfg->payload_length), sha, err)) return false;
  }
  if (payload != 0) *payload = body;
  if (payload_len != 0) *payload_len = cfg->payload_length;
  if (err != 0) {
    err->code = GK_PUSH_ERR_NONE;
    err->offset = 0;
    err->text[0] = '\0';
  }
  return true;
}

// "ab12..." (64 characters + NUL): a sha256 as INFO and the logs print it.
inline void sha256_hex(const uint8_t sha[32], char out[65]) {
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    out[2 * i] = kHex[sha[i] >> 4];
    out[2 * i + 1] = kHex[sha[i] & 15];
  }
  out[64] = '\0';
}

}  // namespace gk
