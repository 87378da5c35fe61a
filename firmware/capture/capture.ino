// capture.ino: gesture-kit capture firmware for Arduino Nano 33 BLE Sense (Rev1 and Rev2).
//
// Streams the IMU (accel +-4 g, gyro +-2000 dps, int16 counts) over USB serial as binary frames
// and over BLE as notifications, in the protocol defined once in capture/protocol.py. This file is
// glue only: frame building, batching, INFO text and control parsing live in gk_frame.h (checked
// byte for byte against Python by tests/test_firmware_capture.py), the IMU in one header per
// sensor (gk_imu_lsm9ds1.h / gk_imu_bmi270.h), the never-blocking output in gk_link.h.
// gesture_protocol.h, gk_boards.h and gk_capture_version.h are GENERATED (`gesture firmware`); the
// other gk_*.h are copies of firmware/common/. This very file also runs on the host against firmware/shim
// (`gesture simulate --firmware`, tests/test_firmware_sim.py).
//
// Board revision: Rev1 has an LSM9DS1 (library Arduino_LSM9DS1), Rev2 a BMI270 + BMM150 (library
// Arduino_BMI270_BMM150). The board is written into the sketch folder, gk_board_choice.h (GENERATED:
// `gesture firmware --board nano33ble_rev2 --out DIR` for Rev2; the IDE cannot pass -D flags).
// `-DGK_BOARD_REV2` on the command line selects Rev2 too. (Finding the IMU at boot would need both
// IMU libraries installed and linked on every board; the choice in the folder needs one.)
//
// Rules this loop keeps (each was a fault on a real board):
// * it boots at the rate its IMU library configures (GK_IMU_RATE_HZ: 119 Hz Rev1, 100 Hz Rev2) and
//   refuses rates the sensor cannot deliver, instead of sampling faster than the sensor;
// * a sample is taken when the sensor has a new one (data-ready), not when micros() says so;
// * nothing waits for the host: serial frames and notifications that do not fit are dropped and
//   counted (a "dropped: serial=N ble=M" LOG frame each second while the count grows);
// * nothing is written from inside BLE.poll() (the control write handler only records the command).

#include <ArduinoBLE.h>

#include "gk_board_choice.h"  // GENERATED: the board this folder is for (GK_BOARD_REV2 or none)
#include "gk_boards.h"  // GENERATED from capture/boards.py: board name, sensor, IMU rate, IMU header
#include GK_IMU_HEADER    // the board's sensor code (gk_imu_<sensor>.h, which includes its library)

#include "gesture_protocol.h"
#include "gk_capture_version.h"
#include "gk_frame.h"
#include "gk_link.h"

// IMU notifications carry as many samples as the negotiated ATT MTU holds (gk_ble_mtu(): 23 until
// the central asks, up to GK_BLE_MAX_MTU), so a 119 Hz stream fits the 4 controller buffers per
// connection interval once the MTU is raised; at MTU 23 what does not fit is dropped and counted.

static const uint8_t kChannels = 6;
static uint32_t rate_hz = GK_IMU_RATE_HZ;
static bool streaming = true;
static bool ble_ok = false;
static uint16_t seq_imu = 0, seq_info = 0, seq_log = 0, seq_ble = 0;
static gk::ImuBatcher serial_batch, ble_batch;
static gk::ControlParser serial_control;
static uint8_t frame_buf[GK_HEADER_SIZE + GK_MAX_PAYLOAD + GK_CRC_SIZE];
static char info_text[GK_MAX_PAYLOAD + 1];
static size_t info_len = 0;
static uint8_t ble_cmd = 0;  // a CONTROL write, parked by the BLE handler until loop() runs it
static uint32_t ble_arg = 0;
static bool ble_cmd_pending = false;
static uint32_t drops_reported = 0;
static uint16_t ble_mtu = GK_BLE_NOTIFY_MTU;  // the MTU ble_batch is sized for
static unsigned long drops_reported_ms = 0;

BLEService gk_service(GK_SERVICE_UUID);
BLECharacteristic imu_char(GK_IMU_CHAR_UUID, BLENotify, GK_BLE_MAX_MTU - GK_ATT_OVERHEAD);
// Sized for the longest INFO the protocol allows (a frame's payload), not for today's text:
// ArduinoBLE silently cuts a value longer than the characteristic.
BLECharacteristic info_char(GK_INFO_CHAR_UUID, BLERead, GK_MAX_PAYLOAD);
BLECharacteristic control_char(GK_CONTROL_CHAR_UUID, BLEWrite, 5);

static bool send_frame(uint8_t type, uint16_t seq, uint32_t t_us, const uint8_t* payload, size_t len) {
  size_t n = gk::encode_frame(frame_buf, sizeof(frame_buf), type, seq, t_us, payload, len);
  return n && gk_serial_send(frame_buf, n);  // seq stays used when dropped: the host sees the gap
}

static bool send_log(const char* text, size_t n) {
  return send_frame(GK_FRAME_LOG, seq_log++, micros(), reinterpret_cast<const uint8_t*>(text), n);
}

static void send_info() {
  info_len = gk::build_info(info_text, sizeof(info_text), GK_FIRMWARE_VERSION, GK_BOARD_NAME, GK_SENSOR_NAME,
                            "capture", rate_hz, kChannels);
  send_frame(GK_FRAME_INFO, seq_info++, micros(), reinterpret_cast<const uint8_t*>(info_text), info_len);
  if (ble_ok) info_char.writeValue(reinterpret_cast<const uint8_t*>(info_text), info_len);
}

static void configure_batches() {
  serial_batch.configure(kChannels, gk::samples_per_frame(rate_hz));
  ble_batch.configure(kChannels, gk::ble_samples_per_notification(ble_mtu, kChannels));
}

