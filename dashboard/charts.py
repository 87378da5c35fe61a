"""The dashboard's charts, as Altair specs (Streamlit renders them with Vega-Lite).

Kept apart from the page script so each chart is a plain function of plain data (testable
without a browser), and so the page script reads as layout only. Axis domains are fixed where
the data allows (scores in 0..1, the last N seconds) so bars and traces do not rescale and
jitter on every refresh. Discrete axes are sized with ``alt.Step`` (pixels per label): Streamlit
stretches a chart to its container and would otherwise squeeze the bands until labels vanish.
"""
from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

from capture import protocol as p
from dashboard.buffers import PredictionEvent, RawWindow

UNKNOWN = "unknown"


def label_of(index: int, labels: Sequence[str]) -> str:
    if index == p.UNKNOWN_CLASS:
        return UNKNOWN
    return labels[index] if 0 <= index < len(labels) else f"class {index}"


def timeline_chart(events: Sequence[PredictionEvent], labels: Sequence[str], now: float, span_s: float = 30.0) -> alt.Chart:
    """Recent predictions: one tick per prediction at its age, per label, opacity = confidence."""
    recent = [e for e in events if now - e.received <= span_s]
    order = list(labels) + [UNKNOWN]
    df = pd.DataFrame({"age_s": [e.received - now for e in recent],
                       "label": [label_of(e.class_index, labels) for e in recent],
                       "confidence": [e.confidence for e in recent]})
    return alt.Chart(df).mark_tick(thickness=3).encode(
        x=alt.X("age_s:Q", scale=alt.Scale(domain=[-span_s, 0]), title="seconds ago"),
        y=alt.Y("label:N", sort=order, scale=alt.Scale(domain=order), title=None),
        color=alt.Color("label:N", scale=alt.Scale(domain=order), legend=None),
        opacity=alt.Opacity("confidence:Q", scale=alt.Scale(domain=[0, 1], range=[0.15, 1]), legend=None),
    ).properties(height=alt.Step(22))


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


def raw_chart(raw: RawWindow, max_points: int = 300) -> alt.Chart:
    """Accelerometer trace in g over the buffered seconds (decimated to ``max_points`` per axis)."""
    n = raw.n
    step = max(1, -(-n // max_points))
    units = p.counts_to_units(raw.counts[::step]) if n else np.zeros((0, 3))
    t = (raw.device_us[::step] - (raw.device_us[-1] if n else 0)) / 1e6
    axes = [c for c in raw.channels[:3]] or ["ax", "ay", "az"]
    df = pd.DataFrame({"t_s": np.tile(t, len(axes)), "axis": np.repeat(axes, len(t)),
                       "g": units[:, :len(axes)].T.reshape(-1) if n else []})
    return alt.Chart(df).mark_line(strokeWidth=1.2).encode(
        x=alt.X("t_s:Q", title="seconds (device time)"),
        y=alt.Y("g:Q", title="acceleration (g)"),
        color=alt.Color("axis:N", legend=alt.Legend(orient="top", title=None)),
    ).properties(height=200)


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
