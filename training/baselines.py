"""The two public gesture models users already know, rebuilt from their published architectures.

They exist so ``bench/bench_training.py`` can show, in one run on the same split, the same
windows and the same fit -> int8 -> TFLM path, what the default model buys over them:

* ``arduino_mlp``: the Arduino "TinyML workshop" GestureToEmoji notebook
  (ArduinoTensorFlowLiteTutorials, ``arduino_tinyml_workshop.ipynb``): the window flattened, then
  Dense(50, relu) -> Dense(15, relu) -> Dense(n, softmax). The tutorial feeds 119 samples of
  accel + gyro scaled to 0..1 and ships the *float* model; here it gets our windows (accel only
  when the data has no gyro) with our mean/std normalization, and is also converted to int8.
* ``magic_wand_cnn``: ``build_cnn(seq_length)`` of TensorFlow Lite Micro's magic_wand
  ``train/train.py``: input (128, 3, 1) -> Conv2D(8, (4, 3), same, relu) -> MaxPool2D((3, 3))
  -> Dropout(0.1) -> Conv2D(16, (4, 1), same, relu) -> MaxPool2D((3, 1), same) -> Dropout(0.1)
  -> Flatten -> Dense(16, relu) -> Dropout(0.1) -> Dense(n, softmax). Its 128-sample window at
  25 Hz is kept (our crops, 128 long).

Both keep their published input shapes, so their converted models are the ones those projects
would put on a board. The training recipe (optimizer, epochs, augmentation) is ours for all
three models, so only the architecture differs.
"""
from __future__ import annotations

MAGIC_WAND_SEQ_LENGTH = 128


def arduino_mlp(window: int, channels: int, n_classes: int):
    """Arduino GestureToEmoji tutorial model on a flattened (window x channels) input."""
    import keras

    inp = keras.Input((window * channels,), name="imu_flat")
    x = keras.layers.Dense(50, activation="relu")(inp)
    x = keras.layers.Dense(15, activation="relu")(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="arduino_mlp")


def magic_wand_cnn(seq_length: int, channels: int, n_classes: int):
    """TFLM magic_wand ``build_cnn``; input (seq_length, channels, 1) as published (channels = 3)."""
    import keras

    inp = keras.Input((seq_length, channels, 1), name="accel")
    x = keras.layers.Conv2D(8, (4, 3), padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D((3, 3))(x)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Conv2D(16, (4, 1), padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D((3, 1), padding="same")(x)
    x = keras.layers.Dropout(0.1)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    x = keras.layers.Dropout(0.1)(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="magic_wand_cnn")


def input_shape(model) -> tuple[int, ...]:
    """Per-window input shape (no batch) of a baseline, to reshape (window, C) windows into."""
    return tuple(int(d) for d in model.input.shape[1:])
