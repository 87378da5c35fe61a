// gk_detect.h: the post-processor, the C++ twin of training/postprocess.py's Detector.
//
// From one candidate window's scores (or "idle": no motion, the model did not run) to events:
// the mean of the model results among the last `average` candidate windows, first argmax, an
// event when it is not the "no gesture" class (unknown_label_index), reaches `threshold`
// (0..255), at least `min_count` model results are in the history, and the same label has not
// fired within the last `suppression` candidate windows. Integer only; the setting comes from
// the model folder's config.json (`gesture calibrate` chooses it) through the model package
// (gk::Config detect_*), read at run time; the history is sized for GK_MAX_DETECT_AVERAGE windows
// of GK_MAX_LABELS scores. tests/test_parity.py compiles this with g++ and checks Python's events.
// Portable C++11: no Arduino, no heap, no floating point.
#pragma once
#include <stdint.h>

#include "gk_package.h"
#include "gk_package_parse.h"

namespace gk {

class Detector {
 public:
  static const int kMaxAverage = GK_MAX_DETECT_AVERAGE;
  Detector() { configure(1, 1, 255, 1, 0, -1); }
  explicit Detector(const Config& cfg) { reset(cfg); }
  // The running model's setting (and labels).
  void reset(const Config& cfg) {
    configure(cfg.n_labels, cfg.detect_average, cfg.detect_threshold, cfg.detect_min_count, cfg.detect_suppression,
              cfg.unknown_label_index);
  }
  // Any setting (the parity tests sweep them).
  void configure(int n_labels, int average, int threshold, int min_count, uint32_t suppression, int unknown) {
    n_labels_ = n_labels < 1 ? 1 : (n_labels > GK_MAX_LABELS ? GK_MAX_LABELS : n_labels);
    average_ = average < 1 ? 1 : (average > kMaxAverage ? kMaxAverage : average);
    threshold_ = threshold;
    min_count_ = min_count;
    suppression_ = suppression;
    unknown_ = unknown;
    clear();
  }
  void clear() { n_ = 0; next_ = 0; step_ = 0; last_label_ = -1; last_step_ = 0; }

  // One candidate window: out_int8 = the model's int8 softmax output, or 0 when idle.
  // Returns true when an event fires, with its class and mean score (0..255).
  bool push(const int8_t* out_int8, uint8_t* cls, uint8_t* score) {
    ++step_;
    ready_[next_] = out_int8 != 0;
    for (int k = 0; k < n_labels_; ++k) hist_[next_][k] = out_int8 ? static_cast<uint8_t>(out_int8[k] + 128) : 0;
    next_ = (next_ + 1) % average_;
    if (n_ < average_) ++n_;
    int32_t count = 0;
    for (int h = 0; h < n_; ++h) count += ready_[h] ? 1 : 0;
    if (count < min_count_ || count == 0) return false;
    int best = 0;
    int32_t best_mean = -1;
    for (int k = 0; k < n_labels_; ++k) {
      int32_t total = 0;
      for (int h = 0; h < n_; ++h) total += hist_[h][k];  // idle entries hold zeros
      const int32_t mean = (total + count / 2) / count;
      if (mean > best_mean) { best_mean = mean; best = k; }
    }
    if (best == unknown_ || best_mean < threshold_) return false;
    if (best == last_label_ && step_ - last_step_ <= suppression_) return false;
    last_label_ = best;
    last_step_ = step_;
    *cls = static_cast<uint8_t>(best);
    *score = static_cast<uint8_t>(best_mean);
    return true;
  }

 private:
  uint8_t hist_[kMaxAverage][GK_MAX_LABELS];
  bool ready_[kMaxAverage];
  int n_labels_;
  int average_;
  int32_t threshold_;
  int32_t min_count_;
  uint32_t suppression_;
  int unknown_;
  int n_;
  int next_;
  uint32_t step_;
  int last_label_;
  uint32_t last_step_;
};

}  // namespace gk
