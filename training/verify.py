"""``gesture verify``: the exported sketch's model and preprocessing, built for Cortex-M4, run under QEMU.

Why: the report's int8 accuracy only describes the board if the board computes the same bytes.
This builds the sketch's own files, unmodified (gk_model.cpp, model_data.cpp, gk_preprocess.h
configured from the built-in model package, and the TFLM runtime + CMSIS-NN kernels bundled under src/tflm), with the
board's compiler flags (``-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -DCMSIS_NN
-DTF_LITE_STATIC_MEMORY``, newlib semihosting), links them with a small driver
(firmware/verify/) and runs the result on ``qemu-system-arm -M mps2-an386``. It feeds every take
of the dataset (crop + quantize + invoke, as training evaluates) and one continuous replayed IMU
stream (resampler, live window, quantize, invoke, smoother, post-processor events, as the sketch's
loop does), and
compares every byte with the Python evaluation (tflite_micro runtime + training.board_sim).

It also measures what the board pays: instructions per inference (QEMU ``-icount shift=0``: one
instruction per ns of virtual time; the FPGAIO counter at 0x40028018 ticks at 25 MHz, so a tick
is 40 instructions; runs of N and 2N inferences are differenced to drop the loop's set-up),
``arena_used_bytes()`` on the M4, and the flash/RAM of model + runtime from the linker map.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from capture.boards import BOARDS

from capture.errors import GestureError
from capture.fileio import atomic_write_text
from training import tflm_tree as tt

INSTRUCTIONS_PER_TICK = 40  # 1 GHz virtual instruction clock (-icount shift=0) / 25 MHz FPGAIO counter
BOARD_MHZ = 64  # nRF52840 core clock
M4_DEFINES = ("CMSIS_NN", "TF_LITE_STATIC_MEMORY")
M4_CFLAGS = (*tt.M4_FLAGS, "-Os", "-ffunction-sections", "-fdata-sections", "-Wno-psabi")
CXXFLAGS = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
QEMU = "qemu-system-arm"
SKETCH_MODEL_FILES = ("gk_model.cpp", "model_data.cpp")


@dataclass
class VerifyResult:
    model_dir: str
    sketch_dir: str
    tflm_commit: str
    takes: int
    live_events: int
    live_windows: int
    compared_bytes: int
    mismatches: int
    mismatch_examples: list[str]
    instructions_per_inference: int
    ms_at_64mhz: float
    arena_bytes_m4: int
    arena_reserved_bytes: int  # the sketch's arena, GK_MAX_ARENA_BYTES (inside ram_bytes_model_runtime)
    flash_bytes_model_runtime: int
    ram_bytes_model_runtime: int
    flash_bytes_firmware: int
    bench_inferences: int
    toolchain: str
    flags: list[str] = field(default_factory=list)
    live_detections: int = 0  # post-processor events in the live stream (compared with board_sim's)

    def summary(self) -> str:
        verdict = "OK" if self.mismatches == 0 else "MISMATCH"
        return (f"{verdict}: {self.mismatches} mismatches in {self.compared_bytes:,} bytes compared ({self.takes} takes, "
                f"{self.live_windows} live windows, {self.live_events} live predictions, {self.live_detections} "
                f"post-processor events) on Cortex-M4 (QEMU mps2-an386); "
                f"{self.instructions_per_inference:,} instructions per inference (~{self.ms_at_64mhz:.1f} ms at "
                f"{BOARD_MHZ} MHz), arena_used_bytes() {self.arena_bytes_m4:,}, model + runtime flash "
                f"{self.flash_bytes_model_runtime:,} B, RAM {self.ram_bytes_model_runtime:,} B (linker map)")


# ----------------------------------------------------------------------------- tools and build

def harness_dir() -> Path:
    """firmware/verify: the M4 startup, linker script and semihosting driver."""
    from capture.resources import firmware_dir

    return firmware_dir() / "verify"


def check_tools() -> tt.Toolchain:
    """The arm-none-eabi toolchain and QEMU, or a GestureError naming the Debian packages."""
    missing = [n for n in ("arm-none-eabi-gcc", "arm-none-eabi-g++", QEMU) if shutil.which(n) is None]
    if missing:
        pkgs = sorted({p for n in missing for p in tt.DEBIAN_PACKAGES[n].split()})
        raise GestureError(f"gesture verify needs {', '.join(missing)}; install the Debian packages: "
                           f"sudo apt-get install {' '.join(pkgs)}")
    return tt.toolchain("cortex-m4")


def _sketch_manifest(sketch_dir: Path) -> dict:
    from training.export import MANIFEST

    path = sketch_dir / MANIFEST
    if not path.is_file():
        raise GestureError(f"{sketch_dir}: no {MANIFEST}; expected a sketch folder written by `gesture export`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise GestureError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e


def build_firmware(sketch_dir: Path, work: Path, *, cache_dir: Path | None = None) -> tuple[Path, Path, tt.Toolchain]:
    """Compile the sketch's bundled TFLM, its model files and the driver for the M4 and link them.
    Returns (elf, map file, toolchain). The bundle is compiled with no include path at all, as the
    Arduino builder compiles a sketch's src/: that is the proof the export is self-contained."""
    tc = check_tools()
    harness = harness_dir()
    manifest = _sketch_manifest(sketch_dir)
    bundled = tt.bundle_sources(manifest.get("files", []))
    if not bundled:
        raise GestureError(f"{sketch_dir} has no bundled TFLM runtime (src/tflm); re-export it with a TFLM tree: "
                           + tt.missing_tree_hint())
    defs = [f"-D{d}" for d in M4_DEFINES]
    base = [*M4_CFLAGS, *defs]
    headers = sorted(f for f in manifest["files"] if f.startswith(tt.BUNDLE_DIR + "/") and f.endswith(".h"))
    salt = hashlib.sha256(b"".join((sketch_dir / h).read_bytes() for h in headers)).hexdigest()
    obj_cache = (cache_dir or tt.build_cache_root()) / "verify-m4"
    objs, _ = tt.compile_objects(sketch_dir, bundled, tc, [*base, "-std=c11"], [*base, *CXXFLAGS], obj_cache,
                                 salt=salt)
    own: list[Path] = []
    # __FILE__ (the asserts of flatbuffers' inline code in gk_model.cpp) without the sketch's path:
    # the same sketch measures the same flash wherever it was exported (verify vs the cost probe)
    prefix_map = f"-ffile-prefix-map={sketch_dir.resolve()}=sketch"
    for src, flags in ([(sketch_dir.resolve() / f, [*base, *CXXFLAGS, prefix_map]) for f in SKETCH_MODEL_FILES]
                       + [(harness / "verify_driver.cpp", [*base, *CXXFLAGS, "-DGK_VERIFY_M4", f"-I{sketch_dir}"]),
                          (harness / "startup_m4.c", [*base, "-std=c11"])]):
        obj = work / (src.name + ".o")
        cc = tc.cc if src.suffix == ".c" else tc.cxx
        _run([cc, *flags, "-c", str(src), "-o", str(obj)], f"compiling {src.name}")
        own.append(obj)
    elf, mapfile = work / "gk_verify.elf", work / "gk_verify.map"
    _run([tc.cxx, *tt.M4_FLAGS, "-nostartfiles", "--specs=rdimon.specs", "-T", str(harness / "mps2_an386.ld"),
          "-Wl,--gc-sections", f"-Wl,-Map={mapfile}", *map(str, own), *map(str, objs), "-o", str(elf)], "linking")
    return elf, mapfile, tc


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise GestureError(f"{what} for Cortex-M4 failed:\n{r.stderr.strip()[-3000:]}")


