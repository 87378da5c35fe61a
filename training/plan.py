"""What to learn from, chosen from the recordings: the model rate, the window and the takes to skip.

Real datasets come with odd takes (a 1-sample take, a few takes much shorter than the rest, a
take holding a whole session). Refusing the whole dataset over them helps nobody, so training
skips what cannot be learnt from, pads what is merely short (``preprocess.crop_take``) and lists
every skipped take with its reason; it refuses only when too little is left.

The model rate and window follow the gestures, not a fixed 25 Hz: a gesture should span about
TARGET_WINDOW samples, never more than the source gives (no upsampling), and the window stays
within MAX_WINDOW so the first convolution's activations keep the arena small. These are
chosen from *all* training takes (never from the seed's fit/validation split, and never from
declared test people), so the same data gives the same model shape at every seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from capture.takes import Take
from training.preprocess import resample_step

TARGET_WINDOW = 64  # samples a typical (90th percentile) take should span at the model rate
MAX_WINDOW = 128  # arena: the first conv layer's output is window x filters bytes
MIN_WINDOW = 16
# Long gestures (a wand's 4-5 s letters) get ~64 samples at 12-13 Hz rather than 120 at 25 Hz: the
# M4 pays per sample (75 instructions per conv output, training/m4_cost.py), and after the
# anti-alias filter (0.3 x rate, 3.6 Hz at 12 Hz) what is left of arm motion still separates them:
# on the dev person splits of magic_wand 13 Hz x 64 kept the accuracy (docs/benchmarks.md).
MIN_RATE_HZ = 12  # below this only when the source is slower or the takes are very long
FLOOR_RATE_HZ = 5
MIN_WINDOW_FRACTION = 0.25  # a take shorter than this part of the window is too short to learn from
MAX_SKIPPED_FRACTION = 0.5  # more skipped than this: the window is wrong for the data, refuse
LONG_TAKE_FACTOR = 4.0  # a take this many times the median duration is "far longer than the rest"


@dataclass(frozen=True)
class Skipped:
    take: Take
    reason: str


def source_rate(takes: list[Take]) -> float:
    """The dataset's rate: median of the takes' own rates (1-sample takes have none)."""
    rates = [t.rate_hz for t in takes if t.rate_hz > 0 and t.n >= 2]
    return float(np.median(rates)) if rates else 0.0


def take_rate(take: Take, dataset_rate: float) -> float:
    """A take's rate, or the dataset's when its timestamps cannot tell (1 sample, t_ms stuck)."""
    return take.rate_hz if take.rate_hz > 0 else dataset_rate


def gesture_seconds(takes: list[Take], dataset_rate: float) -> float:
    """90th percentile of take duration (samples / rate): how long a gesture lasts."""
    d = [t.n / take_rate(t, dataset_rate) for t in takes if t.n >= 2 and take_rate(t, dataset_rate) > 0]
    return float(np.percentile(d, 90)) if d else 0.0


def choose_rate(takes: list[Take]) -> int:
    """Model rate (Hz): about TARGET_WINDOW samples per gesture, at least MIN_RATE_HZ, never
    above the source rate, lowered (down to FLOOR_RATE_HZ) when gestures are so long that the
    window would pass MAX_WINDOW."""
    src = source_rate(takes)
    if src <= 0:
        return MIN_RATE_HZ
    d = gesture_seconds(takes, src)
    if d <= 0:
        return int(round(min(src, MIN_RATE_HZ)))
    rate = min(src, max(MIN_RATE_HZ, TARGET_WINDOW / d))
    if d * rate > MAX_WINDOW:
        rate = min(src, max(FLOOR_RATE_HZ, MAX_WINDOW / d))
    return max(1, int(round(rate)))


def default_window(lengths: list[int]) -> int:
    """90th percentile of take length at the model rate, up to a multiple of 8, within
    MIN_WINDOW..MAX_WINDOW."""
    lengths = [n for n in lengths if n >= 2]
    if not lengths:
        return MIN_WINDOW
    w = int(np.ceil(np.percentile(lengths, 90) / 8.0) * 8)
    return int(min(max(w, MIN_WINDOW), MAX_WINDOW))


def model_length(take: Take, dataset_rate: float, model_rate: float) -> int:
    """Samples a take has at the model rate (exactly what preprocess.resample gives)."""
    r = take_rate(take, dataset_rate)
    if take.n < 2 or r <= 0:
        return take.n
    step = resample_step(r, model_rate)
    return take.n if step == 1 << 16 else (((take.n - 1) << 16) // step) + 1


def skip_reason(take: Take, dataset_rate: float, model_rate: float, window: int) -> str | None:
    """Why a take cannot be learnt from, or None."""
    if take.n < 2:
        return f"{take.n} sample: nothing to learn from"
    if take_rate(take, dataset_rate) <= 0:
        return "cannot tell the sample rate (t_ms not increasing) and the dataset has no other rate"
    n = model_length(take, dataset_rate, model_rate)
    if n < MIN_WINDOW_FRACTION * window:
        return (f"{n} samples at {model_rate:g} Hz ({take.duration_s:.2f} s), shorter than a quarter "
                f"of the {window}-sample window ({window / model_rate:.2f} s)")
    return None


@dataclass
class Plan:
    """The model rate and window for a dataset and the takes training leaves out."""

    rate_hz: int
    window: int
    source_rate_hz: float
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> str:
        """One line: how many takes are skipped, by reason (visible even under --quiet)."""
        if not self.skipped:
            return ""
        kinds: dict[str, int] = {"1-sample": 0, "shorter than a quarter of the window": 0, "no sample rate": 0}
        for s in self.skipped:
            key = ("1-sample" if s.reason.endswith("nothing to learn from") else
                   "shorter than a quarter of the window" if "quarter" in s.reason else "no sample rate")
            kinds[key] = kinds.get(key, 0) + 1
        return (f"skipped {len(self.skipped)} take(s) that cannot be learnt from ("
                + ", ".join(f"{v} {k}" for k, v in kinds.items() if v) + "); each is listed in the report")


def make_plan(train_takes: list[Take], all_takes: list[Take], *, rate_hz: int | None = None,
              window: int | None = None) -> Plan:
    """Rate and window from ``train_takes`` (unless given), then the skip list over ``all_takes``."""
    src = source_rate(all_takes)
    rate = int(rate_hz) if rate_hz else choose_rate(train_takes)
    win = int(window) if window else default_window([model_length(t, src, rate) for t in train_takes])
    skipped = sorted((Skipped(t, r) for t in all_takes if (r := skip_reason(t, src, rate, win))),
                     key=lambda s: str(s.take.path))
    return Plan(rate, win, src, skipped)


def long_takes(takes: list[Take]) -> list[Take]:
    """Takes far longer than the rest (LONG_TAKE_FACTOR x the median duration): often a whole
    session saved as one take, where only the motion-centred window is learnt from."""
    d = np.array([t.duration_s for t in takes])
    if len(d) < 5 or not (d > 0).any():
        return []
    median = float(np.median(d[d > 0]))
    return [t for t, x in zip(takes, d) if x > LONG_TAKE_FACTOR * median and x > median + 1.0]
