"""``gesture train``."""
from __future__ import annotations

from pathlib import Path

import click

from capture.errors import GestureError
from training.train import DEFAULTS, SPLITS


def check_out_dir(out_dir: Path, what: str = "a MODEL_DIR folder (new or written by gesture train)") -> None:
    """--out must be a folder we can create and write (a file there is refused up front)."""
    import os
    import tempfile

    if out_dir.exists() and not out_dir.is_dir():
        raise GestureError(f"--out {out_dir}: is a file; expected {what}")
    probe_dir = out_dir if out_dir.is_dir() else next((d for d in out_dir.absolute().parents if d.exists()), Path("/"))
    if not probe_dir.is_dir():
        raise GestureError(f"--out {out_dir}: {probe_dir} is a file, so the folder cannot be created")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise GestureError(f"--out {out_dir}: cannot write in {probe_dir} ({e.strerror or e})") from None


def cost_probe(tflm: str | None, *, required: bool = False):
    """The M4 instruction counter for `gesture tune` (training.verify.measure_cost) and one line
    saying how candidates' instructions are obtained; (None, why) when the toolchain, QEMU or a
    TFLM tree is missing. ``required`` (the user typed --m4 or --tflm): a GestureError instead of
    the quiet fall-back to estimates, since measurement is what was asked for."""
    from training import tflm_tree, verify

    def missing(why: str):
        if required:
            raise GestureError(f"--m4: cannot measure on the Cortex-M4 ({why}); pass --no-m4 to estimate the "
                               "instructions from the layers instead")
        return None, f"estimated from the model's layers ({why})"

    try:
        tree = tflm_tree.find_tree(tflm)  # first: a wrong --tflm is named whatever else is missing
        verify.check_tools()
    except GestureError as e:
        return missing(str(e))
    if tree is None:
        return missing(tflm_tree.missing_tree_hint())

    def probe(model_bytes: bytes, cfg) -> int:
        return verify.measure_cost(model_bytes, cfg, tflm=tree)["instructions_per_inference"]

    return probe, f"measured on the Cortex-M4 under QEMU (TFLM tree {tree})"


