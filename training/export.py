"""``gesture export``: a trained MODEL_DIR becomes an Arduino sketch folder for the board.

The sketch is assembled from ``firmware/templates/gesture_classifier`` plus files generated from
the model, so no number is typed twice. The sketch is push-ready: the model and every number about
it come at run time from a model package (:mod:`training.package`), and the one compiled into the
sketch (model_data.cpp: the package bytes, 16-byte aligned) goes through the same C++ parser
(gk_package_parse.h) at boot as a pushed one. Generated: model_data.cpp, gk_package.h (the format's
constants and the firmware's maxima), gk_config.h (what stays compile-time: the board and INFO's
fixed part, :mod:`training.codegen_preprocess`), gesture_protocol.h (:mod:`capture.protocol`) and the
op resolver (gk_model.cpp: every op the model families emit, training.tflm_ops.FIRMWARE_OPS, plus
the built-in model's). Before writing anything it checks the board's budget and the package's
limits, so a model that cannot fit is refused here with a figure, not on the board after a long upload.

The TFLM runtime and exactly the model's kernels (CMSIS-NN variants) are bundled under the
sketch's ``src/tflm`` from a pinned TFLM tree (:mod:`training.tflm_tree`), with includes rewritten
relative to each file: the Arduino builder compiles a sketch's ``src/`` recursively but puts no
include path on it. So the sketch builds with only the board core, ArduinoBLE and the IMU library
installed, in arduino-cli and in the IDE alike, with nothing to copy, and it runs the very kernels
``gesture verify`` checked on the M4. (The Arduino_TensorFlowLite library is not an option: its old
kernels give different int8 outputs for the same model.) Without a tree the sketch is still
written, without src/tflm, and the result says in one line how to add it.

Why model_data.cpp and not .cc: the Arduino sketch specification compiles only .c, .cpp and .S
files in the sketch folder, so a .cc array would silently not be linked.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from capture import protocol as p
from capture.boards import Board, get_board
from capture.errors import DataError, GestureError
from capture.fileio import write_folder
from capture.resources import classifier_template_dir, common_dir
from training import package, tflm_tree
from training.codegen_preprocess import GENERATED, check_config, config_header, info_text
from training.evaluate import ALIGN
from training.model_dir import load_model_dir
from training.postprocess import detector_config
from training.preprocess import PreprocessConfig
from training.tflm_ops import FIRMWARE_OPS, RESOLVER_METHODS, check_supported, firmware_ops, model_ops

MANIFEST = "export.json"  # marks a folder as written by `gesture export` (safe to overwrite)
# the template files copied as they are (the portable C++ of the push-ready sketch)
STATIC_FILES = ("gk_preprocess.h", "gk_detect.h", "gk_format.h", "gk_model.h", "gk_package_parse.h", "gk_sha256.h",
                "gk_crc32.h",
                # push over BLE: the flash slots and the transfer service (portable), their board glue
                "gk_flash.h", "gk_slots.h", "gk_push.h", "gk_flash_iap.h", "gk_push_ble.h")
SKETCH_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
TFLM_INCLUDE_PREFIX = "src/tflm/tflite-micro/"  # gk_model.cpp's TFLM includes, relative to the sketch


# ---- budget (bytes), from real links, not per-kernel guesses.
# The push-ready sketch's kernels (every FIRMWARE_OPS op), tensor arena (GK_MAX_ARENA_BYTES) and
# static buffers (the package maxima) are the same whatever model it carries: what depends on the
# model is the built-in package in flash (model_data.cpp) and the kernels of any op of the model
# outside FIRMWARE_OPS. So a sketch's budget is the board's real link of the push-ready classifier
# `gesture export` writes for the REFERENCE model (capture/boards.py classifier_*), with the
# reference package's bytes swapped for this model's.
@dataclass(frozen=True)
class ReferenceModel:
    """The model the boards' push-ready classifier links were built with."""

    made_by: str
    model_sha256: str
    model_bytes: int
    package_bytes: dict[str, int]  # per board: its model package (model_data.cpp's g_package_data_len; the
    # low-pass taps, so the length, depend on the board's IMU rate)


