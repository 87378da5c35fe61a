"""Full-integer (int8 in, int8 out) conversion with the TensorFlow Lite converter.

The board's model must have int8 input and output so that the firmware feeds it the integer
preprocessing's bytes directly and reads int8 scores, with no float anywhere on the hot path.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from capture.errors import GestureError
from training.model import check_layers, with_batch_size_1
from training.tflm_ops import check_supported, model_ops

SOFTMAX_SCALE = 1.0 / 256.0
SOFTMAX_ZERO_POINT = -128
REPRESENTATIVE_WINDOWS = 300


@dataclass
class Int8Model:
    tflite: bytes
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    ops: list[str]


def _quant_params(tflite: bytes) -> tuple[tuple[float, int], tuple[float, int]]:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.Model.GetRootAsModel(tflite, 0)
    sg = m.Subgraphs(0)

    def params(tensor_index: int) -> tuple[float, int]:
        t = sg.Tensors(tensor_index)
        if t.Type() != schema.TensorType.INT8:
            raise GestureError(f"tensor '{t.Name().decode()}' is not int8 after conversion")
        q = t.Quantization()
        return float(q.Scale(0)), int(q.ZeroPoint(0))

    return params(sg.Inputs(0)), params(sg.Outputs(0))


@contextlib.contextmanager
def _captured_fds() -> Iterator[list[str]]:
    """Send file descriptors 1 and 2 to a temp file: the converter's C++ and Keras' export print
    screens of signatures there. The text is handed back for error messages."""
    out: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    # Only the descriptors are redirected: Python's sys.stdout/sys.stderr keep writing to fds 1/2
    # (flushed on the way out). Swapping sys.stderr for a file closed afterwards would leave any
    # logging handler created meanwhile (TensorFlow's) writing to a closed file later.
    with tempfile.TemporaryFile() as tmp:
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            yield out
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            out.append(tmp.read().decode(errors="replace"))


def to_int8(model, representative: np.ndarray, seed: int = 0) -> Int8Model:
    """Convert a trained Keras model; ``representative`` holds float inputs from the training set."""
    import tensorflow as tf

    check_layers(model)
    fixed = with_batch_size_1(model)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(representative), min(REPRESENTATIVE_WINDOWS, len(representative)), replace=False)

    def rep():
        for i in pick:
            yield [representative[i:i + 1].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(fixed)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    with warnings.catch_warnings(), _captured_fds():
        warnings.simplefilter("ignore")
        try:
            tflite = conv.convert()
        except Exception as e:  # the converter's own errors are long C++ dumps: keep the gist
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            error = f"full-int8 conversion failed: {first[:300]}"
        else:
            error = ""
    if error:
        raise GestureError(error)
    ops = model_ops(tflite)
    check_supported(ops)
    (in_s, in_zp), (out_s, out_zp) = _quant_params(tflite)
    if abs(out_s - SOFTMAX_SCALE) > 1e-9 or out_zp != SOFTMAX_ZERO_POINT:
        raise GestureError(f"output quantization is ({out_s}, {out_zp}); the board expects a softmax output (1/256, -128)")
    return Int8Model(bytes(tflite), in_s, in_zp, out_s, out_zp, ops)


def to_float_tflite(model) -> bytes:
    """Plain float32 conversion (no quantization): what tutorials that ship float models flash.
    Used by the benchmark to size a float baseline in the same interpreter."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(with_batch_size_1(model))
    with warnings.catch_warnings(), _captured_fds():
        warnings.simplefilter("ignore")
        tflite = conv.convert()
    check_supported(model_ops(tflite))
    return bytes(tflite)
