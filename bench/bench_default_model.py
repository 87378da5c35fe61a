"""How the default architecture was chosen: candidates on person splits carved out of the
*training* people of data/magic_wand (its test people liucx, zhangxy, negative_1 never take
part), with the default recipe (epochs, augmentation) and the int8 model in TFLM.

Target (issue 13): ≤ 200 k instructions per inference on the Cortex-M4 at ≥ 99 % int8. MACs are
what can be measured here; instructions are estimated with training.tune.INSTRUCTIONS_PER_MAC.

    python bench/bench_default_model.py [--epochs N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.train import DEFAULTS  # noqa: E402

DEV_SPLITS = [("lsj", "pengxl", "negative_2"), ("hyw", "shiyun", "negative_4")]  # as bench_training.py
CANDIDATES = {
    "cnn 16-24-32 k5-5-3 (previous default)": {"family": "cnn", "filters": [16, 24, 32], "kernels": [5, 5, 3]},
    "cnn 8-12-16 k5-3-3": {"family": "cnn", "filters": [8, 12, 16], "kernels": [5, 3, 3]},
    "dscnn 12-16-24 k5": {"family": "dscnn", "filters": [12, 16, 24], "kernels": [5, 5, 5]},
    "dscnn 12-16-24 k5, linear depthwise": {"family": "dscnn", "filters": [12, 16, 24], "kernels": [5, 5, 5],
                                            "linear_depthwise": True},
    # the architecture `gesture tune` chose on person CV of the training people (trial 9 of the
    # default search, docs/benchmarks.md), here at the default rate and window
    "dscnn 12-18-24-24 k3": {"family": "dscnn", "filters": [12, 18, 24, 24], "kernels": [3, 3, 3, 3]},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    from training.train import quiet_tensorflow_logs

    quiet_tensorflow_logs()
    import keras

    from training.dataset import load_dataset
    from training.model import build_model, count_macs
    from training.train import fit_and_evaluate, prepare_takes, training_pool
    from training.tune import INSTRUCTIONS_PER_MAC

    ds = load_dataset(ROOT / "data" / "magic_wand")
    official = set(ds.manifest["test_subjects"])
    pool = [t for t in ds.takes if t.meta.get("subject") not in official]
    rows = []
    for name, arch in CANDIDATES.items():
        if args.only and args.only not in name:
            continue
        accs, macs, arena, nbytes = [], 0, 0, 0
        for held in DEV_SPLITS:
            train = [t for t in pool if t.meta.get("subject") not in held]
            test = [t for t in pool if t.meta.get("subject") in held]
            p = prepare_takes(ds, train, test, split_name="dev", seed=args.seed, quiet=True,
                              plan_takes=training_pool(ds, "person", list(official)))
            keras.utils.set_random_seed(args.seed)
            model = build_model(p.cfg.window, len(p.cfg.channels), len(p.cfg.labels), **arch)
            e = fit_and_evaluate(model, p.windows, epochs=args.epochs, seed=args.seed, quiet=True)
            accs.append(float((e.scores_test.argmax(1) == p.windows.y_test).mean()))
            macs, arena, nbytes = count_macs(model), e.arena, len(e.int8.tflite)
            print(f"{name} {held}: int8 {accs[-1]:.3f}", file=sys.stderr, flush=True)
            keras.backend.clear_session()
        rows.append((name, accs, macs, arena, nbytes))
    print("| candidate (window 120 x 3 at 25 Hz) | int8 acc, dev split 1 | dev split 2 | mean | MACs | est. M4 instructions | model bytes | arena |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, accs, macs, arena, nbytes in rows:
        print(f"| {name} | {100 * accs[0]:.1f} % | {100 * accs[1]:.1f} % | {100 * np.mean(accs):.1f} % | {macs:,} | "
              f"{int(macs * INSTRUCTIONS_PER_MAC):,} | {nbytes:,} | {arena:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
