// shim.cpp: the gesture-kit host shim's board. main() runs setup() then loop() forever on a
// virtual device clock; the sketch's Serial is a pty, its IMU replays recorded counts at the
// sensor's own rate, its BLE peripheral serves one virtual central over a Unix socket, its
// internal flash is a file (FlashIAP.h).
// What each part models is written in the header that declares it (Arduino.h, Wire.h,
// Arduino_LSM9DS1.h, Arduino_BMI270_BMM150.h, ArduinoBLE.h, utility/HCI.h, FlashIAP.h) and in
// README.md (the link model for the central's writes is described at AirPacket below).
//
// Environment (set by capture/virtual/firmware.py):
//   GK_SHIM_SERIAL_FD   pty master fd (inherited); the board's USB serial
//   GK_SHIM_IMU         file of little-endian int16 (n, 6) counts: ax ay az gx gy gz
//   GK_SHIM_IMU_LOOP    1: replay the file forever (else the board stops at its end)
//   GK_SHIM_IMU_RATE    rate of that file in Hz (values are interpolated at the sensor's ODR)
//   GK_SHIM_BLE         Unix socket path to listen on for the virtual central (absent: no radio)
//   GK_SHIM_BLE_FAIL    1: BLE.begin() fails (as when the radio does not start)
//   GK_SHIM_IMU_FAIL    1: IMU.begin() fails (wrong board revision, or a sensor that does not answer)
//   GK_SHIM_SPEED       device seconds per host second (0: unpaced; default 1)
//   GK_SHIM_STATUS_FD   fd for "status ..." lines every 100 ms of device time (default stderr)
//   GK_SHIM_LATE        "K:US": every K-th pass of loop() costs US more device time (a long model
//                       invoke or BLE event on the board), so samples pile up in the IMU FIFO
//   GK_SHIM_BLE_INTERVAL_US  connection interval in us of device time (default 0: a buffer is freed as
//                       soon as the central takes its packet; desktop centrals pick 30-50 ms)
//   GK_SHIM_BLE_BUFFERS controller ACL buffers (_maxPkt; default 4: ArduinoCore-mbed 4.6.0's
//                       variants/ARDUINO_NANO33BLE/mbed_config.h CORDIO_LL_TX_BUFFERS 4)
//   GK_SHIM_BLE_RX_BUFFERS  link-layer RX buffers: packets the peripheral takes from the central per
//                       connection event (default 4: mbed_config.h CORDIO_LL_RX_BUFFERS 4)
//   GK_SHIM_BLE_PHY     1 (default) or 2: the PHY's bit rate in Mbit/s, for the air time of a packet
//   GK_SHIM_FLASH       file holding the 1 MB internal flash (FlashIAP.h; created erased, 0xFF)
//   GK_SHIM_FLASH_CUT   N: power cut (_exit(GK_SHIM_CUT_EXIT)) after N programmed bytes
//   GK_SHIM_APP_END     end address of the sketch's image in flash (FLASHIAP_APP_ROM_END_ADDR)
#include <Arduino.h>
#include <ArduinoBLE.h>
#include <FlashIAP.h>
#include <USB/PluggableUSBSerial.h>
#include <Wire.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <utility/ATT.h>
#include <utility/HCI.h>

#include <deque>
#include <string>
#include <vector>

#ifdef GK_BOARD_REV2
#include <Arduino_BMI270_BMM150.h>
#else
#include <Arduino_LSM9DS1.h>
#endif

void setup();
void loop();

#ifndef GK_SHIM_LOOP_US
#define GK_SHIM_LOOP_US 100  // device time one pass of loop() costs (BLE.poll + the sketch's work)
#endif

namespace {

// ------------------------------------------------------------------------------- clock
uint64_t g_us = 0;
double g_speed = 1.0;
struct timespec g_t0;
FILE* g_status = stderr;
uint64_t g_next_status = 0;

struct Stats {
  uint64_t loops = 0, produced = 0, reads = 0, stale_reads = 0, overwritten = 0;
  uint64_t serial_wait_us = 0, ble_wait_us = 0, ble_write_no_radio = 0, notifications = 0, serial_in_ble_handler = 0;
  uint64_t i2c_us = 0;  // device time spent in IMU register reads (bus transfers + the BMI270 API's waits)
  uint64_t ble_rx = 0, ble_rx_dropped = 0;  // central -> peripheral writes taken / lost at the HCI ring
  uint64_t ble_events_dropped = 0;  // Number Of Completed Packets events lost at the HCI ring
  uint64_t flash_erases = 0, flash_programmed = 0, flash_us = 0;  // FlashIAP work and the CPU time it stalled
} g_st;

double host_s() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - g_t0.tv_sec) + (t.tv_nsec - g_t0.tv_nsec) / 1e9;
}

void status(const char* why) {
  fprintf(g_status,
          "status %s t_us=%llu loops=%llu produced=%llu reads=%llu stale=%llu overwritten=%llu "
          "serial_wait_us=%llu ble_wait_us=%llu ble_write_no_radio=%llu notifications=%llu serial_in_ble_handler=%llu "
          "i2c_us=%llu ble_rx=%llu ble_rx_dropped=%llu ble_events_dropped=%llu flash_erases=%llu flash_programmed=%llu flash_us=%llu\n",
          why, (unsigned long long)g_us, (unsigned long long)g_st.loops, (unsigned long long)g_st.produced,
          (unsigned long long)g_st.reads, (unsigned long long)g_st.stale_reads,
          (unsigned long long)g_st.overwritten, (unsigned long long)g_st.serial_wait_us,
          (unsigned long long)g_st.ble_wait_us, (unsigned long long)g_st.ble_write_no_radio,
          (unsigned long long)g_st.notifications, (unsigned long long)g_st.serial_in_ble_handler,
          (unsigned long long)g_st.i2c_us, (unsigned long long)g_st.ble_rx, (unsigned long long)g_st.ble_rx_dropped,
          (unsigned long long)g_st.ble_events_dropped,
          (unsigned long long)g_st.flash_erases, (unsigned long long)g_st.flash_programmed,
          (unsigned long long)g_st.flash_us);
  fflush(g_status);
}

