"""Training progress on stderr: one tqdm bar over epochs with loss, accuracy and time left."""
from __future__ import annotations

import sys


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