REFERENCE = ReferenceModel(
    made_by="`gesture demo` (seed 0, 240 simulated takes; 4 labels, accel, 26 Hz x 72), exported with "
            "`gesture export --board KEY`",
    model_sha256="532a0d048a9f1ad558724cda11d082aa52755b9cbd00931ff71a28fcd2fd52a4",
    model_bytes=12_336, package_bytes={"nano33ble": 12_688, "nano33ble_rev2": 12_672})
LINK_SOURCE = ("real link (capture/boards.py): ArduinoCore-mbed 4.6.0 b4ad4e7, libmbed.a rebuilt from Mbed OS "
               "6.17.0, ArduinoBLE 2.0.1, Arduino_LSM9DS1 1.1.1, Arduino_BMI270_BMM150 1.2.3, arm-none-eabi-gcc 12.2")


@dataclass
class Budget:
    """Flash and RAM of the sketch against the board, with the parts that make them and where
    each figure comes from (``sources``)."""

    board: Board
    flash: dict[str, int]
    ram: dict[str, int]
    sources: dict[str, str] = field(default_factory=dict)
    model_bytes: int = 0
    arena_bytes: int = 0
    # the flash the sketch may use: a push-ready sketch must end below the model slots
    # (training.package.PUSH_READY_FLASH_BYTES), less than the core's board.flash_bytes
    flash_limit: int = package.PUSH_READY_FLASH_BYTES

    @property
    def flash_total(self) -> int:
        return sum(self.flash.values())

    @property
    def ram_total(self) -> int:
        return sum(self.ram.values())

    def problems(self) -> list[str]:
        out = []
        if self.flash_total > self.flash_limit:
            over = self.flash_total - self.flash_limit
            out.append(f"flash: {self.flash_total:,} bytes (model {self.model_bytes:,}) exceeds the "
                       f"{self.flash_limit:,} bytes a push-ready sketch of {self.board.key} may use (it must end below "
                       f"the model slots at 0x{package.SLOTS_BASE:X}) by {over:,}; train a smaller model "
                       "(fewer/smaller conv filters, a shorter --window or a lower --rate)")
        if self.ram_total > self.board.ram_bytes:
            over = self.ram_total - self.board.ram_bytes
            out.append(f"RAM: {self.ram_total:,} bytes (tensor arena {self.arena_bytes:,}) exceeds the "
                       f"{self.board.ram_bytes:,} bytes of {self.board.key} by {over:,}; train a smaller model "
                       "(a shorter --window, fewer conv filters) so the arena shrinks")
        return out


def ring_buffer_bytes(cfg: PreprocessConfig | None = None, imu_rate_hz: float = p.DEFAULT_RATE_HZ) -> int:
    """Static buffers of the live loop (gk_preprocess.h, gk_detect.h, the .ino), as declared there:
    sized for the package maxima (gk_package.h), whatever model runs (``cfg`` is not needed)."""
    del cfg
    w, c, n = package.MAX_WINDOW, package.MAX_CHANNELS, package.MAX_LABELS
    live = w * c * 2 + w * 4 + 24  # LiveWindow ring + motion energy + counters
    resampler = package.MAX_TAPS * c * 2 + c * 2 + 32  # FIR history + previous sample + state
    window_copy = w * c * 2
    model_io = w * c + n
    smoother = package.MAX_SMOOTHING * n + 16
    detector = package.MAX_DETECT_AVERAGE * (n + 1) + 40  # gk_detect.h: fixed history + state
    config = 2 * (n * (package.MAX_LABEL_LEN + 1) + c * 14 + package.MAX_TAPS * 4 + 160)  # running + built-in gk::Config
    info = p.MAX_PAYLOAD + 1
    raw = p.samples_per_frame(imu_rate_hz) * 6 * 2
    return live + resampler + window_copy + model_io + smoother + detector + config + info + raw


