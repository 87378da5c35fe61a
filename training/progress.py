"""Training progress on stderr: one tqdm bar over epochs with loss, accuracy and time left; and
the one place that quiets TensorFlow's own start-up logging."""
from __future__ import annotations

import os
import sys


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up log lines (oneDNN notice, CPU feature banner) and absl
    Python warnings, so the user sees our progress and data warnings, not noise. Call before
    the first ``import tensorflow``/``keras``; the user's own TF_CPP_MIN_LOG_LEVEL wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf.function retracing notices
    try:
        from absl import logging as absl_logging
    except ImportError:  # absl comes with TensorFlow; nothing to quiet without it
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


def EpochProgress(epochs: int):
    """A Keras callback (built lazily so importing this module does not import Keras)."""
    import keras
    from tqdm import tqdm

    class _Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs, desc="training", unit="epoch", file=sys.stderr, leave=True)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            post = {"loss": f"{logs.get('loss', 0):.3f}", "acc": f"{logs.get('accuracy', 0):.3f}"}
            if "val_accuracy" in logs:
                post["val_acc"] = f"{logs['val_accuracy']:.3f}"
            self.bar.set_postfix(post)
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return _Progress()
