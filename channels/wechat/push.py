"""What WeChat pushes to the server URL, verified and parsed (pure functions, tested alone).

Every failure is a `PushError` carrying the HTTP status and a Chinese reason: a bad
signature is 403, an oversized body 413, anything malformed 400. Nothing here touches
storage, so a rejected push can never leave a partial record.

XML is first parsed by defusedxml with DTDs forbidden (so no entity expansion, no
external entities), then handed to wechatpy's own parser for the message type.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.parser import parse_message
from wechatpy.replies import TextReply
from wechatpy.utils import WeChatSigner

from channels.wechat.config import WeChatConfig

ERRORS = {
    "bad_signature": "签名校验失败，请求被拒绝。",
    "stale": "请求时间戳无效或已过期。",
    "too_large": "请求体过大（上限 {limit} 字节）。",
    "bad_xml": "消息格式错误，无法解析。",
    "bad_field": "消息缺少必要字段或字段格式错误。",
    "need_encryption": "安全模式下只接受加密消息。",
    "bad_encryption": "消息解密失败。",
}

OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_FIELD_CHARS = 8000


class PushError(ValueError):
    def __init__(self, status: int, code: str, **values: Any) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.reason = ERRORS[code].format(**values)


@dataclass(frozen=True)
class Push:
    """One verified push: its fields, wechatpy's typed message, and how it was wrapped."""

    data: dict[str, Any]
    message: Any  # a wechatpy message or event
    encrypted: bool
    nonce: str
    timestamp: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def openid(self) -> str:
        return str(self.data["FromUserName"])

    @property
    def account(self) -> str:
        return str(self.data.get("ToUserName") or "")

    @property
    def msg_type(self) -> str:
        return str(self.data["MsgType"]).lower()

    @property
    def event(self) -> str:
        return str(self.data.get("Event") or "").lower()

    def get(self, name: str) -> str:
        """A text field, or "" when absent or not plain text."""
        value = self.data.get(name)
        return value if isinstance(value, str) else ""

    @property
    def dedupe_id(self) -> str:
        """MsgId for messages; FromUserName + CreateTime + Event (+ key) for events."""
        msg_id = self.get("MsgId") or self.get("MsgID")
        if self.msg_type != "event" and msg_id:
            return f"msg:{msg_id}"
        key = self.get("EventKey")[:40]
        return f"evt:{self.openid}:{self.get('CreateTime')}:{self.event}:{key}"[:128]


def signature_of(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def _arg(args: Any, name: str) -> str:
    value = args.get(name) if args is not None else None
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else ""


def check_request(config: WeChatConfig, args: Any, now: float | None = None) -> tuple[str, str]:
    """The `signature` over (token, timestamp, nonce) every WeChat request carries. Returns (timestamp, nonce)."""
    signature, timestamp, nonce = _arg(args, "signature"), _arg(args, "timestamp"), _arg(args, "nonce")
    if not signature or not timestamp or not nonce or len(nonce) > 64 or len(timestamp) > 20:
        raise PushError(403, "bad_signature")
    if not _same(signature_of(config.token, timestamp, nonce), signature.lower()):
        raise PushError(403, "bad_signature")
    skew = int(config.max_timestamp_skew_seconds or 0)
    if skew > 0:
        try:
            moment = int(timestamp)
        except ValueError as error:
            raise PushError(403, "stale") from error
        if abs((time.time() if now is None else now) - moment) > skew:
            raise PushError(403, "stale")
    return timestamp, nonce


def verify_url(config: WeChatConfig, args: Any, now: float | None = None) -> str:
    """`GET /wechat`: the echostr to send back when the signature holds."""
    check_request(config, args, now)
    echostr = _arg(args, "echostr")
    if not echostr or len(echostr) > 1024:
        raise PushError(400, "bad_field")
    return echostr


def _xml_tree(text: str) -> dict[str, Any]:
    """A flat `<xml>` document as a dict (nested elements as dicts), parsed with DTDs forbidden."""
    try:
        root: Element = SafeET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, SafeET.ParseError, ValueError, SyntaxError) as error:
        raise PushError(400, "bad_xml") from error
    if root.tag != "xml":
        raise PushError(400, "bad_xml")

    def node(element: Element, depth: int) -> Any:
        children = list(element)
        if not children:
            return element.text or ""
        if depth > 4:
            raise PushError(400, "bad_xml")
        out: dict[str, Any] = {}
        for child in children:
            out[child.tag] = node(child, depth + 1)
        return out

    tree = node(root, 0)
    if not isinstance(tree, dict):
        raise PushError(400, "bad_field")
    return tree