void imu_tick();
void serial_service();
void ble_service();

// Device time passes: sensors tick, the USB and radio move bytes, and (paced) the host catches up.
void advance(uint64_t us) {
  g_us += us;
  imu_tick();
  serial_service();
  if (g_us >= g_next_status) {
    status("tick");
    g_next_status = g_us + 100000;
  }
  if (g_speed > 0) {
    double ahead = g_us / 1e6 / g_speed - host_s();
    if (ahead > 0.002) {
      struct timespec d = {static_cast<time_t>(ahead), static_cast<long>((ahead - (time_t)ahead) * 1e9)};
      nanosleep(&d, nullptr);
    }
  }
}

// ------------------------------------------------------------------------------- IMU
std::vector<int16_t> g_imu;  // (n, 6)
double g_imu_file_rate = 119.0;
bool g_imu_loop = false;
double g_odr = 119.0;
uint64_t g_tick_next = 0;  // device time of the next sample
struct Sample { int16_t v[6]; };
Sample g_latest = {{0}};
bool g_acc_ready = false, g_gyr_ready = false;
bool g_fifo_mode = false;
Sample g_fifo[32];
int g_fifo_head = 0, g_fifo_n = 0;
bool g_fifo_ovr = false;  // FIFO_SRC OVRN: full and a slot overwritten; cleared by reading a slot
bool g_imu_begun = false;
uint64_t g_imu_t0 = 0;

Sample sample_at(uint64_t t_us) {
  Sample s;
  const size_t n = g_imu.size() / 6;
  double pos = (t_us - g_imu_t0) / 1e6 * g_imu_file_rate;
  if (g_imu_loop) pos = fmod(pos, static_cast<double>(n - 1));  // GK_SHIM_IMU_LOOP: starts over
  if (fabs(pos - nearbyint(pos)) < 1e-3) pos = nearbyint(pos);  // same rate: exact recorded counts
  size_t i = static_cast<size_t>(pos);
  if (i + 1 >= n) {
    status("end");  // the recording is over: the board is switched off
    exit(0);
  }
  const double f = pos - i;
  for (int c = 0; c < 6; ++c) s.v[c] = static_cast<int16_t>(lrint(g_imu[i * 6 + c] * (1 - f) + g_imu[(i + 1) * 6 + c] * f));
  return s;
}

void imu_tick() {
  if (!g_imu_begun) return;
  while (g_us >= g_tick_next) {
    Sample s = sample_at(g_tick_next);
    ++g_st.produced;
    if (g_fifo_mode) {
      if (g_fifo_n == 32) {  // full: the oldest slot is overwritten
        g_fifo_head = (g_fifo_head + 1) % 32;
        --g_fifo_n;
        ++g_st.overwritten;
        g_fifo_ovr = true;
      }
      g_fifo[(g_fifo_head + g_fifo_n) % 32] = s;
      ++g_fifo_n;
    } else if (g_acc_ready) {
      ++g_st.overwritten;  // the previous sample was never read
    }
    g_latest = s;
    g_acc_ready = g_gyr_ready = true;
    g_tick_next += static_cast<uint64_t>(llround(1e6 / g_odr * (g_st.produced + 1))) -
                   static_cast<uint64_t>(llround(1e6 / g_odr * g_st.produced));
  }
}

bool imu_fails() {
  const char* v = getenv("GK_SHIM_IMU_FAIL");
  return v && v[0] == '1';
}

void imu_start(double odr) {
  g_odr = odr;
  if (!g_imu_begun) g_imu_t0 = g_us;
  g_imu_begun = true;
  g_tick_next = g_us + static_cast<uint64_t>(llround(1e6 / odr));
}

// ------------------------------------------------------------------------------- USB serial
int g_pty = -1;
uint8_t g_tx[64];  // the CDC packet buffer (CDC_MAX_PACKET_SIZE at full speed)
size_t g_tx_size = 0, g_tx_off = 0;
uint8_t g_rx[256];  // the core's UART rx ring (RingBufferN<256>)
size_t g_rx_head = 0, g_rx_n = 0;

bool dtr() {
  if (g_pty < 0) return false;
  struct pollfd p = {g_pty, POLLOUT, 0};
  poll(&p, 1, 0);
  return !(p.revents & POLLHUP);  // nobody has the port open: DTR low
}

void serial_service() {
  if (g_pty < 0) return;
  const bool connected = dtr();
  if (g_tx_size) {
    if (!connected) {
      g_tx_size = g_tx_off = 0;  // the host went away: the transfer is abandoned
    } else {
      ssize_t n = write(g_pty, g_tx + g_tx_off, g_tx_size - g_tx_off);
      if (n > 0) g_tx_off += static_cast<size_t>(n);
      if (g_tx_off == g_tx_size) g_tx_size = g_tx_off = 0;  // the host took the packet
    }
  }
  if (connected && g_rx_n < sizeof(g_rx)) {
    uint8_t buf[256];
    ssize_t n = read(g_pty, buf, sizeof(g_rx) - g_rx_n);
    for (ssize_t i = 0; i < n; ++i) g_rx[(g_rx_head + g_rx_n++) % sizeof(g_rx)] = buf[i];
  }
}

void tx_start(const uint8_t* data, size_t n) {
  memcpy(g_tx, data, n);
  g_tx_size = n;
  g_tx_off = 0;
  serial_service();
}

