"""`gesture flash`: the arduino-cli command lines, install hints and failures, with a stand-in
`arduino-cli` on PATH that records its argv (no toolchain or board needed)."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from capture.errors import GestureError
from gesture_cli import main
from training.flash import flash, plan

FQBN = "arduino:mbed_nano:nano33ble"
CORE_LIST = json.dumps({"platforms": [{"id": "arduino:mbed_nano", "installed_version": "4.2.4",
                                        "name": "Arduino Mbed OS Nano Boards"}]})
LIB_LIST = json.dumps({"installed_libraries": [{"library": {"name": n, "version": v}} for n, v in
                                               (("ArduinoBLE", "1.3.7"), ("Arduino_LSM9DS1", "1.1.1"))]})
TFLM_MISSING = ("/tmp/x/gk_model.cpp:14:10: fatal error: tensorflow/lite/micro/micro_interpreter.h: "
                "No such file or directory\ncompilation terminated.\n")


@pytest.fixture
def fake_cli(tmp_path, monkeypatch):
    """An `arduino-cli` stand-in: logs argv, prints $FAKE_<SUBCOMMAND>_OUT, exits $FAKE_<SUBCOMMAND>_RC."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "argv.log"
    script = bindir / "arduino-cli"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {log}
case "$1 $2" in
  "core list") printf '%s' "$FAKE_CORE_OUT"; exit 0;;
  "lib list") printf '%s' "$FAKE_LIB_OUT"; exit 0;;
esac
case "$1" in
  compile) printf '%s' "$FAKE_COMPILE_OUT" >&2; exit ${{FAKE_COMPILE_RC:-0}};;
  upload) printf '%s' "$FAKE_UPLOAD_OUT"; exit ${{FAKE_UPLOAD_RC:-0}};;
esac
exit 0
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CORE_OUT", CORE_LIST)
    monkeypatch.setenv("FAKE_LIB_OUT", LIB_LIST)
    monkeypatch.setenv("FAKE_COMPILE_OUT", "Sketch uses 391234 bytes (39%) of program storage space.\n")
    return script, log


def make_sketch(parent: Path, name: str, includes: list[str]) -> Path:
    d = parent / name
    d.mkdir(parents=True)
    (d / f"{name}.ino").write_text("".join(f"#include <{h}>\n" for h in includes) + "void setup() {}\nvoid loop() {}\n")
    return d


@pytest.fixture
def classifier(tmp_path) -> Path:
    return make_sketch(tmp_path / "sk", "gesture_classifier", ["ArduinoBLE.h", "Arduino_LSM9DS1.h"])


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines()


def test_compile_then_upload_with_the_fqbn(fake_cli, classifier):
    script, log = fake_cli
    echoed: list[str] = []
    plan = flash(classifier, "/dev/ttyACM0", echo=echoed.append)
    assert lines(log) == ["core list --format json", "lib list --format json", f"compile --fqbn {FQBN} {classifier}",
                          f"upload -p /dev/ttyACM0 --fqbn {FQBN} {classifier}"]
    assert plan.libraries == ["ArduinoBLE", "Arduino_LSM9DS1"] and plan.hints == []  # TFLM comes in src/tflm
    assert f"$ {script} compile --fqbn {FQBN} {classifier}" in echoed
    assert any("Sketch uses 391234 bytes" in e for e in echoed)


def test_missing_tflm_headers_say_how_to_bundle_the_runtime(fake_cli, classifier, monkeypatch):
    _, log = fake_cli
    monkeypatch.setenv("FAKE_COMPILE_OUT", TFLM_MISSING)
    monkeypatch.setenv("FAKE_COMPILE_RC", "1")
    with pytest.raises(GestureError) as e:
        flash(classifier, "/dev/ttyACM0", echo=lambda s: None)
    msg = str(e.value)
    assert msg.startswith("arduino-cli compile failed (exit 1); tensorflow/lite/micro/micro_interpreter.h is missing: "
                          "the sketch has no bundled TFLM runtime (src/tflm); no TFLM source tree: pass --tflm PATH")
    assert "then re-export" in msg and "tflite-micro-arduino-examples" not in msg
    assert "No such file or directory" in msg  # the compiler's own lines follow
    assert not any(l.startswith("upload") for l in lines(log))  # never uploads a failed build