def _decode(body: bytes, limit: int) -> str:
    if len(body) > limit:
        raise PushError(413, "too_large", limit=limit)
    if not body.strip():
        raise PushError(400, "bad_xml")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PushError(400, "bad_xml") from error


def crypto_for(config: WeChatConfig) -> WeChatCrypto:
    return WeChatCrypto(config.token, config.encoding_aes_key, config.app_id)


def open_push(config: WeChatConfig, args: Any, body: bytes, now: float | None = None) -> Push:
    """`POST /wechat`: verify, decrypt when needed, parse. Raises PushError."""
    timestamp, nonce = check_request(config, args, now)
    text = _decode(body, int(config.max_body_bytes))
    encrypted = _arg(args, "encrypt_type").lower() == "aes"
    if config.mode == "safe" and not encrypted:
        raise PushError(400, "need_encryption")
    if config.mode == "plaintext":
        encrypted = False
    outer = _xml_tree(text)
    if encrypted:
        encrypt = outer.get("Encrypt")
        msg_signature = _arg(args, "msg_signature")
        if not isinstance(encrypt, str) or not encrypt or not msg_signature:
            raise PushError(403 if not msg_signature else 400, "bad_signature" if not msg_signature else "bad_field")
        if not _same(signature_of(config.token, timestamp, nonce, encrypt), msg_signature.lower()):
            raise PushError(403, "bad_signature")
        try:
            inner = crypto_for(config).decrypt_message({"Encrypt": encrypt}, msg_signature.lower(), timestamp, nonce)
        except InvalidSignatureException as error:
            raise PushError(403, "bad_signature") from error
        except InvalidAppIdException as error:
            raise PushError(403, "bad_encryption") from error
        except Exception as error:  # bad base64, bad padding, not UTF-8: the ciphertext is garbage
            raise PushError(400, "bad_encryption") from error
        data = _xml_tree(_decode(inner.encode("utf-8", "surrogatepass"), int(config.max_body_bytes)))
    else:
        data = outer
    _check_fields(data)
    try:
        message = parse_message(_as_xml(data))
    except Exception as error:
        raise PushError(400, "bad_field") from error
    return Push(data=data, message=message, encrypted=encrypted, nonce=nonce, timestamp=timestamp)


def _check_fields(data: dict[str, Any]) -> None:
    for name in ("FromUserName", "MsgType", "CreateTime"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise PushError(400, "bad_field")
    if not OPENID.match(data["FromUserName"]) or not data["CreateTime"].isdigit() or len(data["CreateTime"]) > 12:
        raise PushError(400, "bad_field")
    if not re.match(r"^[A-Za-z_]{1,32}$", data["MsgType"]):
        raise PushError(400, "bad_field")
    msg_id = data.get("MsgId", data.get("MsgID"))
    if msg_id is not None and (not isinstance(msg_id, str) or not msg_id.isdigit() or len(msg_id) > 24):
        raise PushError(400, "bad_field")
    event = data.get("Event")
    if data["MsgType"].lower() == "event" and (not isinstance(event, str) or not re.match(r"^[A-Za-z_]{1,40}$", event)):
        raise PushError(400, "bad_field")
    for value in data.values():
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            raise PushError(400, "bad_field")


def _as_xml(data: dict[str, Any]) -> str:
    """Re-serialise the already-validated fields for wechatpy's parser (no DTD can survive this)."""
    from xml.sax.saxutils import escape

    def render(value: Any) -> str:
        if isinstance(value, dict):
            return "".join(f"<{key}>{render(inner)}</{key}>" for key, inner in value.items())
        return escape(str(value))

    return f"<xml>{render(data)}</xml>"


def passive_text(push: Push, content: str) -> str:
    """The XML of a passive text reply to this push (not yet encrypted)."""
    reply = TextReply(source=push.account, target=push.openid, content=content)
    return reply.render()


def wrap_reply(config: WeChatConfig, push: Push, xml: str) -> str:
    """Encrypt a passive reply when the push came encrypted (safe mode, or compatible mode with AES)."""
    if not push.encrypted:
        return xml
    return crypto_for(config).encrypt_message(xml, push.nonce, str(int(time.time())))
