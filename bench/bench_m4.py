"""On-device cost on the Cortex-M4: the default model and both public baselines, side by side.

Each model goes the way a user's does: int8 MODEL_DIR -> `gesture export` (TFLM runtime + the
model's CMSIS-NN kernels bundled) -> `gesture verify` (the sketch built for Cortex-M4 with
arm-none-eabi-gcc -Os, run under QEMU mps2-an386 with -icount shift=0). Reported: mismatches
against the Python evaluation, instructions per inference (and ms at 64 MHz, one instruction per
cycle), arena_used_bytes() on the M4, and model + runtime flash/RAM from the linker map.

    python bench/bench_m4.py                 # 20 epochs each (accuracy is not the point here)
    python bench/bench_m4.py --epochs 3      # quicker, the same cost figures
Needs the TFLM tree (--tflm, $GESTURE_TFLM or the user cache) and the ARM toolchain + QEMU.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import log, magic_wand, tflm_tree  # first: puts ROOT on sys.path for the kit's imports below

DATA = magic_wand()


def baseline_model_dir(name: str, build, out: Path, data: Path, window: int | None, epochs: int, seed: int) -> Path:
    """A MODEL_DIR for a baseline: the path `gesture train` takes (prepare -> fit -> int8 -> arena)."""
    import keras

    from training.baselines import input_shape
    from training.evaluate import board_arena
    from training.model_dir import write_model_dir
    from training.train import fit_and_evaluate, prepare

    p = prepare(data, seed=seed, window=window, quiet=True)
    keras.utils.set_random_seed(seed)
    model = build(p.windows.cfg.window, len(p.windows.cfg.channels), len(p.windows.cfg.labels))
    e = fit_and_evaluate(model, p.windows, epochs=epochs, seed=seed, quiet=True, input_shape=input_shape(model))
    # the baselines' convolutions are small; the CMSIS-NN scratch allowance of the default is kept
    report = {"model": name, "dataset": str(data), "arena_bytes": e.arena, "arena_board_bytes": board_arena(e.arena, 2048)}
    write_model_dir(out, tflite=e.int8.tflite, keras=b"", cfg=e.cfg, report=report, extra={})  # the sha256 recorded
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tflm", type=Path, default=tflm_tree())
    ap.add_argument("--stream", type=int, default=20, help="takes in the replayed IMU stream")
    args = ap.parse_args()

    from training import verify
    from training.baselines import MAGIC_WAND_SEQ_LENGTH, arduino_mlp, magic_wand_cnn
    from training.export import export_sketch
    from training.tflm_tree import find_tree, missing_tree_hint
    from training.train import train

    tree = find_tree(args.tflm)
    if tree is None:
        log(missing_tree_hint())
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-m4-") as tmp:
        d = Path(tmp)
        models = []
        log("training the default model ...")
        train(args.data, d / "default", epochs=args.epochs, seed=args.seed, quiet=True)
        models.append(("default 1-D CNN (gesture train)", d / "default"))
        for name, build, window, key in (("Arduino tutorial MLP (int8)", arduino_mlp, 120, "mlp"),
                                         ("TFLM magic_wand CNN (int8)", magic_wand_cnn, MAGIC_WAND_SEQ_LENGTH, "cnn")):
            log(f"training {name} ...")
            models.append((name, baseline_model_dir(name, build, d / key, args.data, window, args.epochs, args.seed)))
        for name, model_dir in models:
            log(f"export + verify {name} on the M4 ...")
            sketch = d / f"{model_dir.name}_sketch"
            export_sketch(model_dir, sketch, tflm=tree)
            r = verify.run(model_dir, sketch, data_dir=args.data, stream_takes=args.stream, update_report=False)
            model_bytes = (model_dir / "model.tflite").stat().st_size
            rows.append((name, model_bytes, r))

    print("## On the Cortex-M4: instructions, arena, flash (`gesture verify`, QEMU mps2-an386)\n")
    print("Each model exported with its bundled TFLM runtime + CMSIS-NN kernels, built with arm-none-eabi-gcc -Os "
          "for Cortex-M4F, run under QEMU with one instruction per ns of virtual time; "
          f"ms assume one instruction per cycle at {verify.BOARD_MHZ} MHz. "
          "Mismatches: bytes differing from the Python (tflite_micro) evaluation over every take of "
          f"{args.data.name} and a {args.stream}-take replayed IMU stream.\n")
    print("| model | model bytes | instructions / inference | ms at 64 MHz | arena_used_bytes() on M4 | "
          "flash model + runtime | RAM model + runtime (incl. arena) | mismatches / bytes compared |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model_bytes, r in rows:
        print(f"| {name} | {model_bytes:,} | {r.instructions_per_inference:,} | {r.ms_at_64mhz:.1f} | "
              f"{r.arena_bytes_m4:,} | {r.flash_bytes_model_runtime:,} | {r.ram_bytes_model_runtime:,} | "
              f"{r.mismatches} / {r.compared_bytes:,} |")
    print(f"\nTFLM {rows[0][2].tflm_commit[:7]}, {rows[0][2].toolchain}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
