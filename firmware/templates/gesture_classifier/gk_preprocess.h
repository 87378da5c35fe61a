// gk_preprocess.h: the board's preprocessing, the C++ twin of training/preprocess.py.
//
// Everything is integer arithmetic, so it gives the same bytes as the Python that training and
// evaluation use, on any CPU, with or without an FPU. The numbers (window, stride, mean,
// multipliers, thresholds, resample step, low-pass taps) come from the generated gk_config.h, written by
// `gesture export` from the model's config.json. tests/test_parity.py compiles this header with
// g++ -Wall -Wextra -Werror and compares its output with Python's byte for byte.
// Portable C++11: no Arduino, no heap, no floating point.
#pragma once
#include <stdint.h>

#include "gesture_protocol.h"
#include "gk_config.h"

namespace gk {

typedef int16_t Sample[GK_N_CHANNELS];

inline int16_t clamp_i16(int64_t v) { return static_cast<int16_t>(v < -32768 ? -32768 : (v > 32767 ? 32767 : v)); }

// IMU rate -> model rate, the streaming twin of training/preprocess.py's resample():
// 1. anti-alias low-pass: a causal FIR with the integer Q15 taps kLowpass (designed by
//    scipy.signal in training/preprocess.py lowpass_taps, generated into gk_config.h; a single
//    tap of 32768 when the rate drops by 1.25x or less). The history starts filled with the
//    first sample (the board at rest), as in Python.
// 2. linear interpolation in Q16 fixed point: output k sits at filtered-input position
//    k * GK_RESAMPLE_STEP / 65536.
// push() each IMU sample as it arrives; it emits every output whose position is now covered
// (0, 1 or more when downsampling/upsampling).
class Resampler {
 public:
  static const int kMaxOut = (65536 / GK_RESAMPLE_STEP) + 2;
  Resampler() { reset(); }
  void reset() { n_in_ = 0; next_pos_ = 0; head_ = 0; }
  int push(const int16_t raw[GK_N_CHANNELS], Sample* out) {
    int16_t in[GK_N_CHANNELS];
    lowpass(raw, in);
    int n = 0;
    const int64_t s = n_in_;  // index of this sample
    const int64_t limit = s << 16;
    while (next_pos_ <= limit && n < kMaxOut) {
      const int64_t i = next_pos_ >> 16;
      const int64_t f = next_pos_ & 0xFFFF;
      for (int c = 0; c < GK_N_CHANNELS; ++c) {
        if (i == s) {  // exactly on this sample (f == 0)
          out[n][c] = in[c];
        } else {       // between the previous sample and this one
          out[n][c] = static_cast<int16_t>((static_cast<int64_t>(prev_[c]) * (65536 - f) +
                                            static_cast<int64_t>(in[c]) * f + 32768) >> 16);
        }
      }
      ++n;
      next_pos_ += GK_RESAMPLE_STEP;
    }
    for (int c = 0; c < GK_N_CHANNELS; ++c) prev_[c] = in[c];
    ++n_in_;
    return n;
  }

 private:
  // y = (sum_k kLowpass[k] * x[now - k] + 2^14) >> 15, clamped to int16
  void lowpass(const int16_t raw[GK_N_CHANNELS], int16_t* y) {
    if (n_in_ == 0) {
      for (int k = 0; k < GK_LOWPASS_TAPS; ++k)
        for (int c = 0; c < GK_N_CHANNELS; ++c) hist_[k][c] = raw[c];
    }
    for (int c = 0; c < GK_N_CHANNELS; ++c) hist_[head_][c] = raw[c];  // hist_[head_] is x[now]
    for (int c = 0; c < GK_N_CHANNELS; ++c) {
      int64_t acc = 0;
      for (int k = 0; k < GK_LOWPASS_TAPS; ++k) {
        const int idx = (head_ + GK_LOWPASS_TAPS - k) % GK_LOWPASS_TAPS;
        acc += static_cast<int64_t>(kLowpass[k]) * hist_[idx][c];
      }
      y[c] = clamp_i16((acc + (static_cast<int64_t>(1) << (GK_LOWPASS_SHIFT - 1))) >> GK_LOWPASS_SHIFT);
    }
    head_ = (head_ + 1) % GK_LOWPASS_TAPS;
  }

