"""A simulated hand: IMU takes produced by a physical model, not by replaying anybody's recordings.

The demo and the tests need gestures without a board and without third-party data. Replaying a
few fixed recordings would teach nothing about the things that make real gesture data hard
(who performs it, how big, how fast, how the board sits in the hand), so this module *computes*
what an IMU strapped to a moving hand measures:

1. **Trajectory.** Each gesture is a path drawn in the vertical plane in front of the person
   (``wing``: a W; ``ring``: a circle; ``slope``: down the diagonal, then along the bottom), with
   a minimum-jerk time law per stroke, so the hand slows into every corner as people do. The
   negative class (``negative``) is everyday motion: band-limited wandering of the hand and wrist
   with the occasional quick reach, never one of the shapes.
2. **Person.** Size, tempo, how the board is tilted in the hand, heading, handedness (a left hand
   draws mirrored and turns the circle the other way), how much the wrist rolls with the motion,
   and tremor are drawn per person from a seeded generator; every take varies a little more.
3. **Physics.** Position and orientation are evaluated at 1 kHz. The accelerometer measures
   specific force, the hand's acceleration minus gravity, rotated into the sensor frame
   (``f = R^T (a - g)``, so a board lying flat reads +1 g on z); the gyroscope measures the body
   angular rate (``R^T dR/dt``).
4. **Sensor.** The board registry's IMU (``capture.boards``): its output rate (LSM9DS1 119 Hz,
   BMI270 100 Hz), full scale (saturation), per-person bias, white noise of the datasheet's
   density and the sensor's LSB (quantization).

Everything is seeded: the same (seed, person, take) gives the same samples on every machine.
The result is *simulated* data and is labelled so wherever it is written (``dataset.json`` has
``"simulated": true``; takes carry ``source: simulated-hand``), so a report never passes it off
as a recording.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import numpy as np
from scipy.spatial.transform import Rotation

from capture import protocol as p
from capture.boards import DEFAULT_BOARD, Board, get_board
from capture.takes import ACCEL_CHANNELS, IMU_CHANNELS, SIMULATED_SENSOR, Take, save_takes

GESTURES = ("wing", "ring", "slope")
NEGATIVE = "negative"
LABELS = GESTURES + (NEGATIVE,)
SOURCE = SIMULATED_SENSOR
G = 9.80665  # m/s^2
PHYSICS_HZ = 1000.0  # the trajectory's time step; the IMU samples it at its own rate

# Stroke waypoints in the drawing plane (x right, z up), unit size; a gesture's size scales them.
_PATHS = {
    "wing": np.array([[-1.0, 0.9], [-0.5, -0.9], [0.0, 0.35], [0.5, -0.9], [1.0, 0.9]]),
    "slope": np.array([[0.55, 0.9], [-0.75, -0.8], [0.85, -0.8]]),
}
_BASE_SECONDS = {"wing": 1.5, "ring": 1.25, "slope": 1.1, NEGATIVE: 1.7}


@dataclass(frozen=True)
class Person:
    """How one person performs: drawn once per (seed, index), the same in every take."""

    name: str
    size_m: float  # gesture width
    tempo: float  # > 1 slower
    tilt: Rotation  # how the board sits in the hand (roll/pitch/yaw away from flat, facing forward)
    left_handed: bool
    wrist_roll: float  # rad of wrist rotation per m/s of hand speed
    tremor_deg: float  # rms of the slow wobble of the wrist
    accel_bias_g: np.ndarray  # (3,)
    gyro_bias_dps: np.ndarray  # (3,)


def person(index: int, seed: int = 0) -> Person:
    """The ``index``-th simulated person of population ``seed``."""
    rng = np.random.default_rng([seed, index, 0x48414E44])
    tilt = Rotation.from_euler("xyz", [rng.normal(0, 14), rng.normal(0, 14), rng.normal(0, 20)], degrees=True)
    return Person(
        name=f"sim{index:02d}",
        size_m=float(rng.uniform(0.15, 0.35)),
        tempo=float(rng.uniform(0.75, 1.25)),
        tilt=tilt,
        left_handed=bool(rng.random() < 0.2),
        wrist_roll=float(rng.uniform(0.2, 0.9)),
        tremor_deg=float(rng.uniform(0.5, 2.5)),
        accel_bias_g=rng.normal(0, 0.02, 3),
        gyro_bias_dps=rng.normal(0, 1.0, 3),
    )


# ----------------------------------------------------------------------------- trajectories

def _min_jerk(tau: np.ndarray) -> np.ndarray:
    tau = np.clip(tau, 0.0, 1.0)
    return tau ** 3 * (10 - 15 * tau + 6 * tau ** 2)


def _stroke_path(points: np.ndarray, t: np.ndarray, duration: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) positions along ``points``: one minimum-jerk stroke per segment, time by length."""
    pts = points + rng.normal(0, 0.06, points.shape)  # nobody draws the same W twice
    lengths = np.linalg.norm(np.diff(pts, axis=0), axis=1) ** 0.8  # long strokes are faster, not longer in time
    edges = np.concatenate([[0.0], np.cumsum(lengths) / lengths.sum() * duration])
    out = np.repeat(pts[:1], len(t), axis=0).astype(float)
    for k in range(len(pts) - 1):
        tau = (t - edges[k]) / (edges[k + 1] - edges[k])
        out += np.outer(_min_jerk(tau), pts[k + 1] - pts[k])
    return out


