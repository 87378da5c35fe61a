// parity_driver.cpp: host-side driver that runs the sketch's portable C++ (gk_package_parse.h,
// gk_preprocess.h, gk_detect.h, gk_format.h, gk_frame.h) on streams read from stdin and writes the
// results to stdout, so tests/test_parity.py and bench/bench_parity.py can compare them with
// Python byte for byte. The configuration comes from a model package file (the sketch's built-in
// one, or any other: one binary runs them all, as the push-ready board does). Not part of the
// sketch (the exporter does not copy it). C below is the package's channel count, L its labels.
//
//   parity_driver PACKAGE crop    stdin: repeated {i32 n, n x C i16 model-rate counts}
//                                 stdout: per take window x C int8 (crop_take + quantize)
//   parity_driver PACKAGE live    stdin: {i32 n, n x 6 i16 IMU-rate counts (ax..gz)}
//                                 stdout: per resampled sample {u8 'S', u32 imu index, C x i16};
//                                         per candidate window {u8 'I', u32 imu index} when idle,
//                                         {u8 'R', u32 imu index, window x C int8} when ready
//   parity_driver PACKAGE smooth  stdin: {i32 m} then m x {u8 kind (1 idle, 2 scores), L int8}
//                                 stdout: per record the PREDICTION payload (gk_frame.h) then
//                                         {u16 length, the Serial line (gk_format.h)}
//   parity_driver PACKAGE detect [AVERAGE THRESHOLD MIN_COUNT SUPPRESSION]
//                                 stdin: as smooth; stdout: per record {u8 fired, u8 class, u8 score}
//                                 (gk_detect.h; the setting from argv, else the package's)
//   parity_driver PACKAGE info SLOT
//                                 stdout: the INFO text (gk_format.h format_info, GK_INFO_PREFIX)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gk_config.h"
#include "gk_detect.h"
#include "gk_format.h"
#include "gk_frame.h"
#include "gk_package_parse.h"
#include "gk_preprocess.h"

