"""Fault injection: the reproductions of issue 14, each giving a clear error or the right result.

Every test here runs what a user would run (``python -m gesture_cli ...`` in a subprocess, with
the user's working directory) or calls the one function at fault, and checks that nothing saved
is lost, nothing is silently wrong, and a user mistake is a one-line ``error: ...`` (exit 2),
never a traceback.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DATA, ROOT

ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def gesture(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gesture_cli", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def assert_user_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, one ``error: ...`` line (or click's ``Error: ...`` for a bad option) naming the
    problem, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.lower().startswith("error: ")]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


class Ran:
    """``gesture ARGS`` run in this process (fast: no interpreter start), like a CompletedProcess."""

    def __init__(self, capsys, *args: str) -> None:
        from gesture_cli import main

        capsys.readouterr()
        self.returncode = self.code = main(list(args))
        out = capsys.readouterr()
        self.stdout, self.stderr = out.out, out.err


def write_dataset(root: Path, labels=("a", "b"), takes: int = 5, rate: float = 50.0, n: int = 100,
                  meta: dict | None = None, value: float = 0.5) -> Path:
    """A small valid dataset: ``takes`` per label of ``n`` samples at ``rate`` Hz."""
    import numpy as np

    from capture.takes import Take, save_takes

    rng = np.random.default_rng(0)
    all_takes = [Take(lab, np.arange(n) * 1000.0 / rate, value + 0.1 * rng.standard_normal((n, 3)), meta=dict(meta or {}))
                 for lab in labels for _ in range(takes)]
    save_takes(root, all_takes)
    return root


def capture_args(data: Path, *extra: str, url: str = "virtual://idle?speed=0", label: str = "same") -> list[str]:
    return ["capture", "--url", url, "--label", label, "--takes", "2", "--seconds", "0.2", "--countdown", "0",
            "--data", str(data), "--quiet", *extra]


# ----------------------------------------------------------------------------- silent loss

def test_three_concurrent_captures_into_one_label_keep_all_30_takes(tmp_path):
    data = tmp_path / "D"
    procs = [subprocess.Popen([sys.executable, "-m", "gesture_cli", "capture", "--url", f"virtual://idle?seed={i}",
                               "--label", "same", "--takes", "10", "--seconds", "0.5", "--countdown", "0",
                               "--data", str(data), "--quiet"], cwd=tmp_path, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (1, 2, 3)]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    files = sorted(p.name for p in (data / "same").glob("*.csv"))
    assert len(files) == 30, files
    manifest = json.loads((data / "dataset.json").read_text())
    assert sorted(k.split("/")[1] for k in manifest["takes"]) == files


def test_a_dataset_lock_serialises_numbering_across_threads_too(tmp_path):
    """The dashboard's "save as take" runs in server threads: the lock holds there as well."""
    import threading

    import numpy as np

    from capture.takes import Take, read_manifest, save_takes

    def save(k: int) -> None:
        for _ in range(5):
            save_takes(tmp_path, [Take("x", np.arange(10.0), np.zeros((10, 3)), meta={"k": k})])

    threads = [threading.Thread(target=save, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list((tmp_path / "x").glob("*.csv"))) == 20
    assert len(read_manifest(tmp_path)["takes"]) == 20


# ----------------------------------------------------------------------------- paths: the caller's cwd

def test_virtual_urls_handed_to_the_dashboard_server_are_resolved_in_the_callers_cwd(tmp_path, monkeypatch):
    from dashboard.server import DashboardServer

    monkeypatch.chdir(tmp_path)
    server = DashboardServer(url="virtual://classifier?model=models/mine&data=my_data&speed=0")
    args = server.app_args()
    url = args[args.index("--url") + 1]
    assert f"model={tmp_path}/models/mine" in url and f"data={tmp_path}/my_data" in url and "speed=0" in url
    assert args[args.index("--cwd") + 1] == str(tmp_path)  # for targets typed into the page
    assert "--client.toolbarMode" in server.command()  # and no Deploy button
    assert server.command()[server.command().index("--client.toolbarMode") + 1] == "minimal"


def test_dashboard_resolves_an_older_models_relative_dataset_in_the_callers_cwd(tmp_path, monkeypatch):
    """`gesture dashboard --simulate --model models/mine` replays (and saves into) data/mine, not the bundled takes."""
    from dashboard.server import DashboardServer

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "mine").mkdir(parents=True)
    model = tmp_path / "models" / "mine"
    model.mkdir(parents=True)
    (model / "model.tflite").write_bytes(b"\0" * 16)
    (model / "report.json").write_text(json.dumps({"dataset": "data/mine"}))
    server = DashboardServer(simulate=True, model_dir="models/mine")
    args = server.app_args()
    assert f"data={tmp_path}/data/mine" in args[args.index("--url") + 1]
    assert args[args.index("--data") + 1] == str(tmp_path / "data" / "mine")


