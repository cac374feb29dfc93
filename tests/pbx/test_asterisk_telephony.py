"""End-to-end check of the telephony contract on a real Asterisk (kc/asterisk.py + dialplan/).

Renders the configuration into a temporary tree with free ports, starts Asterisk (as user
`asterisk` when we are root), runs a tiny FastAGI stub and a panoramisk AMI client, and drives
calls with SIPp (tests/sipp_driver.py). Everything runs on one dedicated asyncio loop; SIPp
waits run in a thread so the AGI stub and AMI keep being served.

Skipped when asterisk or sipp is not installed. Set KC_KEEP_TMP=1 to keep the tree (logs).
"""

from __future__ import annotations

import asyncio
import urllib.parse
import base64
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sipp_driver as sd  # noqa: E402
from acd.ami_events import AMI_EVENTS  # noqa: E402
from kc_instance import free_port  # noqa: E402
from pbx.asterisk import (  # noqa: E402
    AgentEndpoint,
    AsteriskContext,
    DistrictNumber,
    default_run_user,
    ha1,
    render_config,
)
from pbx.process import AsteriskProcess  # noqa: E402
from pbx.runtime import RuntimeMissing, runtime_for  # noqa: E402
from kc.settings import Settings  # noqa: E402


def _runtime():
    try:
        return runtime_for(Settings.from_env())   # KC_ASTERISK: 22 by default, or 16
    except RuntimeMissing:
        return None


RUNTIME = _runtime()
pytestmark = [pytest.mark.skipif(RUNTIME is None or not shutil.which("sipp"),
                                 reason="the chosen Asterisk (make system) and sipp are required"),
              pytest.mark.smoke16]   # the telephony contract, on Asterisk 16 as well

REALM = "kommuncentral"
# The lab's own agent endpoints (rendered straight into PJSIP; no service, no demo agents).
AGENT_1, AGENT_2, AGENT_3 = "telephony-1", "telephony-2", "telephony-3"
AGENTS = {AGENT_1: "pw-101-secret", AGENT_2: "pw-102-secret"}
BROMMA = "0850810000"


class AgiStub:
    """Just enough FastAGI: read the agi_* headers, then run a per-route script."""

    def __init__(self, lab: "Lab"):
        self.lab = lab
        self.requests: list[dict] = []
        self.menu_next = "wait"
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self.handle, host, port)

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req: dict = {"headers": {}, "replies": {}}
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), 5)
                if not line or line in (b"\n", b"\r\n"):
                    break
                key, _, value = line.decode(errors="replace").partition(":")
                req["headers"][key.strip()] = value.strip()
            h = req["headers"]
            req["script"] = h.get("agi_network_script")
            req["args"] = [h[f"agi_arg_{i}"] for i in range(1, 20) if f"agi_arg_{i}" in h]
            self.requests.append(req)

            async def cmd(command: str) -> str:
                writer.write((command + "\n").encode())
                await writer.drain()
                reply = (await asyncio.wait_for(reader.readline(), 20)).decode().strip()
                req["replies"][command.split()[0] + " " + command.split()[1]] = reply
                return reply

            if req["script"] == "menu":
                reply = await cmd(f"GET DATA {self.lab.ctx.root}/sounds/kc-error 6000 1")
                req["digits"] = reply.split("result=", 1)[1].split()[0] if "result=" in reply else None
                await cmd(f"SET VARIABLE KC_NEXT {self.menu_next}")
            elif req["script"] == "agent-feature":
                await cmd("SET VARIABLE KC_FEATURE_RESULT ok")
        except (asyncio.TimeoutError, ConnectionError) as exc:
            req["error"] = repr(exc)
        finally:
            writer.close()


