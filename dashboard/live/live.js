// gesture-kit's live view, page side: Streamlit's component protocol, layout, and the engine host.
//
// Streamlit (components v1) serves this page in an iframe and posts it "streamlit:render" messages
// with the arguments of dashboard/live_view.py: where the live feed is ({port, path}) and the
// labels. The engine (live_paint.js) reads the feed and paints; it runs in a worker with the
// canvases handed over (OffscreenCanvas), or here where a browser cannot do that. This side sizes
// the canvases, passes the theme on, keeps the text the canvases show in the DOM (for screen
// readers and tests) and collects the engine's paint records in window.gkLive for the benchmark:
// paints = [seq, index, rx_ms, arrived_ms, drawn_ms, painted_ms] per painted prediction.
"use strict";
(() => {
  const PAINTS_KEEP = 20000;  // paint records held (about 25 min at 13/s), oldest dropped first
  const live = window.gkLive = {paints: [], received: 0, painted: 0, feed: null, state: "idle", samples: 0,
                                mode: null};
  const $ = (id) => document.getElementById(id);
  const names = ["now", "bars", "timeline", "raw"];
  const canvas = {now: $("gk-now"), bars: $("gk-bars"), timeline: $("gk-timeline"), raw: $("gk-raw")};
  const el = {current: $("gk-current"), seq: $("gk-seq"), status: $("gk-status")};
  let labels = [];
  let lastHeight = 0;
  let feedUrl = null;

  // ------------------------------------------------------------------ the engine: a worker if possible
  let send;
  if (typeof Worker === "function" && typeof HTMLCanvasElement.prototype.transferControlToOffscreen === "function") {
    const worker = new Worker("live_worker.js");
    const offscreen = {};
    for (const n of names) offscreen[n] = canvas[n].transferControlToOffscreen();
    worker.postMessage({canvases: offscreen}, Object.values(offscreen));
    worker.onmessage = (e) => onReport(e.data);
    send = (cfg) => worker.postMessage({config: cfg});
    live.mode = "worker";
  } else {
    const engine = new LiveEngine(canvas, onReport);
    send = (cfg) => engine.configure(cfg);
    live.mode = "page";
  }

  function onReport(m) {
    if (m.type === "paints") {
      for (const r of m.rows) live.paints.push(r);
      Object.assign(live, {received: m.received, painted: m.painted});  // with the rows: consistent counts
      if (live.paints.length > 2 * PAINTS_KEEP) live.paints.splice(0, live.paints.length - PAINTS_KEEP);
    } else if (m.type === "state") {
      Object.assign(live, {state: m.state, painted: m.painted, received: m.received, samples: m.samples});
      if (m.latest) {
        el.current.textContent = m.latest.name;
        el.current.dataset.seq = m.latest.seq;
        el.seq.textContent = `seq ${m.latest.seq} · received t=${m.latest.rx.toFixed(3)}`;
      }
      status(m);
    } else if (m.type === "labels") {
      labels = m.labels;
      layout();
    }
  }

  function status(m) {
    let text;
    if (m.state === "connected") {
      const l = m.latency;
      text = `live · ${m.painted} predictions painted` +
        (l ? ` · notification → painted p50 ${l.p50.toFixed(0)} ms, p95 ${l.p95.toFixed(0)} ms (last ${l.n}, this browser)` : "");
    } else if (m.state === "reconnecting" || m.state === "closed") {
      text = `the live feed at ${live.feed} does not answer (is the dashboard still running? a browser on another ` +
        `machine must reach port ${live.feed ? live.feed.split(":").pop() : "?"} too); retrying …`;
    } else {
      text = "connecting to the live feed …";
    }
    if (el.status.textContent !== text) { el.status.textContent = text; fitHeight(); }
    el.status.className = m.state === "connected" || m.state === "connecting" ? "caption" : "caption bad";
  }

  // ------------------------------------------------------------------ layout
  function layout() {
    const h = LiveEngine.heights(labels.length);
    for (const n of names) canvas[n].style.height = `${h[n]}px`;
    const sizes = {};
    for (const n of names) sizes[n] = {w: canvas[n].clientWidth, h: h[n]};
    send({sizes, ratio: window.devicePixelRatio || 1});
    fitHeight();
  }

  function fitHeight() {
    const h = Math.ceil(document.documentElement.scrollHeight);
    if (h !== lastHeight) { lastHeight = h; post("streamlit:setFrameHeight", {height: h}); }
  }

  new ResizeObserver(() => layout()).observe(document.body);

  // ------------------------------------------------------------------ Streamlit's component protocol
  function post(type, data) {
    window.parent.postMessage(Object.assign({isStreamlitMessage: true, type}, data), "*");
  }

  window.addEventListener("message", (e) => {
    const msg = e.data;
    if (!msg || msg.type !== "streamlit:render") return;
    const args = msg.args || {};
    const cfg = {};
    if (msg.theme) Object.assign(cfg, theme(msg.theme));
    if (Array.isArray(args.labels) && args.labels.join("\n") !== labels.join("\n")) {
      labels = args.labels.map(String);
      cfg.labels = labels;
    }
    if (args.feed) {
      const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
      const url = `${location.protocol}//${host}:${args.feed.port}${args.feed.path}`;
      if (url !== feedUrl) { feedUrl = cfg.feedUrl = url; live.feed = `${location.hostname}:${args.feed.port}`; }
    }
    if (Object.keys(cfg).length) send(cfg);
    layout();
  });

  function theme(t) {
    const root = document.documentElement.style;
    const cfg = {colors: {}};
    if (t.textColor) {
      root.setProperty("--text", t.textColor);
      root.setProperty("--muted", withAlpha(t.textColor, 0.6));
      Object.assign(cfg.colors, {text: t.textColor, muted: withAlpha(t.textColor, 0.6), grid: withAlpha(t.textColor, 0.12)});
    }
    if (t.backgroundColor) root.setProperty("--bg", t.backgroundColor);
    if (t.primaryColor) cfg.colors.primary = t.primaryColor;
    if (t.font) root.setProperty("--font", t.font);
    cfg.font = getComputedStyle(document.body).fontFamily || "sans-serif";
    return cfg;
  }

  function withAlpha(color, a) {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color || "");
    return m ? `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${a})` : color;
  }

  post("streamlit:componentReady", {apiVersion: 1});
})();
