// gesture-kit's live view engine: listens to the live feed and paints every prediction.
//
// The same code runs in a dedicated worker (live_worker.js, the normal case) or, where a browser
// cannot hand a canvas to a worker, on the page itself (live.js). In the worker it owns the feed's
// EventSource and draws on OffscreenCanvases with the worker's own requestAnimationFrame, so neither
// receiving nor painting waits for the page's main thread, which Streamlit keeps busy re-rendering
// its fragments (the benchmark measured that wait as most of the latency tail). Nothing here
// touches the DOM.
//
// Each prediction's host receive time (rx, the host's wall clock, which Date.now() shares on this
// machine) is kept with Date.now() when the event arrived, at the end of the animation frame that
// drew it, and in the first task after that frame (its canvases committed): reported as
// [seq, index, rx_ms, arrived_ms, drawn_ms, painted_ms] rows.
"use strict";

// Streamlit's categorical colours, which its Altair theme gives the page's counts chart: a label
// has the same colour in the live view and in the chart beside it
const GK_PALETTE = ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700", "#ffd16a",
                    "#6d3fc0", "#d5dae5"];
const GK_UNKNOWN_CLASS = 255;

class LiveEngine {
  static TIMELINE_S = 30;
  static RAW_S = 10;
  static RAW_CAP = 16384;  // samples held: 10 s at up to 1.6 kHz
  static CALM_MS = 50;     // raw samples and the scrolling timeline need about 20 frames/s, not 60

  // CSS heights of the canvases for n labels (the page sizes the elements, the engine their pixels)
  static heights(n) {
    return {now: 120, bars: Math.max(1, n) * 24, timeline: (n + 1) * 18 + 20, raw: 180};
  }

  constructor(canvases, report) {
    this.canvases = canvases;  // {now, bars, timeline, raw}: HTMLCanvasElement or OffscreenCanvas
    this.report = report;      // (message) => void: paint rows and state for the page
    this.sizes = {};           // name -> {w, h} CSS pixels
    this.ratio = 1;
    this.labels = [];
    this.colors = {text: "#31333f", muted: "rgba(49,51,63,0.6)", grid: "rgba(49,51,63,0.12)", primary: "#ff4b4b"};
    this.font = "sans-serif";
    this.feedUrl = null;
    this.source = null;
    this.state = "idle";
    this.latest = null;
    this.lastIndex = -1;
    this.recent = [];   // predictions of the last TIMELINE_S
    this.pending = [];  // taken, not yet painted
    this.painted = 0;
    this.received = 0;
    this.latency = [];  // the last 200 notification -> painted (ms), for the figures under the view
    this.dirtyBars = true;
    this.scheduled = false;
    this.soon = null;
    this.lastFrame = 0;
    this.lastState = 0;
    const C = LiveEngine.RAW_CAP;
    this.raw = {t: new Float64Array(C), x: new Float32Array(C), y: new Float32Array(C), z: new Float32Array(C),
                start: 0, n: 0, lastT: -Infinity};
    this.raf = typeof self.requestAnimationFrame === "function"
      ? (f) => self.requestAnimationFrame(f) : (f) => setTimeout(f, 16);
  }

  // ------------------------------------------------------------------ configuration (from the page)
  configure(cfg) {
    if (cfg.sizes) { this.sizes = cfg.sizes; this.ratio = cfg.ratio || 1; this.dirtyBars = true; }
    if (cfg.colors) { Object.assign(this.colors, cfg.colors); this.dirtyBars = true; }
    if (cfg.font) this.font = cfg.font;
    if (cfg.labels) this.setLabels(cfg.labels);
    if (cfg.feedUrl) this.open(cfg.feedUrl);
    this.schedule();
  }

  setLabels(next) {
    if (next.length === this.labels.length && next.every((l, i) => l === this.labels[i])) return;
    this.labels = next.map(String);
    this.dirtyBars = true;
    this.report({type: "labels", labels: this.labels});
  }

