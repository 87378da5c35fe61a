"""Choosing the defaults across the development corpus (issue #20): every model scored on people
it has never seen, by contributor, three seeds, side by side with the two public baselines.

Datasets: the folders ``bench/corpus.py`` writes under ``--corpus`` (docs/corpus.md). Splits:
leave-one-contributor-out when a dataset has at most LOSO_MAX people (each person is the test
set once, trained on all the others), else ``training.splits.cv_folds`` person-wise folds (every
fold's people cover every label); a dataset's declared test people (dataset.json
``test_subjects``) take no part. Every model goes through the path ``gesture train`` uses
(``prepare_takes`` -> ``fit_and_evaluate``: same crops, augmentation, fit, full-int8
conversion, TFLM interpreter). Scores: accuracy over every test take (pooled) and the mean of the
per-person accuracies (each unseen person counts once), per seed, then the mean and the spread
(lowest and highest seed).

Rule (written before the run): a candidate default must score, on **every** dataset, a mean
per-person accuracy at least that of the best baseline; among those, the best mean over datasets
wins unless a cheaper one is within one point; it must fit the budget (≤ 600,000 M4 instructions
measured, host arena ≤ 8 KB, model ≤ 64 KB).

    python bench/bench_corpus.py --corpus /work/corpus                       # all variants, 3 seeds
    python bench/bench_corpus.py --corpus /work/corpus --variants default,mlp --seeds 0

Each run appends one JSON line per (dataset, variant, seed, fold) to ``--results`` (partial
results survive an interrupted run; a re-run skips what is there); the tables are printed on
stdout from that file.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import log

LOSO_MAX = 12
CV_FOLDS = 4
BUDGET = {"instructions": 600_000, "arena_bytes": 8 * 1024, "model_bytes": 64 * 1024}

# name -> how the model is built and fed. rate/window None: the plan's (gesture train's default);
# "src": the source rate (at most 119 Hz, the tutorial's); channels "data": accel + gyro when every
# take has gyro (the tutorial feeds both), else accel.
WIDE = {"filters": [16, 24, 32], "kernels": [5, 5, 3]}  # the default since issue 20
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {"title": "cnn 6-8-12 k5-3-3 flatten, plan rate x window, accel (the default before issue 20)"},
    "mlp": {"title": "Arduino tutorial MLP (source rate, accel+gyro when recorded)", "build": "mlp",
            "rate": "src", "channels": "data"},
    "mwcnn": {"title": "TFLM magic_wand CNN (128-sample window, accel)", "build": "mwcnn", "rate": "src",
              "window": 128},
    "imu": {"title": "default + gyro when recorded", "channels": "data"},
    "halfwin": {"title": "default at 32 Hz x 16 (half the gesture: what gesture tune chose on punch_flex)",
                "rate": 32, "window": 16},
    "aug2": {"title": "default, augmentation x2 (rotation 20°, amplitude ±20 %, shift, stretch, noise)",
             "augment_strength": 2.0},
    "wide": {"title": "cnn 16-24-32 k5-5-3 flatten, dropout 0.2 (capacity; the default of issue 20's first round)",
             "architecture": {"filters": [16, 24, 32], "kernels": [5, 5, 3]}},
    "rot30": {"title": "default, rotation 30° and amplitude ±20 % augmentation",
              "augment_constants": {"ROTATION_DEG": 30.0, "SCALE": 0.2}},
    "imu_rot30": {"title": "default + gyro when recorded + rotation 30°, amplitude ±20 %", "channels": "data",
                  "augment_constants": {"ROTATION_DEG": 30.0, "SCALE": 0.2}},
    "center": {"title": "default + gravity removed in the model (each channel minus its window mean)",
               "architecture": {"center": True}},
    "center_rot30": {"title": "default + gravity removed + rotation 30°, amplitude ±20 %",
                     "architecture": {"center": True}, "augment_constants": {"ROTATION_DEG": 30.0, "SCALE": 0.2}},
    "wide_cw": {"title": "cnn 16-24-32 k5-5-3 flatten + class-balanced loss",
                "architecture": {"filters": [16, 24, 32], "kernels": [5, 5, 3]}, "balance_classes": True},
    "imu_aug2": {"title": "default + gyro when recorded + augmentation x2", "channels": "data",
                 "augment_strength": 2.0},
    # issue 20, second round: one lever at a time on top of the current default (16-24-32)
    "wide_norot": {"title": "16-24-32, no rotation in the augmentation (ROTATION_DEG 0)",
                   "architecture": WIDE, "augment_constants": {"ROTATION_DEG": 0.0}},
    "wide_amp": {"title": "16-24-32, amplitude augmentation ±30 % (SCALE 0.3)",
                 "architecture": WIDE, "augment_constants": {"SCALE": 0.3}},
    "wide_imu": {"title": "16-24-32 + gyro when recorded", "architecture": WIDE, "channels": "data"},
    "mid": {"title": "cnn 12-16-24 k5-5-3 flatten (between the two)", "architecture": {"filters": [12, 16, 24], "kernels": [5, 5, 3]}},
    "wide_drop35": {"title": "16-24-32, dropout 0.35 before the classifier", "architecture": {**WIDE, "dropout": 0.35}},
    "wide_drop5": {"title": "16-24-32, dropout 0.5 before the classifier (**the default since issue 20's second round**)",
                   "architecture": {**WIDE, "dropout": 0.5}},
}


# The variants were run against the default of their time, 6-8-12 k5-3-3 with dropout 0.2: pinned
# here so the figures reproduce whatever training.model's default is now ("wide_drop5" is the
# current one, "wide" the one before it).
BASE_ARCHITECTURE = {"filters": [6, 8, 12], "kernels": [5, 3, 3], "dropout": 0.2}


def folds_of(ds, seed: int = 0, loso_max: int = LOSO_MAX) -> tuple[str, list[tuple[str, list, list]]]:
    from training.splits import cv_folds

    declared = set(ds.manifest.get("test_subjects") or [])
    takes = [t for t in ds.takes if str(t.meta.get("subject", "")) not in declared]
    people = sorted({str(t.meta.get("subject", "")) for t in takes} - {""})
    if len(people) <= loso_max:
        return "leave-one-contributor-out", [
            (p, [t for t in takes if str(t.meta.get("subject", "")) != p],
             [t for t in takes if str(t.meta.get("subject", "")) == p]) for p in people]
    cv, notes = cv_folds(takes, ds.labels, CV_FOLDS, seed)
    kind = f"{len(cv)} person-wise folds" + (f" ({'; '.join(notes)})" if notes else "")
    return kind, [("+".join(sorted({str(t.meta.get('subject', '')) for t in dev})), fit, dev) for fit, dev in cv]


def settings(v: dict[str, Any], ds) -> dict[str, Any]:
    from capture.takes import GYRO_CHANNELS
    from training.plan import source_rate

    gyro = all(set(GYRO_CHANNELS) <= set(t.channels) for t in ds.takes)
    rate = v.get("rate")
    return {"rate_hz": int(min(round(source_rate(ds.takes)), 119)) if rate == "src" else rate,
            "window": v.get("window"),
            "channels": "imu" if v.get("channels") == "data" and gyro else "accel",
            "augment_strength": float(v.get("augment_strength", 1.0))}


def build(v: dict[str, Any], window: int, channels: int, n: int):
    from training.baselines import arduino_mlp, magic_wand_cnn
    from training.model import build_model

    kind = v.get("build", "default")
    if kind == "mlp":
        return arduino_mlp(window, channels, n)
    if kind == "mwcnn":
        return magic_wand_cnn(window, channels, n)
    return build_model(window, channels, n, **{**BASE_ARCHITECTURE, **v.get("architecture", {})})


def run_one(ds, name: str, fit, dev, seed: int, epochs: int) -> dict[str, Any]:
    import keras

    from training.baselines import input_shape
    from training import augment
    from training.train import fit_and_evaluate, prepare_takes

    v = VARIANTS[name]
    s = settings(v, ds)
    saved = {k: getattr(augment, k) for k in v.get("augment_constants", {})}
    for k, val in v.get("augment_constants", {}).items():  # read by augmented_window at each call
        setattr(augment, k, val)
    try:
        p = prepare_takes(ds, fit, dev, split_name="fold", seed=seed, rate_hz=s["rate_hz"], window=s["window"],
                          channels=s["channels"], augment_strength=s["augment_strength"], quiet=True,
                          plan_takes=fit, announce_skips=False)
    finally:
        for k, val in saved.items():
            setattr(augment, k, val)
    w = p.windows
    keras.utils.set_random_seed(seed)
    model = build(v, w.cfg.window, len(w.cfg.channels), len(w.cfg.labels))
    shape = input_shape(model) if v.get("build") else None
    t0 = time.monotonic()
    e = fit_and_evaluate(model, w, epochs=epochs, seed=seed, quiet=True, input_shape=shape, measure_arena=False,
                         balance_classes=bool(v.get("balance_classes")))
    pred = e.scores_test.argmax(1)
    keras.backend.clear_session()
    return {"rate_hz": w.cfg.model_rate_hz, "window": w.cfg.window, "channels": len(w.cfg.channels),
            "seconds": round(time.monotonic() - t0, 1),
            "takes": [[str(t.meta.get("subject", "")), t.label, w.cfg.labels[int(pr)]]
                      for t, pr in zip(p.test_takes, pred)]}


def cost(ds, name: str, probe) -> dict[str, Any]:
    """Bytes, arena and M4 instructions of the variant's int8 graph at the whole dataset's plan."""
    import keras
    import numpy as np

    from training.baselines import input_shape
    from training.evaluate import smallest_arena
    from training.model import cost_features
    from training.plan import make_plan
    from training.preprocess import PreprocessConfig
    from training.quantize import to_int8
    from training.tune import instructions

    v = VARIANTS[name]
    s = settings(v, ds)
    plan = make_plan(ds.takes, [], rate_hz=s["rate_hz"], window=s["window"])
    ch = 6 if s["channels"] == "imu" else 3
    keras.utils.set_random_seed(0)
    model = build(v, plan.window, ch, len(ds.labels))
    shape = input_shape(model) if v.get("build") else (plan.window, ch)
    q = to_int8(model, np.random.default_rng(0).normal(size=(32, *shape)).astype(np.float32), seed=0)
    chans = ["ax", "ay", "az", "gx", "gy", "gz"][:ch]
    cfg = PreprocessConfig(labels=ds.labels, channels=chans, model_rate_hz=plan.rate_hz, window=plan.window,
                           mean=[0] * ch, std=[1.0] * ch).with_input_quant(q.input_scale, q.input_zero_point)
    try:
        n, how = instructions(q.tflite, cost_features(model), cfg, probe)
    except Exception as e:  # noqa: BLE001 - a baseline the exporter cannot take: estimate
        log(f"  {name}: M4 measurement failed ({e.__class__.__name__}: {e}); estimating")
        n, how = instructions(q.tflite, cost_features(model))
    keras.backend.clear_session()
    return {"model_bytes": len(q.tflite), "arena_bytes": int(smallest_arena(q.tflite)), "instructions": int(n),
            "instructions_source": how, "rate_hz": plan.rate_hz, "window": plan.window, "channels": ch}


def load_results(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def scores(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """(pooled accuracy over all test takes, mean of per-person accuracies) of one seed's folds."""
    per: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        for subject, label, pred in r["takes"]:
            per[subject].append(int(label == pred))
    allv = [x for v in per.values() for x in v]
    return (sum(allv) / len(allv) if allv else 0.0,
            sum(sum(v) / len(v) for v in per.values()) / len(per) if per else 0.0)


