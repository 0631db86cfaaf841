"""Channels: one module per platform behind `OutputChannel` and `InboundMessage`."""

from channels.base import InboundMessage, OutboundMessage, OutputChannel, compact_text

__all__ = ["InboundMessage", "OutboundMessage", "OutputChannel", "compact_text"]
