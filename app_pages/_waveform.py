"""A waveform you work with: click to seek, a playhead, zoom, drag (or keys) to select a range.

A Streamlit custom component (components v2, so it runs in the page's own
DOM, no iframe and no outside script): a canvas draws the call's peak
envelope (caller above the line, agent below; a mixed call both ways),
coloured bands for moments, outlines for the call's clips and hatched spans
for redactions, the selected range and the playhead.

* **Seek**: a click moves the cursor and, when the page's audio player holds
  that time, seeks it there; the playhead follows the player
  (``audio_offset_s`` says where in the call the player's audio starts).
* **Select**: drag across the waveform, or press ``[`` and ``]`` to put the
  range's start and end at the cursor (arrows move it by 0.1 s, with Shift
  1 s). Start and end are shown to the hundredth of a second.
* **Zoom**: the buttons (or ``+`` / ``-``) zoom around the cursor; ``0`` shows
  the whole call; the scroll bar under the canvas pans.

The selected range comes back to Python as the component's ``range`` state
(``{"start", "end", "seq"}``); :func:`accepted_range` checks it before the
page uses it, because anything a browser sends can be forged.

Why not a ready-made component: ``streamlit-advanced-audio`` (wavesurfer.js
in an iframe, v1 components) plays its own copy of the audio, which would be
a second, unlogged path for raw audio to the browser, and cannot draw the
party split, moments or redactions. wavesurfer.js itself would need a build
step for a few hundred lines of drawing; this file is that drawing.
"""

from __future__ import annotations

import math

import numpy as np

HTML = """
<div class="ckw">
  <div class="ckw-bar">
    <button type="button" data-act="in" title="Zoom in around the cursor (+)">zoom in</button>
    <button type="button" data-act="out" title="Zoom out (-)">zoom out</button>
    <button type="button" data-act="fit" title="Whole call (0)">whole call</button>
    <span class="ckw-info" aria-live="polite"></span>
  </div>
  <canvas tabindex="0" aria-label="Waveform of the call: drag to select a range, click to seek, [ and ] set start and end at the cursor"></canvas>
  <input class="ckw-pan" type="range" min="0" max="1000" value="0" aria-label="Pan">
</div>
"""

CSS = """
.ckw { font-family: var(--st-font, sans-serif); font-size: 0.85rem; user-select: none; }
.ckw-bar { display: flex; gap: 0.4rem; align-items: center; margin-bottom: 0.3rem; }
.ckw-bar button { border: 1px solid var(--st-border-color, #ccc); background: var(--st-secondary-background-color, #f0f2f6);
  color: var(--st-text-color, #222); border-radius: 0.4rem; padding: 0.1rem 0.6rem; cursor: pointer; }
.ckw-info { margin-left: 0.6rem; font-variant-numeric: tabular-nums; }
.ckw canvas { width: 100%; height: 180px; display: block; border-radius: 0.4rem; cursor: crosshair;
  background: var(--st-secondary-background-color, #f6f7f9); outline: none; }
.ckw canvas:focus { box-shadow: 0 0 0 2px var(--st-primary-color, #ff4b4b); }
.ckw-pan { width: 100%; }
"""

