"""Record the AMI frames of real calls through the real PBX, for the replay tests
(tests/test_ami_replay.py). Run by hand when the dialplan or the event list changes:

    .venv/bin/python tests/capture_ami_frames.py [scenario ...]

Each scenario runs on a fresh private instance (real Asterisk, real service, SIPp phones)
while a second AMI session of the service's own AMI user records what the service receives
(the same `manager.conf` event filter applies), frame by frame, into
tests/ami_frames/<scenario>.txt. What reaches the distributor from elsewhere than AMI is
written between the frames as `Event: TestStep` frames (unknown to the AMI seam, so the
parser ignores them): the contacts the menu created (at the top), an agent set ready through
the API, a call-back asked for from the waiting room, a transfer through the API.
"""
from __future__ import annotations

import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from kc_instance import KcInstance, make_instance, remove_instance  # noqa: E402
from sipp_driver import SipPhone, call, free_udp_port  # noqa: E402

OUT = HERE / "ami_frames"
BROMMA = "0850810000"
EOL = "\r\n"


def step(**fields: object) -> str:
    return EOL.join(["Event: TestStep", *(f"{k}: {v}" for k, v in fields.items())])


class Recorder:
    """A second AMI session of the service's user: every frame it receives, in order."""

    def __init__(self, port: int, secret: str):
        self.frames: list[str] = []
        self._lock = threading.Lock()
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.sendall((f"Action: Login{EOL}Username: kc{EOL}Secret: {secret}{EOL}"
                            f"Events: on{EOL}{EOL}").encode())
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buffer = ""
        self._sock.settimeout(0.2)
        while not self._stop:
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return
            buffer += data.decode("utf-8", "replace")
            *complete, buffer = buffer.split(EOL + EOL)
            with self._lock:
                for frame in complete:
                    frame = frame.split(EOL, 1)[1] if frame.startswith("Asterisk Call Manager/") else frame
                    if frame.startswith("Event: "):
                        self.frames.append(frame)

    def mark(self, **fields: object) -> None:
        with self._lock:
            self.frames.append(step(**fields))

    def close(self) -> list[str]:
        time.sleep(1.0)   # the last events of the call
        self._stop = True
        self._thread.join(5)
        self._sock.close()
        return self.frames


def contacts(inst: KcInstance) -> list[dict]:
    with sqlite3.connect(inst.var / "kc.db") as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("select * from contacts order by id")]
        moved = {r[0] for r in db.execute(
            "select contact_id from contact_events where kind = 'transferred_in'")}
    return [r for r in rows if r["id"] not in moved and r["skill"]]


def has_event(inst: KcInstance, kind: str) -> int | None:
    with sqlite3.connect(inst.var / "kc.db") as db:
        row = db.execute("select contact_id from contact_events where kind = ?", [kind]).fetchone()
    return row[0] if row else None


def login(inst: KcInstance, rec: Recorder, workdir: Path, agent: str) -> SipPhone:
    phone = SipPhone(workdir, inst.sip_port, agent, "demo-agent")
    phone.register()
    inst.wait_for(lambda: inst.agent(agent)["registered"], 10, f"{agent} registered")
    rec.mark(Step="ready", Agent=agent)
    inst.set_state(agent, "ready")
    return phone


def answered(inst, rec, workdir):
    agent = login(inst, rec, workdir, "bromma-101")
    answering = agent.answer_calls(count=1, ring_seconds=0.5, talk_seconds=2, hangup="agent")
    resident = call(workdir, inst.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0711000001",
                    hangup_after=None, wait_far_bye=40)
    answering.wait_ok(40)
    resident.wait_ok(40)


def abandoned(inst, rec, workdir):
    resident = call(workdir, inst.sip_port, BROMMA, digits=[(1.5, "2")], caller_number="0711000002",
                    hangup_after=4.0)
    resident.wait(40)
    inst.wait_for(lambda: any(c["outcome"] == "abandoned" for c in contacts(inst)), 10, "abandoned")


