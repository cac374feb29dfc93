"""Quoting of AGI command arguments.

Asterisk splits an AGI command line on spaces and tabs, `"` toggles quoting, `\\` escapes the
next character and a newline ends the command. Anything we did not write ourselves (caller ID,
digits, variables) must pass through `quote` before it reaches the wire.
"""
from __future__ import annotations

_DROP = {"\r": "", "\n": "", "\0": ""}


def quote(value: object) -> str:
    text = str(value).translate(str.maketrans(_DROP))
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def command_line(verb: str, *args: object) -> str:
    """`verb` is ours (a constant); every argument is quoted. Returns one line without newline."""
    if not verb or any(ch in verb for ch in '\r\n"\\'):
        raise ValueError(f"bad AGI verb {verb!r}")
    return " ".join([verb, *(quote(a) for a in args)])