// ------------------------------------------------------------------------------- BLE
struct Char {
  const char* uuid;
  uint8_t props;
  int size;
  bool fixed;
  std::vector<uint8_t> value;
  bool subscribed = false;
  BLECharacteristicEventHandler written = nullptr;
  int index = -1;  // position in the GATT table (the socket protocol's handle)
};
std::vector<Char*> g_chars;
bool g_in_handler = false;
BLEDeviceEventHandler g_on_connect = nullptr, g_on_disconnect = nullptr;
bool g_ble_begun = false;
const char* g_ble_path = nullptr;
int g_listen = -1, g_central = -1;
std::vector<uint8_t> g_in;
int g_att_mtu = 23;  // the link's ATT MTU: 23 at connect, raised by the central's MTU exchange
const int kMaxMtu = 247;  // ArduinoBLE's answer limit on this core (utility/ATT.h of the shim)
uint64_t g_interval_us = 0;  // connection interval (0: buffers freed as soon as the central takes a packet)
uint64_t g_next_event = 0;   // device time of the next connection event
unsigned g_taken = 0;        // packets the central took since the last connection event

// Central -> peripheral: ATT writes (with or without response) over the air. The central queues
// them; at each connection event the link layer takes at most g_rx_buffers of them (its RX
// buffers, CORDIO_LL_RX_BUFFERS) within the interval's air time, each arriving when its packet
// ends. The zero-copy HCI hands every arrived packet at once to ArduinoBLE's HCICordioTransport,
// which stores it in a 256-byte ring (RingBufferN<256> _rxBuf) drained only by BLE.poll(); a
// packet that finds too little room there is dropped (handleRxData: "drop!"). A CPU stalled by a
// flash erase or program serves no connection event.
struct AirPacket {
  uint8_t type;  // 'W' write without response, 'Q' write request (answered 'A'), 'E' completed-packets event
  std::vector<uint8_t> body;
  uint64_t at;  // queued by the central; then: arrival at the peripheral
};
std::deque<AirPacket> g_air;      // the central's queue
std::deque<AirPacket> g_arrived;  // received by the link layer, not yet in the HCI ring
std::deque<AirPacket> g_ring;     // in ArduinoBLE's HCI ring, not yet read by BLE.poll()
size_t g_ring_bytes = 0;
int g_rx_buffers = 4;
int g_phy = 1;
const size_t kHciRing = 256;  // ArduinoBLE 2.0.1 HCICordioTransport.h: RingBufferN<256> _rxBuf
struct Stall { uint64_t from, to; };
std::vector<Stall> g_stalls;  // CPU stalls by flash operations since the last connection event

// Air time of one central packet of `att` ATT bytes and the peripheral's empty reply: LL header,
// access address, preamble and CRC (10 bytes), L2CAP header (4), two inter-frame spaces (150 us).
uint64_t airtime_us(size_t att) { return ((att + 4 + 10) * 8 + 10 * 8) / static_cast<uint64_t>(g_phy) + 300; }

void send_msg(uint8_t type, uint8_t index, const uint8_t* data, size_t n) {
  if (g_central < 0) return;
  uint8_t head[4] = {type, static_cast<uint8_t>((n + 1) & 0xFF), static_cast<uint8_t>((n + 1) >> 8), index};
  std::vector<uint8_t> m(head, head + 4);
  m.insert(m.end(), data, data + n);
  size_t off = 0;
  while (off < m.size()) {  // the socket is our radio, not the controller: never the bottleneck
    ssize_t k = write(g_central, m.data() + off, m.size() - off);
    if (k > 0) {
      off += static_cast<size_t>(k);
    } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
      return;
    } else {
      struct pollfd p = {g_central, POLLOUT, 0};
      poll(&p, 1, 100);
    }
  }
}

void drop_central();

}  // namespace

struct GkShimBle {
  static BLEDevice device(bool connected) { return BLEDevice(connected); }
  static BLECharacteristic copy(GkShimChar* s) { return BLECharacteristic(s); }
  static GkShimChar* state(const BLECharacteristic& c) { return c.s_; }
};

struct GkShimHci {
  static uint8_t& pending() { return HCI._pendingPkt; }
  static uint8_t& max() { return HCI._maxPkt; }
};

