"""The simulated hand: its physics (specific force, body rates), its sensor model and its sources."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from capture import protocol as p
from capture.boards import BOARDS
from capture.virtual import hand as h


def still_person(**kw) -> h.Person:
    """A person holding the board flat, facing forward, with no bias."""
    base = dict(name="t", size_m=0.3, tempo=1.0, tilt=Rotation.identity(), left_handed=False, wrist_roll=0.0,
                tremor_deg=0.0, accel_bias_g=np.zeros(3), gyro_bias_dps=np.zeros(3))
    base.update(kw)
    return h.Person(**base)


def quiet_imu(rate: float = 100.0) -> h.Imu:
    return h.Imu(rate_hz=rate, accel_range_g=4, gyro_range_dps=2000, accel_noise_g=0.0, gyro_noise_dps=0.0,
                 accel_lsb_g=1e-6, gyro_lsb_dps=1e-6)


def test_accelerometer_measures_specific_force_in_the_sensor_frame():
    """At rest flat: +1 g on z. Accelerating 2 m/s^2 to the right: +0.204 g on x as well."""
    t = np.arange(2000) / h.PHYSICS_HZ
    rest = h.Motion(np.zeros((len(t), 3)), Rotation.identity(len(t)))
    out = quiet_imu().measure(rest, still_person(), np.random.default_rng(0))
    np.testing.assert_allclose(out[5:-5, :3], [[0, 0, 1]] * (len(out) - 10), atol=1e-5)
    pushed = h.Motion(np.stack([0.5 * 2.0 * t ** 2, 0 * t, 0 * t], axis=1), Rotation.identity(len(t)))
    out = quiet_imu().measure(pushed, still_person(), np.random.default_rng(0))
    np.testing.assert_allclose(out[5:-5, 0], 2.0 / h.G, atol=1e-4)
    # the board turned upside down (180 degrees about x) at rest reads -1 g on z
    flipped = h.Motion(np.zeros((len(t), 3)), Rotation.from_euler("x", np.full((len(t), 1), 180.0), degrees=True))
    out = quiet_imu().measure(flipped, still_person(), np.random.default_rng(0))
    np.testing.assert_allclose(out[5:-5, 2], -1.0, atol=1e-5)


def test_gyroscope_measures_the_body_rate_and_gravity_turns_with_the_grip():
    """Turning about the world z axis at 90 deg/s reads 90 deg/s on the sensor's z when held flat;
    with the board rolled 90 degrees in the hand the same turn shows on another axis, and gravity
    moves from z to y."""
    t = np.arange(1000) / h.PHYSICS_HZ
    turn = h.Motion(np.zeros((len(t), 3)), Rotation.from_euler("z", (90 * t)[:, None], degrees=True))
    out = quiet_imu().measure(turn, still_person(), np.random.default_rng(0))
    np.testing.assert_allclose(out[:-1, 3:], [[0, 0, 90]] * (len(out) - 1), atol=1e-3)
    rolled = still_person(tilt=Rotation.from_euler("x", 90, degrees=True))
    out = quiet_imu().measure(turn, rolled, np.random.default_rng(0))
    np.testing.assert_allclose(np.abs(out[:-1, 3:]).max(axis=0), [0, 90, 0], atol=1e-3)
    np.testing.assert_allclose(np.abs(out[:, :3]).mean(axis=0), [0, 1, 0], atol=1e-5)


def test_sensor_model_rate_noise_quantization_range_per_board():
    for key, rate in (("nano33ble", 119), ("nano33ble_rev2", 100)):
        board = BOARDS[key]
        hand = h.Hand(key, seed=1)
        take = hand.take("wing", 0, 0)
        assert hand.imu.rate_hz == rate and take.meta["rate_hz"] == rate
        assert np.allclose(np.diff(take.t_ms), 1000 / rate)
        counts = take.values[:, :3] / board.accel_lsb_g
        np.testing.assert_allclose(counts, np.rint(counts), atol=1e-6)  # on the sensor's LSB grid
        n = int(2 * h.PHYSICS_HZ)
        still = hand.imu.measure(h.Motion(np.zeros((n, 3)), Rotation.identity(n)), still_person(), np.random.default_rng(1))
        noise_g = board.accel_noise_counts / p.ACCEL_LSB_PER_G
        assert 0.7 * noise_g < still[:, 0].std() < 1.4 * noise_g  # the datasheet's white noise, nothing else
        rest = hand.rest(2.0, 0, 0)  # a person holding it still: noise, a little tremor
        assert rest[:, 0].std() < 0.02 and abs(np.linalg.norm(rest[:, :3], axis=1).mean() - 1.0) < 0.06
        assert np.abs(take.values[:, :3]).max() <= board.accel_range_g


def test_takes_are_seeded_and_people_differ():
    a, b = h.Hand(seed=3).take("ring", 2, 5), h.Hand(seed=3).take("ring", 2, 5)
    np.testing.assert_array_equal(a.values, b.values)
    c = h.Hand(seed=3).take("ring", 4, 5)
    assert a.meta["subject"] != c.meta["subject"]
    assert a.values.shape != c.values.shape or not np.allclose(a.values, c.values)
    with pytest.raises(ValueError, match="simulated hand knows"):
        h.Hand().take("punch", 0, 0)


def test_gestures_move_and_negatives_are_not_idle():
    hand = h.Hand(seed=0)
    for label in h.LABELS:
        take = hand.take(label, 1, 0)
        assert take.values[:, 3:].std(axis=0).max() > 5, label  # the wrist turns
        assert take.meta["simulated"] is True and take.meta["source"] == "simulated-hand"


def test_hand_source_frames_like_the_firmware_and_says_it_is_simulated():
    from capture.virtual.sources import HandSource
    from capture.virtual.url import source_from_url

    src, _ = source_from_url("virtual://hand?board=nano33ble_rev2&labels=wing,slope&limit=4&loop=0&person=2")
    assert isinstance(src, HandSource) and src.rate_hz == 100
    info = src.info()
    assert info["sensor"] == "simulated-hand" and info["board"] == "nano33ble_rev2"
    events = list(src.events())
    assert all(ftype == p.FrameType.IMU for _, ftype, _ in events)
    assert [s.label for s in src.segments] and {s.label for s in src.segments} <= {"wing", "slope"}
    assert len(src.segments) == 4
    n = sum(len(p.decode_imu(payload)) for _, _, payload in events)
    again, _ = source_from_url("virtual://hand?board=nano33ble_rev2&labels=wing,slope&limit=4&loop=0&person=2")
    assert n == sum(len(block) for block, _ in again.stream())  # every sample framed once, none invented
    assert max(len(p.decode_imu(payload)) for _, _, payload in events) == p.samples_per_frame(100)
    with pytest.raises(Exception, match="cannot do punch"):
        HandSource(labels=["punch"])


def test_written_dataset_is_marked_simulated_with_test_people(tmp_path):
    from training.dataset import load_dataset

    h.write_dataset(tmp_path / "d", people=3, per_person=2, test_people=1)
    ds = load_dataset(tmp_path / "d")
    assert ds.manifest["simulated"] is True and ds.manifest["test_subjects"] == ["sim02"]
    assert len(ds.takes) == 3 * 4 * 2 and set(ds.subjects()) == {"sim00", "sim01", "sim02"}
