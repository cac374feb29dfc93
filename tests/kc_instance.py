"""A private Kommuncentral for tests: its own var/, free ports, real Asterisk, real service.

Asterisk (`kc asterisk`) and the service (`kc serve`) run as separate processes, as in
production, so a test can restart the service under live calls.
"""
from __future__ import annotations

from datetime import datetime, timezone

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
KC = [sys.executable, "-m", "kommuncentral.cli"]


def now_iso() -> str:
    """Now as the API writes times (UTC, milliseconds, `Z`): a test's `since`."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_rtp_range(size: int = 200) -> tuple[int, int]:
    for _ in range(50):
        start = random.randrange(20000, 40000, 2)
        ok = True
        for port in range(start, start + size, 17):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return start, start + size - 1
    raise RuntimeError("no free RTP range")


@dataclass
class KcInstance:
    var: Path
    env: dict[str, str]
    sip_port: int
    web_port: int
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    nodes: dict[str, dict[str, int]] = field(default_factory=dict)   # a cluster: node -> ports

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # processes ---------------------------------------------------------------------------
    def _start(self, name: str, *args: str) -> None:
        log = (self.var / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen([*KC, *args], cwd=ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)

    def start(self, timeout: float = 90) -> None:
        subprocess.run([*KC, "init", "--demo"], cwd=ROOT, env=self.env, check=True,
                       capture_output=True)
        self._start("asterisk", "asterisk")
        self.start_service(timeout)

    def start_service(self, timeout: float = 60) -> None:
        self._start("service", "serve")
        self.wait_for(self.pbx_up, timeout, "service and Asterisk up")

    def pbx_up(self) -> bool:
        """Health says Asterisk and AMI are up and which Asterisk answers."""
        h = self.health() or {}
        return (h.get("status"), h.get("asterisk"), h.get("ami")) == ("ok", "up", "up") \
            and bool(h.get("asterisk_version"))

    def stop_service(self) -> None:
        self._stop("service")

    def _stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop(self) -> None:
        self._stop("service")
        self._stop("asterisk")

    def logs(self) -> str:
        out = []
        for name in ("service", "asterisk", *self.nodes, "front"):
            path = self.var / f"{name}.log"
            if path.exists():
                out.append(f"--- {name}.log\n" + path.read_text(errors="replace")[-6000:])
        messages = self.var / "asterisk" / "log" / "messages"
        if messages.exists():
            out.append("--- asterisk messages\n" + messages.read_text(errors="replace")[-6000:])
        return "\n".join(out)

    # HTTP --------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None,
                token: str | None = "demo-admin-token") -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def health(self) -> Any:
        try:
            return self.request("GET", "/api/health", token=None)[1]
        except (OSError, ValueError):
            return None

    def contacts(self, since: str) -> list[dict[str, Any]]:
        status, body = self.request("GET", f"/api/contacts?since={since}")
        assert status == 200, body
        return body["contacts"]

    def agent(self, agent_id: str) -> dict[str, Any]:
        status, body = self.request("GET", "/api/agents")
        assert status == 200, body
        return next(a for a in body["agents"] if a["id"] == agent_id)

    def set_state(self, agent_id: str, state: str) -> dict[str, Any]:
        status, body = self.request("POST", f"/api/agents/{agent_id}/state", {"state": state})
        assert status == 200, body
        return body

    def sql(self, query: str, *params: Any) -> list[tuple]:
        """Read the centre's database directly (read-only), as an auditor would."""
        import sqlite3
        with sqlite3.connect(f"file:{self.var / 'kc.db'}?mode=ro", uri=True) as db:
            return db.execute(query, params).fetchall()

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited ({proc.returncode}) waiting for {what}\n{self.logs()}")
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")
            time.sleep(0.2)


# Synthesised prompts are content-addressed (agi/prompts.py: a file's name is the hash of its
# voice, text and format), so the suite's centres share them instead of each one running
# espeak-ng some 900 times at start (every announcement part in every voice): a new centre
# starts with the pool's files linked into its sounds, and a removed one gives back what it
# made. Nothing else in `sounds/` (recordings, uploads) is shared.
PROMPT_POOL = Path("/tmp/kc-test-prompts")
_SYNTHESISED = re.compile(r"^[0-9a-f]{64}\.wav$")


def _share_prompts(source: Path, target: Path) -> None:
    """Link every synthesised prompt of `source` missing from `target` (best effort)."""
    target.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return
    for path in source.iterdir():
        if _SYNTHESISED.match(path.name) and not (target / path.name).exists():
            try:
                os.link(path, target / path.name)
            except FileExistsError:
                pass
            except OSError:
                shutil.copy2(path, target / path.name)


