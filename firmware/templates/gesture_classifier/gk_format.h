// gk_format.h: the human-readable Serial line of one prediction (portable C++11, header-only).
//
// The C++ twin of training/board_sim.py format_prediction_line(); tests/test_parity.py compiles it
// with g++ and compares the text with Python's. Integer arithmetic only (percent rounding
// (s * 100 + 127) / 255), so the board and the host print the same characters.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gk_config.h"
#include "gesture_protocol.h"

namespace gk {

inline int percent(uint8_t score) { return (static_cast<int>(score) * 100 + 127) / 255; }

// "idle" when the window had no motion (GK_UNKNOWN_CLASS, confidence 0), otherwise
// "<label|unknown> <conf>% | <label> <pct> <label> <pct> ...". Returns the text length
// (truncated to cap - 1 if the buffer is too small).
inline size_t format_prediction(char* out, size_t cap, uint8_t cls, uint8_t confidence, const uint8_t* scores) {
  if (cap == 0) return 0;
  out[0] = '\0';
  if (cls == GK_UNKNOWN_CLASS && confidence == 0) {
    int w = snprintf(out, cap, "idle");
    return w < 0 ? 0 : (static_cast<size_t>(w) < cap ? static_cast<size_t>(w) : cap - 1);
  }
  const char* name = cls < GK_N_LABELS ? kLabels[cls] : "unknown";
  size_t n = 0;
  int w = snprintf(out, cap, "%s %d%% |", name, percent(confidence));
  n = w < 0 ? 0 : static_cast<size_t>(w);
  for (int k = 0; k < GK_N_LABELS && n < cap; ++k) {
    w = snprintf(out + n, cap - n, " %s %d", kLabels[k], percent(scores[k]));
    if (w < 0) break;
    n += static_cast<size_t>(w);
  }
  return n < cap ? n : cap - 1;
}

// "EVENT <label> <score>%": the post-processor fired (board_sim.format_event_line).
inline size_t format_event(char* out, size_t cap, uint8_t cls, uint8_t score) {
  if (cap == 0) return 0;
  const char* name = cls < GK_N_LABELS ? kLabels[cls] : "unknown";
  int w = snprintf(out, cap, "EVENT %s %d%%", name, percent(score));
  return w < 0 ? 0 : (static_cast<size_t>(w) < cap ? static_cast<size_t>(w) : cap - 1);
}

}  // namespace gk
