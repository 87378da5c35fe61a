"""``gesture evaluate``: an existing int8 model scored on any dataset with its labels.

Exactly what ``gesture train --test`` does to its test takes, with the model folder's own
config: each take resampled to the model rate, cropped around its motion, run through the
board's integer input quantization and the TFLM interpreter; takes that cannot be learnt from
(``training.plan.skip_reason`` at the model's rate and window) are left out and counted. So on
the same data the figures equal the ones ``train --test`` reported.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capture.errors import GestureError
from training.dataset import load_dataset
from training.model_dir import load_model_dir
from training.plan import skip_reason, source_rate
from training.preprocess import crop_take, take_counts


def score(model_dir: str | Path, data: str | Path) -> dict[str, Any]:
    """int8 (TFLM) accuracy, per-class precision/recall and confusion matrix of MODEL_DIR on DATA.

    Raises GestureError/DataError, before any inference, for a dataset with labels the model
    does not know or without the channels it reads."""
    cfg, tflite, report = load_model_dir(model_dir)
    ds = load_dataset(data, min_labels=1)
    unknown = sorted(set(ds.labels) - set(cfg.labels))
    if unknown:
        raise GestureError(f"{data} has label(s) {unknown} that the model in {model_dir} does not know; "
                           f"it predicts {cfg.labels}")
    lacking = next((t for t in ds.takes if not set(cfg.channels) <= set(t.channels)), None)
    if lacking is not None:
        raise GestureError(f"{lacking.path}: take has channels {list(lacking.channels)}; the model in {model_dir} "
                           f"reads {cfg.channels}")
    src = source_rate(ds.takes) or float(report.get("source_rate_hz") or 0.0)
    rate, window = cfg.model_rate_hz, cfg.window
    skipped = [(t, r) for t in ds.takes if (r := skip_reason(t, src, rate, window))]
    skipped_ids = {id(t) for t, _ in skipped}
    takes = [t for t in ds.takes if id(t) not in skipped_ids]
    if not takes:
        raise GestureError(f"none of the {len(ds.takes)} take(s) in {data} can be scored at the model's "
                           f"{rate} Hz x {window} window (e.g. {skipped[0][0].path}: {skipped[0][1]})")
    from training.evaluate import int8_scores
    from training.report import confusion, per_class

    windows = np.stack([crop_take(take_counts(t, cfg, rate_hz=t.rate_hz or src), cfg) for t in takes])
    scores = int8_scores(tflite, windows, cfg)
    index = {label: i for i, label in enumerate(cfg.labels)}
    y = np.array([index[t.label] for t in takes])
    pred = scores.argmax(1)
    cm = confusion(y, pred, len(cfg.labels))
    missing = [label for label in cfg.labels if label not in set(ds.labels)]
    return {"model_dir": str(model_dir), "dataset": str(Path(data).resolve()), "labels": cfg.labels,
            "n_test": len(takes), "int8_accuracy": float((pred == y).mean()),
            "per_class": per_class(cm, cfg.labels), "confusion_matrix": cm.tolist(),
            "labels_without_takes": missing,
            "skipped_takes": [{"take": str(t.path), "label": t.label, "reason": r} for t, r in skipped],
            "predictions": [{"take": str(t.path), "label": t.label, "pred": cfg.labels[int(p)],
                             "scores": [int(v) for v in s]} for t, p, s in zip(takes, pred, scores)]}


def text_report(r: dict[str, Any]) -> str:
    """Accuracy line, per-class table and confusion matrix as plain aligned text."""
    labels = r["labels"]
    w = max(len(label) for label in labels + ["label"])
    lines = [f"int8 accuracy (TFLM) {r['int8_accuracy']:.1%} on {r['n_test']} take(s) of {r['dataset']}"
             + (f"; {len(r['skipped_takes'])} take(s) skipped (too short for the window)" if r["skipped_takes"] else ""),
             ""]
    if r["labels_without_takes"]:
        lines.insert(1, f"no takes of label(s) {', '.join(r['labels_without_takes'])}: their recall is not measured")
    lines.append(f"{'label'.ljust(w)}  precision  recall  support")
    for label in labels:
        c = r["per_class"][label]
        lines.append(f"{label.ljust(w)}  {c['precision']:9.1%}  {c['recall']:6.1%}  {c['support']:7d}")
    lines += ["", "confusion (rows: true, columns: predicted)",
              " " * w + "  " + "  ".join(label[:6].rjust(6) for label in labels)]
    for label, row in zip(labels, r["confusion_matrix"]):
        lines.append(label.ljust(w) + "  " + "  ".join(str(v).rjust(6) for v in row))
    return "\n".join(lines)