def ring_no_answer(inst, rec, workdir):
    agent = login(inst, rec, workdir, "bromma-102")
    agent.ring_no_answer(count=1, timeout=40)
    resident = call(workdir, inst.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0711000003",
                    hangup_after=12.0)      # rung out after 5 s, then the caller gives up
    inst.wait_for(lambda: inst.agent("bromma-102")["state"] == "paused", 30, "ring-no-answer")
    resident.wait(40)
    inst.wait_for(lambda: any(c["outcome"] for c in contacts(inst)), 20, "caller gone")


def callback(inst, rec, workdir):
    resident = call(workdir, inst.sip_port, BROMMA, digits=[(1.5, "1"), (8.0, "1")],
                    caller_number="0711000004", hangup_after=None, wait_far_bye=30)
    cid = inst.wait_for(lambda: has_event(inst, "callback_requested"), 30, "call-back asked for")
    rec.mark(Step="callback", ContactID=cid)
    resident.wait_ok(40)
    home = SipPhone(workdir, inst.sip_port, "resident", "x", local_port=inst.callback_port)
    answering_home = home.answer_calls(count=1, ring_seconds=0.5, talk_seconds=10, hangup="far")
    agent = login(inst, rec, workdir, "bromma-101")
    answering = agent.answer_calls(count=1, ring_seconds=0.3, talk_seconds=3, hangup="agent")
    answering.wait_ok(40)
    answering_home.wait_ok(30)


def transfer(inst, rec, workdir):
    first = login(inst, rec, workdir, "bromma-102")
    talking = first.answer_calls(count=1, ring_seconds=0.3, talk_seconds=30, hangup="far")
    resident = call(workdir, inst.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0711000005",
                    hangup_after=None, wait_far_bye=60)
    inst.wait_for(lambda: inst.agent("bromma-102")["state"] == "on_call", 30, "first agent on call")
    second = login(inst, rec, workdir, "bromma-103")
    answering = second.answer_calls(count=1, ring_seconds=0.3, talk_seconds=1.5, hangup="agent")
    (cid,) = [c["id"] for c in contacts(inst)]
    rec.mark(Step="transfer", ContactID=cid, To="queue:school")
    status, body = inst.request("POST", f"/api/contacts/{cid}/transfer", {"to": "queue:school"})
    assert status == 200, body
    talking.wait(20)
    answering.wait_ok(30)
    resident.wait_ok(30)


SCENARIOS = {f.__name__.replace("_", "-"): f
             for f in (answered, abandoned, ring_no_answer, callback, transfer)}


def capture(name: str) -> Path:
    inst = make_instance()
    inst.callback_port = free_udp_port()
    inst.env.update(KC_RING_TIMEOUT="5", KC_ANNOUNCE_SECONDS="6", KC_WRAP_UP_SECONDS="0",
                    KC_CALLBACK_TRUNK=f"127.0.0.1:{inst.callback_port}")
    workdir = inst.var / "sipp"
    workdir.mkdir()
    try:
        inst.start()
        secret = (inst.var / "secrets" / "ami.secret").read_text().strip()
        rec = Recorder(int(inst.env["KC_AMI_PORT"]), secret)
        time.sleep(0.5)
        SCENARIOS[name](inst, rec, workdir)
        frames = rec.close()
        head = [step(Step="contact", ContactID=c["id"], Skill=c["skill"], District=c["district"],
                     Caller=c["caller"], Language=c["language"] or "sv")
                for c in contacts(inst)]
        OUT.mkdir(exist_ok=True)
        path = OUT / f"{name}.txt"
        path.write_bytes("".join(f + EOL + EOL for f in head + frames).encode())
        return path
    finally:
        remove_instance(inst)


if __name__ == "__main__":
    for scenario in sys.argv[1:] or SCENARIOS:
        print("captured", capture(scenario))
