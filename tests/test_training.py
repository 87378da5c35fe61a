"""Training on a small real subset: int8 model, TFLM runtime, report fields, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from capture.errors import GestureError
from capture.takes import Take, save_takes
from gesture_cli import main
from training.preprocess import PreprocessConfig, crop_take, quantize_input, take_counts
from training.dataset import load_dataset

ROOT = Path(__file__).resolve().parent.parent
MAGIC = ROOT / "data" / "magic_wand"
REPORT_FIELDS = ["labels", "n_train", "n_test", "split", "float_accuracy", "int8_accuracy", "per_class",
                 "confusion_matrix", "model_bytes", "arena_bytes", "macs", "params", "train_seconds",
                 "tensorflow_version", "tflite_micro_version", "ops", "test_predictions"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from training.train import train
    out = tmp_path_factory.mktemp("model")
    return train(MAGIC, out, epochs=4, limit_per_label=40, augment=2, seed=1, quiet=True)


def test_int8_model_runs_in_tflm_with_int8_io(trained):
    from tflite_micro import runtime
    buf = (trained.model_dir / "model.tflite").read_bytes()
    it = runtime.Interpreter.from_bytes(buf, arena_size=trained.report["arena_bytes"])
    inp, out = it.get_input_details(0), it.get_output_details(0)
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    cfg = trained.config
    assert tuple(inp["shape"]) == (1, cfg.window, 3)
    take = load_dataset(MAGIC).by_label()["wing"][0]
    it.set_input(quantize_input(crop_take(take_counts(take, cfg), cfg), cfg).reshape(inp["shape"]), 0)
    it.invoke()
    assert it.get_output(0).shape == (1, 4)


def test_report_has_every_field_with_sane_values(trained):
    r = json.loads((trained.model_dir / "report.json").read_text())
    for f in REPORT_FIELDS:
        assert f in r, f
    assert r["labels"] == ["negative", "ring", "slope", "wing"]
    assert r["split"] == "person" and r["test_subjects"] == ["liucx", "zhangxy", "negative_1"]
    assert 0.5 < r["int8_accuracy"] <= 1 and 0.5 < r["float_accuracy"] <= 1
    assert r["float_int8_agreement"] >= 0.9  # int8 argmax agrees with float on most windows
    assert np.array(r["confusion_matrix"]).shape == (4, 4) and np.array(r["confusion_matrix"]).sum() == r["n_test"]
    assert 2000 < r["model_bytes"] < 30000 and 1000 < r["arena_bytes"] < 20000
    assert r["arena_board_bytes"] > r["arena_bytes"]
    assert r["params"] > 1000 and r["macs"] > r["params"]
    assert set(r["ops"]) <= {"RESHAPE", "CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}
    assert len(r["test_predictions"]) == r["n_test"]
    acc = np.mean([p["pred"] == p["label"] for p in r["test_predictions"]])
    assert acc == pytest.approx(r["int8_accuracy"])
    for f in ("report.md", "confusion.png", "training.png", "labels.txt", "model.keras"):
        assert (trained.model_dir / f).stat().st_size > 0
    assert (trained.model_dir / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_config_reproduces_model_input_quantization(trained):
    cfg = PreprocessConfig.load(trained.model_dir)
    assert cfg == trained.config
    from training.evaluate import TflmModel
    m = TflmModel((trained.model_dir / "model.tflite").read_bytes())
    assert (m.input_scale, m.input_zero_point) == (cfg.input_scale, cfg.input_zero_point)
    # the stored test predictions are what the TFLM runtime gives on the board's preprocessing
    p = json.loads((trained.model_dir / "report.json").read_text())["test_predictions"][0]
    from capture.takes import read_take
    take = read_take(MAGIC / p["take"])
    scores = m.predict(quantize_input(crop_take(take_counts(take, cfg), cfg), cfg)).astype(int) + 128
    assert scores.tolist() == p["scores"]


def test_smallest_arena_is_minimal(trained):
    from training.evaluate import arena_works
    n = trained.report["arena_bytes"]
    path = trained.model_dir / "model.tflite"
    assert arena_works(path, n) and not arena_works(path, n - 16)


def synth_dataset(tmp_path, labels=("a", "b"), n=6, length=60, subjects=True):
    rng = np.random.default_rng(0)
    takes = []
    for li, label in enumerate(labels):
        for i in range(n):
            v = rng.normal(0, 0.3, (length, 3)) + li
            takes.append(Take(label, np.arange(length) * 40.0, v, meta={"subject": f"p{i % 3}"} if subjects else {}))
    save_takes(tmp_path, takes)
    return tmp_path


def test_bad_inputs_fail_before_training(tmp_path):
    from training.train import train
    one = synth_dataset(tmp_path / "one", labels=("a",))
    with pytest.raises(GestureError, match="only one label"):
        train(one, tmp_path / "m")
    ds = synth_dataset(tmp_path / "ds")
    with pytest.raises(GestureError, match="shorter than a quarter of the 248-sample window"):
        train(ds, tmp_path / "m", window=248)
    with pytest.raises(GestureError, match="--channels imu needs gyro in every take"):
        train(ds, tmp_path / "m", channels="imu")
    other = synth_dataset(tmp_path / "other", labels=("a", "zzz"))
    with pytest.raises(GestureError, match=r"has label\(s\) \['zzz'\] that the training set"):
        train(ds, tmp_path / "m", test=other)
    nosub = synth_dataset(tmp_path / "nosub", subjects=False)
    with pytest.raises(GestureError, match="--split person needs takes from at least 2 subjects"):
        train(nosub, tmp_path / "m", split="person")
    few = synth_dataset(tmp_path / "few", n=2)
    with pytest.raises(GestureError, match="label 'a' has 1 training take"):
        train(few, tmp_path / "m", split="person")
    assert not (tmp_path / "m").exists()


def test_unsupported_layer_rejected_with_clear_message():
    import keras
    from training.model import check_layers
    inp = keras.Input((20, 3))
    out = keras.layers.Dense(2)(keras.layers.LSTM(4)(inp))
    with pytest.raises(GestureError, match=r"\(LSTM\) cannot run on the board: LSTM does not convert to full int8"):
        check_layers(keras.Model(inp, out))


def test_unsupported_op_rejected():
    from training.tflm_ops import check_supported
    with pytest.raises(GestureError, match="TILE: UpSampling layers convert to TILE"):
        check_supported(["CONV_2D", "TILE"])


def test_train_cli_bad_input_exit_2(tmp_path, capsys):
    ds = synth_dataset(tmp_path / "ds")
    assert main(["train", str(ds), "--out", str(tmp_path / "m"), "--window", "248", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "shorter than a quarter" in err and "Traceback" not in err
