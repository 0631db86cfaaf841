"""How many calls at once before the RTP the hub sends goes late: steps of concurrent SIPp callers
(each hears the greeting and the menu: the hub streams audio to every one), measuring at the callers'
side the jitter of the hub's RTP (RFC 3550 interarrival jitter, per stream) and at the hub how late its
20 ms media clock ticked, plus the hub process's CPU per call. Prints JSON: per step and the largest
step whose p99 added jitter stays <= 20 ms. Run it with the machine otherwise idle (2 cores here).

    python -m bench.voice_capacity [--steps 10,20,30,40,50] [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import time

from bench.voice_rig import cpu_seconds, percentile, voice_rig
from tests.voice_bridge.sipp import Ear, run_sipp, scenario


def stream_jitter_ms(ear: Ear) -> list[float]:
    """Per stream, the p99 of |arrival gap - 20 ms| over its packets (the jitter a caller's buffer must absorb)."""
    by_stream: dict[int, list[float]] = {}
    for t, ssrc, pt, _payload in ear.packets:
        if pt in (0, 8):
            by_stream.setdefault(ssrc, []).append(t)
    out = []
    for times in by_stream.values():
        gaps = [abs((b - a) - 0.02) * 1000 for a, b in zip(times, times[1:], strict=False)]
        if gaps:
            out.append(percentile(gaps, 0.99))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="10,20,30,40,50")
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    results = []
    with voice_rig(with_rasa=False, asr="none") as rig:
        work = rig.tmp / "sipp"
        work.mkdir()
        rig.status()
        for n in steps:
            ear = Ear()
            try:
                cpu0, t0 = cpu_seconds(rig.hub_pid), time.monotonic()
                rig.status()  # (the clock's lateness is read over the step below)
                xml = scenario([("pause", args.seconds * 1000)], number=f"1390002{n:04d}", ear_port=ear.port)
                sipp = run_sipp(xml, rig.sip, rig.hotline, work, calls=n, concurrency=n, rate=max(10, n))
                cpu = cpu_seconds(rig.hub_pid) - cpu0
                elapsed = time.monotonic() - t0
                media = rig.status().get("media", {})
            finally:
                ear.close()
            jitter = stream_jitter_ms(ear)
            results.append({
                "calls": n, "streams_heard": len(jitter), "sipp_ok": sipp.returncode == 0,
                "jitter_p99_ms_median_stream": round(percentile(jitter, 0.5), 2),
                "jitter_p99_ms_worst_stream": round(max(jitter, default=0.0), 2),
                "hub_clock_late_p99_ms": media.get("late_p99_ms"),
                "hub_cpu_seconds": round(cpu, 2), "cpu_per_call_percent": round(cpu / elapsed / n * 100, 2),
            })
            time.sleep(2)
    ok = [r["calls"] for r in results if r["sipp_ok"] and r["jitter_p99_ms_median_stream"] <= 20]
    print(json.dumps({"bench": "voice_capacity", "seconds_per_step": args.seconds, "steps": results,
                      "max_calls_jitter_under_20ms": max(ok, default=0)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
