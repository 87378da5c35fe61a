// model_switch_driver.cpp: host driver of gk_model.cpp's model_setup / model_switch for
// tests/test_model_switch.py (not part of the sketch). Linked with an exported sketch's gk_model.cpp
// and the host TFLM runtime.
//
//   model_switch_driver PACKAGE...
//     For each package file in turn: parse it (gk::parse_package, any board), switch to it
//     (gk::model_switch: the first is a plain setup), then invoke whatever model runs now on a
//     deterministic input. stdout, one line each:
//       "parse CODE OFFSET text"               the package was refused (nothing switched)
//       "switch ok ARENA_USED"                 | "switch fail CODE text"
//       "run INDEX v0,v1,..."                  the running model's output on input q[i] = (i * 37 + 11 * step) % 256 - 128,
//                                              INDEX: which package runs (-1: none)
#include <stdio.h>
#include <string.h>

#include "gk_model.h"
#include "gk_package_parse.h"

namespace {

const int kMaxPackages = 16;
alignas(16) uint8_t g_buf[kMaxPackages][GK_MAX_PACKAGE_BYTES + 16];
gk::Config g_cfg[kMaxPackages];

void quiet(const char* line) { fprintf(stderr, "%s\n", line); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc - 1 > kMaxPackages) {
    fprintf(stderr, "usage: %s PACKAGE... (at most %d)\n", argv[0], kMaxPackages);
    return 2;
  }
  int running = -1;
  for (int i = 0; i < argc - 1; ++i) {
    FILE* f = fopen(argv[i + 1], "rb");
    if (f == 0) return 2;
    const size_t len = fread(g_buf[i], 1, sizeof(g_buf[i]), f);
    fclose(f);
    gk::PackageError err;
    const uint8_t* payload = 0;
    size_t payload_len = 0;
    if (!gk::parse_package(g_buf[i], len, 0, true, &g_cfg[i], &payload, &payload_len, &err)) {
      printf("parse %d %lu %s\n", err.code, static_cast<unsigned long>(err.offset), err.text);
    } else if (gk::model_switch(g_cfg[i], payload, payload_len, quiet, &err)) {
      running = i;
      printf("switch ok %lu\n", static_cast<unsigned long>(gk::model_arena_used()));
    } else {
      printf("switch fail %d %s\n", err.code, err.text);
      if (!gk::model_ready()) running = -1;
    }
    printf("run %d", running);
    if (running >= 0) {
      const gk::Config& cfg = g_cfg[running];
      static int8_t in[GK_MAX_WINDOW * GK_MAX_CHANNELS];
      int8_t out[GK_MAX_LABELS];
      for (int k = 0; k < cfg.input_bytes(); ++k) in[k] = static_cast<int8_t>((k * 37 + 11 * i) % 256 - 128);
      if (!gk::model_invoke(in, out)) {
        printf(" invoke-failed\n");
        continue;
      }
      for (int k = 0; k < cfg.n_labels; ++k) printf(k ? ",%d" : " %d", out[k]);
    }
    printf("\n");
  }
  return 0;
}
