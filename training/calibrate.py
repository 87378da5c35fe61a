"""``gesture calibrate``: choose the post-processor's setting on continuous recordings.

Each stream (capture/streams.py) is replayed once through exactly what the board runs
(training/board_sim.BoardPipeline: the integer resampler and live window, the int8 model in the
TFLM interpreter), keeping every candidate window's scores. The post-processor
(training/postprocess.py) is then evaluated for a grid of settings (threshold, averaging window,
minimum count, suppression) with its fast path, which gives exactly the board's events.

Scoring (stated in every report as ``tolerance``):

* a detection of an event's label from ``before_ms`` before its onset to ``after_ms`` after its
  end (end = onset + ``default_length_ms`` when the recording marked no end) is a **hit**
  (``after_ms`` defaults to the model's window duration: until then a window still holds part
  of the gesture, so a detection there is the gesture's, late, not a false one); the
  first hit gives the **latency** (detection time - onset); later ones are duplicates (reported,
  not counted as false);
* every other detection is a **false activation** (also a wrong label during a gesture);
* **false_activations_per_hour** = false activations / the hours of stream *outside* the events'
  tolerance windows; **false_rejection_rate** = events without a hit / events.

The operating point (:func:`choose`): among the settings missing at most ``max_frr`` (5 %) of the
gestures, the lowest false rejection rate of those reaching ``target_fa_per_hour`` (ties: fewer
false activations, then lower median latency, then the shorter average); when none reaches it,
the fewest false activations. It is written into the
model folder's config.json (``detector``) with calibration.json and calibration.png beside it.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from capture import protocol as p
from capture.errors import DataError
from capture.streams import Stream, read_stream
from training.board_sim import BoardPipeline
from training.model_dir import load_model_dir, update_model_dir
from training.postprocess import DetectorConfig, SweepStream, detector_config, preset, steps, unknown_index
from training.preprocess import PreprocessConfig

CALIBRATION_JSON = "calibration.json"  # both in model_dir.CALIBRATION_FILES
CALIBRATION_PNG = "calibration.png"
BLOCK = 4096  # IMU samples pushed at once


@dataclass(frozen=True)
class Tolerance:
    before_ms: float = 500.0
    after_ms: float = 1500.0
    default_length_ms: float = 2500.0

    def window(self, onset_ms: float, end_ms: float | None) -> tuple[float, float]:
        end = end_ms if end_ms is not None else onset_ms + self.default_length_ms
        return onset_ms - self.before_ms, end + self.after_ms


@dataclass
class Replay:
    """One stream through the board: each candidate window's time and scores (None = idle)."""

    stream: Stream
    times_ms: np.ndarray
    sweep: SweepStream
    records: list[np.ndarray | None] = field(repr=False, default_factory=list)


def replay(cfg: PreprocessConfig, model_bytes: bytes, stream: Stream) -> Replay:
    pipe = BoardPipeline(cfg, model_bytes, stream.rate_hz, imu_channels=stream.channels)
    counts = p.units_to_counts(stream.values)
    times, records = [], []
    for k in range(0, len(counts), BLOCK):
        for r in pipe.push(counts[k:k + BLOCK]):
            times.append(float(stream.t_ms[r.imu_index]))
            records.append(None if r.output_int8 is None else (np.asarray(r.output_int8, np.int16) + 128).astype(np.uint8))
    return Replay(stream, np.asarray(times), SweepStream(records, len(cfg.labels), unknown_index(cfg)), records)