namespace {

void drop_central() {
  if (g_central < 0) return;
  close(g_central);
  g_central = -1;
  g_taken = 0;
  g_air.clear();  // the central's queue and what the link layer held die with the link
  g_arrived.clear();
  g_ring.clear();
  g_ring_bytes = 0;
  // ArduinoBLE 2.0.1 does NOT reset _pendingPkt here (issue #45): packets pending on the dead link
  // are never reported completed. The sketch must (gk_link.h gk_ble_link_dropped()).
  for (Char* c : g_chars) c->subscribed = false;
  if (g_on_disconnect) g_on_disconnect(GkShimBle::device(false));
}

// Packets the central took free their controller buffers (what HCI handleNumCompPkts does).
void complete_taken() {
  uint8_t& p = GkShimHci::pending();
  p = static_cast<uint8_t>(p > g_taken ? p - g_taken : 0);
  g_taken = 0;
}

bool stalled_at(uint64_t t) {
  for (const Stall& s : g_stalls) {
    if (t >= s.from && t < s.to) return true;
  }
  return false;
}

// One connection event at device time t: the central's queued writes the link layer takes.
void rx_event(uint64_t t) {
  uint64_t air = 0;
  int n = 0;
  while (!g_air.empty() && n < g_rx_buffers && g_air.front().at <= t) {
    const uint64_t cost = airtime_us(g_air.front().body.size() + 2);  // + opcode and handle, less the index byte
    if (n > 0 && air + cost > g_interval_us) break;  // the event ends with the interval
    air += cost;
    AirPacket pkt = std::move(g_air.front());
    g_air.pop_front();
    pkt.at = t + air;
    g_arrived.push_back(std::move(pkt));
    ++n;
  }
}

// Connection events every g_interval_us of device time: the controller reports the packets the
// central took since the last one, so at most _maxPkt packets go out per interval; the central's
// writes come in (rx_event). Events during a flash stall are missed.
void connection_events() {
  if (!g_interval_us || g_central < 0 || g_us < g_next_event) return;
  while (g_next_event <= g_us) {
    const uint64_t t = g_next_event;
    g_next_event += g_interval_us;
    if (stalled_at(t)) continue;
    if (g_taken) {  // HCI Number Of Completed Packets: an event through the same ring as the data
      g_arrived.push_back(AirPacket{'E', {static_cast<uint8_t>(g_taken & 0xFF), static_cast<uint8_t>(g_taken >> 8)}, t});
      g_taken = 0;
    }
    rx_event(t);
  }
  g_stalls.clear();
}

void handle_write(uint8_t type, const uint8_t* d, size_t n);

// What arrived by now enters ArduinoBLE's 256-byte ring in arrival order (a packet without room
// is dropped); BLE.poll() reads the ring a packet at a time and handles each, and packets that
// arrive meanwhile (a handler programming flash takes time) queue behind.
size_t hci_bytes(const AirPacket& pkt) {
  // Number Of Completed Packets: type, event code, length, handles, handle (2), count (2)
  if (pkt.type == 'E') return 8;
  // HCI packet type, ACL header (4), L2CAP header (4), ATT opcode and handle (3), the value
  return 1 + 4 + 4 + 3 + (pkt.body.size() - 1);
}

void arrivals() {
  while (!g_arrived.empty() && g_arrived.front().at <= g_us) {
    AirPacket pkt = std::move(g_arrived.front());
    g_arrived.pop_front();
    const size_t n = hci_bytes(pkt);
    if (g_ring_bytes + n > kHciRing) {  // HCICordioTransportClass::handleRxData: "drop!"
      // a lost completion event: its packets stay pending (_pendingPkt) until the link drops
      ++(pkt.type == 'E' ? g_st.ble_events_dropped : g_st.ble_rx_dropped);
      continue;
    }
    g_ring_bytes += n;
    g_ring.push_back(std::move(pkt));
  }
}

void take_arrived() {
  arrivals();
  while (!g_ring.empty() && g_central >= 0) {
    AirPacket pkt = std::move(g_ring.front());
    g_ring.pop_front();
    g_ring_bytes -= hci_bytes(pkt);
    if (pkt.type == 'E') {
      const unsigned done = pkt.body[0] | (pkt.body[1] << 8);
      uint8_t& pending = GkShimHci::pending();
      pending = static_cast<uint8_t>(pending > done ? pending - done : 0);
      continue;
    }
    ++g_st.ble_rx;
    handle_write(pkt.type, pkt.body.data(), pkt.body.size());
    arrivals();
  }
}

// An ATT write reaching the GATT server: the value is stored, the handler runs, a request is answered.
void handle_write(uint8_t type, const uint8_t* d, size_t n) {
  if (n < 1 || d[0] >= g_chars.size()) return;
  Char* c = g_chars[d[0]];
  c->value.assign(d + 1, d + n);
  if (static_cast<int>(c->value.size()) > c->size) c->value.resize(static_cast<size_t>(c->size));
  if (c->written) {
    g_in_handler = true;  // handlers run inside BLE.poll(): count Serial output made from there
    c->written(GkShimBle::device(true), GkShimBle::copy(reinterpret_cast<GkShimChar*>(c)));
    g_in_handler = false;
  }
  if (type == 'Q') send_msg('A', d[0], nullptr, 0);  // ATT Write Response
}

void handle(uint8_t type, const uint8_t* d, size_t n) {
  if (n < 1 || d[0] >= g_chars.size()) return;
  Char* c = g_chars[d[0]];
  if (type == 'S') {
    c->subscribed = n > 1 && d[1];
  } else if (type == 'W' || type == 'Q') {
    if (g_interval_us) {  // over the air at the next connection events
      g_air.push_back(AirPacket{type, std::vector<uint8_t>(d, d + n), g_us});
    } else {
      handle_write(type, d, n);
    }
  } else if (type == 'R') {
    send_msg('V', d[0], c->value.data(), c->value.size());
  } else if (type == 'K') {  // the central took a packet: reported (Number Of Completed Packets) at
    g_taken += 1;           // the next connection event, or at once without an interval
    if (!g_interval_us) complete_taken();
  } else if (type == 'M' && n >= 3) {  // ATT Exchange MTU: ArduinoBLE answers min(asked, its max)
    const int asked = d[1] | (d[2] << 8);
    g_att_mtu = asked < 23 ? 23 : (asked > kMaxMtu ? kMaxMtu : asked);
    const uint8_t r[2] = {static_cast<uint8_t>(g_att_mtu & 0xFF), static_cast<uint8_t>(g_att_mtu >> 8)};
    send_msg('M', 0, r, 2);
  }
}

void ble_service() {
  if (!g_ble_begun || g_listen < 0) return;
  connection_events();
  if (g_central < 0) {
    int fd = accept(g_listen, nullptr, nullptr);
    if (fd < 0) return;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    g_central = fd;
    g_att_mtu = 23;  // every link starts at the minimum
    g_next_event = g_us + g_interval_us;
    g_in.clear();
    for (Char* c : g_chars) {
      uint8_t entry[64];
      size_t k = strlen(c->uuid);
      entry[0] = c->props;
      memcpy(entry + 1, c->uuid, k);
      send_msg('G', static_cast<uint8_t>(c->index), entry, k + 1);
    }
    send_msg('E', 0, nullptr, 0);  // end of the GATT table
    g_in_handler = true;
    if (g_on_connect) g_on_connect(GkShimBle::device(true));
    g_in_handler = false;
    return;
  }
  uint8_t buf[1024];
  ssize_t n = read(g_central, buf, sizeof(buf));
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    drop_central();
    return;
  }
  if (n > 0) g_in.insert(g_in.end(), buf, buf + n);
  while (g_in.size() >= 3) {
    size_t len = g_in[1] | (g_in[2] << 8);
    if (g_in.size() < 3 + len) break;
    std::vector<uint8_t> m(g_in.begin() + 3, g_in.begin() + 3 + static_cast<long>(len));
    uint8_t type = g_in[0];
    g_in.erase(g_in.begin(), g_in.begin() + 3 + static_cast<long>(len));
    handle(type, m.data(), m.size());
    if (g_central < 0) break;
  }
  take_arrived();
}

