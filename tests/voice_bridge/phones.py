"""baresip (Debian's) as an agent's desk phone: answers automatically, says a steady tone into the call
and records what it hears (its `sndfile` module), so tests check the caller really reached it."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import wave
from pathlib import Path

import numpy as np

from tests.support import free_port


def _free_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AgentPhone:
    def __init__(self, workdir: Path, user: str = "8001", tone_hz: int = 660) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_udp()
        self.ctrl = free_port()
        self.user = user
        (self.dir / "config").write_text(
            "\n".join([
                f"sip_listen 127.0.0.1:{self.port}",
                "net_interface 127.0.0.1",
                f"audio_source aufile,{self._tone(tone_hz)}",
                "audio_player aufile,/dev/null",
                "audio_alert aufile,/dev/null",
                f"snd_path {self.dir}",
                f"ctrl_tcp_listen 127.0.0.1:{self.ctrl}",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aufile.so",
                "module sndfile.so",
                "module_app account.so",
                "module_app menu.so",
                "module_app ctrl_tcp.so",
                "",
            ]),
            encoding="ascii",
        )
        (self.dir / "accounts").write_text(
            f"<sip:{user}@127.0.0.1:{self.port}>;regint=0;answermode=auto;audio_codecs=pcmu,pcma\n", encoding="ascii"
        )
        self._log = open(self.dir / "baresip.log", "wb")  # noqa: SIM115 (open for the process's life)
        self.proc = subprocess.Popen(["baresip", "-f", str(self.dir)], stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ctrl()

    def _tone(self, hz: int) -> Path:
        """What the agent 'says': a steady tone (8 kHz WAV, a minute long)."""
        path = self.dir / "voice.wav"
        t = np.arange(8000 * 60) / 8000
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes((np.sin(2 * np.pi * hz * t) * 6000).astype("<i2").tobytes())
        return path

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.port}"

    def _wait_ctrl(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.ctrl), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("baresip did not start")

    def command(self, command: str, params: str = "") -> None:
        """A ctrl_tcp command (netstring JSON), e.g. "hangup" (the agent puts the phone down)."""
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl), timeout=2) as sock:
            sock.sendall(f"{len(body)}:".encode() + body + b",")
            sock.settimeout(2)
            try:
                sock.recv(4096)
            except TimeoutError:
                pass

    def heard(self) -> list[Path]:
        """The WAV files of what the phone received (sndfile names them …-dec.wav)."""
        return sorted(self.dir.glob("*dec*.wav"))

    def heard_level(self) -> float:
        levels = []
        for path in self.heard():
            with wave.open(str(path)) as wav:
                data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
            if data.size:
                levels.append(float(np.abs(data.astype(np.int32)).mean()))
        return max(levels, default=0.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
