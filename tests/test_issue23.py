"""Issue 23 ("tried as a new user would, and then broken on purpose"): each reproduction gives a
one-line error (exit 2, no traceback) or a warning, and leaves nothing half-written."""
from __future__ import annotations

from pathlib import Path

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

    import pytest

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
