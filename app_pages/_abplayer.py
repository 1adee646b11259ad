"""A/B listening: one player, an original/anonymized switch that keeps the position, levels matched.

The page draws both clips with ``st.audio`` inside one keyed container; this
component (components v2, in the page's DOM) hides the one not selected and,
on a switch, carries the position and the playing state over to the other.
The louder of the two is turned down (``volume``) by the difference in their
speech level, measured on the server (:func:`levels_db`), so the comparison
is of voices, not of loudness.
"""

from __future__ import annotations

import io
import math

import numpy as np
import soundfile as sf

from clipkit import audio

JS = r"""
export default function (component) {
  const { data, parentElement } = component;
  const box = document.querySelector("." + data.container);
  if (!box) return;
  const players = () => Array.from(box.querySelectorAll("audio"));
  const root = parentElement.querySelector(".ckab");
  const btn = root.querySelector("button");
  const label = root.querySelector(".ckab-which");
  const state = box.__ckab || (box.__ckab = { which: 0 });
  function show() {
    const list = players();
    if (list.length < 2) return;
    list.forEach((a, i) => {
      const wrap = a.closest('[data-testid="stAudio"]') || a;
      const holder = wrap.closest('[data-testid="stElementContainer"]') || wrap;
      holder.style.display = i === state.which ? "" : "none";
      a.volume = Math.max(0, Math.min(1, data.volumes[i]));
    });
    label.textContent = state.which === 0 ? "A · original" : "B · anonymized";
    btn.textContent = state.which === 0 ? "Switch to B (anonymized)" : "Switch to A (original)";
  }
  btn.onclick = () => {
    const list = players();
    if (list.length < 2) return;
    const from = list[state.which], to = list[1 - state.which];
    const t = from.currentTime, playing = !from.paused;
    from.pause();
    to.currentTime = Math.min(t, isFinite(to.duration) ? to.duration : t);
    state.which = 1 - state.which;
    show();
    if (playing) to.play();
  };
  const timer = setInterval(show, 500);  // players drawn after this component
  show();
  return () => clearInterval(timer);
}
"""

HTML = '<div class="ckab"><button type="button"></button> <span class="ckab-which"></span></div>'
CSS = """
.ckab { display: flex; gap: 0.8rem; align-items: center; margin: 0.2rem 0 0.4rem; }
.ckab button { border: 1px solid var(--st-border-color, #ccc); border-radius: 0.4rem; padding: 0.2rem 0.8rem;
  background: var(--st-secondary-background-color, #f0f2f6); color: var(--st-text-color, #222); cursor: pointer; }
.ckab-which { font-weight: 600; }
"""

_component = None


def speech_level_db(wav: bytes) -> float:
    """The level of the louder half of 50 ms frames (speech, not pauses), in dBFS; -inf for silence."""
    try:
        wav = audio.without_nonce(wav)
    except ValueError:
        pass  # bytes without a nonce chunk are read as they are
    y, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    x = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
    n = max(1, int(0.05 * sr))
    frames = x[: len(x) // n * n].reshape(-1, n) if len(x) >= n else x.reshape(1, -1)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    rms = np.sort(rms)[len(rms) // 2:]
    level = float(np.sqrt(np.mean(rms ** 2))) if rms.size else 0.0
    return 20 * math.log10(level) if level > 1e-9 else float("-inf")


def matched_volumes(a: bytes, b: bytes) -> tuple[float, float, float]:
    """Player volumes (0–1) that bring A and B to the same speech level, and the difference B − A in dB."""
    la, lb = speech_level_db(a), speech_level_db(b)
    if not (math.isfinite(la) and math.isfinite(lb)):
        return 1.0, 1.0, 0.0
    diff = lb - la
    gain = 10 ** (-abs(diff) / 20)
    return (gain, 1.0, diff) if diff < 0 else (1.0, gain, diff)


def ab_switch(*, key: str, container: str, volumes: tuple[float, float]) -> None:
    """The switch for the two players inside ``st.container(key=container)``."""
    global _component
    import streamlit as st

    if _component is None:
        _component = st.components.v2.component("clipkit_ab", html=HTML, css=CSS, js=JS)
    _component(data={"container": f"st-key-{container}", "volumes": list(volumes)}, key=key)
