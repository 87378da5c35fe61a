"""`gesture export`: the generated sketch folder, its portable C++ under g++, the budget check."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import need_tool

from capture import protocol as p
from capture.errors import DataError, GestureError
from gesture_cli import main
from capture.boards import BOARDS
from training.model_dir import sha256
from training import package as pkg
from training.export import GENERATED, export_sketch, parse_model_data
from training.preprocess import PreprocessConfig, resample_step
from training.tflm_ops import FIRMWARE_OPS, RESOLVER_METHODS, firmware_ops, model_ops

PORTABLE_HEADERS = ("gesture_protocol.h", "gk_config.h", "gk_package.h", "gk_frame.h", "gk_package_parse.h", "gk_sha256.h",
                    "gk_crc32.h", "gk_preprocess.h", "gk_detect.h", "gk_format.h", "gk_model.h", "model_data.h")


@pytest.fixture(scope="module")
def sketch(small_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "gesture_classifier"
    export_sketch(small_model.model_dir, out, board="nano33ble")
    return out


def _copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in ("model.tflite", "config.json", "report.json"):
        shutil.copy(src / f, dst / f)
    return dst


def test_sketch_has_every_file_and_marks_generated_ones(sketch, small_model):
    names = sorted(f.name for f in sketch.iterdir())
    assert names == sorted(["gesture_classifier.ino", "model_data.h", "model_data.cpp", "gk_config.h", "gk_model.h",
                            "gk_model.cpp", "gk_preprocess.h", "gk_detect.h", "gk_format.h", "gk_frame.h", "gk_link.h", "gk_imu_lsm9ds1.h",
                            "gesture_protocol.h", "gk_package.h", "gk_package_parse.h", "gk_sha256.h", "gk_crc32.h",
                            "gk_flash.h", "gk_slots.h", "gk_push.h", "gk_flash_iap.h", "gk_push_ble.h",
                            "README.md", "export.json"])
    for f in ("gesture_classifier.ino", "model_data.h", "model_data.cpp", "gk_config.h", "gk_model.cpp", "README.md"):
        assert GENERATED in (sketch / f).read_text().splitlines()[0], f
    assert (sketch / "gesture_protocol.h").read_text() == p.c_header()
    assert (sketch / "gk_package.h").read_text() == pkg.c_header()
    manifest = json.loads((sketch / "export.json").read_text())
    assert manifest["board"] == "nano33ble" and manifest["fqbn"] == "arduino:mbed_nano:nano33ble"
    assert manifest["model_bytes"] == (small_model.model_dir / "model.tflite").stat().st_size


def test_model_data_is_the_model_package_aligned(sketch, small_model):
    """model_data.cpp holds the built-in model as a package for the export's board; the header is
    a multiple of 16 bytes, so the 16-byte aligned array puts the .tflite at an aligned address."""
    text = (sketch / "model_data.cpp").read_text()
    assert "alignas(16) const unsigned char g_package_data[]" in text
    data = parse_model_data(text)
    assert data == pkg.build_package(small_model.model_dir, "nano33ble")
    got = pkg.parse_package(data, board="nano33ble")
    assert got.payload == (small_model.model_dir / "model.tflite").read_bytes()
    assert got.header_length % 16 == 0 and got.labels == tuple(small_model.config.labels)
    header = (sketch / "model_data.h").read_text()
    assert "extern const unsigned char g_package_data[];" in header and "extern const unsigned int g_package_data_len;" in header


def test_model_cpp_registers_every_family_op_with_todays_api(sketch, small_model):
    """The resolver holds every op the model families emit (a pushed model may differ from the
    built-in one), and the built-in model's; the arena is the package maxima's."""
    ops = model_ops((small_model.model_dir / "model.tflite").read_bytes())
    want = firmware_ops(ops)
    assert set(ops) <= set(want) and list(FIRMWARE_OPS) == want[:len(FIRMWARE_OPS)]
    text = (sketch / "gk_model.cpp").read_text()
    assert re.search(rf"#define GK_N_OPS {len(want)}\b", text)
    assert "typedef tflite::MicroMutableOpResolver<GK_N_OPS> Resolver;" in text
    assert re.findall(r"r\.(Add\w+)\(\)", text) == [RESOLVER_METHODS[op] for op in want]
    assert "new (g_interpreter_storage) tflite::MicroInterpreter(model, resolver(), g_arena, GK_MAX_ARENA_BYTES)" in text
    assert "arena_used_bytes()" in text and "AllocateTensors() failed" in text and "VerifyModelBuffer" in text
    code = re.sub(r"//[^\n]*", "", text)  # the comments may name the old API they avoid
    for old in ("ErrorReporter", "AllOpsResolver", "all_ops_resolver"):
        assert old not in code
    for inc in ("tensorflow/lite/micro/micro_interpreter.h", "tensorflow/lite/micro/micro_mutable_op_resolver.h",
                "tensorflow/lite/schema/schema_generated.h", "tensorflow/lite/micro/micro_log.h"):
        assert f'#include "{inc}"' in text
    assert "#include <Arduino" not in code and "Serial" not in code  # plain C++: builds against any TFLM tree


def test_config_travels_in_the_package_and_gk_config_keeps_only_the_board(sketch, small_model):
    """Every number of config.json reaches the board through the built-in package; gk_config.h
    holds only what the firmware is (board, IMU rate, INFO's fixed part)."""
    cfg = PreprocessConfig.load(small_model.model_dir)
    got = pkg.parse_package(parse_model_data((sketch / "model_data.cpp").read_text()))
    assert got.labels == tuple(cfg.labels) and got.window == cfg.window and got.stride == cfg.stride
    assert got.motion_threshold == cfg.motion_threshold and got.model_rate_hz == cfg.model_rate_hz
    assert got.imu_rate_hz == 119 and got.resample_step == resample_step(119, cfg.model_rate_hz)
    assert got.input_zero_point == cfg.input_zero_point and got.confidence_threshold == cfg.confidence_threshold
    assert got.arena_bytes == small_model.report["arena_board_bytes"]
    assert got.unknown_label_index == cfg.labels.index("negative")
    assert list(got.mean) == [int(m) for m in cfg.mean] and list(got.mult) == [int(m) for m in cfg.mult]
    assert got.channels == list(cfg.channels)
    text = (sketch / "gk_config.h").read_text()

    def define(name: str) -> str:
        return re.search(rf"#define {name} (.+?)(\s+//.*)?$", text, re.M).group(1)

    assert define("GK_IMU_RATE_HZ") == "119" and define("GK_BOARD_NAME") == '"nano33ble"'
    for gone in ("GK_N_LABELS", "GK_WINDOW", "GK_STRIDE", "GK_ARENA_SIZE", "kMean", "kLabels", "GK_INFO_STRING"):
        assert gone not in text, gone
    prefix = define("GK_INFO_PREFIX").strip('"')
    info = p.decode_info((prefix + ";labels=a;model=" + "0" * 64 + ";slot=builtin").encode())
    assert info["mode"] == "classifier" and info["rate"] == "119" and info["board"] == "nano33ble"


def test_portable_parts_compile_with_gxx_werror(sketch, tmp_path):
    gxx = need_tool("g++")
    tu = tmp_path / "all_headers.cpp"
    tu.write_text("".join(f'#include "{h}"\n' for h in PORTABLE_HEADERS)
                  + "int main() { static gk::Config c; gk::PackageError e; const uint8_t* m = 0; size_t n = 0;\n"
                    "  if (!gk::parse_package(g_package_data, g_package_data_len, GK_BOARD_NAME, true, &c, &m, &n, &e)) return 2;\n"
                    "  static gk::Resampler r(c); static gk::LiveWindow w(c); static gk::Smoother s(c); gk::Detector d(c);\n"
                    "  (void)r; (void)w; (void)s; (void)d;\n"
                    "  return n > 0 && reinterpret_cast<uintptr_t>(m) % 16 == 0 ? 0 : 1; }\n")
    exe = tmp_path / "a.out"
    proc = subprocess.run([gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{sketch}", str(tu),
                           str(sketch / "model_data.cpp"), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([str(exe)]).returncode == 0


def test_ino_has_the_live_loop_and_ble_service(sketch):
    ino = (sketch / "gesture_classifier.ino").read_text()
    assert "TensorFlowLite.h" not in ino  # the runtime is bundled (src/tflm), no TFLM Arduino library
    for needle in ("#include <ArduinoBLE.h>", "#include <Arduino_LSM9DS1.h>",
                   "GK_SERVICE_UUID", "GK_PREDICTION_CHAR_UUID", "GK_IMU_CHAR_UUID", "GK_INFO_CHAR_UUID",
                   "GK_CONTROL_CHAR_UUID", "resampler.push", "live.push", "gk::quantize", "gk::model_invoke",
                   "smoother.update", "smoother.idle", "gk::format_prediction", "gk::encode_prediction",
                   "gk::model_switch", "gk::parse_package", "g_package_data", "gk::format_info", "arena_used_bytes", "#include \"gk_imu_lsm9ds1.h\"", "gk_imu_begin(true)",
                   "gk_imu_read(counts)", "gk_notify("):
        assert needle in ino, needle
    readme = (sketch / "README.md").read_text()
    for needle in ("arduino:mbed_nano:nano33ble", "ArduinoBLE", "Arduino_LSM9DS1", "## Size", f"{BOARDS['nano33ble'].base_flash_bytes:,}",
                   "The TFLM runtime is missing from this sketch", "--tflm PATH", "GESTURE_TFLM"):
        assert needle in readme, needle
    assert "tflite-micro-arduino-examples" not in readme and "git clone" not in readme


def test_rev2_board_uses_bmi270_at_100_hz(small_model, tmp_path):
    r = export_sketch(small_model.model_dir, tmp_path / "rev2", board="nano33ble_rev2")
    text = (tmp_path / "rev2" / "gk_config.h").read_text()
    assert "#define GK_IMU_RATE_HZ 100" in text
    rate = json.loads((small_model.model_dir / "config.json").read_text())["model_rate_hz"]
    got = pkg.parse_package(parse_model_data((tmp_path / "rev2" / "model_data.cpp").read_text()), board="nano33ble_rev2")
    assert got.resample_step == resample_step(100, rate) and got.imu_rate_hz == 100
    assert "#include <Arduino_BMI270_BMM150.h>" in (tmp_path / "rev2" / "rev2.ino").read_text()
    assert r.board == "nano33ble_rev2" and "rev2.ino" in r.files


def test_result_summary_names_the_figures(small_model, tmp_path):
    r = export_sketch(small_model.model_dir, tmp_path / "sk")
    s = str(r)
    assert f"model {r.model_bytes:,} bytes" in s and f"arena {r.arena_bytes:,} bytes" in s
    # a push-ready sketch must end below the model slots: its flash limit is not the core's 983,040
    assert r.flash_max == pkg.PUSH_READY_FLASH_BYTES < BOARDS["nano33ble"].flash_bytes
    assert f"{r.flash_estimate:,} / {pkg.PUSH_READY_FLASH_BYTES:,}" in s and "RAM" in s
    assert r.flash_estimate == sum(r.budget["flash"].values()) and r.budget["flash"]["package"] > r.model_bytes
    assert r.ram_estimate == sum(r.budget["ram"].values()) and r.budget["ram"]["arena"] == pkg.MAX_ARENA_BYTES
    assert r.budget["flash"]["core_ble_imu"] == BOARDS["nano33ble"].base_flash_bytes
    assert "real link" in r.budget["sources"]["core_ble_imu"] and "Mbed OS 6.17.0" in r.budget["sources"]["core_ble_imu"]
    assert r.tflm is None and len(r.notes) == 1 and "no TFLM source tree" in r.notes[0] and "--tflm PATH" in r.notes[0]


@pytest.mark.parametrize("key", list(BOARDS))
def test_budget_of_the_reference_model_is_the_boards_real_classifier_link(key):
    """The anchor: the reference model's package costs exactly the board's real push-ready classifier
    link; the parts say where the bytes go and none is negative; only the package's bytes move it."""
    from training.export import REFERENCE, estimate_budget
    from training.tflm_ops import firmware_ops

    b = BOARDS[key]
    ref_package = REFERENCE.package_bytes[key]
    budget = estimate_budget(ref_package, firmware_ops(), b, REFERENCE.model_bytes)
    assert (budget.flash_total, budget.ram_total) == (b.classifier_flash_bytes, b.classifier_ram_bytes)
    assert budget.flash["core_ble_imu"] == b.base_flash_bytes and budget.ram["core_ble_imu"] == b.base_ram_bytes
    assert budget.flash["package"] == ref_package and budget.ram["arena"] == pkg.MAX_ARENA_BYTES
    # TFLM with every FIRMWARE_OPS kernel, the parser, slots and BLE services: tens of KB; its statics a few KB
    assert 50_000 < budget.flash["sketch"] < 200_000 and 0 < budget.ram["sketch"] < 16_384
    # a bigger package costs exactly its extra bytes; RAM does not move (arena and buffers are the maxima)
    bigger = estimate_budget(ref_package + 1000, firmware_ops(), b)
    assert (bigger.flash_total - budget.flash_total, bigger.ram_total) == (1000, budget.ram_total)
    # a kernel outside FIRMWARE_OPS is not in the link: the budget says so
    odd = [op for op in RESOLVER_METHODS if op not in firmware_ops()][:1]
    if odd:
        assert f"not counted: the kernels of {odd[0]}" in estimate_budget(ref_package, firmware_ops(odd), b).sources["sketch"]
    # the flash limit is what lies below the slots, and a sketch past it is refused with the figure
    assert budget.flash_limit == pkg.SLOTS_BASE - pkg.APP_FLASH_START and not budget.problems()
    over = estimate_budget(ref_package + pkg.PUSH_READY_FLASH_BYTES - budget.flash_total + 1, firmware_ops(), b)
    assert any(f"{pkg.PUSH_READY_FLASH_BYTES:,} bytes a push-ready sketch" in m and "0xBC000" in m and "by 1;" in m
               for m in over.problems())


# Real links (docs/benchmarks.md, "Real-core builds") of the push-ready classifier for two other models
# trained on the demo's takes: package bytes, then (flash, RAM) as arduino-cli's size regex counts them.
OTHER_LINKS = {
    ("--channels imu", "nano33ble"): (12_976, (490_500, 123_976)),
    ("--channels imu", "nano33ble_rev2"): (12_944, (510_572, 124_616)),
    ("--rate 50 --window 100 --channels imu", "nano33ble"): (13_280, (490_804, 123_976)),
    ("--rate 50 --window 100 --channels imu", "nano33ble_rev2"): (13_264, (510_892, 124_616)),
}
ESTIMATE_TOLERANCE = 64  # bytes: the array's 16-byte alignment and the linker's section padding


@pytest.mark.parametrize("model,key", list(OTHER_LINKS))
def test_budget_of_other_models_is_within_a_few_bytes_of_their_real_links(model, key):
    from training.export import estimate_budget
    from training.tflm_ops import firmware_ops

    package_bytes, (flash, ram) = OTHER_LINKS[(model, key)]
    budget = estimate_budget(package_bytes, firmware_ops(), BOARDS[key])
    assert abs(budget.flash_total - flash) <= ESTIMATE_TOLERANCE, (budget.flash_total, flash)
    assert abs(budget.ram_total - ram) <= ESTIMATE_TOLERANCE, (budget.ram_total, ram)


def test_refuses_a_foreign_folder_but_overwrites_its_own(small_model, tmp_path):
    foreign = tmp_path / "mysketch"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(GestureError, match="not empty and was not written by `gesture export`"):
        export_sketch(small_model.model_dir, foreign)
    assert sorted(f.name for f in foreign.iterdir()) == ["notes.txt"]
    export_sketch(small_model.model_dir, foreign, force=True)
    assert (foreign / "mysketch.ino").is_file() and (foreign / "notes.txt").is_file()
    export_sketch(small_model.model_dir, foreign)  # its own export: no --force needed


def test_bad_names_boards_and_model_dirs(small_model, tmp_path):
    with pytest.raises(GestureError, match="sketch folder name"):
        export_sketch(small_model.model_dir, tmp_path / "my sketch")
    with pytest.raises(GestureError, match="unknown board 'uno'"):
        export_sketch(small_model.model_dir, tmp_path / "s", board="uno")
    with pytest.raises(DataError, match="model.tflite: not found"):
        export_sketch(tmp_path, tmp_path / "s")
    m = _copy_model(small_model.model_dir, tmp_path / "noreport")
    old = json.loads((m / "report.json").read_text())
    (m / "report.json").write_text(json.dumps({k: old[k] for k in ("model_sha256", "files_sha256")}))
    with pytest.raises(DataError, match="arena_board_bytes"):
        export_sketch(m, tmp_path / "s")


def test_an_arena_over_the_firmware_maximum_is_refused(small_model, tmp_path):
    """The push-ready sketch's arena is GK_MAX_ARENA_BYTES: a model that needs more is refused."""
    m = _copy_model(small_model.model_dir, tmp_path / "big_arena")
    report = json.loads((m / "report.json").read_text())
    report["arena_board_bytes"] = pkg.MAX_ARENA_BYTES + 1
    (m / "report.json").write_text(json.dumps(report))
    out = tmp_path / "sketch"
    with pytest.raises(GestureError) as e:
        export_sketch(m, out)
    msg = str(e.value)
    assert f"{pkg.MAX_ARENA_BYTES + 16:,}-byte tensor arena" in msg and "GK_MAX_ARENA_BYTES" in msg and "smaller model" in msg
    assert not out.exists()  # nothing written
    # the RAM budget counts the arena the sketch reserves, whatever the model needs
    r = export_sketch(small_model.model_dir, tmp_path / "ok")
    assert r.arena_bytes == pkg.MAX_ARENA_BYTES and r.budget["ram"]["arena"] == pkg.MAX_ARENA_BYTES


def test_values_outside_the_firmware_maxima_are_refused(small_model, tmp_path):
    """What the board's parser would refuse, the export refuses first, naming the field: here
    labels whose comma-joined text exceeds GK_MAX_LABELS_TEXT (INFO must fit its characteristic)."""
    m = _copy_model(small_model.model_dir, tmp_path / "wide")
    cfg = json.loads((m / "config.json").read_text())
    cfg["labels"] = [(name + "_" * 64)[:64] for name in cfg["labels"]]
    assert len(",".join(cfg["labels"])) > pkg.MAX_LABELS_TEXT
    (m / "config.json").write_text(json.dumps(cfg))
    report = json.loads((m / "report.json").read_text())
    report["files_sha256"]["config.json"] = sha256((m / "config.json").read_bytes())
    (m / "report.json").write_text(json.dumps(report))
    with pytest.raises(DataError, match=rf"field 'labels'.*at most {pkg.MAX_LABELS_TEXT} characters"):
        export_sketch(m, tmp_path / "sketch")
    assert not (tmp_path / "sketch").exists()


def test_budget_rejects_an_oversized_model(small_model, tmp_path):
    """A real flatbuffer made larger (1 MB of trailing bytes still parses): it does not fit a
    model package (the built-in model is one, within GK_MAX_PACKAGE_BYTES)."""
    m = _copy_model(small_model.model_dir, tmp_path / "big_model")
    big = (m / "model.tflite").read_bytes() + bytes(1_000_000)
    (m / "model.tflite").write_bytes(big)
    report = json.loads((m / "report.json").read_text())
    (m / "report.json").write_text(json.dumps(dict(report, model_sha256=sha256(big))))  # as if trained so
    with pytest.raises(GestureError, match=rf"the package is 1,0[\d,]+ bytes; a slot holds at most {pkg.MAX_PACKAGE_BYTES:,}"):
        export_sketch(m, tmp_path / "sketch")
    # and through the CLI: one line, exit status 2
    assert main(["export", str(m), "--sketch", str(tmp_path / "sketch")]) == 2


def test_cli_export(small_model, tmp_path, capsys):
    assert main(["export", str(small_model.model_dir), "--sketch", str(tmp_path / "cli_sketch"),
                 "--board", "nano33ble_rev2"]) == 0
    cap = capsys.readouterr()
    assert "cli_sketch (24 files, no TFLM bundled, board nano33ble_rev2)" in cap.out and "flash" in cap.out
    # without a tree: the sketch is written and one line says what is missing and how to add it
    warning = [line for line in cap.err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "no TFLM source tree" in warning[0] and "gesture tflm fetch" in warning[0]


def test_export_bundles_the_tflm_runtime_with_includes_that_resolve(small_model, tflm_tree, tmp_path):
    from training import tflm_tree as tt

    sk = tmp_path / "bundled"
    r = export_sketch(small_model.model_dir, sk, tflm=tflm_tree)
    manifest = json.loads((sk / "export.json").read_text())
    assert r.tflm == manifest["tflm"] and manifest["tflm"]["tflm_commit"] == tt.TFLM_COMMIT and r.notes == []
    assert tt.TFLM_COMMIT in (sk / "README.md").read_text()
    bundled = [f for f in manifest["files"] if f.startswith("src/tflm/")]
    assert all((sk / f).is_file() for f in bundled) and not any(f.endswith(".cc") for f in bundled)
    # the kernels of every op the model families emit (CMSIS-NN variants where they exist), no others
    assert set(model_ops((small_model.model_dir / "model.tflite").read_bytes())) <= set(FIRMWARE_OPS)
    kdir = "src/tflm/tflite-micro/tensorflow/lite/micro/kernels/"
    assert f"{kdir}cmsis_nn/conv.cpp" in bundled and f"{kdir}conv.cpp" not in bundled
    for kernel in ("cmsis_nn/depthwise_conv.cpp", "cmsis_nn/fully_connected.cpp", "cmsis_nn/pooling.cpp",
                   "cmsis_nn/softmax.cpp", "reduce.cpp", "sub.cpp", "reshape.cpp"):
        assert f"{kdir}{kernel}" in bundled, kernel
    compiled = [f for f in bundled if f.endswith((".c", ".cpp"))]  # (headers: the resolver declares every op)
    absent = ["lstm", "transpose_conv", "svdf", "batch_matmul"]
    assert not [f for f in compiled if any(a in f for a in absent)]
    # every quoted include of the bundle and gk_model.cpp resolves relative to the including file
    # (Arduino gives src/ no include path); nothing points back into the TFLM tree
    tree_names = {p.name for p in tflm_tree.rglob("*.h")}
    for f in [*bundled, "gk_model.cpp"]:
        if not f.endswith((".h", ".c", ".cpp")):
            continue
        for inc in re.findall(r'^\s*#\s*include\s*"([^"]+)"', (sk / f).read_text(), re.M):
            target = (sk / f).parent / inc
            # resolved inside the sketch, or a header the tree does not hold (intrin.h, TF profiler: #ifdef'd out)
            assert target.is_file() or (sk / inc).is_file() or not tree_names & {Path(inc).name}, f"{f}: {inc}"
    assert '#include "src/tflm/tflite-micro/tensorflow/lite/micro/micro_interpreter.h"' in (sk / "gk_model.cpp").read_text()
    # re-exported without a tree: the bundle goes, the sketch stays complete
    r2 = export_sketch(small_model.model_dir, sk)
    assert r2.tflm is None and not list((sk / "src").rglob("*.cpp")) and (sk / "bundled.ino").is_file()



def test_a_prediction_must_fit_one_notification_at_mtu_23():
    """9 + N bytes: past 11 labels ArduinoBLE would cut every prediction and the host reject it."""
    from capture import protocol as p
    from training.export import check_prediction_fits

    assert p.max_labels_per_prediction() == 11
    check_prediction_fits([f"g{i}" for i in range(11)], "config.json")
    with pytest.raises(GestureError, match=r"12 labels do not fit one BLE prediction notification at ATT MTU 23 "
                                           r"\(9 \+ 12 bytes over the 20 .*at most 11 labels"):
        check_prediction_fits([f"g{i}" for i in range(12)], "config.json")


def test_firmware_ops_are_every_op_the_model_families_emit():
    """The push-ready resolver (tflm_ops.FIRMWARE_OPS) holds every op the families of
    training/model.py convert to, in every variant `gesture tune` searches (cnn/dscnn, flatten/gap
    head, centering, linear depthwise): a pushed model of any family runs without a reflash."""
    import keras
    import numpy as np

    from training.model import build_model
    from training.quantize import to_int8

    seen: set[str] = set()
    rep = np.random.default_rng(0).normal(0, 1, (32, 24, 6)).astype("float32")
    for family, head, center, linear in (("cnn", "flatten", False, False), ("cnn", "gap", True, False),
                                         ("dscnn", "flatten", False, True), ("dscnn", "gap", True, False)):
        m = build_model(24, 6, 3, batch_size=1, filters=(4, 6), kernels=(3,), family=family, head=head, center=center,
                        linear_depthwise=linear)
        ops = model_ops(to_int8(m, rep).tflite)
        assert set(ops) <= set(FIRMWARE_OPS), (family, head, center, linear, ops)
        seen |= set(ops)
    keras.backend.clear_session()
    assert seen == set(FIRMWARE_OPS)