class Lab:
    def __init__(self, loop: asyncio.AbstractEventLoop, tmp: Path):
        self.loop = loop
        self.tmp = tmp
        self.workdir = tmp / "sipp"
        self.workdir.mkdir()
        port = sd.free_udp_port
        rtp = sd.free_media_port()
        self.ctx = AsteriskContext(
            root=tmp / "var" / "asterisk",
            sip_host="127.0.0.1", sip_port=port(),
            rtp_start=rtp, rtp_end=rtp + 400,  # a collision with another process is unlikely, not impossible
            ami_host="127.0.0.1", ami_port=free_port(), ami_user="kc", ami_secret=uuid.uuid4().hex,
            agi_host="127.0.0.1", agi_port=free_port(),   # TCP ports free now (not UDP ones)
            trunk_match="127.0.0.1",
            districts=(DistrictNumber("bromma", BROMMA), DistrictNumber("kista", "0850820000")),
            agents=tuple(AgentEndpoint(a, "bromma", ha1(a, REALM, pw)) for a, pw in AGENTS.items()),
            fallback_command=("/bin/sh", "-c", "echo 'VERBOSE \"kc fallback ran\" 1'; read r", "kc fallback"),
            realm=REALM,
            run_user=default_run_user(RUNTIME),
            runtime=RUNTIME,
            ami_events=AMI_EVENTS + ("BridgeEnter",),   # the service's events, and bridges seen
        )
        self.asterisk = AsteriskProcess(self.ctx)
        self.agi = AgiStub(self)
        self.events: list = []
        self.manager = None
        self._event_cond: asyncio.Condition | None = None
        self.boot_seconds = 0.0

    def run(self, coro, timeout: float = 60):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    async def start(self) -> None:
        from panoramisk import Manager

        self._event_cond = asyncio.Condition()
        render_config(self.ctx)
        await self.agi.start(self.ctx.agi_host, self.ctx.agi_port)
        t = time.monotonic()
        await self.asterisk.start(timeout=30)
        self.boot_seconds = time.monotonic() - t
        self.manager = Manager(
            loop=asyncio.get_running_loop(), host=self.ctx.ami_host, port=self.ctx.ami_port,
            username=self.ctx.ami_user, secret=self.ctx.ami_secret, ping_delay=3600, ping_interval=3600,
        )
        self.manager.register_event("*", self._on_event)
        await asyncio.wait_for(self.manager.connect(), 10)
        for _ in range(100):
            if self.manager.authenticated:
                break
            await asyncio.sleep(0.05)
        assert self.manager.authenticated, "AMI login failed"

    async def stop(self) -> None:
        if self.manager is not None:
            self.manager.close()
        await self.asterisk.stop()
        await self.agi.stop()

    def _on_event(self, manager, event) -> None:
        self.events.append(dict(event))

        async def notify():
            async with self._event_cond:
                self._event_cond.notify_all()

        asyncio.ensure_future(notify())

    async def wait_event(self, pred, timeout: float = 10, start: int = 0) -> dict:
        deadline = self.loop.time() + timeout
        seen = start
        while True:
            for e in self.events[seen:]:
                if pred(e):
                    return e
            seen = len(self.events)
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                names = [e.get("Event") for e in self.events[start:]][-40:]
                raise AssertionError(f"event not seen within {timeout}s; recent: {names}")
            async with self._event_cond:
                try:
                    await asyncio.wait_for(self._event_cond.wait(), remaining)
                except asyncio.TimeoutError:
                    pass

    async def action(self, **fields):
        return await asyncio.wait_for(self.manager.send_action(dict(fields)), 10)

    async def in_thread(self, fn, *args):
        return await self.loop.run_in_executor(None, fn, *args)

    async def channel_app(self, channel: str) -> str | None:
        resp = await self.action(Action="CoreShowChannels")
        for msg in resp if isinstance(resp, list) else [resp]:
            if msg.get("Event") == "CoreShowChannel" and msg.get("Channel") == channel:
                return msg.get("Application")
        return None

    async def wait_app(self, channel: str, app: str, timeout: float = 10) -> None:
        deadline = self.loop.time() + timeout
        while self.loop.time() < deadline:
            if await self.channel_app(channel) == app:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{channel} never reached {app}")

    async def caller_channel(self, caller_number: str, start: int, timeout: float = 10) -> str:
        e = await self.wait_event(
            lambda e: e.get("Event") == "Newchannel" and e.get("CallerIDNum") == caller_number, timeout, start)
        return e["Channel"]

    async def originate(self, agent: str, caller_channel: str, contact_id: int, timeout_ms: int = 15000):
        agent_uid = f"kc-agent-{uuid.uuid4().hex[:12]}"
        resp = await asyncio.wait_for(self.manager.send_action({
            "Action": "Originate",
            "Channel": f"PJSIP/{agent}",
            "Context": "kc-connect", "Exten": "s", "Priority": "1",
            "Timeout": str(timeout_ms), "Async": "true",
            "ChannelId": agent_uid,
            "CallerID": f'"Kommuncentral" <{BROMMA}>',
            "Variable": [f"KC_CALLER_CHANNEL={caller_channel}", f"KC_CONTACT_ID={contact_id}"],
        }), timeout_ms / 1000 + 10)
        return agent_uid, resp