const char* env(const char* k) { return getenv(k); }

}  // namespace

// ------------------------------------------------------------------------------- Arduino core
unsigned long millis() { return static_cast<unsigned long>(g_us / 1000); }
unsigned long micros() { return static_cast<unsigned long>(g_us & 0xFFFFFFFFu); }
void delay(unsigned long ms) {
  for (unsigned long i = 0; i < ms; ++i) advance(1000);
}
void delayMicroseconds(unsigned int us) { advance(us); }

UART Serial;
USBSerial _SerialUSB;

int UART::available() { serial_service(); return static_cast<int>(g_rx_n); }
int UART::peek() { return g_rx_n ? g_rx[g_rx_head] : -1; }
int UART::read() {
  if (!g_rx_n) return -1;
  int b = g_rx[g_rx_head];
  g_rx_head = (g_rx_head + 1) % sizeof(g_rx);
  --g_rx_n;
  return b;
}
UART::operator bool() {
  delay(1);  // the core's operator bool() calls delay(1) so `while (!Serial)` lets other threads run
  return ::dtr();
}
// USBSerial::write: nothing when DTR is low, else USBCDC::send per 64-byte packet, each waiting
// for the previous transfer to finish (forever if the host never reads).
size_t UART::write(const uint8_t* buf, size_t n) {
  if (g_in_handler) ++g_st.serial_in_ble_handler;
  if (!::dtr()) return 0;
  size_t sent = 0;
  while (sent < n) {
    while (g_tx_size) {
      if (!::dtr()) return sent;
      advance(100);
      g_st.serial_wait_us += 100;
    }
    size_t k = n - sent > sizeof(g_tx) ? sizeof(g_tx) : n - sent;
    tx_start(buf + sent, k);
    sent += k;
  }
  return sent;
}
void USBSerial::send_nb(uint8_t* buffer, uint32_t size, uint32_t* actual, bool) {
  *actual = 0;
  if (g_in_handler) ++g_st.serial_in_ble_handler;
  if (!::dtr() || g_tx_size) return;
  uint32_t k = size > sizeof(g_tx) ? static_cast<uint32_t>(sizeof(g_tx)) : size;
  if (k) tx_start(buffer, k);
  *actual = k;
}
bool USBSerial::connected() { return ::dtr(); }

TwoWire Wire, Wire1;

struct GkShimWire {
  static uint32_t hz(const TwoWire& w) { return w.hz_; }
};

namespace {
// One register read of n bytes on Wire1 ((3 + n) * 9 bits at its clock) and then wait_us.
void i2c_read(size_t n, uint64_t wait_us) {
  const uint64_t us = static_cast<uint64_t>(llround((3.0 + n) * 9 * 1e6 / GkShimWire::hz(Wire1))) + wait_us;
  g_st.i2c_us += us;
  advance(us);
}
}  // namespace

