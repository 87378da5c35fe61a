"""The default classifier: a small 1-D CNN that fits a Cortex-M4 with room to spare.

The window (time x channels) is reshaped to (1, time, channels), time along the width, so that
every layer converts to one plain TFLite op (CONV_2D / DEPTHWISE_CONV_2D with (1, k) kernels,
MAX_POOL_2D, FULLY_CONNECTED, SOFTMAX; MEAN for the "gap" head) and CMSIS-NN can use its 1xN
convolution kernels on the board (about 6 % fewer instructions than time along the height).
Keras' Conv1D would add EXPAND_DIMS/SQUEEZE pairs around each layer.

The head flattens the last block (``head="flatten"``): where in the window a stroke happens is
part of a gesture (a wand's letters), and global average pooling throws that away; on the
dev person splits the flatten head kept the accuracy at a quarter of the conv width.
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
# Chosen across the development corpus (issue 20; docs/corpus.md, bench/bench_corpus.py,
# docs/benchmarks.md): by person (leave-one-contributor-out on the IMU_Capture contributors'
# punch/flex, 4 person-wise folds on magic_wand), three seeds, mean of the per-person int8
# accuracies, with the rule: at least the best baseline on every dataset, then the best mean.
# 16-24-32 (k5-5-3, flatten head, plan rate x window; first round, dropout 0.2) scored 74.1 % /
# 93.6 % against 70.5 % / 89.5 % for the previous 6-8-12 (k5-3-3) and 66.0 % / 86.9 % for the
# magic_wand CNN, at 496,670 / 499,280 M4 instructions per inference (measured; budget 600,000,
# ~8 ms at 64 MHz), 11 KB of model and a 4.8 KB host arena. Accuracy on people the model has never seen is what
# limits a gesture classifier, not the M4's time.
DEFAULT_FAMILY = "cnn"
DEFAULT_FILTERS = (16, 24, 32)
DEFAULT_KERNELS = (5, 5, 3)
DEFAULT_HEAD = "flatten"
# Dropout before the classifier. 0.5 since issue 20's second round (docs/benchmarks.md): with 7
# more IMU_Capture contributors (punch_flex_b, 149 takes) 16-24-32 at 0.2 fell below the previous
# 6-8-12 default on new people (66.3 % vs 73.7 %, leave-one-contributor-out, 3 seeds); at 0.5 it
# scored above both, and above 0.2, on every dataset of the corpus (punch_flex 76.2 / 74.1 %,
# punch_flex_b 77.5 / 66.3 %, magic_wand 93.9 / 93.6 %). The flatten head feeds the classifier
# 16 x 32 features from a few hundred takes: what it memorises of the training people is what
# fails on the next person. Free on the board (dropout is not in the int8 graph).
DEFAULT_DROPOUT = 0.5
HEADS = ("flatten", "gap")
# build_model's defaults as one record (the report states the architecture a model was built with)
DEFAULT_ARCHITECTURE = {"family": DEFAULT_FAMILY, "filters": list(DEFAULT_FILTERS), "kernels": list(DEFAULT_KERNELS),
                        "head": DEFAULT_HEAD, "dropout": DEFAULT_DROPOUT}


FAMILIES = ("cnn", "dscnn")


def build_model(window: int, channels: int, n_classes: int, *, batch_size: int | None = None,
                filters: tuple[int, ...] = DEFAULT_FILTERS, kernels: tuple[int, ...] = DEFAULT_KERNELS,
                dropout: float = DEFAULT_DROPOUT, family: str = DEFAULT_FAMILY, linear_depthwise: bool = False,
                head: str = DEFAULT_HEAD, center: bool = False):
    """The classifier: conv blocks (conv + ReLU + 2x max-pool), flatten (or global average
    pool), softmax.

    ``family``: "cnn" uses full (1, k) convolutions; "dscnn" makes every block after the first
    depthwise-separable (a (1, k) depthwise conv and a 1x1 conv): fewer MACs for the same width,
    but on the M4 CMSIS-NN's depthwise kernel costs ~12 instructions per MAC against ~5-9 for
    full convolutions, so it rarely wins there. The depth is len(filters). ``head``: "flatten"
    keeps where in the window things happen, "gap" (global average pool) makes the head
    independent of the window length. ``gesture tune`` searches over these. ``center``: subtract
    each channel's mean over the window first (inside the model, so the board does the same):
    what stays is the motion, not the gravity vector of how the board is held.
    """
    import keras

    if family not in FAMILIES:
        raise GestureError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}")
    if head not in HEADS:
        raise GestureError(f"unknown model head {head!r}; expected one of {', '.join(HEADS)}")
    filters, kernels = tuple(int(f) for f in filters), tuple(int(k) for k in kernels)
    if len(kernels) < len(filters):
        kernels = kernels + (kernels[-1] if kernels else 3,) * (len(filters) - len(kernels))
    inp = keras.Input((window, channels), batch_size=batch_size, name="imu")
    x = keras.layers.Reshape((1, window, channels))(inp)
    if center:  # each channel minus its mean over the window (MEAN + SUB): gravity and how the board is held
        x = keras.layers.Subtract()([x, keras.layers.GlobalAveragePooling2D(keepdims=True)(x)])
    for i, (f, k) in enumerate(zip(filters, kernels)):
        if family == "dscnn" and i > 0:
            x = keras.layers.DepthwiseConv2D((1, k), padding="same", activation=None if linear_depthwise else "relu")(x)
            x = keras.layers.Conv2D(f, (1, 1), activation="relu")(x)
        else:
            x = keras.layers.Conv2D(f, (1, k), padding="same", activation="relu")(x)
        if x.shape[2] >= 2:
            x = keras.layers.MaxPooling2D((1, 2))(x)
    x = keras.layers.Flatten()(x) if head == "flatten" else keras.layers.GlobalAveragePooling2D()(x)
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


def cost_features(model) -> dict[str, int]:
    """What one inference costs on the board, by kind of work (training.m4_cost weighs them):
    multiply-accumulates of full convolutions, depthwise convolutions and dense layers; the
    elements full convolutions write (each is requantized, clamped and stored, whatever its
    MACs); and the im2col elements CMSIS-NN gathers for them (output positions x kernel taps x
    input channels)."""
    import keras

    f = {"conv_macs": 0, "depthwise_macs": 0, "dense_macs": 0, "conv_outputs": 0, "im2col": 0}
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            f["depthwise_macs"] += out[1] * out[2] * out[3] * kh * kw
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv1D)):
            out = layer.output.shape
            positions = 1
            for d in out[1:-1]:
                positions *= d
            taps = 1
            for d in layer.kernel_size:
                taps *= d
            cin = layer.input.shape[-1]
            f["conv_macs"] += positions * out[-1] * taps * cin
            f["conv_outputs"] += positions * out[-1]
            f["im2col"] += positions * taps * cin
        elif isinstance(layer, keras.layers.Dense):
            f["dense_macs"] += layer.input.shape[-1] * layer.units
    return {k: int(v) for k, v in f.items()}


def count_macs(model) -> int:
    """Multiply-accumulates of one inference (conv, depthwise and dense layers)."""
    f = cost_features(model)
    return f["conv_macs"] + f["depthwise_macs"] + f["dense_macs"]