def score(replays: list[Replay], det: DetectorConfig, labels: list[str], tol: Tolerance,
          false_times: list[tuple[int, float, int]] | None = None) -> dict[str, Any]:
    """FA/h, FRR, latency, per label, for one setting over all replays (see the module docstring).
    ``false_times`` collects (replay index, stream time in ms, class) of every false activation."""
    fa = dup = n_events = missed = 0
    latencies: list[float] = []
    per = {lab: {"events": 0, "missed": 0, "false_activations": 0} for lab in labels}
    background_ms = 0.0
    for n_rp, rp in enumerate(replays):
        spans = sorted(((*tol.window(e.onset_ms, e.end_ms), e) for e in rp.stream.events), key=lambda s: s[0])
        dur = rp.stream.duration_s * 1000.0
        covered, last = 0.0, -np.inf  # union length of the tolerance windows inside the stream
        for a, b, _ in sorted(spans, key=lambda s: s[0]):
            a, b = max(a, 0.0, last), min(b, dur)
            covered += max(0.0, b - a)
            last = max(last, b)
        background_ms += max(0.0, dur - covered)
        hit: dict[int, float] = {}
        starts = np.array([a for a, _, _ in spans]) if spans else np.zeros(0)
        reach = max((b - a for a, b, _ in spans), default=0.0)  # spans starting this far back may hold t
        for i, cls, _score in rp.sweep.events(det):
            t = float(rp.times_ms[i])
            lo, hi = int(np.searchsorted(starts, t - reach, "left")), int(np.searchsorted(starts, t, "right"))
            match = [k for k in range(lo, hi) if spans[k][1] >= t and spans[k][2].label == labels[cls]]
            if match:
                k = min(match, key=lambda k: (k in hit, spans[k][2].onset_ms))
                if k in hit:
                    dup += 1
                else:
                    hit[k] = t - spans[k][2].onset_ms
                continue
            fa += 1
            per[labels[cls]]["false_activations"] += 1
            if false_times is not None:
                false_times.append((n_rp, t, cls))
        for k, (_, _, e) in enumerate(spans):
            per.setdefault(e.label, {"events": 0, "missed": 0, "false_activations": 0})
            per[e.label]["events"] += 1
            n_events += 1
            if k in hit:
                latencies.append(hit[k])
            else:
                missed += 1
                per[e.label]["missed"] += 1
    hours = background_ms / 3.6e6
    for row in per.values():
        row["false_rejection_rate"] = row["missed"] / row["events"] if row["events"] else None
        row["false_activations_per_hour"] = row["false_activations"] / hours if hours else None
    lat = np.asarray(latencies)
    return {
        "detector": det.to_dict(),
        "false_activations": fa,
        "false_activations_per_hour": fa / hours if hours else None,
        "false_rejection_rate": missed / n_events if n_events else None,
        "events": n_events, "missed": missed, "duplicates": dup,
        "latency_ms_median": float(np.median(lat)) if len(lat) else None,
        "latency_ms_p90": float(np.percentile(lat, 90)) if len(lat) else None,
        "per_label": per,
    }


def grid(cfg: PreprocessConfig) -> list[DetectorConfig]:
    """The settings ``gesture calibrate`` sweeps (candidate windows at cfg's rate)."""
    thresholds = (102, 128, 153, 170, 187, 204, 217, 230, 242, 248, 252, 254, 255)
    averages = sorted({1, 2, 3, 4, 6, 8, steps(1000, cfg), steps(2000, cfg)} - {0})
    suppressions = sorted({0, steps(500, cfg), steps(1000, cfg), steps(1500, cfg), steps(2500, cfg), steps(5000, cfg)})
    out = []
    for a, t, m, s in itertools.product(averages, thresholds, (1, 2, 3, 5, 8), suppressions):
        if m <= a:
            out.append(DetectorConfig(a, t, m, s))
    return out


def _key(r: dict[str, Any]) -> tuple:
    d = r["detector"]
    return (r["false_rejection_rate"], r["false_activations_per_hour"], r["latency_ms_median"] or 0.0, d["average"],
            -d["threshold"])


def choose(results: list[dict[str, Any]], target: float, max_frr: float = 0.05) -> dict[str, Any]:
    """The operating point. Only settings missing at most ``max_frr`` of the gestures are usable
    (a setting that rejects everything has no false activations, and is useless); among them, the
    lowest FRR of those reaching ``target`` FA/h, else the fewest false activations. With no usable
    setting at all, the lowest FRR."""
    usable = [r for r in results if r["false_rejection_rate"] <= max_frr]
    if not usable:
        return min(results, key=_key)
    ok = [r for r in usable if r["false_activations_per_hour"] <= target]
    if ok:
        return min(ok, key=_key)
    return min(usable, key=lambda r: (r["false_activations_per_hour"],) + _key(r))


