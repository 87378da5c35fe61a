"""Always-on recognition on continuous real recordings: false activations per hour (FA/h) and false
rejections (FRR) of the default model, before and after `gesture calibrate`, beside the
micro_speech and magic_wand post-processing rules applied to the same model.

Data (generated at run time from ../shared, never committed): the TensorFlow magic_wand
recordings (../shared/datasets/magic_wand/data.tar.gz). Its five continuous idle/negative
recordings output_negative_1..5 (25 Hz accelerometer, about 6 minutes together) are the
background; gesture takes of the two test people (liucx, zhangxy) are placed into them with
capture.streams.compose_stream (8-14 s apart, each joined by a 0.2 s blend). The background is
reused for several passes so that every test take is placed once.

The default model is `gesture train` with its defaults on the same import, with the person split
holding out liucx, zhangxy and the continuous negative recordings the streams use (so neither the
test gestures nor a second of the background were seen in training). By default all five are held
out; ``--train-negatives negative_2,negative_4`` trains on those two instead (the streams then use
only the other three).

Calibration is chosen on one half and measured on the other: calibration streams = liucx's takes
in every other unseen recording from the second, evaluation streams = zhangxy's takes in the rest.
Every row of the table is measured on the evaluation streams.

    python bench/bench_calibrate.py [--epochs N] [--target 1.0] [--work DIR] [--train-negatives A,B]
"""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from common import ROOT, log  # first: puts ROOT on sys.path for the kit's imports below

from training.train import DEFAULTS

TARBALL = ROOT.parent / "shared" / "datasets" / "magic_wand" / "data.tar.gz"
TEST_PEOPLE = ("liucx", "zhangxy")
CONTINUOUS = tuple(f"negative_{i}" for i in range(1, 6))



def halves(background: list[str]) -> tuple[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]]:
    """(person, backgrounds) to calibrate on and to measure on: liucx in every other unseen
    recording from the second, zhangxy in the rest (all five unseen: negative_2, _4 / _1, _3, _5)."""
    return ("liucx", tuple(background[1::2])), ("zhangxy", tuple(background[0::2]))


def backgrounds() -> dict[str, np.ndarray]:
    from capture.importers.magic_wand import parse_log

    out = {}
    with tarfile.open(TARBALL) as tar:
        for m in tar.getmembers():
            name = Path(m.name).name
            if name.startswith("output_negative_") and name[len("output_negative_"):-4].isdigit():
                f = tar.extractfile(m)
                assert f is not None
                segments, _ = parse_log(name, f.read().decode("utf-8", "replace"))
                out[f"negative_{name[len('output_negative_'):-4]}"] = np.vstack([s for _, s in segments]) / 1000.0
    return out


def build_streams(out: Path, takes: list, bgs: list[np.ndarray], seed: int) -> list[Path]:
    from capture.streams import compose_stream, write_stream

    rng = np.random.default_rng(seed)
    order = [takes[i] for i in rng.permutation(len(takes))]
    paths, k, n = [], 0, 0
    while k < len(order):
        bg = bgs[n % len(bgs)]
        values, events, placed = compose_stream(bg, [(t.label, t.values) for t in order[k:]], 25.0, gap_s=(8.0, 14.0),
                                                seed=seed + n)
        path = out / f"stream_{n:02d}"
        write_stream(path, values, 25.0, ("ax", "ay", "az"), events, meta={"source": "bench_calibrate"})
        paths.append(path)
        k += placed
        n += 1
    return paths


def print_row(name: str, r: dict, cfg) -> None:
    from training.postprocess import DetectorConfig

    d = DetectorConfig(**r["detector"])
    per = ", ".join(f"{k} {100 * v['false_rejection_rate']:.0f} % / {v['false_activations']}"
                    for k, v in r["per_label"].items() if v["false_rejection_rate"] is not None)
    lat = "n/a" if r["latency_ms_median"] is None else f"{r['latency_ms_median']:.0f} / {r['latency_ms_p90']:.0f} ms"
    print(f"| {name} | {d.describe(cfg)} | {r['false_activations']} | {r['false_activations_per_hour']:.1f} | "
          f"{100 * r['false_rejection_rate']:.1f} % | {lat} | {per} |")


