"""``gesture flash``: build and upload a sketch folder with arduino-cli, or say how to do it by hand.

The kit never bundles a toolchain: when ``arduino-cli`` is on PATH it runs
``arduino-cli compile --fqbn FQBN SKETCH`` then ``arduino-cli upload -p PORT --fqbn FQBN SKETCH``,
after checking that the board core and the libraries the sketch includes are installed (missing
ones are reported with the exact install command). Without arduino-cli it raises an error that
names what to install and the manual Arduino IDE steps. Works for any sketch folder: the exported
classifier as well as the capture firmware.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from capture.errors import GestureError
from capture.boards import BOARDS, CHOICE_HEADER, DEFAULT_BOARD, board_from_defines, get_board
from training.export import MANIFEST
from training.tflm_tree import BUNDLE_DIR, missing_tree_hint

# header the sketch includes -> (library name in `arduino-cli lib list`, install command); the IMU
# libraries come from the board registry
LIBRARIES: dict[str, tuple[str, str]] = {
    "ArduinoBLE.h": ("ArduinoBLE", "arduino-cli lib install ArduinoBLE"),
    **{b.imu_include.strip("<>"): (b.imu_library, f"arduino-cli lib install {b.imu_library}") for b in BOARDS.values()},
}
# The classifier sketch carries its TFLM runtime in src/tflm (see training/export.py); no TFLM
# Arduino library is wanted: Arduino_TensorFlowLite's old kernels compute other outputs.


def install_cli(core: str) -> str:
    return ("install arduino-cli: `curl -fsSL https://raw.githubusercontent.com/arduino/arduino-cli/master/install.sh | sh` "
            "(or see https://arduino.github.io/arduino-cli/latest/installation/), put it on PATH, then run "
            f"`arduino-cli core update-index && arduino-cli core install {core}`")


@dataclass
class FlashPlan:
    sketch: Path
    fqbn: str
    core: str  # arduino-cli core that provides fqbn
    title: str  # the board, for the manual steps
    port: str
    libraries: list[str]  # library names the sketch includes
    defines: tuple[str, ...] = ()  # -D symbols for the board (the capture sketch's Rev2 IMU code)
    commands: list[list[str]] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)


def sketch_folder(path: str | Path) -> Path:
    """The sketch folder for a folder or its main .ino; checks the Arduino naming rule."""
    path = Path(path)
    if path.suffix == ".ino":
        path = path.parent
    if not path.is_dir():
        raise GestureError(f"{path}: sketch folder not found (run `gesture export MODEL_DIR --sketch {path}` first?)")
    ino = path / f"{path.name}.ino"
    if not ino.is_file():
        found = sorted(p.name for p in path.glob("*.ino"))
        raise GestureError(f"{path}: no {ino.name}; Arduino needs the main .ino named like its folder"
                           + (f" (found {', '.join(found)})" if found else ""))
    return path


def included_libraries(sketch: Path) -> list[str]:
    """Library names for the ``#include <...>`` lines of the sketch's .ino/.cpp/.h files."""
    names: list[str] = []
    for f in sorted(sketch.iterdir()):
        if f.suffix not in (".ino", ".cpp", ".h", ".c"):
            continue
        for header in re.findall(r"^\s*#\s*include\s*<([^>]+)>", f.read_text(errors="replace"), re.M):
            lib = LIBRARIES.get(header)
            if lib and lib[0] not in names:
                names.append(lib[0])
    return names


def board_of(sketch: Path, board: str | None) -> str:
    """--board, else the board the sketch was exported for (export.json) or written for (gk_board_choice.h),
    else the default board."""
    if board:
        return get_board(board).key
    manifest = sketch / MANIFEST
    if manifest.is_file():
        try:
            b = json.loads(manifest.read_text()).get("board")
        except (json.JSONDecodeError, AttributeError):
            b = None
        if b in BOARDS:
            return b
    choice = sketch / CHOICE_HEADER  # a capture sketch written by `gesture firmware --board`
    if choice.is_file():
        b = board_from_defines(choice.read_text(errors="replace"))
        if b is not None:
            return b
    return DEFAULT_BOARD


def plan(sketch: str | Path, port: str, board: str | None = None) -> FlashPlan:
    folder = sketch_folder(sketch)
    b = BOARDS[board_of(folder, board)]
    # the capture sketch includes both IMU libraries behind #ifdef: only this board's one is needed
    other_imus = {o.imu_library for o in BOARDS.values()} - {b.imu_library}
    libraries = [lib for lib in included_libraries(folder) if lib not in other_imus]
    return FlashPlan(folder, b.fqbn, b.core, b.title, port, libraries, defines=b.defines)


def commands(cli: str, p: FlashPlan) -> list[list[str]]:
    """Both revisions share one FQBN: the revision reaches the capture sketch as a -D flag."""
    flags = ["--build-property", "compiler.cpp.extra_flags=" + " ".join(f"-D{d}" for d in p.defines)] if p.defines else []
    return [[cli, "compile", "--fqbn", p.fqbn, *flags, str(p.sketch)],
            [cli, "upload", "-p", p.port, "--fqbn", p.fqbn, str(p.sketch)]]