def test_a_models_dataset_that_is_gone_is_an_error_not_the_bundled_takes(tmp_path, monkeypatch):
    from capture.errors import DataError
    from training.model_dir import default_data_dir

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="not a folder here"):
        default_data_dir({"dataset": str(tmp_path / "moved_away")})
    with pytest.raises(DataError, match="not a folder here"):
        default_data_dir({"dataset": "models_data_relative"})
    (tmp_path / "mine").mkdir()
    assert default_data_dir({"dataset": "mine"}) == Path("mine")


def test_train_records_the_dataset_as_an_absolute_path(small_model):
    """The dashboard (another cwd) finds the dataset a model was trained on: save-as-take writes there."""
    from dashboard.model_info import load_model_info

    dataset = small_model.report["dataset"]
    assert Path(dataset).is_absolute() and Path(dataset) == DATA.resolve()
    assert load_model_info(small_model.model_dir).dataset == DATA.resolve()


def test_gesture_firmware_writes_into_the_callers_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    r = Ran(capsys, "firmware")
    assert r.returncode == 0, r.stderr
    sketch = tmp_path / "gesture_capture"
    assert {p.name for p in sketch.iterdir()} >= {"gesture_capture.ino", "gesture_protocol.h", "gk_frame.h"}
    assert str(tmp_path) in r.stdout


# ----------------------------------------------------------------------------- values to question

def test_gesture_data_warns_when_a_takes_declared_rate_contradicts_its_timestamps(tmp_path, capsys):
    write_dataset(tmp_path / "D", rate=50.0, meta={"rate_hz": 119})
    r = Ran(capsys, "data", str(tmp_path / "D"))
    assert r.returncode == 0, r.stderr
    warning = next(ln for ln in r.stdout.splitlines() if "timestamps" in ln)
    assert "119 Hz" in warning and "50 Hz" in warning


def test_absurd_values_are_refused_naming_file_line_and_column(tmp_path, capsys):
    d = write_dataset(tmp_path / "D")
    take = d / "a" / "take_0003.csv"
    lines = take.read_text().splitlines()
    cells = lines[5].split(",")
    cells[2] = "1e30"
    lines[5] = ",".join(cells)
    take.write_text("\n".join(lines) + "\n")
    r = Ran(capsys, "data", str(d))
    assert_user_error(r, "take_0003.csv", "line 6", "ay", "1e+30 g")


def test_manifest_with_wrong_types_is_a_clear_error(tmp_path, capsys):
    d = write_dataset(tmp_path / "D")
    m = json.loads((d / "dataset.json").read_text())
    m["takes"] = {"a/take_0001.csv": {"rate_hz": "fast"}}
    (d / "dataset.json").write_text(json.dumps(m))
    assert_user_error(Ran(capsys, "data", str(d)), "dataset.json", "rate_hz", "'fast'")
    m["takes"] = {"a/take_0001.csv": [1, 2]}
    (d / "dataset.json").write_text(json.dumps(m))
    assert_user_error(Ran(capsys, "data", str(d)), "dataset.json", "expected an object")


@pytest.mark.parametrize("args, needle", [
    (["--epochs", "0"], "--epochs"),
    (["--rate", "0"], "--rate"),
    (["--window", "-5"], "--window"),
])
def test_train_refuses_bad_numbers_before_training(tmp_path, capsys, args, needle):
    r = Ran(capsys, "train", str(DATA), "--out", str(tmp_path / "m"), *args)
    assert_user_error(r, needle)
    assert not (tmp_path / "m").exists()


def test_train_out_pointing_at_a_file_is_refused_before_training(tmp_path, capsys):
    f = tmp_path / "model.txt"
    f.write_text("mine")
    assert_user_error(Ran(capsys, "train", str(DATA), "--out", str(f)), "--out", "is a file")
    assert f.read_text() == "mine"


def test_text_sketch_summary_does_not_claim_a_device_clock(tmp_path):
    from capture.recorder import Recorder, RecordPlan, Summary
    from capture.transport.base import LinkStats

    class TextLink:
        info = {"mode": "text", "rate": "50", "ch": "ax,ay,az"}
        stats = LinkStats()

        def on_message(self, cb): pass

        def on_disconnect(self, cb): pass

    rec = Recorder(TextLink(), tmp_path, RecordPlan(label="x", takes=1))  # type: ignore[arg-type]
    text = "\n".join(rec.summary.lines())
    assert "device clock" not in text and "host clock" in text
    assert "measured (device clock)" in "\n".join(Summary(rate_hz=119, measured_rate_hz=119.0).lines())


# ----------------------------------------------------------------------------- untrusted device strings

def test_info_is_validated_against_the_protocol():
    from capture import protocol as p
    from capture.device_info import capture_info

    good = capture_info(119, 6, mode="classifier", labels=["wing", "ring"])
    assert p.decode_info(p.encode_info(good)) == {k: (",".join(map(str, v)) if isinstance(v, list) else str(v))
                                                  for k, v in good.items()}
    assert set(p._INFO_FORMAT) == set(p.INFO_KEYS)  # every documented key has a format
    assert p.decode_info(b"board=nano33ble_sense;future_key=<img src=x>") == {"board": "nano33ble_sense"}
    for bad, key in [(b"board=[x](http://evil.example)", "board"), (b"fw=1.0 ![i](http://e/p.png)", "fw"),
                     (b"rate=119;labels=a,<b>", "labels"), (b"rate=1e3", "rate"), (b"sensor=" + b"a" * 65, "sensor"),
                     (b"mode=cap\x07ture", "mode")]:
        with pytest.raises(ValueError, match=f"INFO {key}="):
            p.decode_info(bad)
    with pytest.raises(ValueError, match="not ASCII"):
        p.decode_info(b"board=caf\xc3\xa9")
    with pytest.raises(ValueError, match="at most 512"):
        p.decode_info(b"labels=" + b"a," * 300)


def test_an_invalid_info_over_ble_is_a_clear_error(monkeypatch):
    """A device that answers with markup in its INFO is refused at connect, naming the key."""
    import asyncio

    from capture.errors import GestureError
    from capture.virtual.url import open_url
    from capture.virtual import sources

    real = sources.capture_info
    monkeypatch.setattr(sources, "capture_info", lambda *a, **k: dict(real(*a, **k), board="[x](http://evil)"))
    link = open_url("virtual://idle?speed=0")
    with pytest.raises(GestureError, match=r"invalid INFO board="):
        asyncio.run(link.open())


# ----------------------------------------------------------------------------- errors before recording

def test_read_only_data_dir_is_refused_before_the_first_take(tmp_path, monkeypatch, capsys):
    import errno
    import tempfile

    real = tempfile.mkstemp

    def read_only(*a, **k):
        if str(k.get("prefix", "")).startswith(".write-test"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*a, **k)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    r = Ran(capsys, *capture_args(tmp_path / "D"))
    assert_user_error(r, "cannot write there", "Read-only file system")
    assert "takes saved" not in r.stdout  # refused before recording, not after


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders (the EROFS case above covers it)")
def test_read_only_permissions_are_refused_before_the_first_take(tmp_path):
    d = tmp_path / "D"
    d.mkdir()
    d.chmod(0o555)
    try:
        assert_user_error(gesture(*capture_args(d)), "cannot write there")
    finally:
        d.chmod(0o755)


def test_full_disk_is_refused_before_the_first_take(tmp_path, monkeypatch, capsys):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100 << 30, 100 << 30, 1 << 20))
    r = Ran(capsys, *capture_args(tmp_path / "D"))
    assert_user_error(r, "1.0 MiB free")
    assert not list((tmp_path / "D").rglob("*.csv"))


def test_a_300_character_label_is_refused(tmp_path, capsys):
    assert_user_error(Ran(capsys, *capture_args(tmp_path / "D", label="x" * 300)), "too long", "at most 64")
    assert not (tmp_path / "D").exists()


