"""A waiting caller's announcement set on the channel ahead of time: `kc-wait` runs
`announce,<contact>,ahead` a few seconds before it is due, and the service answers with one
`SET VARIABLE KC_ANNOUNCE <file>&<file>...` that the dialplan plays when the wait ends. A real
store, distributor and FastAGI server; Asterisk is a scripted peer."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from acd.distributor import Distributor
from acd.queue_log import QueueLog
from agi import phrases
from agi.acd_routes import AcdRoutes
from agi.fastagi import FastAgiServer
from agi.prompts import PromptCache
from demo_template import load_demo
from kc import queries
from kc.store import Store
from test_agi_seam import SECRET, ScriptedAsterisk, asterisk_headers, served
from test_distributor_state import Clock, ScriptedPbx, caller_waits


def rendered(directory: Path) -> PromptCache:
    """Every Swedish announcement part, as if rendered at start-up."""
    prompts = PromptCache(directory)
    for text in phrases.all_parts("sv"):
        path = prompts.path_for(text, "sv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_name(path.name + ".wav").write_bytes(b"RIFF")
    return prompts


async def asked(tmp_path: Path, sounds: Path, *args: str, replies: int = 1,
                waiting: int = 2) -> tuple[list[str], list[dict], PromptCache]:
    """`waiting` callers wait for school; Asterisk runs `announce,<last caller>,*args`.
    Returns the commands the service sent, the last caller's contact events, and the
    prompts."""
    clock = Clock()
    store = Store(tmp_path / "kc.db")
    await store.run(load_demo, clock)
    dist = Distributor(store, ScriptedPbx(), clock, QueueLog(tmp_path / "queue_log"))
    await dist.load()
    prompts = rendered(sounds)
    server = FastAgiServer(AcdRoutes(dist, prompts).routes(), "127.0.0.1", 0,
                           command_timeout=2, secret=SECRET)
    await server.start()
    try:
        ids = [await caller_waits(store, dist, clock, "school", f"070000000{n}")
               for n in range(waiting)]
        peer = ScriptedAsterisk(server.port, asterisk_headers(
            served("announce"), str(ids[-1] if ids else 999999), *args))
        await peer.run(["200 result=0 endpos=1600"] * replies)
        await store.run(lambda db: None)      # the records written behind
        events = await store.run(queries.contact_events, ids[-1]) if ids else []
        return peer.received, events, prompts
    finally:
        await server.stop()
        await dist.close()


def files_of(prompts: PromptCache, position: int) -> list[str]:
    parts, _ = phrases.announcement("sv", position, 0)
    return [str(prompts.path_for(p, "sv")) for p in parts]


def test_ahead_the_files_are_set_in_one_command_and_the_turn_recorded(tmp_path: Path):
    received, events, prompts = asyncio.run(asked(tmp_path, tmp_path / "sounds", "ahead"))
    assert len(received) == 1 and received[0].startswith('SET VARIABLE "KC_ANNOUNCE" "'), received
    files = received[0].split('"')[3].split("&")
    said = files_of(prompts, 2)
    assert files[:3] == said[:3]            # "Du är nummer" "2" "i kön" ...
    assert all(Path(f).with_name(Path(f).name + ".wav").is_file() for f in files)
    assert [e["data"]["position"] for e in events if e["kind"] == "announced"] == [2]


def test_when_due_without_files_set_the_parts_are_said_one_by_one(tmp_path: Path):
    received, _, prompts = asyncio.run(asked(tmp_path, tmp_path / "sounds", replies=20))
    said = files_of(prompts, 2)
    assert received[:3] == [f'STREAM FILE "{f}" "1"' for f in said[:3]], received


@pytest.mark.parametrize("name", ["a,b", "a&b", "a|b", "a(b)"])
def test_a_file_name_the_dialplan_would_split_is_never_set(tmp_path: Path, name: str):
    received, events, _ = asyncio.run(asked(tmp_path, tmp_path / name, "ahead"))
    assert received == []                   # when due, the dialplan asks part by part
    assert "announced" not in [e["kind"] for e in events]   # recorded then, once


def test_a_caller_who_no_longer_waits_has_nothing_set_and_the_wait_ends(tmp_path: Path):
    received, _, _ = asyncio.run(asked(tmp_path, tmp_path / "sounds", "ahead", waiting=0))
    assert received == ['SET VARIABLE "KC_WAIT_DONE" "yes"']
