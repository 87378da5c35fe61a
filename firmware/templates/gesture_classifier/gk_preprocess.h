// gk_preprocess.h: the board's preprocessing, the C++ twin of training/preprocess.py.
//
// Everything is integer arithmetic, so it gives the same bytes as the Python that training and
// evaluation use, on any CPU, with or without an FPU. The numbers (window, stride, channels, mean,
// multipliers, thresholds, resample step, low-pass taps) come at run time from the running model's
// gk::Config (gk_package_parse.h: the package compiled into the sketch, or a pushed one); buffers are
// sized for the compile-time maxima of gk_package.h (GK_MAX_*), so one binary runs any model within
// them. Each stateful class takes the Config at reset() and keeps a pointer to it: the Config must
// outlive it (the sketch keeps the running one in a static), and every object is reset when the
// model changes. tests/test_parity.py compiles this header with g++ -Wall -Wextra -Werror and
// compares its output with Python's byte for byte, for several configurations through one binary.
// Portable C++11: no Arduino, no heap, no floating point.
#pragma once
#include <stdint.h>

#include "gesture_protocol.h"
#include "gk_package.h"
#include "gk_package_parse.h"

namespace gk {

static const int kShift = GK_PKG_MULT_SHIFT;         // Q of the input multipliers (training/preprocess.py SHIFT)
static const int kLowpassShift = GK_PKG_LOWPASS_SHIFT;  // Q of the anti-alias taps (training/preprocess.py LOWPASS_Q)

// One model-rate sample: n_channels values used, room for GK_MAX_CHANNELS.
typedef int16_t Sample[GK_MAX_CHANNELS];

inline int16_t clamp_i16(int64_t v) { return static_cast<int16_t>(v < -32768 ? -32768 : (v > 32767 ? 32767 : v)); }

// IMU rate -> model rate, the streaming twin of training/preprocess.py's resample():
// 1. anti-alias low-pass: a causal FIR with the integer Q15 taps cfg.lowpass (designed by
//    scipy.signal in training/preprocess.py lowpass_taps, carried in the package; a single
//    tap of 32768 when the rate drops by 1.25x or less). The history starts filled with the
//    first sample (the board at rest), as in Python.
// 2. linear interpolation in Q16 fixed point: output k sits at filtered-input position
//    k * cfg.resample_step / 65536.
// push() each IMU sample (the model's channels, cfg.n_channels values) as it arrives; it emits
// every output whose position is now covered (0, 1 or more when downsampling/upsampling; at most
// kMaxOut: the parser keeps resample_step >= GK_MIN_RESAMPLE_STEP).
class Resampler {
 public:
  static const int kMaxOut = GK_MAX_RESAMPLE_OUT;
  Resampler() : cfg_(0) { clear(); }
  explicit Resampler(const Config& cfg) { reset(cfg); }
  void reset(const Config& cfg) { cfg_ = &cfg; clear(); }
  int push(const int16_t* raw, Sample* out) {
    const Config& cfg = *cfg_;
    const int nc = cfg.n_channels;
    int16_t in[GK_MAX_CHANNELS];
    lowpass(raw, in);
    int n = 0;
    const int64_t s = n_in_;  // index of this sample
    const int64_t limit = s << 16;
    while (next_pos_ <= limit && n < kMaxOut) {
      const int64_t i = next_pos_ >> 16;
      const int64_t f = next_pos_ & 0xFFFF;
      for (int c = 0; c < nc; ++c) {
        if (i == s) {  // exactly on this sample (f == 0)
          out[n][c] = in[c];
        } else {       // between the previous sample and this one
          out[n][c] = static_cast<int16_t>((static_cast<int64_t>(prev_[c]) * (65536 - f) +
                                            static_cast<int64_t>(in[c]) * f + 32768) >> 16);
        }
      }
      ++n;
      next_pos_ += cfg.resample_step;
    }
    for (int c = 0; c < nc; ++c) prev_[c] = in[c];
    ++n_in_;
    return n;
  }

