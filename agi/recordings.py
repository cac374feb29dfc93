"""Uploaded recordings: WAV or MP3 in, 8 kHz mono 16-bit WAV for Asterisk out.

A recording is stored under `<sounds>/uploads/<sha256 of the converted audio>.wav` and a menu
refers to it as `uploads/<sha256>` (Asterisk plays a path without extension). The type is
decided by the file's bytes, not its name; sox gets absolute temp paths only, never user text.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path

from kc.errors import InvalidInput

MAX_BYTES = 10 * 1024 * 1024
UPLOAD_DIR = "uploads"
AUDIO_REF = re.compile(r"^uploads/[0-9a-f]{64}$")


def sniff(data: bytes) -> str | None:
    """'wav', 'mp3' or None, from the first bytes."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3":
        return "mp3"
    if len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0 and (data[1] & 0x06) != 0:
        return "mp3"   # MPEG audio frame sync, layer bits set
    return None


def check_upload(data: bytes, filename: str = "") -> str:
    """The kind of an upload, or InvalidInput with a message fit for the administrator."""
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"the file is {len(data) / 1024 / 1024:.1f} MB; recordings may be at "
                           f"most {MAX_BYTES // 1024 // 1024} MB")
    if not data:
        raise InvalidInput("the file is empty")
    kind = sniff(data)
    if kind is None:
        raise InvalidInput(f"{filename or 'the file'} is not a WAV or MP3 recording; "
                           "upload a .wav or .mp3 file")
    return kind


async def store_upload(data: bytes, sounds_dir: Path, filename: str = "", sox: str = "sox") -> str:
    """Convert an upload to 8 kHz mono WAV; returns the menu reference `uploads/<hash>`."""
    kind = check_upload(data, filename)
    target_dir = Path(sounds_dir).absolute() / UPLOAD_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    fd, src_name = tempfile.mkstemp(prefix=".upload-", suffix=f".{kind}", dir=target_dir)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    fd, out_name = tempfile.mkstemp(prefix=".converted-", suffix=".wav", dir=target_dir)
    os.close(fd)
    src, out = Path(src_name), Path(out_name)
    try:
        proc = await asyncio.create_subprocess_exec(
            sox, "-q", "-t", kind, str(src), "-r", "8000", "-c", "1", "-b", "16",
            "-e", "signed-integer", str(out),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise InvalidInput(f"{filename or 'the file'} could not be read as {kind.upper()} audio "
                               f"({err.decode('utf-8', 'replace').strip()[:200]})")
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        final = target_dir / f"{digest}.wav"
        os.chmod(out, 0o644)
        os.replace(out, final)
        return f"{UPLOAD_DIR}/{digest}"
    finally:
        src.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