def register(group: click.Group) -> None:
    @group.command("train")
    @click.argument("data", type=click.Path(path_type=Path))
    @click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="MODEL_DIR to write")
    @click.option("--test", "test_data", type=click.Path(path_type=Path), default=None, help="a separate test dataset")
    @click.option("--split", type=click.Choice(list(SPLITS)), default=None,
                  help="how to hold out test takes (default: the declared test people, else Edge Impulse's testing category, else person when takes record subjects, else random)")
    @click.option("--epochs", type=click.IntRange(1), default=DEFAULTS["epochs"], show_default=True)
    @click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
    @click.option("--rate", "rate_hz", type=click.IntRange(1, 1000), default=None,
                  help="model sample rate (Hz; default: from the data, see docs/user-guide.md)")
    @click.option("--window", type=click.IntRange(2, 4096), default=None,
                  help="window length in samples (default: from the data)")
    @click.option("--channels", type=click.Choice(["accel", "imu"]), default="accel", show_default=True,
                  help="accel: ax,ay,az; imu: also gx,gy,gz")
    @click.option("--quiet", is_flag=True, help="no progress output")
    def train_cmd(data: Path, out_dir: Path, test_data: Path | None, split: str | None, epochs: int, seed: int,
                  rate_hz: int | None, window: int | None, channels: str, quiet: bool) -> None:
        """Train a classifier, quantize it to int8 and evaluate it as the board runs it."""
        check_out_dir(out_dir)  # before minutes of training, not after
        from training.progress import interruptible
        from training.train import train

        with interruptible():  # Ctrl-C stops after the current batch, never inside Keras (see training.progress)
            r = train(data, out_dir, test=test_data, split=split, epochs=epochs, seed=seed, rate_hz=rate_hz,
                      window=window, channels=channels, quiet=quiet).report
        click.echo(f"int8 accuracy {r['int8_accuracy']:.1%} (float {r['float_accuracy']:.1%}) on {r['n_test']} test takes; "
                   f"model {r['model_bytes']:,} bytes, arena {r['arena_bytes']:,} bytes; report: {out_dir / 'report.md'}")

    @group.command("tune")
    @click.argument("data", type=click.Path(path_type=Path))
    @click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
                  help="DIR: study.db, tune.md, pareto.png and the chosen model in DIR/model")
    @click.option("--budget-flash", type=click.IntRange(1024), default=None, help="max model bytes (default 65536)")
    @click.option("--budget-arena", type=click.IntRange(256), default=None, help="max tensor arena bytes (default 8192)")
    @click.option("--budget-instructions", type=click.IntRange(1000), default=None,
                  help="max instructions per inference on the M4 (default 600000, ~9 ms at 64 MHz; measured on the M4 under QEMU, else estimated)")
    @click.option("--trials", type=click.IntRange(1, 10000), default=20, show_default=True,
                  help="finished trials the study should hold (a re-run resumes up to this)")
    @click.option("--storage", default=None, help="Optuna storage URL to share one study between processes/machines "
                  "(sqlite:///PATH, postgresql://..., or journal:PATH); default: DIR/study.db")
    @click.option("--worker", is_flag=True, help="only run trials for a shared study (no report, no final model)")
    @click.option("--folds", type=click.IntRange(2, 10), default=3, show_default=True, help="person-wise CV folds")
    @click.option("--epochs", type=click.IntRange(1, 1000), default=8, show_default=True, help="epochs per CV fold")
    @click.option("--final-epochs", type=click.IntRange(1, 1000), default=DEFAULTS["epochs"], show_default=True,
                  help="epochs of the chosen model's final training")
    @click.option("--timeout", type=click.FloatRange(1), default=480, show_default=True,
                  help="start no new trial after this many seconds (a re-run resumes)")
    @click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
    @click.option("--limit-per-label", type=click.IntRange(2), default=None, hidden=True)
    @click.option("--m4/--no-m4", "m4", default=True, show_default=True,
                  help="measure each candidate's instructions on the Cortex-M4 under QEMU (needs the ARM toolchain, "
                       "qemu-system-arm and a TFLM tree); otherwise they are estimated from the layers (training/m4_cost.py)")
    @click.option("--tflm", "tflm", default=None, help="TFLM source tree or tarball for --m4 (default: $GESTURE_TFLM "
                  "or the user cache)")
    @click.option("--test", "test_data", type=click.Path(path_type=Path), default=None,
                  help="a separate test dataset: every person in DATA is then a training person, and the chosen "
                       "model is scored on this one (like gesture train --test)")
    @click.option("--quiet", is_flag=True, help="no progress bar (data warnings still shown)")
    @click.pass_context
    def tune_cmd(ctx: click.Context, data: Path, out_dir: Path, budget_flash: int | None, budget_arena: int | None,
                 budget_instructions: int | None, trials: int, storage: str | None, worker: bool, folds: int,
                 epochs: int, final_epochs: int, timeout: float | None, seed: int, limit_per_label: int | None,
                 m4: bool, tflm: str | None, test_data: Path | None, quiet: bool) -> None:
        """Search rate, window, channels, architecture and augmentation under the board budget
        (person-wise CV on the training people, int8 in TFLM), then train the chosen model."""
        from training.tune import tune

        from capture.takes import check_not_in_dataset

        check_not_in_dataset(out_dir, "--out", [data])
        if storage is None or not worker:
            check_out_dir(out_dir, "tune's DIR")  # a read-only or full --out: now, not after the trials
        if not m4 and tflm is not None:
            raise GestureError("--tflm is for --m4 (measuring on the Cortex-M4); drop it or drop --no-m4")
        asked = tflm is not None or ctx.get_parameter_source("m4") == click.core.ParameterSource.COMMANDLINE
        probe, how = cost_probe(tflm, required=asked) if m4 else (None, "estimated from the model's layers (--no-m4)")
        click.echo(f"instructions per inference: {how}", err=True)
        from training.progress import interruptible

        with interruptible():
            r = tune(data, out_dir, budget_flash=budget_flash, budget_arena=budget_arena,
                     budget_instructions=budget_instructions, trials=trials, storage=storage, worker=worker,
                     folds=folds, epochs=epochs, final_epochs=final_epochs, timeout=timeout, seed=seed,
                     limit_per_label=limit_per_label, quiet=quiet, cost_probe=probe, test=test_data)
        done = sum(row["state"] == "complete" for row in r.rows)
        if worker:
            click.echo(f"worker done: the study holds {len(r.rows)} finished trial(s), {done} within the budget")
            return
        m = r.model_report or {}
        click.echo(f"{len(r.rows)} trial(s), {done} within the budget; chosen trial {r.chosen['trial']}: "
                   f"CV int8 {r.chosen['cv_accuracy']:.1%}; final model int8 {m.get('int8_accuracy', 0):.1%} on "
                   f"{m.get('n_test', 0)} test takes, {m.get('model_bytes', 0):,} bytes, arena {m.get('arena_bytes', 0):,} bytes; "
                   f"report: {out_dir / 'tune.md'}")

    @group.command("evaluate")
    @click.argument("model_dir", type=click.Path(path_type=Path))
    @click.argument("data", type=click.Path(path_type=Path))
    @click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
                  help="also write the figures (and every take's prediction) to this JSON file")
    def evaluate_cmd(model_dir: Path, data: Path, json_out: Path | None) -> None:
        """Score a trained model on a dataset: int8 accuracy in the TFLM interpreter, per class,
        confusion matrix (the same figures gesture train --test reports on that data)."""
        import json

        from capture.fileio import atomic_write_text
        from training.score import score, text_report

        r = score(model_dir, data)
        click.echo(text_report(r))
        if json_out is not None:
            atomic_write_text(json_out, json.dumps(r, indent=1) + "\n")
            click.echo(f"figures: {json_out}")
