"""Bytes of unknown encoding -> text, without mangling them: BOMs, UTF-8, the Windows code pages, GB18030.

Example:
    >>> decode_text("Café crème à Zürich".encode("cp1252"))
    'Café crème à Zürich'
"""

from __future__ import annotations

import codecs
import re

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but \t and \n, after \r is gone
UTF16_32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Longest first: the UTF-32 LE BOM (FF FE 00 00) begins with the UTF-16 LE one (FF FE).
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_HIGH_BYTES = re.compile(rb"[\x80-\xff]+")
_ONE_BYTE = ["cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1257"]  # the Windows code pages
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
# Browsers read these labels as their supersets (WHATWG Encoding Standard), and so do real pages.
_HTML_ENCODINGS = {"ascii": "cp1252", "iso8859-1": "cp1252", "gb2312": "gb18030", "gbk": "gb18030"}


def decode_text(data: bytes) -> str:
    """Decode bytes whose encoding is unknown, without mangling them.

    A BOM decides first; then strict UTF-8 (almost all text today); then charset-normalizer's guess when it
    is confident (this finds GBK/GB18030, Shift-JIS, cp1251, ...); then cp1252, then latin-1, which
    accepts any bytes.

    Example:
        >>> decode_text("Café crème à Zürich".encode("cp1252"))
        'Café crème à Zürich'
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if (guess := _guess_encoding(data)) is not None:
        return guess
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _guess_encoding(data: bytes) -> str | None:
    # Text in a one-byte code page has lone high bytes between ASCII ones ("Z\xfcrich", "it\x92s"); when
    # most are lone, ask the detector about those code pages first, so it cannot read "Zürich" as Chinese.
    runs = _HIGH_BYTES.findall(data[:65536])
    one_byte = sum(len(run) == 1 for run in runs) * 2 >= len(runs)
    for candidates in [_ONE_BYTE, None] if one_byte else [None]:
        if (text := _detect(data, candidates)) is not None:
            return text
    return None


def _detect(data: bytes, candidates: list[str] | None) -> str | None:
    from charset_normalizer import from_bytes

    matches = from_bytes(data, cp_isolation=candidates)
    best = matches.best()
    if best is None or best.chaos > 0.1:
        return None
    # Western code pages give different, equally clean letters for the same byte (0xE8 is "è" in cp1252,
    # "č" in cp1250), so the detector often ties them; cp1252 is by far the most common, so it wins ties.
    tied = [m.encoding for m in matches if m.chaos <= best.chaos + 0.01]
    try:
        text = data.decode("cp1252" if "cp1252" in tied else best.encoding)
    except UnicodeDecodeError:
        return None
    return text if control_share(text) < 0.01 else None


def decode_html(data: bytes) -> str:
    """An HTML page's text: a BOM first, then its ``<meta charset>`` (read as browsers read it), then a guess."""
    if not data.startswith(tuple(bom for bom, _ in _BOMS)) and (m := _META_CHARSET.search(data[:4096])):
        try:
            encoding = codecs.lookup(m[1].decode("ascii")).name
            return data.decode(_HTML_ENCODINGS.get(encoding, encoding))
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown label: guess as for any text
    return decode_text(data)


def control_share(text: str) -> float:
    """The share of characters that no text contains: a decoded binary file is full of them."""
    text = text.replace("\r", "").replace("\f", "")
    return (len(text) - len(CONTROL_CHARS.sub("", text))) / max(len(text), 1)
