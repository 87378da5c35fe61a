"""``gesture train``: dataset in, a board-ready int8 model and its report out.

Order of work: every check that can fail on the user's data runs before TensorFlow is even
imported (seconds, not minutes, to learn that a label has too few takes). Then: windows ->
float Keras model -> full-int8 conversion -> evaluation of the int8 bytes in the TFLM interpreter
on the board's own integer preprocessing -> calibration of the live rejection threshold ->
arena measurement -> MODEL_DIR.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import GestureError
from capture.takes import ACCEL_CHANNELS, GYRO_CHANNELS, Take
from training.dataset import Dataset, load_dataset, validate
from training.model_dir import check_target, write_model_dir
from training.plan import MAX_SKIPPED_FRACTION, Plan, make_plan
from training.preprocess import PreprocessConfig, crop_take, motion, normalize, take_counts
from training.progress import check_interrupt
from training.splits import choose_groups, missing_labels, short_labels

UNKNOWN_NAMES = ("negative", "unknown", "idle", "none", "other")
VAL_FRACTION = 0.1
TEST_FRACTION = 0.2
KEEP_CORRECT = 0.97  # the live threshold keeps this share of correct validation predictions
VAL_AUGMENT = 4  # augmented copies per validation take for calibration (live windows are off-centre)
MOTION_FACTOR = 0.25  # live gate: this fraction of the quietest gesture's peak motion
MIN_MOTION_COUNTS = 150  # never gate below sensor noise (about 18 mg summed over 3 axes)
# Chosen on person splits carved out of the *training* people of data/magic_wand (never its test
# people): 20 epochs with a cosine-decayed learning rate scored as 30 did (within one take) at
# two thirds of the time; a model half as wide lost up to 5 points on one of those splits.
DEFAULTS = {"epochs": 20, "augment": 8, "batch": 64, "learning_rate": 3e-3}


def quiet_tensorflow_logs() -> None:
    """Before TensorFlow is imported: no C++ info logs, no absl/oneDNN notices on the terminal.

    oneDNN's "custom operations are on" notice (with absl's "before InitializeLog" preamble) is
    printed by each of TensorFlow's two native libraries at import, whatever TF_CPP_MIN_LOG_LEVEL
    says; turning the option off silences it, and makes float results reproducible run to run
    (for models this small it costs no measurable time). A user's own setting wins.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf.function retracing notices (gesture tune)


@dataclass
class TrainResult:
    model_dir: Path
    report: dict[str, Any]
    config: PreprocessConfig
    warnings: list[str] = field(default_factory=list)


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- splits

def _groups(takes: list[Take], key: str) -> dict[str, list[Take]]:
    out: dict[str, list[Take]] = {}
    for t in takes:
        out.setdefault(str(t.meta.get(key, "")), []).append(t)
    return out


SPLITS = ("person", "session", "category", "random")
TESTING = "testing"  # Edge Impulse's test category (take meta ``category``, kept by the importer)


def default_split(ds: Dataset) -> str:
    """The split when none is asked for: the dataset's declared test people, else the train/test
    categories an Edge Impulse export came with (its author's own split), else held-out people
    when takes name them, else random takes."""
    if ds.manifest.get("test_subjects") and ds.subjects():
        return "person"
    if any(t.meta.get("category") == TESTING for t in ds.takes):
        return "category"
    return "person" if ds.subjects() else "random"


def split_takes(ds: Dataset, split: str, seed: int) -> tuple[list[Take], list[Take], list[str]]:
    """(train, test, held-out group names). Person/session splits keep whole people out; the
    category split tests on the takes imported in Edge Impulse's testing category."""
    rng = np.random.default_rng(seed)
    if split == "category":
        test = [t for t in ds.takes if t.meta.get("category") == TESTING]
        if not test:
            raise GestureError("--split category needs takes imported in Edge Impulse's testing category "
                               "(dataset.json takes[...].category = \"testing\"); found none")
        return [t for t in ds.takes if t.meta.get("category") != TESTING], test, [TESTING]
    if split == "random":
        train, test = [], []
        for label, takes in sorted(ds.by_label().items()):
            idx = rng.permutation(len(takes))
            k = max(1, int(round(len(takes) * TEST_FRACTION)))
            test += [takes[i] for i in idx[:k]]
            train += [takes[i] for i in idx[k:]]
        return train, test, []
    key = {"person": "subject", "session": "session"}[split]
    groups = _groups(ds.takes, key)
    named = sorted(g for g in groups if g)
    if len(named) < 2:
        raise GestureError(f"--split {split} needs takes from at least 2 {key}s in dataset.json "
                           f"(found {len(named)}); record {key}s or use --split random")
    wanted = ds.manifest.get("test_subjects") if split == "person" else ds.manifest.get("test_sessions")
    if wanted and all(w in groups for w in wanted):
        held = list(wanted)
    else:  # people drawn by the seed until they cover every label (training.splits)
        held = choose_groups(ds.takes, key, ds.labels, TEST_FRACTION, rng).held
    test = [t for t in ds.takes if str(t.meta.get(key, "")) in held]
    train = [t for t in ds.takes if str(t.meta.get(key, "")) not in held]
    return train, test, held