def estimate_budget(package_bytes: int, ops: list[str], board: Board, model_bytes: int = 0) -> Budget:
    """The push-ready sketch's flash/RAM as arduino-cli reports them: the board's real classifier
    link (REFERENCE) with the reference package's bytes swapped for this model's ``package_bytes``.
    ``ops`` is the resolver (firmware_ops()); kernels outside FIRMWARE_OPS are not in the link and
    are named in the sources as not counted."""
    ref = REFERENCE
    ref_package = ref.package_bytes[board.key]
    extra = [op for op in ops if op not in FIRMWARE_OPS]
    buffers = ring_buffer_bytes(None, board.imu_rate_hz)
    sketch_src = (f"the real push-ready classifier link of {board.key} minus the base, the reference package "
                  f"({ref_package:,} B) and, for RAM, the arena and buffers: TFLM + every FIRMWARE_OPS kernel, "
                  f"package parser, flash slots, BLE services (reference: {ref.made_by})")
    if extra:
        sketch_src += f"; not counted: the kernels of {', '.join(extra)} (not in FIRMWARE_OPS)"
    flash = {"core_ble_imu": board.base_flash_bytes,
             "sketch": board.classifier_flash_bytes - board.base_flash_bytes - ref_package,
             "package": int(package_bytes)}
    ram = {"core_ble_imu": board.base_ram_bytes,
           "sketch": board.classifier_ram_bytes - board.base_ram_bytes - package.MAX_ARENA_BYTES - buffers,
           "arena": package.MAX_ARENA_BYTES, "buffers": buffers}
    sources = {"core_ble_imu": "empty sketch with ArduinoBLE and " + board.imu_library + ", " + LINK_SOURCE,
               "sketch": sketch_src, "package": "this model's package (model_data.cpp: header + model.tflite)",
               "arena": "GK_MAX_ARENA_BYTES (any model a package may describe runs in it)",
               "buffers": "declared sizes in gk_preprocess.h, gk_detect.h and the .ino (the package maxima)"}
    return Budget(board, flash, ram, sources, int(model_bytes), package.MAX_ARENA_BYTES,
                  min(package.PUSH_READY_FLASH_BYTES, board.flash_bytes))


# ----------------------------------------------------------------------------- generated files

def model_data_files(package_bytes: bytes, source: str) -> tuple[str, str]:
    """(model_data.h, model_data.cpp): the built-in model package (training.package) as a 16-byte
    aligned const array; its header length is a multiple of 16, so the .tflite inside is aligned
    as TFLM requires."""
    digest = hashlib.sha256(package_bytes).hexdigest()
    head = (f"// {GENERATED} from {source} (gesture-kit). Do not edit: re-run `gesture export`.\n"
            f"// The built-in model package: {len(package_bytes)} bytes, sha256 {digest}\n")
    h = head + ("#pragma once\n\n"
                "// A model package (training/package.py): header + the int8 TFLite flatbuffer, parsed at boot by\n"
                "// gk_package_parse.h like a pushed one. 16-byte aligned, so the flatbuffer is too.\n"
                "extern const unsigned char g_package_data[];\n"
                "extern const unsigned int g_package_data_len;\n")
    rows = []
    for i in range(0, len(package_bytes), 12):
        rows.append("  " + ", ".join(f"0x{b:02x}" for b in package_bytes[i:i + 12]) + ",")
    cc = head + ('#include "model_data.h"\n\n'
                 "alignas(16) const unsigned char g_package_data[] = {\n" + "\n".join(rows) + "\n};\n"
                 f"const unsigned int g_package_data_len = {len(package_bytes)};\n")
    return h, cc


