"""The dashboard's charts, as Altair specs (Streamlit renders them with Vega-Lite), and the names
the page gives predictions. (The live timeline and raw trace are painted by the live view,
dashboard/live/live.js, not re-embedded as Vega charts.)

Kept apart from the page script so each chart is a plain function of plain data (testable
without a browser), and so the page script reads as layout only. Axis domains are fixed where
the data allows (scores in 0..1, the last N seconds) so bars and traces do not rescale and
jitter on every refresh. Discrete axes are sized with ``alt.Step`` (pixels per label): Streamlit
stretches a chart to its container and would otherwise squeeze the bands until labels vanish.
"""
from __future__ import annotations

from typing import Sequence

import altair as alt
import pandas as pd

from capture import protocol as p
from dashboard.buffers import PredictionEvent

UNKNOWN = "unknown"


def label_of(index: int, labels: Sequence[str]) -> str:
    if index == p.UNKNOWN_CLASS:
        return UNKNOWN
    return labels[index] if 0 <= index < len(labels) else f"class {index}"


def display_name(ev: PredictionEvent, labels: Sequence[str]) -> str:
    """What the page calls a prediction: ``idle`` when the board saw no motion (confidence 0),
    ``unknown`` below its threshold, else the label (the live view and "save as take" agree)."""
    if ev.unknown:
        return "idle" if ev.confidence == 0 else UNKNOWN
    return label_of(ev.class_index, labels)


def counts_chart(counts: dict[int, int], labels: Sequence[str]) -> alt.Chart:
    """Predictions per label since the connection started."""
    order = list(labels) + [UNKNOWN]
    totals = {name: 0 for name in order}
    for idx, n in counts.items():
        totals[label_of(idx, labels)] = totals.get(label_of(idx, labels), 0) + n
    df = pd.DataFrame({"label": list(totals), "count": list(totals.values())})
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("count:Q", title="predictions"),
        y=alt.Y("label:N", sort=list(totals), title=None),
        color=alt.Color("label:N", scale=alt.Scale(domain=order), legend=None),
        tooltip=["label", "count"],
    ).properties(height=alt.Step(22))


def confusion_chart(cm: Sequence[Sequence[int]], labels: Sequence[str]) -> alt.LayerChart:
    """Confusion matrix heatmap (rows = true label, columns = predicted), with counts."""
    rows = [{"true": t, "predicted": pr, "n": int(cm[i][j])}
            for i, t in enumerate(labels) for j, pr in enumerate(labels)]
    df = pd.DataFrame(rows)
    top = max(1, int(df["n"].max()) if len(df) else 1)
    base = alt.Chart(df).encode(x=alt.X("predicted:N", sort=list(labels)), y=alt.Y("true:N", sort=list(labels)))
    cells = base.mark_rect().encode(color=alt.Color("n:Q", scale=alt.Scale(scheme="blues", domain=[0, top]), legend=None))
    text = base.mark_text(fontSize=14).encode(
        text="n:Q", color=alt.condition(alt.datum.n > top / 2, alt.value("white"), alt.value("black")))
    return (cells + text).properties(height=alt.Step(44))