def test_malformed_dataset_json_is_refused_before_the_first_take(tmp_path, capsys):
    d = tmp_path / "D"
    d.mkdir()
    (d / "dataset.json").write_text('{"takes": {"a/take_0001.csv": {"rate_hz": ')
    r = Ran(capsys, *capture_args(d)[:-1])  # not --quiet: the recorder would announce "take 1/2"
    assert_user_error(r, "dataset.json", "invalid JSON")
    assert "take 1/2" not in r.stderr, r.stderr  # refused before the first take was recorded
    assert not list(d.rglob("*.csv"))


def test_dashboard_port_out_of_range_is_refused(capsys):
    assert_user_error(Ran(capsys, "dashboard", "--simulate", "--port", "70000", "--no-browser"), "--port")


@pytest.mark.parametrize("args, needle", [(["--countdown", "-5"], "--countdown"), (["--seconds", "-1"], "--seconds")])
def test_capture_refuses_negative_times(tmp_path, capsys, args, needle):
    assert_user_error(Ran(capsys, *capture_args(tmp_path / "D", *args)), needle)


# ----------------------------------------------------------------------------- runaway or stuck

def test_max_lost_on_a_lossy_link_gives_up_with_a_hint(tmp_path):
    r = gesture(*capture_args(tmp_path / "D", "--max-lost", "0", url="virtual://idle?loss=0.5&speed=0&seed=3"),
                timeout=120)
    assert_user_error(r, "too lossy", "--max-lost")
    assert "discarded      5 takes" in r.stdout


def test_trigger_on_a_board_at_rest_times_out_with_a_hint(tmp_path):
    r = gesture(*capture_args(tmp_path / "D", "--trigger", "--trigger-timeout", "3", "--seconds", "1"), timeout=120)
    assert_user_error(r, "no motion for 3 s", "--threshold")


def test_sigterm_during_capture_keeps_saved_takes_and_exits_promptly(tmp_path):
    data = tmp_path / "D"
    proc = subprocess.Popen([sys.executable, "-m", "gesture_cli", *capture_args(data, url="virtual://idle?loss=0.2")[:-1]]
                            + ["--takes", "1000", "--max-lost", "100000"], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from conftest import wait_until
        wait_until(lambda: len(list((data / "same").glob("take_*.csv"))) >= 2, 60, "two saved takes")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)  # "promptly": not minutes
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    from capture.takes import read_takes

    takes, manifest = read_takes(data)
    saved = int(next(ln for ln in out.splitlines() if ln.startswith("takes saved")).split()[-1])
    assert saved == len(takes) >= 2 and len(manifest["takes"]) == saved


def test_dashboard_port_check_ignores_time_wait(tmp_path):
    """A dashboard restarted within 60 s finds its port free (TIME-WAIT is not "in use")."""
    from dashboard.server import _port_busy

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    cli = socket.create_connection(("127.0.0.1", port))
    conn, _ = srv.accept()
    conn.close()  # the server side closes first: its end of the connection sits in TIME-WAIT
    time.sleep(0.1)
    cli.close()
    srv.close()
    assert _port_busy("127.0.0.1", port) is None
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert _port_busy("127.0.0.1", busy.getsockname()[1])  # a live listener still counts


# ----------------------------------------------------------------------------- newcomer path

def test_virtual_replay_needs_a_dataset_and_the_hand_needs_none():
    from capture.errors import GestureError
    from capture.virtual.url import source_from_url

    with pytest.raises(GestureError, match="missing data=DIR"):
        source_from_url("virtual://replay?limit=2")
    source, _ = source_from_url("virtual://hand?limit=2&loop=0")
    assert source.info()["sensor"] == "simulated-hand" and source.rate_hz == 119


def test_capture_label_chooses_what_the_virtual_board_performs(tmp_path, capsys):
    """README: `gesture capture --url virtual://hand --label wing` records wings (issue: replay under any label)."""
    from capture.virtual.url import for_label

    assert for_label("virtual://hand?speed=0", "wing").endswith("labels=wing")
    assert for_label("virtual://hand?labels=ring", "mine") == "virtual://hand?labels=ring"  # asked explicitly
    assert for_label(f"virtual://replay?data={DATA}", "slope").endswith("labels=slope")
    r = Ran(capsys, "capture", "--url", "virtual://hand?speed=0&seed=2", "--label", "ring", "--takes", "2",
            "--trigger", "--threshold", "0.5", "--quiet", "--data", str(tmp_path / "d"))
    assert r.code == 0, r.err
    assert_user_error(Ran(capsys, "capture", "--url", "virtual://hand?speed=0", "--label", "punch", "--takes", "1",
                          "--quiet", "--data", str(tmp_path / "e")), "simulated hand performs")
    r = Ran(capsys, "capture", "--url", f"virtual://replay?data={DATA}&speed=0&rest=0.2", "--label", "slope", "--takes", "2",
            "--trigger", "--threshold", "0.5", "--quiet", "--data", str(tmp_path / "f"))
    assert r.code == 0, r.err
    assert sorted(p.name for p in (tmp_path / "f").iterdir() if p.is_dir()) == ["slope"]