def test_missing_core_and_libraries_are_reported_with_install_commands(fake_cli, classifier, monkeypatch):
    monkeypatch.setenv("FAKE_CORE_OUT", json.dumps({"platforms": []}))
    monkeypatch.setenv("FAKE_LIB_OUT", json.dumps({"installed_libraries": []}))
    echoed: list[str] = []
    plan = flash(classifier, "/dev/ttyACM0", echo=echoed.append)
    warnings = [e for e in echoed if e.startswith("warning: ")]
    assert warnings == [
        "warning: board core arduino:mbed_nano is not installed: arduino-cli core update-index && arduino-cli core install arduino:mbed_nano",
        "warning: library ArduinoBLE is not installed: arduino-cli lib install ArduinoBLE",
        "warning: library Arduino_LSM9DS1 is not installed: arduino-cli lib install Arduino_LSM9DS1",
    ]
    assert len(plan.hints) == 3


def test_upload_failure_names_the_port(fake_cli, classifier, monkeypatch):
    monkeypatch.setenv("FAKE_UPLOAD_OUT", "No device found on ttyACM9\n")
    monkeypatch.setenv("FAKE_UPLOAD_RC", "2")
    with pytest.raises(GestureError, match=r"arduino-cli upload failed \(exit 2\); is the board on /dev/ttyACM9\?"):
        flash(classifier, "/dev/ttyACM9", echo=lambda s: None)


def test_without_arduino_cli_it_says_what_to_install_and_the_manual_steps(tmp_path, classifier, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GestureError) as e:
        flash(classifier, "/dev/ttyACM0")
    msg = str(e.value)
    assert "arduino-cli is not on PATH" in msg and "install arduino-cli:" in msg
    assert "arduino-cli core install arduino:mbed_nano" in msg and "arduino-cli lib install ArduinoBLE" in msg
    assert f"manual steps: open {classifier / 'gesture_classifier.ino'} in the Arduino IDE" in msg
    assert "Arduino Nano 33 BLE" in msg and "Upload" in msg


def test_dry_run_prints_commands_and_runs_nothing(fake_cli, classifier):
    script, log = fake_cli
    echoed: list[str] = []
    flash(classifier / "gesture_classifier.ino", "/dev/ttyACM0", board="nano33ble_rev2", dry_run=True, echo=echoed.append)
    assert echoed == [f"{script} compile --fqbn {FQBN} --build-property compiler.cpp.extra_flags=-DGK_BOARD_REV2 {classifier}",
                      f"{script} upload -p /dev/ttyACM0 --fqbn {FQBN} {classifier}"]
    assert not log.exists()


def test_capture_firmware_flashes_with_the_same_command(fake_cli, tmp_path):
    _, log = fake_cli
    capture = make_sketch(tmp_path / "firmware", "capture", ["ArduinoBLE.h", "Arduino_LSM9DS1.h"])
    plan = flash(capture, "/dev/ttyACM1", echo=lambda s: None)
    assert plan.libraries == ["ArduinoBLE", "Arduino_LSM9DS1"]
    assert lines(log)[-1] == f"upload -p /dev/ttyACM1 --fqbn {FQBN} {capture}"


def test_bad_sketch_folders(fake_cli, tmp_path):
    with pytest.raises(GestureError, match="sketch folder not found"):
        flash(tmp_path / "nope", "/dev/ttyACM0")
    d = tmp_path / "mysketch"
    d.mkdir()
    (d / "other.ino").write_text("")
    with pytest.raises(GestureError, match=r"no mysketch.ino; Arduino needs the main .ino named like its folder \(found other.ino\)"):
        flash(d, "/dev/ttyACM0")


