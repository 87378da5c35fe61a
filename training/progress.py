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


# ----------------------------------------------------------------------------- Ctrl-C during training

class _Interrupt:
    """SIGINT while :func:`interruptible` is active: a flag, acted on at the kit's own checkpoints.

    A KeyboardInterrupt raised wherever the signal lands can hit Keras/TensorFlow internals mid-step:
    users saw a bare ``TypeError`` from ``train_step`` instead, and once the interrupt was lost and the
    training ran to its end. So the first Ctrl-C only sets this flag; the running fit stops after its
    current batch (:func:`StopOnInterrupt`) and :func:`check_interrupt` raises KeyboardInterrupt from
    the kit's code. A second Ctrl-C raises at once (for a step that hangs).
    """

    active = False
    hit = False


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed since :func:`interruptible` began."""
    if _Interrupt.hit:
        raise KeyboardInterrupt


class interruptible:
    """``with interruptible(): ...``: Ctrl-C becomes a flag (see :class:`_Interrupt`); only in the
    main thread, elsewhere (or nested) it changes nothing."""

    def __enter__(self) -> "interruptible":
        import signal
        import threading

        self._old = None
        if _Interrupt.active or threading.current_thread() is not threading.main_thread():
            return self

        def handler(signum, frame) -> None:
            if _Interrupt.hit:
                raise KeyboardInterrupt
            _Interrupt.hit = True

        self._old = signal.signal(signal.SIGINT, handler)
        _Interrupt.active, _Interrupt.hit = True, False
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        import signal

        if self._old is not None:
            hit = _Interrupt.hit
            signal.signal(signal.SIGINT, self._old)
            _Interrupt.active, _Interrupt.hit = False, False
            if hit and exc_type is None:  # pressed after the last checkpoint: still never swallowed
                raise KeyboardInterrupt


def StopOnInterrupt():
    """A Keras callback: after a Ctrl-C (under :func:`interruptible`), stop the fit after this batch."""
    import keras

    class _Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if _Interrupt.hit:
                self.model.stop_training = True

        def on_test_batch_end(self, batch, logs=None):
            if _Interrupt.hit:
                self.model.stop_training = True

    return _Stop()
