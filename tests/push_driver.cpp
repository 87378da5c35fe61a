// push_driver.cpp: the transfer service (gk_push.h) and the A/B slots (gk_slots.h) on a RAM flash
// with NOR semantics, driven by a script on stdin, so tests/test_push_service.py checks the state
// machine, the commit records and power cuts at every offset without a board or a BLE link.
// Not part of the sketch (the exporter does not copy it).
//
// stdin: records {u8 op, u16 length, length bytes}:
//   'C' a PUSH_CONTROL write      'D' a PUSH_DATA write      'P' poll() until idle (at most 10000)
//   'K' u32 n: a power cut after n more programmed bytes     'B' power on and boot
//   'A' u8 code: what the activate hook answers (0: the model runs)
//   'N' u8 busy: 1 = the status notification finds the controller's buffers full
// stdout: records {u8 kind, u16 length, bytes}:
//   'S' a PUSH_STATUS notification that went out
//   'B' boot: u8 slot (0xFF: built-in), u32 sequence, the running package's 32-byte SHA-256
//   'F' at the end: u32 erases, u32 programmed bytes
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gk_push.h"

namespace {

const uint32_t kBase = GK_SLOTS_BASE;  // where the board puts the slots (gk_package.h, training/package.py)
const uint32_t kBytes = 2 * GK_SLOT_BYTES;

// NOR flash in RAM: an erase sets a sector to 0xFF, programming ANDs (bits only go 1 -> 0), a
// power cut stops a program call at a byte and fails every later write until power_on().
class RamFlash : public gk::Flash {
 public:
  RamFlash() { memset(mem_, 0xFF, sizeof(mem_)); }
  uint32_t sector_size() const override { return GK_FLASH_SECTOR; }
  bool erase_sector(uint32_t addr) override {
    if (cut_ || addr < kBase || addr - kBase + GK_FLASH_SECTOR > kBytes || (addr - kBase) % GK_FLASH_SECTOR) return false;
    memset(mem_ + (addr - kBase), 0xFF, GK_FLASH_SECTOR);
    ++erases;
    return true;
  }
  bool program(uint32_t addr, const uint8_t* data, uint32_t len) override {
    if (cut_ || addr < kBase || addr - kBase + len > kBytes || addr % 4 || len % 4) return false;
    for (uint32_t i = 0; i < len; ++i) {
      if (budget_ == 0) {
        cut_ = true;
        return false;
      }
      if (budget_ > 0) --budget_;
      mem_[addr - kBase + i] &= data[i];
      ++programmed;
    }
    return true;
  }
  const uint8_t* map(uint32_t addr) const override { return mem_ + (addr - kBase); }
  void cut_after(long n) { budget_ = n; }
  void power_on() { cut_ = false; budget_ = -1; }
  bool cut() const { return cut_; }
  uint32_t erases = 0, programmed = 0;

 private:
  long budget_ = -1;
  bool cut_ = false;
  uint8_t mem_[kBytes];
};

RamFlash g_flash;
uint8_t g_activate_code = GK_PUSH_ERR_NONE;
bool g_busy = false;

void out(uint8_t kind, const uint8_t* data, size_t n) {
  const uint8_t head[3] = {kind, static_cast<uint8_t>(n & 0xFF), static_cast<uint8_t>(n >> 8)};
  fwrite(head, 1, 3, stdout);
  fwrite(data, 1, n, stdout);
}

uint8_t activate(const gk::Config&, const uint8_t*, uint32_t, uint8_t, char* reason, size_t size) {
  if (g_activate_code != GK_PUSH_ERR_NONE) snprintf(reason, size, "the hook refused it (code %u)", g_activate_code);
  return g_activate_code;
}

bool notify(const uint8_t* data, size_t n) {
  if (g_busy) return false;
  out('S', data, n);
  return true;
}

const gk::PushHooks kHooks = {activate, notify};

struct Board {
  gk::Slots slots{g_flash, kBase};
  gk::PushService push{slots, kHooks, "nano33ble"};

  // What the sketch does at boot: the newest verified slot, else the built-in model.
  void boot() {
    int order[2];
    gk::CommitRecord recs[2];
    const int n = slots.boot_order(order, recs);
    uint8_t rec[37] = {GK_PUSH_BUILTIN_SLOT};
    if (n > 0) {
      push.set_running(static_cast<uint8_t>(order[0]));
      rec[0] = static_cast<uint8_t>(order[0]);
      gk::CommitRecord::put32(rec + 1, recs[order[0]].sequence);
      memcpy(rec + 5, recs[order[0]].sha256, 32);
    }
    out('B', rec, sizeof(rec));
  }
};

bool read_exact(void* dst, size_t n) { return fread(dst, 1, n, stdin) == n; }

}  // namespace

int main() {
  static Board* board = new Board();
  board->boot();
  uint8_t head[3];
  static uint8_t buf[65536];
  while (read_exact(head, 3)) {
    const size_t n = head[1] | (head[2] << 8);
    if (!read_exact(buf, n)) return 2;
    switch (head[0]) {
      case 'C': board->push.on_control(buf, n); break;
      case 'D': board->push.on_data(buf, n); break;
      case 'P':
        for (int i = 0; i < 10000 && (board->push.busy() || i == 0); ++i) board->push.poll();
        break;
      case 'K': g_flash.cut_after(static_cast<long>(gk::CommitRecord::get32(buf))); break;
      case 'B':
        delete board;  // RAM is gone; flash keeps what it held
        g_flash.power_on();
        board = new Board();
        board->boot();
        break;
      case 'A': g_activate_code = buf[0]; break;
      case 'N': g_busy = buf[0] != 0; break;
      default: return 3;
    }
  }
  uint8_t fin[8];
  gk::CommitRecord::put32(fin, g_flash.erases);
  gk::CommitRecord::put32(fin + 4, g_flash.programmed);
  out('F', fin, sizeof(fin));
  return 0;
}
