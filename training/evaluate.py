"""Run the int8 model exactly as the board does and measure what the board needs.

Predictions come from the ``tflite_micro`` Python runtime: the TensorFlow Lite Micro interpreter
with the same reference kernels as a Cortex-M4 build, bit for bit. ``tf.lite.Interpreter`` and
LiteRT default to XNNPACK and differ from the board by a few LSB, so they are never used here.

Arena: TFLM aborts the whole process when the arena is too small, so the smallest working size is
confirmed in child processes (``python -m training.evaluate MODEL N`` exits 0 when N works),
starting from the total the recording allocator reports.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ALIGN = 16
PROBE_ARENA = 256 * 1024
BOARD_MARGIN_BYTES = 1024


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class TflmModel:
    """An int8 model loaded in the TFLM interpreter."""

    def __init__(self, model_bytes: bytes, arena_size: int = PROBE_ARENA) -> None:
        from tflite_micro import runtime

        self.model_bytes = bytes(model_bytes)
        self._it = runtime.Interpreter.from_bytes(self.model_bytes, arena_size=arena_size)
        d = self._it.get_input_details(0)
        self.input_shape = tuple(int(s) for s in d["shape"])
        q = d.get("quantization_parameters", {})
        self.input_scale = float(q["scales"][0]) if len(q.get("scales", [])) else 0.0
        self.input_zero_point = int(q["zero_points"][0]) if len(q.get("zero_points", [])) else 0

    def predict(self, window_int8: np.ndarray) -> np.ndarray:
        """int8 window (time, channels) -> int8 scores (n_classes,)."""
        self._it.set_input(np.asarray(window_int8, dtype=np.int8).reshape(self.input_shape), 0)
        self._it.invoke()
        return np.asarray(self._it.get_output(0), dtype=np.int8).reshape(-1)

    def recorded_arena(self) -> int:
        """The arena total the recording allocator reports (read from file descriptor 2)."""
        d = self._it.get_input_details(0)
        self._it.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
        self._it.invoke()
        with tempfile.TemporaryFile() as tmp:
            saved = os.dup(2)
            try:
                sys.stderr.flush()
                os.dup2(tmp.fileno(), 2)
                self._it.print_allocations()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace")
        m = re.search(r"Arena allocation total (\d+) bytes", text)
        if not m:
            raise RuntimeError(f"could not read the arena total from print_allocations(): {text[:200]!r}")
        return int(m.group(1))


def int8_scores(model_bytes: bytes, windows: np.ndarray, cfg) -> np.ndarray:
    """u8 scores (n, classes) of int16 count windows (n, window, C) through the board's integer
    input quantization and the TFLM interpreter, one window per invoke as on the board."""
    from training.preprocess import quantize_input, scores_u8

    m = TflmModel(model_bytes)
    out = [scores_u8(m.predict(quantize_input(w, cfg))) for w in windows]
    return np.stack(out) if out else np.zeros((0, len(cfg.labels)), np.uint8)


def arena_works(model_path: Path, size: int) -> bool:
    proc = subprocess.run([sys.executable, "-m", "training.evaluate", str(model_path), str(size)],
                          capture_output=True, cwd=Path(__file__).resolve().parent.parent)
    return proc.returncode == 0


def smallest_arena(model_bytes: bytes) -> int:
    """Smallest arena (multiple of 16) that allocates and invokes, checked in child processes."""
    recorded = _align(TflmModel(model_bytes).recorded_arena())
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.tflite"
        path.write_bytes(model_bytes)
        lo, hi = ALIGN, recorded  # invariant: hi works
        if not arena_works(path, hi):
            hi = recorded * 2
            while not arena_works(path, hi):
                hi *= 2
            lo = hi // 2
        if arena_works(path, hi - ALIGN):
            while hi - lo > ALIGN:  # rare: the recorded total overestimates; bisect
                mid = _align((lo + hi) // 2)
                if mid >= hi:
                    break
                if arena_works(path, mid):
                    hi = mid
                else:
                    lo = mid
        return hi


def board_arena(host_arena: int, conv_scratch: int = 0) -> int:
    """Arena to reserve on the board for a host-measured figure.

    The host build is 64-bit: TFLM's persistent structs hold pointers, so the host figure is
    larger than the board needs for them. But the board's TFLM library uses CMSIS-NN kernels,
    which ask for scratch buffers the reference kernels don't (``conv_scratch``: 2 bytes per
    input channel x kernel tap per conv for the im2col buffer), so that is added, plus a fixed
    1 KB margin for library-version differences.
    """
    return _align(host_arena + conv_scratch + BOARD_MARGIN_BYTES)


def cmsis_conv_scratch(model) -> int:
    """Largest CMSIS-NN convolution scratch buffer of the Keras model (bytes): two im2col
    columns of int16 for a convolution; one (input channels x kernel taps int16) for a depthwise
    convolution (arm_depthwise_conv_s8_opt_get_buffer_size)."""
    import keras

    need = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            need = max(need, 2 * layer.input.shape[-1] * kh * kw)
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            need = max(need, 2 * layer.input.shape[-1] * kh * kw * 2)
    return need


def _probe(model_path: str, size: str) -> int:
    """Child process: allocate + invoke with the given arena (TFLM aborts if too small)."""
    from tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(Path(model_path).read_bytes(), arena_size=int(size))
    d = it.get_input_details(0)
    it.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
    it.invoke()
    return 0


if __name__ == "__main__":
    sys.exit(_probe(sys.argv[1], sys.argv[2]))
