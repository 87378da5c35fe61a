"""gk_model.cpp's model_switch: another model into the running interpreter, and back, in one arena.

The push-ready sketch switches models at run time (a pushed package) without a reset: the
placement-constructed interpreter is torn down and rebuilt in the same GK_MAX_ARENA_BYTES arena,
and when the new model fails a check (tensor shapes against its package, an op outside the
resolver, AllocateTensors within the arena, a payload that is not a flatbuffer) the old one is set
up again and keeps running. tests/model_switch_driver.cpp links an exported sketch's gk_model.cpp
with the host TFLM runtime and runs a sequence of packages; after every step the running model's
output must be what the Python TFLM interpreter computes for that model's bytes.
"""
from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from capture import protocol as p
from conftest import need_tool
from training import package as pkg

DRIVER = Path(__file__).resolve().parent / "model_switch_driver.cpp"


def _int8(model, window: int, channels: int, seed: int = 0) -> bytes:
    from training.quantize import to_int8

    rep = np.random.default_rng(seed).normal(0, 1, (64, window, channels)).astype("float32")
    return to_int8(model, rep).tflite


@pytest.fixture(scope="module")
def models(small_model):
    """(config, .tflite) pairs: the small model; an untrained dscnn of another shape (window 48 x 6
    channels, 3 labels); a model with an op outside the resolver (TANH); one whose activations
    cannot fit the arena."""
    import keras

    from training.model import build_model
    from training.model_dir import load_model_dir
    from training.quantize import _quant_params

    cfg, tflite, _ = load_model_dir(small_model.model_dir)
    out = {"a": (cfg, tflite)}
    b = _int8(build_model(48, 6, 3, batch_size=1, filters=(8, 12), kernels=(3, 3), family="dscnn", head="gap"), 48, 6)
    (_, zp_b), _ = _quant_params(b)
    cfg_b = replace(cfg, window=48, stride=4, model_rate_hz=50, channels=list(pkg.IMU_CHANNELS), mean=[0] * 6,
                    mult=[1 << 20] * 6, labels=["x", "y", "z"], unknown_label=None, input_zero_point=zp_b, detector={})
    out["b"] = (cfg_b, b)
    inp = keras.Input((16, 3), batch_size=1)
    x = keras.layers.Flatten()(inp)
    x = keras.layers.Dense(8, activation="tanh")(x)
    tanh = _int8(keras.Model(inp, keras.layers.Dense(4, activation="softmax")(x)), 16, 3)
    (_, zp_t), _ = _quant_params(tanh)
    out["tanh"] = (replace(cfg, window=16, stride=1, input_zero_point=zp_t), tanh)
    inp = keras.Input((256, 6), batch_size=1)
    x = keras.layers.Reshape((1, 256, 6))(inp)
    x = keras.layers.Conv2D(96, (1, 3), padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(96, (1, 3), padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    big = _int8(keras.Model(inp, keras.layers.Dense(4, activation="softmax")(x)), 256, 6)
    (_, zp_big), _ = _quant_params(big)
    out["big"] = (replace(cfg_b, window=256, stride=8, model_rate_hz=119, labels=list(cfg.labels),
                          unknown_label=cfg.unknown_label, input_zero_point=zp_big), big)
    keras.backend.clear_session()
    return out


@pytest.fixture(scope="module")
def driver(small_model, tflm_tree, tmp_path_factory) -> Path:
    from training.export import export_sketch
    from training.tflm_tree import build_runtime

    gxx = need_tool("g++")
    d = tmp_path_factory.mktemp("switch")
    sketch = d / "gesture_classifier"
    export_sketch(small_model.model_dir, sketch)  # gk_model.cpp including "tensorflow/..." (host TFLM below)
    rt = build_runtime(tflm_tree, "host", cmsis_nn=False)
    exe = d / "model_switch_driver"
    cmd = [gxx, *rt.compile_flags(cxx=True), "-Wall", "-Wextra", "-Werror", f"-I{sketch}", str(DRIVER),
           str(sketch / "gk_model.cpp"), "-o", str(exe), str(rt.library), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return exe


def _input(cfg, step: int) -> np.ndarray:
    n = cfg.window * len(cfg.channels)
    return ((np.arange(n) * 37 + 11 * step) % 256 - 128).astype(np.int8).reshape(cfg.window, len(cfg.channels))


def test_switch_and_fall_back_keep_a_whole_model_running(driver, models, tmp_path):
    from training.evaluate import TflmModel

    def package(name: str, tflite_of: str | None = None, payload: bytes | None = None) -> bytes:
        cfg, tflite = models[name]
        tfl = payload if payload is not None else models[tflite_of or name][1]
        return pkg.encode(cfg, tfl, board="nano33ble", model_sha256="cd" * 32, arena_bytes=pkg.MAX_ARENA_BYTES)

    corrupt = bytearray(package("b"))
    corrupt[-5] ^= 0x20
    garbage = bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8))
    steps = [("a", package("a")), ("b", package("b")), ("shape", package("b", tflite_of="a")),
             ("tanh", package("tanh")), ("big", package("big")), ("garbage", package("a", payload=garbage)),
             ("corrupt", bytes(corrupt)), ("a", package("a")), ("b", package("b"))]
    files = []
    for i, (_, data) in enumerate(steps):
        files.append(tmp_path / f"{i}.gkpkg")
        files[-1].write_bytes(data)
    r = subprocess.run([str(driver), *map(str, files)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 * len(steps), r.stdout

    want = {  # what each step must answer (code, and a word of the reason)
        "shape": ("switch fail", p.PushError.SHAPE, "tensors"),
        "tanh": ("switch fail", p.PushError.MISSING_OP, "TANH"),
        "big": ("switch fail", p.PushError.ARENA, "AllocateTensors"),
        "garbage": ("switch fail", p.PushError.BAD_HEADER, "flatbuffer"),
        "corrupt": ("parse", p.PushError.BAD_HASH, "CRC32"),
    }
    running = -1
    for i, (name, data) in enumerate(steps):
        result, run = lines[2 * i], lines[2 * i + 1]
        if name in want:
            head, code, word = want[name]
            assert result.startswith(f"{head} {int(code)} ") and word in result, (name, result)
        else:
            assert result.startswith("switch ok "), (name, result)
            assert 0 < int(result.split()[2]) <= pkg.MAX_ARENA_BYTES
            running = i
        # whatever runs now is whole: the last model that switched in, computing what TFLM computes
        _, idx, *values = run.split()
        assert int(idx) == running, (name, run)
        cfg, tflite = models[steps[running][0]]
        expect = TflmModel(tflite).predict(_input(cfg, i)).tolist()
        assert [int(v) for v in values[0].split(",")] == expect, (name, run)
