"""16-bit mono PCM at 8 kHz, the rate G.711 carries: frames, loudness, tones, stereo WAV."""

from __future__ import annotations

import functools
import io
import wave

import numpy as np

RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")


def level(pcm: bytes) -> float:
    """Mean absolute sample value: what the endpointer compares with its speech threshold."""
    data = samples(pcm)
    return float(np.abs(data.astype(np.int32)).mean()) if data.size else 0.0


def silence(ms: int) -> bytes:
    return bytes(RATE * ms // 1000 * 2)


@functools.lru_cache(maxsize=8)
def hold_music(seconds: float) -> bytes:
    """A soft two-note chime on a loop: hold music generated here, so nothing is licensed or downloaded."""
    t = np.arange(int(RATE * 0.5)) / RATE
    envelope = np.exp(-3 * t)
    notes = [523.25, 659.25, 783.99, 659.25]
    phrase = np.concatenate([np.sin(2 * np.pi * f * t) * envelope for f in notes])
    reps = int(np.ceil(seconds * RATE / phrase.size))
    wave_ = np.tile(phrase, reps)[: int(seconds * RATE)]
    return (wave_ * 3000).astype("<i2").tobytes()


def resample(pcm: bytes, rate_in: int, rate_out: int = RATE) -> bytes:
    if rate_in == rate_out:
        return pcm
    data = samples(pcm).astype(np.float64)
    if data.size == 0:
        return b""
    n_out = int(data.size * rate_out / rate_in)
    x_old = np.arange(data.size) / rate_in
    x_new = np.arange(n_out) / rate_out
    if rate_out < rate_in:  # a crude low-pass (moving average) before decimating
        width = max(1, int(round(rate_in / rate_out)))
        data = np.convolve(data, np.ones(width) / width, mode="same")
    return np.clip(np.interp(x_new, x_old, data), -32768, 32767).astype("<i2").tobytes()


def read_wav(raw: bytes) -> bytes:
    """Any mono/stereo 16-bit WAV as 8 kHz mono PCM."""
    with wave.open(io.BytesIO(raw)) as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        raise ValueError("only 16-bit WAV is supported")
    data = samples(frames)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype("<i2")
    return resample(data.tobytes(), rate)


def stereo_wav(left: bytes, right: bytes) -> bytes:
    """Two mono streams of one call as one stereo WAV (left the citizen, right the hub's side)."""
    a, b = samples(left), samples(right)
    n = max(a.size, b.size)
    both = np.zeros((n, 2), dtype="<i2")
    both[: a.size, 0] = a
    both[: b.size, 1] = b
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(both.tobytes())
    return out.getvalue()


def peaks(wav_bytes: bytes, buckets: int = 400) -> list[list[float]]:
    """Per-channel peak levels (0..1) in `buckets` slices: the waveform the call-records page draws."""
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        channels = wav.getnchannels()
        data = samples(wav.readframes(wav.getnframes())).reshape(-1, channels)
    if data.shape[0] == 0:
        return [[] for _ in range(channels)]
    buckets = max(1, min(buckets, data.shape[0]))
    edges = np.linspace(0, data.shape[0], buckets + 1).astype(int)
    out: list[list[float]] = []
    for c in range(channels):
        column = np.abs(data[:, c].astype(np.int32))
        slices = zip(edges[:-1], edges[1:], strict=True)
        out.append([round(float(column[s:e].max(initial=0)) / 32768, 3) for s, e in slices])
    return out
