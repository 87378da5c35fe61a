"""`gesture verify`: the exported sketch, built for Cortex-M4 from its own bundled TFLM copy and run
under QEMU mps2-an386, gives the Python evaluation's bytes; its measured cost reaches the report
and the export's budget; the check fails when the firmware computes something else."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import need_tool

from capture.errors import GestureError
from gesture_cli import main
from training import verify as v
from training.export import export_sketch
from training.model_dir import sha256


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def m4_tools():
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-g++", "qemu-system-arm"):
        need_tool(tool)


@pytest.fixture(scope="module")
def verified(small_model, tflm_tree, m4_tools, tmp_path_factory):
    """A copy of the small model, exported with the TFLM bundle and verified through the CLI."""
    d = tmp_path_factory.mktemp("verify")
    model = _copy_model(small_model.model_dir, d / "model")
    sketch = d / "gesture_classifier"
    export_sketch(model, sketch, tflm=tflm_tree)
    out = d / "verify.json"
    # 80 takes + a stream of 8 takes with 6 s rests (idle windows too): every byte compared
    rc = main(["verify", str(model), "--sketch", str(sketch), "--json", str(out), "--limit", "80",
               "--stream", "8"])
    return model, sketch, out, rc


def test_exported_sketch_matches_python_on_the_m4(verified):
    model, sketch, out, rc = verified
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["mismatches"] == 0 and r["mismatch_examples"] == []
    assert r["takes"] == 80 and r["live_windows"] > 0 and r["live_events"] > r["live_windows"]  # idle ones too
    n_labels = len(json.loads((model / "config.json").read_text())["labels"])
    assert r["compared_bytes"] > r["takes"] * n_labels + r["live_windows"] * n_labels
    assert r["tflm_commit"] == json.loads((sketch / "export.json").read_text())["tflm"]["tflm_commit"]
    # measured cost: plausible orders of magnitude, arena within what the sketch reserves
    assert 100_000 < r["instructions_per_inference"] < 50_000_000
    assert r["ms_at_64mhz"] == pytest.approx(r["instructions_per_inference"] / 64_000, abs=0.01)
    assert 0 < r["arena_bytes_m4"] <= r["arena_reserved_bytes"]
    model_bytes = (model / "model.tflite").stat().st_size
    assert model_bytes + 20_000 < r["flash_bytes_model_runtime"] < r["flash_bytes_firmware"]
    assert r["arena_reserved_bytes"] < r["ram_bytes_model_runtime"]


def test_figures_reach_the_report_and_the_budget(verified, tmp_path):
    model, sketch, out, _ = verified
    r = json.loads(out.read_text())
    report = json.loads((model / "report.json").read_text())
    assert report["m4"]["instructions_per_inference"] == r["instructions_per_inference"]
    md = (model / "report.md").read_text()
    assert md.count(v.MD_BEGIN) == 1 and f"{r['instructions_per_inference']:,}" in md
    # the push-ready sketch's budget is its real link with this model's package (kernels, arena and
    # buffers are the firmware's maxima): verifying the model does not move it
    e = export_sketch(model, tmp_path / "again")
    before = json.loads((sketch / "export.json").read_text())
    assert (e.flash_estimate, e.ram_estimate) == (before["flash_estimate"], before["ram_estimate"])
    assert e.budget["flash"]["package"] == before["package_bytes"]
    from training.m4_cost import m4_instructions

    assert m4_instructions((model / "model.tflite").read_bytes()) == r["instructions_per_inference"]
    assert m4_instructions(b"other model bytes") is None
    v.write_into_report(model, v.VerifyResult(**{k: r[k] for k in v.VerifyResult.__dataclass_fields__}))
    assert (model / "report.md").read_text().count(v.MD_BEGIN) == 1  # replaced, not appended


def test_cost_probe_counts_what_verify_counts_and_tune_uses_it(verified, tflm_tree, tmp_path):
    """measure_cost (the instruction counter `gesture tune` ranks candidates with) builds and runs
    the same M4 firmware as `gesture verify`, with no data: same bytes, the same count."""
    from training.m4_cost import estimate_instructions
    from training.model_dir import load_model_dir
    from training.tune import instructions

    model, _, out, _ = verified
    r = json.loads(out.read_text())
    cfg, tflite, _ = load_model_dir(model)
    figures = v.measure_cost(tflite, cfg, tflm=tflm_tree)
    # only the input differs (zeros here, the last take there): ReLU/softmax paths move it a little
    assert figures["instructions_per_inference"] == pytest.approx(r["instructions_per_inference"], rel=0.02)
    assert figures["arena_bytes_m4"] == r["arena_bytes_m4"]
    assert figures["flash_bytes_model_runtime"] == r["flash_bytes_model_runtime"]
    # the estimate used without the tools (training.m4_cost) is close to the measured count
    import keras

    from training.model import build_model, cost_features
    arch = json.loads((model / "report.json").read_text())["architecture"]
    est = estimate_instructions(cost_features(build_model(cfg.window, len(cfg.channels), len(cfg.labels), **arch)))
    keras.backend.clear_session()
    assert est == pytest.approx(figures["instructions_per_inference"], rel=0.10)
    # tune: a measured count is used as is; no probe and nothing recorded -> the MAC estimate
    calls = []

    def probe(b, c):
        calls.append(c.window)
        return v.measure_cost(b, c, tflm=tflm_tree)["instructions_per_inference"]

    other = tflite + b"\0" * 4  # bytes nothing has measured yet
    feats = {"conv_macs": 1000, "conv_outputs": 100}
    assert instructions(other, feats) == (estimate_instructions(feats), "estimated")
    n, how = instructions(other, feats, cfg, probe)
    assert how == "measured" and calls == [cfg.window] and n == pytest.approx(figures["instructions_per_inference"], rel=0.02)
    assert instructions(other, feats) == (n, "measured")  # remembered by sha256 (training.m4_cost)


def test_a_firmware_that_computes_otherwise_is_caught(verified, tmp_path):
    model, sketch, _, _ = verified
    bad = tmp_path / "gesture_classifier"
    shutil.copytree(sketch, bad)
    code = (bad / "gk_model.cpp").read_text()
    assert "output[k] = src[k];" in code
    (bad / "gk_model.cpp").write_text(code.replace("output[k] = src[k];", "output[k] = src[k] ^ (k == 0);"))
    r = v.run(model, bad, take_limit=10, stream_takes=2, update_report=False)
    assert r.mismatches >= 10 and any("output" in ex for ex in r.mismatch_examples)
    assert main(["verify", str(model), "--sketch", str(bad), "--limit", "5", "--stream", "1"]) == 1


def test_sketch_without_bundle_or_from_another_model(small_model, m4_tools, tmp_path):
    sk = tmp_path / "plain"
    export_sketch(small_model.model_dir, sk)  # no tree: no src/tflm
    with pytest.raises(GestureError, match=r"no bundled TFLM runtime \(src/tflm\); re-export it"):
        v.run(small_model.model_dir, sk, update_report=False)
    other = _copy_model(small_model.model_dir, tmp_path / "other")
    big = (other / "model.tflite").read_bytes() + b"\0" * 16
    (other / "model.tflite").write_bytes(big)
    report = json.loads((other / "report.json").read_text())
    (other / "report.json").write_text(json.dumps(dict(report, model_sha256=sha256(big))))  # as if trained so
    with pytest.raises(GestureError, match="exported from another model"):
        v.run(other, sk, update_report=False)


def test_missing_toolchain_names_the_debian_packages(small_model, monkeypatch, capsys):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n: None if n.startswith(("arm-none-eabi", "qemu")) else real_which(n))
    with pytest.raises(GestureError) as e:
        v.check_tools()
    msg = str(e.value)
    assert "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib" in msg
    assert "qemu-system-arm" in msg
    assert main(["verify", str(small_model.model_dir)]) == 2
    err = capsys.readouterr().err
    assert "error: gesture verify needs" in err and "Traceback" not in err


MAP = """Discarded input sections
 .text.unused   0x00000000       0x40 /b/verify-m4/dead.o
