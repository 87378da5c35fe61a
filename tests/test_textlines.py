"""Plain-text IMU lines (IMU_Capture.ino, Edge Impulse data forwarder) -> IMU messages."""
from __future__ import annotations

import numpy as np

from capture import protocol as p
from capture.units import G
from capture.textlines import TextLineReader, looks_like_text, snap_rate


def _feed_lines(reader: TextLineReader, rows: list[str], rate: float, per_read: int = 3, t0: float = 100.0):
    """Deliver lines as USB does: a few per read, the host clock advancing at the real rate."""
    msgs = []
    for k in range(0, len(rows), per_read):
        chunk = "".join(r + "\r\n" for r in rows[k:k + per_read]).encode()
        msgs += reader.feed(chunk, t0 + (k + per_read - 1) / rate)
    return msgs


def _samples(msgs) -> np.ndarray:
    return np.vstack([p.decode_imu(m.payload) for m in msgs])


def test_imu_capture_lines_in_g_and_dps():
    rng = np.random.default_rng(0)
    values = np.round(np.hstack([rng.normal(0, 0.3, (240, 2)), 1 + rng.normal(0, 0.3, (240, 1)),
                                 rng.normal(0, 50, (240, 3))]), 3)
    rows = ["aX,aY,aZ,gX,gY,gZ"] + [",".join(f"{v:.3f}" for v in r) for r in values]
    r = TextLineReader()
    msgs = _feed_lines(r, rows, 119.0)
    assert r.rate_hz == 119 and r.channels == 6 and r.accel_scale == 1.0 and r.is_imu_capture
    got = _samples(msgs)
    assert np.array_equal(got, p.units_to_counts(values))  # rows held during detection are not lost
    # steady flow: message k starts at (samples before it) / 119 s of device time
    before = np.cumsum([0] + [len(p.decode_imu(m.payload)) for m in msgs[:-1]])
    assert np.abs(np.array([m.t_us for m in msgs]) - before * 1e6 / 119).max() <= 1
    info = r.info()
    assert info["rate"] == "119" and info["mode"] == "text" and info["units"] == "g"


def test_data_forwarder_tabs_in_m_s2_three_axes_and_noise_lines():
    rng = np.random.default_rng(1)
    acc_g = np.hstack([rng.normal(0, 0.2, (150, 2)), 1 + rng.normal(0, 0.2, (150, 1))])
    rows = ["Edge Impulse forwarder ready", "sensor init ok 3"]
    rows += ["\t".join(f"{v * G:.4f}" for v in r) for r in acc_g]
    r = TextLineReader()
    msgs = _feed_lines(r, rows, 100.0, per_read=5)
    assert r.rate_hz == 100 and r.channels == 3 and r.accel_scale == G and not r.is_imu_capture
    got = _samples(msgs)
    assert got.shape == (150, 3)
    assert np.abs(got - p.units_to_counts(acc_g)).max() <= 1  # 4 decimals of m/s^2 ~ 0.08 counts
    assert r.skipped_lines == 2


def test_pause_moves_the_device_clock_forward():
    r = TextLineReader(rate_hz=119)
    rows = ["0.0,0.0,1.0,0,0,0"] * 60
    m1 = _feed_lines(r, rows, 119.0, t0=10.0)
    m2 = _feed_lines(r, rows, 119.0, t0=20.0)  # ten seconds of silence between two gestures
    gap_s = (m2[0].t_us - m1[-1].t_us) / 1e6
    assert 9.0 < gap_s < 10.5


def test_rate_snapping_and_text_sniffing():
    assert snap_rate(117.3) == 119 and snap_rate(1003) == 1000 and snap_rate(61.8) == 62.5 and snap_rate(333) == 333
    assert looks_like_text(b"aX,aY,aZ,gX,gY,gZ\r\n0.1,0.2,0.9,1,2,3\r\n")
    assert not looks_like_text(p.encode_frame(p.FrameType.IMU, 0, 0, p.encode_imu(np.zeros((10, 6), np.int16))) * 3)
    assert not looks_like_text(b"one line only\n")
