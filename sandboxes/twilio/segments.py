"""How Twilio splits a text into segments: GSM-7 when every character is in the GSM 03.38
alphabet (160 a message, 153 a part; the extension table's characters take two septets), UCS-2
otherwise (70 a message, 67 a part, counted in UTF-16 code units: an emoji takes two)."""

from __future__ import annotations

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


def count_segments(body: str) -> tuple[str, int]:
    """("GSM-7" or "UCS-2", number of segments) of a body as Twilio bills it."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in body):
        units = sum(2 if ch in GSM_EXTENSION else 1 for ch in body)
        return "GSM-7", 1 if units <= 160 else -(-units // 153)
    units = len(body.encode("utf-16-le")) // 2
    return "UCS-2", 1 if units <= 70 else -(-units // 67)