def make_instance() -> KcInstance:
    var = Path(tempfile.mkdtemp(prefix="kc", dir="/tmp"))
    os.chmod(var, 0o755)  # Asterisk runs as its own user and must reach its tree
    _share_prompts(PROMPT_POOL, var / "sounds")
    os.chmod(var / "sounds", 0o755)
    rtp_start, rtp_end = free_rtp_range()
    ports = {
        "KC_SIP_PORT": free_port(socket.SOCK_DGRAM),
        "KC_AMI_PORT": free_port(),
        "KC_AGI_PORT": free_port(),
        "KC_WEB_PORT": free_port(),
        "KC_SMTP_PORT": free_port(),   # the e-mail intake (2525 by default)
    }
    env = {**os.environ, "KC_VAR": str(var), "KC_RTP_START": str(rtp_start),
           "KC_RTP_END": str(rtp_end), **{k: str(v) for k, v in ports.items()},
           "PYTHONUNBUFFERED": "1",
           "KC_DEMO_ALWAYS_OPEN": "1"}   # demo schedules always open: tests independent of the hour
    return KcInstance(var, env, ports["KC_SIP_PORT"], ports["KC_WEB_PORT"])


# The demo centre on two nodes: each node's name and the district it homes.
CLUSTER_HOMES = {"north": "bromma", "west": "hasselby-vallingby"}


def make_cluster(queue_configs: tuple = ()) -> KcInstance:
    """The demo centre on two Asterisk nodes behind the front door (free ports), created with
    `queue_configs` (`kc.queue_config.QueueConfig`s) saved; nothing started yet."""
    import sqlite_utils
    from kc.queue_config import save_queue_config

    inst = make_instance()
    inst.nodes = {name: {"sip": free_port(socket.SOCK_DGRAM), "ami": free_port()}
                  for name in CLUSTER_HOMES}
    nodes_file = inst.var / "nodes.yaml"
    nodes_file.write_text("nodes:\n" + "".join(
        f"  - {{id: {n}, sip: '127.0.0.1:{p['sip']}', ami: '127.0.0.1:{p['ami']}', "
        f"districts: [{CLUSTER_HOMES[n]}]}}\n" for n, p in inst.nodes.items()))
    subprocess.run([*KC, "init", "--demo", "--nodes", str(nodes_file)], cwd=ROOT, env=inst.env,
                   check=True, capture_output=True)
    db = sqlite_utils.Database(inst.var / "kc.db")
    for config in queue_configs:
        save_queue_config(db, config)
    db.conn.close()
    return inst


def start_cluster(inst: KcInstance, timeout: float = 90) -> None:
    """Every node (`kc asterisk --node`), the front door, then the service."""
    for node in inst.nodes:
        inst._start(node, "asterisk", "--node", node)
    inst._start("front", "asterisk", "--front-door")
    inst.start_service(timeout)
    inst.wait_for(lambda: ((inst.health() or {}).get("front_door") or {}).get("status") == "up",
                  timeout, "the front door answering")


def remove_cluster(inst: KcInstance) -> None:
    inst.stop()
    for name in ("front", *inst.nodes):
        inst._stop(name)
    shutil.rmtree(inst.var, ignore_errors=True)


@contextmanager
def running_instance(env: dict[str, str] | None = None,
                     before_start: Callable[[KcInstance], None] | None = None,
                     timeout: float = 90) -> Iterator[KcInstance]:
    """A private centre started (with `env` added, after `before_start` ran on it), then
    stopped and removed; its logs printed first when KC_KEEP_LOGS is set."""
    inst = make_instance()
    inst.env.update(env or {})
    try:
        if before_start is not None:
            before_start(inst)
        inst.start(timeout)
        yield inst
    finally:
        if os.environ.get("KC_KEEP_LOGS"):
            print(inst.logs())
        remove_instance(inst)


def remove_instance(inst: KcInstance) -> None:
    inst.stop()
    _share_prompts(inst.var / "sounds", PROMPT_POOL)
    shutil.rmtree(inst.var, ignore_errors=True)


def release_instance(inst: KcInstance) -> None:
    """A benchmark's instance at its end: kept for a look when KC_KEEP_BENCH is set, else gone."""
    if os.environ.get("KC_KEEP_BENCH"):
        print("kept", inst.var)
        inst.stop()
    else:
        remove_instance(inst)


def init_with_queues(inst: KcInstance, configs: list) -> None:
    """`kc init --demo` on the instance, then these queue configurations written before start
    (short timings for a test: overflow steps, targets, wrap-up)."""
    import sqlite_utils
    from kc.queue_config import save_queue_config
    subprocess.run([*KC, "init", "--demo"], cwd=ROOT, env=inst.env, check=True, capture_output=True)
    db = sqlite_utils.Database(inst.var / "kc.db")
    for config in configs:
        save_queue_config(db, config)
    db.conn.close()
