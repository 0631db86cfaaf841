"""What a caller sends, as pcap files SIPp replays (`play_pcap_audio`): G.711 μ-law speech and
RFC 4733 telephone-events, built here so that any key (also * and #) and any utterance can be sent."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


def ulaw(pcm: bytes) -> bytes:
    """16-bit linear PCM to G.711 μ-law."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    sign = (x < 0).astype(np.int32)
    mag = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(mag)).astype(np.int32) - 7, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~((sign << 7) | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def _packet(payload: bytes, pt: int, seq: int, ts: int, marker: bool = False) -> bytes:
    rtp = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x1234ABCD)
    udp_payload = rtp + payload
    udp = struct.pack("!HHHH", 6000, 6002, 8 + len(udp_payload), 0) + udp_payload
    loopback = bytes([127, 0, 0, 1])
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, loopback, loopback)
    return b"\0" * 12 + b"\x08\x00" + ip + udp


def write_pcap(path: Path, packets: list[tuple[float, bytes]]) -> Path:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for t, frame in packets:
        sec, usec = int(t), int((t - int(t)) * 1e6)
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def speech_pcap(path: Path, pcm: bytes, trailing_silence_ms: int = 1200) -> Path:
    """`pcm` (8 kHz 16-bit) as 20 ms μ-law packets, then silence packets (a real phone keeps sending)."""
    pcm = pcm + bytes(8 * trailing_silence_ms * 2)
    pcm += bytes(-len(pcm) % 320)
    packets = []
    for i in range(len(pcm) // 320):
        payload = ulaw(pcm[i * 320 : (i + 1) * 320])
        packets.append((1.0 + i * 0.02, _packet(payload, 0, i + 1, i * 160, marker=i == 0)))
    return write_pcap(path, packets)


def keys_pcap(path: Path, keys: str, gap_ms: int = 600) -> Path:
    """RFC 4733 events, one key after another: 8 updates 20 ms apart, the end sent three times."""
    packets, seq, t, ts = [], 1, 1.0, 0
    for key in keys:
        event = EVENTS[key]
        for n in range(1, 12):
            end = n >= 9
            duration = min(n, 8) * 160
            payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
            packets.append((t, _packet(payload, 101, seq, ts, marker=n == 1)))
            seq += 1
            t += 0.02
        t += gap_ms / 1000
        ts += 160 * 8 + int(8 * gap_ms)
    return write_pcap(path, packets)
