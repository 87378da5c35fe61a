"""``gesture train``: dataset in, a board-ready int8 model and its report out.

Order of work: every check that can fail on the user's data runs before TensorFlow is even
imported (seconds, not minutes, to learn that a label has too few takes). Then: windows ->
float Keras model -> full-int8 conversion -> evaluation of the int8 bytes in the TFLM interpreter
on the board's own integer preprocessing -> calibration of the live rejection threshold ->
arena measurement -> MODEL_DIR.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import GestureError
from capture.takes import ACCEL_CHANNELS, GYRO_CHANNELS, Take, atomic_write_bytes, atomic_write_text
from training.dataset import Dataset, load_dataset, validate
from training.preprocess import (CONFIG_NAME, PreprocessConfig, crop_take, motion, normalize,
                                 quantize_input, scores_u8, take_counts)

UNKNOWN_NAMES = ("negative", "unknown", "idle", "none", "other")
MIN_WINDOW_FRACTION = 0.25  # a take shorter than this part of the window is too short to learn from
VAL_FRACTION = 0.1
TEST_FRACTION = 0.2
KEEP_CORRECT = 0.97  # the live threshold keeps this share of correct validation predictions
MOTION_FACTOR = 0.25  # live gate: this fraction of the quietest gesture's peak motion
MIN_MOTION_COUNTS = 150  # never gate below sensor noise (about 18 mg summed over 3 axes)
DEFAULTS = {"epochs": 30, "augment": 8, "batch": 64, "learning_rate": 3e-3, "rate": 25}


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


def split_takes(ds: Dataset, split: str, seed: int) -> tuple[list[Take], list[Take], list[str]]:
    """(train, test, held-out group names). Person/session splits keep whole people out."""
    rng = np.random.default_rng(seed)
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
    else:
        order = [named[i] for i in rng.permutation(len(named))]
        held, n = [], 0
        for g in order:
            if n >= TEST_FRACTION * len(ds.takes):
                break
            held.append(g)
            n += len(groups[g])
    test = [t for t in ds.takes if str(t.meta.get(key, "")) in held]
    train = [t for t in ds.takes if str(t.meta.get(key, "")) not in held]
    return train, test, held


def _check_split(train: list[Take], test: list[Take], labels: list[str], split: str) -> None:
    for label in labels:
        n_train = sum(t.label == label for t in train)
        if n_train < 2:
            raise GestureError(f"label '{label}' has {n_train} training take(s) after the {split} split; "
                               "record more takes (from more people for a person split) or use --split random")
    if not test:
        raise GestureError(f"the {split} split left no test takes")


def _val_split(train: list[Take], seed: int) -> tuple[list[Take], list[Take]]:
    """Stratified validation takes, held out of training, for curves and threshold calibration."""
    rng = np.random.default_rng(seed + 1)
    fit, val = [], []
    by_label: dict[str, list[Take]] = {}
    for t in train:
        by_label.setdefault(t.label, []).append(t)
    for label, takes in sorted(by_label.items()):
        idx = rng.permutation(len(takes))
        k = int(round(len(takes) * VAL_FRACTION)) if len(takes) >= 10 else 0
        val += [takes[i] for i in idx[:k]]
        fit += [takes[i] for i in idx[k:]]
    return fit, val


# ----------------------------------------------------------------------------- config

def choose_channels(ds: Dataset, channels: str) -> list[str]:
    if channels == "accel":
        return list(ACCEL_CHANNELS)
    if channels == "imu":
        lacking = [t for t in ds.takes if tuple(t.channels) != ACCEL_CHANNELS + GYRO_CHANNELS]
        if lacking:
            raise GestureError(f"--channels imu needs gyro in every take; {lacking[0].path} has only {','.join(lacking[0].channels)}")
        return list(ACCEL_CHANNELS + GYRO_CHANNELS)
    raise GestureError(f"unknown --channels {channels!r}; expected accel or imu")


def default_window(lengths: list[int]) -> int:
    """90th percentile of take length at the model rate, up to a multiple of 8, within 16..256."""
    w = int(np.ceil(np.percentile(lengths, 90) / 8.0) * 8)
    return int(min(max(w, 16), 256))


def motion_threshold(counts: list[np.ndarray], labels: list[str], unknown: str | None, channels: list[str]) -> int:
    """Live gate: a window whose largest per-sample motion is below this is idle (no inference).

    MOTION_FACTOR of the 5th percentile of the gesture takes' peak motion: every real gesture
    clears it with a wide margin, while a board lying still (noise only) does not.
    """
    peaks = [int(motion(c, channels).max()) for c, l in zip(counts, labels) if l != unknown and len(c) > 1]
    if not peaks:
        return MIN_MOTION_COUNTS
    return max(MIN_MOTION_COUNTS, int(MOTION_FACTOR * np.percentile(peaks, 5)))


def confidence_threshold(scores: np.ndarray, y: np.ndarray) -> int:
    """Largest threshold that keeps KEEP_CORRECT of the correct validation predictions."""
    if len(y) == 0:
        return 0
    pred = scores.argmax(1)
    conf = scores.max(1)
    correct = conf[pred == y]
    if len(correct) == 0:
        return 0
    return int(np.floor(np.percentile(correct, (1 - KEEP_CORRECT) * 100)))


# ----------------------------------------------------------------------------- main entry

def train(data: str | Path, out: str | Path, *, test: str | Path | None = None, split: str | None = None,
          epochs: int = DEFAULTS["epochs"], seed: int = 0, rate_hz: int = DEFAULTS["rate"],
          window: int | None = None, channels: str = "accel", augment: int = DEFAULTS["augment"],
          limit_per_label: int | None = None, quiet: bool = False) -> TrainResult:
    """Train, quantize, evaluate and write MODEL_DIR. Raises GestureError for bad input."""
    t_start = time.monotonic()
    out = Path(out)
    ds = load_dataset(data)
    warnings = validate(ds)
    for w in warnings:
        _log(quiet, f"warning: {w}")
    labels = ds.labels
    chans = choose_channels(ds, channels)

    # ---- split (before any TensorFlow)
    if test is not None:
        test_ds = load_dataset(test, min_labels=1)
        extra = sorted(set(test_ds.labels) - set(labels))
        if extra:
            raise GestureError(f"test set {test} has label(s) {extra} that the training set {data} lacks; the model can only predict {labels}")
        train_takes, test_takes, held, split_name = ds.takes, test_ds.takes, [], f"test set {test}"
    else:
        split_name = split or ("person" if ds.subjects() else "random")
        if split_name not in ("person", "session", "random"):
            raise GestureError(f"unknown --split {split_name!r}; expected person, session or random")
        train_takes, test_takes, held = split_takes(ds, split_name, seed)
    if limit_per_label:
        train_takes = _limit(train_takes, limit_per_label, seed)
        test_takes = _limit(test_takes, max(2, limit_per_label // 3), seed)
    _check_split(train_takes, test_takes, labels, split_name)
    fit_takes, val_takes = _val_split(train_takes, seed)

    # ---- windows (integer, exactly the board's preprocessing)
    cfg = PreprocessConfig(labels=labels, channels=chans, model_rate_hz=int(rate_hz))
    counts = {id(t): take_counts(t, cfg) for t in fit_takes + val_takes + test_takes}
    win = window or default_window([len(counts[id(t)]) for t in fit_takes])
    short = [t for t in fit_takes + val_takes + test_takes if len(counts[id(t)]) < MIN_WINDOW_FRACTION * win]
    if short:
        names = ", ".join(str(t.path) for t in short[:3])
        raise GestureError(f"{len(short)} take(s) are shorter than a quarter of the {win}-sample window "
                           f"({win / rate_hz:.1f} s), e.g. {names}; record longer takes or pass a smaller --window")
    unknown = next((l for l in labels if l.lower() in UNKNOWN_NAMES), None)
    cfg = PreprocessConfig(labels=labels, channels=chans, model_rate_hz=int(rate_hz), window=win,
                           stride=max(1, int(rate_hz) // 10), smoothing=3, unknown_label=unknown)
    cfg.motion_threshold = motion_threshold([counts[id(t)] for t in fit_takes], [t.label for t in fit_takes], unknown, chans)

    from training.augment import augmented_window

    rng = np.random.default_rng(seed)
    index = {l: i for i, l in enumerate(labels)}
    x_fit, y_fit = [], []
    for t in fit_takes:
        c = counts[id(t)]
        x_fit.append(crop_take(c, cfg))
        y_fit.append(index[t.label])
        for _ in range(augment):
            x_fit.append(augmented_window(c, cfg, rng))
            y_fit.append(index[t.label])
    x_fit_a, y_fit_a = np.stack(x_fit), np.array(y_fit)
    plain = x_fit_a[:: augment + 1]
    cfg = cfg.with_normalization(plain.reshape(-1, len(chans)).mean(0), plain.reshape(-1, len(chans)).std(0))

    def windows(takes: list[Take]) -> tuple[np.ndarray, np.ndarray]:
        if not takes:
            return np.zeros((0, win, len(chans)), np.int16), np.zeros(0, np.int64)
        return np.stack([crop_take(counts[id(t)], cfg) for t in takes]), np.array([index[t.label] for t in takes])

    x_val, y_val = windows(val_takes)
    x_test, y_test = windows(test_takes)
    _log(quiet, f"{len(fit_takes)} training takes -> {len(x_fit_a)} windows of {win} x {len(chans)} at {rate_hz} Hz; "
                f"{len(val_takes)} validation, {len(test_takes)} test takes ({split_name} split"
                + (f": {', '.join(held)}" if held else "") + ")")

    # ---- float model
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    from training.model import build_model, check_layers, count_macs
    from training.progress import EpochProgress

    keras.utils.set_random_seed(seed)
    model = build_model(win, len(chans), len(labels))
    check_layers(model)
    model.compile(optimizer=keras.optimizers.Adam(DEFAULTS["learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t_fit = time.monotonic()
    val_data = (normalize(x_val, cfg), y_val) if len(y_val) else None
    hist = model.fit(normalize(x_fit_a, cfg), y_fit_a, epochs=epochs, batch_size=DEFAULTS["batch"],
                     validation_data=val_data, verbose=0, shuffle=True,
                     callbacks=[] if quiet else [EpochProgress(epochs)])
    fit_seconds = time.monotonic() - t_fit

    # ---- int8 + TFLM evaluation
    from training.evaluate import TflmModel, board_arena, cmsis_conv_scratch, smallest_arena
    from training.quantize import to_int8

    _log(quiet, "converting to full int8 and evaluating in the TFLM interpreter ...")
    q = to_int8(model, normalize(x_fit_a, cfg), seed=seed)
    cfg = cfg.with_input_quant(q.input_scale, q.input_zero_point)
    tflm = TflmModel(q.tflite)

    def int8_scores(x: np.ndarray) -> np.ndarray:
        return np.stack([scores_u8(tflm.predict(quantize_input(w, cfg))) for w in x]) if len(x) else np.zeros((0, len(labels)), np.uint8)

    s_test = int8_scores(x_test)
    s_val = int8_scores(x_val)
    f_test = model.predict(normalize(x_test, cfg), verbose=0, batch_size=256)
    pred_int8, pred_float = s_test.argmax(1), f_test.argmax(1)
    cfg.confidence_threshold = confidence_threshold(s_val, y_val)
    arena = smallest_arena(q.tflite)

    from training.report import confusion, per_class, write_report

    cm = confusion(y_test, pred_int8, len(labels))
    import tflite_micro
    report: dict[str, Any] = {
        "dataset": str(data),
        "labels": labels,
        "split": split_name,
        "test_subjects": held,
        "n_train": len(fit_takes),
        "n_train_windows": int(len(x_fit_a)),
        "n_val": len(val_takes),
        "n_test": len(test_takes),
        "float_accuracy": float((pred_float == y_test).mean()),
        "int8_accuracy": float((pred_int8 == y_test).mean()),
        "float_int8_agreement": float((pred_float == pred_int8).mean()),
        "per_class": per_class(cm, labels),
        "confusion_matrix": cm.tolist(),
        "model_bytes": len(q.tflite),
        "arena_bytes": int(arena),
        "arena_board_bytes": board_arena(arena, cmsis_conv_scratch(model)),
        "macs": count_macs(model),
        "params": int(model.count_params()),
        "ops": q.ops,
        "window": win,
        "model_rate_hz": int(rate_hz),
        "channels": chans,
        "epochs": epochs,
        "seed": seed,
        "confidence_threshold": cfg.confidence_threshold,
        "motion_threshold": cfg.motion_threshold,
        "input_quantization": [q.input_scale, q.input_zero_point],
        "fit_seconds": round(fit_seconds, 2),
        "train_seconds": 0.0,
        "tensorflow_version": tf.__version__,
        "tflite_micro_version": getattr(tflite_micro, "__version__", "unknown"),
        "history": {k: [round(float(v), 5) for v in vals] for k, vals in hist.history.items()},
        "test_predictions": [
            {"take": _rel(t, ds.root if test is None else Path(test)), "label": t.label,
             "pred": labels[int(p)], "scores": [int(v) for v in s]}
            for t, p, s in zip(test_takes, pred_int8, s_test)
        ],
    }

    # ---- write MODEL_DIR (each file atomically; report last, so a report means a complete dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "model.tflite", q.tflite)
    model.save(out / ".model.keras.tmp.keras")
    os.replace(out / ".model.keras.tmp.keras", out / "model.keras")
    atomic_write_text(out / CONFIG_NAME, cfg.to_json())
    atomic_write_text(out / "labels.txt", "\n".join(labels) + "\n")
    report["train_seconds"] = round(time.monotonic() - t_start, 2)
    write_report(out, report, cm, report["history"])
    _log(quiet, f"float {report['float_accuracy']:.1%}, int8 (TFLM) {report['int8_accuracy']:.1%}, "
                f"{report['model_bytes']:,} bytes, arena {arena:,} bytes -> {out}")
    return TrainResult(out, report, cfg, warnings)


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
