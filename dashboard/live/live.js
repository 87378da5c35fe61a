// gesture-kit's live view: paints every prediction the dashboard's live feed pushes.
//
// Streamlit (components v1) serves this page in an iframe and posts it "streamlit:render" messages
// with the arguments of dashboard/live_view.py: where the feed is ({port, path}) and the labels.
// The feed (dashboard/feed.py) is a Server-Sent Events stream from the link process: each event is
// stored as it arrives and drawn on the next animation frame, so no prediction waits for a page
// rerun and none is skipped (the timeline gives each its own tick; the bars show the newest).
//
// For the benchmark and the figures under the view, each prediction's host receive time (rx, the
// host's wall clock, which Date.now() shares on this machine) is compared with Date.now() after the
// frame that drew it: window.gkLive.paints holds [seq, index, rx_ms, arrived_ms, drawn_ms, painted_ms]
// where arrived is when the page got the event, drawn the end of the requestAnimationFrame callback
// that drew it and painted the first task after that frame (its rendering update done).
"use strict";
(() => {
  // Streamlit's categorical colours, which its Altair theme gives the page's counts chart: a label
  // has the same colour in the live view and in the chart below it
  const PALETTE = ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700", "#ffd16a",
                   "#6d3fc0", "#d5dae5"];
  const AXES = PALETTE.slice(0, 3);
  const TIMELINE_S = 30;
  const RAW_S = 10;
  const RAW_CAP = 16384;   // samples held: 10 s at up to 1.6 kHz
  const PAINTS_KEEP = 20000;  // paint records held (about 25 min at 13/s), oldest dropped first
  const UNKNOWN = "unknown";

  // what a test or the benchmark reads: paint records, counts, the feed's state, raw samples held
  const live = window.gkLive = {paints: [], received: 0, painted: 0, feed: null, state: "idle", samples: 0};
  const $ = (id) => document.getElementById(id);
  const el = {current: $("gk-current"), confBar: $("gk-conf-bar"), conf: $("gk-conf"), seq: $("gk-seq"),
              bars: $("gk-bars"), timeline: $("gk-timeline"), raw: $("gk-raw"), status: $("gk-status")};

  let labels = [];
  let feedUrl = null;
  let source = null;
  let latest = null;           // the newest prediction
  let lastIndex = -1;          // predictions at or below this index were already taken
  let recent = [];             // predictions of the last TIMELINE_S (for the timeline)
  let pending = [];            // taken but not yet painted
  let barsDirty = true;
  let scheduled = false;
  let lastHeight = 0;
  let heightDirty = true;      // the view's height may have changed (labels, width, status line)
  let lastFrame = 0;           // performance.now() of the last frame drawn
  let soon = null;             // the timer of a non-urgent frame
  let fontFamily = "sans-serif";
  let colors = {text: "#31333f", muted: "rgba(49,51,63,0.6)", grid: "rgba(49,51,63,0.12)", bg: "#ffffff"};
  const raw = {t: new Float64Array(RAW_CAP), x: new Float32Array(RAW_CAP), y: new Float32Array(RAW_CAP),
               z: new Float32Array(RAW_CAP), start: 0, n: 0, lastT: -Infinity};

  // ------------------------------------------------------------------ Streamlit's component protocol
  const post = (type, data) => window.parent.postMessage(Object.assign({isStreamlitMessage: true, type}, data), "*");

  window.addEventListener("message", (e) => {
    const msg = e.data;
    if (!msg || msg.type !== "streamlit:render") return;
    applyTheme(msg.theme);
    const args = msg.args || {};
    if (Array.isArray(args.labels)) setLabels(args.labels);
    if (args.feed) openFeed(args.feed);
    fitHeight();
  });

  function applyTheme(theme) {
    if (!theme) return;
    const root = document.documentElement.style;
    if (theme.textColor) {
      root.setProperty("--text", theme.textColor);
      colors.text = theme.textColor;
      colors.muted = withAlpha(theme.textColor, 0.6);
      colors.grid = withAlpha(theme.textColor, 0.12);
      root.setProperty("--muted", colors.muted);
      root.setProperty("--track", withAlpha(theme.textColor, 0.1));
    }
    if (theme.backgroundColor) { root.setProperty("--bg", theme.backgroundColor); colors.bg = theme.backgroundColor; }
    if (theme.primaryColor) root.setProperty("--primary", theme.primaryColor);
    if (theme.font) root.setProperty("--font", theme.font);
    fontFamily = getComputedStyle(document.body).fontFamily || fontFamily;
    barsDirty = true;
    schedule();
  }

  function withAlpha(color, a) {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color || "");
    return m ? `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${a})` : color;
  }

  function fitHeight() {
    const h = Math.ceil(document.documentElement.scrollHeight);
    if (h !== lastHeight) { lastHeight = h; post("streamlit:setFrameHeight", {height: h}); }
  }

  // ------------------------------------------------------------------ the feed
  function setLabels(next) {
    if (next.length === labels.length && next.every((l, i) => l === labels[i])) return;
    labels = next.map(String);
    barsDirty = true;
    heightDirty = true;
    schedule();
  }

  function openFeed(feed) {
    const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
    const url = `${location.protocol}//${host}:${feed.port}${feed.path}`;
    if (url === feedUrl && source && source.readyState !== EventSource.CLOSED) return;
    if (url !== feedUrl) {  // another server process (a restart): its predictions count from 0 again
      lastIndex = -1; latest = null; recent = []; pending = []; clearRaw();
    }
    if (source) source.close();
    feedUrl = url;
    live.feed = `${location.hostname}:${feed.port}`;
    source = new EventSource(url);
    source.onopen = () => setState("connected");
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
    source.onmessage = (e) => take(JSON.parse(e.data), Date.now());
    setState("connecting");
  }

  function take(ev, arrived) {
    switch (ev.type) {
      case "prediction":
        if (ev.i <= lastIndex) return;  // already held (the snapshot a reconnecting page gets)
        lastIndex = ev.i;
        ev.arrived = arrived;
        latest = ev;
        recent.push(ev);
        if (!ev.snap) { live.received++; pending.push(ev); }  // a snapshot is old news: not a latency
        if (pending.length > 2000) pending.splice(0, pending.length - 2000);  // a hidden page paints nothing
        barsDirty = true;
        break;
      case "imu": addRaw(ev); scheduleSoon(); return;
      case "reset": clearRaw(); break;
      case "hello": if (Array.isArray(ev.labels) && ev.labels.length) setLabels(ev.labels); break;
      default: return;
    }
    schedule();
  }

  function setState(s) {
    live.state = s;
    schedule();
  }

  // ------------------------------------------------------------------ raw samples (a ring)
  function clearRaw() { raw.start = 0; raw.n = 0; raw.lastT = -Infinity; live.samples = 0; }

  function addRaw(ev) {
    for (let k = 0; k < ev.g.length; k++) {
      const t = ev.t + k * ev.dt;
      if (t <= raw.lastT) continue;  // already held (snapshot overlap)
      const j = (raw.start + raw.n) % RAW_CAP;
      raw.t[j] = t; raw.x[j] = ev.g[k][0]; raw.y[j] = ev.g[k][1]; raw.z[j] = ev.g[k][2];
      if (raw.n < RAW_CAP) raw.n++; else raw.start = (raw.start + 1) % RAW_CAP;
      raw.lastT = t;
    }
    while (raw.n && raw.t[raw.start] < raw.lastT - RAW_S) { raw.start = (raw.start + 1) % RAW_CAP; raw.n--; }
    live.samples = raw.n;
  }

  // ------------------------------------------------------------------ painting
  // A prediction is drawn on the very next frame; raw samples and the scrolling timeline only need
  // about 20 frames/s, which leaves the machine's cores to the link and the browser's own work.
  const CALM_MS = 50;

  function schedule() {
    if (soon !== null) { clearTimeout(soon); soon = null; }
    if (!scheduled) { scheduled = true; requestAnimationFrame(frame); }
  }

  function scheduleSoon() {
    if (scheduled || soon !== null) return;
    soon = setTimeout(() => { soon = null; schedule(); }, Math.max(0, CALM_MS - (performance.now() - lastFrame)));
  }

  function frame() {
    scheduled = false;
    lastFrame = performance.now();
    const now = Date.now();
    drawCurrent();
    if (barsDirty) { drawBars(); barsDirty = false; }
    drawTimeline(now);
    drawRaw();
    drawStatus(now);
    if (heightDirty) { heightDirty = false; fitHeight(); }  // not every frame: reading the height forces a layout
    if (pending.length) {
      const drawn = Date.now();
      const batch = pending;
      pending = [];
      // the first task after this frame: its rendering update (the paint of what was just drawn) is done
      setTimeout(() => {
        const painted = Date.now();
        for (const p of batch) live.paints.push([p.seq, p.i, p.rx * 1000, p.arrived, drawn, painted]);
        live.painted += batch.length;
        if (live.paints.length > 2 * PAINTS_KEEP) live.paints.splice(0, live.paints.length - PAINTS_KEEP);
      }, 0);
    }
    if (live.state === "connected" && recent.length) scheduleSoon();  // the timeline scrolls with time
  }

  function drawCurrent() {
    if (!latest) return;
    el.current.textContent = latest.name;
    el.current.dataset.seq = latest.seq;
    el.confBar.style.width = `${Math.round(Math.min(1, latest.conf) * 100)}%`;
    el.conf.textContent = `confidence ${Math.round(latest.conf * 100)}%`;
    el.seq.textContent = `seq ${latest.seq} · received t=${latest.rx.toFixed(3)}`;
  }

  function sized(canvas) {  // match the backing store to the CSS size (sharp on any pixel ratio), then clear
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = `13px ${fontFamily}`;
    ctx.textBaseline = "middle";
    return [ctx, w, h];
  }

  function labelOf(cls) {
    if (cls === 255) return UNKNOWN;
    return cls >= 0 && cls < labels.length ? labels[cls] : `class ${cls}`;
  }

  function drawBars() {
    const n = Math.max(labels.length, latest ? latest.scores.length : 0);
    const rowH = 24;
    const height = `${Math.max(1, n) * rowH}px`;
    if (el.bars.style.height !== height) { el.bars.style.height = height; heightDirty = true; }
    const [ctx, w] = sized(el.bars);
    if (!latest) return;
    const textW = Math.min(160, w * 0.4);
    for (let i = 0; i < n; i++) {
      const score = latest.scores[i] || 0;
      const y = i * rowH + rowH / 2;
      ctx.fillStyle = colors.text;
      ctx.textAlign = "left";
      ctx.fillText(`${labelOf(i)} · ${Math.round(score * 100)}%`, 0, y, textW - 6);
      ctx.fillStyle = colors.grid;
      ctx.fillRect(textW, y - 5, w - textW, 10);
      ctx.fillStyle = PALETTE[i % PALETTE.length];
      ctx.fillRect(textW, y - 5, (w - textW) * Math.min(1, score), 10);
    }
  }

  function drawTimeline(now) {
    const cutoff = now / 1000 - TIMELINE_S - 1;
    let drop = 0;
    while (drop < recent.length && recent[drop].rx < cutoff) drop++;
    if (drop) recent.splice(0, drop);
    const rows = [...labels, UNKNOWN];
    const rowH = 18;
    const top = 2, axisH = 16;
    const height = `${rows.length * rowH + top + axisH}px`;
    if (el.timeline.style.height !== height) { el.timeline.style.height = height; heightDirty = true; }
    const [ctx, w, h] = sized(el.timeline);
    const textW = Math.min(120, w * 0.25);
    const plotW = w - textW - 4;
    ctx.textAlign = "right";
    rows.forEach((name, r) => {
      ctx.fillStyle = colors.muted;
      ctx.fillText(name, textW - 6, top + r * rowH + rowH / 2, textW - 8);
      ctx.fillStyle = colors.grid;
      ctx.fillRect(textW, top + (r + 1) * rowH - 0.5, plotW, 1);
    });
    ctx.textAlign = "center";
    ctx.fillStyle = colors.muted;
    for (let s = 0; s <= TIMELINE_S; s += 5) {
      const x = textW + plotW * (1 - s / TIMELINE_S);
      ctx.fillText(s ? `-${s} s` : "now", Math.min(w - 14, Math.max(textW + 14, x)), h - axisH / 2);
    }
    for (const p of recent) {
      const age = now / 1000 - p.rx;
      if (age > TIMELINE_S) continue;
      const r = p.cls === 255 ? labels.length : Math.min(p.cls, labels.length);
      const x = textW + plotW * (1 - Math.max(0, age) / TIMELINE_S);
      ctx.globalAlpha = 0.15 + 0.85 * Math.min(1, Math.max(0, p.conf));
      ctx.fillStyle = PALETTE[r % PALETTE.length];
      ctx.fillRect(x - 1.5, top + r * rowH + 3, 3, rowH - 6);
    }
    ctx.globalAlpha = 1;
  }

  function drawRaw() {
    const [ctx, w, h] = sized(el.raw);
    const left = 36, bottom = 4, plotW = w - left - 4, plotH = h - bottom - 4;
    if (!raw.n) {
      ctx.fillStyle = colors.muted;
      ctx.textAlign = "left";
      ctx.fillText("no raw IMU samples (the classifier sketch sends them when built with raw IMU)", left, h / 2);
      return;
    }
    let peak = 1.2;
    for (let k = 0; k < raw.n; k++) {
      const j = (raw.start + k) % RAW_CAP;
      peak = Math.max(peak, Math.abs(raw.x[j]), Math.abs(raw.y[j]), Math.abs(raw.z[j]));
    }
    const span = Math.ceil(peak * 2) / 2;  // in 0.5 g steps, so the scale does not creep every frame
    const yOf = (g) => 4 + plotH * (0.5 - g / (2 * span));
    const xOf = (t) => left + plotW * (1 - (raw.lastT - t) / RAW_S);
    ctx.textAlign = "right";
    for (const g of [-span, 0, span]) {
      ctx.fillStyle = colors.grid;
      ctx.fillRect(left, Math.round(yOf(g)), plotW, 1);
      ctx.fillStyle = colors.muted;
      ctx.fillText(g.toFixed(1), left - 4, Math.min(h - 8, Math.max(8, yOf(g))));
    }
    const step = Math.max(1, Math.floor(raw.n / (2 * plotW)));  // about 2 points per pixel at most
    [raw.x, raw.y, raw.z].forEach((v, axis) => {
      ctx.strokeStyle = AXES[axis];
      ctx.lineWidth = 1.2;
      ctx.beginPath();
      for (let k = 0; k < raw.n; k += step) {
        const j = (raw.start + k) % RAW_CAP;
        if (k === 0) ctx.moveTo(xOf(raw.t[j]), yOf(v[j])); else ctx.lineTo(xOf(raw.t[j]), yOf(v[j]));
      }
      ctx.stroke();
    });
    ctx.textAlign = "left";
    ["ax", "ay", "az"].forEach((name, axis) => {
      ctx.fillStyle = AXES[axis];
      ctx.fillText(name, left + 6 + axis * 30, 12);
    });
  }

  let lastStatus = 0;
  function drawStatus(now) {
    if (now - lastStatus < 500) return;
    lastStatus = now;
    let text;
    if (live.state === "connected") {
      const lat = live.paints.slice(-200).map((r) => r[5] - r[2]).sort((a, b) => a - b);
      const q = (f) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))].toFixed(0);
      text = `live · ${live.painted} predictions painted` +
        (lat.length ? ` · notification → painted p50 ${q(0.5)} ms, p95 ${q(0.95)} ms (last ${lat.length}, this browser)` : "");
    } else if (live.state === "reconnecting" || live.state === "closed") {
      text = `the live feed at ${live.feed} does not answer (is the dashboard still running? a browser on another ` +
        `machine must reach port ${live.feed ? live.feed.split(":").pop() : "?"} too); retrying …`;
    } else {
      text = "connecting to the live feed …";
    }
    if (el.status.textContent !== text) { el.status.textContent = text; heightDirty = true; }
    el.status.className = live.state === "connected" || live.state === "connecting" ? "caption" : "caption bad";
  }

  window.addEventListener("resize", () => { barsDirty = true; heightDirty = true; schedule(); });
  setInterval(() => { if (live.state !== "connected") drawStatus(Date.now() + 1000); }, 1000);
  post("streamlit:componentReady", {apiVersion: 1});
})();
