"""Text to 8 kHz telephone audio for Asterisk, cached on disk by content hash.

Asterisk plays a path *without* extension and picks `<path>.wav`. The file name
is a hash of everything that shapes the sound (voice, text, format version), so
an entry never goes stale and the cache needs no index: a changed prompt simply
gets a new file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from agi.menu import EServiceAction, InfoAction, Menu

# Bump when the pipeline below changes, so old files are not reused.
FORMAT_VERSION = "espeak-ng speed=160 | sox 8000Hz mono s16 norm-3 | v1"
SPEED_WPM = 160  # a little slower than espeak's 175: phone lines and second-language callers

# Menu language -> espeak-ng voice present on this system (`espeak-ng --voices`).
VOICES: Mapping[str, str] = MappingProxyType(
    {
        "sv": "sv",
        "en": "en-gb",
        "fi": "fi",
        "ar": "ar",
        "fa": "fa",
        "tr": "tr",
        "pl": "pl",
        "ru": "ru",
        "es": "es",
        "de": "de",
        "fr": "fr-fr",
        "bs": "bs",
        "hr": "hr",
        "sr": "sr",
        "ku": "ku",
        "am": "am",
        "da": "da",
        "nb": "nb",
        "no": "nb",
        "uk": "uk",
    }
)

# What Asterisk can play for a recording given without extension.
RECORDED_EXTENSIONS = (".wav", ".WAV", ".gsm", ".ulaw", ".alaw", ".sln", ".sln16", ".g722", ".g729")


class PromptError(RuntimeError):
    """A prompt could not be produced (unknown language, espeak/sox failure)."""


class PromptCache:
    """Synthesised prompts in `directory`, generated once, written atomically."""

    def __init__(
        self,
        directory: Path,
        espeak: str = "espeak-ng",
        sox: str = "sox",
        *,
        voices: Mapping[str, str] = VOICES,
        audio_root: Path | None = None,
        concurrency: int = 4,
    ):
        # Absolute, so no temp path handed to espeak/sox can ever look like an option.
        self.directory = Path(directory).absolute()
        self.espeak = espeak
        self.sox = sox
        self.voices = dict(voices)
        self.audio_root = Path(audio_root).absolute() if audio_root else None
        self.concurrency = max(1, concurrency)
        self._inflight: dict[Path, asyncio.Task[None]] = {}

    def voice_for(self, language: str) -> str:
        try:
            return self.voices[language]
        except KeyError:
            known = ", ".join(sorted(self.voices))
            raise PromptError(f"no espeak-ng voice for language {language!r} (known: {known})") from None

    def path_for(self, text: str, language: str) -> Path:
        """Where `ensure` puts this prompt (no extension); pure, for previews and tests."""
        voice = self.voice_for(language)
        key = json.dumps([voice, text, FORMAT_VERSION], ensure_ascii=False)
        return self.directory / hashlib.sha256(key.encode("utf-8")).hexdigest()

    async def ensure(self, text: str, language: str) -> Path:
        """Path (without `.wav`) of `text` spoken in `language`, generating it if missing."""
        if not text.strip():
            raise PromptError(f"empty prompt text for language {language!r}")
        base = self.path_for(text, language)
        wav = base.with_name(base.name + ".wav")
        if wav.is_file():
            return base
        task = self._inflight.get(wav)
        if task is None:  # one generation per file; concurrent callers share it
            task = asyncio.ensure_future(self._generate(text, self.voice_for(language), wav))
            self._inflight[wav] = task
            task.add_done_callback(lambda _t, wav=wav: self._inflight.pop(wav, None))
        await asyncio.shield(task)  # a cancelled caller must not cancel the others' file
        return base

    def recorded(self, audio: str | None) -> Path | None:
        """A recording's path without extension, if the file exists; else None."""
        if not audio:
            return None
        path = Path(audio)
        if not path.is_absolute() and self.audio_root:
            path = self.audio_root / path
        if path.suffix in RECORDED_EXTENSIONS and path.is_file():
            return path.with_suffix("")
        if any(path.with_name(path.name + ext).is_file() for ext in RECORDED_EXTENSIONS):
            return path
        return None

    async def resolve(self, text: str, language: str, audio: str | None = None) -> Path:
        """What to play: the recording when it exists, else synthesised `text`."""
        return self.recorded(audio) or await self.ensure(text, language)

    async def ensure_menu(self, menu: Menu) -> dict[tuple[str, str], Path]:
        """Pre-generate every prompt of `menu` before it goes live.

        Keys: (node_id, lang) for node prompts, ("node/digit", lang) for info and
        e-service texts, ("node/fail", lang) for those used as on_fail.
        """
        jobs: list[tuple[tuple[str, str], str, str, str | None]] = []
        for node_id, node in menu.nodes.items():
            actions = [(f"{node_id}/{o.digit}", o.action) for o in node.options]
            actions.append((f"{node_id}/fail", node.on_fail))
            for lang in menu.languages:
                jobs.append(((node_id, lang), node.prompt.get(lang, ""), lang, node.audio.get(lang)))
                for key, action in actions:
                    if isinstance(action, InfoAction):
                        jobs.append(((key, lang), action.prompt.get(lang, ""), lang, action.audio.get(lang)))
                    elif isinstance(action, EServiceAction):
                        jobs.append(((key, lang), action.address.get(lang, ""), lang, action.audio.get(lang)))

        limit = asyncio.Semaphore(self.concurrency)

        async def one(text: str, lang: str, audio: str | None) -> Path:
            async with limit:
                return await self.resolve(text, lang, audio)

        paths = await asyncio.gather(*(one(text, lang, audio) for _, text, lang, audio in jobs))
        return {key: path for (key, *_), path in zip(jobs, paths)}

    async def _generate(self, text: str, voice: str, wav: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        raw = _temp(self.directory, ".espeak-")
        out = _temp(self.directory, ".sox-")
        try:
            # Text only ever travels on stdin: no shell, nothing espeak could read as an option.
            await _run(
                [self.espeak, "-v", voice, "-s", str(SPEED_WPM), "-b", "1", "-w", str(raw), "--stdin"],
                text.encode("utf-8"),
            )
            await _run(
                [self.sox, "-q", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                 str(out), "norm", "-3"],
                b"",
            )
            os.chmod(out, 0o644)  # mkstemp makes 0600; Asterisk may run as another user
            os.replace(out, wav)  # atomic: players see the old state or the whole file
        finally:
            raw.unlink(missing_ok=True)
            out.unlink(missing_ok=True)


def _temp(directory: Path, prefix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".wav", dir=directory)
    os.close(fd)
    return Path(name)


async def _run(argv: list[str], stdin: bytes) -> None:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise PromptError(f"cannot run {argv[0]}: {exc}") from exc
    _, stderr = await proc.communicate(stdin)
    if proc.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip()
        raise PromptError(f"{os.path.basename(argv[0])} failed (exit {proc.returncode}): {message}")
