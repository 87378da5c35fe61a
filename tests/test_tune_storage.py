"""gesture tune's shared study: the documented multi-machine mode on a real PostgreSQL server
(started by the test on a private socket), the driver named when it is missing, and a study that
ends with exactly the trials asked for however many workers fill it. Tiny trials (1 epoch, 2 folds)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from capture.errors import GestureError

from test_tune import tiny_dataset

ROOT = Path(__file__).resolve().parent.parent


def small_dataset(root: Path) -> Path:
    """2 labels x 4 people x 3 takes at 50 Hz; person p3 is the declared test person."""
    return tiny_dataset(root, people=4, seed=1)


def _pg_bin() -> Path | None:
    """The PostgreSQL server binaries (Debian's postgresql puts them in /usr/lib/postgresql/N/bin)."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return next((d for d in reversed(dirs) if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


@pytest.fixture(scope="module")
def postgresql_url():
    """A PostgreSQL server of our own: data and socket in a private folder, no TCP, stopped after."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server not installed (Debian: apt-get install postgresql; `make test` installs it as root)")
    pytest.importorskip("psycopg", reason="psycopg 3 not installed: pip install 'gesture-kit[postgres]'")
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="gk-pg-", dir="/tmp"))
    os.chmod(base, 0o755)
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user, on a folder it owns
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        try:
            shutil.chown(base, "postgres", "postgres")
        except (LookupError, OSError) as e:
            pytest.skip(f"running as root and no postgres user to run the server as ({e})")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, sock, port = base / "data", base / "sock", 5432  # the port only names the socket file in our folder
    for d in (sock,):
        d.mkdir()
        if as_user:
            shutil.chown(d, "postgres", "postgres")

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(as_user + list(cmd), capture_output=True, text=True, timeout=120)
    r = run(str(bin_dir / "initdb"), "-D", str(data), "-U", "gk", "--auth=trust", "-E", "UTF8", "--no-instructions")
    if r.returncode:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"initdb failed: {r.stderr[-1000:]}")
    r = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60",
            "-o", f"-k {sock} -p {port} -c listen_addresses='' -c fsync=off -c max_connections=40", "start")
    if r.returncode:
        log = (base / "server.log").read_text(errors="replace")[-1500:] if (base / "server.log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {r.stderr[-800:]} {log}")
    try:
        yield f"postgresql://gk@/postgres?host={sock}&port={port}"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_on_postgresql_stop_at_exactly_the_trials_asked_for(tmp_path, postgresql_url):
    """The documented multi-machine mode: two worker processes on one PostgreSQL study, started
    together, asked for 4 trials; the study ends with 4 (it ended with 5), then the final run reports them."""
    from training.tune import tune
    ds = small_dataset(tmp_path / "ds")
    out = tmp_path / "tune"
    cmd = [sys.executable, "-m", "gesture_cli", "tune", str(ds), "--out", str(out), "--storage", postgresql_url,
           "--trials", "4", "--epochs", "1", "--folds", "2", "--worker", "--quiet", "--no-m4"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-2000:]
        assert "worker done: the study holds" in o
        assert "SurplusTrial" not in e
    import optuna
    study = optuna.load_study(study_name="gesture-tune", storage=postgresql_url)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4
    assert all(t.user_attrs.get("surplus") for t in study.trials if t.state.name == "FAIL")  # never run, never counted
    r = tune(ds, out, storage=postgresql_url, trials=4, epochs=1, folds=2, final_epochs=1, quiet=True)
    assert len(r.rows) == 4 and r.chosen is not None
    assert json.loads((out / "model" / "report.json").read_text())["tune"]["trials"] == 4


def test_trials_running_elsewhere_hold_their_places(tmp_path):
    """Trials another process is running count towards --trials: a worker joining a study asked
    for 3 with 2 running elsewhere runs 1, not 3 (finished-only counting overshot to 5)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from training.tune import tune
    ds = small_dataset(tmp_path / "ds")
    journal = tmp_path / "study.log"
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.create_study(study_name="gesture-tune", storage=storage, directions=["maximize", "minimize"])
    elsewhere = [study.ask() for _ in range(2)]  # RUNNING, as in another worker's process
    r = tune(ds, tmp_path / "t", storage=f"journal:{journal}", trials=3, epochs=1, folds=2, worker=True, quiet=True)
    assert len(r.rows) == 1
    study = optuna.load_study(study_name="gesture-tune", storage=storage)
    assert [t.state.name for t in study.trials] == ["RUNNING", "RUNNING", r.rows[0]["state"].upper()]
    for t in elsewhere:  # the other process finishes: the study holds exactly 3
        study.tell(t, state=optuna.trial.TrialState.PRUNED)
    again = tune(ds, tmp_path / "t", storage=f"journal:{journal}", trials=3, epochs=1, folds=2, worker=True, quiet=True)
    assert len(again.rows) == 3 and len(optuna.load_study(study_name="gesture-tune", storage=storage).trials) == 3


def test_missing_postgresql_driver_is_named(tmp_path, monkeypatch, capsys):
    """SQLAlchemy 2.1 wants psycopg 3; without it the error was 'Failed to import DB access module'."""
    import importlib.util

    import gesture_cli
    from training.tune import tune
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a))
    ds = small_dataset(tmp_path / "ds")
    with pytest.raises(GestureError, match=r"--storage postgresql://…: the database driver is not installed; it needs the "
                                           r"PostgreSQL driver psycopg 3: pip install 'gesture-kit\[postgres\]'"):
        tune(ds, tmp_path / "t", storage="postgresql://gk:secret@db.example/gk", trials=1, quiet=True)
    assert gesture_cli.main(["tune", str(ds), "--out", str(tmp_path / "t"), "--storage", "postgresql://gk:secret@db/gk",
                             "--no-m4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "gesture-kit[postgres]" in err and "secret" not in err and "Traceback" not in err