  open(url) {
    if (url === this.feedUrl && this.source && this.source.readyState !== 2) return;
    if (url !== this.feedUrl) {  // another server process (a restart): its predictions count from 0 again
      this.lastIndex = -1; this.latest = null; this.recent = []; this.pending = []; this.clearRaw();
    }
    if (this.source) this.source.close();
    this.feedUrl = url;
    this.source = new EventSource(url);
    this.source.onopen = () => this.setState("connected");
    this.source.onerror = () => this.setState(this.source.readyState === 2 ? "closed" : "reconnecting");
    this.source.onmessage = (e) => this.take(JSON.parse(e.data), Date.now());
    this.setState("connecting");
  }

  setState(s) {
    this.state = s;
    this.sendState(true);
    this.schedule();
  }

  // ------------------------------------------------------------------ events
  take(ev, arrived) {
    switch (ev.type) {
      case "prediction":
        if (ev.i <= this.lastIndex) return;  // already held (the snapshot a reconnecting page gets)
        this.lastIndex = ev.i;
        ev.arrived = arrived;
        this.latest = ev;
        this.recent.push(ev);
        if (!ev.snap) { this.received++; this.pending.push(ev); }  // a snapshot is old news: not timed
        if (this.pending.length > 2000) this.pending.splice(0, this.pending.length - 2000);
        this.dirtyBars = true;
        this.schedule();
        return;
      case "imu": this.addRaw(ev); this.scheduleSoon(); return;
      case "reset": this.clearRaw(); break;
      case "hello": if (Array.isArray(ev.labels) && ev.labels.length) this.setLabels(ev.labels); break;
      default: return;
    }
    this.schedule();
  }

  clearRaw() { this.raw.start = 0; this.raw.n = 0; this.raw.lastT = -Infinity; }

  addRaw(ev) {
    const r = this.raw, C = LiveEngine.RAW_CAP;
    for (let k = 0; k < ev.g.length; k++) {
      const t = ev.t + k * ev.dt;
      if (t <= r.lastT) continue;  // already held (snapshot overlap)
      const j = (r.start + r.n) % C;
      r.t[j] = t; r.x[j] = ev.g[k][0]; r.y[j] = ev.g[k][1]; r.z[j] = ev.g[k][2];
      if (r.n < C) r.n++; else r.start = (r.start + 1) % C;
      r.lastT = t;
    }
    while (r.n && r.t[r.start] < r.lastT - LiveEngine.RAW_S) { r.start = (r.start + 1) % C; r.n--; }
  }

  // ------------------------------------------------------------------ frames
  schedule() {  // a prediction is drawn on the very next frame
    if (this.soon !== null) { clearTimeout(this.soon); this.soon = null; }
    if (!this.scheduled) { this.scheduled = true; this.raf(() => this.frame()); }
  }

  scheduleSoon() {
    if (this.scheduled || this.soon !== null) return;
    const wait = Math.max(0, LiveEngine.CALM_MS - (performance.now() - this.lastFrame));
    this.soon = setTimeout(() => { this.soon = null; this.schedule(); }, wait);
  }

  frame() {
    this.scheduled = false;
    this.lastFrame = performance.now();
    const now = Date.now();
    this.drawNow();
    if (this.dirtyBars) { this.drawBars(); this.dirtyBars = false; }
    this.drawTimeline(now);
    this.drawRaw();
    if (this.pending.length) {
      const drawn = Date.now();
      const batch = this.pending;
      this.pending = [];
      // the first task after this frame: the canvases it drew are committed
      setTimeout(() => {
        const painted = Date.now();
        const rows = batch.map((p) => [p.seq, p.i, p.rx * 1000, p.arrived, drawn, painted]);
        for (const r of rows) this.latency.push(r[5] - r[2]);
        if (this.latency.length > 200) this.latency.splice(0, this.latency.length - 200);
        this.painted += rows.length;
        this.report({type: "paints", rows, received: this.received, painted: this.painted});
        this.sendState(false);
      }, 0);
    } else {
      this.sendState(false);
    }
    if (this.state === "connected" && this.recent.length) this.scheduleSoon();  // the timeline scrolls
  }

