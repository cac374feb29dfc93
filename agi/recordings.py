"""Uploaded recordings: WAV or MP3 in, 8 kHz mono 16-bit WAV for Asterisk out.

A recording is stored under `<sounds>/uploads/<sha256 of the converted audio>.wav` and a menu
refers to it as `uploads/<sha256>` (Asterisk plays a path without extension). The type is
decided by the file's bytes, not its name; sox gets absolute temp paths only, never user text.
"""
from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

from kc.backup import file_sha256
from kc.errors import InvalidInput

MAX_BYTES = 10 * 1024 * 1024
# A header may declare any length (a 2 KB WAV "at 1 Hz" lasts half an hour): the converted
# audio is bounded in time, so in size (10 min at 8 kHz, 16 bit: 9.6 MB), and sox in seconds.
MAX_SECONDS = 600
MIN_RATE = 4000        # Hz; anything slower is no speech recording
SOX_TIMEOUT = 60.0
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
    name = filename or "the file"
    try:
        rate = await _sox_info(sox, kind, src, "-r", name)
        seconds = await _sox_info(sox, kind, src, "-D", name)
        if rate < MIN_RATE:
            raise InvalidInput(f"{name} is sampled at {rate:g} Hz; recordings need at least "
                               f"{MIN_RATE} Hz")
        if seconds > MAX_SECONDS:
            raise InvalidInput(f"{name} lasts {seconds / 60:.0f} minutes; recordings may last at "
                               f"most {MAX_SECONDS // 60} minutes")
        _, err, code = await _run(sox, "-q", "-t", kind, str(src), "-r", "8000", "-c", "1",
                                  "-b", "16", "-e", "signed-integer", str(out),
                                  "trim", "0", str(MAX_SECONDS))
        if code != 0:
            raise InvalidInput(f"{name} could not be read as {kind.upper()} audio "
                               f"({err.decode('utf-8', 'replace').strip()[:200]})")
        if out.stat().st_size > MAX_SECONDS * 8000 * 2 + 4096:
            raise InvalidInput(f"{name} converts to more audio than a recording may hold")
        digest = file_sha256(out)
        final = target_dir / f"{digest}.wav"
        os.chmod(out, 0o644)
        os.replace(out, final)
        return f"{UPLOAD_DIR}/{digest}"
    finally:
        src.unlink(missing_ok=True)
        out.unlink(missing_ok=True)


async def _run(*argv: str) -> tuple[bytes, bytes, int]:
    """Run sox (no shell, no user text), killed after SOX_TIMEOUT seconds."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), SOX_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise InvalidInput(f"converting the recording took longer than {SOX_TIMEOUT:.0f} s") from None
    return out, err, proc.returncode or 0


async def _sox_info(sox: str, kind: str, src: Path, flag: str, name: str) -> float:
    """What the file's header declares: `-r` sample rate, `-D` duration in seconds."""
    out, err, code = await _run(sox, "--info", flag, str(src))   # type: by the temp suffix
    try:
        value = float(out.decode().strip())
    except ValueError:
        value = -1.0
    if code != 0 or value < 0:
        raise InvalidInput(f"{name} could not be read as {kind.upper()} audio "
                           f"({err.decode('utf-8', 'replace').strip()[:200] or 'no audio header'})")
    return value


