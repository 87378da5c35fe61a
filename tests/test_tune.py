"""gesture tune: person-wise CV on training people only, budget pruning, a shared study that
two worker processes fill, resume, and the chosen model trained like gesture train. Tiny trials
(1 epoch, a few takes) so each takes seconds: the figures are not meaningful, the mechanics are."""
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


def tiny_dataset(root: Path, people: int = 5, seed: int = 0) -> Path:
    """2 labels x ``people`` people x 3 takes at 50 Hz; the last person is the declared test person."""
    rng = np.random.default_rng(seed)
    takes = []
    for li, label in enumerate(("a", "b")):
        for person in range(people):
            for _ in range(3):
                n = int(rng.integers(40, 60))
                v = rng.normal(0, 0.2, (n, 3))
                v[:, li] += np.sin(np.linspace(0, np.pi, n))
                takes.append(Take(label, np.arange(n) * 20.0, v, meta={"subject": f"p{person}"}))
    save_takes(root, takes)
    manifest = json.loads((root / "dataset.json").read_text())
    manifest["test_subjects"] = [f"p{people - 1}"]
    (root / "dataset.json").write_text(json.dumps(manifest))
    return root


def test_person_folds_keep_people_whole_and_never_see_test_people(tmp_path):
    from training.dataset import load_dataset
    from training.train import split_takes
    from training.tune import person_folds
    ds = load_dataset(tiny_dataset(tmp_path / "ds"))
    train, test, held = split_takes(ds, "person", 0)
    assert held == ["p4"]
    folds = person_folds(train, 3, 0)
    assert len(folds) == 3
    devs = [{t.meta["subject"] for t in dev} for _, dev in folds]
    assert set().union(*devs) == {"p0", "p1", "p2", "p3"} and sum(map(len, devs)) == 4  # each person in one fold
    for fit, dev in folds:
        assert not {t.meta["subject"] for t in fit} & {t.meta["subject"] for t in dev}
        assert "p4" not in {t.meta["subject"] for t in fit + dev}
    # no people recorded: plain folds over takes, disjoint and covering every take once
    anonymous = [Take(t.label, t.t_ms, t.values, t.channels, {}, t.path) for t in train]
    plain = person_folds(anonymous, 3, 0)
    assert sorted(str(t.path) for _, dev in plain for t in dev) == sorted(str(t.path) for t in anonymous)
    assert all(len(fit) + len(dev) == len(anonymous) for fit, dev in plain)


def test_bad_storage_url_is_a_clear_error(tmp_path):
    from training.tune import tune
    ds = tiny_dataset(tmp_path / "ds")
    with pytest.raises(GestureError, match=r"--storage 'nope://x'.*expected an Optuna RDB URL"):
        tune(ds, tmp_path / "t", storage="nope://x", trials=1, quiet=True)


def test_candidates_over_budget_are_pruned_before_training(tmp_path):
    from training.tune import tune
    ds = tiny_dataset(tmp_path / "ds")
    with pytest.raises(GestureError, match="no candidate within the budget"):
        tune(ds, tmp_path / "t", budget_arena=256, trials=2, epochs=1, folds=2, quiet=True)
    import optuna
    study = optuna.load_study(study_name="gesture-tune", storage=f"sqlite:///{tmp_path / 't' / 'study.db'}")
    assert len(study.trials) == 2 and all(t.state.name == "PRUNED" for t in study.trials)
    assert all(any("arena_bytes" in p for p in t.user_attrs["over_budget"]) for t in study.trials)
    assert all(t.user_attrs["arena_bytes"] > 256 for t in study.trials)  # measured, not assumed


def test_two_workers_share_a_journal_study_then_the_chosen_model_is_trained(tmp_path):
    from training.tune import tune
    ds = tiny_dataset(tmp_path / "ds")
    out = tmp_path / "tune"
    journal = f"journal:{tmp_path / 'study.log'}"
    cmd = [sys.executable, "-m", "gesture_cli", "tune", str(ds), "--out", str(out), "--storage", journal,
           "--trials", "3", "--epochs", "1", "--folds", "2", "--worker", "--quiet"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-2000:]
        assert "worker done: the study holds" in o
    import optuna
    from optuna.storages.journal import JournalFileBackend
    study = optuna.load_study(study_name="gesture-tune",
                              storage=optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "study.log"))))
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3  # exactly --trials: a trial running in the other worker holds its place
    # the trials were run by these two processes (how many each depends on who started first)
    assert {t.user_attrs["worker"].split(":")[1] for t in finished} <= {str(p.pid) for p in procs}

    # the final run joins the same study: enough trials already, so it only reports and trains
    r = tune(ds, out, storage=journal, trials=3, epochs=1, folds=2, final_epochs=1, quiet=True)
    assert len(r.rows) == len(finished)
    chosen = r.chosen
    assert chosen["state"] == "complete" and chosen["arena_bytes"] <= 8192 and chosen["instructions"] <= 600_000
    assert len(chosen["fold_accuracy"]) == 2 and 0 <= chosen["cv_accuracy"] <= 1
    report = json.loads((out / "model" / "report.json").read_text())
    assert report["tune"]["chosen_trial"] == chosen["trial"] and report["test_subjects"] == ["p4"]
    assert report["model_rate_hz"] == chosen["params"]["rate_hz"] and report["window"] == chosen["window"]
    assert report["architecture"]["family"] == chosen["params"]["family"]
    md = (out / "tune.md").read_text()
    assert f"**Chosen: trial {chosen['trial']}**" in md and "| trial | Pareto |" in md and "p4" in md
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_default_sqlite_study_resumes(tmp_path):
    from training.tune import tune
    ds = tiny_dataset(tmp_path / "ds")
    first = tune(ds, tmp_path / "t", trials=1, epochs=1, folds=2, worker=True, quiet=True)
    assert len(first.rows) == 1 and (tmp_path / "t" / "study.db").is_file()
    again = tune(ds, tmp_path / "t", trials=2, epochs=1, folds=2, worker=True, quiet=True)
    assert len(again.rows) == 2 and again.rows[0]["trial"] == first.rows[0]["trial"]  # kept, one added
    with pytest.raises(GestureError, match="was started with other settings"):
        tune(ds, tmp_path / "t", trials=2, epochs=3, folds=2, worker=True, quiet=True)
