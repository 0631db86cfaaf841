"""Debian's Kamailio as a registrar and proxy on loopback: the hotline registers with it, callers
reach the hotline through it. Only the port-bearing alias is declared: a port-less alias for
127.0.0.1 makes Kamailio take every loopback target for itself, and a request to a registered
contact on another port would loop."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

CONFIG = """#!KAMAILIO
debug=1
log_stderror=yes
children=2
disable_tcp=yes
listen=udp:127.0.0.1:{port}
alias=127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("usrloc", "db_mode", 0)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("REGISTER")) {{ save("location"); exit; }}
    if (has_totag()) {{ loose_route(); t_relay(); exit; }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
    if (is_method("INVITE")) record_route();  # the dialog's later requests and replies pass here too
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""


def _free_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Kamailio:
    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = _free_udp()
        config = workdir / "kamailio.cfg"
        config.write_text(CONFIG.format(port=self.port), encoding="ascii")
        check = subprocess.run(["/usr/sbin/kamailio", "-c", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"kamailio.cfg is wrong: {check.stderr[-2000:]}")
        self._log = open(workdir / "kamailio.log", "wb")  # noqa: SIM115 (open for the process's life)
        self.proc = subprocess.Popen(
            ["/usr/sbin/kamailio", "-DD", "-E", "-f", str(config), "-P", str(workdir / "kamailio.pid"),
             "-Y", str(workdir)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        time.sleep(1.0)
        if self.proc.poll() is not None:
            raise RuntimeError((workdir / "kamailio.log").read_text(errors="replace")[-2000:])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