def mine_and_retrain(work: Path, data: Path, model: Path, sets: dict, args, tol) -> dict:
    """The dashboard loop, offline: false activations -> negative takes -> retrain -> recalibrate."""
    import shutil

    from capture.streams import read_stream
    from capture.takes import Take, save_takes
    from training.calibrate import calibrate, default_tolerance, replay, score
    from training.model_dir import load_model_dir
    from training.postprocess import DetectorConfig, preset
    from training.train import train

    cfg, model_bytes, _ = load_model_dir(model)
    mined_data, mined_model = work / "magic_wand_mined", work / "model_mined"
    if not (mined_model / "model.tflite").is_file():
        cal_streams = [read_stream(p) for p in sets["cal"]]
        reps = [replay(cfg, model_bytes, s) for s in cal_streams]
        false: list = []
        score(reps, preset("default", cfg), list(cfg.labels), tol, false_times=false)
        win_ms = 1000.0 * cfg.window / cfg.model_rate_hz
        takes = []
        for k, t, cls in false:
            s = cal_streams[k]
            keep = (s.t_ms > t - win_ms) & (s.t_ms <= t)
            takes.append(Take(cfg.unknown_label or "negative", s.t_ms[keep] - s.t_ms[keep][0], s.values[keep], s.channels,
                              meta={"subject": "mined", "source": f"false activation {cfg.labels[cls]} at {s.path.name}:{t:.0f}ms",
                                    "rate_hz": s.rate_hz}))
        log(f"mined {len(takes)} false activations of the default setting on the calibration streams as negative takes")
        if mined_data.exists():
            shutil.rmtree(mined_data)
        shutil.copytree(data, mined_data)
        save_takes(mined_data, takes, prefix="mined")
        log(f"retraining ({args.epochs} epochs) into {mined_model}")
        train(mined_data, mined_model, epochs=args.epochs, seed=0, quiet=True)
    cfg2, model2, _ = load_model_dir(mined_model)
    tol = default_tolerance(cfg2)  # its own window (the retrained plan may choose another)
    cal = calibrate(mined_model, sets["cal"], target_fa_per_hour=args.target, tolerance=tol, write=True)
    reps = [replay(cfg2, model2, read_stream(p)) for p in sets["eval"]]
    labels = list(cfg2.labels)
    return {
        "mined: default (uncalibrated)": score(reps, preset("default", cfg2), labels, tol),
        "mined: micro_speech rule": score(reps, preset("micro_speech", cfg2), labels, tol),
        f"mined: calibrated (target {args.target:g} FA/h on cal.)": score(reps, DetectorConfig(**cal["chosen"]["detector"]),
                                                                            labels, tol),
    }