namespace {

gk::Config g_cfg;

bool read_exact(void* dst, size_t n) { return fread(dst, 1, n, stdin) == n; }
void write_all(const void* src, size_t n) { fwrite(src, 1, n, stdout); }

bool load_package(const char* path) {
  static uint8_t buf[GK_MAX_PACKAGE_BYTES + 16];
  FILE* f = fopen(path, "rb");
  if (f == 0) {
    fprintf(stderr, "cannot open %s\n", path);
    return false;
  }
  const size_t len = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  gk::PackageError err;
  if (!gk::parse_package(buf, len, 0, true, &g_cfg, 0, 0, &err)) {
    fprintf(stderr, "%s: package refused (error %d at byte %lu): %s\n", path, err.code,
            static_cast<unsigned long>(err.offset), err.text);
    return false;
  }
  return true;
}

// n samples of C int16 values into Sample rows
bool read_samples(gk::Sample* out, int n) {
  for (int i = 0; i < n; ++i) {
    if (!read_exact(out[i], sizeof(int16_t) * static_cast<size_t>(g_cfg.n_channels))) return false;
  }
  return true;
}

int run_crop() {
  static gk::Sample take[1 << 16];
  static gk::Sample window[GK_MAX_WINDOW];
  static int8_t q[GK_MAX_WINDOW * GK_MAX_CHANNELS];
  int32_t n = 0;
  while (read_exact(&n, sizeof(n))) {
    if (n <= 0 || n > (1 << 16) || !read_samples(take, n)) return 2;
    gk::crop_take(g_cfg, take, n, 0, window);
    gk::quantize(g_cfg, window, q);
    write_all(q, static_cast<size_t>(g_cfg.input_bytes()));
  }
  return 0;
}

int run_live() {
  int32_t n = 0;
  if (!read_exact(&n, sizeof(n)) || n < 0) return 2;
  static gk::Resampler resampler(g_cfg);
  static gk::LiveWindow live(g_cfg);
  static gk::Sample window[GK_MAX_WINDOW];
  static int8_t q[GK_MAX_WINDOW * GK_MAX_CHANNELS];
  gk::Sample out[gk::Resampler::kMaxOut];
  const size_t row = sizeof(int16_t) * static_cast<size_t>(g_cfg.n_channels);
  for (uint32_t s = 0; s < static_cast<uint32_t>(n); ++s) {
    int16_t raw[6];
    if (!read_exact(raw, sizeof(raw))) return 2;
    int16_t picked[GK_MAX_CHANNELS];
    for (int c = 0; c < g_cfg.n_channels; ++c) picked[c] = raw[g_cfg.channel_index[c]];
    const int m = resampler.push(picked, out);
    for (int k = 0; k < m; ++k) {
      write_all("S", 1);
      write_all(&s, 4);
      write_all(out[k], row);
      const gk::LiveWindow::Event ev = live.push(out[k]);
      if (ev == gk::LiveWindow::kIdle) {
        write_all("I", 1);
        write_all(&s, 4);
      } else if (ev == gk::LiveWindow::kReady) {
        live.copy(window);
        gk::quantize(g_cfg, window, q);
        write_all("R", 1);
        write_all(&s, 4);
        write_all(q, static_cast<size_t>(g_cfg.input_bytes()));
      }
    }
  }
  return 0;
}

int run_smooth() {
  int32_t m = 0;
  if (!read_exact(&m, sizeof(m)) || m < 0) return 2;
  static gk::Smoother smoother(g_cfg);
  const int labels = g_cfg.n_labels;
  for (int32_t i = 0; i < m; ++i) {
    uint8_t kind = 0;
    int8_t scores_in[GK_MAX_LABELS];
    if (!read_exact(&kind, 1) || !read_exact(scores_in, static_cast<size_t>(labels))) return 2;
    uint8_t smoothed[GK_MAX_LABELS] = {0};
    uint8_t cls = GK_UNKNOWN_CLASS, confidence = 0;
    if (kind == 1) {
      smoother.idle();
    } else {
      cls = smoother.update(scores_in, smoothed, &confidence);
    }
    uint8_t payload[3 + GK_MAX_LABELS];
    const size_t len = gk::encode_prediction(payload, sizeof(payload), cls, confidence, smoothed,
                                             static_cast<uint8_t>(labels));
    write_all(payload, len);
    char line[64 + GK_MAX_LABELS * (GK_MAX_LABEL_LEN + 8)];
    const uint16_t n = static_cast<uint16_t>(gk::format_prediction(g_cfg, line, sizeof(line), cls, confidence, smoothed));
    write_all(&n, 2);
    write_all(line, n);
  }
  return 0;
}

int run_detect(gk::Detector& detector) {
  int32_t m = 0;
  if (!read_exact(&m, sizeof(m)) || m < 0) return 2;
  for (int32_t i = 0; i < m; ++i) {
    uint8_t kind = 0;
    int8_t scores_in[GK_MAX_LABELS];
    if (!read_exact(&kind, 1) || !read_exact(scores_in, static_cast<size_t>(g_cfg.n_labels))) return 2;
    uint8_t out[3] = {0, 0, 0};
    out[0] = detector.push(kind == 1 ? 0 : scores_in, &out[1], &out[2]) ? 1 : 0;
    write_all(out, 3);
  }
  return 0;
}

int run_info(int slot) {
  char text[GK_MAX_PAYLOAD + 1];
  const size_t n = gk::format_info(g_cfg, text, sizeof(text), GK_INFO_PREFIX, static_cast<uint8_t>(slot));
  write_all(text, n);
  return n > 0 ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PACKAGE crop|live|smooth|detect [AVERAGE THRESHOLD MIN_COUNT SUPPRESSION]|info SLOT "
            "< input > output\n", argv[0]);
    return 2;
  }
  if (!load_package(argv[1])) return 4;
  const char* mode = argv[2];
  if (strcmp(mode, "detect") == 0 && (argc == 3 || argc == 7)) {
    static gk::Detector detector(g_cfg);
    if (argc == 7) {
      detector.configure(g_cfg.n_labels, atoi(argv[3]), atoi(argv[4]), atoi(argv[5]),
                         static_cast<uint32_t>(atol(argv[6])), g_cfg.unknown_label_index);
    }
    return run_detect(detector);
  }
  if (strcmp(mode, "info") == 0 && argc == 4) return run_info(atoi(argv[3]));
  if (argc != 3) return 2;
  if (strcmp(mode, "crop") == 0) return run_crop();
  if (strcmp(mode, "live") == 0) return run_live();
  if (strcmp(mode, "smooth") == 0) return run_smooth();
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