def table(results: list[dict[str, Any]], costs: dict[tuple[str, str], dict[str, Any]], seeds: list[int]) -> str:
    out = []
    by: dict[tuple[str, str], dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if r["seed"] in seeds:
            by[(r["dataset"], r["variant"])][r["seed"]].append(r)
    for dataset in sorted({k[0] for k in by}):
        out += [f"### {dataset}", "",
                "| model | rate x window x ch | per-person acc, mean of seeds | seeds min–max | pooled acc | "
                "M4 instructions | model bytes | arena |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for name in VARIANTS:
            runs = by.get((dataset, name))
            if not runs:
                continue
            complete = {s: rs for s, rs in runs.items() if len(rs) == runs_expected(results, dataset)}
            if not complete:
                continue
            sc = [scores(rs) for rs in complete.values()]
            person = [b for _, b in sc]
            pooled = [a for a, _ in sc]
            first = next(iter(complete.values()))[0]
            c = costs.get((dataset, name), {})
            instr = (f"{c['instructions']:,}" + (" (est.)" if c.get("instructions_source") == "estimated" else "")
                     if c else "–")
            out.append(f"| {VARIANTS[name]['title']} | {first['rate_hz']} Hz x {first['window']} x {first['channels']} | "
                       f"{100 * sum(person) / len(person):.1f} % ({len(person)} seeds) | "
                       f"{100 * min(person):.1f}–{100 * max(person):.1f} % | "
                       f"{100 * sum(pooled) / len(pooled):.1f} % | {instr} | "
                       f"{c.get('model_bytes', 0):,} | {c.get('arena_bytes', 0):,} |")
        out.append("")
        out += by_person(by, dataset, results)
    return "\n".join(out)


def summary(results: list[dict[str, Any]], seeds: list[int]) -> str:
    """One row per variant, one column per dataset: mean per-person accuracy over the seeds
    (lowest–highest seed); only variants with every seed complete on a dataset get its cell."""
    by: dict[tuple[str, str], dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if r["seed"] in seeds:
            by[(r["dataset"], r["variant"])][r["seed"]].append(r)
    datasets = sorted({k[0] for k in by})
    out = ["| model | " + " | ".join(datasets) + " |", "|---|" + "---:|" * len(datasets)]
    for name in VARIANTS:
        cells = []
        for d in datasets:
            runs = by.get((d, name), {})
            complete = [rs for rs in runs.values() if len(rs) == runs_expected(results, d)]
            if len(complete) < len(seeds):
                cells.append("–")
                continue
            person = [scores(rs)[1] for rs in complete]
            cells.append(f"{100 * sum(person) / len(person):.1f} % ({100 * min(person):.1f}–{100 * max(person):.1f})")
        if any(c != "–" for c in cells):
            out.append(f"| {name}: {VARIANTS[name]['title']} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def by_person(by, dataset: str, results: list[dict[str, Any]]) -> list[str]:
    """Accuracy on each unseen person (all seeds pooled), one column per variant."""
    names = [n for n in VARIANTS  # variants with at least one complete seed on this dataset
             if any(len(rs) == runs_expected(results, dataset) for rs in by.get((dataset, n), {}).values())]
    acc: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    labels: dict[str, set[str]] = defaultdict(set)
    for n in names:
        for rs in by[(dataset, n)].values():
            if len(rs) != runs_expected(results, dataset):
                continue
            for r in rs:
                for subject, label, pred in r["takes"]:
                    acc[subject][n].append(int(label == pred))
                    labels[subject].add(label)
    out = ["| unseen person (labels) | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for subject in sorted(acc):
        cells = [f"{100 * sum(acc[subject][n]) / len(acc[subject][n]):.0f} %" if acc[subject][n] else "–" for n in names]
        out.append(f"| {subject} ({', '.join(sorted(labels[subject]))}) | " + " | ".join(cells) + " |")
    return out + [""]


def runs_expected(results: list[dict[str, Any]], dataset: str) -> int:
    return max((r["n_folds"] for r in results if r["dataset"] == dataset), default=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--datasets", default="punch_flex,punch_flex_b,magic_wand")
    ap.add_argument("--loso-max", type=int, default=LOSO_MAX,
                    help="leave-one-contributor-out up to this many people, else person-wise folds")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=None, help="default: gesture train's")
    ap.add_argument("--results", type=Path, default=None, help="JSON lines (default CORPUS/bench_corpus.jsonl)")
    ap.add_argument("--no-m4", action="store_true", help="estimate instructions instead of measuring them under QEMU")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--also", type=Path, nargs="*", default=[],
                    help="more result files (of runs in parallel processes) for the tables")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from training.dataset import load_dataset
    from training.train import DEFAULTS, quiet_tensorflow_logs

    quiet_tensorflow_logs()
    epochs = args.epochs or DEFAULTS["epochs"]
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.variants.split(",")
    res_path = args.results or args.corpus / "bench_corpus.jsonl"
    costs_path = res_path.with_suffix(".costs.json")
    results = load_results(res_path)
    costs_raw = json.loads(costs_path.read_text()) if costs_path.is_file() else {}
    done = {(r["dataset"], r["variant"], r["seed"], r["fold"], r["epochs"]) for r in results}
    if not args.table_only:
        probe = None
        if not args.no_m4:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from training.cli import cost_probe

            probe, how = cost_probe(None)
            log(f"instructions: {how}")
        for dataset in args.datasets.split(","):
            ds = load_dataset(args.corpus / dataset)
            kind, folds = folds_of(ds, loso_max=args.loso_max)
            log(f"{dataset}: {kind}, {len(folds)} folds")
            for name in names:
                key = f"{dataset}/{name}"
                if key not in costs_raw:
                    costs_raw[key] = cost(ds, name, probe)
                    costs_path.write_text(json.dumps(costs_raw, indent=1))
                for seed in seeds:
                    for fold, fit, dev in folds:
                        if (dataset, name, seed, fold, epochs) in done:
                            continue
                        r = run_one(ds, name, fit, dev, seed, epochs)
                        row = {"dataset": dataset, "variant": name, "seed": seed, "fold": fold, "epochs": epochs,
                               "n_folds": len(folds), "split": kind, **r}
                        with res_path.open("a") as f:
                            f.write(json.dumps(row) + "\n")
                        acc = sum(x[1] == x[2] for x in r["takes"]) / max(1, len(r["takes"]))
                        log(f"  {dataset} {name} seed {seed} {fold}: {acc:.1%} of {len(r['takes'])} ({r['seconds']} s)")
        results = load_results(res_path)
    for extra in args.also:
        results += load_results(extra)
        extra_costs = extra.with_suffix(".costs.json")
        if extra_costs.is_file():
            costs_raw = {**json.loads(extra_costs.read_text()), **costs_raw}
    costs = {tuple(k.split("/", 1)): v for k, v in costs_raw.items()}
    unique: dict[tuple, dict[str, Any]] = {}
    for r in results:
        if r["epochs"] == epochs:
            unique.setdefault((r["dataset"], r["variant"], r["seed"], r["fold"]), r)
    results = list(unique.values())
    print(summary(results, seeds))
    print(table(results, costs, seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