def test_cli_flash(fake_cli, classifier, capsys, monkeypatch):
    assert main(["flash", str(classifier), "--port", "/dev/ttyACM0"]) == 0
    assert f"uploaded {classifier} to /dev/ttyACM0" in capsys.readouterr().out
    monkeypatch.setenv("FAKE_COMPILE_RC", "1")
    assert main(["flash", str(classifier), "--port", "/dev/ttyACM0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("$ ") and err[1] == "error: arduino-cli compile failed (exit 1)"


def test_rev2_reaches_the_capture_sketch_as_a_define(fake_cli, tmp_path):
    _, log = fake_cli
    capture = make_sketch(tmp_path / "fw", "capture", ["ArduinoBLE.h", "Arduino_LSM9DS1.h"])
    capture.joinpath("capture.ino").write_text("#include <ArduinoBLE.h>\n#include GK_IMU_HEADER\n")
    capture.joinpath("gk_imu_bmi270.h").write_text("#include <Arduino_BMI270_BMM150.h>\n")
    capture.joinpath("gk_imu_lsm9ds1.h").write_text("#include <Arduino_LSM9DS1.h>\n")
    plan = flash(capture, "/dev/ttyACM0", board="nano33ble_rev2", echo=lambda s: None)
    assert plan.libraries == ["ArduinoBLE", "Arduino_BMI270_BMM150"]  # not the Rev1 IMU library
    compile_line = next(l for l in lines(log) if l.startswith("compile"))
    assert compile_line == f"compile --fqbn {FQBN} --build-property compiler.cpp.extra_flags=-DGK_BOARD_REV2 {capture}"
    # and the capture sketch really selects its IMU code with that symbol: gk_boards.h maps it to
    # the sensor header, which includes the sensor's library
    fw = Path(__file__).resolve().parent.parent / "firmware" / "capture"
    assert "#include GK_IMU_HEADER" in (fw / "capture.ino").read_text()
    boards_h = (fw / "gk_boards.h").read_text()
    assert "#if defined(GK_BOARD_REV2)" in boards_h and '"gk_imu_bmi270.h"' in boards_h
    assert "#include <Arduino_BMI270_BMM150.h>" in (fw / "gk_imu_bmi270.h").read_text()


def _sketch_macros(sketch: Path) -> str:
    """The capture sketch's .ino preprocessed with g++ against firmware/shim and no -D flag: its macros."""
    import subprocess

    from capture.virtual.firmware import shim_dir
    from tests.conftest import need_tool

    gxx = need_tool("g++")
    ino = next(sketch.glob("*.ino"))
    r = subprocess.run([gxx, "-std=gnu++17", "-E", "-dM", "-x", "c++", f"-I{shim_dir()}", f"-I{sketch}", str(ino)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_firmware_board_rev2_is_written_into_the_sketch_for_the_ide(tmp_path, monkeypatch, capsys):
    """The IDE cannot pass -DGK_BOARD_REV2: `gesture firmware --board` puts the choice in the folder."""
    monkeypatch.chdir(tmp_path)
    assert main(["firmware", "--board", "nano33ble_rev2", "--out", "rev2"]) == 0
    assert main(["firmware", "--out", "rev1"]) == 0
    capsys.readouterr()
    rev2 = _sketch_macros(tmp_path / "rev2")
    assert '#define GK_BOARD_NAME "nano33ble_rev2"' in rev2 and '#define GK_IMU_HEADER "gk_imu_bmi270.h"' in rev2
    assert '#define GK_BOARD_NAME "nano33ble"' in _sketch_macros(tmp_path / "rev1")
    # gesture flash reads the choice too: the Rev2 library, no --board needed
    p = plan(tmp_path / "rev2", "/dev/ttyACM0")
    assert p.defines == ("GK_BOARD_REV2",) and "Arduino_BMI270_BMM150" in p.libraries
    assert "Arduino_LSM9DS1" not in p.libraries
    assert plan(tmp_path / "rev1", "/dev/ttyACM0").defines == ()
    assert main(["firmware", "--board", "uno", "--out", "x"]) == 2  # click's one-line choice error