# an input section in a GNU ld map: " .text.name  0xADDR  0xSIZE  object", the name alone on its
# line when it is long
_MAP_ENTRY = re.compile(r"^ (\.[\w.$]+|COMMON)\n?[ \t]+(0x[0-9a-f]+)[ \t]+(0x[0-9a-f]+)[ \t]+(\S+)[ \t]*$", re.M)


def map_sizes(map_text: str, keep) -> tuple[int, int]:
    """(flash, RAM) bytes of the input sections in a GNU ld map whose object ``keep(name)`` accepts.
    Flash counts .text/.rodata/.data (its initial values live in flash); RAM counts .data and .bss."""
    flash = ram = 0
    start = map_text.find("Linker script and memory map")
    body = map_text[start:] if start >= 0 else map_text
    entries = [(m.group(1), int(m.group(2), 16), int(m.group(3), 16), m.group(4)) for m in _MAP_ENTRY.finditer(body)]
    for sect, _addr, size, obj in entries:
        if not keep(obj) or size == 0:
            continue
        if sect.startswith((".text", ".rodata")):  # (.ARM.exidx: merged by the linker, a few bytes)
            flash += size
        elif sect.startswith(".data"):
            flash += size
            ram += size
        elif sect.startswith((".bss", "COMMON")):
            ram += size
    return flash, ram


