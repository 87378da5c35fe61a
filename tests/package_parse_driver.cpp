// package_parse_driver.cpp: host driver of gk_package_parse.h, gk_sha256.h and gk_crc32.h for
// tests/test_package_parse.py (not part of the sketch).
//
//   package_parse_driver parse BOARD|- CHECK_PAYLOAD(0|1) < package
//       stdout: "declared N" (gk::declared_length), then "ok" and one "key value" line per Config field (arrays comma-separated, labels
//       comma-joined, shas in hex, "payload OFFSET LENGTH"), or "error CODE OFFSET text"
//   package_parse_driver hash CHUNK... < bytes
//       stdout: "SHA256HEX CRC32HEX": the input fed to update() in pieces of the given sizes
//       (cycled), final() taken before the last piece too (it must not disturb the state)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gk_crc32.h"
#include "gk_package_parse.h"
#include "gk_sha256.h"

namespace {

uint8_t g_buf[1 << 20];

size_t read_all() {
  size_t n = 0, got = 0;
  while ((got = fread(g_buf + n, 1, sizeof(g_buf) - n, stdin)) > 0) n += got;
  return n;
}

void print_list(const char* key, const int64_t* v, int n) {
  printf("%s ", key);
  for (int i = 0; i < n; ++i) printf(i ? ",%lld" : "%lld", static_cast<long long>(v[i]));
  printf("\n");
}

int run_parse(const char* board, bool check) {
  const size_t len = read_all();
  printf("declared %lu\n", static_cast<unsigned long>(gk::declared_length(g_buf, len)));
  static gk::Config cfg;
  gk::PackageError err;
  const uint8_t* payload = 0;
  size_t payload_len = 0;
  if (!gk::parse_package(g_buf, len, strcmp(board, "-") == 0 ? 0 : board, check, &cfg, &payload, &payload_len, &err)) {
    printf("error %d %lu %s\n", err.code, static_cast<unsigned long>(err.offset), err.text);
    return 0;
  }
  char hex[65];
  printf("ok\nboard %s\n", cfg.board);
  gk::sha256_hex(cfg.model_sha256, hex);
  printf("model_sha256 %s\n", hex);
  gk::sha256_hex(cfg.payload_sha256, hex);
  printf("payload_sha256 %s\n", hex);
  printf("payload_crc32 %lu\nheader_length %lu\n", static_cast<unsigned long>(cfg.payload_crc32),
         static_cast<unsigned long>(cfg.header_length));
  const struct { const char* key; long value; } scalars[] = {
      {"imu_rate_hz", cfg.imu_rate_hz}, {"model_rate_hz", cfg.model_rate_hz}, {"resample_step", cfg.resample_step},
      {"window", cfg.window}, {"stride", cfg.stride}, {"smoothing", cfg.smoothing},
      {"motion_threshold", cfg.motion_threshold}, {"confidence_threshold", cfg.confidence_threshold},
      {"input_zero_point", cfg.input_zero_point}, {"unknown_label_index", cfg.unknown_label_index},
      {"detect_average", cfg.detect_average}, {"detect_threshold", cfg.detect_threshold},
      {"detect_min_count", cfg.detect_min_count}, {"detect_suppression", static_cast<long>(cfg.detect_suppression)},
      {"arena_bytes", static_cast<long>(cfg.arena_bytes)}};
  for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); ++i) printf("%s %ld\n", scalars[i].key, scalars[i].value);
  int64_t v[GK_MAX_TAPS];
  for (int i = 0; i < cfg.n_channels; ++i) v[i] = cfg.channel_index[i];
  print_list("channel_index", v, cfg.n_channels);
  for (int i = 0; i < cfg.n_channels; ++i) v[i] = cfg.motion_channel[i];
  print_list("motion_channel", v, cfg.n_channels);
  for (int i = 0; i < cfg.n_channels; ++i) v[i] = cfg.mean[i];
  print_list("mean", v, cfg.n_channels);
  for (int i = 0; i < cfg.n_channels; ++i) v[i] = cfg.mult[i];
  print_list("mult", v, cfg.n_channels);
  for (int i = 0; i < cfg.n_taps; ++i) v[i] = cfg.lowpass[i];
  print_list("lowpass", v, cfg.n_taps);
  printf("labels ");
  for (int i = 0; i < cfg.n_labels; ++i) printf(i ? ",%s" : "%s", cfg.labels[i]);
  printf("\npayload %lu %lu\n", static_cast<unsigned long>(payload - g_buf), static_cast<unsigned long>(payload_len));
  return 0;
}

int run_hash(int n_chunks, char** chunks) {
  const size_t len = read_all();
  gk::Sha256 sha;
  gk::Crc32 crc;
  size_t off = 0;
  uint8_t early[32];
  for (int i = 0; off < len; i = (i + 1) % n_chunks) {
    size_t take = static_cast<size_t>(atol(chunks[i]));
    if (take > len - off) take = len - off;
    sha.final(early);  // a look at the digest so far must not change the state
    (void)crc.final();
    sha.update(g_buf + off, take);
    crc.update(g_buf + off, take);
    off += take;
  }
  uint8_t digest[32];
  sha.final(digest);
  char hex[65];
  gk::sha256_hex(digest, hex);
  printf("%s %08lx\n", hex, static_cast<unsigned long>(crc.final()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "parse") == 0) return run_parse(argv[2], atoi(argv[3]) != 0);
  if (argc >= 3 && strcmp(argv[1], "hash") == 0) return run_hash(argc - 2, argv + 2);
  fprintf(stderr, "usage: %s parse BOARD|- 0|1 < package | hash CHUNK... < bytes\n", argv[0]);
  return 2;
}
