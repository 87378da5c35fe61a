"""What the dashboard shows about the model on the board: labels, window, accuracy, sizes.

Read from the MODEL_DIR that ``gesture train`` wrote (config.json, model.tflite, report.json),
through ``training.model_dir.load_model_dir`` so the dashboard validates a model folder exactly
as the virtual board does. The window length tells the "save as take" button how many seconds
of raw samples the model looked at.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    model_dir: Path
    labels: list[str]
    window_s: float  # seconds of signal in one model window (window / model_rate_hz)
    model_bytes: int
    report: dict[str, Any] = field(default_factory=dict)
    dataset: Path | None = None  # the dataset it was trained on, if that folder exists
    unknown_label: str | None = None  # the "no gesture" class: false activations are saved under it

    @property
    def confusion_png(self) -> Path | None:
        path = self.model_dir / "confusion.png"
        return path if path.is_file() else None

    @property
    def confusion_matrix(self) -> list[list[int]] | None:
        cm = self.report.get("confusion_matrix")
        ok = isinstance(cm, list) and len(cm) == len(self.labels) and all(
            isinstance(r, list) and len(r) == len(self.labels) for r in cm)
        return cm if ok else None


def load_model_info(model_dir: str | Path) -> ModelInfo:
    """Raises DataError (naming the file) when MODEL_DIR is not a trained model folder."""
    from capture.errors import DataError
    from training.model_dir import default_data_dir, load_model_dir

    model_dir = Path(model_dir)
    cfg, tflite, report = load_model_dir(model_dir)
    try:
        dataset = default_data_dir(report) if report.get("dataset") else None
    except DataError:
        dataset = None  # moved or deleted: "save as take" then needs --data DIR
    return ModelInfo(model_dir=model_dir, labels=list(cfg.labels), window_s=cfg.window / float(cfg.model_rate_hz),
                     model_bytes=int(report.get("model_bytes", len(tflite))), report=report,
                     dataset=dataset if dataset is not None and dataset.is_dir() else None,
                     unknown_label=cfg.unknown_label)