def coverage_warning(test: list[Take], labels: list[str], what: str) -> str | None:
    """A test set without every label measures nothing about the missing ones (and one with a
    single label says nothing about confusions): say so rather than report a bare accuracy."""
    miss = missing_labels(test, labels)
    if not miss or not test:
        return None
    return (f"the test set ({what}) has no takes of label(s) {', '.join(miss)}: their accuracy is not measured"
            + (f" and every test take is '{test[0].label}'" if len({t.label for t in test}) == 1 else ""))


def _check_split(train: list[Take], test: list[Take], labels: list[str], split: str, n_skipped: int = 0) -> None:
    after = f" and {n_skipped} skipped take(s)" if n_skipped else ""
    hint = {"random": "record more takes", "person": "record more takes (from more people) or use --split random",
            "session": "record more takes (in more sessions) or use --split random",
            "category": "record more takes (in Edge Impulse's training category) or use --split random",
            }.get(split, "record more takes")
    for label in labels:
        n_train = sum(t.label == label for t in train)
        if n_train < 2:
            raise GestureError(f"label '{label}' has {n_train} training take(s) after the {split} split{after}; {hint}")
    if not test:
        raise GestureError(f"the {split} split{after} left no test takes")


def training_pool(ds: Dataset, split: str, held: list[str]) -> list[Take]:
    """The takes the model rate and window are chosen from: every take except declared test
    people (dataset.json test_subjects), so the choice is the same at every seed. With a split
    drawn by the seed (no declared test people) that is the whole dataset: only take durations
    are used, never labels or scores."""
    if split == "category":
        return [t for t in ds.takes if t.meta.get("category") != TESTING]
    wanted = ds.manifest.get("test_subjects")
    if split == "person" and wanted and list(wanted) == list(held):
        return [t for t in ds.takes if str(t.meta.get("subject", "")) not in set(held)]
    return ds.takes


def val_split(train: list[Take], seed: int) -> tuple[list[Take], list[Take]]:
    """Validation takes held out of training, for curves and threshold calibration.

    Person-wise when the takes name at least 3 people and every label has 10 takes (whole
    people, covering every label: live use is by people the model has not seen); otherwise
    stratified by label over takes (none for a label with fewer than 10 takes)."""
    rng = np.random.default_rng(seed + 1)
    labels = sorted({t.label for t in train})
    by_label: dict[str, list[Take]] = {}
    for t in train:
        by_label.setdefault(t.label, []).append(t)
    people = {str(t.meta.get("subject", "")) for t in train} - {""}
    if len(people) >= 3 and min(len(v) for v in by_label.values()) >= 10:
        choice = choose_groups(train, "subject", labels, VAL_FRACTION, np.random.default_rng(seed + 1), max_fraction=0.3)
        held = set(choice.held)
        val = [t for t in train if str(t.meta.get("subject", "")) in held]
        fit = [t for t in train if str(t.meta.get("subject", "")) not in held]
        if not choice.missing and not short_labels(fit, labels):
            return fit, val
    fit, val = [], []
    for label, takes in sorted(by_label.items()):
        idx = rng.permutation(len(takes))
        k = int(round(len(takes) * VAL_FRACTION)) if len(takes) >= 10 else 0
        val += [takes[i] for i in idx[:k]]
        fit += [takes[i] for i in idx[k:]]
    return fit, val


# ----------------------------------------------------------------------------- config