 private:
  void clear() { n_in_ = 0; next_pos_ = 0; head_ = 0; }
  // y = (sum_k lowpass[k] * x[now - k] + 2^14) >> 15, clamped to int16
  void lowpass(const int16_t* raw, int16_t* y) {
    const Config& cfg = *cfg_;
    const int nc = cfg.n_channels, taps = cfg.n_taps;
    if (n_in_ == 0) {
      for (int k = 0; k < taps; ++k)
        for (int c = 0; c < nc; ++c) hist_[k][c] = raw[c];
    }
    for (int c = 0; c < nc; ++c) hist_[head_][c] = raw[c];  // hist_[head_] is x[now]
    for (int c = 0; c < nc; ++c) {
      int64_t acc = 0;
      for (int k = 0; k < taps; ++k) {
        const int idx = (head_ + taps - k) % taps;
        acc += static_cast<int64_t>(cfg.lowpass[k]) * hist_[idx][c];
      }
      y[c] = clamp_i16((acc + (static_cast<int64_t>(1) << (kLowpassShift - 1))) >> kLowpassShift);
    }
    head_ = (head_ + 1) % taps;
  }

  const Config* cfg_;
  int16_t hist_[GK_MAX_TAPS][GK_MAX_CHANNELS];  // the last n_taps raw samples (ring)
  int16_t prev_[GK_MAX_CHANNELS];
  int64_t n_in_;
  int64_t next_pos_;
  int head_;
};

// Motion energy of a sample: sum over accelerometer channels of |x[i] - x[i-1]|.
inline int32_t motion(const Config& cfg, const int16_t* cur, const int16_t* prev) {
  int32_t e = 0;
  for (int c = 0; c < cfg.n_channels; ++c) {
    if (cfg.motion_channel[c]) {
      int32_t d = static_cast<int32_t>(cur[c]) - prev[c];
      e += d < 0 ? -d : d;
    }
  }
  return e;
}

// model input (cfg.window x cfg.n_channels int8, sample-major):
// q = clamp(zp + ((c - mean) * mult + 2^(kShift-1)) >> kShift, -128, 127)
inline void quantize(const Config& cfg, const Sample* window, int8_t* out) {
  const int nc = cfg.n_channels;
  for (int t = 0; t < cfg.window; ++t) {
    for (int c = 0; c < nc; ++c) {
      int64_t v = static_cast<int64_t>(window[t][c]) - cfg.mean[c];
      int64_t q = cfg.input_zero_point + ((v * cfg.mult[c] + (static_cast<int64_t>(1) << (kShift - 1))) >> kShift);
      out[t * nc + c] = static_cast<int8_t>(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
  }
}

// The live rule: keep the last cfg.window model-rate samples; every cfg.stride samples the window
// is a candidate; it runs the model only if its largest per-sample motion (inside the window)
// reaches cfg.motion_threshold, otherwise the board reports idle.
class LiveWindow {
 public:
  enum Event { kNone = 0, kIdle = 1, kReady = 2 };
  LiveWindow() : cfg_(0) { clear(); }
  explicit LiveWindow(const Config& cfg) { reset(cfg); }
  void reset(const Config& cfg) { cfg_ = &cfg; clear(); }
  Event push(const int16_t* in) {
    const Config& cfg = *cfg_;
    const int w = cfg.window;
    const int last = (head_ + w - 1) % w;
    energy_[head_] = count_ > 0 ? motion(cfg, in, ring_[last]) : 0;
    for (int c = 0; c < cfg.n_channels; ++c) ring_[head_][c] = in[c];
    head_ = (head_ + 1) % w;
    ++count_;
    if (count_ < w || (count_ - w) % cfg.stride != 0) return kNone;
    int32_t peak = 0;
    for (int k = 1; k < w; ++k) {  // skip the oldest sample: its motion is outside the window
      int32_t e = energy_[(head_ + k) % w];
      if (e > peak) peak = e;
    }
    return peak >= cfg.motion_threshold ? kReady : kIdle;
  }
  // the current window, oldest first
  void copy(Sample* out) const {
    const int w = cfg_->window;
    for (int k = 0; k < w; ++k) {
      for (int c = 0; c < cfg_->n_channels; ++c) out[k][c] = ring_[(head_ + k) % w][c];
    }
  }
  int64_t count() const { return count_; }

 private:
  void clear() { count_ = 0; head_ = 0; }
  const Config* cfg_;
  Sample ring_[GK_MAX_WINDOW];
  int32_t energy_[GK_MAX_WINDOW];
  int64_t count_;
  int head_;
};

// One window from a whole recorded take (training's crop_take): centred on the motion centroid
// for long takes, edge-padded for short ones. The board itself uses LiveWindow; this exists so
// the parity test and gesture verify can check the training windows too.
inline void crop_take(const Config& cfg, const Sample* x, int n, int shift, Sample* out) {
  const int w = cfg.window, nc = cfg.n_channels;
  if (n >= w) {
    int64_t total = 0, weighted = 0;
    for (int i = 1; i < n; ++i) {
      int32_t e = motion(cfg, x[i], x[i - 1]);
      total += e;
      weighted += static_cast<int64_t>(i) * e;
    }
    int64_t centroid = total > 0 ? weighted / total : n / 2;
    int64_t start = centroid - w / 2 + shift;
    if (start > n - w) start = n - w;
    if (start < 0) start = 0;
    for (int t = 0; t < w; ++t)
      for (int c = 0; c < nc; ++c) out[t][c] = x[start + t][c];
    return;
  }
  int before = (w - n) / 2 + shift;
  if (before > w - n) before = w - n;
  if (before < 0) before = 0;
  for (int t = 0; t < w; ++t) {
    int src = t - before;
    if (src < 0) src = 0;
    if (src > n - 1) src = n - 1;
    for (int c = 0; c < nc; ++c) out[t][c] = x[src][c];
  }
}

// Scores -> prediction: mean of the last cfg.smoothing score vectors (rounded), first argmax,
// GK_UNKNOWN_CLASS below cfg.confidence_threshold. idle() clears the history.
class Smoother {
 public:
  Smoother() : cfg_(0) { idle(); }
  explicit Smoother(const Config& cfg) { reset(cfg); }
  void reset(const Config& cfg) { cfg_ = &cfg; idle(); }
  void idle() { n_ = 0; next_ = 0; }
  // scores: int8 softmax output (scale 1/256, zero point -128); fills smoothed u8 scores
  uint8_t update(const int8_t* out_int8, uint8_t* smoothed, uint8_t* confidence) {
    const Config& cfg = *cfg_;
    const int labels = cfg.n_labels;
    for (int k = 0; k < labels; ++k) hist_[next_][k] = static_cast<uint8_t>(out_int8[k] + 128);
    next_ = (next_ + 1) % cfg.smoothing;
    if (n_ < cfg.smoothing) ++n_;
    int best = 0;
    for (int k = 0; k < labels; ++k) {
      int32_t total = 0;
      for (int h = 0; h < n_; ++h) total += hist_[h][k];
      smoothed[k] = static_cast<uint8_t>((total + n_ / 2) / n_);
      if (smoothed[k] > smoothed[best]) best = k;
    }
    *confidence = smoothed[best];
    const int32_t confidence32 = smoothed[best];
    return confidence32 < cfg.confidence_threshold ? GK_UNKNOWN_CLASS : static_cast<uint8_t>(best);
  }

 private:
  const Config* cfg_;
  uint8_t hist_[GK_MAX_SMOOTHING][GK_MAX_LABELS];
  int n_;
  int next_;
};

}  // namespace gk
