"""The FastAGI seam: quoting that Asterisk's own parser undoes exactly, and the server's
behaviour against a scripted peer (replies, hang-ups, garbage, silence)."""
import asyncio

import pytest
from hypothesis import given, strategies as st

from agi.fastagi import AgiChannel, FastAgiServer, parse_result, read_headers
from agi.quoting import command_line, quote
from kc.errors import AgiLinkError, CallerGone


def asterisk_parse_args(line: str) -> list[str]:
    """Port of res_agi.c parse_args(): how Asterisk splits an AGI command line."""
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                args.append("")
                whitespace = False
            escaped = False
        elif ch in " \t" and not escaped:
            if quoted:
                cur.append(ch)
            elif not whitespace:
                whitespace = True
        elif ch == "\\" and not escaped:
            escaped = True
        else:
            if whitespace:
                cur = []
                args.append("")
                whitespace = False
            cur.append(ch)
            escaped = False
        if cur is not None and args:
            args[-1] = "".join(cur)
    return args


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_quoted_arguments_reach_asterisk_unchanged(values):
    line = command_line("SET VARIABLE", *values)
    assert "\n" not in line and "\r" not in line
    expected = [v.replace("\r", "").replace("\n", "").replace("\0", "") for v in values]
    assert asterisk_parse_args(line) == ["SET", "VARIABLE", *expected]


def test_injection_attempt_stays_one_argument():
    evil = 'x" \n EXEC System "rm -rf /'
    assert asterisk_parse_args(command_line("SET VARIABLE", "NAME", evil)) == [
        "SET", "VARIABLE", "NAME", 'x"  EXEC System "rm -rf /']
    assert quote('\\"') == '"\\\\\\""'


def test_parse_result_forms():
    assert parse_result("200 result=1").result == "1"
    r = parse_result("200 result= (timeout)")
    assert (r.result, r.data) == ("", "timeout")
    r = parse_result("200 result=1 (Kommuncentral värde)")
    assert r.data == "Kommuncentral värde"
    assert parse_result("511 Command Not Permitted on a dead channel").code == 511
    with pytest.raises(AgiLinkError):
        parse_result("garbage")


class ScriptedAsterisk:
    """Connects to the server like Asterisk does and answers commands from a script."""

    def __init__(self, port: int, headers: dict[str, str]):
        self.port, self.headers, self.received = port, headers, []

    async def run(self, replies: list[str], send_headers: bool = True, close_early: bool = False):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        if send_headers:
            for k, v in self.headers.items():
                writer.write(f"{k}: {v}\n".encode())
            if close_early:
                writer.close()
                return
            writer.write(b"\n")
        await writer.drain()
        for reply in replies:
            line = await asyncio.wait_for(reader.readline(), 5)
            if not line:
                break
            self.received.append(line.decode().rstrip("\n"))
            writer.write(reply.encode() + b"\n")
            await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return rest


async def _serve(handler):
    server = FastAgiServer({"menu": handler}, "127.0.0.1", 0, command_timeout=2)
    await server.start()
    return server


async def test_server_runs_route_with_headers_args_and_quoted_commands():
    seen = {}

    async def handler(chan: AgiChannel):
        seen["args"] = chan.args
        seen["name"] = chan.header("calleridname")
        await chan.set_variable("KC_NAME", chan.header("calleridname"))
        seen["digit"] = await chan.wait_for_digit(1)

    server = await _serve(handler)
    try:
        peer = ScriptedAsterisk(server.port, {
            "agi_network_script": "menu", "agi_arg_1": "bromma",
            "agi_calleridname": 'Eve" EXEC System "x', "agi_uniqueid": "1.1"})
        await peer.run(["200 result=1", "200 result=49"])
    finally:
        await server.stop()
    assert seen == {"args": ["bromma"], "name": 'Eve" EXEC System "x', "digit": "1"}
    assert peer.received[0] == 'SET VARIABLE "KC_NAME" "Eve\\" EXEC System \\"x"'


async def test_hangup_line_and_dead_channel_become_caller_gone():
    outcome = {}

    async def handler(chan):
        try:
            await chan.stream("/x", "1")
        except CallerGone:
            outcome["gone"] = True
            raise

    server = await _serve(handler)
    try:
        await ScriptedAsterisk(server.port, {"agi_network_script": "menu"}).run(
            ["HANGUP\n511 Command Not Permitted on a dead channel"])
    finally:
        await server.stop()
    assert outcome == {"gone": True}


async def test_silent_or_broken_peer_does_not_hang_the_server():
    calls = []

    async def handler(chan):
        calls.append("ran")
        await chan.answer()   # peer never answers: command timeout

    server = await _serve(handler)
    try:
        # headers cut short, then a peer that never replies
        await ScriptedAsterisk(server.port, {"agi_network_script": "menu"}).run([], close_early=True)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network_script: menu\n\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5) == b'ANSWER\n'
        assert await asyncio.wait_for(reader.read(), 5) == b""   # closed after the timeout
        writer.close()
    finally:
        await server.stop()
    assert calls == ["ran"]


async def test_read_headers_refuses_endless_headers():
    reader = asyncio.StreamReader()
    reader.feed_data(b"agi_x: 1\n" * 300)
    with pytest.raises(AgiLinkError):
        await read_headers(reader, timeout=1)
