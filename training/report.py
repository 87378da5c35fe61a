"""Metrics and the files a user reads after training: report.json and report.md with plots."""
from __future__ import annotations

from typing import Any

import numpy as np



def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        m[int(t), int(p)] += 1
    return m


def per_class(cm: np.ndarray, labels: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for i, label in enumerate(labels):
        tp = cm[i, i]
        predicted, actual = cm[:, i].sum(), cm[i, :].sum()
        out[label] = {"precision": float(tp / predicted) if predicted else 0.0,
                      "recall": float(tp / actual) if actual else 0.0,
                      "support": int(actual)}
    return out


def _png(fig) -> bytes:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_confusion(cm: np.ndarray, labels: list[str], title: str) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.1 * len(labels) + 1.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    data = _png(fig)
    plt.close(fig)
    return data


def plot_history(history: dict[str, list[float]]) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    for key, ax in (("loss", a), ("accuracy", b)):
        train = history.get(key, [])
        ax.plot(range(1, len(train) + 1), train, label="train")
        if history.get(f"val_{key}"):
            ax.plot(range(1, len(history[f"val_{key}"]) + 1), history[f"val_{key}"], label="validation (training people)")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    data = _png(fig)
    plt.close(fig)
    return data


def _threshold(r: dict[str, Any]) -> str:
    """The live confidence threshold, or what was done instead when nothing could calibrate it."""
    rej = r.get("rejection_validation")
    if not r.get("n_val") or (rej is not None and not rej.get("windows")):
        return ("none (0/255): no validation takes to calibrate it on (every take went to training or test, "
                "as with 2 subjects under a person split), so the board reports every prediction; "
                "record more subjects or sessions to calibrate one")
    return f"{r['confidence_threshold']}/255{_rejection(r)}"


def _rejection(r: dict[str, Any]) -> str:
    rej = r.get("rejection_validation")
    if not rej:
        return ""
    text = f" (on {rej['windows']} validation windows it keeps {rej['kept_correct']:.0%} of the correct gesture predictions"
    if rej["n_wrong"]:
        return text + f" and turns {rej['rejected_wrong']:.0%} of {rej['n_wrong']} wrong ones into unknown)"
    return text + "; none was wrong)"


def _timings(r: dict[str, Any]) -> str:
    t = r.get("timings")
    return f" ({', '.join(f'{k} {v:.1f}' for k, v in t.items())})" if t else ""


def markdown(r: dict[str, Any]) -> str:
    labels = r["labels"]
    lines = [
        "# Training report",
        "",
        f"Dataset `{r['dataset']}`, {r['split']} split"
        + (f" (test: {', '.join(r['test_subjects'])})" if r.get("test_subjects") else "") + ".",
        *(["", "**Simulated data**: these takes come from the kit's simulated hand (capture/virtual/hand.py), "
           "not from recordings of people; the accuracy below says how the pipeline works, not how the "
           "model will do on your gestures."] if r.get("simulated") else []),
        f"{r['n_train']} training takes ({r['n_train_windows']} windows with augmentation), "
        f"{r['n_val']} validation takes, {r['n_test']} test takes"
        + (f" ({len(r['test_unscored'])} more test take(s) not scored: labelled "
           f"{', '.join(sorted({u['label'] for u in r['test_unscored']}))}, which the training set lacks)."
           if r.get("test_unscored") else "."),
        "",
        "| | value |",
        "|---|---|",
        f"| float accuracy (Keras) | {r['float_accuracy']:.1%} |",
        f"| **int8 accuracy (TFLM interpreter, as on the board)** | **{r['int8_accuracy']:.1%}** |",
        f"| float/int8 agreement | {r['float_int8_agreement']:.1%} |",
        f"| model size (int8 .tflite) | {r['model_bytes']:,} bytes |",
        f"| tensor arena (measured, host) | {r['arena_bytes']:,} bytes |",
        f"| tensor arena reserved on the board | {r['arena_board_bytes']:,} bytes |",
        f"| parameters / MACs per inference | {r['params']:,} / {r['macs']:,} |",
        f"| ops | {', '.join(r['ops'])} |",
        f"| window | {r['window']} samples at {r['model_rate_hz']} Hz"
        + (f" (recorded at {r['source_rate_hz']:g} Hz)" if r.get("source_rate_hz") else "") + " |",
        f"| confidence threshold (live) | {_threshold(r)} |",
        f"| motion threshold (live idle gate) | {r['motion_threshold']} counts |",
        f"| training time | {r['train_seconds']:.1f} s{_timings(r)} |",
        f"| TensorFlow / tflite-micro | {r['tensorflow_version']} / {r['tflite_micro_version']} |",
        "",
        "## Per class (int8)",
        "",
        "| label | precision | recall | test takes |",
        "|---|---:|---:|---:|",
    ]
    for label in labels:
        pc = r["per_class"][label]
        lines.append(f"| {label} | {pc['precision']:.1%} | {pc['recall']:.1%} | {pc['support']} |")
    lines += ["", "## Confusion matrix (int8, rows = true)", "", "![confusion matrix](confusion.png)", "",
              "## Training curves", "", "![training curves](training.png)", ""]
    skipped = r.get("skipped_takes") or []
    if skipped:
        lines += [f"## Skipped takes ({len(skipped)})", "", "Left out of training and testing because nothing can be learnt from them.", "",
                  "| take | label | reason |", "|---|---|---|"]
        lines += [f"| {s['take']} | {s['label']} | {s['reason']} |" for s in skipped]
        lines.append("")
    if r.get("data_warnings"):
        lines += ["## Data warnings", ""] + [f"- {w}" for w in r["data_warnings"]] + [""]
    wrong = [p for p in r["test_predictions"] if p["pred"] != p["label"]]
    if wrong:
        lines += ["## Misclassified test takes", "", "| take | true | predicted | confidence |", "|---|---|---|---:|"]
        for p in wrong[:30]:
            lines.append(f"| {p['take']} | {p['label']} | {p['pred']} | {max(p['scores'])}/255 |")
        lines.append("")
    return "\n".join(lines)


def report_files(report: dict[str, Any], cm: np.ndarray, history: dict[str, list[float]]) -> dict[str, bytes]:
    """The human-readable files of a model folder (report.json itself is written by training.model_dir)."""
    return {"confusion.png": plot_confusion(cm, report["labels"], "int8 model on the board's kernels"),
            "training.png": plot_history(history), "report.md": markdown(report).encode("utf-8")}