JS = r"""
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const root = parentElement.querySelector(".ckw");
  const canvas = root.querySelector("canvas");
  const info = root.querySelector(".ckw-info");
  const pan = root.querySelector(".ckw-pan");
  const ctx = canvas.getContext("2d");
  const D = data.duration, top = data.top, bottom = data.bottom, step = data.step;
  const view = data.view || [0, D];
  const S = root.__ckw || (root.__ckw = { v0: view[0], v1: view[1], cursor: data.start, drag: null, key: null });
  if (S.key !== data.key) {  // another call or clip: start over
    Object.assign(S, { v0: view[0], v1: view[1], cursor: data.start, drag: null, key: data.key });
  }
  S.start = data.start; S.end = data.end;
  const fmt = (t) => t.toFixed(2) + " s";
  const player = () => {
    const a = document.querySelector('[data-testid="stAudio"] audio, audio[data-testid="stAudio"], audio');
    return a || null;
  };
  const x2t = (x) => S.v0 + (x / canvas.clientWidth) * (S.v1 - S.v0);
  const t2x = (t) => ((t - S.v0) / (S.v1 - S.v0)) * canvas.clientWidth;
  const clamp = (t) => Math.min(D, Math.max(0, t));
  function send() {
    const a = Math.round(Math.min(S.start, S.end) * 100) / 100, b = Math.round(Math.max(S.start, S.end) * 100) / 100;
    setStateValue("range", { start: a, end: b, seq: Date.now() });
  }
  function draw() {
    const w = canvas.clientWidth, h = canvas.clientHeight, dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const mid = data.mixed ? h / 2 : h / 2;
    for (const b of data.bands) {  // moments: the caller's above the line, the agent's below
      const x0 = t2x(b.a), x1 = t2x(b.b);
      if (x1 < 0 || x0 > w) continue;
      ctx.fillStyle = b.color; ctx.globalAlpha = 0.25;
      const y0 = b.party === "agent" ? mid : 0, y1 = b.party === "caller" ? mid : h;
      ctx.fillRect(x0, y0, Math.max(1, x1 - x0), y1 - y0);
    }
    ctx.globalAlpha = 1;
    const first = Math.max(0, Math.floor(S.v0 / step)), last = Math.min(top.length, Math.ceil(S.v1 / step) + 1);
    const per = Math.max(1, Math.floor((last - first) / w));
    ctx.fillStyle = data.mixed ? "#5f6368" : "#1a73e8";
    for (let i = first; i < last; i += per) {
      let m = 0; for (let j = i; j < Math.min(last, i + per); j++) m = Math.max(m, top[j]);
      const x = t2x(i * step), bw = Math.max(1, t2x((i + per) * step) - x);
      ctx.fillRect(x, mid - m * mid * 0.95, bw, m * mid * 0.95);
    }
    ctx.fillStyle = data.mixed ? "#5f6368" : "#e8710a";
    for (let i = first; i < last; i += per) {
      let m = 0; for (let j = i; j < Math.min(last, i + per); j++) m = Math.max(m, bottom[j]);
      const x = t2x(i * step), bw = Math.max(1, t2x((i + per) * step) - x);
      ctx.fillRect(x, mid, bw, m * mid * 0.95);
    }
    for (const c of data.clips) {  // clips of this call, outlined, with their redactions hatched
      const x0 = t2x(c.a), x1 = t2x(c.b);
      ctx.strokeStyle = "#188038"; ctx.lineWidth = 1.5; ctx.setLineDash([4, 3]);
      ctx.strokeRect(x0, 1, x1 - x0, h - 2); ctx.setLineDash([]);
      ctx.fillStyle = "#188038"; ctx.fillText("#" + c.id, x0 + 3, 11);
      for (const r of c.redactions) {
        const r0 = t2x(r.a), r1 = t2x(r.b);
        ctx.fillStyle = "rgba(0,0,0,0.28)"; ctx.fillRect(r0, 0, Math.max(1, r1 - r0), h);
      }
    }
    const a = Math.min(S.start, S.end), b = Math.max(S.start, S.end);
    ctx.fillStyle = "rgba(255,152,0,0.22)"; ctx.fillRect(t2x(a), 0, t2x(b) - t2x(a), h);
    ctx.fillStyle = "#ff9800"; ctx.fillRect(t2x(a) - 1, 0, 2, h); ctx.fillRect(t2x(b) - 1, 0, 2, h);
    ctx.fillStyle = "#202124"; ctx.fillRect(t2x(S.cursor), 0, 1, h);
    const p = player();
    let playing = "";
    if (p && !isNaN(p.currentTime) && data.audio_offset !== null) {
      const t = data.audio_offset + p.currentTime;
      ctx.fillStyle = "#d93025"; ctx.fillRect(t2x(t) - 1, 0, 2, h);
      playing = " · playhead " + fmt(t);
    }
    info.textContent = "start " + fmt(a) + " · end " + fmt(b) + " · length " + fmt(b - a) + " · cursor " + fmt(S.cursor) + playing;
    pan.value = String(Math.round(1000 * S.v0 / Math.max(1e-9, D - (S.v1 - S.v0))));
    pan.disabled = (S.v1 - S.v0) >= D - 1e-6;
  }
  function zoom(f) {
    const span = Math.min(D, Math.max(0.5, (S.v1 - S.v0) * f));
    let v0 = S.cursor - span / 2; v0 = Math.max(0, Math.min(D - span, v0));
    S.v0 = v0; S.v1 = v0 + span; draw();
  }
  function seek(t) {
    S.cursor = clamp(t);
    const p = player();
    if (p && data.audio_offset !== null) {
      const rel = S.cursor - data.audio_offset;  // the player may not know its duration before it loaded
      if (rel >= 0 && (!isFinite(p.duration) || rel <= p.duration)) p.currentTime = rel;
    }
    draw();
  }
  root.querySelectorAll("button").forEach((btn) => {
    btn.onclick = () => { const a = btn.dataset.act; if (a === "in") zoom(0.5); else if (a === "out") zoom(2); else { S.v0 = 0; S.v1 = D; draw(); } };
  });
  pan.oninput = () => { const span = S.v1 - S.v0; S.v0 = (Number(pan.value) / 1000) * (D - span); S.v1 = S.v0 + span; draw(); };
  canvas.onpointerdown = (e) => { canvas.focus(); canvas.setPointerCapture(e.pointerId); S.drag = { x: e.offsetX, t: clamp(x2t(e.offsetX)) }; };
  canvas.onpointermove = (e) => {
    if (!S.drag || Math.abs(e.offsetX - S.drag.x) < 4) return;
    S.start = S.drag.t; S.end = clamp(x2t(e.offsetX)); S.cursor = S.end; S.drag.moved = true; draw();
  };
  canvas.onpointerup = (e) => {
    const d = S.drag; S.drag = null;
    if (!d) return;
    if (d.moved) { S.end = clamp(x2t(e.offsetX)); send(); draw(); } else { seek(d.t); }
  };
  canvas.onkeydown = (e) => {
    const k = e.key;
    if (k === "ArrowLeft" || k === "ArrowRight") { seek(S.cursor + (k === "ArrowLeft" ? -1 : 1) * (e.shiftKey ? 1 : 0.1)); e.preventDefault(); }
    else if (k === "[") { S.start = S.cursor; if (S.end < S.start) S.end = Math.min(D, S.start + 1); send(); draw(); }
    else if (k === "]") { S.end = S.cursor; if (S.end < S.start) S.start = Math.max(0, S.end - 1); send(); draw(); }
    else if (k === "+" || k === "=") zoom(0.5);
    else if (k === "-") zoom(2);
    else if (k === "0") { S.v0 = 0; S.v1 = D; draw(); }
  };
  let frame = 0;
  const tick = () => { draw(); frame = requestAnimationFrame(tick); };
  frame = requestAnimationFrame(tick);
  return () => cancelAnimationFrame(frame);
}
"""