Linker script and memory map
.text           0x00000000     0x2000
 .text.a        0x00000100       0x10 /b/verify-m4/a-1.o
 .text._ZN6tflite16MicroInterpreterC2EPKNS_5ModelE
                0x00000110      0x200 /b/verify-m4/micro_interpreter-2.o
 .rodata.g_model_data
                0x00000310      0x300 /w/model_data.cpp.o
 .text.main     0x00000610       0x50 /w/verify_driver.cpp.o
 .data.x        0x20000000        0x8 /b/verify-m4/a-1.o
 .bss._ZN12_GLOBAL__N_17g_arenaE
                0x20000008     0x1000 /w/gk_model.cpp.o
 COMMON         0x20001008       0x20 /b/verify-m4/a-1.o
"""


def test_map_sizes_reads_split_and_single_line_entries():
    keep = lambda o: "verify-m4/" in o or o.endswith(("gk_model.cpp.o", "model_data.cpp.o"))  # noqa: E731
    assert v.map_sizes(MAP, keep) == (0x10 + 0x200 + 0x300 + 0x8, 0x8 + 0x1000 + 0x20)
    assert v.map_sizes(MAP, lambda o: True) == (0x10 + 0x200 + 0x300 + 0x50 + 0x8, 0x8 + 0x1000 + 0x20)


def test_bundle_compiles_with_the_mbed_cores_own_flags(verified, tmp_path):
    """The Arduino mbed core compiles C++ with -std=gnu++14 -mfloat-abi=softfp -funsigned-char
    (ArduinoCore-mbed variants/ARDUINO_NANO33BLE/cxxflags.txt) and no include path for src/: the
    bundled TFLM files that use C++17 type traits must still build so."""
    _, sketch, _, _ = verified
    gxx = need_tool("arm-none-eabi-g++")
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16", "-Os", "-funsigned-char",
             "-std=gnu++14", "-fno-rtti", "-fno-exceptions", "-c"]
    for rel in ("src/tflm/tflite-micro/tensorflow/lite/kernels/internal/common.cpp",
                "src/tflm/tflite-micro/tensorflow/lite/micro/kernels/cmsis_nn/conv.cpp", "gk_model.cpp"):
        r = subprocess.run([gxx, *flags, str(sketch / rel), "-o", str(tmp_path / "x.o")], capture_output=True, text=True)
        assert r.returncode == 0, f"{rel}: {r.stderr[-1500:]}"
