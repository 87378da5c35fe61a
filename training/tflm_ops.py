"""Which TFLite builtin ops TensorFlow Lite Micro can run, and how the sketch registers them.

One table serves two jobs: training refuses a model with an op the board cannot run (before the
user flashes it and reads "Didn't find op for builtin opcode"), and the exporter turns the same
names into ``MicroMutableOpResolver::AddXxx()`` calls. Op names are read from the flatbuffer with
the schema module that ships inside the ``tflite-micro`` package (no TensorFlow import needed).
"""
from __future__ import annotations

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from capture.errors import GestureError

# builtin op name -> MicroMutableOpResolver method (TFLM micro_mutable_op_resolver.h)
RESOLVER_METHODS: dict[str, str] = {
    "ADD": "AddAdd", "AVERAGE_POOL_2D": "AddAveragePool2D", "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize",
    "EXPAND_DIMS": "AddExpandDims", "FULLY_CONNECTED": "AddFullyConnected", "HARD_SWISH": "AddHardSwish",
    "LOGISTIC": "AddLogistic", "MAX_POOL_2D": "AddMaxPool2D", "MEAN": "AddMean", "MUL": "AddMul",
    "PAD": "AddPad", "QUANTIZE": "AddQuantize", "RELU": "AddRelu", "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape", "SOFTMAX": "AddSoftmax", "SQUEEZE": "AddSqueeze", "SUB": "AddSub",
    "TANH": "AddTanh", "TRANSPOSE": "AddTranspose", "STRIDED_SLICE": "AddStridedSlice",
    "SHAPE": "AddShape", "PACK": "AddPack", "LEAKY_RELU": "AddLeakyRelu", "PRELU": "AddPrelu",
    "SUM": "AddSum", "MAXIMUM": "AddMaximum", "MINIMUM": "AddMinimum", "BATCH_MATMUL": "AddBatchMatMul",
}
# ops TFLM lacks or that signal a model the board should not run (the layer that causes each)
UNSUPPORTED_HINTS: dict[str, str] = {
    "TILE": "UpSampling layers convert to TILE; use Conv2DTranspose or drop the upsampling",
    "REDUCE_PROD": "LayerNormalization converts to REDUCE_PROD; use BatchNormalization",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "LSTM does not run full-int8 in TFLM; use Conv1D/Conv2D layers",
    "WHILE": "recurrent layers (LSTM/GRU) convert to WHILE loops that TFLM cannot run in int8",
    "FLEX": "a TensorFlow op outside the TFLite builtin set",
}
# Every op the kit's model families (training/model.py build_model: cnn and dscnn, flatten and gap
# heads, center on/off, linear depthwise on/off) convert to, found by converting each variant
# (tests/test_export.py checks it). The push-ready sketch's resolver registers all of them, so a
# pushed model of any family runs without reflashing; a model with another op is refused (MISSING_OP).
FIRMWARE_OPS: tuple[str, ...] = ("RESHAPE", "MEAN", "SUB", "CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D",
                                 "FULLY_CONNECTED", "SOFTMAX")
_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def model_ops(tflite_bytes: bytes) -> list[str]:
    """Builtin op names used by the model's operators, in order of first use."""
    model = schema.Model.GetRootAsModel(tflite_bytes, 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        codes.append(_NAMES.get(code, f"CUSTOM:{oc.CustomCode().decode() if oc.CustomCode() else code}"))
    seen: list[str] = []
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        for j in range(sg.OperatorsLength()):
            name = codes[sg.Operators(j).OpcodeIndex()]
            if name not in seen:
                seen.append(name)
    return seen


def check_supported(ops: list[str]) -> None:
    """Raise a GestureError naming each op TFLM cannot run and the layer that usually causes it."""
    bad = [op for op in ops if op not in RESOLVER_METHODS]
    if bad:
        hints = "; ".join(f"{op}: {UNSUPPORTED_HINTS.get(op, 'not registered in TensorFlow Lite Micro')}" for op in bad)
        raise GestureError(f"the converted model uses op(s) the board cannot run: {hints}")


def firmware_ops(ops: list[str] | None = None) -> list[str]:
    """The resolver of the push-ready sketch: FIRMWARE_OPS, then any other op of ``ops`` (the
    built-in model's), so the model compiled into the sketch always runs."""
    return list(FIRMWARE_OPS) + [op for op in (ops or []) if op not in FIRMWARE_OPS]


def missing_firmware_ops(ops: list[str], resolver: list[str] | None = None) -> list[str]:
    """Ops of a model that a push-ready firmware's resolver (default FIRMWARE_OPS) does not hold."""
    held = set(resolver if resolver is not None else FIRMWARE_OPS)
    return [op for op in ops if op not in held]
