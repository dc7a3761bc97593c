"""Baked badge images: the credential carried inside the PNG itself (Open Badges baking spec).

OB 3.0 puts the credential (JSON or a VC-JWT) in an ``iTXt`` chunk with keyword
``openbadgecredential``; OB 2.0 uses keyword ``openbadges`` with the assertion URL or JSON. A PNG
holds at most one such chunk, placed before the image data. We also draw the plain badge image
(a disc in a colour taken from the badge id) so every tenant has one without uploading art.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OB3_KEYWORD = "openbadgecredential"
OB2_KEYWORD = "openbadges"


class BakingError(ValueError):
    """Not a PNG, or a PNG without (or with a broken) baked badge."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    if not png.startswith(PNG_SIGNATURE):
        raise BakingError("not a PNG file")
    out, pos = [], len(PNG_SIGNATURE)
    while pos < len(png):
        if pos + 8 > len(png):
            raise BakingError("truncated PNG chunk header")
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        data = png[pos + 8 : pos + 8 + length]
        if len(data) != length or pos + 12 + length > len(png):
            raise BakingError("truncated PNG chunk")
        out.append((kind, data))
        pos += 12 + length
    return out


def _itxt_keyword(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("latin-1")


def bake(png: bytes, text: str, keyword: str = OB3_KEYWORD) -> bytes:
    """``png`` with ``text`` in an uncompressed iTXt chunk, replacing any earlier badge."""
    chunks = [
        (kind, data)
        for kind, data in _chunks(png)
        if not (kind == b"iTXt" and _itxt_keyword(data) in (OB3_KEYWORD, OB2_KEYWORD))
    ]
    # keyword \0, compression flag 0, method 0, empty language tag \0, empty translated \0, text
    itxt = keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")
    out = bytearray(PNG_SIGNATURE)
    for kind, data in chunks:
        if kind == b"IDAT" and itxt:
            out += _chunk(b"iTXt", itxt)
            itxt = b""
        out += _chunk(kind, data)
    return bytes(out)


def unbake(png: bytes) -> tuple[str, str]:
    """(keyword, text) of the baked badge in ``png``; BakingError if there is none."""
    for kind, data in _chunks(png):
        if kind != b"iTXt":
            continue
        keyword = _itxt_keyword(data)
        if keyword not in (OB3_KEYWORD, OB2_KEYWORD):
            continue
        rest = data[len(keyword) + 1 :]
        if len(rest) < 2:
            raise BakingError("broken iTXt chunk")
        compressed, body = rest[0], rest[2:]
        _language, _, body = body.partition(b"\0")
        _translated, _, body = body.partition(b"\0")
        try:
            text = zlib.decompress(body) if compressed else body
            return keyword, text.decode("utf-8")
        except (zlib.error, UnicodeDecodeError) as exc:
            raise BakingError(f"the baked badge is unreadable: {exc}") from exc
    raise BakingError("this PNG carries no baked Open Badge")


def badge_png(seed: str, size: int = 128) -> bytes:
    """A plain RGBA PNG: a filled disc whose colour is derived from ``seed`` (the badge id)."""
    digest = hashlib.sha256(seed.encode()).digest()
    red, green, blue = (64 + digest[0] % 160, 64 + digest[1] % 160, 64 + digest[2] % 160)
    centre, radius2 = (size - 1) / 2, (size / 2 - 2) ** 2
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter: none
        for x in range(size):
            inside = (x - centre) ** 2 + (y - centre) ** 2 <= radius2
            rows += bytes((red, green, blue, 255)) if inside else b"\0\0\0\0"
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )
