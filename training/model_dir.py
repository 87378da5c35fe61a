"""The model folder (MODEL_DIR): the one owner of its layout, its writing and its checks.

``gesture train`` writes it; export, the board simulator, the virtual board and the dashboard
read it, all through :func:`load_model_dir`. Written as a whole (``capture.fileio.write_folder``:
hidden sibling, then one rename), so a kill mid-write leaves the previous model folder as it was,
never a new model.tflite beside an old config.json. Read checked: the model bytes must match the
``model_sha256`` the trainer recorded, parse as a TFLite flatbuffer, and have one output per label
and the input the config describes; otherwise a DataError names the file and what is wrong.

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
from capture.resources import bundled_dataset, data_dir
from training.preprocess import CONFIG_NAME, PreprocessConfig

MODEL_FILE = "model.tflite"
KERAS_FILE = "model.keras"
LABELS_FILE = "labels.txt"
REPORT_FILE = "report.json"
# every file a model folder may hold: a folder with anything else is not overwritten
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
    report = dict(report, model_sha256=sha256(tflite), model_bytes=len(tflite))
    files = {MODEL_FILE: tflite, KERAS_FILE: keras, CONFIG_NAME: cfg.to_json().encode(),
             LABELS_FILE: ("\n".join(cfg.labels) + "\n").encode(),
             REPORT_FILE: (json.dumps(report, indent=1) + "\n").encode(), **extra}
    unknown = set(files) - KNOWN_FILES
    if unknown:
        raise ValueError(f"not model folder files: {sorted(unknown)} (add them to KNOWN_FILES)")
    write_folder(out, files)
    return report


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
    return cfg, tflite, report


def default_data_dir(report: dict) -> Path:
    """The dataset the model was trained on (report.json 'dataset'), else (none named) the bundled one.

    ``gesture train`` records the absolute path; an older relative one is tried against the
    working directory and the kit's data folder. A dataset named but not found is an error, never
    a silent switch to the bundled takes (whose labels a user's model does not know).
    """
    d = report.get("dataset")
    if not d:
        return bundled_dataset()
    path = Path(d)
    for cand in (path,) if path.is_absolute() else (path, data_dir().parent / d):  # as given, or relative to the kit
        if cand.is_dir():
            return cand
    raise DataError(d, "the model's report.json names this dataset but it is not a folder here; "
                    "pass the takes to replay (data=DIR in the URL, or --data DIR)")
