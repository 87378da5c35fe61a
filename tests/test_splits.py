"""Splits that can be scored (issue #20 item 3, #23 item 1): every held-out part covers every
label, a person who recorded one label is never the whole test set, tune's folds are stratified
and small data works or is refused before any training; `gesture evaluate` and `tune --test`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from capture.errors import GestureError
from capture.takes import Take, save_takes

ROOT = Path(__file__).resolve().parent.parent


def takes_of(spec: dict[str, dict[str, int]], rate_ms: float = 20.0, seed: int = 0) -> list[Take]:
    """spec: person -> {label: n takes}; person '' records no subject."""
    rng = np.random.default_rng(seed)
    labels = sorted({label for per in spec.values() for label in per})
    out = []
    for person, per in spec.items():
        for label, n in per.items():
            li = labels.index(label)
            for _ in range(n):
                k = int(rng.integers(40, 60))
                v = rng.normal(0, 0.2, (k, 3))
                v[:, li % 3] += (1 + li // 3) * np.sin(np.linspace(0, np.pi, k))
                out.append(Take(label, np.arange(k) * rate_ms, v, meta={"subject": person} if person else {}))
    return out


def readme_sized(root: Path) -> Path:
    """4 labels x 5 takes, no people: the README's first dataset (#23 item 1)."""
    save_takes(root, takes_of({"": {"negative": 5, "ring": 5, "slope": 5, "wing": 5}}))
    return root


def test_person_split_covers_every_label_and_never_tests_a_one_label_person(tmp_path):
    from training.dataset import load_dataset
    from training.train import split_takes
    # 8 contributors like the corpus: p0 recorded only 'flex', the others both labels
    spec = {"p0": {"flex": 12}, **{f"p{i}": {"flex": 6, "punch": 6} for i in range(1, 8)}}
    save_takes(tmp_path / "ds", takes_of(spec))
    ds = load_dataset(tmp_path / "ds")
    for seed in range(20):
        train, test, held = split_takes(ds, "person", seed)
        assert {t.label for t in test} == {"flex", "punch"}, (seed, held)
        assert held != ["p0"]
        assert {t.label for t in train} == {"flex", "punch"}
        assert not {t.meta["subject"] for t in train} & set(held)


def test_declared_test_person_missing_a_label_is_said(tmp_path, capsys):
    from training.train import prepare
    spec = {"p0": {"flex": 12}, **{f"p{i}": {"flex": 6, "punch": 6} for i in range(1, 5)}}
    save_takes(tmp_path / "ds", takes_of(spec))
    manifest = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    manifest["test_subjects"] = ["p0"]
    (tmp_path / "ds" / "dataset.json").write_text(json.dumps(manifest))
    p = prepare(tmp_path / "ds", augment=0, quiet=True)
    err = capsys.readouterr().err
    assert "has no takes of label(s) punch" in err and "every test take is 'flex'" in err
    assert any("punch" in w for w in p.warnings)


def test_validation_is_person_wise_and_covers_every_label():
    from training.train import val_split
    spec = {"p0": {"a": 12}, **{f"p{i}": {"a": 5, "b": 5} for i in range(1, 8)}}
    train = takes_of(spec)
    fit, val = val_split(train, 0)
    assert {t.label for t in val} == {"a", "b"} and {t.label for t in fit} == {"a", "b"}
    assert not {t.meta["subject"] for t in fit} & {t.meta["subject"] for t in val}
    assert len(fit) + len(val) == len(train)


def test_tune_folds_cover_every_label_fewer_folds_or_a_clear_refusal():
    from training.splits import cv_folds
    # no people: stratified, every dev fold holds every label, every fit fold >= 2 of each
    anon = takes_of({"": {"negative": 4, "ring": 4, "slope": 4, "wing": 4}})
    folds, notes = cv_folds(anon, ["negative", "ring", "slope", "wing"], 3, 0)
    assert len(folds) == 3 and not notes
    for fit, dev in folds:
        for label in ("negative", "ring", "slope", "wing"):
            assert sum(t.label == label for t in dev) >= 1 and sum(t.label == label for t in fit) >= 2
    assert sorted(id(t) for _, dev in folds for t in dev) == sorted(id(t) for t in anon)
    # 3 takes of a label: only 3 folds of 1 can score it; asked for 2, it says so
    three = takes_of({"": {"a": 3, "b": 6}})
    folds, notes = cv_folds(three, ["a", "b"], 2, 0)
    assert len(folds) == 3 and "3 folds instead of 2" in notes[0]
    # people who each recorded one label: no person-wise fold can cover both, said and stratified
    lonely = takes_of({"p0": {"a": 6}, "p1": {"b": 6}, "p2": {"a": 6}})
    folds, notes = cv_folds(lonely, ["a", "b"], 3, 0)
    assert "stratified by label" in notes[0]
    assert all({t.label for t in dev} == {"a", "b"} for _, dev in folds)
    # people: 4 people each with both labels, 3 folds asked -> person-wise, whole people
    people = takes_of({f"p{i}": {"a": 3, "b": 3} for i in range(4)})
    folds, notes = cv_folds(people, ["a", "b"], 3, 0)
    assert len(folds) == 3 and not notes
    for fit, dev in folds:
        assert not {t.meta["subject"] for t in fit} & {t.meta["subject"] for t in dev}
    with pytest.raises(GestureError, match=r"too few takes for cross-validation: label\(s\) 'a' \(2\)"):
        cv_folds(takes_of({"": {"a": 2, "b": 6}}), ["a", "b"], 3, 0)