def pareto(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Settings no other beats on both FA/h and FRR, by FA/h."""
    pts = sorted(results, key=lambda r: (r["false_activations_per_hour"], r["false_rejection_rate"]))
    front, best = [], np.inf
    for r in pts:
        if r["false_rejection_rate"] < best:
            front.append(r)
            best = r["false_rejection_rate"]
    return front


def plot(results: list[dict[str, Any]], marks: dict[str, dict[str, Any]], target: float) -> bytes:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    x = [r["false_activations_per_hour"] for r in results]
    y = [100 * r["false_rejection_rate"] for r in results]
    ax.scatter(x, y, s=6, color="#bbbbbb", label="swept settings")
    front = pareto(results)
    ax.step([r["false_activations_per_hour"] for r in front], [100 * r["false_rejection_rate"] for r in front],
            where="post", color="#1f77b4", label="trade-off (Pareto front)")
    for (name, r), m in zip(marks.items(), ("o", "s", "^", "D", "*")):
        ax.scatter([r["false_activations_per_hour"]], [100 * r["false_rejection_rate"]], marker=m, s=60, label=name,
                   zorder=3)
    ax.axvline(target, color="#d62728", lw=0.8, ls="--", label=f"target {target:g} FA/h")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0.0)  # FA/h is never negative: no empty mirrored half
    ax.set_xlabel("false activations per hour")
    ax.set_ylabel("false rejection rate (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def default_tolerance(cfg: PreprocessConfig, before_ms: float = 500.0, after_ms: float | None = None) -> Tolerance:
    """The scoring windows: ``after_ms`` defaults to one model window (cfg.window at cfg.model_rate_hz)."""
    return Tolerance(before_ms=before_ms,
                     after_ms=after_ms if after_ms is not None else 1000.0 * cfg.window / cfg.model_rate_hz)


def calibrate(model_dir: str | Path, streams: list[Path], *, target_fa_per_hour: float = 1.0, max_frr: float = 0.05,
              tolerance: Tolerance | None = None, write: bool = True,
              settings: list[DetectorConfig] | None = None) -> dict[str, Any]:
    """Replay ``streams``, sweep, choose; write the setting into ``model_dir`` unless ``write`` is False."""
    model_dir = Path(model_dir)
    cfg, model_bytes, _report = load_model_dir(model_dir)
    tolerance = tolerance or default_tolerance(cfg)
    loaded = [read_stream(s) for s in streams]
    events = sum(len(s.events) for s in loaded)
    unknown = sorted({e.label for s in loaded for e in s.events} - set(cfg.labels))
    if unknown:
        raise DataError(loaded[0].path, f"events with label(s) {unknown} that the model ({cfg.labels}) does not know")
    if cfg.unknown_label and any(e.label == cfg.unknown_label for s in loaded for e in s.events):
        raise DataError(loaded[0].path, f"events labelled '{cfg.unknown_label}' (the no-gesture class): "
                        "mark only gestures; idle time needs no events")
    replays = [replay(cfg, model_bytes, s) for s in loaded]
    labels = list(cfg.labels)
    before = score(replays, detector_config(cfg), labels, tolerance)
    presets = {name: score(replays, preset(name, cfg), labels, tolerance) for name in ("default", "micro_speech", "magic_wand")}
    results = [score(replays, d, labels, tolerance) for d in (settings or grid(cfg))]
    results = [r for r in results if r["false_activations_per_hour"] is not None]
    if not results:
        raise DataError(loaded[0].path, "the streams have no time outside their events; record idle time too")
    if events == 0:
        # only negatives: nothing to reject, so the sweep would pick the most sensitive setting
        raise DataError(loaded[0].path, "no events marked in any stream: calibration needs gestures to trade "
                        "false activations against missed gestures (add a stream with prompted gestures)")
    chosen = choose(results, target_fa_per_hour, max_frr)
    det = DetectorConfig.from_dict(chosen["detector"])
    hours = sum(s.duration_s for s in loaded) / 3600.0
    out = {
        "model_dir": str(model_dir),
        "streams": [str(s.path) for s in loaded],
        "hours": hours,
        "events": events,
        "candidate_rate_hz": cfg.model_rate_hz / cfg.stride,
        "tolerance": {"before_ms": tolerance.before_ms, "after_ms": tolerance.after_ms,
                      "default_length_ms": tolerance.default_length_ms,
                      "rule": "a detection of the event's label from before_ms before its onset to after_ms after its end "
                              "(onset + default_length_ms when unmarked) is a hit; every other detection is a false activation"},
        "target_fa_per_hour": target_fa_per_hour,
        "max_frr": max_frr,
        "target_met": chosen["false_activations_per_hour"] <= target_fa_per_hour and chosen["false_rejection_rate"] <= max_frr,
        "false_activations_per_hour": chosen["false_activations_per_hour"],
        "false_rejection_rate": chosen["false_rejection_rate"],
        "chosen": chosen,
        "chosen_description": det.describe(cfg),
        "before": before,
        "presets": presets,
        "swept": len(results),
        "curve": [{"detector": r["detector"], "false_activations_per_hour": r["false_activations_per_hour"],
                   "false_rejection_rate": r["false_rejection_rate"], "latency_ms_median": r["latency_ms_median"]}
                  for r in pareto(results)],
    }
    if write:
        png = plot(results, {"before": before, "micro_speech": presets["micro_speech"],
                             "magic_wand": presets["magic_wand"], "calibrated": chosen}, target_fa_per_hour)
        write_calibration(model_dir, cfg, det, out, png)
    return out


def write_calibration(model_dir: Path, cfg: PreprocessConfig, det: DetectorConfig, result: dict[str, Any], png: bytes) -> None:
    """config.json with the chosen ``detector``, calibration.json and calibration.png, written with
    the model folder as a whole (report.json's files_sha256 follows the new config.json)."""
    from dataclasses import replace

    update_model_dir(model_dir, cfg=replace(cfg, detector=det.to_dict()),
                     extra={CALIBRATION_PNG: png, CALIBRATION_JSON: (json.dumps(result, indent=1) + "\n").encode()})


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _fah(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}"


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f} ms"


def summary(result: dict[str, Any]) -> str:
    """The text `gesture calibrate` prints."""
    tol = result["tolerance"]
    lines = [f"{len(result['streams'])} stream(s), {result['hours']:.2f} h, {result['events']} events; "
             f"hit = the event's label from {tol['before_ms']:.0f} ms before its onset to {tol['after_ms']:.0f} ms after "
             f"its end; {result['swept']} settings swept",
             f"{'setting':<14} {'FA/h':>8} {'FRR':>8} {'latency (median)':>17}"]
    rows = [("before", result["before"]), *result["presets"].items(), ("calibrated", result["chosen"])]
    for name, r in rows:
        lines.append(f"{name:<14} {_fah(r['false_activations_per_hour']):>8} {_pct(r['false_rejection_rate']):>8} "
                     f"{_ms(r['latency_ms_median']):>17}")
    lines.append(f"calibrated: {result['chosen_description']}"
                 + ("" if result["target_met"] else f" (no setting reaches {result['target_fa_per_hour']:g} FA/h at FRR <= "
                                                   f"{100 * result['max_frr']:g} %: the fewest false activations there was chosen)"))
    per = result["chosen"]["per_label"]
    lines.append("per label: " + ", ".join(
        f"{k} FRR {_pct(v['false_rejection_rate'])} FA/h {_fah(v['false_activations_per_hour'])}" for k, v in per.items()
        if v["events"] or v["false_activations"]))
    return "\n".join(lines)
