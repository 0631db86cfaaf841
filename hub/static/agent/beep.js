// A short tone for new work (a citizen waiting, a message in a background tab); audio unlocks on the first gesture.

/* --------------------------------------------------------------------- beep */

let audioCtx = null;
function unlockAudio() {
  try {
    if (!audioCtx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audioCtx = new Ctx();
    }
    if (audioCtx.state === "suspended") audioCtx.resume();
  } catch (_) { /* no audio */ }
}
document.addEventListener("pointerdown", unlockAudio, { once: false, passive: true });
document.addEventListener("keydown", unlockAudio, { passive: true });

export function beep() {
  unlockAudio();
  if (!audioCtx || audioCtx.state !== "running") return;
  try {
    const now = audioCtx.currentTime;
    const osc = audioCtx.createOscillator();
    const gain = audioCtx.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, now);
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.25);
    osc.connect(gain).connect(audioCtx.destination);
    osc.start(now);
    osc.stop(now + 0.3);
  } catch (_) { /* ignore */ }
}