def test_tune_on_a_readme_sized_dataset_works(tmp_path, capsys):
    """#23 item 1: 4 labels x 5 takes, no subjects: every trial failed on its fold split."""
    from training.tune import tune
    ds = readme_sized(tmp_path / "try")
    r = tune(ds, tmp_path / "tuned", trials=2, epochs=1, final_epochs=1, timeout=None, quiet=True)
    assert sum(row["state"] == "complete" for row in r.rows) >= 1
    assert r.model_report is not None and r.model_report["split"] == "random"
    with pytest.raises(GestureError, match="too few takes for cross-validation"):  # before any training
        tiny = tmp_path / "tiny"
        save_takes(tiny, takes_of({"": {"a": 3, "b": 3}}))
        tune(tiny, tmp_path / "t2", trials=1, epochs=1, quiet=True)
    assert not (tmp_path / "t2").exists()


def test_tune_says_how_long_a_trial_takes(tmp_path):
    ds = readme_sized(tmp_path / "try")
    proc = subprocess.run([sys.executable, "-m", "gesture_cli", "tune", str(ds), "--out", str(tmp_path / "t"),
                           "--trials", "1", "--epochs", "1", "--final-epochs", "1", "--no-m4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "each trial: 3 folds x 1 epochs, about" in proc.stderr
    assert proc.stderr.index("each trial:") < proc.stderr.index("tune:")  # said before the first trial


def test_evaluate_equals_train_test_and_tune_test(tmp_path):
    from training.score import score
    from training.train import train
    from training.tune import tune
    train_ds = tmp_path / "train"
    save_takes(train_ds, takes_of({f"p{i}": {"a": 4, "b": 4, "c": 4} for i in range(3)}, seed=1))
    test_ds = tmp_path / "test"
    save_takes(test_ds, takes_of({"q": {"a": 5, "b": 5, "c": 5}}, seed=2))
    r = train(train_ds, tmp_path / "m", test=test_ds, epochs=2, augment=1, quiet=True).report
    s = score(tmp_path / "m", test_ds)
    assert s["n_test"] == r["n_test"] and s["int8_accuracy"] == r["int8_accuracy"]
    assert s["confusion_matrix"] == r["confusion_matrix"] and s["per_class"] == r["per_class"]
    # tune --test: all of DATA's people are training people, the final model scored on the test set
    t = tune(train_ds, tmp_path / "tuned", test=test_ds, trials=1, epochs=1, final_epochs=1, folds=2,
             timeout=None, quiet=True)
    assert t.model_report["split"] == f"test set {test_ds}" and t.model_report["test_subjects"] == []
    assert score(tmp_path / "tuned" / "model", test_ds)["int8_accuracy"] == t.model_report["int8_accuracy"]


def test_evaluate_cli_json_and_bad_input(tmp_path, small_model):
    from conftest import DATA
    out = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, "-m", "gesture_cli", "evaluate", str(small_model.model_dir), str(DATA),
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "int8 accuracy (TFLM)" in proc.stdout and "confusion (rows: true" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["labels"] == small_model.report["labels"] and len(figures["confusion_matrix"]) == len(figures["labels"])
    other = tmp_path / "other"
    save_takes(other, takes_of({"": {"zzz": 3}}))
    proc = subprocess.run([sys.executable, "-m", "gesture_cli", "evaluate", str(small_model.model_dir), str(other)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "label(s) ['zzz'] that the model" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tune_scores_folds_by_balanced_accuracy():
    """A model that calls every take the fold's commonest label must not score that label's share."""
    from training.tune import balanced_accuracy
    y = np.array([1] * 9 + [0])
    assert balanced_accuracy(y, np.ones(10, int)) == pytest.approx(0.5)
    assert balanced_accuracy(y, y) == 1.0
    assert balanced_accuracy(np.array([2, 2, 0]), np.array([2, 0, 0])) == pytest.approx(0.75)
