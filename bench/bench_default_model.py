"""How the default architecture was chosen: candidates on person splits carved out of the
*training* people of data/magic_wand (its test people liucx, zhangxy, negative_1 never take
part), with the default recipe (epochs, augmentation), several seeds, the int8 model in TFLM, and
every candidate's instructions per inference measured on the Cortex-M4 (training.verify.
measure_cost: the exported sketch built with arm-none-eabi-gcc -Os + CMSIS-NN, run under QEMU).

Target (issue 13): ≤ 200 k instructions per inference on the M4 at ≥ 99 % int8.

    python bench/bench_default_model.py [--epochs N] [--seeds 0,1,2] [--only NAME]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from common import magic_wand, tflm_tree  # first: puts ROOT on sys.path for the kit's imports below

from training.train import DEFAULTS

DEV_SPLITS = [("lsj", "pengxl", "negative_2"), ("hyw", "shiyun", "negative_4")]  # as bench_training.py
# name -> (model rate in Hz or None for the plan's, build_model keyword arguments)
CANDIDATES = {
    "cnn 16-24-32 k5-5-3 gap, 25 Hz (default before 2026-12)": (25, {"family": "cnn", "filters": [16, 24, 32],
                                                                       "kernels": [5, 5, 3], "head": "gap"}),
    "dscnn 12-16-24 k5 gap, 25 Hz (default until this change)": (25, {"family": "dscnn", "filters": [12, 16, 24],
                                                                       "kernels": [5, 5, 5], "head": "gap"}),
    "cnn 8-12-16 k5-3-3 flatten": (None, {"family": "cnn", "filters": [8, 12, 16], "kernels": [5, 3, 3]}),
    "cnn 6-8-12 k5-3-3 flatten": (None, {"family": "cnn", "filters": [6, 8, 12], "kernels": [5, 3, 3]}),
    "cnn 8-12 k5-3 flatten": (None, {"family": "cnn", "filters": [8, 12], "kernels": [5, 3]}),
    "cnn 16-24-32 k5-5-3 gap": (None, {"family": "cnn", "filters": [16, 24, 32], "kernels": [5, 5, 3], "head": "gap"}),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--only", default=None)
    ap.add_argument("--tflm", type=Path, default=tflm_tree())
    args = ap.parse_args()
    from training.train import quiet_tensorflow_logs

    quiet_tensorflow_logs()
    import keras

    from training import verify
    from training.dataset import load_dataset
    from training.model import build_model, count_macs
    from training.train import fit_and_evaluate, prepare_takes, training_pool

    seeds = [int(s) for s in args.seeds.split(",")]
    ds = load_dataset(magic_wand())
    official = set(ds.manifest["test_subjects"])
    pool = [t for t in ds.takes if t.meta.get("subject") not in official]
    rows = []
    for name, (rate, arch) in CANDIDATES.items():
        if args.only and args.only not in name:
            continue
        accs: dict[int, list[float]] = {}
        for seed in seeds:
            for held in DEV_SPLITS:
                train = [t for t in pool if t.meta.get("subject") not in held]
                test = [t for t in pool if t.meta.get("subject") in held]
                p = prepare_takes(ds, train, test, split_name="dev", seed=seed, quiet=True, rate_hz=rate,
                                  plan_takes=training_pool(ds, "person", list(official)))
                keras.utils.set_random_seed(seed)
                model = build_model(p.cfg.window, len(p.cfg.channels), len(p.cfg.labels), **arch)
                e = fit_and_evaluate(model, p.windows, epochs=args.epochs, seed=seed, quiet=True)
                accs.setdefault(seed, []).append(float((e.scores_test.argmax(1) == p.windows.y_test).mean()))
                print(f"{name} seed {seed} {held}: int8 {accs[seed][-1]:.3f}", file=sys.stderr, flush=True)
                macs, arena, tflite, cfg = count_macs(model), e.arena, e.int8.tflite, e.cfg
                keras.backend.clear_session()
        m4 = verify.measure_cost(tflite, cfg, tflm=args.tflm)
        rows.append((name, cfg.model_rate_hz, cfg.window, accs, macs, m4, len(tflite), arena))
    print(f"| candidate | rate x window | int8 acc, dev split 1 / 2 (mean of seeds {args.seeds}) | mean | "
          "worst seed | MACs | M4 instructions (measured) | model bytes | arena |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, rate, win, accs, macs, m4, nbytes, arena in rows:
        per_split = np.mean([accs[s] for s in accs], axis=0)
        per_seed = [float(np.mean(accs[s])) for s in accs]
        print(f"| {name} | {rate} Hz x {win} | {100 * per_split[0]:.1f} % / {100 * per_split[1]:.1f} % | "
              f"{100 * np.mean(per_seed):.1f} % | {100 * min(per_seed):.1f} % | {macs:,} | "
              f"{m4['instructions_per_inference']:,} | {nbytes:,} | {arena:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
