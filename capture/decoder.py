"""Streaming decoder for serial frames: bytes in any chunking -> complete, CRC-checked frames.

A serial line gives no message boundaries: frames arrive split across reads, after boot text,
or damaged by noise. The decoder looks for the sync bytes, checks version, length and CRC, and
on any defect skips one byte and searches again, so one bad byte costs one frame, never the
stream. What it skips is counted (``garbage_bytes``, ``crc_errors``) in a
:class:`~capture.transport.base.LinkStats`; sequence gaps are the transport's job (they need the
frame type, and BLE has no decoder).

Speed matters (1 kHz x 6 channels must cost the capture process well under 15 % of a core), so
the happy path does no per-byte Python work: ``bytearray.find`` for the sync, one
``struct.unpack_from`` for the header, ``binascii.crc_hqx`` (C) for the CRC.
"""
from __future__ import annotations

import binascii
import struct

from capture import protocol as p
from capture.transport.base import LinkStats

_AFTER_SYNC = struct.Struct("<BBHIH")  # version, type, seq, t_us, length
_CRC = struct.Struct("<H")
_TYPES = p.FrameType._value2member_map_


class StreamDecoder:
    """Feed it bytes as they arrive; get back every complete valid frame, in order.

    ``garbage_bytes`` counts every byte that was not part of a valid frame (boot text, noise, the
    bytes of a CRC-bad frame); ``crc_errors`` counts frames whose header was plausible but whose
    CRC failed. ``bad_versions`` remembers protocol versions seen in otherwise well-formed headers,
    so the transport can say "the board speaks protocol 2" instead of "nothing recognizable".
    """

    def __init__(self, stats: LinkStats | None = None) -> None:
        self.stats = stats if stats is not None else LinkStats()
        self._buf = bytearray()
        self.bad_versions: set[int] = set()

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[p.Frame]:
        buf = self._buf
        buf += data
        self.stats.bytes += len(data)
        out: list[p.Frame] = []
        n = len(buf)
        pos = 0
        garbage = 0
        sync = p.SYNC
        header_size = p.HEADER_SIZE
        while True:
            i = buf.find(sync, pos)
            if i < 0:
                # keep a trailing first sync byte: its partner may be in the next read
                keep = n - 1 if n > pos and buf[n - 1] == sync[0] else n
                garbage += keep - pos
                pos = keep
                break
            garbage += i - pos
            if n - i < header_size:
                pos = i
                break
            ver, ftype, seq, t_us, length = _AFTER_SYNC.unpack_from(buf, i + 2)
            if ver != p.PROTOCOL_VERSION or length > p.MAX_PAYLOAD:
                if ver != p.PROTOCOL_VERSION and length <= p.MAX_PAYLOAD and ftype in _TYPES:
                    self.bad_versions.add(ver)
                garbage += 1
                pos = i + 1
                continue
            end = i + header_size + length
            if end + p.CRC_SIZE > n:
                pos = i  # incomplete: wait for more bytes
                break
            with memoryview(buf) as mv:
                crc = binascii.crc_hqx(mv[i + 2:end], 0xFFFF)
                payload = bytes(mv[i + header_size:end])
            if crc != _CRC.unpack_from(buf, end)[0]:
                self.stats.crc_errors += 1
                garbage += 1
                pos = i + 1
                continue
            out.append(p.Frame(_TYPES.get(ftype, ftype), seq, t_us, payload))
            pos = end + p.CRC_SIZE
        self.stats.garbage_bytes += garbage
        if pos:
            del buf[:pos]
        return out
