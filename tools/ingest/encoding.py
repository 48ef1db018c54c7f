"""Which text encoding a CSV, JSON or JSONL batch is in.

Exports come as UTF-8 (with or without a byte-order mark), as UTF-16 with a BOM (Excel's
"Unicode text") or as GBK/GB18030 (Excel on a Chinese Windows machine). Strict decodes are tried
in that order; GB18030 decodes almost any byte string, so it comes after UTF-8. A file that is
UTF-8 but for a few bad bytes stays UTF-8: its bad rows are rejected one by one.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from tools.ingest.errors import InputFileError

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 (BOM)"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
# A file mostly in valid UTF-8 (by bytes) with a few stray bytes is UTF-8 with bad rows.
_MOSTLY_UTF8 = 4

# Friendlier labels for the codecs people name.
_LABELS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (BOM)", "utf-16": "UTF-16", "gb18030": "GB18030"}


@dataclass(frozen=True)
class Decoded:
    """A batch's text; undecodable bytes are kept as lone surrogates (U+DC80-U+DCFF)."""

    text: str
    encoding: str  # the label shown to the user: UTF-8, UTF-8 (BOM), UTF-16, GB18030, ...
    detected: bool  # False when the caller named the encoding


def codec_name(name: str) -> str:
    """The codec for an encoding name given by a user; InputFileError when Python knows none."""
    try:
        return codecs.lookup(name.strip()).name
    except (LookupError, ValueError):
        raise InputFileError(
            f"--encoding: unknown encoding '{name.strip()[:40]}'; "
            "try utf-8, utf-8-sig, utf-16, gb18030 or gbk"
        ) from None


def label(codec: str) -> str:
    return _LABELS.get(codec, codec.upper())


def decode(data: bytes, encoding: str | None = None) -> Decoded:
    """Decode a batch file's bytes: with the named encoding, else the one detected."""
    if encoding:
        codec = codec_name(encoding)
        if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
            codec = "utf-8-sig"
        return Decoded(data.decode(codec, errors="surrogateescape"), label(codec), False)
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data.decode(codec, errors="surrogateescape"), name, True)
            except UnicodeDecodeError:  # pragma: no cover - surrogateescape decodes any bytes
                break
    try:
        return Decoded(data.decode("utf-8"), "UTF-8", True)
    except UnicodeDecodeError:
        pass
    loose = data.decode("utf-8", errors="surrogateescape")
    bad = sum(1 for ch in loose if "\udc80" <= ch <= "\udcff")
    good = sum(len(ch.encode("utf-8")) for ch in loose if "\x80" <= ch and not "\udc80" <= ch <= "\udcff")
    if good >= _MOSTLY_UTF8 * bad:
        return Decoded(loose, "UTF-8", True)
    try:
        return Decoded(data.decode("gb18030"), "GB18030", True)
    except UnicodeDecodeError:
        return Decoded(loose, "UTF-8", True)