def _ring_path(t: np.ndarray, duration: float, rng: np.random.Generator, clockwise: bool) -> np.ndarray:
    turn = 2 * np.pi * rng.uniform(0.95, 1.1)
    theta = np.pi / 2 + (-1 if clockwise else 1) * turn * _min_jerk(t / duration)
    squash = rng.uniform(0.8, 1.2)
    return np.stack([np.cos(theta), squash * (np.sin(theta) - 1.0)], axis=1)


def _smooth_noise(n: int, rng: np.random.Generator, hz: float, dims: int, fade_s: float = 0.15) -> np.ndarray:
    """(n, dims) unit-rms noise below ``hz`` at PHYSICS_HZ (a few random sinusoids: cheap and smooth),
    faded in and out over ``fade_s`` so that motions join without a jump in position or tilt."""
    t = np.arange(n) / PHYSICS_HZ
    out = np.zeros((n, dims))
    for _ in range(6):
        f = rng.uniform(0.1, hz, dims)
        out += np.sin(2 * np.pi * f * t[:, None] + rng.uniform(0, 2 * np.pi, dims))
    ramp = np.clip(np.minimum(t, t[-1] - t) / fade_s, 0.0, 1.0)
    return out / np.sqrt(3.0) * (np.sin(ramp * np.pi / 2) ** 2)[:, None]


@dataclass
class Motion:
    """A hand motion at PHYSICS_HZ: world position (n, 3) in m and orientation (n rotations, sensor -> world)."""

    pos: np.ndarray
    rot: Rotation


def _gesture_motion(label: str, who: Person, rng: np.random.Generator) -> Motion:
    duration = _BASE_SECONDS[label] * who.tempo * rng.uniform(0.85, 1.15)
    n = int(round(duration * PHYSICS_HZ))
    t = np.arange(n) / PHYSICS_HZ
    size = who.size_m * rng.uniform(0.85, 1.15)
    if label == NEGATIVE:
        # everyday motion: the hand wanders a few cm, the wrist turns up to ~25 degrees, and
        # sometimes reaches quickly somewhere and back
        pos = _smooth_noise(n, rng, 1.5, 3, fade_s=0.5) * rng.uniform(0.02, 0.08)
        if rng.random() < 0.5:
            c, w = rng.uniform(0.3, 0.7) * duration, rng.uniform(0.3, 0.6)
            bump = np.exp(-0.5 * ((t - c) / (w / 2.5)) ** 2)
            pos += np.outer(bump, rng.normal(0, 0.07, 3))
        angles = _smooth_noise(n, rng, 1.0, 3, fade_s=0.5) * rng.uniform(5, 20)
        rot = Rotation.from_euler("xyz", angles, degrees=True)
        return Motion(pos, rot)
    if label == "ring":
        plane = _ring_path(t, duration, rng, clockwise=not who.left_handed) * size / 2
    else:
        plane = _stroke_path(_PATHS[label], t, duration, rng) * size / 2
        if who.left_handed:
            plane[:, 0] = -plane[:, 0][::-1] if label == "wing" else -plane[:, 0]
    depth = _smooth_noise(n, rng, 2.0, 1)[:, 0] * 0.01 * size / 0.3
    pos = np.stack([plane[:, 0], depth, plane[:, 1]], axis=1)
    pos -= pos[0]
    vel = np.gradient(pos, 1 / PHYSICS_HZ, axis=0)
    # the wrist rolls with sideways motion and pitches with vertical motion, plus a slow wobble
    sign = -1.0 if who.left_handed else 1.0
    roll = sign * who.wrist_roll * vel[:, 0]
    pitch = -who.wrist_roll * 0.6 * vel[:, 2]
    wobble = np.deg2rad(_smooth_noise(n, rng, 3.0, 3) * who.tremor_deg)
    rot = Rotation.from_euler("xyz", np.stack([pitch, roll, np.zeros(n)], axis=1) + wobble)
    return Motion(pos, rot)