_component = None


def _mount():
    global _component
    import streamlit as st

    if _component is None:
        _component = st.components.v2.component("clipkit_waveform", html=HTML, css=CSS, js=JS)
    return _component


def envelope(peaks: np.ndarray, *, caller: int | None, agent: int | None, mixed: bool) -> tuple[list, list]:
    """Peak lists for the canvas: caller above the line, agent below (a mixed call: the same both ways), 0–1."""
    if mixed or caller is None or agent is None:
        m = np.clip(peaks.max(axis=0), 0, 1)
        return np.round(m, 3).tolist(), np.round(m, 3).tolist()
    return np.round(np.clip(peaks[caller], 0, 1), 3).tolist(), np.round(np.clip(peaks[agent], 0, 1), 3).tolist()


def clip_box(clip_id: int, *, start_s: float, end_s: float, redactions) -> dict:
    """A clip as the canvas draws it: its range and its redactions (stored in clip time) in call time."""
    return {"id": clip_id, "a": start_s, "b": end_s,
            "redactions": [{"a": start_s + r[0], "b": start_s + r[1]} for r in redactions]}


def waveform(*, key: str, top: list, bottom: list, step_s: float, duration_s: float, start_s: float, end_s: float,
             mixed: bool, bands: list[dict] = (), clips: list[dict] = (), audio_offset_s: float | None = None,
             view: tuple[float, float] | None = None):
    """Draw the waveform; returns the component's result (``.range`` once a range was selected in it).

    ``view`` is the stretch shown first (seconds; default the whole call).
    """
    return _mount()(
        data={"key": key, "top": top, "bottom": bottom, "step": float(step_s), "duration": float(duration_s),
              "start": float(start_s), "end": float(end_s), "mixed": bool(mixed), "bands": list(bands),
              "clips": list(clips), "audio_offset": None if audio_offset_s is None else float(audio_offset_s),
              "view": None if view is None else [float(view[0]), float(view[1])]},
        key=key, on_range_change=lambda: None)


def accepted_range(value, *, duration_s: float, last_seq) -> tuple[float, float, object] | None:
    """A range the browser sent, if it is new and sane: ``(start_s, end_s, seq)``; else None.

    A forged or garbled value (not numbers, NaN, outside the call, reversed)
    is dropped rather than trusted; the page's own checks still apply when
    the clip is cut.
    """
    if not isinstance(value, dict) or value.get("seq") in (None, last_seq):
        return None
    try:
        a, b = float(value["start"]), float(value["end"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    a, b = min(max(a, 0.0), duration_s), min(max(b, 0.0), duration_s)
    if b <= a:
        return None
    return round(a, 2), round(b, 2), value["seq"]