def parse_model_data(text: str) -> bytes:
    """The package bytes back out of a generated model_data.cpp (tests and `gesture export --check`);
    ``training.package.parse_package(...).payload`` is the model."""
    m = re.search(r"g_package_data\[\]\s*=\s*\{(.*?)\};", text, re.S)
    n = re.search(r"g_package_data_len\s*=\s*(\d+)\s*;", text)
    if not m or not n:
        raise ValueError("no g_package_data array / g_package_data_len in the text")
    data = bytes(int(tok, 16) for tok in re.findall(r"0x([0-9a-fA-F]{2})", m.group(1)))
    if len(data) != int(n.group(1)):
        raise ValueError(f"array has {len(data)} bytes but g_package_data_len says {n.group(1)}")
    return data


def model_cpp(ops: list[str], source: str, *, bundled: bool = False) -> str:
    """gk_model.cpp: the resolver registers ``ops`` (firmware_ops(): every op of the model
    families plus the built-in model's). With the TFLM bundle under src/tflm its includes point
    there (the Arduino builder gives src/ no include path)."""
    check_supported(ops)
    text = (classifier_template_dir() / "gk_model.cpp.tmpl").read_text()
    if bundled:
        text = text.replace('#include "tensorflow/', f'#include "{TFLM_INCLUDE_PREFIX}tensorflow/')
    calls = "\n".join(f"    r.{RESOLVER_METHODS[op]}();" for op in ops)
    return _fill(text, {"GENERATED": GENERATED, "MODEL_DIR": source, "N_OPS": str(len(ops)),
                        "OPS": ", ".join(ops), "REGISTER_OPS": calls})


def check_info_fits(info: str, source: str) -> None:
    """The INFO record must fit a frame payload: the info characteristic is sized for that much
    (ArduinoBLE would cut a longer value silently, and a serial INFO frame could not carry it)."""
    if len(info.encode("ascii")) > p.MAX_PAYLOAD:
        raise GestureError(f"{source}: the board's INFO record would be {len(info.encode('ascii'))} bytes, over the "
                           f"protocol's limit of {p.MAX_PAYLOAD} (MAX_PAYLOAD, the info characteristic's size); "
                           "use fewer or shorter labels")


def check_prediction_fits(labels: list[str], source: str) -> None:
    """One PREDICTION notification must carry every label's score at ATT MTU 23, the MTU of every
    link until the central raises it: ArduinoBLE cuts a longer notification to MTU - 3 bytes and the
    host rejects the cut payload, so the board's predictions would never arrive."""
    most = p.max_labels_per_prediction(p.BLE_NOTIFY_MTU)
    if len(labels) > most:
        raise GestureError(f"{source}: {len(labels)} labels do not fit one BLE prediction notification at ATT MTU "
                           f"{p.BLE_NOTIFY_MTU} ({p.BLE_NOTIFY_HEADER.size + p.PREDICTION_PAYLOAD_HEADER.size} + "
                           f"{len(labels)} bytes over the {p.BLE_NOTIFY_MTU - p.ATT_OVERHEAD} a notification holds); "
                           f"the board supports at most {most} labels: merge or drop labels and retrain")


def sketch_ino(cfg: PreprocessConfig, board: Board, source: str) -> str:
    del cfg  # the model's numbers are read at run time from its package
    text = (classifier_template_dir() / "gesture_classifier.ino.tmpl").read_text()
    return _fill(text, {"GENERATED": GENERATED, "MODEL_DIR": source, "BOARD_TITLE": board.title,
                        "IMU_INCLUDE": board.imu_include, "IMU_HEADER": board.imu_header,
                        "IMU_RATE": str(board.imu_rate_hz)})