# ----------------------------------------------------------------------------- inputs and the Python side

def _stream(data_dir: Path | None, board: str, labels: list[str], limit: int | None, seed: int) -> np.ndarray:
    """The live stream the M4 classifies: the dataset's takes, or (None) the simulated hand, at the IMU's rate."""
    from capture.virtual.sources import BlockSource, HandSource, ReplaySource

    src: BlockSource
    if data_dir is None:
        src = HandSource(board=board, labels=labels, rest_s=6.0, limit=limit or 20, loop=False, seed=seed)
    else:
        src = ReplaySource(data_dir, rate_hz=BOARDS[board].imu_rate_hz, channels=6, rest_s=6.0, shuffle=True, seed=seed,
                           limit=limit)
    return src.counts()


def _instructions_per_inference(ticks_n: int, ticks_2n: int, bench: int) -> int:
    """The driver times N then 2N inferences; their difference drops the loop's set-up."""
    return round((ticks_2n - ticks_n) * INSTRUCTIONS_PER_TICK / bench)


def _model_runtime_sizes(map_text: str) -> tuple[int, int]:
    """(flash, RAM) of the sketch's model files and its bundled TFLM objects in the linker map."""
    model_objs = {f"{Path(f).name}.o" for f in SKETCH_MODEL_FILES}
    return map_sizes(map_text, lambda o: "verify-m4/" in o or Path(o).name in model_objs)


