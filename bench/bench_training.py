"""Training benchmark: the default model against the two public baselines, on one split, in one run.

On data/magic_wand split by person (dataset.json's test people), it runs

1. ``gesture train`` exactly as a user does (a child process, so Python start-up and the
   TensorFlow import count) and reads its report.json;
2. the Arduino tutorial MLP and the TFLM magic_wand CNN (``training/baselines.py``) on the same
   takes and split, with the same augmentation, epochs and fit -> int8 -> TFLM path
   (``training.train.fit_and_evaluate``); the Arduino model also as the float .tflite the
   tutorial ships, run in the same TFLM interpreter.

Accuracy is on the held-out people's takes; int8 accuracy is the int8 bytes in the TFLM
interpreter on the board's integer preprocessing; arena is the smallest that allocates and
invokes (host build). Prints a Markdown section on stdout (progress on stderr).

    python bench/bench_training.py            # default epochs
    python bench/bench_training.py --quick    # few epochs: a smoke run, accuracies not meaningful
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, log, magic_wand  # first: puts ROOT on sys.path for the kit's imports below

from training.train import DEFAULTS

TARGETS = {"int8_accuracy": 0.95, "float_gap": 0.01, "model_bytes": 20 * 1024, "arena_bytes": 8 * 1024,
           "seconds": 60.0}
QUICK_EPOCHS = 4


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_cli(data: Path, out: Path, epochs: int, seed: int) -> dict:
    """``gesture train`` in a child process: wall and CPU seconds of the whole command."""
    cmd = [sys.executable, "-c", "import sys; from gesture_cli import main; sys.exit(main())",
           "train", str(data), "--out", str(out), "--epochs", str(epochs), "--seed", str(seed), "--quiet"]
    cpu0, t0 = children_cpu(), time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"gesture train failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    r = json.loads((out / "report.json").read_text())
    r["cli_wall"], r["cli_cpu"] = wall, cpu
    return r


def run_baseline(name: str, build, data: Path, window: int | None, epochs: int, seed: int,
                 float_too: bool = False) -> list[dict]:
    """One baseline through prepare -> fit_and_evaluate (the path ``gesture train`` uses)."""
    import keras
    import numpy as np

    from training.baselines import input_shape
    from training.model import count_macs
    from training.train import fit_and_evaluate, prepare

    p = prepare(data, seed=seed, window=window, quiet=True)
    w = p.windows
    keras.utils.set_random_seed(seed)
    model = build(w.cfg.window, len(w.cfg.channels), len(w.cfg.labels))
    shape = input_shape(model)
    cpu0, t0 = time.process_time(), time.monotonic()
    e = fit_and_evaluate(model, w, epochs=epochs, seed=seed, quiet=True, input_shape=shape)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    y = w.y_test
    float_acc = float((e.float_test.argmax(1) == y).mean())
    common = {"params": int(model.count_params()), "macs": count_macs(model), "window": w.cfg.window,
              "float_accuracy": float_acc, "seconds": wall, "cpu": cpu}
    rows = [{"model": f"{name} (int8)", **common, "int8_accuracy": float((e.scores_test.argmax(1) == y).mean()),
             "model_bytes": len(e.int8.tflite), "arena_bytes": e.arena}]
    if float_too:
        from training.evaluate import smallest_arena
        from training.preprocess import normalize
        from training.quantize import to_float_tflite
        from tflite_micro import runtime

        flat = to_float_tflite(model)
        it = runtime.Interpreter.from_bytes(flat, arena_size=1 << 20)
        x = normalize(w.x_test, w.cfg).reshape((len(y), 1, *shape))
        pred = []
        for xi in x:
            it.set_input(xi.astype(np.float32), 0)
            it.invoke()
            pred.append(int(np.argmax(it.get_output(0))))
        rows.insert(0, {"model": f"{name} (float, as shipped)", **common, "int8_accuracy": None,
                        "float_tflm_accuracy": float((np.array(pred) == y).mean()),
                        "model_bytes": len(flat), "arena_bytes": smallest_arena(flat)})
    return rows


# held-out groups carved from the *training* people (the dataset's test people stay out): the
# splits the defaults were chosen on, and a harder comparison than the published test split
DEV_SPLITS = [("lsj", "pengxl", "negative_2"), ("hyw", "shiyun", "negative_4")]


def dev_split_rows(data: Path, epochs: int, seed: int) -> list[tuple[str, str, float, float]]:
    """(split, model, float acc, int8 acc) of all three models on each DEV_SPLITS person split."""
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # five models in one process: Keras' retracing notice is expected
    from training.baselines import MAGIC_WAND_SEQ_LENGTH, arduino_mlp, input_shape, magic_wand_cnn
    from training.dataset import load_dataset
    from training.model import build_model
    from training.preprocess import PreprocessConfig, take_counts
    from training.plan import default_window
    from training.train import fit_and_evaluate, live_config, make_windows, val_split

    ds = load_dataset(data)
    official = set(ds.manifest.get("test_subjects") or [])
    out = []
    for held in DEV_SPLITS:
        pool = [t for t in ds.takes if t.meta.get("subject") not in official]
        train = [t for t in pool if t.meta.get("subject") not in held]
        test = [t for t in pool if t.meta.get("subject") in held]
        fit, val = val_split(train, seed)
        base = PreprocessConfig(labels=ds.labels)
        counts = {id(t): take_counts(t, base) for t in fit + val + test}
        ours_win = default_window([len(counts[id(t)]) for t in fit])
        for name, build, win in (("gesture-kit default CNN", build_model, ours_win),
                                 ("Arduino tutorial MLP", arduino_mlp, ours_win),
                                 ("TFLM magic_wand CNN", magic_wand_cnn, MAGIC_WAND_SEQ_LENGTH)):
            log(f"dev split {', '.join(held)}: {name} ...")
            cfg = live_config(ds.labels, base.channels, base.model_rate_hz, win, counts, fit)
            w = make_windows(cfg, counts, fit, val, test, DEFAULTS["augment"], seed)
            keras.utils.set_random_seed(seed)
            model = build(win, len(cfg.channels), len(cfg.labels))
            shape = input_shape(model) if build is not build_model else None
            e = fit_and_evaluate(model, w, epochs=epochs, seed=seed, quiet=True, input_shape=shape)
            out.append((f"{', '.join(held)} ({len(test)} takes)", name,
                        float((e.float_test.argmax(1) == w.y_test).mean()),
                        float((e.scores_test.argmax(1) == w.y_test).mean())))
    return out


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=magic_wand())
    ap.add_argument("--epochs", type=int, default=None, help=f"default {DEFAULTS['epochs']} (--quick: {QUICK_EPOCHS})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="few epochs: checks the pipeline, not the accuracy")
    ap.add_argument("--dev-splits", action="store_true",
                    help="also compare the three models on person splits of the training people (about 3 more minutes)")
    args = ap.parse_args()
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else DEFAULTS["epochs"])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    load = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        log(f"gesture train {args.data} ({epochs} epochs) ...")
        ours = run_cli(args.data, Path(tmp) / "model", epochs, args.seed)
    t = ours["timings"]
    ours_row = {"model": "gesture-kit default CNN (int8)", "float_accuracy": ours["float_accuracy"],
                "int8_accuracy": ours["int8_accuracy"], "model_bytes": ours["model_bytes"],
                "arena_bytes": ours["arena_bytes"], "params": ours["params"], "macs": ours["macs"],
                "window": ours["window"],
                "seconds": sum(t[k] for k in ("fit", "convert", "evaluate", "arena"))}

    from training.baselines import MAGIC_WAND_SEQ_LENGTH, arduino_mlp, magic_wand_cnn

    log("Arduino tutorial MLP ...")
    rows = [ours_row]
    rows += run_baseline("Arduino tutorial MLP", arduino_mlp, args.data, ours["window"], epochs, args.seed,
                         float_too=True)
    log("TFLM magic_wand CNN ...")
    rows += run_baseline("TFLM magic_wand CNN", lambda w, c, n: magic_wand_cnn(w, c, n), args.data,
                         MAGIC_WAND_SEQ_LENGTH, epochs, args.seed)

    print(f"## Training: default model vs. public baselines ({args.data.name}, person split)\n")
    print(f"Test people: {', '.join(ours['test_subjects'])} ({ours['n_test']} takes); "
          f"{ours['n_train']} training takes, {ours['n_train_windows']} windows with augmentation; "
          f"{epochs} epochs for every model{' (--quick: accuracies not meaningful)' if args.quick else ''}. "
          f"TensorFlow {ours['tensorflow_version']}, tflite-micro {ours['tflite_micro_version']}. "
          f"Load average at start: {load:.1f} on {os.cpu_count()} cores.\n")
    print("| model | window | float acc (Keras) | int8 acc (TFLM) | model bytes | arena bytes | params | MACs | fit+quantize+eval s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        i8 = pct(r["int8_accuracy"]) if r["int8_accuracy"] is not None else f"{pct(r['float_tflm_accuracy'])} (float TFLM)"
        print(f"| {r['model']} | {r['window']} | {pct(r['float_accuracy'])} | {i8} | {r['model_bytes']:,} | "
              f"{r['arena_bytes']:,} | {r['params']:,} | {r['macs']:,} | {r['seconds']:.1f} |")

    if args.dev_splits:
        print("\nThe same three models on person splits carved out of the training people (the test people "
              "above stay out; the defaults were chosen on these splits):\n")
        print("| held-out people | model | float acc | int8 acc (TFLM) |\n|---|---|---:|---:|")
        for split, name, f_acc, q_acc in dev_split_rows(args.data, epochs, args.seed):
            print(f"| {split} | {name} | {pct(f_acc)} | {pct(q_acc)} |")

    gap = abs(ours["float_accuracy"] - ours["int8_accuracy"])
    checks = [
        ("int8 accuracy ≥ 95 %", pct(ours["int8_accuracy"]), ours["int8_accuracy"] >= TARGETS["int8_accuracy"]),
        ("int8 within 1 point of float", f"{100 * gap:.1f} points", gap <= TARGETS["float_gap"] + 1e-9),
        ("int8 model ≤ 20 KB", f"{ours['model_bytes']:,} bytes", ours["model_bytes"] <= TARGETS["model_bytes"]),
        ("measured arena ≤ 8 KB", f"{ours['arena_bytes']:,} bytes (board reserve {ours['arena_board_bytes']:,})",
         ours["arena_bytes"] <= TARGETS["arena_bytes"]),
        ("`gesture train` (train+quantize+evaluate) < 60 s", f"{ours['cli_wall']:.1f} s wall, {ours['cli_cpu']:.1f} s CPU",
         ours["cli_wall"] < TARGETS["seconds"]),
    ]
    print("\n| target (default model) | measured | |\n|---|---|---|")
    for name, value, ok in checks:
        print(f"| {name} | {value} | {'pass' if ok else 'FAIL'} |")
    print("\nPhases of `gesture train` (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items())
          + ". The baselines' seconds are the same phases (fit, convert, evaluate, arena) in this process. "
          "Wall time depends on machine load; CPU seconds are the process's own.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
