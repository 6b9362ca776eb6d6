"""Writing a password-protected zip: one deflated member, traditional PKWARE encryption.

The GPQA authors ship their data in such a zip (its password published) so that the questions
never sit in plain text; ``zipfile`` reads these but cannot write them. ``r1eval data download``
stores GPQA this way, byte-compatible with ``unzip -P`` and with r1eval's own reader
(``data.read_zip_member``). The scheme is weak cryptography by design here: it keeps text out
of plain sight (crawlers, grep, backups), not away from someone who has the password.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

_CRC_TABLE = [0] * 256
for _byte in range(256):
    _value = _byte
    for _ in range(8):
        _value = (_value >> 1) ^ 0xEDB88320 if _value & 1 else _value >> 1
    _CRC_TABLE[_byte] = _value

_VERSION = 20  # 2.0: deflate and traditional encryption
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_DEFLATED = 8


def _crc_step(crc: int, byte: int) -> int:
    return (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]


class _Keys:
    """The three keys of the traditional PKWARE cipher (APPNOTE.TXT, section 6.1)."""

    def __init__(self, password: bytes) -> None:
        self.k0, self.k1, self.k2 = 0x12345678, 0x23456789, 0x34567890
        for byte in password:
            self.update(byte)

    def update(self, byte: int) -> None:
        self.k0 = _crc_step(self.k0, byte)
        self.k1 = ((self.k1 + (self.k0 & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        self.k2 = _crc_step(self.k2, self.k1 >> 24)

    def encrypt(self, data: bytes) -> bytes:
        out = bytearray(len(data))
        for index, byte in enumerate(data):
            temp = (self.k2 | 2) & 0xFFFF
            out[index] = byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF)
            self.update(byte)
        return bytes(out)


def _dos_time(now: float) -> tuple[int, int]:
    t = time.localtime(now)
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), \
        ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday


def write_encrypted_zip(path: Path, member: str, content: bytes, password: bytes) -> None:
    """Write ``path``: a zip holding ``content`` as ``member``, deflated then encrypted."""
    crc = zlib.crc32(content)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressed = deflater.compress(content) + deflater.flush()
    keys = _Keys(password)
    # 11 random bytes, then the CRC's high byte: what a reader checks the password against.
    header = os.urandom(11) + bytes([crc >> 24])
    encrypted = keys.encrypt(header) + keys.encrypt(compressed)
    name = member.encode("utf-8")
    flags = _FLAG_ENCRYPTED | _FLAG_UTF8
    mod_time, mod_date = _dos_time(time.time())
    sizes = (crc, len(encrypted), len(content))
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", _VERSION, flags, _DEFLATED, mod_time,
                        mod_date, *sizes, len(name), 0) + name
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", _VERSION, _VERSION, flags, _DEFLATED,
                          mod_time, mod_date, *sizes, len(name), 0, 0, 0, 0, 0o100644 << 16,
                          0) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(encrypted), 0)
    path.write_bytes(local + encrypted + central + end)