def choose_channels(takes: list[Take], channels: str) -> list[str]:
    if channels == "accel":
        return list(ACCEL_CHANNELS)
    if channels == "imu":
        lacking = [t for t in takes if tuple(t.channels) != ACCEL_CHANNELS + GYRO_CHANNELS]
        if lacking:
            raise GestureError(f"--channels imu needs gyro in every take; {lacking[0].path} has only {','.join(lacking[0].channels)}")
        return list(ACCEL_CHANNELS + GYRO_CHANNELS)
    raise GestureError(f"unknown --channels {channels!r}; expected accel or imu")


def motion_threshold(counts: list[np.ndarray], labels: list[str], unknown: str | None, channels: list[str]) -> int:
    """Live gate: a window whose largest per-sample motion is below this is idle (no inference).

    MOTION_FACTOR of the 5th percentile of the gesture takes' peak motion: every real gesture
    clears it with a wide margin, while a board lying still (noise only) does not.
    """
    peaks = [int(motion(c, channels).max()) for c, l in zip(counts, labels) if l != unknown and len(c) > 1]
    if not peaks:
        return MIN_MOTION_COUNTS
    return max(MIN_MOTION_COUNTS, int(MOTION_FACTOR * np.percentile(peaks, 5)))


def confidence_threshold(scores: np.ndarray, y: np.ndarray, unknown: int | None = None) -> int:
    """Largest threshold (0..255) that keeps KEEP_CORRECT of the correct gesture predictions.

    Calibrated on validation windows, plain and augmented (shifted, stretched, rotated: the live
    window rarely sits exactly on the motion centre). Predictions of the unknown class are left
    out: rejecting them changes nothing on the board.
    """
    if len(y) == 0:
        return 0
    pred = scores.argmax(1)
    conf = scores.max(1)
    ok = pred == y
    if unknown is not None:
        ok &= pred != unknown
    correct = conf[ok]
    if len(correct) == 0:
        return 0
    return int(np.floor(np.percentile(correct, (1 - KEEP_CORRECT) * 100)))


def rejection_stats(scores: np.ndarray, y: np.ndarray, threshold: int, unknown: int | None) -> dict[str, float]:
    """What the threshold does on the calibration windows: share of correct gesture predictions
    kept and of wrong gesture predictions turned into "unknown"."""
    pred, conf = scores.argmax(1), scores.max(1)
    gesture = pred != unknown if unknown is not None else np.ones(len(y), bool)
    right, wrong = gesture & (pred == y), gesture & (pred != y)
    return {"windows": int(len(y)),
            "kept_correct": float((conf[right] >= threshold).mean()) if right.any() else 1.0,
            "rejected_wrong": float((conf[wrong] < threshold).mean()) if wrong.any() else None,
            "n_wrong": int(wrong.sum())}


# ----------------------------------------------------------------------------- windows

@dataclass
class Windows:
    """Integer training/validation/test windows, exactly the board's preprocessing.

    Shared by :func:`train` and the baselines in ``bench/``, so every model compared sees the
    same takes, crops, augmentation and normalization.
    """

    cfg: PreprocessConfig
    x_fit: np.ndarray  # (n, window, C) int16 counts, plain crops and augmented copies
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_val_aug: np.ndarray  # validation takes, augmented: off-centre windows like the live ones
    y_val_aug: np.ndarray


