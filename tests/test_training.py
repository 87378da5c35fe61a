"""Training on a small subset of the simulated hand: int8 model, TFLM runtime, report fields, bad input."""
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
from conftest import DATA

ROOT = Path(__file__).resolve().parent.parent
MAGIC = DATA  # the simulated hand (tests/conftest.py); real recordings: the magic_wand fixture
REPORT_FIELDS = ["labels", "n_train", "n_test", "split", "float_accuracy", "int8_accuracy", "per_class",
                 "confusion_matrix", "model_bytes", "arena_bytes", "macs", "params", "train_seconds",
                 "tensorflow_version", "tflite_micro_version", "ops", "test_predictions"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from training.train import train
    out = tmp_path_factory.mktemp("model")
    return train(MAGIC, out, epochs=20, limit_per_label=40, augment=2, seed=1, quiet=True)


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
    assert r["split"] == "person" and r["test_subjects"] == ["sim06", "sim07"]
    assert r["simulated"] is True and "Simulated data" in (trained.model_dir / "report.md").read_text()
    assert 0.5 < r["int8_accuracy"] <= 1 and 0.5 < r["float_accuracy"] <= 1
    assert r["float_int8_agreement"] >= 0.9  # int8 argmax agrees with float on most windows
    assert np.array(r["confusion_matrix"]).shape == (4, 4) and np.array(r["confusion_matrix"]).sum() == r["n_test"]
    assert 2000 < r["model_bytes"] < 30000 and 1000 < r["arena_bytes"] < 20000
    assert r["arena_board_bytes"] > r["arena_bytes"]
    assert r["params"] > 500 and r["macs"] > r["params"]
    assert set(r["ops"]) <= {"RESHAPE", "CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}
    assert r["macs"] < 150_000  # the default fits the M4 budget of 600 k instructions (measured 499 k at 114 k MACs)
    assert len(r["test_predictions"]) == r["n_test"]
    acc = np.mean([p["pred"] == p["label"] for p in r["test_predictions"]])
    assert acc == pytest.approx(r["int8_accuracy"])
    assert set(r["timings"]) >= {"prepare", "fit", "convert", "evaluate", "arena"}
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


def test_rejection_threshold_calibrated_on_validation(trained):
    from training.train import KEEP_CORRECT
    r = trained.report
    cfg = PreprocessConfig.load(trained.model_dir)
    assert cfg.confidence_threshold == r["confidence_threshold"] and 0 < cfg.confidence_threshold <= 255
    assert cfg.unknown_label == "negative"
    rej = r["rejection_validation"]
    assert rej["windows"] > r["n_val"]  # plain + augmented validation windows
    assert rej["kept_correct"] >= KEEP_CORRECT - 0.02


def test_confidence_threshold_rule():
    from training.train import confidence_threshold, rejection_stats
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(1, 3, n)
    conf = rng.integers(100, 256, n)
    scores = np.zeros((n, 3), np.int64)
    scores[np.arange(n), y] = conf
    scores[:40, 0] = 255  # 40 windows predicted as the unknown class (0): not counted
    scores[40:60, :] = 0
    scores[np.arange(40, 60), 3 - y[40:60]] = 60  # 20 wrong gesture predictions with low confidence
    th = confidence_threshold(scores, y, unknown=0)
    correct = conf[60:]
    assert np.mean(correct >= th) >= 0.97 and np.mean(correct >= th + 1) < 0.97  # largest such threshold
    st = rejection_stats(scores, y, th, unknown=0)
    assert st["n_wrong"] == 20 and st["rejected_wrong"] == 1.0 and st["kept_correct"] >= 0.97
    assert rejection_stats(scores[60:], y[60:], th, unknown=0)["rejected_wrong"] is None  # nothing wrong
    assert confidence_threshold(scores[:0], y[:0]) == 0


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
    other = synth_dataset(tmp_path / "other", labels=("zzz",))
    with pytest.raises(GestureError, match=r"test set .*other has no take of a label the training set .* has: its labels are \['zzz'\]"):
        train(ds, tmp_path / "m", test=other)
    nosub = synth_dataset(tmp_path / "nosub", subjects=False)
    with pytest.raises(GestureError, match="--split person needs takes from at least 2 subjects"):
        train(nosub, tmp_path / "m", split="person")
    few = synth_dataset(tmp_path / "few", n=2)
    with pytest.raises(GestureError, match="label 'a' has 1 training take"):
        train(few, tmp_path / "m", split="person")
    assert not (tmp_path / "m").exists()


def test_splits_person_session_random_are_disjoint_and_repeatable(tmp_path):
    from training.dataset import load_dataset
    from training.train import prepare, split_takes
    rng = np.random.default_rng(0)
    takes = [Take(label, np.arange(40) * 40.0, rng.normal(0, 0.3, (40, 3)) + li,
                  meta={"subject": f"p{i % 4}", "session": f"s{i % 5}"})
             for li, label in enumerate(("a", "b")) for i in range(20)]
    save_takes(tmp_path / "ds", takes)
    ds = load_dataset(tmp_path / "ds")
    for split, key in (("person", "subject"), ("session", "session"), ("random", None)):
        train_t, test_t, held = split_takes(ds, split, seed=3)
        assert len(train_t) + len(test_t) == len(ds.takes) and test_t and train_t
        assert not {t.path for t in train_t} & {t.path for t in test_t}
        if key:  # whole people / sessions held out
            assert held and {t.meta[key] for t in test_t} == set(held)
            assert not {t.meta[key] for t in train_t} & set(held)
        else:  # stratified: every label in the test set
            assert {t.label for t in test_t} == {"a", "b"}
        again = split_takes(ds, split, seed=3)[1]
        assert [t.path for t in again] == [t.path for t in test_t]
    # the hand dataset has no sessions: a clear error, not an empty split
    with pytest.raises(GestureError, match="--split session needs takes from at least 2 sessions"):
        prepare(MAGIC, split="session")
    a = prepare(MAGIC, split="random", seed=5, limit_per_label=12, quiet=True)
    b = prepare(MAGIC, split="random", seed=5, limit_per_label=12, quiet=True)
    assert a.split == "random" and a.held == []
    assert np.array_equal(a.windows.x_fit, b.windows.x_fit) and a.cfg == b.cfg  # fixed seed, same run


def test_edge_impulse_testing_category_is_the_default_test_set(tmp_path):
    """Takes imported with Edge Impulse's testing category are what `gesture train` tests on when
    nothing else is asked for; the rate/window plan never looks at them; --split overrides."""
    from training.dataset import load_dataset
    from training.train import default_split, prepare, split_takes, training_pool
    rng = np.random.default_rng(1)
    takes = [Take(label, np.arange(50) * 40.0, rng.normal(0, 0.3, (50, 3)) + li,
                  meta={"subject": f"p{i % 3}", "category": "testing" if i % 4 == 0 else "training"})
             for li, label in enumerate(("a", "b")) for i in range(12)]
    save_takes(tmp_path / "ds", takes)
    ds = load_dataset(tmp_path / "ds")
    assert default_split(ds) == "category"
    train_t, test_t, held = split_takes(ds, "category", seed=0)
    assert held == ["testing"] and len(test_t) == 6 and len(train_t) == 18
    assert {t.meta["category"] for t in test_t} == {"testing"} and {t.meta["category"] for t in train_t} == {"training"}
    assert all(t.meta["category"] == "training" for t in training_pool(ds, "category", held))
    p = prepare(tmp_path / "ds", quiet=True, augment=0)
    assert p.split == "category" and len(p.windows.y_test) == 6
    assert prepare(tmp_path / "ds", split="person", quiet=True, augment=0).split == "person"
    # declared test people win over categories; no testing takes: a clear error for --split category
    for t in takes:
        t.meta["category"] = "training"
    save_takes(tmp_path / "none", takes)
    with pytest.raises(GestureError, match="--split category needs takes imported in Edge Impulse's testing category"):
        prepare(tmp_path / "none", split="category", quiet=True)
    assert default_split(load_dataset(tmp_path / "none")) == "person"


def test_baselines_convert_to_tflm_int8(tmp_path):
    from training.baselines import MAGIC_WAND_SEQ_LENGTH, arduino_mlp, input_shape, magic_wand_cnn
    from training.evaluate import TflmModel, smallest_arena
    from training.quantize import to_int8
    from training.tflm_ops import RESOLVER_METHODS
    rng = np.random.default_rng(0)
    for model in (arduino_mlp(40, 3, 4), magic_wand_cnn(MAGIC_WAND_SEQ_LENGTH, 3, 4)):
        shape = input_shape(model)
        q = to_int8(model, rng.normal(size=(50, *shape)).astype(np.float32))
        assert set(q.ops) <= set(RESOLVER_METHODS)
        m = TflmModel(q.tflite)
        assert m.input_shape == (1, *shape)
        assert m.predict(np.zeros(shape, np.int8)).shape == (4,)
        assert 500 < smallest_arena(q.tflite) < 64 * 1024
    assert magic_wand_cnn(128, 3, 4).count_params() == 4300  # the published model's size (4 classes)


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


def odd_dataset(root: Path, rate_hz: float = 100.0, n: int = 8, length: int = 100) -> Path:
    """Two labels of ordinary takes plus the odd takes real datasets have: 1-sample takes, takes
    far shorter than the rest and one take far longer."""
    rng = np.random.default_rng(0)
    dt = 1000.0 / rate_hz
    takes = []
    for li, label in enumerate(("a", "b")):
        for i in range(n):
            v = rng.normal(0, 0.3, (length, 3)) + li
            takes.append(Take(label, np.arange(length) * dt, v, meta={"subject": f"p{i % 4}"}))
    takes.append(Take("a", np.zeros(1), np.ones((1, 3)), meta={"subject": "p0"}))  # 1 sample
    takes.append(Take("b", np.zeros(1), np.full((1, 3), 0.5), meta={"subject": "p1"}))
    takes.append(Take("a", np.arange(4) * dt, rng.normal(0, 0.3, (4, 3)), meta={"subject": "p2"}))  # 4 samples
    takes.append(Take("a", np.arange(length * 12) * dt, rng.normal(0, 0.3, (length * 12, 3)), meta={"subject": "p1"}))
    save_takes(root, takes)
    return root


def test_odd_takes_are_skipped_and_listed_never_a_refusal(tmp_path, capsys):
    from training.train import prepare
    ds = odd_dataset(tmp_path / "odd")
    p = prepare(ds, split="random", quiet=True)
    reasons = {str(s.take.path): s.reason for s in p.plan.skipped}
    assert len(reasons) == 3, reasons  # two 1-sample takes and the 4-sample one
    assert sum("1 sample: nothing to learn from" in r for r in reasons.values()) == 2
    assert any("shorter than a quarter of the" in r for r in reasons.values())
    kept = p.fit_takes + p.val_takes + p.test_takes
    assert not {t.path for t in kept} & {s.take.path for s in p.plan.skipped}
    assert p.plan.source_rate_hz == 100.0  # the 1-sample takes (rate 0) do not spoil the rate
    err = capsys.readouterr().err  # quiet, yet the data warnings are there, one line each
    assert "warning: skipped 3 take(s) that cannot be learnt from (2 1-sample, 1 shorter than a quarter of the window)" in err
    assert "sample rates differ" not in err  # 1-sample takes have no rate of their own
    assert "far longer than the rest" in err and "  skipped " not in err
    # gesture data lists each skipped take with its reason, and the long take
    assert main(["data", str(ds)]) == 0
    out = capsys.readouterr().out
    assert out.count("  skip ") == 3 and "nothing to learn from" in out and "far longer than the rest" in out
    assert "training:  model rate" in out


def test_too_little_left_is_refused_saying_how_much(tmp_path):
    from training.train import prepare
    ds = odd_dataset(tmp_path / "odd", n=2)
    with pytest.raises(GestureError, match=r"take\(s\) cannot be learnt from, only \d+ left"):
        prepare(ds, split="random", window=128, quiet=True)


def test_default_rate_and_window_follow_the_data_not_the_seed(tmp_path):
    from training.plan import MAX_WINDOW, MIN_RATE_HZ, choose_rate, default_window, model_length
    from training.train import prepare

    def takes(rate, seconds, k=20):
        rng = np.random.default_rng(1)
        out = []
        for i in range(k):
            n = max(2, int(rate * seconds * rng.uniform(0.6, 1.0)))
            out.append(Take("a", np.arange(n) * 1000.0 / rate, np.zeros((n, 3))))
        return out
    # 119 Hz IMU_Capture-like 1 s gestures keep a fast rate; a source is never upsampled; long
    # gestures get ~64 samples (4 s -> 17 Hz), never below MIN_RATE_HZ unless very long
    assert choose_rate(takes(119, 1.0)) > 50
    assert choose_rate(takes(25, 2.0)) == 25 and choose_rate(takes(16, 3.0)) == 16
    assert choose_rate(takes(25, 4.0)) == 17 and choose_rate(takes(25, 8.0)) == MIN_RATE_HZ
    # very long takes: the rate drops so the window stays within MAX_WINDOW (the arena)
    long = takes(16, 20.0)
    r = choose_rate(long)
    assert r < 16 and default_window([model_length(t, 16, r) for t in long]) <= MAX_WINDOW
    # the window comes from all training takes, so every seed gets the same
    ds = odd_dataset(tmp_path / "odd")
    a, b = prepare(ds, split="random", seed=0, quiet=True), prepare(ds, split="random", seed=1, quiet=True)
    assert a.cfg.window == b.cfg.window and a.cfg.model_rate_hz == b.cfg.model_rate_hz
    assert [s.take.path for s in a.plan.skipped] == [s.take.path for s in b.plan.skipped]
    assert default_window([1, 1]) >= 16  # 1-sample takes alone: no crash


def test_train_reports_skipped_takes_at_a_rate_from_the_data(tmp_path):
    from training.train import train
    ds = odd_dataset(tmp_path / "odd")
    r = train(ds, tmp_path / "m", epochs=1, augment=0, split="random", quiet=True).report
    assert r["source_rate_hz"] == 100.0 and 25 <= r["model_rate_hz"] <= 100
    assert len(r["skipped_takes"]) == 3 and all(s["reason"] and s["take"].endswith(".csv") for s in r["skipped_takes"])
    md = (tmp_path / "m" / "report.md").read_text()
    assert "## Skipped takes (3)" in md and "nothing to learn from" in md


def test_test_set_label_the_training_set_lacks_is_left_unscored_and_counted(tmp_path, capsys):
    """`train --test` refused a test set with a label absent from training; it now scores the
    shared labels and says how many takes it left out (warning, report.json, report.md)."""
    import json

    from training.train import prepare, train
    ds = synth_dataset(tmp_path / "ds")
    other = synth_dataset(tmp_path / "other", labels=("a", "b", "zzz"), n=3)
    p = prepare(ds, test=other, quiet=True, augment=0)
    assert sorted(t.label for t in p.test_takes) == ["a"] * 3 + ["b"] * 3
    assert [t.label for t in p.unscored] == ["zzz"] * 3
    err = capsys.readouterr().err
    assert "3 take(s) labelled zzz, a label the training set" in err and "the test scores the 6 take(s) of the shared labels" in err
    r = train(ds, tmp_path / "m", test=other, epochs=1, augment=0, quiet=True)
    report = json.loads((tmp_path / "m" / "report.json").read_text())
    assert report["n_test"] == 6 and len(report["test_unscored"]) == 3
    assert {u["label"] for u in report["test_unscored"]} == {"zzz"} and report["test_unscored"][0]["take"].startswith("zzz/")
    assert "6 test takes (3 more test take(s) not scored: labelled zzz, which the training set lacks)" in \
        (tmp_path / "m" / "report.md").read_text()
    assert r is not None