def background_hours(streams: list, tol) -> float:
    """Hours outside the events' tolerance windows (the FA/h denominator of training.calibrate.score)."""
    total = 0.0
    for s in streams:
        spans = sorted(tol.window(e.onset_ms, e.end_ms) for e in s.events)
        covered, last = 0.0, -np.inf
        for a, b in spans:
            a, b = max(a, 0.0, last), min(b, s.duration_s * 1000)
            covered += max(0.0, b - a)
            last = max(last, b)
        total += s.duration_s * 1000 - covered
    return total / 3.6e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--target", type=float, default=1.0, help="FA/h target of the calibration")
    ap.add_argument("--work", type=Path, default=None, help="keep the dataset, model and streams here")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--mine", action="store_true",
                    help="then the loop a user runs with the dashboard: every false activation of the default "
                         "setting on the calibration streams becomes a negative take (the model's window ending "
                         "at it), retrain, calibrate again, measure again")
    ap.add_argument("--train-negatives", default="",
                    help="continuous negative recordings to put in the training set instead (e.g. negative_2,negative_4); "
                         "the streams use only the others")
    args = ap.parse_args()
    if not TARBALL.is_file():
        log(f"skipped: {TARBALL} is absent")
        return 0
    from capture.importers import import_files
    from capture.streams import read_stream
    from capture.takes import read_manifest, save_takes, write_manifest
    from training.calibrate import calibrate, choose, default_tolerance, grid, replay, score
    from training.dataset import load_dataset
    from training.postprocess import DetectorConfig, preset
    from training.train import quiet_tensorflow_logs, train

    quiet_tensorflow_logs()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_calibrate_"))
    data, model = work / "magic_wand", work / "model"
    if not (data / "dataset.json").is_file():
        log(f"importing {TARBALL} into {data}")
        res = import_files("magic-wand", [TARBALL])
        save_takes(data, res.takes, prefix="mw", defaults=res.defaults)
    man = read_manifest(data)
    trained = tuple(x for x in args.train_negatives.split(",") if x)
    unseen = [c for c in CONTINUOUS if c not in trained]
    cal_half, eval_half = halves(unseen)
    man["test_subjects"] = list(TEST_PEOPLE) + unseen
    write_manifest(data, man)
    if not (model / "model.tflite").is_file():
        log(f"training the default model ({args.epochs} epochs) into {model}")
        train(data, model, epochs=args.epochs, seed=0, quiet=True)
    ds = load_dataset(data)
    bgs = backgrounds()
    sets = {}
    for name, (person, bg_names) in (("cal", cal_half), ("eval", eval_half)):
        takes = [t for t in ds.takes if t.meta.get("subject") == person and t.label != "negative"]
        d = work / f"streams_{name}"
        if not d.is_dir():
            build_streams(d, takes, [bgs[b] for b in bg_names], seed=7 if name == "cal" else 11)
        sets[name] = sorted(p for p in d.iterdir() if p.is_dir())
        log(f"{name}: {len(sets[name])} streams from {person}'s {len(takes)} takes in {', '.join(bg_names)} "
            f"({sum(len(bgs[b]) for b in bg_names) / 25 / 60:.1f} min of distinct real background)")

    from training.model_dir import load_model_dir

    cfg, model_bytes, _ = load_model_dir(model)
    tol = default_tolerance(cfg)
    log("calibrating on the calibration streams")
    cal = calibrate(model, sets["cal"], target_fa_per_hour=args.target, tolerance=tol, write=True)
    log("measuring on the evaluation streams")
    streams = [read_stream(p) for p in sets["eval"]]
    reps = [replay(cfg, model_bytes, s) for s in streams]
    labels = list(cfg.labels)
    rows = {
        "default (uncalibrated)": score(reps, preset("default", cfg), labels, tol),
        "micro_speech rule": score(reps, preset("micro_speech", cfg), labels, tol),
        "magic_wand rule": score(reps, preset("magic_wand", cfg), labels, tol),
        f"calibrated (target {args.target:g} FA/h on cal.)": score(reps, DetectorConfig(**cal["chosen"]["detector"]),
                                                                     labels, tol),
    }
    swept = [score(reps, d, labels, tol) for d in grid(cfg)]
    oracle = choose(swept, args.target, 0.05)
    rows[f"best on the eval. streams themselves (target {args.target:g})"] = oracle
    hours = sum(s.duration_s for s in streams) / 3600
    n_events = sum(len(s.events) for s in streams)
    bg_h = background_hours(streams, tol)
    trained_note = f"; continuous negatives in training: {', '.join(trained)}" if trained else \
        "; no continuous negative recording in training"
    print(f"## Always-on: false activations per hour and false rejections (`gesture calibrate`{trained_note})\n")
    print(f"Evaluation streams: {len(streams)}, {hours * 60:.1f} min, {n_events} gesture events "
          f"(hits: the event's label from {tol.before_ms:.0f} ms before its onset to {tol.after_ms:.0f} ms after its end). "
          f"Model: {cfg.model_rate_hz} Hz, window {cfg.window}, stride {cfg.stride} ({cfg.model_rate_hz / cfg.stride:g} candidate windows/s).\n")
    print("| post-processor | setting | FA | FA/h | FRR | latency median / p90 | per label: FRR / FA |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        print_row(name, r, cfg)
    if bg_h:
        print(f"\nHours outside the events' tolerance windows: {bg_h:.3f} h, so one false activation is "
              f"{1 / bg_h:.1f} FA/h; 0 false activations would bound the rate below {3 / bg_h:.0f} FA/h (95 %).")
    if args.mine:
        mined = mine_and_retrain(work, data, model, sets, args, tol)
        rows.update(mined)
        print("\nAfter mining: the default model retrained with the false activations of its default setting on the "
              "calibration streams as negative takes (the dashboard's 'mark as false activation'), then calibrated "
              "again on the calibration streams; measured on the same evaluation streams:\n")
        print("| post-processor | setting | FA | FA/h | FRR | latency median / p90 | per label: FRR / FA |")
        print("|---|---|---:|---:|---:|---:|---|")
        cfg2 = load_model_dir(work / "model_mined")[0]
        for name, r in mined.items():
            print_row(name, r, cfg2)
    if args.json:
        args.json.write_text(json.dumps({"calibration": cal, "evaluation": rows, "hours": hours, "events": n_events},
                                        indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
