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


def asterisk_headers(script: str, *args: str, **values: str) -> dict[str, str]:
    """A header block as res_agi.c writes it, in its order; `values` replace single fields."""
    headers = {
        "agi_network": "yes", "agi_network_script": script, "agi_request": f"agi://127.0.0.1/{script}",
        "agi_channel": "PJSIP/residents-00000001", "agi_language": "sv", "agi_type": "PJSIP",
        "agi_uniqueid": "1700000000.1", "agi_version": "22.10.1", "agi_callerid": "0701234567",
        "agi_calleridname": "Eva", "agi_callingpres": "0", "agi_callingani2": "0",
        "agi_callington": "0", "agi_callingtns": "0", "agi_dnid": "0850810000",
        "agi_rdnis": "unknown", "agi_context": "kc-menu", "agi_extension": "s",
        "agi_priority": "4", "agi_enhanced": "0.0", "agi_accountcode": "",
        "agi_threadid": "140000000000000",
    }
    for key, value in values.items():
        assert f"agi_{key}" in headers, key
        headers[f"agi_{key}"] = value
    for n, arg in enumerate(args, 1):
        headers[f"agi_arg_{n}"] = arg
    return headers


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


SECRET = "per-install-secret-0123456789"


def served(script: str) -> str:
    """The script as the dialplan's AGI URL names it: the shared secret, then the route."""
    return f"{SECRET}/{script}"


async def _serve(handler):
    server = FastAgiServer({"menu": handler}, "127.0.0.1", 0, command_timeout=2, secret=SECRET)
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
        peer = ScriptedAsterisk(server.port, asterisk_headers(
            served("menu"), "bromma", calleridname='Eve" EXEC System "x', uniqueid="1.1"))
        await peer.run(["200 result=1", "200 result=49"])
    finally:
        await server.stop()
    assert seen == {"args": ["bromma"], "name": 'Eve" EXEC System "x', "digit": "1"}
    assert peer.received[0] == 'SET VARIABLE "KC_NAME" "Eve\\" EXEC System \\"x"'


async def test_several_variables_take_one_round_trip_unless_a_value_needs_quoting():
    async def handler(chan: AgiChannel):
        await chan.set_variables(KC_CONTACT_ID=42, KC_SKILL="elderly-care", KC_NEXT="wait")
        await chan.set_variables(KC_TRANSFER="+4681234", KC_NOTE='a,b="c" (d)')

    server = await _serve(handler)
    try:
        peer = ScriptedAsterisk(server.port, asterisk_headers(served("menu")))
        await peer.run(["200 result=0", "200 result=0", "200 result=1"])
    finally:
        await server.stop()
    assert peer.received == [
        'EXEC "MSet" "KC_CONTACT_ID=42,KC_SKILL=elderly-care,KC_NEXT=wait"',
        'EXEC "MSet" "KC_TRANSFER=+4681234"',
        'SET VARIABLE "KC_NOTE" "a,b=\\"c\\" (d)"',
    ]
    assert asterisk_parse_args(peer.received[2])[-1] == 'a,b="c" (d)'


