"""The model folder (MODEL_DIR): the one owner of its layout, its writing and its checks.

``gesture train`` writes it; export, the board simulator, the virtual board and the dashboard
read it, all through :func:`load_model_dir`. Written as a whole (``capture.fileio.write_folder``:
hidden sibling, then one rename), so a kill mid-write leaves the previous model folder as it was,
never a new model.tflite beside an old config.json. Read checked: the model bytes must match the
``model_sha256`` the trainer recorded, parse as a TFLite flatbuffer, and have one output per label
and the input the config describes; every other file the trainer wrote (config.json, labels.txt,
model.keras) must match its sha256 in report.json's ``files_sha256`` (one flipped bit in a
normalization mean, or two labels swapped, would otherwise pass every structural check and make a
sketch that classifies wrongly); labels.txt must list config.json's labels. Otherwise a DataError
names the file and what is wrong. (report.json is the record itself: ``gesture verify`` adds its
measurements to it.)

    model.tflite   the int8 model (exact bytes the sketch embeds)
    model.keras    the float model (for inspection and further training)
    config.json    PreprocessConfig: labels, window, rates, normalization, quantization
    labels.txt     one label per line
    report.json    figures of the run, incl. model_sha256, arena sizes; report.md + PNGs for people
    calibration.json/.png   `gesture calibrate`: the post-processor sweep on continuous recordings
                   (its chosen setting is config.json's `detector`)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from capture.errors import DataError, GestureError
from capture.fileio import write_folder
from training.preprocess import CONFIG_NAME, PreprocessConfig

MODEL_FILE = "model.tflite"
KERAS_FILE = "model.keras"
LABELS_FILE = "labels.txt"
REPORT_FILE = "report.json"
# every file a model folder may hold: a folder with anything else is not overwritten
# files whose sha256 report.json records (besides model.tflite's model_sha256) and load_model_dir checks
CHECKED_FILES = (CONFIG_NAME, LABELS_FILE, KERAS_FILE)
CALIBRATION_FILES = frozenset({"calibration.json", "calibration.png"})  # `gesture calibrate` adds them
KNOWN_FILES = frozenset({MODEL_FILE, KERAS_FILE, CONFIG_NAME, LABELS_FILE, REPORT_FILE, "report.md",
                         "confusion.png", "training.png"}) | CALIBRATION_FILES


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_target(out: str | Path) -> Path:
    """Refuse, before any work, an ``--out`` that writing a model folder would destroy."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GestureError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir() if p.name not in KNOWN_FILES)
        if other:
            raise GestureError(f"{out} holds files that are not a model folder's ({', '.join(other[:5])}); "
                               "choose an empty or new folder for --out")
    return out


def write_model_dir(out: str | Path, *, tflite: bytes, keras: bytes, cfg: PreprocessConfig, report: dict,
                    extra: dict[str, bytes]) -> dict:
    """Write the whole model folder in one step; returns ``report`` with ``model_sha256``/``model_bytes``.

    ``extra`` holds the human-readable files (report.md, PNGs) rendered from the same report.
    """
    out = check_target(out)
    files = {MODEL_FILE: tflite, KERAS_FILE: keras, CONFIG_NAME: cfg.to_json().encode(),
             LABELS_FILE: ("\n".join(cfg.labels) + "\n").encode()}
    report = dict(report, model_sha256=sha256(tflite), model_bytes=len(tflite),
                  files_sha256={name: sha256(files[name]) for name in CHECKED_FILES})
    files = {**files, REPORT_FILE: (json.dumps(report, indent=1) + "\n").encode(), **extra}
    unknown = set(files) - KNOWN_FILES
    if unknown:
        raise ValueError(f"not model folder files: {sorted(unknown)} (add them to KNOWN_FILES)")
    write_folder(out, files)
    return report


def update_model_dir(model_dir: str | Path, *, cfg: PreprocessConfig, extra: dict[str, bytes]) -> None:
    """Rewrite a trained model folder with a new ``config.json`` (e.g. the post-processor setting
    `gesture calibrate` chose) and ``extra`` files, as a whole: report.json's ``files_sha256``
    follows the new config, and a kill at any moment leaves the old folder or the new one."""
    model_dir = Path(model_dir)
    report = json.loads((model_dir / REPORT_FILE).read_text(encoding="utf-8"))
    config = cfg.to_json().encode()
    report["files_sha256"] = dict(report.get("files_sha256") or {}, **{CONFIG_NAME: sha256(config)})
    files = {CONFIG_NAME: config, REPORT_FILE: (json.dumps(report, indent=1) + "\n").encode(), **extra}
    unknown = set(files) - KNOWN_FILES
    if unknown:
        raise ValueError(f"not model folder files: {sorted(unknown)} (add them to KNOWN_FILES)")
    keep = [f.name for f in model_dir.iterdir() if f.is_file() and f.name in KNOWN_FILES and f.name not in files]
    write_folder(model_dir, files, carry=keep)


def _shape(tensor) -> tuple[int, ...]:
    return tuple(int(tensor.Shape(i)) for i in range(tensor.ShapeLength()))


