"""Training benchmark on data variants: does the out-of-the-box `gesture train` (no --window, no
--rate) still train when the data does not look like data/magic_wand?

Variants made from data/magic_wand (person split, its declared test people; nothing here is
tuned on them):

* ``magic_wand``        as bundled (25 Hz, accel)
* ``100 Hz`` / ``119 Hz`` every take resampled (cubic spline of the g values) to the rates of
  the Nano 33 BLE Rev2 / Rev1 IMUs: the model rate and the anti-alias filter now matter
* ``shortened``         every take cut to 35-65 % of its length around its motion centre, plus a
  few 1-sample and 3-sample takes (what real exports contain): skipped, never a refusal
* ``6-channel``         gyro synthesized from the accelerometer (the rotation rate a wrist would
  need to tilt the gravity vector that fast, clipped to ±500 dps): the imu model path

For each: our default model and both baselines (training/baselines.py) on the same windows, the
same fit -> int8 -> TFLM path. Prints Markdown on stdout, progress on stderr.

    python bench/bench_training_variants.py [--epochs N] [--only NAME]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import log, magic_wand, tflm_tree  # first: puts ROOT on sys.path for the kit's imports below

from capture.takes import Take, read_takes, save_takes
from training.train import DEFAULTS

MAGIC = magic_wand()


def _save(root: Path, takes: list[Take], manifest: dict) -> Path:
    save_takes(root, takes)
    import json

    m = json.loads((root / "dataset.json").read_text())
    for k in ("test_subjects", "split_note"):
        if k in manifest:
            m[k] = manifest[k]
    (root / "dataset.json").write_text(json.dumps(m, indent=1))
    return root


def resampled(takes: list[Take], rate: float) -> list[Take]:
    from scipy.interpolate import CubicSpline

    out = []
    for t in takes:
        src = t.rate_hz or 25.0
        tt = np.arange(t.n) / src
        n = max(2, int((t.n - 1) * rate / src) + 1)
        new_t = np.arange(n) / rate
        v = CubicSpline(tt, t.values, axis=0)(new_t) if t.n >= 4 else np.repeat(t.values[:1], n, axis=0)
        meta = {k: v2 for k, v2 in t.meta.items() if k != "rate_hz"}
        meta["rate_hz"] = rate
        out.append(Take(t.label, new_t * 1000.0, v, t.channels, meta))
    return out


def shortened(takes: list[Take], seed: int = 0) -> list[Take]:
    rng = np.random.default_rng(seed)
    out = []
    for t in takes:
        e = np.abs(np.diff(t.values, axis=0)).sum(1)
        c = int((np.arange(len(e)) * e).sum() / max(e.sum(), 1e-9))
        keep = max(2, int(t.n * rng.uniform(0.35, 0.65)))
        start = min(max(c - keep // 2, 0), t.n - keep)
        out.append(Take(t.label, t.t_ms[start:start + keep] - t.t_ms[start], t.values[start:start + keep], t.channels,
                        dict(t.meta)))
    for i, k in enumerate((1, 1, 3, 3)):  # the odd takes real exports hold
        t = takes[i * 97 % len(takes)]
        out.append(Take(t.label, t.t_ms[:k] - t.t_ms[0], t.values[:k], t.channels, dict(t.meta)))
    return out


def six_channel(takes: list[Take]) -> list[Take]:
    out = []
    for t in takes:
        src = t.rate_hz or 25.0
        a = t.values[:, :3]
        u = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-6)
        du = np.gradient(u, axis=0) * src  # 1/s
        w = np.degrees(np.cross(u, du))  # rotation rate that turns u like that (dps)
        gyro = np.clip(w, -500, 500)
        out.append(Take(t.label, t.t_ms, np.hstack([a, gyro]), ("ax", "ay", "az", "gx", "gy", "gz"), dict(t.meta)))
    return out


def variants(tmp: Path) -> dict[str, tuple[Path, str]]:
    takes, manifest = read_takes(MAGIC)
    return {
        "magic_wand 25 Hz": (MAGIC, "accel"),
        "100 Hz": (_save(tmp / "r100", resampled(takes, 100.0), manifest), "accel"),
        "119 Hz": (_save(tmp / "r119", resampled(takes, 119.0), manifest), "accel"),
        "shortened": (_save(tmp / "short", shortened(takes), manifest), "accel"),
        "6-channel": (_save(tmp / "imu", six_channel(takes), manifest), "imu"),
    }


def run(data: Path, channels: str, epochs: int, seed: int, tflm: Path | None) -> list[dict]:
    import keras

    from training import verify

    from training.baselines import MAGIC_WAND_SEQ_LENGTH, arduino_mlp, input_shape, magic_wand_cnn
    from training.evaluate import board_arena, cmsis_conv_scratch
    from training.model import build_model, count_macs
    from training.train import fit_and_evaluate, prepare

    p = prepare(data, seed=seed, channels=channels, quiet=True)
    rows = []
    for name, build in (("gesture-kit default", build_model), ("Arduino tutorial MLP", arduino_mlp),
                        ("TFLM magic_wand CNN", magic_wand_cnn)):
        w = p.windows
        if build is magic_wand_cnn:  # its published 128-sample window, at our model rate
            w = prepare(data, seed=seed, channels=channels, window=MAGIC_WAND_SEQ_LENGTH,
                        rate_hz=p.cfg.model_rate_hz, quiet=True).windows
        keras.utils.set_random_seed(seed)
        model = build(w.cfg.window, len(w.cfg.channels), len(w.cfg.labels))
        shape = None if build is build_model else input_shape(model)
        t0 = time.monotonic()
        e = fit_and_evaluate(model, w, epochs=epochs, seed=seed, quiet=True, input_shape=shape)
        rows.append({"model": name, "rate": w.cfg.model_rate_hz, "window": w.cfg.window, "channels": len(w.cfg.channels),
                     "int8": float((e.scores_test.argmax(1) == w.y_test).mean()),
                     "float": float((e.float_test.argmax(1) == w.y_test).mean()), "bytes": len(e.int8.tflite),
                     "arena": e.arena, "board_arena": board_arena(e.arena, cmsis_conv_scratch(model)) if build is build_model else None,
                     "macs": count_macs(model), "n_test": len(w.y_test), "skipped": len(p.plan.skipped),
                     "source": p.plan.source_rate_hz, "seconds": time.monotonic() - t0,
                     "m4": verify.measure_cost(e.int8.tflite, e.cfg, tflm=tflm)["instructions_per_inference"] if tflm else None})
        keras.backend.clear_session()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="run one variant (name prefix)")
    ap.add_argument("--tflm", type=Path, default=tflm_tree(),
                    help="TFLM tree for the measured M4 instructions (default: the user cache, `gesture tflm fetch`)")
    args = ap.parse_args()
    from training.train import quiet_tensorflow_logs

    quiet_tensorflow_logs()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        vs = variants(Path(tmp))
        results = []
        for name, (data, channels) in vs.items():
            if args.only and not name.startswith(args.only):
                continue
            log(f"{name} ...")
            results.append((name, run(data, channels, args.epochs, args.seed, args.tflm)))
    print("## Training on data variants (out of the box: no --window, no --rate)\n")
    print(f"data/magic_wand and variants made from it (bench/bench_training_variants.py), person split "
          f"(test people liucx, zhangxy, negative_1), {args.epochs} epochs, seed {args.seed}. int8 accuracy is the "
          f"TFLM interpreter on the board's integer preprocessing. Load average at start {load:.1f} on {os.cpu_count()} cores.\n")
    print("| variant | model | source → model rate | window × ch | int8 acc | float acc | model bytes | arena (host) | MACs | "
          "M4 instructions (measured) | skipped takes |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows in results:
        for r in rows:
            print(f"| {name} | {r['model']} | {r['source']:g} → {r['rate']} Hz | {r['window']} × {r['channels']} | "
                  f"{100 * r['int8']:.1f} % | {100 * r['float']:.1f} % | {r['bytes']:,} | {r['arena']:,} | {r['macs']:,} | "
                  f"{format(r['m4'], ',') if r['m4'] else '–'} | {r['skipped']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