def live_config(labels: list[str], channels: list[str], rate_hz: int, window: int,
                counts: dict[int, np.ndarray], fit_takes: list[Take]) -> PreprocessConfig:
    """The board's preprocessing settings before normalization: window, live stride and
    smoothing, the unknown class (a label named like 'negative'), the idle motion gate."""
    unknown = next((l for l in labels if l.lower() in UNKNOWN_NAMES), None)
    cfg = PreprocessConfig(labels=labels, channels=channels, model_rate_hz=rate_hz, window=window,
                           stride=max(1, rate_hz // 10), smoothing=3, unknown_label=unknown)
    cfg.motion_threshold = motion_threshold([counts[id(t)] for t in fit_takes], [t.label for t in fit_takes],
                                            unknown, channels)
    return cfg


def make_windows(cfg: PreprocessConfig, counts: dict[int, np.ndarray], fit_takes: list[Take],
                 val_takes: list[Take], test_takes: list[Take], augment: int, seed: int,
                 strength: float = 1.0) -> Windows:
    """Crop (and augment) every take; fix the normalization constants on the training crops."""
    from training.augment import augmented_window

    rng = np.random.default_rng(seed)
    index = {l: i for i, l in enumerate(cfg.labels)}
    chans = len(cfg.channels)

    def build(takes: list[Take], n_aug: int, plain: bool = True) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for t in takes:
            c = counts[id(t)]
            if plain:
                xs.append(crop_take(c, cfg))
                ys.append(index[t.label])
            for _ in range(n_aug):
                xs.append(augmented_window(c, cfg, rng, strength))
                ys.append(index[t.label])
        if not xs:
            return np.zeros((0, cfg.window, chans), np.int16), np.zeros(0, np.int64)
        return np.stack(xs), np.array(ys, dtype=np.int64)

    x_fit, y_fit = build(fit_takes, augment)
    plain = np.stack([crop_take(counts[id(t)], cfg) for t in fit_takes]).reshape(-1, chans)
    cfg = cfg.with_normalization(plain.mean(0), plain.std(0))
    x_val, y_val = build(val_takes, 0)
    x_test, y_test = build(test_takes, 0)
    x_val_aug, y_val_aug = build(val_takes, VAL_AUGMENT, plain=False)
    return Windows(cfg, x_fit, y_fit, x_val, y_val, x_test, y_test, x_val_aug, y_val_aug)


@dataclass
class Prepared:
    """A dataset split and windowed, every user-data check passed; no TensorFlow imported yet."""

    ds: Dataset
    split: str
    held: list[str]
    fit_takes: list[Take]
    val_takes: list[Take]
    test_takes: list[Take]
    windows: Windows
    warnings: list[str]
    plan: Plan
    unscored: list[Take] = field(default_factory=list)  # --test takes of labels the training set lacks

    @property
    def cfg(self) -> PreprocessConfig:
        return self.windows.cfg


def prepare(data: str | Path, *, test: str | Path | None = None, split: str | None = None, seed: int = 0,
            rate_hz: int | None = None, window: int | None = None, channels: str = "accel",
            augment: int = DEFAULTS["augment"], limit_per_label: int | None = None,
            quiet: bool = False, augment_strength: float = 1.0) -> Prepared:
    """Load, validate, split and window a dataset. Raises GestureError for bad input."""
    ds = load_dataset(data)
    warnings = validate(ds)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr, flush=True)  # data warnings stay visible under --quiet
    unscored: list[Take] = []
    if test is not None:
        test_ds = load_dataset(test, min_labels=1)
        extra = sorted(set(test_ds.labels) - set(ds.labels))
        test_takes = test_ds.takes
        if extra:  # the model cannot predict them: score the shared labels, say how many were left out
            unscored = [t for t in test_takes if t.label in extra]
            test_takes = [t for t in test_takes if t.label not in extra]
            if not test_takes:
                raise GestureError(f"test set {test} has no take of a label the training set {data} has: its labels are "
                                   f"{test_ds.labels}, the model can only predict {ds.labels}")
            msg = (f"test set {test}: {len(unscored)} take(s) labelled {', '.join(extra)}, a label the training set {data} "
                   f"lacks, are not scored (the model can only predict {', '.join(ds.labels)}); the test scores the "
                   f"{len(test_takes)} take(s) of the shared labels")
            print(f"warning: {msg}", file=sys.stderr, flush=True)
            warnings.append(msg)
        train_takes, held, split_name = ds.takes, [], f"test set {test}"
        shared = shared_takes(train_takes, test_takes)
        if shared:
            warnings.append(f"--test {test}: {len(shared)} of {len(test_takes)} test takes are also training takes "
                            f"(the same samples, e.g. {shared[0].path}): the test accuracy will be inflated; test on "
                            "takes recorded apart (other people or sessions)")
            print(f"warning: {warnings[-1]}", file=sys.stderr, flush=True)
    else:
        split_name = split or default_split(ds)
        if split_name not in SPLITS:
            raise GestureError(f"unknown --split {split_name!r}; expected {', '.join(SPLITS)}")
        train_takes, test_takes, held = split_takes(ds, split_name, seed)
    what = (f"{split_name}: {', '.join(held)}" if held else split_name)
    cover = coverage_warning(test_takes, ds.labels, what)
    if cover:
        print(f"warning: {cover}", file=sys.stderr, flush=True)
        warnings.append(cover)
    plan_takes = training_pool(ds, split_name, held) if test is None else ds.takes
    p = prepare_takes(ds, train_takes, test_takes, split_name=split_name, held=held, seed=seed,
                      plan_takes=plan_takes, rate_hz=rate_hz, window=window, channels=channels, augment=augment,
                      limit_per_label=limit_per_label, quiet=quiet, warnings=warnings,
                      augment_strength=augment_strength)
    if rate_hz or window:  # chosen by hand: say when it cannot fit the gestures (the data's own choice does)
        for note in plan_notes(p.plan, plan_takes, rate_given=bool(rate_hz), window_given=bool(window)):
            print(f"warning: {note}", file=sys.stderr, flush=True)
            p.warnings.append(note)
    p.unscored = unscored
    return p


def shared_takes(train: list[Take], test: list[Take]) -> list[Take]:
    """Test takes whose samples are also a training take's (the same folder, or a copy of it)."""
    import hashlib

    def key(t: Take) -> str:
        return hashlib.sha256(np.ascontiguousarray(t.values).tobytes()).hexdigest()

    seen = {key(t) for t in train}
    return [t for t in test if key(t) in seen]


def plan_notes(plan: Plan, takes: list[Take], *, rate_given: bool, window_given: bool) -> list[str]:
    """What is wrong with a hand-chosen --rate/--window for these takes: a rate above the data's
    (the board's IMU gives no more samples; the model would learn interpolation) and a window that
    sees less than half of a typical gesture (90th percentile take length)."""
    from training.plan import gesture_seconds

    notes = []
    src = plan.source_rate_hz
    if rate_given and src > 0 and plan.rate_hz > src * 1.05:
        notes.append(f"--rate {plan.rate_hz} is above the data's {src:g} Hz: the model learns interpolated samples "
                     "(the data's rate or lower keeps what was measured)")
    gesture = gesture_seconds(takes, src)
    span = plan.window / plan.rate_hz
    if gesture > 0 and span < 0.5 * gesture:
        given = " and ".join(o for o, g in (("--rate", rate_given), ("--window", window_given)) if g)
        notes.append(f"{given}: the window of {plan.window} samples at {plan.rate_hz} Hz covers {span:.3g} s of a "
                     f"{gesture:.2g} s gesture (90th percentile take); lower --rate or raise --window "
                     "(or leave them to the data)")
    return notes


def prepare_takes(ds: Dataset, train_takes: list[Take], test_takes: list[Take], *, split_name: str,
                  held: list[str] | None = None, seed: int = 0, rate_hz: int | None = None,
                  window: int | None = None, channels: str = "accel", augment: int = DEFAULTS["augment"],
                  limit_per_label: int | None = None, quiet: bool = False,
                  warnings: list[str] | None = None, plan_takes: list[Take] | None = None,
                  augment_strength: float = 1.0, announce_skips: bool = True) -> Prepared:
    """Window given train/test takes (a split, or a cross-validation fold of ``gesture tune``).

    The model rate and window come from ``plan_takes`` (default ``train_takes``; see
    :func:`training_pool`) unless given;
    takes that cannot be learnt from are skipped and listed, never a reason to refuse the
    dataset unless too little is left.
    """
    warnings = list(warnings or [])
    labels = ds.labels
    chans = choose_channels(train_takes + test_takes, channels)
    plan = make_plan(plan_takes if plan_takes is not None else train_takes, train_takes + test_takes,
                     rate_hz=rate_hz, window=window)
    win, rate = plan.window, plan.rate_hz
    skipped_ids = {id(s.take) for s in plan.skipped}
    total = len(train_takes) + len(test_takes)
    if len(plan.skipped) > MAX_SKIPPED_FRACTION * total:
        ex = plan.skipped[0]
        raise GestureError(f"{len(plan.skipped)} of {total} take(s) cannot be learnt from, only {total - len(plan.skipped)} left "
                           f"(e.g. {ex.take.path}: {ex.reason}); record longer takes or pass a smaller --window")
    if plan.skipped and announce_skips:  # gesture tune: its final training says it, not every fold
        print(f"warning: {plan.summary()}", file=sys.stderr, flush=True)
        for sk in plan.skipped[:10]:
            _log(quiet, f"  skipped {sk.take.path}: {sk.reason}")
        if len(plan.skipped) > 10:
            _log(quiet, f"  ... and {len(plan.skipped) - 10} more")
        warnings.append(plan.summary())
    train_takes = [t for t in train_takes if id(t) not in skipped_ids]
    test_takes = [t for t in test_takes if id(t) not in skipped_ids]
    if limit_per_label:
        train_takes = _limit(train_takes, limit_per_label, seed)
        test_takes = _limit(test_takes, max(2, limit_per_label // 3), seed)
    _check_split(train_takes, test_takes, labels, split_name, len(plan.skipped))
    fit_takes, val_takes = val_split(train_takes, seed)

    cfg = PreprocessConfig(labels=labels, channels=chans, model_rate_hz=rate)
    counts = {id(t): take_counts(t, cfg, rate_hz=t.rate_hz or plan.source_rate_hz)
              for t in fit_takes + val_takes + test_takes}
    w = make_windows(live_config(labels, chans, rate, win, counts, fit_takes), counts, fit_takes,
                     val_takes, test_takes, augment, seed, augment_strength)
    _log(quiet, f"{len(fit_takes)} training takes -> {len(w.x_fit)} windows of {win} x {len(chans)} at {rate} Hz "
                f"(source {plan.source_rate_hz:g} Hz); {len(val_takes)} validation, {len(test_takes)} test takes ({split_name} split"
                + (f": {', '.join(held or [])}" if held else "") + ")")
    return Prepared(ds, split_name, list(held or []), fit_takes, val_takes, test_takes, w, warnings, plan)


# ----------------------------------------------------------------------------- fitting

def fit_model(model, w: Windows, *, epochs: int, batch: int = DEFAULTS["batch"],
              learning_rate: float = DEFAULTS["learning_rate"], quiet: bool = False,
              reshape: tuple[int, ...] | None = None, balance_classes: bool = False):
    """Compile and fit ``model`` on the normalized windows (Adam, cosine-decayed learning rate).

    ``reshape`` gives a baseline its published input shape (per window, without the batch).
    Returns the Keras History.
    """
    import keras

    from training.progress import EpochProgress, StopOnInterrupt

    def inputs(x: np.ndarray) -> np.ndarray:
        z = normalize(x, w.cfg)
        return z.reshape((len(z), *reshape)) if reshape else z

    steps = max(1, epochs * int(np.ceil(len(w.y_fit) / batch)))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    val = (inputs(w.x_val), w.y_val) if len(w.y_val) else None
    weights = None
    if balance_classes:  # each label weighs the same in the loss, however many takes it has
        counts = np.bincount(w.y_fit, minlength=len(w.cfg.labels))
        weights = {i: float(len(w.y_fit) / (len(counts) * c)) for i, c in enumerate(counts) if c}
    check_interrupt()
    history = model.fit(inputs(w.x_fit), w.y_fit, epochs=epochs, batch_size=batch, validation_data=val, verbose=0,
                        shuffle=True, callbacks=[StopOnInterrupt(), *([] if quiet else [EpochProgress(epochs)])],
                        class_weight=weights)
    check_interrupt()  # a Ctrl-C stopped the fit after a batch: leave here, from the kit's code
    return history


@dataclass
class Evaluated:
    """A fitted Keras model, its int8 conversion and how both do on the test windows."""

    model: Any
    history: dict[str, list[float]]
    int8: Any  # training.quantize.Int8Model
    cfg: PreprocessConfig  # with the converter's input quantization folded in
    scores_test: np.ndarray  # u8 scores of the int8 model in TFLM, (n_test, classes)
    float_test: np.ndarray  # float model probabilities, (n_test, classes)
    arena: int
    timings: dict[str, float]


def fit_and_evaluate(model, w: Windows, *, epochs: int, seed: int = 0, batch: int = DEFAULTS["batch"],
                     learning_rate: float = DEFAULTS["learning_rate"], quiet: bool = False,
                     input_shape: tuple[int, ...] | None = None, measure_arena: bool = True,
                     balance_classes: bool = False) -> Evaluated:
    """Fit -> full-int8 conversion -> test windows through the board's integer input
    quantization and the TFLM interpreter -> smallest arena. The one path every model takes,
    ours and the baselines in ``bench/``, so their figures compare like for like."""
    from training.evaluate import int8_scores, smallest_arena
    from training.quantize import to_int8

    timings: dict[str, float] = {}
    t = time.monotonic()
    hist = fit_model(model, w, epochs=epochs, batch=batch, learning_rate=learning_rate, quiet=quiet,
                     reshape=input_shape, balance_classes=balance_classes)
    timings["fit"] = time.monotonic() - t

    def inputs(x: np.ndarray) -> np.ndarray:
        z = normalize(x, w.cfg)
        return z.reshape((len(z), *input_shape)) if input_shape else z

    _log(quiet, "converting to full int8 and evaluating in the TFLM interpreter ...")
    t = time.monotonic()
    q = to_int8(model, inputs(w.x_fit), seed=seed)
    check_interrupt()
    cfg = w.cfg.with_input_quant(q.input_scale, q.input_zero_point)
    timings["convert"] = time.monotonic() - t
    t = time.monotonic()
    s_test = int8_scores(q.tflite, w.x_test, cfg)
    n_classes = len(cfg.labels)
    f_test = (model.predict(inputs(w.x_test), verbose=0, batch_size=256) if len(w.y_test)
              else np.zeros((0, n_classes), np.float32))
    timings["evaluate"] = time.monotonic() - t
    t = time.monotonic()
    arena = smallest_arena(q.tflite) if measure_arena else 0  # tune measures it once per candidate
    timings["arena"] = time.monotonic() - t
    history = {k: [round(float(v), 5) for v in vals] for k, vals in hist.history.items()}
    return Evaluated(model, history, q, cfg, s_test, f_test, int(arena), timings)


# ----------------------------------------------------------------------------- main entry

def train(data: str | Path, out: str | Path, *, test: str | Path | None = None, split: str | None = None,
          epochs: int = DEFAULTS["epochs"], seed: int = 0, rate_hz: int | None = None,
          window: int | None = None, channels: str = "accel", augment: int = DEFAULTS["augment"],
          limit_per_label: int | None = None, quiet: bool = False,
          architecture: dict[str, Any] | None = None, extra_report: dict[str, Any] | None = None,
          augment_strength: float = 1.0) -> TrainResult:
    """Train, quantize, evaluate and write MODEL_DIR. Raises GestureError for bad input.

    ``architecture``: keyword arguments of ``training.model.build_model`` (family, filters,
    kernels; ``gesture tune`` passes the chosen candidate's); ``extra_report``: merged into
    report.json (the tuner's search summary)."""
    t_start = time.monotonic()
    timings: dict[str, float] = {}
    out = check_target(out)  # an --out that a model folder would overwrite is refused before any work
    # ---- split and windows (every user-data check, before any TensorFlow)
    p = prepare(data, test=test, split=split, seed=seed, rate_hz=rate_hz, window=window, channels=channels,
                augment=augment, limit_per_label=limit_per_label, quiet=quiet, augment_strength=augment_strength)
    w, labels, chans, win = p.windows, p.cfg.labels, p.cfg.channels, p.cfg.window
    timings["prepare"] = time.monotonic() - t_start

    # ---- float model -> int8 -> TFLM
    t = time.monotonic()
    quiet_tensorflow_logs()
    import keras
    import tensorflow as tf

    from training.evaluate import board_arena, cmsis_conv_scratch, int8_scores
    from training.model import DEFAULT_ARCHITECTURE, build_model, check_layers, count_macs

    keras.utils.set_random_seed(seed)
    model = build_model(win, len(chans), len(labels), **(architecture or {}))
    check_layers(model)
    timings["import"] = time.monotonic() - t
    e = fit_and_evaluate(model, w, epochs=epochs, seed=seed, quiet=quiet)
    timings.update(e.timings)
    cfg, q, s_test = e.cfg, e.int8, e.scores_test
    pred_int8, pred_float = s_test.argmax(1), e.float_test.argmax(1)

    # ---- live rejection threshold, calibrated on validation windows
    t = time.monotonic()
    s_val = int8_scores(q.tflite, np.concatenate([w.x_val, w.x_val_aug]), cfg)
    y_cal = np.concatenate([w.y_val, w.y_val_aug])
    unknown_idx = labels.index(cfg.unknown_label) if cfg.unknown_label else None
    cfg.confidence_threshold = confidence_threshold(s_val, y_cal, unknown_idx)
    rejection = rejection_stats(s_val, y_cal, cfg.confidence_threshold, unknown_idx)
    timings["calibrate"] = time.monotonic() - t

    from training.report import confusion, per_class, report_files

    cm = confusion(w.y_test, pred_int8, len(labels))
    import tflite_micro
    ds = p.ds
    report: dict[str, Any] = {
        "dataset": str(Path(data).resolve()),  # absolute: the dashboard reads it from another directory
        # takes of the simulated hand (capture/virtual/hand.py), not recordings: said in every report
        "simulated": bool(ds.manifest.get("simulated")) or any(t.meta.get("simulated") for t in ds.takes),
        "labels": labels,
        "split": p.split,
        "test_subjects": p.held,
        "n_train": len(p.fit_takes),
        "n_train_windows": int(len(w.x_fit)),
        "n_val": len(p.val_takes),
        "n_test": len(p.test_takes),
        "test_unscored": [{"take": _rel(t, Path(test) if test is not None else ds.root), "label": t.label}
                          for t in p.unscored],
        "float_accuracy": float((pred_float == w.y_test).mean()),
        "int8_accuracy": float((pred_int8 == w.y_test).mean()),
        "float_int8_agreement": float((pred_float == pred_int8).mean()),
        "per_class": per_class(cm, labels),
        "confusion_matrix": cm.tolist(),
        "model_bytes": len(q.tflite),
        "arena_bytes": e.arena,
        "arena_board_bytes": board_arena(e.arena, cmsis_conv_scratch(model)),
        "macs": count_macs(model),
        "params": int(model.count_params()),
        "ops": q.ops,
        "window": win,
        "model_rate_hz": int(p.cfg.model_rate_hz),
        "source_rate_hz": p.plan.source_rate_hz,
        "architecture": {**DEFAULT_ARCHITECTURE, **(architecture or {})},
        "skipped_takes": [{"take": _rel(sk.take, ds.root),
                           "label": sk.take.label, "reason": sk.reason} for sk in p.plan.skipped],
        "data_warnings": p.warnings,
        "channels": chans,
        "epochs": epochs,
        "augment": augment,
        "augment_strength": augment_strength,
        "seed": seed,
        "confidence_threshold": cfg.confidence_threshold,
        "rejection_validation": rejection,
        "motion_threshold": cfg.motion_threshold,
        "input_quantization": [q.input_scale, q.input_zero_point],
        "fit_seconds": round(e.timings["fit"], 2),
        "train_seconds": 0.0,
        "timings": {},
        "tensorflow_version": tf.__version__,
        "tflite_micro_version": getattr(tflite_micro, "__version__", "unknown"),
        "history": e.history,
        "test_predictions": [
            {"take": _rel(tk, ds.root if test is None else Path(test)), "label": tk.label,
             "pred": labels[int(pr)], "scores": [int(v) for v in sc]}
            for tk, pr, sc in zip(p.test_takes, pred_int8, s_test)
        ],
    }

    # ---- write MODEL_DIR as a whole (training.model_dir: a kill leaves the old folder intact)
    t = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "model.keras")
        keras_bytes = (Path(tmp) / "model.keras").read_bytes()
    timings["write"] = time.monotonic() - t
    report.update(extra_report or {})
    report["timings"] = {k: round(v, 2) for k, v in timings.items()}
    report["train_seconds"] = round(time.monotonic() - t_start, 2)
    check_interrupt()  # not after a Ctrl-C: the previous model folder stays
    report = write_model_dir(out, tflite=q.tflite, keras=keras_bytes, cfg=cfg, report=report,
                             extra=report_files(report, cm, report["history"]))
    _log(quiet, f"float {report['float_accuracy']:.1%}, int8 (TFLM) {report['int8_accuracy']:.1%}, "
                f"{report['model_bytes']:,} bytes, arena {e.arena:,} bytes -> {out}")
    return TrainResult(out, report, cfg, p.warnings)


def _rel(t: Take, root: Path) -> str:
    try:
        return str(Path(t.path).resolve().relative_to(Path(root).resolve()))
    except (ValueError, TypeError):
        return str(t.path)


def _limit(takes: list[Take], n: int, seed: int) -> list[Take]:
    """At most n takes per label (tests and quick runs)."""
    rng = np.random.default_rng(seed)
    out: list[Take] = []
    by: dict[str, list[Take]] = {}
    for t in takes:
        by.setdefault(t.label, []).append(t)
    for label, ts in sorted(by.items()):
        idx = rng.permutation(len(ts))[:n]
        out += [ts[i] for i in sorted(idx)]
    return out
