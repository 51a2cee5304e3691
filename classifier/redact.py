"""Masking of personal data in feedback text before it is stored: e-mails, URLs, card and phone numbers."""

from __future__ import annotations

import re

MASK_EMAIL = "[email]"
MASK_URL = "[url]"
MASK_CARD = "[card]"
MASK_PHONE = "[phone]"

_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
# 13 to 19 digits, optionally grouped by spaces or dashes: the lengths card schemes use.
_CARD_RE = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
# A phone number: +country code and digits, or at least three digit groups split by space, dot or
# dash, or an area code in brackets; 7 to 15 digits in all. Plain digit runs (order numbers) are kept.
_PHONE_RE = re.compile(
    r"(?<![\w+.-])(?:\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"
    r"|(?:\(\d{2,4}\)\s?|\d{2,5}[\s.-])\d{2,4}(?:[\s.-]\d{2,4}){1,3})(?![\w-]|\.\d)"
)
_DATE_RE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return MASK_CARD if _luhn_ok(digits) else match.group()


def _phone(match: re.Match[str]) -> str:
    found = match.group()
    digits = sum(ch.isdigit() for ch in found)
    return MASK_PHONE if 7 <= digits <= 15 and not _DATE_RE.fullmatch(found) else found


def mask_personal_data(text: str) -> str:
    """The text with e-mail addresses, URLs, card numbers (Luhn-valid) and phone numbers masked."""
    text = _EMAIL_RE.sub(MASK_EMAIL, text)
    text = _URL_RE.sub(MASK_URL, text)
    text = _CARD_RE.sub(_card, text)
    return _PHONE_RE.sub(_phone, text)