  int16_t hist_[GK_LOWPASS_TAPS][GK_N_CHANNELS];  // the last GK_LOWPASS_TAPS raw samples (ring)
  int16_t prev_[GK_N_CHANNELS];
  int64_t n_in_;
  int64_t next_pos_;
  int head_;
};

// Motion energy of a sample: sum over accelerometer channels of |x[i] - x[i-1]|.
inline int32_t motion(const int16_t* cur, const int16_t* prev) {
  int32_t e = 0;
  for (int c = 0; c < GK_N_CHANNELS; ++c) {
    if (kMotionChannel[c]) {
      int32_t d = static_cast<int32_t>(cur[c]) - prev[c];
      e += d < 0 ? -d : d;
    }
  }
  return e;
}

// model input: q = clamp(zp + ((c - mean) * mult + 2^(SHIFT-1)) >> SHIFT, -128, 127)
inline void quantize(const Sample* window, int8_t* out) {
  for (int t = 0; t < GK_WINDOW; ++t) {
    for (int c = 0; c < GK_N_CHANNELS; ++c) {
      int64_t v = static_cast<int64_t>(window[t][c]) - kMean[c];
      int64_t q = GK_INPUT_ZERO_POINT + ((v * kMult[c] + (static_cast<int64_t>(1) << (GK_SHIFT - 1))) >> GK_SHIFT);
      out[t * GK_N_CHANNELS + c] = static_cast<int8_t>(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
  }
}

// The live rule: keep the last GK_WINDOW model-rate samples; every GK_STRIDE samples the window
// is a candidate; it runs the model only if its largest per-sample motion (inside the window)
// reaches GK_MOTION_THRESHOLD, otherwise the board reports idle.
class LiveWindow {
 public:
  enum Event { kNone = 0, kIdle = 1, kReady = 2 };
  LiveWindow() { reset(); }
  void reset() { count_ = 0; head_ = 0; }
  Event push(const int16_t in[GK_N_CHANNELS]) {
    const int last = (head_ + GK_WINDOW - 1) % GK_WINDOW;
    energy_[head_] = count_ > 0 ? motion(in, ring_[last]) : 0;
    for (int c = 0; c < GK_N_CHANNELS; ++c) ring_[head_][c] = in[c];
    head_ = (head_ + 1) % GK_WINDOW;
    ++count_;
    if (count_ < GK_WINDOW || (count_ - GK_WINDOW) % GK_STRIDE != 0) return kNone;
    int32_t peak = 0;
    for (int k = 1; k < GK_WINDOW; ++k) {  // skip the oldest sample: its motion is outside the window
      int32_t e = energy_[(head_ + k) % GK_WINDOW];
      if (e > peak) peak = e;
    }
    return peak >= GK_MOTION_THRESHOLD ? kReady : kIdle;
  }
  // the current window, oldest first
  void copy(Sample* out) const {
    for (int k = 0; k < GK_WINDOW; ++k) {
      for (int c = 0; c < GK_N_CHANNELS; ++c) out[k][c] = ring_[(head_ + k) % GK_WINDOW][c];
    }
  }
  int64_t count() const { return count_; }

 private:
  Sample ring_[GK_WINDOW];
  int32_t energy_[GK_WINDOW];
  int64_t count_;
  int head_;
};

// One window from a whole recorded take (training's crop_take): centred on the motion centroid
// for long takes, edge-padded for short ones. The board itself uses LiveWindow; this exists so
// the parity test can check the training windows too.
inline void crop_take(const Sample* x, int n, int shift, Sample* out) {
  if (n >= GK_WINDOW) {
    int64_t total = 0, weighted = 0;
    for (int i = 1; i < n; ++i) {
      int32_t e = motion(x[i], x[i - 1]);
      total += e;
      weighted += static_cast<int64_t>(i) * e;
    }
    int64_t centroid = total > 0 ? weighted / total : n / 2;
    int64_t start = centroid - GK_WINDOW / 2 + shift;
    if (start > n - GK_WINDOW) start = n - GK_WINDOW;
    if (start < 0) start = 0;
    for (int t = 0; t < GK_WINDOW; ++t)
      for (int c = 0; c < GK_N_CHANNELS; ++c) out[t][c] = x[start + t][c];
    return;
  }
  int before = (GK_WINDOW - n) / 2 + shift;
  if (before > GK_WINDOW - n) before = GK_WINDOW - n;
  if (before < 0) before = 0;
  for (int t = 0; t < GK_WINDOW; ++t) {
    int src = t - before;
    if (src < 0) src = 0;
    if (src > n - 1) src = n - 1;
    for (int c = 0; c < GK_N_CHANNELS; ++c) out[t][c] = x[src][c];
  }
}

// Scores -> prediction: mean of the last GK_SMOOTHING score vectors (rounded), first argmax,
// GK_UNKNOWN_CLASS below GK_CONFIDENCE_THRESHOLD. idle() clears the history.
class Smoother {
 public:
  static const int32_t kConfidenceThreshold = GK_CONFIDENCE_THRESHOLD;
  Smoother() { idle(); }
  void idle() { n_ = 0; next_ = 0; }
  // scores: int8 softmax output (scale 1/256, zero point -128); fills smoothed u8 scores
  uint8_t update(const int8_t* out_int8, uint8_t* smoothed, uint8_t* confidence) {
    for (int k = 0; k < GK_N_LABELS; ++k) hist_[next_][k] = static_cast<uint8_t>(out_int8[k] + 128);
    next_ = (next_ + 1) % GK_SMOOTHING;
    if (n_ < GK_SMOOTHING) ++n_;
    int best = 0;
    for (int k = 0; k < GK_N_LABELS; ++k) {
      int32_t total = 0;
      for (int h = 0; h < n_; ++h) total += hist_[h][k];
      smoothed[k] = static_cast<uint8_t>((total + n_ / 2) / n_);
      if (smoothed[k] > smoothed[best]) best = k;
    }
    *confidence = smoothed[best];
    // int32 on both sides: with a threshold of 0 a uint8 comparison is "always false" (-Wtype-limits)
    const int32_t confidence32 = smoothed[best];
    return confidence32 < kConfidenceThreshold ? GK_UNKNOWN_CLASS : static_cast<uint8_t>(best);
  }

 private:
  uint8_t hist_[GK_SMOOTHING][GK_N_LABELS];
  int n_;
  int next_;
};

}  // namespace gk