// ------------------------------------------------------------------------------- IMU libraries
#ifdef GK_BOARD_REV2
BoschSensorClass IMU;
int BoschSensorClass::begin() {
  if (imu_fails()) return 0;
  imu_start(100.0);
  return 1;
}
namespace {
uint64_t bmi_wait(const bmi2_dev& d) { return d.aps_status == BMI2_ENABLE ? 450 : 2; }  // bmi2_get_regs
int16_t neg(int16_t v) { return v == -32768 ? 32767 : static_cast<int16_t>(-v); }
}  // namespace
int8_t bmi2_get_sensor_data(struct bmi2_sens_data* data, struct bmi2_dev* dev) {
  i2c_read(1, bmi_wait(*dev));   // PWR_CTRL: which sensors are on
  i2c_read(12, bmi_wait(*dev));  // accel and gyro data registers in one burst
  ++g_st.reads;
  const int16_t* v = g_latest.v;  // board frame; the library maps x = -y, y = -x for the Nano 33 BLE
  data->acc.x = neg(v[1]); data->acc.y = neg(v[0]); data->acc.z = v[2];
  data->gyr.x = neg(v[4]); data->gyr.y = neg(v[3]); data->gyr.z = v[5];
  data->sens_time = static_cast<uint32_t>(g_us);
  return BMI2_OK;
}
int8_t bmi2_set_adv_power_save(uint8_t enable, struct bmi2_dev* dev) {
  i2c_read(1, bmi_wait(*dev));
  dev->aps_status = enable;
  return BMI2_OK;
}
int BoschSensorClass::accelerationAvailable() {
  i2c_read(2, bmi_wait(bmi2));  // INT_STATUS
  bool r = g_acc_ready;
  g_acc_ready = false;  // reading the interrupt status clears it (the library keeps the gyro bit)
  return r;
}
int BoschSensorClass::gyroscopeAvailable() {
  bool r = g_gyr_ready;
  g_gyr_ready = false;
  return r;
}
int BoschSensorClass::readAcceleration(float& x, float& y, float& z) {
  i2c_read(1, bmi_wait(bmi2));  // bmi2_get_sensor_data(), as the library calls it
  i2c_read(12, bmi_wait(bmi2));
  ++g_st.reads;
  x = g_latest.v[0] / 8192.0f; y = g_latest.v[1] / 8192.0f; z = g_latest.v[2] / 8192.0f;
  return 1;
}
int BoschSensorClass::readGyroscope(float& x, float& y, float& z) {
  i2c_read(1, bmi_wait(bmi2));  // bmi2_get_sensor_data() again: accel and gyro read a second time
  i2c_read(12, bmi_wait(bmi2));
  x = g_latest.v[3] / 16.384f; y = g_latest.v[4] / 16.384f; z = g_latest.v[5] / 16.384f;
  return 1;
}
uint8_t TwoWire::endTransmission(bool) { return 0; }
size_t TwoWire::requestFrom(uint8_t, size_t, bool) { return 0; }
#else
LSM9DS1Class IMU;
static Sample g_fifo_out;  // the slot whose gyro registers are readable
int LSM9DS1Class::begin() {
  if (imu_fails()) return 0;
  imu_start(119.0);
  return 1;
}
void LSM9DS1Class::setContinuousMode() { g_fifo_mode = true; g_fifo_n = 0; }
void LSM9DS1Class::setOneShotMode() { g_fifo_mode = false; }
int LSM9DS1Class::accelerationAvailable() {
  i2c_read(1, 0);  // STATUS_REG, or FIFO_SRC in continuous mode
  return g_fifo_mode ? g_fifo_n > 0 : g_acc_ready;
}
int LSM9DS1Class::gyroscopeAvailable() { return g_gyr_ready; }
int LSM9DS1Class::readAcceleration(float& x, float& y, float& z) {
  i2c_read(6, 0);  // OUT_X_XL .. OUT_Z_XL
  const Sample* s = &g_latest;
  if (g_fifo_mode) {
    if (g_fifo_n) {
      g_fifo_ovr = false;  // a slot read: the FIFO is no longer full
      g_fifo_out = g_fifo[g_fifo_head];
      g_fifo_head = (g_fifo_head + 1) % 32;
      --g_fifo_n;
      ++g_st.reads;
    } else {
      ++g_st.stale_reads;
    }
    s = &g_fifo_out;
  } else {
    if (g_acc_ready) ++g_st.reads; else ++g_st.stale_reads;
    g_acc_ready = false;
  }
  x = s->v[0] * 4.0f / 32768.0f; y = s->v[1] * 4.0f / 32768.0f; z = s->v[2] * 4.0f / 32768.0f;
  return 1;
}
int LSM9DS1Class::readGyroscope(float& x, float& y, float& z) {
  // FIFO: the gyro registers show the slot the read pointer is on (its accel not read yet).
  i2c_read(6, 0);  // OUT_X_G .. OUT_Z_G
  const Sample* s = g_fifo_mode ? (g_fifo_n ? &g_fifo[g_fifo_head] : &g_fifo_out) : &g_latest;
  g_gyr_ready = false;
  x = s->v[3] * 2000.0f / 32768.0f; y = s->v[4] * 2000.0f / 32768.0f; z = s->v[5] * 2000.0f / 32768.0f;
  return 1;
}
uint8_t TwoWire::endTransmission(bool) {
  static const double odr[] = {0, 14.9, 59.5, 119, 238, 476, 952, 952};
  if (addr_ == 0x6B && n_ == 2 && buf_[0] == 0x20) {  // CTRL_REG6_XL: ODR_XL in bits 7..5
    const int code = buf_[1] >> 5;
    if (code) imu_start(odr[code]);
  }
  return 0;
}
// A register read: FIFO_SRC (0x2F) is the FIFO's unread slots (bits 5..0) and OVRN (bit 6).
size_t TwoWire::requestFrom(uint8_t address, size_t len, bool) {
  rx_n_ = rx_off_ = 0;
  if (address != 0x6B || n_ != 1 || len != 1) return 0;
  i2c_read(1, 0);
  if (buf_[0] == 0x2F) rx_[rx_n_++] = static_cast<uint8_t>((g_fifo_mode ? g_fifo_n : 0) | (g_fifo_ovr ? 0x40 : 0));
  else rx_[rx_n_++] = 0;
  return rx_n_;
}
#endif

// ------------------------------------------------------------------------------- ArduinoBLE
BLELocalDevice BLE;
static HCIClass g_hci;
HCIClass& HCI = g_hci;
static ATTClass g_att;
ATTClass& ATT = g_att;
bool ATTClass::connected(uint16_t handle) const { return handle == 0 && g_central >= 0; }
uint16_t ATTClass::mtu(uint16_t handle) const { return handle == 0 && g_central >= 0 ? static_cast<uint16_t>(g_att_mtu) : 23; }

BLECharacteristic::BLECharacteristic(const char* uuid, uint8_t properties, int valueSize, bool fixedLength) {
  Char* c = new Char();
  c->uuid = uuid;
  c->props = properties;
  c->size = valueSize;
  c->fixed = fixedLength;
  s_ = reinterpret_cast<GkShimChar*>(c);
}
static Char* ch(GkShimChar* s) { return reinterpret_cast<Char*>(s); }
const uint8_t* BLECharacteristic::value() const { return ch(s_)->value.data(); }
int BLECharacteristic::valueLength() const { return static_cast<int>(ch(s_)->value.size()); }
int BLECharacteristic::valueSize() const { return ch(s_)->size; }
const char* BLECharacteristic::uuid() const { return ch(s_)->uuid; }
bool BLECharacteristic::subscribed() { return ch(s_)->subscribed; }
void BLECharacteristic::setEventHandler(int event, BLECharacteristicEventHandler h) {
  if (event == BLEWritten) ch(s_)->written = h;
}
int BLECharacteristic::writeValue(const uint8_t value[], int length) {
  Char* c = ch(s_);
  if (!g_ble_begun) ++g_st.ble_write_no_radio;
  const int n = length < c->size ? length : c->size;  // ArduinoBLE: min(length, valueSize)
  c->value.assign(value, value + n);
  if (c->fixed) c->value.resize(static_cast<size_t>(c->size));
  if ((c->props & BLENotify) && c->subscribed && g_central >= 0) {
    uint8_t pdu[600];
    const int len = n < g_att_mtu - 3 ? n : g_att_mtu - 3;  // ATT handleNotify: cut to MTU - 3
    pdu[0] = static_cast<uint8_t>(c->index);
    memcpy(pdu + 1, c->value.data(), static_cast<size_t>(len));
    HCI.sendAclPkt(0, 4, static_cast<uint8_t>(len + 1), pdu);
    return len;
  }
  return n;
}
void BLEService::addCharacteristic(BLECharacteristic& c) {
  Char* s = ch(GkShimBle::state(c));
  if (s->index < 0) {
    s->index = static_cast<int>(g_chars.size());
    g_chars.push_back(s);
  }
}
bool BLEDevice::connected() const { return g_central >= 0; }