// Applies a rate the sensor delivers (and sends INFO); refuses any other with a LOG frame.
static bool set_rate(uint32_t hz) {
  if (!gk::rate_supported(hz) || !gk_imu_set_rate(hz)) {
    char text[48];
    send_log(text, gk::format_rate_error(text, sizeof(text), hz));
    return false;
  }
  rate_hz = hz;
  configure_batches();
  send_info();
  return true;
}

static void handle_command(uint8_t cmd, uint32_t arg) {
  switch (cmd) {
    case GK_CMD_STOP: streaming = false; serial_batch.clear(); ble_batch.clear(); break;
    case GK_CMD_START: streaming = true; break;
    case GK_CMD_SET_RATE: set_rate(arg); break;
    case GK_CMD_INFO: send_info(); break;
    default: break;
  }
}

// Runs inside BLE.poll(): only records the command; loop() executes it.
static void on_control_written(BLEDevice, BLECharacteristic c) {
  uint8_t cmd;
  uint32_t arg;
  if (gk::parse_control_payload(c.value(), c.valueLength(), &cmd, &arg)) {
    ble_cmd = cmd;
    ble_arg = arg;
    ble_cmd_pending = true;
  }
}

static void on_ble_connect(BLEDevice) {
  ble_mtu = GK_BLE_NOTIFY_MTU;  // every link starts at 23
  ble_batch.configure(kChannels, gk::ble_samples_per_notification(ble_mtu, kChannels));
}
static void on_ble_disconnect(BLEDevice) { gk_ble_link_dropped(); }  // gk_link.h: ArduinoBLE keeps the dead link's count

// One IMU frame with the samples batched so far.
static void flush_serial_batch() {
  if (!serial_batch.count()) return;
  uint8_t payload[2 + 2 * GK_MAX_SAMPLES_PER_FRAME * kChannels];
  size_t n = serial_batch.payload(payload, sizeof(payload));
  send_frame(GK_FRAME_IMU, seq_imu++, serial_batch.t_first(), payload, n);
  serial_batch.clear();
}

// One IMU notification with the samples batched so far (seq used even when dropped: the host sees the gap).
static void flush_ble_batch() {
  if (!ble_batch.count()) return;
  uint8_t note[GK_BLE_MAX_MTU - GK_ATT_OVERHEAD];
  size_t n = ble_batch.notification(note, sizeof(note), seq_ble++);
  if (n) gk_notify(imu_char, note, n);
  ble_batch.clear();
}

static void report_drops() {
  const uint32_t total = gk_serial_dropped + gk_ble_dropped + gk_imu_lost;
  if (total == drops_reported || millis() - drops_reported_ms < 1000) return;
  char text[80];
  size_t n = gk::format_drops(text, sizeof(text), gk_serial_dropped, gk_ble_dropped, gk_imu_lost);
  drops_reported_ms = millis();
  if (send_log(text, n)) drops_reported = total;  // not delivered (no host yet): try again in a second
}

void setup() {
  Serial.begin(115200);  // USB CDC: the baud rate is ignored
  if (!gk_imu_begin(true)) {  // true: the sensor's FIFO where it has one (LSM9DS1: 32 samples)
    while (true) {
      const char msg[] = "error: IMU not found";
      send_log(msg, sizeof(msg) - 1);
      for (int i = 0; i < 1000; ++i) { gk_serial_pump(); delay(1); }
    }
  }
  ble_ok = BLE.begin() != 0;
  if (ble_ok) {
    BLE.setLocalName(GK_BLE_LOCAL_NAME);
    BLE.setAdvertisedService(gk_service);
    gk_service.addCharacteristic(imu_char);
    gk_service.addCharacteristic(info_char);
    gk_service.addCharacteristic(control_char);
    control_char.setEventHandler(BLEWritten, on_control_written);
    BLE.setEventHandler(BLEConnected, on_ble_connect);
    BLE.setEventHandler(BLEDisconnected, on_ble_disconnect);
    BLE.addService(gk_service);
    BLE.advertise();
  } else {
    const char msg[] = "error: BLE.begin() failed; streaming over USB serial only";
    send_log(msg, sizeof(msg) - 1);
  }
  set_rate(GK_IMU_RATE_HZ);  // always accepted: also configures the batches and sends INFO
}

void loop() {
  if (ble_ok) BLE.poll();
  gk_serial_pump();
  uint8_t cmd;
  uint32_t arg;
  while (Serial.available() > 0) {
    if (serial_control.feed(static_cast<uint8_t>(Serial.read()), &cmd, &arg)) handle_command(cmd, arg);
  }
  if (ble_cmd_pending) {
    ble_cmd_pending = false;
    handle_command(ble_cmd, ble_arg);
  }
  report_drops();
  int16_t s[kChannels];
  const uint32_t lost_before = gk_imu_lost;
  if (!gk_imu_read(s)) return;  // data-ready: the sensor's clock sets the sample rate
  if (!streaming) return;
  if (gk_imu_lost != lost_before) {  // samples lost at the sensor: the next batches start at a true time
    flush_serial_batch();
    flush_ble_batch();
  }
  const uint32_t now = gk_imu_time_us();  // the sample's time, not the read's (a FIFO backlog is read in a burst)
  if (serial_batch.push(s, now)) flush_serial_batch();
  if (ble_ok && BLE.connected() && imu_char.subscribed()) {
    const uint16_t mtu = gk_ble_mtu();
    if (mtu != ble_mtu) {  // the central raised the MTU: size the batch for it (a partial one is sent first)
      flush_ble_batch();
      ble_mtu = mtu;
      ble_batch.configure(kChannels, gk::ble_samples_per_notification(ble_mtu, kChannels));
    }
    if (ble_batch.push(s, now)) flush_ble_batch();
  }
}
