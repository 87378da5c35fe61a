"""Benchmark: does the exported sketch compute what Python computes, and what does it cost?

On the bundled real dataset: C++ (the sketch's gk_preprocess.h / gk_format.h compiled with g++)
vs Python preprocessing, window by window; model_data.cpp bytes vs model.tflite; time per
inference in the tflite_micro interpreter; model bytes, arena and the export's flash/RAM estimate.

    python bench/bench_parity.py [--model MODEL_DIR]     (default: trains a model first, ~1-2 min)

Markdown on stdout, progress on stderr.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, log, magic_wand  # first: puts ROOT on sys.path for the kit's imports below

from capture import protocol as p
from capture.virtual.sources import ReplaySource

DATA = magic_wand()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="a trained MODEL_DIR (default: train one)")
    ap.add_argument("--takes", type=int, default=80, help="takes in the continuous live stream")
    args = ap.parse_args()

    from capture.takes import IMU_CHANNELS
    from training.board_sim import BoardPipeline, LiveWindow, Resampler, format_prediction_line
    sys.path.insert(0, str(ROOT / "tests"))
    from parity_harness import build_host_driver, host_crop, host_live, host_smooth
    from training.dataset import load_dataset
    from training.evaluate import TflmModel
    from training.export import export_sketch, parse_model_data
    from training.preprocess import PreprocessConfig, crop_take, quantize_input, take_counts

    gxx = shutil.which("g++")
    if gxx is None:
        log("g++ is not installed: nothing to compare")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = args.model
        if model_dir is None:
            from training.train import train

            log("training a model on the bundled data (10 epochs) ...")
            model_dir = tmp / "model"
            train(DATA, model_dir, epochs=10, augment=2, seed=0, quiet=True)
        cfg = PreprocessConfig.load(model_dir)
        log("exporting the sketch and compiling the host driver ...")
        t0 = time.perf_counter()
        result = export_sketch(model_dir, tmp / "gesture_classifier")
        export_s = time.perf_counter() - t0
        exe = build_host_driver(tmp / "gesture_classifier", tmp / "driver", compiler=gxx)
        rows: list[tuple[str, str, str]] = []

        tflite = (model_dir / "model.tflite").read_bytes()
        same = parse_model_data((tmp / "gesture_classifier" / "model_data.cpp").read_text()) == tflite
        rows.append(("model_data.cpp bytes == model.tflite", f"{len(tflite):,} bytes", "0" if same else "DIFFERENT"))

        log("crop_take + quantize on every take ...")
        takes = load_dataset(DATA).takes
        counts = [take_counts(t, cfg) for t in takes]
        cpp = host_crop(exe, counts, cfg.window)
        py = [quantize_input(crop_take(c, cfg), cfg) for c in counts]
        bad = sum(not np.array_equal(a, b) for a, b in zip(cpp, py))
        rows.append(("training windows (crop_take + quantize), C++ vs Python", f"{len(takes)} windows", str(bad)))

        log(f"live stream of {args.takes} takes at 119 Hz ...")
        src = ReplaySource(DATA, rate_hz=119, channels=6, rest_s=6.0, shuffle=True, seed=0, limit=args.takes)
        stream = np.vstack([b for b, _ in src.stream()])
        live = host_live(exe, stream, len(cfg.channels), cfg.window)
        rs, lw = Resampler(119, cfg.model_rate_hz, len(cfg.channels)), LiveWindow(cfg)
        pick = [IMU_CHANNELS.index(c) for c in cfg.channels]
        py_res, py_win = [], []
        for k in range(0, len(stream), p.samples_per_frame(119)):
            y, s = rs.push(stream[k:k + p.samples_per_frame(119), pick])
            for sample, j in zip(y, s):
                py_res.append(sample)
                ev = lw.push(sample)
                if ev != LiveWindow.NONE:
                    py_win.append((int(j), quantize_input(lw.window(), cfg) if ev == LiveWindow.READY else None))
        res_bad = int(np.sum(np.any(live.resampled != np.array(py_res), axis=1))) if len(py_res) == len(live.resampled) else len(py_res)
        rows.append(("resampled samples 119 Hz -> model rate, C++ vs Python", f"{len(py_res):,} samples", str(res_bad)))
        win_bad = abs(len(py_win) - len(live.windows)) + sum(
            a[0] != b[0] or (a[1] is None) != (b[1] is None) or (a[1] is not None and not np.array_equal(a[1], b[1]))
            for a, b in zip(live.windows, py_win))
        n_idle = sum(w is None for _, w in py_win)
        rows.append(("live windows (trigger + quantize), C++ vs Python",
                     f"{len(py_win):,} windows ({n_idle} idle)", str(win_bad)))

        log("TFLM outputs -> Smoother + Serial line ...")
        pipe = BoardPipeline(cfg, tflite, 119)
        results = [r for k in range(0, len(stream), 2) for r in pipe.push(stream[k:k + 2])]
        smoothed = host_smooth(exe, [r.output_int8 for r in results], len(cfg.labels))
        sm_bad = sum(pl != p.encode_prediction(r.prediction) or line != format_prediction_line(cfg.labels, r.prediction)
                     for (pl, line), r in zip(smoothed, results))
        rows.append(("predictions (Smoother payload + Serial line), C++ vs Python", f"{len(results):,} predictions", str(sm_bad)))

        log("timing TFLM inference ...")
        model = TflmModel(tflite)
        xs = [w for _, w in py_win if w is not None][:300] or py[:300]
        for x in xs[:10]:
            model.predict(x)
        t0 = time.perf_counter()
        for x in xs:
            model.predict(x)
        per_ms = (time.perf_counter() - t0) / len(xs) * 1e3

    print("## Export parity (C++ sketch vs Python)\n")
    print(f"Model: {model_dir.name if args.model else 'trained for this run (10 epochs)'}; labels {', '.join(cfg.labels)}; "
          f"window {cfg.window} x {len(cfg.channels)} at {cfg.model_rate_hz} Hz, stride {cfg.stride}.\n")
    print("| check | compared | mismatches |")
    print("|---|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    print()
    print("| figure | value |")
    print("|---|---:|")
    print(f"| TFLM inference (tflite_micro, host x86-64, reference kernels) | {per_ms:.3f} ms |")
    print(f"| model bytes | {result.model_bytes:,} |")
    print(f"| arena on the board (GK_MAX_ARENA_BYTES: any model a package may describe) | {result.arena_bytes:,} |")
    print(f"| estimated flash / board | {result.flash_estimate:,} / {result.flash_max:,} ({100 * result.flash_estimate / result.flash_max:.0f}%) |")
    print(f"| estimated RAM / board | {result.ram_estimate:,} / {result.ram_max:,} ({100 * result.ram_estimate / result.ram_max:.0f}%) |")
    print(f"| export time | {export_s * 1e3:.0f} ms |")
    print("\nFlash/RAM besides the model and arena are estimates (see training/export.py), not a board build.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