int BLELocalDevice::begin() {
  const char* fail = env("GK_SHIM_BLE_FAIL");
  if ((fail && *fail == '1') || !g_ble_path) return 0;
  g_listen = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  // Bound under a temporary name and renamed once listening: a central that sees the path can
  // connect (between bind and listen it would be refused).
  std::string tmp = std::string(g_ble_path) + ".tmp";
  strncpy(a.sun_path, tmp.c_str(), sizeof(a.sun_path) - 1);
  unlink(tmp.c_str());
  unlink(g_ble_path);
  if (bind(g_listen, reinterpret_cast<struct sockaddr*>(&a), sizeof(a)) != 0 || listen(g_listen, 1) != 0) return 0;
  if (rename(tmp.c_str(), g_ble_path) != 0) return 0;
  fcntl(g_listen, F_SETFL, O_NONBLOCK);
  const char* bufs = env("GK_SHIM_BLE_BUFFERS");
  GkShimHci::max() = static_cast<uint8_t>(bufs ? atoi(bufs) : 4);
  const char* iv = env("GK_SHIM_BLE_INTERVAL_US");
  g_interval_us = iv ? strtoull(iv, nullptr, 10) : 0;
  const char* rx = env("GK_SHIM_BLE_RX_BUFFERS");
  g_rx_buffers = rx ? atoi(rx) : 4;
  const char* phy = env("GK_SHIM_BLE_PHY");
  g_phy = phy && atoi(phy) == 2 ? 2 : 1;
  g_ble_begun = true;
  return 1;
}
void BLELocalDevice::poll(unsigned long) { ble_service(); }
void BLELocalDevice::addService(BLEService&) {}
int BLELocalDevice::advertise() { return g_ble_begun; }
bool BLELocalDevice::connected() const { return g_central >= 0; }
BLEDevice BLELocalDevice::central() { return GkShimBle::device(g_central >= 0); }
bool BLELocalDevice::disconnect() { drop_central(); return true; }
void BLELocalDevice::setEventHandler(int event, BLEDeviceEventHandler h) {
  if (event == BLEConnected) g_on_connect = h;
  if (event == BLEDisconnected) g_on_disconnect = h;
}

void HCIClass::poll() { ble_service(); }
int HCIClass::readLeBufferSize(uint16_t& pktLen, uint8_t& maxPkt) {
  pktLen = 256;  // the Cordio controller's ACL length (CORDIO_LL_MAX_ACL_SIZE)
  maxPkt = _maxPkt;
  return 0;
}
// The busy-wait of ArduinoBLE's HCIClass::sendAclPkt: while every controller buffer holds an
// unacknowledged packet, poll() and wait. Device time runs on meanwhile; loop() does not.
int HCIClass::sendAclPkt(uint16_t, uint8_t, uint8_t plen, void* data) {
  while (_pendingPkt >= _maxPkt && g_central >= 0) {
    poll();
    advance(100);
    g_st.ble_wait_us += 100;
  }
  if (g_central < 0) return 0;
  ++_pendingPkt;
  ++g_st.notifications;
  const uint8_t* d = static_cast<const uint8_t*>(data);
  send_msg('N', d[0], d + 1, plen - 1u);
  return 0;
}