  sendState(force) {
    const now = performance.now();
    if (!force && now - this.lastState < 250) return;
    this.lastState = now;
    const lat = this.latency.slice().sort((a, b) => a - b);
    const q = (f) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))];
    const p = this.latest;
    this.report({type: "state", state: this.state, painted: this.painted, received: this.received, samples: this.raw.n,
                 latest: p && {name: p.name, seq: p.seq, conf: p.conf, rx: p.rx},
                 latency: lat.length ? {p50: q(0.5), p95: q(0.95), n: lat.length} : null});
  }

  // ------------------------------------------------------------------ drawing
  ctx(name) {  // the canvas' backing store matched to its CSS size (sharp on any pixel ratio), cleared
    const canvas = this.canvases[name];
    const size = this.sizes[name];
    if (!canvas || !size || size.w <= 0) return null;
    const W = Math.round(size.w * this.ratio), H = Math.round(size.h * this.ratio);
    if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.clearRect(0, 0, size.w, size.h);
    ctx.font = `13px ${this.font}`;
    ctx.textBaseline = "middle";
    return [ctx, size.w, size.h];
  }

  labelOf(cls) {
    if (cls === GK_UNKNOWN_CLASS) return "unknown";
    return cls >= 0 && cls < this.labels.length ? this.labels[cls] : `class ${cls}`;
  }

  drawNow() {
    const got = this.ctx("now");
    if (!got) return;
    const [ctx, w] = got;
    const c = this.colors, p = this.latest;
    ctx.textAlign = "left";
    ctx.fillStyle = c.muted;
    ctx.fillText("Current gesture", 0, 10);
    ctx.fillStyle = c.text;
    ctx.font = `36px ${this.font}`;
    ctx.fillText(p ? p.name : "waiting …", 0, 44, w);
    ctx.font = `13px ${this.font}`;
    ctx.fillStyle = c.grid;
    ctx.fillRect(0, 74, w, 8);
    if (!p) {
      ctx.fillStyle = c.muted;
      ctx.fillText("no prediction yet", 0, 96);
      return;
    }
    ctx.fillStyle = c.primary;
    ctx.fillRect(0, 74, w * Math.min(1, Math.max(0, p.conf)), 8);
    ctx.fillStyle = c.muted;
    ctx.fillText(`confidence ${Math.round(p.conf * 100)}%`, 0, 94);
    ctx.fillText(`seq ${p.seq} · received t=${p.rx.toFixed(3)}`, 0, 112);
  }

  drawBars() {
    const got = this.ctx("bars");
    if (!got || !this.latest) return;
    const [ctx, w] = got;
    const n = Math.max(this.labels.length, this.latest.scores.length);
    const rowH = 24, textW = Math.min(160, w * 0.4);
    ctx.textAlign = "left";
    for (let i = 0; i < n; i++) {
      const score = this.latest.scores[i] || 0;
      const y = i * rowH + rowH / 2;
      ctx.fillStyle = this.colors.text;
      ctx.fillText(`${this.labelOf(i)} · ${Math.round(score * 100)}%`, 0, y, textW - 6);
      ctx.fillStyle = this.colors.grid;
      ctx.fillRect(textW, y - 5, w - textW, 10);
      ctx.fillStyle = GK_PALETTE[i % GK_PALETTE.length];
      ctx.fillRect(textW, y - 5, (w - textW) * Math.min(1, score), 10);
    }
  }

  drawTimeline(now) {
    const T = LiveEngine.TIMELINE_S;
    const cutoff = now / 1000 - T - 1;
    let drop = 0;
    while (drop < this.recent.length && this.recent[drop].rx < cutoff) drop++;
    if (drop) this.recent.splice(0, drop);
    const got = this.ctx("timeline");
    if (!got) return;
    const [ctx, w, h] = got;
    const c = this.colors;
    const rows = [...this.labels, "unknown"];
    const rowH = 18, top = 2, axisH = 18;
    const textW = Math.min(120, w * 0.25), plotW = w - textW - 4;
    ctx.textAlign = "right";
    rows.forEach((name, r) => {
      ctx.fillStyle = c.muted;
      ctx.fillText(name, textW - 6, top + r * rowH + rowH / 2, textW - 8);
      ctx.fillStyle = c.grid;
      ctx.fillRect(textW, top + (r + 1) * rowH - 0.5, plotW, 1);
    });
    ctx.textAlign = "center";
    ctx.fillStyle = c.muted;
    for (let s = 0; s <= T; s += 5) {
      const x = textW + plotW * (1 - s / T);
      ctx.fillText(s ? `-${s} s` : "now", Math.min(w - 14, Math.max(textW + 14, x)), h - axisH / 2);
    }
    for (const p of this.recent) {
      const age = now / 1000 - p.rx;
      if (age > T) continue;
      const r = p.cls === GK_UNKNOWN_CLASS ? this.labels.length : Math.min(p.cls, this.labels.length);
      const x = textW + plotW * (1 - Math.max(0, age) / T);
      ctx.globalAlpha = 0.15 + 0.85 * Math.min(1, Math.max(0, p.conf));
      ctx.fillStyle = GK_PALETTE[r % GK_PALETTE.length];
      ctx.fillRect(x - 1.5, top + r * rowH + 3, 3, rowH - 6);
    }
    ctx.globalAlpha = 1;
  }

  drawRaw() {
    const got = this.ctx("raw");
    if (!got) return;
    const [ctx, w, h] = got;
    const r = this.raw, c = this.colors, C = LiveEngine.RAW_CAP, S = LiveEngine.RAW_S;
    const left = 36, plotW = w - left - 4, plotH = h - 8;
    if (!r.n) {
      ctx.fillStyle = c.muted;
      ctx.textAlign = "left";
      ctx.fillText("no raw IMU samples (the classifier sketch sends them when built with raw IMU)", left, h / 2);
      return;
    }
    let peak = 1.2;
    for (let k = 0; k < r.n; k++) {
      const j = (r.start + k) % C;
      peak = Math.max(peak, Math.abs(r.x[j]), Math.abs(r.y[j]), Math.abs(r.z[j]));
    }
    const span = Math.ceil(peak * 2) / 2;  // in 0.5 g steps, so the scale does not creep every frame
    const yOf = (g) => 4 + plotH * (0.5 - g / (2 * span));
    const xOf = (t) => left + plotW * (1 - (r.lastT - t) / S);
    ctx.textAlign = "right";
    for (const g of [-span, 0, span]) {
      ctx.fillStyle = c.grid;
      ctx.fillRect(left, Math.round(yOf(g)), plotW, 1);
      ctx.fillStyle = c.muted;
      ctx.fillText(g.toFixed(1), left - 4, Math.min(h - 8, Math.max(8, yOf(g))));
    }
    const step = Math.max(1, Math.floor(r.n / (2 * plotW)));  // about 2 points per pixel at most
    [r.x, r.y, r.z].forEach((v, axis) => {
      ctx.strokeStyle = GK_PALETTE[axis];
      ctx.lineWidth = 1.2;
      ctx.beginPath();
      for (let k = 0; k < r.n; k += step) {
        const j = (r.start + k) % C;
        if (k === 0) ctx.moveTo(xOf(r.t[j]), yOf(v[j])); else ctx.lineTo(xOf(r.t[j]), yOf(v[j]));
      }
      ctx.stroke();
    });
    ctx.textAlign = "left";
    ["ax", "ay", "az"].forEach((name, axis) => {
      ctx.fillStyle = GK_PALETTE[axis];
      ctx.fillText(name, left + 6 + axis * 30, 12);
    });
  }
}

self.LiveEngine = LiveEngine;