def _run_qemu(elf: Path, work: Path, payload: bytes, timeout: float) -> bytes:
    """Run the driver on mps2-an386 with ``payload`` as gk_verify_in.bin; its gk_verify_out.bin.
    A GestureError when it fails, times out or could not set the model up."""
    (work / "gk_verify_in.bin").write_bytes(payload)
    cmd = [QEMU, "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)]
    try:
        r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise GestureError(f"the firmware did not finish under QEMU within {timeout:.0f} s") from e
    out_path = work / "gk_verify_out.bin"
    out = out_path.read_bytes() if out_path.is_file() else b""
    if r.returncode != 0 or len(out) < 12:
        raise GestureError(f"the firmware failed under QEMU (exit {r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()[-800:] or 'no output'}")
    magic, ok, arena = struct.unpack_from("<III", out, 0)
    if magic != 0x4F564B47 or not ok:
        raise GestureError(f"the firmware could not set up the model on the M4 (arena_used_bytes {arena}): {r.stderr}")
    return out


def measure_cost(tflite: bytes, cfg, *, tflm: str | Path | None = None, bench: int = 4,
                 cache_dir: Path | None = None, timeout: float = 300.0) -> dict[str, int]:
    """Instructions per inference, ``arena_used_bytes()`` and model + runtime flash of these model
    bytes on the Cortex-M4, without any data: the model goes through `gesture export` and the same
    M4 build as :func:`run`, and only the timing loop runs. Why: `gesture tune` ranks candidates
    by this count, and it depends on the graph, not on the trained weights, so an untrained
    candidate is measured in seconds once the runtime objects are cached. Recorded in
    training.m4_cost under the model's sha256."""
    from training.evaluate import board_arena, smallest_arena
    from training.export import export_sketch
    from training.m4_cost import record
    from training.model_dir import write_model_dir

    tree = tt.find_tree(tflm)
    if tree is None:
        raise GestureError(tt.missing_tree_hint())
    check_tools()
    with tempfile.TemporaryDirectory(prefix="gesture-cost-") as tmp:
        work = Path(tmp)
        model_dir = work / "model"
        arena = int(smallest_arena(tflite))
        # no Keras file: the export reads the int8 model, its config and the arena only
        write_model_dir(model_dir, tflite=tflite, keras=b"", cfg=cfg, extra={},
                        report={"model": "cost probe", "arena_bytes": arena, "arena_board_bytes": board_arena(arena, 2048)})
        sketch = work / "sketch"
        export_sketch(model_dir, sketch, tflm=tree)
        elf, mapfile, _tc = build_firmware(sketch, work, cache_dir=cache_dir)
        payload = b"".join([b"GKV1", struct.pack("<I", 0), struct.pack("<I", 0), struct.pack("<I", bench)])
        out = _run_qemu(elf, work, payload, timeout)
        map_text = mapfile.read_text()
    _magic, _ok, arena_m4 = struct.unpack_from("<III", out, 0)
    (n_events,) = struct.unpack_from("<I", out, 12)
    t_n, t_2n = struct.unpack_from("<II", out, 16)
    flash_mr, _ = _model_runtime_sizes(map_text)
    figures = {"instructions_per_inference": _instructions_per_inference(t_n, t_2n, bench),
               "arena_bytes_m4": int(arena_m4), "flash_bytes_model_runtime": flash_mr, "bench_inferences": bench}
    if n_events != 0 or figures["instructions_per_inference"] <= 0:
        raise GestureError(f"the cost probe gave an implausible answer ({n_events} events, {t_n}/{t_2n} ticks)")
    record(tflite, figures)
    return figures


def run(model_dir: str | Path, sketch_dir: str | Path | None = None, *, json_path: str | Path | None = None,
        data_dir: str | Path | None = None, take_limit: int | None = None, stream_takes: int | None = 60,
        bench: int = 8, tflm: str | Path | None = None, cache_dir: Path | None = None,
        update_report: bool = True, seed: int = 7, timeout: float = 900.0) -> VerifyResult:
    """Verify MODEL_DIR's sketch on the M4 (export it into a temporary folder when ``sketch_dir``
    is None) and return the comparison and the measured cost; write them into the model's
    report.json/report.md (``update_report``) and ``json_path``."""
    from training.board_sim import BoardPipeline
    from training.dataset import load_dataset
    from training.evaluate import TflmModel
    from training.export import export_sketch
    from training.model_dir import default_data_dir, load_model_dir
    from training.preprocess import crop_take, quantize_input, take_counts

    model_dir = Path(model_dir)
    cfg, tflite, report = load_model_dir(model_dir)
    check_tools()
    with tempfile.TemporaryDirectory(prefix="gesture-verify-") as tmp:
        work = Path(tmp)
        if sketch_dir is None:
            tree = tt.find_tree(tflm)
            if tree is None:
                raise GestureError(tt.missing_tree_hint())
            sketch = work / "gesture_classifier"
            export_sketch(model_dir, sketch, tflm=tree)
        else:
            sketch = Path(sketch_dir)
        manifest = _sketch_manifest(sketch)
        if manifest.get("model_sha256") != hashlib.sha256(tflite).hexdigest():
            raise GestureError(f"{sketch} was exported from another model than {model_dir}/model.tflite "
                               "(export.json model_sha256 differs); re-run `gesture export`")
        board = BOARDS.get(manifest.get("board", "nano33ble"), BOARDS["nano33ble"])
        elf, mapfile, tc = build_firmware(sketch, work, cache_dir=cache_dir)

        data = Path(data_dir) if data_dir else default_data_dir(report)
        if data is None:  # trained on the simulated hand: it performs the model's gestures again
            from capture.virtual.hand import LABELS, Hand

            hand_labels = [label for label in cfg.labels if label in LABELS]
            takes = Hand(board.key, seed).takes(hand_labels, range(2), 5)
        else:
            hand_labels = list(cfg.labels)
            takes = load_dataset(data).takes
        if take_limit:
            takes = takes[:take_limit]
        counts = [take_counts(t, cfg) for t in takes]
        stream = _stream(data, board.key, hand_labels, stream_takes, seed)
        C = len(cfg.channels)
        parts = [b"GKV1", struct.pack("<I", len(counts))]
        for c in counts:
            parts += [struct.pack("<i", len(c)), np.ascontiguousarray(c, dtype="<i2").tobytes()]
        parts += [struct.pack("<I", len(stream)), np.ascontiguousarray(stream, dtype="<i2").tobytes(),
                  struct.pack("<I", bench)]
        out = _run_qemu(elf, work, b"".join(parts), timeout)
        map_text = mapfile.read_text()

    # ---- parse the firmware's answers
    _magic, _ok, arena = struct.unpack_from("<III", out, 0)
    pos = 12
    n_in, n_out = cfg.window * C, len(cfg.labels)
    model = TflmModel(tflite)
    mismatches, examples, compared = 0, [], 0

    def diff(a: np.ndarray, b: np.ndarray, where: str) -> None:
        nonlocal mismatches, compared
        bad = int(np.count_nonzero(np.asarray(a).reshape(-1) != np.asarray(b).reshape(-1)))
        compared += int(np.asarray(b).size)
        mismatches += bad
        if bad and len(examples) < 10:
            examples.append(f"{where}: {bad} byte(s) differ")

    for take, c in zip(takes, counts):
        q_m4 = np.frombuffer(out, np.int8, n_in, pos)
        y_m4 = np.frombuffer(out, np.int8, n_out, pos + n_in)
        pos += n_in + n_out
        q = quantize_input(crop_take(c, cfg), cfg)
        diff(q_m4, q, f"{take.path} input")
        diff(y_m4, model.predict(q), f"{take.path} output")
    (n_events,) = struct.unpack_from("<I", out, pos)
    pos += 4
    rec = 1 + 4 + n_out + 2 + n_out + 3
    py_events = BoardPipeline(cfg, tflite, board.imu_rate_hz).push(stream)
    if len(py_events) != n_events:
        mismatches += abs(len(py_events) - n_events)
        examples.append(f"live stream: {n_events} events on the M4, {len(py_events)} in Python")
    windows = detections = 0
    for i, ev in enumerate(py_events[:n_events]):
        kind = out[pos]
        (idx,) = struct.unpack_from("<I", out, pos + 1)
        y = np.frombuffer(out, np.int8, n_out, pos + 5)
        cls, conf = out[pos + 5 + n_out], out[pos + 6 + n_out]
        smoothed = np.frombuffer(out, np.uint8, n_out, pos + 7 + n_out)
        detected = np.frombuffer(out, np.uint8, 3, pos + 7 + 2 * n_out)
        pos += rec
        ready = ev.output_int8 is not None
        windows += ready
        want = [ord("R") if ready else ord("I"), ev.imu_index & 0xFFFFFFFF, ev.prediction.class_index, ev.prediction.confidence]
        diff(np.array([kind, idx, cls, conf]), np.array(want), f"live event {i} (IMU sample {ev.imu_index})")
        if ready:
            diff(y, ev.output_int8, f"live window {i} output")
        diff(smoothed, np.array(ev.prediction.scores, np.uint8), f"live event {i} smoothed scores")
        fired = [0, 0, 0] if ev.event is None else [1, *ev.event]
        diff(detected, np.array(fired, np.uint8), f"live event {i} post-processor event")
        detections += ev.event is not None
    pos = 16 + len(counts) * (n_in + n_out) + n_events * rec
    t_n, t_2n = struct.unpack_from("<II", out, pos)
    instr = _instructions_per_inference(t_n, t_2n, bench)
    flash_mr, ram_mr = _model_runtime_sizes(map_text)
    flash_all, _ = map_sizes(map_text, lambda o: True)
    result = VerifyResult(
        str(model_dir), str(sketch_dir) if sketch_dir else "(temporary export)",
        str(manifest.get("tflm", {}).get("tflm_commit", "unknown")), len(takes), n_events, windows, compared,
        mismatches, examples, instr, round(instr / (BOARD_MHZ * 1e3), 2), int(arena),
        int(manifest.get("arena_bytes", 0)), flash_mr, ram_mr, flash_all,
        bench, subprocess.run([tc.cxx, "--version"], capture_output=True, text=True, check=False).stdout.splitlines()[0],
        [*M4_CFLAGS, *(f"-D{d}" for d in M4_DEFINES)], detections)
    if mismatches == 0:  # a figure for `gesture tune` (training.m4_cost), only from a faithful build
        from training.m4_cost import record

        record(tflite, {k: v for k, v in asdict(result).items() if k not in ("model_dir", "sketch_dir")})
    if json_path:
        atomic_write_text(Path(json_path), json.dumps(asdict(result), indent=1) + "\n")
    if update_report:
        write_into_report(model_dir, result)
    return result


# ----------------------------------------------------------------------------- report files

REPORT_KEY = "m4"
MD_BEGIN, MD_END = "<!-- gesture verify: begin -->", "<!-- gesture verify: end -->"


def markdown(r: VerifyResult) -> str:
    rows = [("mismatches (bytes)", f"{r.mismatches:,} of {r.compared_bytes:,} compared"),
            ("takes / live windows / live predictions", f"{r.takes} / {r.live_windows} / {r.live_events}"),
            ("instructions per inference", f"{r.instructions_per_inference:,} (~{r.ms_at_64mhz:.1f} ms at {BOARD_MHZ} MHz)"),
            ("arena_used_bytes() on the M4", f"{r.arena_bytes_m4:,}"),
            ("model + runtime flash (linker map)", f"{r.flash_bytes_model_runtime:,} B"),
            ("model + runtime RAM (linker map, incl. arena)", f"{r.ram_bytes_model_runtime:,} B"),
            ("TFLM", r.tflm_commit), ("compiler", r.toolchain), ("flags", " ".join(r.flags))]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return (f"{MD_BEGIN}\n## On the Cortex-M4 (`gesture verify`, QEMU mps2-an386)\n\n"
            "The exported sketch's model and preprocessing, built for the M4 with its bundled TFLM and run under "
            "QEMU, against the Python evaluation above.\n\n| measure | value |\n|---|---|\n" + table + f"\n{MD_END}\n")


def write_into_report(model_dir: Path, r: VerifyResult) -> None:
    """Put the measured figures into report.json ("m4") and report.md (a section replaced on re-run)."""
    rj = model_dir / "report.json"
    report = json.loads(rj.read_text()) if rj.is_file() else {}
    report[REPORT_KEY] = {k: v for k, v in asdict(r).items() if k not in ("model_dir", "sketch_dir")}
    atomic_write_text(rj, json.dumps(report, indent=1) + "\n")
    md = model_dir / "report.md"
    text = md.read_text() if md.is_file() else ""
    text = re.sub(re.escape(MD_BEGIN) + r".*?" + re.escape(MD_END) + r"\n?", "", text, flags=re.S).rstrip("\n")
    atomic_write_text(md, (text + "\n\n" if text else "") + markdown(r))