def _rest_motion(seconds: float, who: Person, rng: np.random.Generator) -> Motion:
    n = max(2, int(round(seconds * PHYSICS_HZ)))
    pos = _smooth_noise(n, rng, 2.0, 3) * 0.0003
    wobble = _smooth_noise(n, rng, 3.0, 3) * who.tremor_deg * 0.2
    return Motion(pos, Rotation.from_euler("xyz", wobble, degrees=True))


# ----------------------------------------------------------------------------- the IMU

@dataclass(frozen=True)
class Imu:
    """The sensor of a board in the registry: rate, full scale, noise and LSB."""

    rate_hz: float
    accel_range_g: float
    gyro_range_dps: float
    accel_noise_g: float  # rms at the output rate
    gyro_noise_dps: float
    accel_lsb_g: float
    gyro_lsb_dps: float

    @classmethod
    def of(cls, board: Board, rate_hz: float | None = None) -> "Imu":
        return cls(rate_hz=float(rate_hz or board.imu_rate_hz), accel_range_g=board.accel_range_g,
                   gyro_range_dps=board.gyro_range_dps, accel_noise_g=board.accel_noise_counts / p.ACCEL_LSB_PER_G,
                   gyro_noise_dps=board.gyro_noise_dps, accel_lsb_g=board.accel_lsb_g, gyro_lsb_dps=board.gyro_lsb_dps)

    def measure(self, motion: Motion, who: Person, rng: np.random.Generator) -> np.ndarray:
        """(n, 6) g and deg/s as the IMU reports ``motion`` held with ``who``'s grip."""
        orient = motion.rot * who.tilt  # sensor -> world: the grip first, then the hand turning in the world
        acc = np.gradient(np.gradient(motion.pos, 1 / PHYSICS_HZ, axis=0), 1 / PHYSICS_HZ, axis=0)
        force_world = acc + np.array([0.0, 0.0, G])  # specific force: a - g, with g pointing down
        force = orient.inv().apply(force_world) / G
        step = (orient[:-1].inv() * orient[1:]).as_rotvec() * PHYSICS_HZ  # body rates between steps
        gyro = np.degrees(np.vstack([step, step[-1:]]))
        n_out = int(np.floor((len(motion.pos) - 1) / PHYSICS_HZ * self.rate_hz)) + 1
        idx = np.minimum(np.rint(np.arange(n_out) / self.rate_hz * PHYSICS_HZ).astype(int), len(motion.pos) - 1)
        out = np.hstack([force[idx] + who.accel_bias_g, gyro[idx] + who.gyro_bias_dps])
        out[:, :3] += rng.normal(0, self.accel_noise_g, (n_out, 3))
        out[:, 3:] += rng.normal(0, self.gyro_noise_dps, (n_out, 3))
        out[:, :3] = np.clip(np.rint(out[:, :3] / self.accel_lsb_g) * self.accel_lsb_g, -self.accel_range_g, self.accel_range_g)
        out[:, 3:] = np.clip(np.rint(out[:, 3:] / self.gyro_lsb_dps) * self.gyro_lsb_dps, -self.gyro_range_dps, self.gyro_range_dps)
        return out


