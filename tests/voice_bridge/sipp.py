"""SIPp as the caller: a scenario built per test (INVITE with SDP, the re-INVITE baresip sends after the
ACK accepted, RTP from pcaps, RFC 4733 keys, BYE either way), and an RTP sink standing in for the
caller's ear: the hub's audio is sent to it (its port is in the SDP), so tests measure what a caller hears.
In-dialog requests (ACK, BYE) go to the hub's Contact ([next_url]), through a proxy when there is one."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.support import free_port

_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{number}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:{number}@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {ear_port} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{number}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
[routes]
Contact: sip:{number}@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv request="INVITE" timeout="1500" ontimeout="media"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: sip:{number}@[local_ip]:[local_port]
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 2 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {ear_port} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
]]></send>
  <recv request="ACK"/>
  <label id="media"/>
"""

_CALLER_BYE = """  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{number}" <sip:{number}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 BYE
[routes]
Contact: sip:{number}@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""

_HUB_BYE = """  <recv request="BYE" timeout="{timeout_ms}"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""


def scenario(steps: list[tuple[str, object]], *, number: str, ear_port: int, caller_hangs_up: bool = True,
             hub_bye_timeout_ms: int = 30000) -> str:
    """steps: ("pause", ms) or ("play", pcap path); the pcap plays in the background, so follow it with a pause."""
    body = [_HEAD.format(number=number, ear_port=ear_port)]
    for kind, value in steps:
        if kind == "pause":
            body.append(f'  <pause milliseconds="{int(value)}"/>\n')  # type: ignore[call-overload]
        elif kind == "play":
            body.append(f'  <nop><action><exec play_pcap_audio="{value}"/></action></nop>\n')
    tail = _CALLER_BYE if caller_hangs_up else _HUB_BYE
    body.append(tail.format(number=number, timeout_ms=hub_bye_timeout_ms))
    return "".join(body)


@dataclass
class SippRun:
    returncode: int
    output: str
    errors: str


def run_sipp(xml: str, target: str, service: str, workdir: Path, *, calls: int = 1, concurrency: int = 1,
             rate: float = 10, timeout: float = 90) -> SippRun:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"caller-{time.monotonic_ns()}.xml"
    path.write_text(xml, encoding="ascii")
    cmd = [
        "sipp", target, "-sf", str(path), "-s", service, "-m", str(calls), "-l", str(concurrency), "-r", str(rate),
        "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port()),
        "-nostdin", "-trace_err", "-error_file", str(workdir / "sipp_errors.log"), "-timeout", f"{int(timeout)}s",
        "-timeout_error",
    ]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 30)
    errors = (workdir / "sipp_errors.log").read_text(errors="replace") if (workdir / "sipp_errors.log").exists() else ""
    return SippRun(proc.returncode, proc.stdout + proc.stderr, errors)


def ulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    return np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def alaw_decode(data: bytes) -> np.ndarray:
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    sign, exponent, mantissa = a & 0x80, (a >> 4) & 0x07, a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


@dataclass
class Ear:
    """An RTP receiver on a free port: every packet the hub sends to the callers, by SSRC."""

    port: int = field(default_factory=free_port)
    packets: list[tuple[float, int, int, bytes]] = field(default_factory=list)  # (time, ssrc, pt, payload)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self._sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            pt = data[1] & 0x7F
            ssrc = struct.unpack("!I", data[8:12])[0]
            self.packets.append((time.monotonic(), ssrc, pt, data[12:]))

    def loud_times(self, threshold: float = 300.0) -> list[float]:
        """When a 20 ms frame the callers heard was louder than `threshold` (mean |sample|)."""
        out = []
        for t, _ssrc, pt, payload in list(self.packets):
            if pt in (0, 8):
                pcm = ulaw_decode(payload) if pt == 0 else alaw_decode(payload)
                if np.abs(pcm.astype(np.int32)).mean() >= threshold:
                    out.append(t)
        return out

    def streams(self) -> set[int]:
        return {ssrc for _t, ssrc, _pt, _p in self.packets}

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
