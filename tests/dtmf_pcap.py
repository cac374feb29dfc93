"""RFC 4733 DTMF pcaps for SIPp with distinct RTP sequence numbers and timestamps.

SIPp's stock `dtmf_2833_<d>.pcap` files all carry the same RTP sequence numbers and
timestamps from one capture (so "9" then "2" goes backwards), and Asterisk drops a DTMF event
whose sequence number or timestamp is older than the last one: in one call only the first digit
would be heard. `shifted(...)` writes a copy whose RTP sequence numbers and timestamps grow with
the digit's position in the call.
"""
from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

_GLOBAL_HEADER = 24
_RECORD_HEADER = 16


def shifted(source: Path, target: Path, position: int) -> Path:
    """Copy `source` to `target` renumbered: seq from 1000 + 100*position, timestamp
    160000 + 16000*position (relative order inside the event kept)."""
    data = bytearray(Path(source).read_bytes())
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    link_len = {1: 14, 0: 4, 113: 16, 101: 0}.get(linktype, 14)
    off = _GLOBAL_HEADER
    first: tuple[int, int] | None = None
    while off + _RECORD_HEADER <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        pkt = off + _RECORD_HEADER
        ip = pkt + link_len
        ihl = (data[ip] & 0x0F) * 4
        udp = ip + ihl
        rtp = udp + 8
        data[udp + 6:udp + 8] = b"\0\0"   # UDP checksum optional over IPv4
        seq, ts = struct.unpack("!HI", data[rtp + 2:rtp + 8])
        if first is None:
            first = (seq, ts)
        data[rtp + 2:rtp + 8] = struct.pack(
            "!HI", (1000 + 100 * position + seq - first[0]) & 0xFFFF,
            (160000 + 16000 * position + ts - first[1]) & 0xFFFFFFFF)
        off = pkt + incl
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and target.read_bytes() == data:
        return target   # a running SIPp may be reading it: never rewrite in place
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_bytes(bytes(data))
    os.replace(tmp, target)
    return target