def _concat(parts: list[Motion]) -> Motion:
    """Motions one after another, each starting where the previous ended. Every motion begins and
    ends with the wrist at the person's grip (the wobble fades in and out), so orientations join."""
    pos = []
    here = np.zeros(3)
    for m in parts:
        pos.append(m.pos - m.pos[0] + here)
        here = pos[-1][-1]
    return Motion(np.vstack(pos), Rotation.concatenate([m.rot for m in parts]))


# ----------------------------------------------------------------------------- the public API

class Hand:
    """A seeded population of simulated people wearing one board's IMU."""

    def __init__(self, board: str = DEFAULT_BOARD, seed: int = 0, rate_hz: float | None = None) -> None:
        self.board = get_board(board)
        self.seed = seed
        self.imu = Imu.of(self.board, rate_hz)

    def take(self, label: str, who: int, k: int, *, seconds: float | None = None, channels: int = 6) -> Take:
        """Take ``k`` of person ``who`` doing ``label``: rest, the gesture, rest (``seconds`` long in
        all when given, like a fixed-length capture; else 0.2-0.4 s of rest either side)."""
        if label not in LABELS:
            raise ValueError(f"the simulated hand knows {', '.join(LABELS)}, not {label!r}")
        person_ = person(who, self.seed)
        rng = np.random.default_rng([self.seed, who, LABELS.index(label), k])
        gesture = _gesture_motion(label, person_, rng)
        g_s = len(gesture.pos) / PHYSICS_HZ
        pre = rng.uniform(0.2, 0.4)
        post = max(0.2, seconds - pre - g_s) if seconds else rng.uniform(0.2, 0.4)
        motion = _concat([_rest_motion(pre, person_, rng), gesture, _rest_motion(post, person_, rng)])
        values = self.imu.measure(motion, person_, rng)
        if seconds:
            values = values[: int(round(seconds * self.imu.rate_hz))]
        t_ms = np.arange(len(values)) * 1000.0 / self.imu.rate_hz
        chans = IMU_CHANNELS if channels == 6 else ACCEL_CHANNELS
        meta = {"subject": person_.name, "rate_hz": self.imu.rate_hz, "source": SOURCE, "simulated": True}
        return Take(label=label, t_ms=t_ms, values=values[:, :channels], channels=chans, meta=meta)

    def rest(self, seconds: float, who: int, k: int) -> np.ndarray:
        """(n, 6) g/dps of person ``who`` holding the board still (grip, tremor, bias, noise)."""
        person_ = person(who, self.seed)
        rng = np.random.default_rng([self.seed, who, 0x52455354, k])
        return self.imu.measure(_rest_motion(seconds, person_, rng), person_, rng)

    def takes(self, labels: tuple[str, ...] | list[str] = LABELS, people: range | list[int] = range(8),
              per_person: int = 10, **kw) -> list[Take]:
        return [self.take(label, who, k, **kw) for who in people for label in labels for k in range(per_person)]


def write_dataset(out: str | Path, *, board: str = DEFAULT_BOARD, seed: int = 0, people: int = 8,
                  per_person: int = 10, labels: tuple[str, ...] | list[str] = LABELS, test_people: int = 2,
                  channels: int = 6) -> list[Path]:
    """A simulated dataset folder (takes + dataset.json marked ``simulated``); the last
    ``test_people`` people are declared the test split, as a person-wise split of real data would."""
    hand = Hand(board, seed)
    takes = hand.takes(labels, range(people), per_person, channels=channels)
    test = [person(i, seed).name for i in range(people - test_people, people)]
    defaults = {"simulated": True, "source": f"{SOURCE} (capture/virtual/hand.py), board {board}, seed {seed}",
                "sample_rate_hz": hand.imu.rate_hz, "test_subjects": test}
    return save_takes(out, takes, prefix="sim", defaults=defaults)