// ------------------------------------------------------------------------------- FlashIAP
// The nRF52840's internal flash (FlashIAP.h says what is modelled): a file mapped at the flash's
// own addresses, NOR semantics, device time per erase and word, and the power-cut injection.
namespace {
const uint32_t kFlashSize = 0x100000;   // 1 MB
const uint32_t kFlashMapped = 0x10000;  // mapped from here (the bootloader's 64 KB below is not ours)
const uint32_t kSector = 4096;
const uint64_t kEraseUs = 85000;  // tERASEPAGE max
const uint64_t kWordUs = 41;      // tWRITE max
uint8_t* g_flash_map = nullptr;  // the byte at flash address kFlashMapped (== that address)
bool g_flash_ok = false;
uint8_t* flash_at(uint32_t addr) { return g_flash_map + (addr - kFlashMapped); }
long long g_flash_cut = -1;  // programmed bytes left before the power cut (-1: none)
const int kCutExit = 75;     // the exit status of a power cut (tests tell it from a crash)

// The CPU waits for the flash: `us` of device time. A page erase halts it in one piece (85 ms): the
// link layer's interrupt cannot run, so the rest of the connection event is lost (its packets stay
// in the central's queue) and the events meanwhile are missed. A program halts it for one word
// (41 us) at a time with interrupts served in between (the HAL writes word by word), so the link
// layer keeps its events; loop() is as late as the whole program took.
void flash_stall(uint64_t us, bool halts_link) {
  if (halts_link) {
    g_stalls.push_back(Stall{g_us, g_us + us});
    while (!g_arrived.empty() && g_arrived.back().at >= g_us) {
      g_air.push_front(std::move(g_arrived.back()));
      g_arrived.pop_back();
    }
  }
  g_st.flash_us += us;
  advance(us);
}

bool flash_open() {
  if (g_flash_ok) return true;
  const char* path = env("GK_SHIM_FLASH");
  int fd = path ? open(path, O_RDWR | O_CREAT, 0644) : -1;
  if (fd < 0) {
    fprintf(stderr, "shim: FlashIAP needs GK_SHIM_FLASH (a file for the flash)\n");
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  if (st.st_size < kFlashSize) {  // a new flash is erased
    std::vector<uint8_t> ff(kFlashSize - static_cast<size_t>(st.st_size), 0xFF);
    if (pwrite(fd, ff.data(), ff.size(), st.st_size) != static_cast<ssize_t>(ff.size())) return false;
  }
  void* want = reinterpret_cast<void*>(static_cast<uintptr_t>(kFlashMapped));
  void* m = mmap(want, kFlashSize - kFlashMapped, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd,
                 kFlashMapped);
  close(fd);
  if (m != want) {
    fprintf(stderr, "shim: cannot map the flash file at 0x%x (vm.mmap_min_addr?)\n", kFlashMapped);
    if (m != MAP_FAILED) munmap(m, kFlashSize - kFlashMapped);
    return false;
  }
  g_flash_map = static_cast<uint8_t*>(m);
  g_flash_ok = true;
  const char* cut = env("GK_SHIM_FLASH_CUT");
  g_flash_cut = cut && *cut ? atoll(cut) : -1;
  return true;
}

bool in_flash(uint32_t addr, uint32_t size) { return addr >= kFlashMapped && addr <= kFlashSize && size <= kFlashSize - addr; }
}  // namespace

extern "C" uint32_t gk_shim_app_rom_end(void) {
  const char* v = getenv("GK_SHIM_APP_END");
  return v ? static_cast<uint32_t>(strtoul(v, nullptr, 0)) : 0x70000u;
}

namespace mbed {
int FlashIAP::init() { return flash_open() ? 0 : -1; }
int FlashIAP::deinit() { return 0; }
uint32_t FlashIAP::get_sector_size(uint32_t addr) const { return addr < kFlashSize ? kSector : 0; }
uint32_t FlashIAP::get_flash_start() const { return 0; }
uint32_t FlashIAP::get_flash_size() const { return kFlashSize; }
uint32_t FlashIAP::get_page_size() const { return 4; }
uint8_t FlashIAP::get_erase_value() const { return 0xFF; }
int FlashIAP::read(void* buffer, uint32_t addr, uint32_t size) {
  if (!g_flash_ok || !in_flash(addr, size)) return -1;
  memcpy(buffer, flash_at(addr), size);
  return 0;
}
int FlashIAP::erase(uint32_t addr, uint32_t size) {
  if (!g_flash_ok || !in_flash(addr, size) || addr % kSector || size % kSector) return -1;
  for (uint32_t a = addr; a < addr + size; a += kSector) {
    memset(flash_at(a), 0xFF, kSector);
    ++g_st.flash_erases;
    flash_stall(kEraseUs, true);
  }
  return 0;
}
int FlashIAP::program(const void* buffer, uint32_t addr, uint32_t size) {
  if (!g_flash_ok || !in_flash(addr, (size + 3) & ~3u) || addr % 4 || !buffer) return -1;
  const uint8_t* src = static_cast<const uint8_t*>(buffer);
  const uint32_t padded = (size + 3) & ~3u;  // FlashIAP pads a short last word with the erase value
  for (uint32_t i = 0; i < padded; ++i) {
    if (g_flash_cut == 0) {
      status("power-cut");
      _exit(kCutExit);  // the mapping is the file's page cache: what was programmed stays
    }
    if (g_flash_cut > 0) --g_flash_cut;
    flash_at(addr)[i] &= i < size ? src[i] : 0xFF;
    ++g_st.flash_programmed;
  }
  flash_stall(kWordUs * (padded / 4), false);
  return 0;
}
}  // namespace mbed

// ------------------------------------------------------------------------------- main
static bool load_imu(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) return false;
  int16_t b[6];
  while (fread(b, sizeof(b), 1, f) == 1) g_imu.insert(g_imu.end(), b, b + 6);
  fclose(f);
  return g_imu.size() >= 12;
}

int main() {
  clock_gettime(CLOCK_MONOTONIC, &g_t0);
  signal(SIGPIPE, SIG_IGN);
  const char* v;
  if ((v = env("GK_SHIM_STATUS_FD"))) g_status = fdopen(atoi(v), "w");
  if (!g_status) g_status = stderr;
  if ((v = env("GK_SHIM_SPEED"))) g_speed = atof(v);
  if ((v = env("GK_SHIM_SERIAL_FD"))) {
    g_pty = atoi(v);
    fcntl(g_pty, F_SETFL, fcntl(g_pty, F_GETFL) | O_NONBLOCK);
  }
  if ((v = env("GK_SHIM_IMU_RATE"))) g_imu_file_rate = atof(v);
  if ((v = env("GK_SHIM_IMU_LOOP"))) g_imu_loop = *v == '1';
  if (!(v = env("GK_SHIM_IMU")) || !load_imu(v)) {
    fprintf(stderr, "shim: GK_SHIM_IMU must name a file of int16 (n, 6) counts, n >= 2\n");
    return 2;
  }
  g_ble_path = env("GK_SHIM_BLE");
  unsigned long late_every = 0, late_us = 0;
  if ((v = env("GK_SHIM_LATE"))) sscanf(v, "%lu:%lu", &late_every, &late_us);
  status("boot");
  setup();
  for (;;) {
    loop();
    ++g_st.loops;
    advance(GK_SHIM_LOOP_US + (late_every && g_st.loops % late_every == 0 ? late_us : 0));
  }
}
