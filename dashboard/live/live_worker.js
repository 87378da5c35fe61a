// gesture-kit's live view, worker side: the engine (live_paint.js) with the page's canvases handed
// over as OffscreenCanvases, so the feed is read and every prediction painted off the page's main
// thread. Messages in: {canvases} once, then {config} (see LiveEngine.configure); out: the
// engine's reports (paint rows, state) for the page.
"use strict";
importScripts("live_paint.js");

let engine = null;
self.onmessage = (e) => {
  const m = e.data;
  if (m.canvases) engine = new LiveEngine(m.canvases, (msg) => self.postMessage(msg));
  if (engine && m.config) engine.configure(m.config);
};
