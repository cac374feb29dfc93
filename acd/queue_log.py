"""Asterisk's `queue_log` format, so existing queue-reporting tools can read our records.

Each line: `epoch|callid|queuename|agent|event|data1|data2|data3...`, with the data fields
app_queue (Asterisk 16) writes for each event (`FORMATS`; `check_line` says what is wrong with a
line). Positions are 1-based places in the queue; times in whole seconds unless named `_ms`.
What the distributor writes when (see `acd.records`):

- ENTERQUEUE  url|callerid|position          the caller reached the queue (its place then)
- CONNECT     holdtime|member uniqueid|ringtime   the agent answered (ring time in seconds)
- COMPLETECALLER / COMPLETEAGENT  holdtime|calltime|origposition
- TRANSFER    extension|context|holdtime|calltime|origposition
- ABANDON     position|origposition|waittime  the caller hung up while waiting
- EXITWITHKEY key|position|origposition|waittime  the caller left by a key (1: call-back)
- EXITWITHTIMEOUT position|origposition|waittime  the queue closed (opening hours) while waiting
- RINGNOANSWER ringtime_ms / RINGCANCELED ringtime_ms (the caller left while the agent rang)
- AGENTLOGIN channel / AGENTLOGOFF channel|logintime (queue NONE)
- ADDMEMBER / REMOVEMEMBER / PAUSE reason / UNPAUSE reason: one line per queue the agent serves

Every ENTERQUEUE gets exactly one exit: COMPLETE*, TRANSFER, ABANDON, EXITWITHKEY or
EXITWITHTIMEOUT.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def _field(value: object) -> str:
    return str(value).replace("|", "/").replace("\n", " ").replace("\r", " ")


class QueueLog:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, epoch: float, callid: str, queue: str, agent: str, event: str,
              *data: object) -> None:
        line = "|".join(_field(v) for v in (int(epoch), callid, queue, agent, event, *data))
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


# event -> its data fields as app_queue writes them; `int` fields must be whole numbers >= 0
# (positions >= 1). Lines of other events are not ours.
FORMATS: dict[str, tuple[str, ...]] = {
    "ENTERQUEUE": ("url", "callerid", "position"),
    "CONNECT": ("holdtime", "memberuniqueid", "ringtime"),
    "COMPLETECALLER": ("holdtime", "calltime", "origposition"),
    "COMPLETEAGENT": ("holdtime", "calltime", "origposition"),
    "TRANSFER": ("extension", "context", "holdtime", "calltime", "origposition"),
    "ABANDON": ("position", "origposition", "waittime"),
    "EXITWITHKEY": ("key", "position", "origposition", "waittime"),
    "EXITWITHTIMEOUT": ("position", "origposition", "waittime"),
    "RINGNOANSWER": ("ringtime_ms",),
    "RINGCANCELED": ("ringtime_ms",),
    "AGENTLOGIN": ("channel",),
    "AGENTLOGOFF": ("channel", "logintime"),
    "ADDMEMBER": ("paused",),
    "REMOVEMEMBER": ("",),
    "PAUSE": ("reason",),
    "UNPAUSE": ("reason",),
}
EXITS = frozenset({"COMPLETECALLER", "COMPLETEAGENT", "TRANSFER", "ABANDON", "EXITWITHKEY",
                   "EXITWITHTIMEOUT"})
_NUMBERS = {"holdtime", "calltime", "waittime", "ringtime", "ringtime_ms", "logintime"}
_POSITIONS = {"position", "origposition"}
_CALL_EVENTS = {"ENTERQUEUE", "CONNECT", "COMPLETECALLER", "COMPLETEAGENT", "TRANSFER", "ABANDON",
                "EXITWITHKEY", "EXITWITHTIMEOUT", "RINGNOANSWER", "RINGCANCELED"}
_MEMBER_EVENTS = {"ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE"}


def check_line(line: str) -> list[str]:
    """What is wrong with one queue_log line against app_queue's format (empty: nothing)."""
    fields = line.rstrip("\n").split("|")
    if len(fields) < 5:
        return [f"fewer than 5 fields: {line!r}"]
    epoch, callid, queue, agent, event, *data = fields
    problems = []
    if not epoch.isdigit():
        problems.append(f"time {epoch!r} is not a whole epoch second")
    shape = FORMATS.get(event)
    if shape is None:
        return problems + [f"unknown event {event!r}"]
    if len(data) != len(shape):
        problems.append(f"{event}: {len(data)} data fields, app_queue writes {len(shape)}")
        return problems
    if not callid:
        problems.append(f"{event}: empty callid")
    if event in _CALL_EVENTS or event in _MEMBER_EVENTS:
        if not queue or queue == "NONE":
            problems.append(f"{event}: no queue")
    elif queue != "NONE":
        problems.append(f"{event}: queue {queue!r}, app_agent_pool writes NONE")
    if event in ("ENTERQUEUE", "ABANDON", "EXITWITHKEY", "EXITWITHTIMEOUT"):
        if agent != "NONE":
            problems.append(f"{event}: agent {agent!r}, app_queue writes NONE")
    elif not agent or agent == "NONE":
        problems.append(f"{event}: no agent")
    for name, value in zip(shape, data):
        if name in _NUMBERS and not value.isdigit():
            problems.append(f"{event}: {name} {value!r} is not a whole number")
        if name in _POSITIONS and not (value.isdigit() and int(value) >= 1):
            problems.append(f"{event}: {name} {value!r} is not a place in the queue (>= 1)")
    if event == "ADDMEMBER" and data[0] not in ("", "PAUSED"):
        problems.append(f"ADDMEMBER: {data[0]!r} (app_queue writes '' or PAUSED)")
    if event == "REMOVEMEMBER" and data[0]:
        problems.append("REMOVEMEMBER: app_queue writes an empty data field")
    return problems


def pseudonymise(path: Path, before_epoch: float, pseudonym: Callable[[str], str],
                 prefix: str) -> int:
    """Retention: caller numbers in ENTERQUEUE lines older than `before_epoch` replaced by
    their pseudonym (the same one the store uses), the rest of each line kept. Rewrites the
    file atomically; returns the number of lines changed."""
    if not path.exists():
        return 0
    changed = 0
    tmp = path.with_suffix(".purge.tmp")   # streamed: the file is never held in memory
    with path.open(encoding="utf-8", errors="replace") as fh, tmp.open("w", encoding="utf-8") as out:
        for line in fh:
            fields = line.rstrip("\n").split("|")
            try:
                old = float(fields[0]) < before_epoch
            except (ValueError, IndexError):
                old = False
            if old and len(fields) > 6 and fields[4] == "ENTERQUEUE" and fields[6] \
                    and not fields[6].startswith(prefix):
                fields[6] = pseudonym(fields[6])
                changed += 1
            out.write("|".join(fields) + "\n")
    if changed:
        os.replace(tmp, path)
    else:
        tmp.unlink()
    return changed