def model_io(tflite: bytes, path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input shape, output shape) of subgraph 0; a DataError naming ``path`` if the bytes are
    not a whole TFLite flatbuffer (the flatbuffer reader's own errors are struct.error/IndexError)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    if len(tflite) < 8 or tflite[4:8] != b"TFL3":
        raise DataError(path, f"not a TFLite model ({len(tflite)} bytes, no TFL3 identifier at byte offset 4); "
                        "re-run `gesture train`", offset=4)
    try:
        model = schema.Model.GetRootAsModel(tflite, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
        sg = model.Subgraphs(0)
        if sg.InputsLength() != 1 or sg.OutputsLength() != 1:
            raise ValueError(f"{sg.InputsLength()} inputs and {sg.OutputsLength()} outputs (expected 1 and 1)")
        shapes = _shape(sg.Tensors(int(sg.Inputs(0)))), _shape(sg.Tensors(int(sg.Outputs(0))))
        for i in range(model.BuffersLength()):  # touches every buffer's offsets: a cut file fails here
            b = model.Buffers(i)
            if b.DataLength():
                b.DataAsNumpy()
    except Exception as e:  # the generated reader raises struct.error, IndexError, ... on a cut file
        raise DataError(path, f"truncated or corrupt TFLite model ({len(tflite)} bytes): {type(e).__name__}: {e}; "
                        "re-run `gesture train`") from None
    return shapes


def load_model_dir(model_dir: str | Path) -> tuple[PreprocessConfig, bytes, dict]:
    """config, model.tflite bytes and report.json (empty dict if absent) of a MODEL_DIR, checked."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise DataError(model_dir, "model folder not found; expected the MODEL_DIR written by `gesture train`")
    path = model_dir / MODEL_FILE
    if not path.is_file():
        raise DataError(path, "not found; expected the int8 model written by `gesture train`")
    cfg = PreprocessConfig.load(model_dir)
    if not cfg.mult:
        raise DataError(model_dir / CONFIG_NAME, "has no input quantization (mult); re-run `gesture train`", field="mult")
    report: dict = {}
    rpath = model_dir / REPORT_FILE
    if rpath.is_file():
        try:
            report = json.loads(rpath.read_text())
        except json.JSONDecodeError as e:
            raise DataError(rpath, f"invalid JSON: {e.msg}", line=e.lineno) from None
        if not isinstance(report, dict):
            raise DataError(rpath, "expected a JSON object")
    tflite = path.read_bytes()
    want = report.get("model_sha256")
    if rpath.is_file() and not isinstance(want, str):
        raise DataError(rpath, "missing 'model_sha256' (written by `gesture train` since the model folder is "
                        "checked); re-run `gesture train`", field="model_sha256")
    if want is not None and sha256(tflite) != want:
        raise DataError(path, f"sha256 {sha256(tflite)[:16]}… does not match report.json's model_sha256 "
                        f"{str(want)[:16]}… ({len(tflite)} bytes): the model was changed or damaged; "
                        "re-run `gesture train`")
    shape_in, shape_out = model_io(tflite, path)
    if int(np.prod(shape_out)) != len(cfg.labels):
        raise DataError(path, f"output has {int(np.prod(shape_out))} values (shape {list(shape_out)}) but config.json "
                        f"has {len(cfg.labels)} labels {cfg.labels}: model and config are from different runs")
    if int(np.prod(shape_in)) != cfg.window * len(cfg.channels):
        raise DataError(path, f"input shape {list(shape_in)} does not hold config.json's window {cfg.window} x "
                        f"{len(cfg.channels)} channels: model and config are from different runs")
    if rpath.is_file():
        _check_files(model_dir, report)
    lpath = model_dir / LABELS_FILE
    if lpath.is_file() and lpath.read_text(encoding="utf-8", errors="replace").splitlines() != list(cfg.labels):
        raise DataError(lpath, f"does not list config.json's labels {cfg.labels} in that order: the model folder "
                        "was changed or damaged; re-run `gesture train`")
    return cfg, tflite, report


def _check_files(model_dir: Path, report: dict) -> None:
    """Every file report.json's ``files_sha256`` records must still have that sha256.

    A recorded file that is absent is let pass (config.json is required anyway): a model copied
    without model.keras or labels.txt still exports; a changed one is refused.
    """
    rpath = model_dir / REPORT_FILE
    recorded = report.get("files_sha256")
    if not isinstance(recorded, dict) or not all(isinstance(recorded.get(n), str) for n in (CONFIG_NAME, LABELS_FILE)):
        raise DataError(rpath, f"missing 'files_sha256' for {CONFIG_NAME} and {LABELS_FILE} (written by `gesture "
                        "train` since every file of the model folder is checked); re-run `gesture train`",
                        field="files_sha256")
    for name, want in sorted(recorded.items()):
        if name not in CHECKED_FILES:
            continue
        path = model_dir / name
        if not path.is_file():
            continue
        got = sha256(path.read_bytes())
        if got != want:
            raise DataError(path, f"sha256 {got[:16]}… does not match report.json's files_sha256 {str(want)[:16]}…: "
                            "the file was changed or damaged since `gesture train` wrote it; re-run `gesture train`")


def default_data_dir(report: dict) -> Path | None:
    """The dataset the model was trained on (report.json 'dataset'); None when it was the simulated
    hand (report.json 'simulated'), which the virtual boards then simulate again.

    ``gesture train`` records the absolute path; a relative one is tried against the working
    directory. A dataset named but not found is an error, never a silent switch to other takes
    (whose labels a user's model does not know).
    """
    d = report.get("dataset")
    path = Path(d) if d else None
    if path is not None and path.is_dir():
        return path
    if report.get("simulated"):
        return None
    if path is None:
        raise DataError("report.json", "names no dataset the model was trained on; pass the takes to replay "
                        "(data=DIR in the URL, or --data DIR)")
    raise DataError(str(d), "the model's report.json names this dataset but it is not a folder here; "
                    "pass the takes to replay (data=DIR in the URL, or --data DIR)")