def _fill(text: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        text = text.replace(f"@{k}@", v)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise RuntimeError(f"template placeholders not filled: {sorted(set(left))}")
    return text


def tflm_section(tflm: dict | None) -> str:
    """The README's TFLM paragraph: bundled (which commit) or how to add it."""
    if tflm:
        return (f"The TensorFlow Lite Micro runtime and exactly this model's kernels (CMSIS-NN variants) are in "
                f"`src/tflm/`, copied by `gesture export` from the pinned TFLM tree: tflite-micro "
                f"`{tflm['tflm_commit']}`, CMSIS-NN `{tflm.get('cmsis_nn_commit', 'unknown')}` (Apache-2.0; each "
                "upstream LICENSE is beside its files). **Do not install a TensorFlow Lite Arduino library**: the "
                "Library Manager's Arduino_TensorFlowLite runs old kernels that compute different outputs for this "
                "model. `gesture verify` builds these very files for the Cortex-M4 and checks them against the "
                "Python evaluation.")
    return ("**The TFLM runtime is missing from this sketch** (`src/tflm/`): it was exported without a TFLM tree. "
            + tflm_tree.missing_tree_hint() + ", then run `gesture export` again. Do not use the Library Manager's "
            "Arduino_TensorFlowLite instead: its old kernels compute different outputs for this model.")


def example_line(labels: list[str]) -> str:
    """A Serial line as gk_format.h prints it, with this model's labels (the README's example)."""
    rest = [8 // max(1, len(labels) - 1)] * (len(labels) - 1)
    if rest:
        rest[0] += 8 - sum(rest)
    scores = [92] + rest
    return f"{labels[0]} 92% | " + " ".join(f"{lab} {v}" for lab, v in zip(labels, scores))


def readme(cfg: PreprocessConfig, board: Board, budget: Budget, ops: list[str], model_bytes: int, arena: int,
           sketch_name: str, source: str, sketch_path: str | None = None, tflm: dict | None = None) -> str:
    text = (classifier_template_dir() / "README.md.tmpl").read_text()
    flash_rows = "\n".join(f"| {k} | {v:,} | {budget.sources.get(k, '')} |" for k, v in budget.flash.items())
    ram_rows = "\n".join(f"| {k} | {v:,} | {budget.sources.get(k, '')} |" for k, v in budget.ram.items())
    return _fill(text, {
        "GENERATED": GENERATED, "MODEL_DIR": source, "SKETCH": sketch_name, "BOARD_TITLE": board.title,
        "BOARD_KEY": board.key, "FQBN": board.fqbn, "IMU_LIBRARY": board.imu_library, "SENSOR": board.sensor,
        "IMU_RATE": str(board.imu_rate_hz), "LABELS": ", ".join(cfg.labels), "MODEL_RATE": str(cfg.model_rate_hz),
        "WINDOW": str(cfg.window), "WINDOW_S": f"{cfg.window / cfg.model_rate_hz:.2f}", "STRIDE": str(cfg.stride),
        "PRED_RATE": f"{cfg.model_rate_hz / cfg.stride:g}", "OPS": ", ".join(ops), "MODEL_BYTES": f"{model_bytes:,}",
        "ARENA": f"{arena:,}", "FLASH_TOTAL": f"{budget.flash_total:,}", "FLASH_MAX": f"{budget.flash_limit:,}",
        "FLASH_PCT": f"{100 * budget.flash_total / budget.flash_limit:.0f}", "RAM_TOTAL": f"{budget.ram_total:,}",
        "RAM_MAX": f"{board.ram_bytes:,}", "RAM_PCT": f"{100 * budget.ram_total / board.ram_bytes:.0f}",
        "FLASH_ROWS": flash_rows, "RAM_ROWS": ram_rows, "TFLM_SECTION": tflm_section(tflm),
        "SERVICE_UUID": p.SERVICE_UUID, "PREDICTION_UUID": p.PREDICTION_CHAR_UUID, "IMU_UUID": p.IMU_CHAR_UUID,
        "EVENT_UUID": p.EVENT_CHAR_UUID, "DETECTOR": detector_config(cfg).describe(cfg),
        "BLE_NAME": p.BLE_LOCAL_NAME, "SKETCH_PATH": sketch_path or sketch_name, "EXAMPLE_LINE": example_line(list(cfg.labels)),
    })


# ----------------------------------------------------------------------------- export

@dataclass
class ExportResult:
    sketch_dir: Path
    board: str
    files: list[str]
    model_bytes: int
    arena_bytes: int
    ops: list[str]
    flash_estimate: int
    flash_max: int
    ram_estimate: int
    ram_max: int
    budget: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # warnings for the user (overrides, hand edits kept, no TFLM)
    tflm: dict | None = None  # the bundled tree (commits), None when exported without one

    def __str__(self) -> str:
        bundled = f"TFLM {self.tflm['tflm_commit'][:7]} bundled" if self.tflm else "no TFLM bundled"
        n_own = len([f for f in self.files if not f.startswith(tflm_tree.BUNDLE_DIR + "/")])
        return (f"{self.sketch_dir} ({n_own} files, {bundled}, board {self.board}): model {self.model_bytes:,} bytes, "
                f"arena {self.arena_bytes:,} bytes, {len(self.ops)} ops; flash {self.flash_estimate:,} / "
                f"{self.flash_max:,} bytes ({100 * self.flash_estimate / self.flash_max:.0f}%), RAM "
                f"{self.ram_estimate:,} / {self.ram_max:,} bytes ({100 * self.ram_estimate / self.ram_max:.0f}%)")


def _check_target(sketch_dir: Path, force: bool) -> None:
    if not SKETCH_NAME_RE.match(sketch_dir.name) or sketch_dir.name.endswith("."):
        raise GestureError(f"{sketch_dir}: an Arduino sketch folder name must start with a letter, digit or '_' and "
                           "hold only letters, digits, '_', '.', '-' (at most 63 characters); the .ino takes its name")
    if sketch_dir.exists() and not sketch_dir.is_dir():
        raise GestureError(f"{sketch_dir} exists and is not a folder")
    if sketch_dir.is_dir() and any(sketch_dir.iterdir()) and not (sketch_dir / MANIFEST).is_file() and not force:
        raise GestureError(f"{sketch_dir} is not empty and was not written by `gesture export` (no {MANIFEST}); "
                           "choose another folder or pass --force to overwrite it")


def _previous_export(sketch_dir: Path) -> dict:
    try:
        old = json.loads((sketch_dir / MANIFEST).read_text())
        return old if isinstance(old, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _keep_edits(sketch_dir: Path, previous: dict, files: dict[str, bytes]) -> tuple[dict[str, bytes], list[str]]:
    """Back up generated files edited by hand since the last export; say so (never a silent revert).

    The last export recorded each file's sha256; a file that no longer matches was edited. Its
    edited copy is kept as ``NAME.edited`` (Arduino compiles only .ino/.c/.cpp/.h/.S, so the
    backup is not built) beside the generated one the export writes. Returns the backups to
    write (name -> content) and the notes.
    """
    recorded = previous.get("sha256") if isinstance(previous.get("sha256"), dict) else {}
    backups: dict[str, bytes] = {}
    notes = []
    for fname, data in files.items():
        path = sketch_dir / fname
        want = recorded.get(fname)
        if not want or not path.is_file():
            continue
        old = path.read_bytes()
        if hashlib.sha256(old).hexdigest() != want and old != data:
            backups[fname + ".edited"] = old
            notes.append(f"{path} was edited by hand since the last export: kept as {fname}.edited and regenerated "
                         "(put overrides in export options such as --arena, not in generated files)")
    return backups, notes


def _folder_files(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative, '/'-separated), without interrupted writes' temporaries."""
    if not folder.is_dir():
        return []
    out = []
    for path in folder.rglob("*"):
        if (path.is_file() or path.is_symlink()) and not (path.name.startswith(".") and path.name.endswith(".tmp")):
            out.append(path.relative_to(folder).as_posix())
    return sorted(out)


def export_sketch(model_dir: str | Path, sketch_dir: str | Path, *, board: str = "nano33ble",
                  force: bool = False, arena_bytes: int | None = None,
                  tflm: str | Path | None = None) -> ExportResult:
    """Write the classifier sketch for ``model_dir`` into ``sketch_dir``, with the TFLM runtime
    from ``tflm`` (a tree or tarball; default: $GESTURE_TFLM or the user cache, see
    :func:`training.tflm_tree.find_tree`). Raises GestureError when the model does not fit
    ``board`` or the folder holds something else.

    ``arena_bytes`` overrides the arena need the training measured (``gesture export --arena``),
    written into the built-in package; the sketch's arena is always GK_MAX_ARENA_BYTES (any model a
    package may describe fits it), so a need above that is refused. It is an input of the export,
    so a re-export keeps it when given again and says so when it is not.
    """
    model_dir, sketch_dir = Path(model_dir), Path(sketch_dir)
    b = get_board(board)
    cfg, tflite, report = load_model_dir(model_dir)
    arena = report.get("arena_board_bytes")
    if not isinstance(arena, int) or arena <= 0:
        raise DataError(model_dir / "report.json", "missing or invalid 'arena_board_bytes' (the arena the board needs); "
                        "re-run `gesture train` to measure it", field="arena_board_bytes")
    notes: list[str] = []
    previous = _previous_export(sketch_dir)
    if arena_bytes is not None:
        if arena_bytes < arena:
            notes.append(f"--arena {arena_bytes:,} is below the {arena:,} bytes the model was measured to need; "
                         "AllocateTensors() will likely fail on the board")
        arena = arena_bytes
    elif previous.get("arena_override"):
        notes.append(f"the previous export used --arena {previous['arena_override']:,}; this one uses the measured "
                     f"{arena:,} bytes (pass --arena {previous['arena_override']} to keep the override)")
    check_prediction_fits(list(cfg.labels), f"{model_dir / 'config.json'}")
    check_config(cfg, str(model_dir / "config.json"))
    arena = (arena + ALIGN - 1) // ALIGN * ALIGN
    if arena > package.MAX_ARENA_BYTES:
        raise GestureError(f"{model_dir}: the model needs a {arena:,}-byte tensor arena; the push-ready sketch has "
                           f"{package.MAX_ARENA_BYTES:,} (GK_MAX_ARENA_BYTES): train a smaller model (a shorter --window, "
                           "fewer conv filters)")
    ops = model_ops(tflite)
    check_supported(ops)
    resolver_ops = firmware_ops(ops)
    # the built-in model as a package: the board parses it at boot like a pushed one (refused here,
    # naming the field, when a value is outside the firmware's maxima)
    package_bytes = package.encode(cfg, tflite, board=b.key, model_sha256=str(report.get("model_sha256") or
                                   hashlib.sha256(tflite).hexdigest()), arena_bytes=arena,
                                   where=str(model_dir / "config.json"))
    budget = estimate_budget(len(package_bytes), resolver_ops, b, len(tflite))
    problems = budget.problems()
    if problems:
        raise GestureError(f"{model_dir} does not fit {b.title}: " + "; ".join(problems))
    _check_target(sketch_dir, force)
    tree = tflm_tree.find_tree(tflm)

    source = model_dir.name  # not the absolute path: the sketch must not depend on where it was built
    name = sketch_dir.name
    files: dict[str, str | bytes] = {}
    files["model_data.h"], files["model_data.cpp"] = model_data_files(package_bytes, f"{source}/model.tflite")
    files["gk_package.h"] = package.c_header()
    files["gk_config.h"] = config_header(imu_rate_hz=b.imu_rate_hz, board=b.key, sensor=b.sensor,
                                         source=f"{source}/config.json")
    info_args = {"board": b.key, "sensor": b.sensor, "imu_rate_hz": b.imu_rate_hz, "labels": list(cfg.labels)}
    check_info_fits(info_text(**info_args, model_sha256="0" * 64), f"{model_dir / 'config.json'}")
    files["gesture_protocol.h"] = p.c_header()
    for common in ("gk_frame.h", "gk_link.h", b.imu_header):
        files[common] = (common_dir() / common).read_text()
    for static in STATIC_FILES:
        files[static] = (classifier_template_dir() / static).read_text()
    files["gk_model.cpp"] = model_cpp(resolver_ops, source, bundled=tree is not None)
    info = None
    if tree is not None:
        entry = [inc for inc in re.findall(r'#include "([^"]+)"', model_cpp(resolver_ops, source))
                 if inc.startswith("tensorflow/")]
        files.update(tflm_tree.bundle_runtime(tree, resolver_ops, entry_includes=entry, cmsis_nn=True))
        info = tflm_tree.tree_info(tree)
    files[f"{name}.ino"] = sketch_ino(cfg, b, source)
    files["README.md"] = readme(cfg, b, budget, resolver_ops, len(tflite), arena, name, source,
                                sketch_path=str(sketch_dir), tflm=info)
    if tree is None:
        notes.append(f"sketch written without the TFLM runtime: {tflm_tree.missing_tree_hint()}")
    result = ExportResult(sketch_dir, b.key, sorted(files) + [MANIFEST], len(tflite), package.MAX_ARENA_BYTES, ops,
                          budget.flash_total, budget.flash_limit, budget.ram_total, b.ram_bytes,
                          {"flash": budget.flash, "ram": budget.ram, "sources": budget.sources}, tflm=info)
    manifest = {"generator": GENERATED, "model_dir": str(model_dir), "board": b.key, "fqbn": b.fqbn,
                "files": result.files, "model_bytes": len(tflite), "model_sha256": hashlib.sha256(tflite).hexdigest(),
                "package_bytes": len(package_bytes), "package_sha256": hashlib.sha256(package_bytes).hexdigest(),
                "arena_bytes": package.MAX_ARENA_BYTES, "arena_need": arena, "arena_override": arena_bytes, "ops": ops,
                "resolver_ops": resolver_ops, "tflm": info, "budget": result.budget,
                "flash_estimate": budget.flash_total, "ram_estimate": budget.ram_total}

    old_files: list[str] = []
    if (sketch_dir / MANIFEST).is_file():
        try:
            old_files = [f for f in json.loads((sketch_dir / MANIFEST).read_text()).get("files", []) if isinstance(f, str)]
        except (json.JSONDecodeError, AttributeError, OSError):
            old_files = []
    encoded = {f: c if isinstance(c, bytes) else c.encode("utf-8") for f, c in files.items()}
    manifest["sha256"] = {f: hashlib.sha256(d).hexdigest() for f, d in encoded.items()}  # to see later hand edits
    edited, notes_edited = _keep_edits(sketch_dir, previous, encoded)
    result.notes = notes + notes_edited
    encoded.update(edited)
    encoded[MANIFEST] = (json.dumps(manifest, indent=1) + "\n").encode("utf-8")
    # the folder is replaced as a whole (hidden sibling, then one rename): a full disk or a kill
    # leaves the previous sketch, never part of a new one without export.json. Files the previous
    # export generated and this one does not are dropped; anything else in the folder (the user's
    # own files, earlier .edited backups) is carried over.
    carry = [rel for rel in _folder_files(sketch_dir) if rel not in encoded and rel not in old_files]
    try:
        write_folder(sketch_dir, encoded, carry=carry)
    except OSError as e:
        raise GestureError(f"{sketch_dir}: cannot write the sketch ({e.strerror or e}"
                           f"{': ' + str(e.filename) if e.filename else ''}); nothing was changed there") from None
    return result

