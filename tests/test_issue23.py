"""Issue 23 ("tried as a new user would, and then broken on purpose"): each reproduction gives a
one-line error (exit 2, no traceback) or a warning, and leaves nothing half-written."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DATA  # noqa: F401  (the dataset the training tests use)


class Ran:
    """``gesture ARGS`` run in this process, like a CompletedProcess."""

    def __init__(self, capsys, *args: str) -> None:
        from gesture_cli import main

        capsys.readouterr()
        self.returncode = main(list(args))
        out = capsys.readouterr()
        self.stdout, self.stderr = out.out, out.err


def assert_user_error(r, *needles: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.lower().startswith("error: ")]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# ----------------------------------------------------------------------------- item 5: firmware --out

def test_firmware_refuses_to_overwrite_an_edited_sketch_without_force(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert Ran(capsys, "firmware", "--out", "fw2").returncode == 0
    assert Ran(capsys, "firmware", "--out", "fw2").returncode == 0  # the same files again: harmless
    ino = tmp_path / "fw2" / "fw2.ino"
    ino.write_text("// my own sketch\n")
    r = Ran(capsys, "firmware", "--out", "fw2")
    assert_user_error(r, "fw2.ino", "--force")
    assert ino.read_text() == "// my own sketch\n"
    r = Ran(capsys, "firmware", "--out", "fw2", "--force")
    assert r.returncode == 0, r.stderr
    assert ino.read_text() != "// my own sketch\n"


# ----------------------------------------------------------------------------- item 6: every model file checked

def _model_copy(small_model, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(small_model.model_dir, tmp_path / "model"))


def test_one_flipped_bit_in_config_json_is_refused_by_export(small_model, tmp_path, capsys):
    m = _model_copy(small_model, tmp_path)
    raw = bytearray((m / "config.json").read_bytes())
    at = raw.index(b'"mean"')
    digit = next(i for i in range(at, len(raw)) if chr(raw[i]) in "123456789")
    raw[digit] ^= 0x01  # one bit: e.g. '3' -> '2'
    (m / "config.json").write_bytes(bytes(raw))
    r = Ran(capsys, "export", str(m), "--sketch", str(tmp_path / "sk"))
    assert_user_error(r, "config.json", "sha256")
    assert not (tmp_path / "sk").exists()


def test_swapped_labels_are_refused_in_config_json_and_in_labels_txt(small_model, tmp_path):
    import json

    from capture.errors import DataError
    from training.model_dir import load_model_dir

    m = _model_copy(small_model, tmp_path)
    cfg = json.loads((m / "config.json").read_text())
    cfg["labels"][0], cfg["labels"][1] = cfg["labels"][1], cfg["labels"][0]
    (m / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match=r"config.json: sha256 .* does not match report.json's files_sha256"):
        load_model_dir(m)

    m2 = Path(str(m) + "2")
    import shutil
    shutil.copytree(small_model.model_dir, m2)
    labels = (m2 / "labels.txt").read_text().splitlines()
    (m2 / "labels.txt").write_text("\n".join([labels[1], labels[0], *labels[2:]]) + "\n")
    with pytest.raises(DataError, match="labels.txt"):
        load_model_dir(m2)
    load_model_dir(small_model.model_dir)  # the untouched folder still loads


# ----------------------------------------------------------------------------- item 14: wrong arguments

def _capture(data: Path, *extra: str) -> list[str]:
    return ["capture", "--url", "virtual://idle?speed=0", "--label", "x", "--takes", "1", "--seconds", "0.2",
            "--countdown", "0", "--data", str(data), "--quiet", *extra]



@pytest.mark.parametrize("rate", ["-50", "nan", "inf", "0", "1e9"])
def test_capture_refuses_a_rate_that_is_not_a_positive_number(tmp_path, capsys, rate):
    r = Ran(capsys, *_capture(tmp_path / "D", f"--rate={rate}"))
    assert_user_error(r, "--rate")
    assert not (tmp_path / "D").exists()


@pytest.mark.parametrize("cmd", ["train", "tune"])
def test_a_negative_seed_is_refused(tmp_path, capsys, cmd):
    r = Ran(capsys, cmd, str(DATA), "--out", str(tmp_path / "out"), "--seed", "-5")
    assert_user_error(r, "--seed")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("storage", ["journal:", "journal:/proc/nope/x.log"])
def test_tune_refuses_an_unusable_journal_storage(tmp_path, capsys, storage):
    r = Ran(capsys, "tune", str(DATA), "--out", str(tmp_path / "out"), "--no-m4", "--trials", "1", "--storage", storage)
    assert_user_error(r, "--storage", "journal")


def test_tune_m4_with_a_missing_tflm_tree_refuses_instead_of_estimating(tmp_path, capsys):
    r = Ran(capsys, "tune", str(DATA), "--out", str(tmp_path / "out"), "--m4", "--tflm", str(tmp_path / "nope"),
            "--trials", "1")
    assert_user_error(r, "--m4", "nope", "--no-m4")
    assert not (tmp_path / "out").exists()


def test_a_regular_file_as_port_is_named_as_such(tmp_path, capsys):
    f = tmp_path / "afile.txt"
    f.write_text("not a port\n")
    r = Ran(capsys, "capture", "--port", str(f), "--label", "x", "--takes", "1", "--data", str(tmp_path / "D"))
    line = assert_user_error(r, "afile.txt", "regular file", "not a serial port")
    assert "Serial Monitor" not in line


def test_export_data_refuses_a_file_as_out(tmp_path, capsys):
    f = tmp_path / "afile.txt"
    f.write_text("mine\n")
    assert_user_error(Ran(capsys, "export-data", "edge-impulse-json", str(DATA), "--out", str(f)), "afile.txt", "is a file")
    assert f.read_text() == "mine\n"


# ----------------------------------------------------------------------------- item 11: outputs inside a dataset

def _small_dataset(root: Path, takes: int = 2, seed: int = 0) -> Path:
    import numpy as np

    from capture.takes import Take, save_takes

    rng = np.random.default_rng(seed)
    save_takes(root, [Take(lab, np.arange(60) * 20.0, 0.5 + 0.2 * rng.standard_normal((60, 3)), meta={"subject": "p"})
                      for lab in ("a", "b") for _ in range(takes)])
    return root


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("out", [".", "sub", "a/deeper"])
def test_export_data_refuses_an_out_inside_the_dataset(tmp_path, capsys, out):
    d = _small_dataset(tmp_path / "data")
    before = _tree(d)
    r = Ran(capsys, "export-data", "edge-impulse-csv", str(d), "--out", str(d / out))
    assert_user_error(r, "--out", "inside the dataset")
    assert _tree(d) == before


def test_export_data_refuses_another_dataset_as_out_but_rewrites_its_own_export(tmp_path, capsys):
    d = _small_dataset(tmp_path / "data")
    other = _small_dataset(tmp_path / "other")
    assert_user_error(Ran(capsys, "export-data", "edge-impulse-csv", str(d), "--out", str(other)), "inside the dataset")
    for _ in range(2):  # an earlier export (info.labels, training/*.csv) is not a dataset: written again
        r = Ran(capsys, "export-data", "edge-impulse-csv", str(d), "--out", str(tmp_path / "ei"))
        assert r.returncode == 0, r.stderr


def test_tune_refuses_an_out_inside_the_dataset(tmp_path, capsys):
    d = _small_dataset(tmp_path / "data")
    before = _tree(d)
    r = Ran(capsys, "tune", str(d), "--out", str(d / "tune"), "--no-m4", "--trials", "1")
    assert_user_error(r, "--out", "inside the dataset")
    assert _tree(d) == before


# ----------------------------------------------------------------------------- item 10: warnings on misleading runs

def test_train_warns_when_the_test_set_is_the_training_data(capsys):
    from training.train import prepare

    p = prepare(DATA, test=DATA, limit_per_label=3, augment=0, quiet=True)
    err = capsys.readouterr().err
    assert any("test takes are also training takes" in w and "inflated" in w for w in p.warnings), p.warnings
    assert "warning: --test" in err


def test_train_with_an_independent_test_set_does_not_warn(tmp_path, capsys):
    from training.train import prepare

    p = prepare(_small_dataset(tmp_path / "d", takes=6), test=_small_dataset(tmp_path / "t", takes=2, seed=1),
                quiet=True, augment=0)
    assert not any("also training takes" in w for w in p.warnings), p.warnings


def test_train_warns_when_a_hand_chosen_rate_leaves_the_window_a_fraction_of_the_gesture(capsys):
    from training.train import prepare

    p = prepare(DATA, rate_hz=1000, limit_per_label=3, augment=0, quiet=True)
    err = capsys.readouterr().err
    notes = [w for w in p.warnings if "covers" in w]
    assert notes and "--rate" in notes[0] and "of a" in notes[0], p.warnings
    assert any("above the data's" in w for w in p.warnings), p.warnings
    assert "warning: --rate" in err
    assert not any("covers" in w for w in prepare(DATA, limit_per_label=3, augment=0, quiet=True).warnings)


# ----------------------------------------------------------------------------- item 12: dashboard

def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_to_gesture_dashboard_stops_its_streamlit_child_and_frees_the_port(tmp_path):
    import os
    import re
    import signal
    import socket
    import subprocess
    import sys
    import time

    from conftest import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "gesture_cli", "dashboard", "--url", "virtual://idle?speed=0",
                             "--port", "0", "--no-browser"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    kids: list[int] = []
    try:
        line = ""
        for line in proc.stderr:  # type: ignore[union-attr]
            if line.startswith("dashboard: "):
                break
        m = re.search(r":(\d+)/", line)
        assert m, line
        port = int(m.group(1))
        kids = _children(proc.pid)
        assert kids, "no streamlit child"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) != 0
        deadline = time.monotonic() + 30  # (a bound for a hung child, not a timing assertion)
        while any(_alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(k) for k in kids), "streamlit still running after SIGTERM to gesture dashboard"
        with socket.socket() as s:  # the next start can listen there
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()
        for k in kids:  # on failure: the child this test started, by its pid
            if _alive(k):
                os.kill(k, signal.SIGKILL)


@pytest.mark.parametrize("url, needle", [("ftp://x", "unknown link"),
                                         ("virtual://classifier?model=/nope", "/nope"),
                                         ("virtual://replay?bogus=1", "bogus")])
def test_dashboard_refuses_a_bad_url_at_the_command_line(capsys, url, needle):
    r = Ran(capsys, "dashboard", "--url", url, "--port", "0", "--no-browser", "--duration", "0.1")
    assert_user_error(r, needle)
    assert "dashboard: http" not in r.stderr
