"""The protocol module's own invariants (the C++ agreement lives in test_firmware_capture)."""
import numpy as np
import pytest

from capture import protocol as p


def test_crc_check_value():
    assert p.crc16_ccitt(b"123456789") == 0x29B1


def test_frame_roundtrip_and_corruption():
    samples = np.array([[1, -2, 3], [32767, -32768, 0]], dtype=np.int16)
    raw = p.encode_frame(p.FrameType.IMU, 65535, 2**32 - 1, p.encode_imu(samples))
    f = p.decode_frame(raw)
    assert (f.type, f.seq, f.t_us) == (p.FrameType.IMU, 65535, 2**32 - 1)
    assert np.array_equal(p.decode_imu(f.payload), samples)
    bad = bytearray(raw)
    bad[13] ^= 0x01
    with pytest.raises(ValueError, match="CRC"):
        p.decode_frame(bytes(bad))


def test_prediction_and_info_roundtrip():
    pred = p.Prediction(2, 200, (10, 20, 200, 25))
    assert p.decode_prediction(p.encode_prediction(pred)) == pred
    info = {"proto": 1, "fw": "1.0.0", "ch": ["ax", "ay", "az"]}
    assert p.decode_info(p.encode_info(info)) == {"proto": "1", "fw": "1.0.0", "ch": "ax,ay,az"}


def test_unit_conversion_saturates_like_the_imu():
    counts = p.units_to_counts(np.array([[1.0, -5.0, 0.5, 100.0, -3000.0, 0.0]]))
    assert counts.tolist() == [[8192, -32768, 4096, 1638, -32768, 0]]
