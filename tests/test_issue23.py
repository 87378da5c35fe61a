"""Issue 23 ("tried as a new user would, and then broken on purpose"): each reproduction gives a
one-line error (exit 2, no traceback) or a warning, and leaves nothing half-written."""
from __future__ import annotations

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
