"""Caller stops speaking -> first audio of the answer, through the real path: SIPp callers speak a
KB question (synthesised with espeak-ng) into the hotline; the call center endpoints it, streams it to
the recogniser (the local NLS stand-in: a cloud engine adds its network time), asks the dispatcher,
Rasa and the KB like a chat, synthesises the answer and plays it. Each answered question's stage
costs are kept on the call record (segments[].latency_ms); this prints p50/p99 of each stage and of
the total as JSON.

    python -m bench.voice_latency [--calls 12] [--concurrency 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from sqlalchemy import select

from bench.voice_rig import percentile, voice_rig
from core.config import PROJECT_ROOT
from core.db import make_engine, make_sessionmaker
from core.models.voice import CallRecord
from tests.voice_bridge.rtp import speech_pcap
from tests.voice_bridge.sipp import Ear, run_sipp, scenario
from voice_bridge import EspeakPinyinTts

QUERIES = PROJECT_ROOT / "kb_sync" / "demo" / "queries.jsonl"


def questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [row["text"] for row in rows if row.get("expected")]
    return (texts * (n // max(1, len(texts)) + 1))[:n]


async def latencies(database_url: str) -> list[dict[str, float]]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = (await session.execute(select(CallRecord))).scalars()
            return [s["latency_ms"] for row in rows for s in row.segments if "latency_ms" in s]
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=3)
    args = parser.parse_args()
    with voice_rig(with_rasa=True) as rig:
        work = rig.tmp / "sipp"
        work.mkdir()
        tts = EspeakPinyinTts(rig.tmp / "tts")
        texts = questions(args.calls)
        started = time.monotonic()
        for batch in range(0, len(texts), args.concurrency):
            group = texts[batch : batch + args.concurrency]
            # every call in a batch speaks the same question (the stand-in returns it for each utterance)
            pcm = asyncio.run(tts.synthesise(group[0]))
            for _ in group:
                rig.nls.transcripts.append(group[0])
            ear = Ear()
            try:
                xml = scenario([("pause", 4000), ("play", speech_pcap(work / f"q{batch}.pcap", pcm)), ("pause", 12000)],
                               number=f"1390001{batch:04d}", ear_port=ear.port)
                run_sipp(xml, rig.sip, rig.hotline, work, calls=len(group), concurrency=len(group), rate=len(group))
            finally:
                ear.close()
        time.sleep(2)
        turns = asyncio.run(latencies(rig.database_url))
    stages = ["endpoint_ms", "asr_ms", "answer_ms", "tts_ms", "first_audio_ms"]
    result = {
        "bench": "voice_latency", "calls": args.calls, "concurrency": args.concurrency, "answered_turns": len(turns),
        "seconds": round(time.monotonic() - started, 1),
        "note": "first_audio_ms = caller's last voiced frame -> first answer frame sent; it includes endpoint_ms "
                "(voice.vad.end_silence_ms of silence); answer_ms = dispatcher + Rasa + KB until the first reply; "
                "tts_ms = espeak-ng + pinyin; the NLS stand-in is local: add a cloud round trip",
    }
    for stage in stages:
        values = [t[stage] for t in turns if stage in t]
        result[stage] = {"p50": round(percentile(values, 0.5), 1), "p99": round(percentile(values, 0.99), 1)}
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
