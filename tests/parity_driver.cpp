// parity_driver.cpp: host-side driver that runs the sketch's portable C++ (gk_preprocess.h,
// gk_format.h, gk_frame.h with the generated gk_config.h) on streams read from stdin and writes
// the results to stdout, so tests/test_parity.py and bench/bench_parity.py can compare them with
// Python byte for byte. Not part of the sketch (the exporter does not copy it).
//
//   parity_driver crop      stdin: repeated {i32 n, n x C i16 model-rate counts}
//                           stdout: per take GK_WINDOW x C int8 (crop_take + quantize)
//   parity_driver live      stdin: {i32 n, n x 6 i16 IMU-rate counts (ax..gz)}
//                           stdout: per resampled sample {u8 'S', u32 imu index, C x i16};
//                                   per candidate window {u8 'I', u32 imu index} when idle,
//                                   {u8 'R', u32 imu index, GK_INPUT_BYTES int8} when ready
//   parity_driver smooth    stdin: {i32 m} then m x {u8 kind (1 idle, 2 scores), GK_N_LABELS int8}
//                           stdout: per record the PREDICTION payload (gk_frame.h) then
//                                   {u16 length, the Serial line (gk_format.h)}
//   parity_driver detect [AVERAGE THRESHOLD MIN_COUNT SUPPRESSION]
//                           stdin: as smooth; stdout: per record {u8 fired, u8 class, u8 score}
//                           (gk_detect.h; the setting from argv, else gk_config.h's GK_DETECT_*)
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "gk_config.h"
#include "gk_detect.h"
#include "gk_format.h"
#include "gk_frame.h"
#include "gk_preprocess.h"

namespace {

bool read_exact(void* dst, size_t n) { return fread(dst, 1, n, stdin) == n; }
void write_all(const void* src, size_t n) { fwrite(src, 1, n, stdout); }

int run_crop() {
  static gk::Sample take[1 << 16];
  static gk::Sample window[GK_WINDOW];
  static int8_t q[GK_INPUT_BYTES];
  int32_t n = 0;
  while (read_exact(&n, sizeof(n))) {
    if (n <= 0 || n > (1 << 16) || !read_exact(take, sizeof(gk::Sample) * static_cast<size_t>(n))) return 2;
    gk::crop_take(take, n, 0, window);
    gk::quantize(window, q);
    write_all(q, sizeof(q));
  }
  return 0;
}

int run_live() {
  int32_t n = 0;
  if (!read_exact(&n, sizeof(n)) || n < 0) return 2;
  gk::Resampler resampler;
  static gk::LiveWindow live;
  static gk::Sample window[GK_WINDOW];
  static int8_t q[GK_INPUT_BYTES];
  gk::Sample out[gk::Resampler::kMaxOut];
  for (uint32_t s = 0; s < static_cast<uint32_t>(n); ++s) {
    int16_t raw[6];
    if (!read_exact(raw, sizeof(raw))) return 2;
    int16_t picked[GK_N_CHANNELS];
    for (int c = 0; c < GK_N_CHANNELS; ++c) picked[c] = raw[gk::kChannelIndex[c]];
    const int m = resampler.push(picked, out);
    for (int k = 0; k < m; ++k) {
      write_all("S", 1);
      write_all(&s, 4);
      write_all(out[k], sizeof(gk::Sample));
      const gk::LiveWindow::Event ev = live.push(out[k]);
      if (ev == gk::LiveWindow::kIdle) {
        write_all("I", 1);
        write_all(&s, 4);
      } else if (ev == gk::LiveWindow::kReady) {
        live.copy(window);
        gk::quantize(window, q);
        write_all("R", 1);
        write_all(&s, 4);
        write_all(q, sizeof(q));
      }
    }
  }
  return 0;
}

int run_smooth() {
  int32_t m = 0;
  if (!read_exact(&m, sizeof(m)) || m < 0) return 2;
  gk::Smoother smoother;
  for (int32_t i = 0; i < m; ++i) {
    uint8_t kind = 0;
    int8_t scores_in[GK_N_LABELS];
    if (!read_exact(&kind, 1) || !read_exact(scores_in, sizeof(scores_in))) return 2;
    uint8_t smoothed[GK_N_LABELS] = {0};
    uint8_t cls = GK_UNKNOWN_CLASS, confidence = 0;
    if (kind == 1) {
      smoother.idle();
    } else {
      cls = smoother.update(scores_in, smoothed, &confidence);
    }
    uint8_t payload[3 + GK_N_LABELS];
    const size_t len = gk::encode_prediction(payload, sizeof(payload), cls, confidence, smoothed, GK_N_LABELS);
    write_all(payload, len);
    char line[64 + GK_N_LABELS * 48];
    const uint16_t n = static_cast<uint16_t>(gk::format_prediction(line, sizeof(line), cls, confidence, smoothed));
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
    int8_t scores_in[GK_N_LABELS];
    if (!read_exact(&kind, 1) || !read_exact(scores_in, sizeof(scores_in))) return 2;
    uint8_t out[3] = {0, 0, 0};
    out[0] = detector.push(kind == 1 ? 0 : scores_in, &out[1], &out[2]) ? 1 : 0;
    write_all(out, 3);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && strcmp(argv[1], "detect") == 0) {
    static gk::Detector detector(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), static_cast<uint32_t>(atol(argv[5])));
    return run_detect(detector);
  }
  if (argc == 2 && strcmp(argv[1], "detect") == 0) {
    static gk::Detector detector;
    return run_detect(detector);
  }
  if (argc != 2) {
    fprintf(stderr, "usage: %s crop|live|smooth|detect [AVERAGE THRESHOLD MIN_COUNT SUPPRESSION] < input > output\n", argv[0]);
    return 2;
  }
  if (strcmp(argv[1], "crop") == 0) return run_crop();
  if (strcmp(argv[1], "live") == 0) return run_live();
  if (strcmp(argv[1], "smooth") == 0) return run_smooth();
  fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 2;
}