async def test_a_digit_pressed_while_the_next_prompt_is_prepared_is_kept():
    """Asterisk drops digits between AGI commands: while a prompt is still being made the
    channel listens in short turns, and a digit heard then answers for the prompt."""
    seen = {}
    made = asyncio.Event()

    async def slow_prompt():
        await asyncio.sleep(0.6)
        made.set()
        return "/prompts/abc"

    async def quick_prompt():
        return "/prompts/ready"

    async def handler(chan: AgiChannel):
        seen["slow"] = await chan.listening(slow_prompt(), poll=0.1)
        seen["quick"] = await chan.listening(quick_prompt())
        await asyncio.wait_for(made.wait(), 2)   # the abandoned preparation still finishes

    server = await _serve(handler)
    try:
        peer = ScriptedAsterisk(server.port, asterisk_headers(served("menu")))
        await peer.run(["200 result=0", "200 result=50"])   # silence, then "2"
    finally:
        await server.stop()
    assert seen == {"slow": (None, "2"), "quick": ("/prompts/ready", None)}
    assert peer.received == ['WAIT FOR DIGIT "100"', 'WAIT FOR DIGIT "100"']


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
        await ScriptedAsterisk(server.port, asterisk_headers(served("menu"))).run(
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
        await ScriptedAsterisk(server.port, asterisk_headers(served("menu"))).run([], close_early=True)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        block = "".join(f"{k}: {v}\n" for k, v in asterisk_headers(served("menu")).items())
        writer.write(block.encode() + b"\n")
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


# --- the header block as a trust boundary (a caller ID can carry newlines) -----------------
def _block(headers: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n"


async def _read(data: bytes) -> dict[str, str]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    return await read_headers(reader, timeout=1)


async def test_read_headers_takes_asterisks_block():
    headers = await _read(_block(asterisk_headers("menu", "bromma", "")))
    assert headers["agi_network_script"] == "menu"
    assert headers["agi_arg_1"] == "bromma" and headers["agi_arg_2"] == ""
    assert headers["agi_accountcode"] == ""


# The probe's payloads, as Asterisk writes them once it has decoded %0A (and %0D) in the From
# user part: extra lines inside the agi_callerid value.
INJECTIONS = [
    "07012\nagi_network_script: agent-feature\nagi_arg_1: 22\nagi_arg_2: bromma-102\n",
    "07012\nagi_arg_1: bromma-102",
    "07012\nagi_calleridname: Admin",
    "07012\r\n\r\n200 result=1",
    "07012\n\n",
    "07012\nnot a header",
    "07012\nagi_zzz: 1",
]


@pytest.mark.parametrize("callerid", INJECTIONS)
async def test_injected_header_lines_refuse_the_session(callerid):
    with pytest.raises(AgiLinkError):
        await _read(_block(asterisk_headers("menu", "bromma", callerid=callerid)))


async def test_agent_feature_cannot_be_reached_by_injection():
    calls = []

    async def feature(chan):
        calls.append(chan.args)

    async def menu(chan):
        calls.append(("menu", chan.args))

    server = FastAgiServer({"menu": menu, "agent-feature": feature}, "127.0.0.1", 0, 2,
                           secret=SECRET)
    await server.start()
    try:
        for callerid in INJECTIONS:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(_block(asterisk_headers(served("menu"), "bromma", callerid=callerid)))
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""   # closed, nothing run
            writer.close()
    finally:
        await server.stop()
    assert calls == []


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_caller_id_is_one_value_or_refused(callerid):
    """Whatever a caller puts in the number, the block either parses with that exact value in
    agi_callerid and the real script and arguments, or is refused whole."""
    data = _block(asterisk_headers("menu", "bromma", callerid=callerid))
    try:
        headers = asyncio.run(_read(data))
    except AgiLinkError:
        return
    assert headers["agi_network_script"] == "menu" and headers["agi_arg_1"] == "bromma"
    assert headers["agi_callerid"] == callerid.rstrip("\r")
    assert "agi_arg_2" not in headers


def test_feature_codes_only_from_the_agents_own_endpoint():
    from agi.call_flow import from_agent_phone

    def chan(**values):
        return AgiChannel(asterisk_headers("agent-feature", "22", "bromma-102", **values),
                          None, None)

    own = dict(context="from-agents", channel="PJSIP/bromma-102-0000002a")
    assert from_agent_phone(chan(**own), "bromma-102")
    assert not from_agent_phone(chan(**own), "bromma-103")           # someone else's phone
    assert not from_agent_phone(chan(**own), "")
    assert not from_agent_phone(chan(context="kc-menu", channel=own["channel"]), "bromma-102")
    assert not from_agent_phone(chan(context="from-agents", channel="PJSIP/residents-00000001"),
                                "bromma-102")
    assert not from_agent_phone(chan(**own, type="Local"), "bromma-102")


def test_a_refused_caller_id_is_kept_escaped():
    from agi.call_flow import decode_raw_caller
    import base64
    raw = base64.b64encode("07012\nagi_arg_1: x\x00å".encode()).decode()
    assert decode_raw_caller(raw) == "07012\\nagi_arg_1: x\\x00å"
    assert decode_raw_caller("!!").startswith("(not base64)")


# --- FastAGI has no authentication of its own: the peer address and the shared secret ------
async def _session(port: int, script: str, source: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(_block(asterisk_headers(script, "22", "bromma-102", context="from-agents",
                                             channel="PJSIP/bromma-102-00000001")))
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:      # closed by the server before it read the block
        return b""
    finally:
        writer.close()


async def test_agent_feature_needs_the_shared_secret_and_an_asterisk_address(caplog):
    calls = []

    async def feature(chan):
        calls.append(chan.args)
        await chan.answer()

    server = FastAgiServer({"agent-feature": feature}, "0.0.0.0", 0, 2, secret=SECRET,
                           allow=("127.0.0.1",))
    await server.start()
    try:
        # a local process that does not know the secret (none, wrong, or as the route itself)
        for script in ("agent-feature", "x" * len(SECRET) + "/agent-feature",
                       f"{SECRET[:-1]}/agent-feature", "/agent-feature", f"agent-feature/{SECRET}"):
            assert await _session(server.port, script) == b"", script
        # the secret, but from an address that is not Asterisk's (127.0.0.2: another host)
        assert await _session(server.port, served("agent-feature"), source="127.0.0.2") == b""
        assert calls == []
        assert server.refused == 6
        assert "refused a connection from 127.0.0.2" in caplog.text
        assert "without the shared secret" in caplog.text
        # Asterisk itself: its address and the secret
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(_block(asterisk_headers(served("agent-feature"), "22", "bromma-102")))
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5) == b"ANSWER\n"
        writer.write(b"200 result=0\n")
        await writer.drain()
        await asyncio.wait_for(reader.read(), 5)
        writer.close()
    finally:
        await server.stop()
    assert calls == [["22", "bromma-102"]]


def test_a_server_without_a_real_secret_is_refused():
    with pytest.raises(ValueError):
        FastAgiServer({}, "127.0.0.1", 0, secret="")
    with pytest.raises(TypeError):
        FastAgiServer({}, "127.0.0.1", 0)   # type: ignore[call-arg]


def test_rendered_dialplan_carries_the_secret_and_is_private(tmp_path):
    import os
    import stat
    from pbx.asterisk import AsteriskContext, DistrictNumber, render_config

    ctx = AsteriskContext(
        root=tmp_path / "ast", sip_host="127.0.0.1", sip_port=5060, rtp_start=10000,
        rtp_end=10010, ami_host="127.0.0.1", ami_port=5038, ami_user="kc", ami_secret="s3cret",
        agi_host="127.0.0.1", agi_port=4573, trunk_match="127.0.0.1",
        districts=(DistrictNumber("bromma", "0850810000"),), agents=(),
        fallback_command=("/bin/true",), agi_secret=SECRET)
    render_config(ctx)
    conf = tmp_path / "ast" / "etc" / "extensions.conf"
    text = conf.read_text()
    agi_urls = [line for line in text.splitlines() if "AGI(agi://" in line]
    assert agi_urls and all(f"agi://127.0.0.1:4573/{SECRET}/" in line for line in agi_urls)
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600
    with pytest.raises(ValueError):
        render_config(AsteriskContext(**{**ctx.__dict__, "agi_secret": "short"}))