def _install_hint(lib: str) -> str:
    return next(cmd for name, cmd in LIBRARIES.values() if name == lib)


def missing_hints(cli: str, p: FlashPlan, run: Callable[..., subprocess.CompletedProcess]) -> list[str]:
    """Install commands for the core and libraries arduino-cli does not list."""
    hints = []
    core = run([cli, "core", "list", "--format", "json"], capture_output=True, text=True)
    if p.core not in installed_cores(core.stdout if core.returncode == 0 else ""):
        hints.append(f"board core {p.core} is not installed: arduino-cli core update-index && "
                     f"arduino-cli core install {p.core}")
    libs = run([cli, "lib", "list", "--format", "json"], capture_output=True, text=True)
    installed = installed_libraries(libs.stdout if libs.returncode == 0 else "")
    for lib in p.libraries:
        if lib not in installed:
            hints.append(f"library {lib} is not installed: {_install_hint(lib)}")
    return hints


def _json(text: str) -> object:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None


def installed_cores(text: str) -> set[str]:
    """Core ids in ``arduino-cli core list --format json`` (1.x: {"platforms": [...]}; 0.x: a list)."""
    doc = _json(text)
    items = doc.get("platforms") or [] if isinstance(doc, dict) else doc if isinstance(doc, list) else []
    return {str(c["id"]) for c in items if isinstance(c, dict) and "id" in c}


def installed_libraries(text: str) -> dict[str, str]:
    """name -> version from ``arduino-cli lib list --format json`` (1.x: {"installed_libraries": [...]}; 0.x: a list)."""
    doc = _json(text)
    items = doc.get("installed_libraries") or [] if isinstance(doc, dict) else doc if isinstance(doc, list) else []
    out = {}
    for item in items:
        lib = item.get("library") if isinstance(item, dict) else None
        if isinstance(lib, dict) and "name" in lib:
            out[str(lib["name"])] = str(lib.get("version", ""))
    return out


def manual_steps(p: FlashPlan) -> str:
    libs = ", ".join(p.libraries) or "none"
    return (f"manual steps: open {p.sketch / (p.sketch.name + '.ino')} in the Arduino IDE; Tools > Board > "
            f"the board for {p.title} ({p.fqbn}; install the core {p.core} from Boards Manager if absent); "
            f"install the libraries ({libs}; see {p.sketch / 'README.md'} if present); Tools > Port > {p.port}; Upload")


def _compile_failure_hint(output: str, p: FlashPlan) -> str:
    m = re.search(r"([\w/.]+\.h): No such file or directory", output)
    if not m:
        return ""
    header = m.group(1)
    if header.startswith(("tensorflow/", "src/tflm/")) or header == "TensorFlowLite.h":
        bundled = (p.sketch / BUNDLE_DIR).is_dir()
        return (f"; {header} is missing: " + ("the sketch's src/tflm is incomplete; re-run `gesture export`" if bundled
                else f"the sketch has no bundled TFLM runtime (src/tflm); {missing_tree_hint()}, then re-export"))
    lib = LIBRARIES.get(Path(header).name)
    if lib:
        return f"; {header} is missing: {lib[1]}"
    return f"; {header} is missing: install the library that provides it"


def _tail(text: str, n: int = 12) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return "\n".join(lines[-n:])


def flash(sketch: str | Path, port: str, *, board: str | None = None, dry_run: bool = False,
          echo: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
          run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> FlashPlan:
    """Compile and upload ``sketch`` to ``port``; raise GestureError with what to do on failure."""
    p = plan(sketch, port, board)
    cli = shutil.which("arduino-cli")
    if cli is None and dry_run:
        # nothing runs: print what would, so the user can copy it once arduino-cli is installed
        p.commands = commands("arduino-cli", p)
        echo(f"# arduino-cli is not on PATH: {install_cli(p.core)}")
        for lib in p.libraries:
            echo(f"# {_install_hint(lib)}")
        for cmd in p.commands:
            echo(" ".join(cmd))
        return p
    if cli is None:
        raise GestureError(f"arduino-cli is not on PATH, so the kit cannot build and upload {p.sketch}.\n"
                           f"  {install_cli(p.core)}; then install the libraries: "
                           + "; ".join(_install_hint(l) for l in p.libraries) + ".\n  Or "
                           + manual_steps(p))
    p.commands = commands(cli, p)
    if dry_run:
        for cmd in p.commands:
            echo(" ".join(cmd))
        return p
    p.hints = missing_hints(cli, p, run)
    for h in p.hints:
        echo(f"warning: {h}")
    for cmd, what in zip(p.commands, ("compile", "upload")):
        echo(f"$ {' '.join(cmd)}")
        proc = run(cmd, capture_output=True, text=True)
        out = (proc.stdout or "") + (proc.stderr or "")
        if proc.returncode != 0:
            hint = _compile_failure_hint(out, p) if what == "compile" else \
                f"; is the board on {port}? (double-tap its reset button to enter the bootloader, then retry)"
            extra = ("; missing: " + "; ".join(p.hints)) if p.hints and what == "compile" else ""
            raise GestureError(f"arduino-cli {what} failed (exit {proc.returncode}){hint}{extra}\n{_tail(out)}")
        if out.strip():
            echo(_tail(out, 6))
    return p