def test_devices_hints_at_the_virtual_board(capsys, monkeypatch):
    monkeypatch.setattr("capture.device_cli.serial_ports", lambda: [])
    r = Ran(capsys, "devices", "--no-ble")
    assert r.returncode == 0 and "virtual://replay" in r.stderr and "gesture simulate" in r.stderr


def test_dashboard_terminal_says_when_bluetooth_is_unavailable(monkeypatch):
    import bleak

    from dashboard.cli import bluetooth_unavailable

    async def no_dbus(*a, **k):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(bleak.BleakScanner, "discover", no_dbus)
    assert "D-Bus" in bluetooth_unavailable()


def test_flash_dry_run_without_arduino_cli_prints_the_commands(capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    r = Ran(capsys, "flash", str(ROOT / "firmware" / "capture"), "--port", "/dev/ttyACM0", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "arduino-cli compile --fqbn arduino:mbed_nano:nano33ble" in r.stderr
    assert "arduino-cli upload -p /dev/ttyACM0" in r.stderr and "not on PATH" in r.stderr


def test_tensorflow_import_is_quiet():
    code = "from training.train import quiet_tensorflow_logs; quiet_tensorflow_logs(); import tensorflow, keras"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={k: v for k, v in ENV.items()
                                                                     if not k.startswith("TF_")},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "oneDNN" not in r.stderr and "absl::InitializeLog" not in r.stderr, r.stderr


def test_report_without_validation_takes_says_what_was_done(small_model):
    from training.report import markdown

    r = dict(small_model.report, n_val=0, confidence_threshold=0,
             rejection_validation={"windows": 0, "kept_correct": 1.0, "rejected_wrong": None, "n_wrong": 0})
    text = markdown(r)
    assert "0 validation windows" not in text and "0/255 (on" not in text
    assert "no validation takes" in text and "reports every prediction" in text


# ----------------------------------------------------------------------------- export keeps user overrides

def test_export_arena_override_edits_and_readme(small_model, tmp_path, capsys):
    sketch = tmp_path / "my_sketch"
    model = str(small_model.model_dir)
    r = Ran(capsys, "export", model, "--sketch", str(sketch), "--arena", "20000")
    assert r.returncode == 0, r.stderr
    assert _package_arena(sketch) == 20000  # the need written into the built-in package
    readme = (sketch / "README.md").read_text()
    labels = small_model.report["labels"]
    assert f"gesture flash {sketch} --port" in readme
    assert f"`{labels[0]} 92% | " in readme and all(lab in readme for lab in labels)
    # a hand edit to a generated file survives as a backup, with a warning
    ino = sketch / "my_sketch.ino"
    ino.write_text(ino.read_text() + "\n// my change\n")
    r = Ran(capsys, "export", model, "--sketch", str(sketch))
    assert r.returncode == 0, r.stderr
    assert "// my change" in (sketch / "my_sketch.ino.edited").read_text()
    assert "// my change" not in ino.read_text()
    assert "edited by hand" in r.stderr
    assert "previous export used --arena 20,000" in r.stderr  # re-export without it says so
    assert _package_arena(sketch) == small_model.report["arena_board_bytes"]
    # over the firmware's arena: refused, one line, nothing changed
    r = Ran(capsys, "export", model, "--sketch", str(sketch), "--arena", "40000")
    assert r.returncode == 2 and "GK_MAX_ARENA_BYTES" in r.stderr
    assert _package_arena(sketch) == small_model.report["arena_board_bytes"]


def _package_arena(sketch) -> int:
    from training.export import parse_model_data
    from training.package import parse_package

    return parse_package(parse_model_data((sketch / "model_data.cpp").read_text())).arena_bytes