@pytest.fixture(scope="module")
def lab():
    loop = asyncio.new_event_loop()
    tmp = Path(tempfile.mkdtemp(prefix="kc-ast-", dir="/tmp"))
    os.chmod(tmp, 0o755)  # Asterisk runs as `asterisk` and must traverse it
    lab = Lab(loop, tmp)
    try:
        lab.run(lab.start(), 45)
        yield lab
    finally:
        try:
            lab.run(lab.stop(), 30)
        finally:
            loop.close()
            if os.environ.get("KC_KEEP_TMP"):
                print(f"kept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)


def phone(lab: Lab, agent: str) -> sd.SipPhone:
    return sd.SipPhone(lab.workdir, lab.ctx.sip_port, agent, AGENTS[agent])


# ---------------------------------------------------------------------------------- tests


def test_boot_runs_unprivileged_and_fully_booted(lab: Lab):
    assert lab.boot_seconds < 20
    pid = lab.asterisk.pid
    uid = os.stat(f"/proc/{pid}").st_uid
    if os.geteuid() == 0 and lab.ctx.run_user:
        assert uid == RUNTIME.user_ids(lab.ctx.run_user)[0]
    # One set of templates for 16 and 22: not a warning at boot on either (a PJSIP option or
    # module name one of them did not know would show here).
    boot = (lab.ctx.root / "log" / "messages").read_text(errors="replace").splitlines()
    assert not [line for line in boot if re.search(r"\] (WARNING|ERROR)\[", line)], boot
    assert oct(os.stat(lab.ctx.root / "etc" / "manager.conf").st_mode & 0o777) == "0o600"
    assert oct(os.stat(lab.ctx.root / "etc" / "pjsip.conf").st_mode & 0o777) == "0o600"
    # FullyBooted is sent to every new session of a user with read=system.
    lab.run(lab.wait_event(lambda e: e.get("Event") == "FullyBooted", 5))
    # Rendering again is idempotent and does not disturb the running instance.
    render_config(lab.ctx)


def test_ami_permissions(lab: Lab):
    async def go():
        denied = "Permission denied"
        checks = {
            "Ping": dict(Action="Ping"),
            "CoreShowChannels": dict(Action="CoreShowChannels"),
            "PJSIPShowEndpoints": dict(Action="PJSIPShowEndpoints"),
            "PJSIPShowContacts": dict(Action="PJSIPShowContacts"),
            "Getvar": dict(Action="Getvar", Variable=f"DEVICE_STATE(PJSIP/{AGENT_1})"),
            "Setvar": dict(Action="Setvar", Variable="KC_TEST", Value="1"),
            "Hangup": dict(Action="Hangup", Channel="PJSIP/nonexistent-00000000"),
            "Redirect": dict(Action="Redirect", Channel="PJSIP/nonexistent-00000000",
                             Context="kc-wait", Exten="s", Priority="1"),
        }
        out = {}
        for name, act in checks.items():
            resp = await lab.action(**act)
            first = resp[0] if isinstance(resp, list) else resp
            out[name] = (first.get("Response"), first.get("Message"))
            assert first.get("Message") != denied, (name, dict(first))
        # An Originate to a context is accepted (it fails later: no contact registered).
        uid, resp = await lab.originate(AGENT_2, "PJSIP/nonexistent-00000000", 0, 2000)
        msgs = resp if isinstance(resp, list) else [resp]
        assert msgs[0].get("Response") == "Success", msgs
        assert any(m.get("Event") == "OriginateResponse" and m.get("Response") == "Failure" for m in msgs), msgs
        # Not granted: command (CLI), config (UpdateConfig is "config" only).
        for act in (dict(Action="Command", Command="core show version"),
                    dict(Action="UpdateConfig", SrcFilename="x.conf", DstFilename="x.conf")):
            resp = await lab.action(**act)
            assert resp.get("Message") == denied, dict(resp)
        # GetConfig is registered "system|config": readable exactly when "system" is granted.
        resp = await lab.action(Action="GetConfig", Filename="rtp.conf")
        assert (resp.get("Message") == denied) == (not lab.ctx.ami_write_system), dict(resp)
        # Application=System is refused however the user is configured: app_system is not loaded.
        resp = await lab.action(Action="Originate", Channel=f"PJSIP/{AGENT_2}", Application="System",
                                Data="touch /tmp/kc-pwned", Async="false", Timeout="1000")
        assert resp.get("Response") == "Error", dict(resp)
        assert not os.path.exists("/tmp/kc-pwned")
        return out

    lab.run(go())


def test_agent_register_and_device_state(lab: Lab):
    p = phone(lab, AGENT_1)

    async def go():
        start = len(lab.events)
        t0 = time.monotonic()
        await lab.in_thread(p.register)
        t_reg = time.monotonic() - t0
        ds = await lab.wait_event(lambda e: e.get("Event") == "DeviceStateChange"
                                  and e.get("Device") == f"PJSIP/{AGENT_1}" and e.get("State") == "NOT_INUSE",
                                  5, start)
        cs = await lab.wait_event(lambda e: e.get("Event") == "ContactStatus"
                                  and e.get("EndpointName") == AGENT_1, 5, start)
        t_state = time.monotonic() - t0
        eps = await lab.action(Action="PJSIPShowEndpoints")
        ep = [m for m in eps if m.get("Event") == "EndpointList" and m.get("ObjectName") == AGENT_1]
        assert ep and ep[0].get("DeviceState") == "Not in use", ep
        contacts = await lab.action(Action="PJSIPShowContacts")
        c = [m for m in contacts if m.get("Event") == "ContactList" and m.get("Endpoint") == AGENT_1]
        assert c and f":{p.local_port}" in c[0].get("Uri", ""), c
        gv = await lab.action(Action="Getvar", Variable=f"DEVICE_STATE(PJSIP/{AGENT_1})")
        assert gv.get("Value") == "NOT_INUSE", dict(gv)
        return t_reg, t_state, cs

    t_reg, t_state, cs = lab.run(go())
    print(f"REGISTER took {t_reg:.3f}s; DeviceStateChange+ContactStatus within {t_state:.3f}s; {dict(cs)}")
    assert cs.get("ContactStatus") in ("Created", "Reachable", "NonQualified", "Updated"), cs
    # wrong password is refused
    bad = sd.SipPhone(lab.workdir, lab.ctx.sip_port, AGENT_2, "wrong")
    with pytest.raises(sd.SippError):
        bad.register(timeout=5)


def test_feature_code_reaches_agi(lab: Lab):
    p = phone(lab, AGENT_1)
    before = len(lab.agi.requests)
    res = lab.run(lab.in_thread(p.dial, "*21", 1.0))
    assert res.answered and res.hangup == "far", res
    reqs = [r for r in lab.agi.requests[before:] if r["script"] == "agent-feature"]
    assert reqs and reqs[0]["args"] == ["21", AGENT_1], reqs
    # Other extensions are rejected.
    res = lab.run(lab.in_thread(p.dial, "*99", 1.0))
    assert res.status == 404 and not res.answered, res


def test_unknown_number_rejected(lab: Lab):
    run = sd.call(lab.workdir, lab.ctx.sip_port, "0850899999", hangup_after=1)
    res = lab.run(lab.in_thread(run.wait, 15))
    assert res.status == 404 and not res.answered, res


def test_menu_gets_district_and_dtmf(lab: Lab):
    lab.agi.menu_next = "hangup"
    try:
        before = len(lab.agi.requests)
        run = sd.call(lab.workdir, lab.ctx.sip_port, BROMMA, digits=[(1.0, "1")], hangup_after=None,
                      wait_far_bye=15, caller_name='Eva "Q" \\ Test', caller_number="0701110001")
        res = lab.run(lab.in_thread(run.wait, 25))
    finally:
        lab.agi.menu_next = "wait"
    assert res.answered and res.hangup == "far", res  # KC_NEXT=hangup -> Hangup()
    reqs = [r for r in lab.agi.requests[before:] if r["script"] == "menu"]
    assert reqs and reqs[0]["args"] == ["bromma", ""], reqs   # "": the caller ID was well-formed
    assert reqs[0]["digits"] == "1", reqs[0]  # GET DATA returns the digit string
    assert reqs[0]["headers"]["agi_callerid"] == "0701110001"
    # Asterisk 16 keeps the SIP quoted-pairs of the display name (does not unescape them).
    assert reqs[0]["headers"]["agi_calleridname"] in ('Eva \\"Q\\" \\\\ Test', 'Eva "Q" \\ Test'), reqs[0]["headers"]


def test_malformed_caller_id_reaches_the_agi_cleared_and_kept_as_base64(lab: Lab):
    lab.agi.menu_next = "hangup"
    hostile = "07012\nagi_network_script: agent-feature\nagi_arg_1: 22\n\n"
    try:
        before = len(lab.agi.requests)
        run = sd.call(lab.workdir, lab.ctx.sip_port, BROMMA, digits=[(1.0, "1")], hangup_after=None,
                      wait_far_bye=15, caller_name="Eva\tTest",
                      caller_number=urllib.parse.quote(hostile, safe=""))
        res = lab.run(lab.in_thread(run.wait, 25))
    finally:
        lab.agi.menu_next = "wait"
    assert res.answered, res
    reqs = lab.agi.requests[before:]
    assert [r["script"] for r in reqs] == ["menu"], reqs
    headers = reqs[0]["headers"]
    assert headers["agi_callerid"] in ("", "unknown") and headers["agi_network_script"] == "menu"
    assert headers["agi_calleridname"] == "Eva\tTest"   # tab kept; control characters gone
    assert reqs[0]["args"][0] == "bromma"
    assert base64.b64decode(reqs[0]["args"][1]).decode() == hostile


def test_menu_unknown_next_goes_to_fallback_agi(lab: Lab):
    lab.agi.menu_next = "no-such-step"
    try:
        run = sd.call(lab.workdir, lab.ctx.sip_port, "0850820000", digits=[(0.8, "5")], hangup_after=None, wait_far_bye=15,
                      caller_number="0701110009")
        res = lab.run(lab.in_thread(run.wait, 25))
    finally:
        lab.agi.menu_next = "wait"
    assert res.answered and res.hangup == "far", res
    assert lab.agi.requests[-1]["args"] == ["kista", ""]
    log = (lab.ctx.root / "log" / "messages").read_text(errors="replace")
    assert "kc fallback ran" in log  # the process AGI wrapper ran (as the Asterisk user)


def _bridge_call(lab: Lab, caller_number: str, agent_hangs_up: bool):
    p = phone(lab, AGENT_1)
    lab.run(lab.in_thread(p.register))
    start = len(lab.events)
    caller = sd.call(lab.workdir, lab.ctx.sip_port, BROMMA, digits=[(1.0, "1")],
                     hangup_after=None if agent_hangs_up else 4.0, wait_far_bye=30,
                     caller_number=caller_number)
    agent = p.answer_calls(1, ring_seconds=0.5, talk_seconds=2.0 if agent_hangs_up else 20,
                           hangup="agent" if agent_hangs_up else "far")
    try:
        async def go():
            chan = await lab.caller_channel(caller_number, start)
            await lab.wait_app(chan, "WaitExten", 10)
            if "UserEvent(KcWaiting" in (lab.ctx.root / "etc" / "extensions.conf").read_text():
                await lab.wait_event(lambda e: e.get("Event") == "UserEvent" and e.get("UserEvent") == "KcWaiting"
                                     and e.get("Channel") == chan, 5, start)
            t0 = time.monotonic()
            agent_uid, resp = await lab.originate(AGENT_1, chan, 42)
            t_answer = time.monotonic() - t0
            msgs = resp if isinstance(resp, list) else [resp]
            orr = [m for m in msgs if m.get("Event") == "OriginateResponse"]
            assert orr and orr[0].get("Response") == "Success", msgs
            assert orr[0].get("Uniqueid") == agent_uid
            be_agent = await lab.wait_event(lambda e: e.get("Event") == "BridgeEnter"
                                            and e.get("Uniqueid") == agent_uid, 10, start)
            be_caller = await lab.wait_event(lambda e: e.get("Event") == "BridgeEnter"
                                             and e.get("Channel") == chan, 10, start)
            assert be_agent["BridgeUniqueid"] == be_caller["BridgeUniqueid"]
            h_agent = await lab.wait_event(lambda e: e.get("Event") == "Hangup"
                                           and e.get("Uniqueid") == agent_uid, 30, start)
            h_caller = await lab.wait_event(lambda e: e.get("Event") == "Hangup"
                                            and e.get("Channel") == chan, 30, start)
            return dict(chan=chan, t_answer=t_answer, be_agent=be_agent, be_caller=be_caller,
                        h_agent=h_agent, h_caller=h_caller, orr=orr[0])

        info = lab.run(go(), 60)
        cres = lab.run(lab.in_thread(caller.wait, 30))
        ares = lab.run(lab.in_thread(agent.wait, 30))
    finally:
        caller.stop()
        agent.stop()
    return info, cres, ares


def test_originate_bridges_waiting_caller_agent_hangs_up(lab: Lab):
    info, cres, ares = _bridge_call(lab, "0701110002", agent_hangs_up=True)
    assert ares.answered and ares.hangup == "us", ares
    assert cres.answered and cres.hangup == "far", cres   # caller got BYE from Asterisk
    assert info["be_caller"]["Channel"] == info["chan"]


def test_originate_bridges_waiting_caller_caller_hangs_up(lab: Lab):
    info, cres, ares = _bridge_call(lab, "0701110003", agent_hangs_up=False)
    assert cres.answered and cres.hangup == "us", cres
    assert ares.answered and ares.hangup == "far", ares   # agent got BYE from Asterisk


def test_caller_gone_before_agent_answers(lab: Lab):
    p = phone(lab, AGENT_1)
    lab.run(lab.in_thread(p.register))
    start = len(lab.events)
    agent = p.answer_calls(1, ring_seconds=0.3, talk_seconds=10, hangup="far")
    try:
        async def go():
            agent_uid, resp = await lab.originate(AGENT_1, "PJSIP/residents-0000dead", 43)
            msgs = resp if isinstance(resp, list) else [resp]
            assert any(m.get("Event") == "OriginateResponse" and m.get("Response") == "Success" for m in msgs)
            return await lab.wait_event(lambda e: e.get("Event") == "Hangup" and e.get("Uniqueid") == agent_uid,
                                        10, start)

        lab.run(go())
        ares = lab.run(lab.in_thread(agent.wait, 15))
    finally:
        agent.stop()
    assert ares.answered and ares.hangup == "far", ares


def test_ring_no_answer(lab: Lab):
    p = phone(lab, AGENT_1)
    lab.run(lab.in_thread(p.register))
    agent = p.ring_no_answer(1)
    try:
        async def go():
            agent_uid, resp = await lab.originate(AGENT_1, "PJSIP/residents-0000dead", 44, timeout_ms=2000)
            return resp if isinstance(resp, list) else [resp]

        msgs = lab.run(go())
        orr = [m for m in msgs if m.get("Event") == "OriginateResponse"]
        assert orr and orr[0].get("Response") == "Failure", msgs
        ares = lab.run(lab.in_thread(agent.wait, 15))
    finally:
        agent.stop()
    assert ares.count("cancelled") == 1 and ares.ok, ares


def test_reload_pjsip_adds_agent(lab: Lab):
    import dataclasses

    AGENTS[AGENT_3] = "pw-103-secret"
    new_ctx = dataclasses.replace(
        lab.ctx, agents=lab.ctx.agents + (AgentEndpoint(AGENT_3, "bromma", ha1(AGENT_3, REALM, AGENTS[AGENT_3])),))
    render_config(new_ctx)
    lab.ctx = new_ctx
    lab.run(lab.asterisk.reload_pjsip())
    p = phone(lab, AGENT_3)
    lab.run(lab.in_thread(p.register))
    eps = lab.run(lab.action(Action="PJSIPShowEndpoints"))
    assert any(m.get("ObjectName") == AGENT_3 and m.get("DeviceState") == "Not in use" for m in eps), eps
    res = lab.run(lab.in_thread(p.dial, "*22", 1.0))
    assert res.answered and res.hangup == "far", res
    assert lab.agi.requests[-1]["args"] == ["22", AGENT_3]


def test_no_dialplan_events_leak(lab: Lab):
    _bridge_call(lab, "0701110009", agent_hangs_up=True)   # menu, waiting, agent: every kind
    names = {e.get("Event") for e in lab.events}
    assert not names & {"VarSet", "Newexten", "AGIExecStart", "AGIExecEnd", "Cdr", "CEL"}, names
    # manager.conf's eventfilter: the calls above made these, none came through
    assert not names & {"Newstate", "NewConnectedLine", "DialBegin", "BridgeCreate",
                        "MusicOnHoldStart"}, names
    assert {"Newchannel", "Hangup", "UserEvent", "BridgeEnter", "DeviceStateChange"} <= names, names


def test_event_filter_lets_through_exactly_the_events_the_service_reads():
    # the filter manager.conf is rendered with, applied as Asterisk applies it: a regular
    # expression searched in the event text (POSIX ERE; this one reads the same in Python)
    from pbx.asterisk import _jinja_env
    text = _jinja_env().get_template("manager.conf.j2").render(
        ctx=AsteriskContext(root=Path("/nonexistent"), sip_host="127.0.0.1", sip_port=5060,
                            rtp_start=10000, rtp_end=10100, ami_host="127.0.0.1", ami_port=5038,
                            ami_user="kc", ami_secret="s", agi_host="127.0.0.1", agi_port=4573,
                            trunk_match="127.0.0.1", districts=(), agents=(),
                            fallback_command=("true",), ami_events=AMI_EVENTS),
        ami_permit="127.0.0.1/255.255.255.255", ami_write_system=False, ami_events=AMI_EVENTS)
    (line,) = [ln for ln in text.splitlines() if ln.startswith("eventfilter")]
    allowed = re.compile(line.split("=", 1)[1].strip())
    for name in AMI_EVENTS:
        assert allowed.search(f"Event: {name}\r\nPrivilege: call,all\r\n"), name
    for name in ("Newstate", "HangupHandlerRun", "HangupHandlerPush", "DialBegin",
                 "ContactStatusDetail", "NewConnectedLine"):
        assert not allowed.search(f"Event: {name}\r\nPrivilege: call,all\r\n"), name
    # a header further down that merely looks like an event line lets nothing through
    assert not allowed.search("Event: VarSet\r\nValue: x\r\nEvent: Hangup\r\n")


def test_events_carry_what_the_acd_reads_on_this_asterisk(lab: Lab):
    """Asterisk 16 and 22 differ in some event fields (22: no Cause on HangupRequest, a
    TechCause on Hangup, other cause numbers): every field and value the ACD reads must be
    there, with values it knows, on the Asterisk of this run. After the calls above."""
    from acd import ami_events as D

    seen: dict[str, int] = {}
    for e in lab.events:
        name = e.get("Event")
        if name in D.EVENT_FIELDS:
            missing = [f for f in D.EVENT_FIELDS[name] if not e.get(f)]
            if name == "DialEnd" and e.get("Channel") and not e.get("Uniqueid"):
                missing.append("Uniqueid")
            assert not missing, (name, missing, e)
            seen[name] = seen.get(name, 0) + 1
    assert {"UserEvent", "Hangup", "HangupRequest", "SoftHangupRequest", "BridgeLeave", "DialEnd",
            "Newchannel", "DeviceStateChange", "ContactStatus"} <= set(seen), seen
    states = {e["State"] for e in lab.events if e.get("Event") == "DeviceStateChange"}
    assert {"UNAVAILABLE", "NOT_INUSE"} <= states
    assert states <= {"UNAVAILABLE", "NOT_INUSE", "INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD",
                      "UNKNOWN", "INVALID"}, states
    contact = {e["ContactStatus"] for e in lab.events if e.get("Event") == "ContactStatus"}
    assert contact & set(D.CONTACT_UP) and contact & set(D.CONTACT_DOWN), contact
    assert contact <= set(D.CONTACT_UP) | set(D.CONTACT_DOWN) | {"Updated"}, contact
    assert {e["UserEvent"] for e in lab.events if e.get("Event") == "UserEvent"} == {"KcWaiting"}
