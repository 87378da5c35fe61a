"""The default classifier: a small 1-D CNN that fits a Cortex-M4 with room to spare.

The window (time x channels) is reshaped to (time, 1, channels) so that every layer converts to
one plain TFLite op (CONV_2D / DEPTHWISE_CONV_2D with (k, 1) kernels, MAX_POOL_2D, MEAN,
FULLY_CONNECTED, SOFTMAX):
Keras' Conv1D would add EXPAND_DIMS/SQUEEZE pairs around each layer. Three conv blocks see about
2 s of motion at 25 Hz; global average pooling makes the head independent of the window length.
"""
from __future__ import annotations

from capture.errors import GestureError

# layers that cannot become a full-int8 TFLM model, with what to use instead
REJECTED_LAYERS = {
    "LSTM": "LSTM does not convert to full int8 for TFLM; use convolutions",
    "GRU": "GRU does not convert to full int8 for TFLM; use convolutions",
    "SimpleRNN": "recurrent layers do not convert to full int8 for TFLM; use convolutions",
    "Bidirectional": "recurrent layers do not convert to full int8 for TFLM; use convolutions",
    "UpSampling1D": "UpSampling converts to TILE, which TFLM lacks",
    "UpSampling2D": "UpSampling converts to TILE, which TFLM lacks",
    "LayerNormalization": "LayerNormalization converts to REDUCE_PROD, which TFLM lacks; use BatchNormalization",
}
# Chosen on two person splits carved out of data/magic_wand's *training* people (never its test
# people; bench/bench_default_model.py, docs/benchmarks.md): depthwise-separable blocks of
# 12-16-24 filters kept the int8 accuracy of the previous plain 16-24-32 CNN within half a point
# (94.7 % vs 95.1 % mean) at a quarter of the MACs (50,736 vs 213,248 at 120 x 3), the size the
# Cortex-M4 budget of 200 k instructions per inference allows.
DEFAULT_FAMILY = "dscnn"
DEFAULT_FILTERS = (12, 16, 24)
DEFAULT_KERNELS = (5, 5, 5)


FAMILIES = ("cnn", "dscnn")


def build_model(window: int, channels: int, n_classes: int, *, batch_size: int | None = None,
                filters: tuple[int, ...] = DEFAULT_FILTERS, kernels: tuple[int, ...] = DEFAULT_KERNELS,
                dropout: float = 0.2, family: str = DEFAULT_FAMILY, linear_depthwise: bool = False):
    """The classifier: conv blocks (conv + ReLU + 2x max-pool), global average pool, softmax.

    ``family``: "cnn" uses full (k, 1) convolutions; "dscnn" makes every block after the first
    depthwise-separable (a (k, 1) depthwise conv and a 1x1 conv), several times fewer MACs for
    the same width. The depth is len(filters). ``gesture tune`` searches over all three.
    """
    import keras

    if family not in FAMILIES:
        raise GestureError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}")
    filters, kernels = tuple(int(f) for f in filters), tuple(int(k) for k in kernels)
    if len(kernels) < len(filters):
        kernels = kernels + (kernels[-1] if kernels else 3,) * (len(filters) - len(kernels))
    inp = keras.Input((window, channels), batch_size=batch_size, name="imu")
    x = keras.layers.Reshape((window, 1, channels))(inp)
    for i, (f, k) in enumerate(zip(filters, kernels)):
        if family == "dscnn" and i > 0:
            x = keras.layers.DepthwiseConv2D((k, 1), padding="same", activation=None if linear_depthwise else "relu")(x)
            x = keras.layers.Conv2D(f, (1, 1), activation="relu")(x)
        else:
            x = keras.layers.Conv2D(f, (k, 1), padding="same", activation="relu")(x)
        if x.shape[1] >= 2:
            x = keras.layers.MaxPooling2D((2, 1))(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="gesture_cnn" if family == "cnn" else "gesture_dscnn")


def check_layers(model) -> None:
    """Refuse layers that cannot run on the board, before a long training run."""
    for layer in _all_layers(model):
        name = type(layer).__name__
        if name in REJECTED_LAYERS:
            raise GestureError(f"layer '{layer.name}' ({name}) cannot run on the board: {REJECTED_LAYERS[name]}")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
        if hasattr(layer, "layer"):  # wrappers such as Bidirectional
            yield layer.layer


def with_batch_size_1(model):
    """The same functional model with a fixed batch of 1 and the same weights.

    A dynamic batch makes the converter add SHAPE/PACK/STRIDED_SLICE ops (and ~2 KB) to compute
    shapes at run time; the board always runs one window at a time.
    """
    import keras

    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            shape = layer["config"].get("batch_shape") or layer["config"].get("batch_input_shape")
            layer["config"]["batch_shape"] = [1, *shape[1:]]
            layer["config"].pop("batch_input_shape", None)
    fixed = keras.Model.from_config(config)
    fixed.set_weights(model.get_weights())
    return fixed


def count_macs(model) -> int:
    """Multiply-accumulates of one inference (conv, depthwise and dense layers)."""
    import keras

    macs = 0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            macs += out[1] * out[2] * out[3] * kh * kw
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv1D)):
            out = layer.output.shape
            k = 1
            for d in layer.kernel_size:
                k *= d
            cin = layer.input.shape[-1]
            spatial = 1
            for d in out[1:-1]:
                spatial *= d
            macs += spatial * out[-1] * k * cin
        elif isinstance(layer, keras.layers.Dense):
            macs += layer.input.shape[-1] * layer.units
    return int(macs)
