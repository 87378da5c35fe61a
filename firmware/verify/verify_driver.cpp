// verify_driver.cpp: firmware-in-the-loop driver of `gesture verify` (training/verify.py).
//
// Linked with the exported sketch's own files, unmodified: gk_model.cpp + model_data.cpp (TFLM
// setup + invoke, against the sketch's bundled TFLM; model_data.cpp is the built-in model package,
// parsed by gk_package_parse.h as the sketch parses it at boot) and gk_preprocess.h / gk_detect.h
// (crop, resampler, live window, quantize, smoother, post-processor) configured at run time from
// the package. Built for Cortex-M4 and run under
// QEMU mps2-an386 (or for the host), it reads gk_verify_in.bin and writes gk_verify_out.bin
// through semihosting file I/O:
//
//   in : u32 'GKV1'
//        u32 n_takes, per take {i32 n, n x C i16 model-rate counts} (C, L: the package's channels, labels)
//        u32 n_stream, n_stream x 6 i16 IMU-rate counts (ax..gz), replayed as the IMU delivers them
//        u32 n_bench (inferences per timing run)
//   out: u32 'GKVO', u32 setup ok (1/0), u32 arena_used_bytes()
//        per take {window x C int8 input, L int8 output}
//        u32 n_events, per live event {u8 'I'|'R', u32 imu index, L int8 raw output (zeros
//        when idle), u8 class, u8 confidence, L u8 smoothed scores, u8 fired, u8 class, u8 score}
//        u32 ticks of n_bench inferences, u32 ticks of 2 x n_bench (FPGAIO 25 MHz counter; 0 on host)
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gk_config.h"
#include "gk_detect.h"
#include "gk_model.h"
#include "gk_package_parse.h"
#include "gk_preprocess.h"
#include "model_data.h"

namespace {

FILE* g_in = nullptr;
FILE* g_out = nullptr;

bool rd(void* dst, size_t n) { return fread(dst, 1, n, g_in) == n; }
void wr(const void* src, size_t n) { fwrite(src, 1, n, g_out); }
void wr32(uint32_t v) { wr(&v, 4); }

uint32_t ticks() {
#if defined(GK_VERIFY_M4)
  return *reinterpret_cast<volatile uint32_t*>(0x40028018u);  // mps2 FPGAIO COUNTER, 25 MHz
#else
  return 0;
#endif
}

void log_line(const char* line) { fprintf(stderr, "%s\n", line); }

gk::Sample g_take[1 << 14];
gk::Sample g_window[GK_MAX_WINDOW];
int8_t g_q[GK_MAX_WINDOW * GK_MAX_CHANNELS];
int8_t g_y[GK_MAX_LABELS];
gk::Config g_cfg;

int run() {
  uint32_t magic = 0, n_takes = 0;
  if (!rd(&magic, 4) || magic != 0x31564b47u || !rd(&n_takes, 4)) return 2;
  wr32(0x4f564b47u);
  gk::PackageError err;
  const uint8_t* payload = nullptr;
  size_t payload_len = 0;
  bool ok = gk::parse_package(g_package_data, g_package_data_len, GK_BOARD_NAME, true, &g_cfg, &payload, &payload_len,
                              &err);
  if (!ok) fprintf(stderr, "verify: the built-in package was refused: %s\n", err.text);
  ok = ok && gk::model_setup(g_cfg, payload, payload_len, log_line);
  wr32(ok ? 1 : 0);
  wr32(static_cast<uint32_t>(gk::model_arena_used()));
  if (!ok) return 3;
  const gk::Config& cfg = g_cfg;
  const size_t in_bytes = static_cast<size_t>(cfg.input_bytes()), n_labels = static_cast<size_t>(cfg.n_labels);
  for (uint32_t t = 0; t < n_takes; ++t) {
    int32_t n = 0;
    if (!rd(&n, 4) || n <= 0 || n > (1 << 14)) return 2;
    for (int32_t i = 0; i < n; ++i) {
      if (!rd(g_take[i], sizeof(int16_t) * static_cast<size_t>(cfg.n_channels))) return 2;
    }
    gk::crop_take(cfg, g_take, n, 0, g_window);
    gk::quantize(cfg, g_window, g_q);
    if (!gk::model_invoke(g_q, g_y)) return 4;
    wr(g_q, in_bytes);
    wr(g_y, n_labels);
  }
  // The live loop of the sketch's process_sample(), minus BLE/Serial.
  uint32_t n_stream = 0;
  if (!rd(&n_stream, 4)) return 2;
  static gk::Resampler resampler(cfg);
  static gk::LiveWindow live(cfg);
  static gk::Smoother smoother(cfg);
  static gk::Detector detector(cfg);  // the post-processor with the package's setting
  const long events_at = ftell(g_out);
  uint32_t n_events = 0;
  wr32(0);
  for (uint32_t s = 0; s < n_stream; ++s) {
    int16_t raw[6];
    if (!rd(raw, sizeof(raw))) return 2;
    int16_t picked[GK_MAX_CHANNELS];
    for (int c = 0; c < cfg.n_channels; ++c) picked[c] = raw[cfg.channel_index[c]];
    gk::Sample out[gk::Resampler::kMaxOut];
    const int m = resampler.push(picked, out);
    for (int k = 0; k < m; ++k) {
      const gk::LiveWindow::Event ev = live.push(out[k]);
      if (ev == gk::LiveWindow::kNone) continue;
      uint8_t scores[GK_MAX_LABELS] = {0};
      uint8_t cls = GK_UNKNOWN_CLASS, confidence = 0;
      int8_t y[GK_MAX_LABELS] = {0};
      if (ev == gk::LiveWindow::kIdle) {
        smoother.idle();
      } else {
        live.copy(g_window);
        gk::quantize(cfg, g_window, g_q);
        if (!gk::model_invoke(g_q, y)) return 4;
        cls = smoother.update(y, scores, &confidence);
      }
      uint8_t detected[3] = {0, 0, 0};  // fired, class, score
      detected[0] = detector.push(ev == gk::LiveWindow::kIdle ? 0 : y, &detected[1], &detected[2]) ? 1 : 0;
      const uint8_t kind = ev == gk::LiveWindow::kIdle ? 'I' : 'R';
      wr(&kind, 1);
      wr32(s);
      wr(y, n_labels);
      wr(&cls, 1);
      wr(&confidence, 1);
      wr(scores, n_labels);
      wr(detected, sizeof(detected));
      ++n_events;
    }
  }
  const long end_at = ftell(g_out);
  fseek(g_out, events_at, SEEK_SET);
  wr32(n_events);
  fseek(g_out, end_at, SEEK_SET);
  uint32_t n_bench = 0;
  if (!rd(&n_bench, 4)) return 2;
  for (int run_i = 1; run_i <= 2; ++run_i) {  // N then 2N inferences: the difference drops the loop set-up
    const uint32_t t0 = ticks();
    for (uint32_t i = 0; i < n_bench * static_cast<uint32_t>(run_i); ++i) {
      if (!gk::model_invoke(g_q, g_y)) return 4;
    }
    wr32(ticks() - t0);
  }
  return 0;
}

}  // namespace

int main() {
  g_in = fopen("gk_verify_in.bin", "rb");
  g_out = fopen("gk_verify_out.bin", "wb");
  if (g_in == nullptr || g_out == nullptr) {
    fprintf(stderr, "verify: cannot open gk_verify_in.bin / gk_verify_out.bin\n");
    return 5;
  }
  const int rc = run();
  fclose(g_out);
  fclose(g_in);
  if (rc != 0) fprintf(stderr, "verify: driver stopped with code %d\n", rc);
  return rc;
}
