"""The call center: a SIP user agent answering the hotline (IVR, speech to the bot, 转人工 to an
agent's phone), calls out, and call records with recordings.

The app builds one `VoiceBridge` with a `MessagePath` (the hub's message path) and `CallRecords`,
registers `bridge.channel` with the dispatcher, subscribes `bridge.on_event` to the bus, and starts it
in one worker. Agents' commands travel as bus events of kind `COMMAND_EVENT`."""

from voice_bridge.asr import AliyunNlsAsr, Asr, AsrError, AsrStream, NoAsr, make_asr
from voice_bridge.bridge import COMMAND_EVENT, VoiceBridge, VoiceChannel
from voice_bridge.pcm import peaks
from voice_bridge.ports import MessagePath
from voice_bridge.records import OUTCOMES, CallQuery, CallRecords, as_json
from voice_bridge.settings import VoiceConfig
from voice_bridge.tts import EspeakPinyinTts, Tts, make_tts, to_pinyin

__all__ = [
    "COMMAND_EVENT",
    "OUTCOMES",
    "AliyunNlsAsr",
    "Asr",
    "AsrError",
    "AsrStream",
    "CallQuery",
    "CallRecords",
    "EspeakPinyinTts",
    "MessagePath",
    "NoAsr",
    "Tts",
    "VoiceBridge",
    "VoiceChannel",
    "VoiceConfig",
    "as_json",
    "make_asr",
    "make_tts",
    "peaks",
    "to_pinyin",
]
