"""The site behind nginx over HTTPS, as ops/nginx/kommuncentral.conf sets it up: pages, log-in,
the wallboard's event stream and the desk's WebSocket pass; the site takes the client's
address and HTTPS from the proxy (KC_TRUSTED_PROXIES) and from nobody else.

The test's browser side connects from 127.0.0.2 (any 127.x address is this machine), so the
client the proxy names differs from the proxy itself (127.0.0.1)."""
from __future__ import annotations

import asyncio
import functools
import http.client
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from kc_instance import ROOT, free_port, make_instance, remove_instance
from own_agents import PASSWORD, Crew
from pbx.tls import ensure_demo_pair
from test_web_access import Client

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                reason="nginx is not installed (install-asterisk.sh --with-test-tools)")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLIENT = "127.0.0.2"
CREW = Crew(__name__)
SCHOOL, = CREW.of("school")


class SourceHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, source: str):
        super().__init__(context=context)
        self.source = source

    def https_open(self, req):
        return self.do_open(functools.partial(http.client.HTTPSConnection,
                                              source_address=(self.source, 0)),
                            req, context=self._context)


class SourceHTTP(urllib.request.HTTPHandler):
    def __init__(self, source: str):
        super().__init__()
        self.source = source

    def http_open(self, req):
        return self.do_open(functools.partial(http.client.HTTPConnection,
                                              source_address=(self.source, 0)), req)


class ProxyClient(Client):
    """Test_web_access's cookie-keeping client, over HTTPS (or HTTP) from `source`."""

    def __init__(self, base: str, context: ssl.SSLContext | None, source: str = CLIENT):
        super().__init__(base)
        handler = SourceHTTPS(context, source) if context else SourceHTTP(source)
        no_redirect = next(type(h) for h in self.opener.handlers
                           if isinstance(h, urllib.request.HTTPRedirectHandler))
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  no_redirect, handler)
        self.context, self.source = context, source

    def cookie(self, name: str):
        return next((c for c in self.jar if c.name == name), None)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    """A centre that trusts 127.0.0.1 as its proxy, and nginx on 127.0.0.1 in front of it."""
    work = tmp_path_factory.mktemp("nginx")
    inst = make_instance()
    inst.env.update({"KC_TRUSTED_PROXIES": "127.0.0.1", "KC_METRICS_ALLOW": "127.0.0.1"})
    port = free_port()
    cert, key = work / "site.crt", work / "site.key"
    ensure_demo_pair(cert, key, "127.0.0.1")
    site = (ROOT / "ops" / "nginx" / "kommuncentral.conf").read_text()
    for old, new in (("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
                     ("/etc/kommuncentral/tls/site.crt", str(cert)),
                     ("/etc/kommuncentral/tls/site.key", str(key)),
                     ("http://127.0.0.1:8080", f"http://127.0.0.1:{inst.web_port}")):
        assert old in site, old
        site = site.replace(old, new)
    (work / "site.conf").write_text(site)
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    temp = "\n".join(f"  {kind}_temp_path {work}/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (work / "nginx.conf").write_text(f"""{user}
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
daemon off;
events {{ worker_connections 256; }}
http {{
  access_log {work}/access.log;
{temp}
  include {work}/site.conf;
}}
""")
    args = [NGINX, "-p", str(work), "-e", str(work / "error.log"), "-c", str(work / "nginx.conf")]
    check = subprocess.run([*args, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    nginx = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        inst.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert nginx.poll() is None and time.monotonic() < deadline, \
                    (work / "error.log").read_text()
                time.sleep(0.2)
        context = ssl.create_default_context(cafile=str(cert))
        yield inst, f"https://127.0.0.1:{port}", context
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(15)
        except subprocess.TimeoutExpired:
            nginx.kill()
        remove_instance(inst)


def test_pages_and_log_in_pass_over_https_with_secure_cookies(proxied):
    kc, base, context = proxied
    client = ProxyClient(base, context)
    status, headers, body = client.request("GET", "/")
    assert status == 200 and "Content-Security-Policy" in headers
    assert client.login("admin", "demo-admin")[0] == 302
    assert client.cookie("kc_session").secure                # HTTPS, as the proxy said
    status, _, body = client.request("GET", "/admin/users")
    assert status == 200 and "supervisor" in body
    direct = Client(kc.url)                                    # plain HTTP, no proxy
    assert direct.login("admin", "demo-admin")[0] == 302
    assert not next(c for c in direct.jar if c.name == "kc_session").secure


def test_the_client_address_comes_from_the_trusted_proxy_only(proxied):
    kc, base, context = proxied
    # /metrics is open to 127.0.0.1 only: through the proxy the client is 127.0.0.2
    assert ProxyClient(base, context).request("GET", "/metrics")[0] == 403
    assert ProxyClient(base, context, source="127.0.0.1").request("GET", "/metrics")[0] == 200
    forged = {"X-Forwarded-For": "127.0.0.1"}
    # a made-up header through the proxy: the proxy appends the real client, which counts
    assert ProxyClient(base, context).request("GET", "/metrics", headers=forged)[0] == 403
    # and straight to the site from an address that is not the proxy: ignored
    direct = ProxyClient(kc.url, None, source=CLIENT)
    assert direct.request("GET", "/metrics", headers=forged)[0] == 403
    assert direct.request("GET", "/metrics")[0] == 403
    assert ProxyClient(kc.url, None, source="127.0.0.1").request("GET", "/metrics")[0] == 200


def test_the_wallboard_stream_passes_as_it_comes(proxied):
    kc, base, context = proxied
    client = ProxyClient(base, context)
    assert client.login("supervisor", "demo-supervisor")[0] == 302
    req = urllib.request.Request(base + "/wallboard/events")
    started = time.monotonic()
    with client.opener.open(req, timeout=15) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
        first = resp.readline().decode()
        data = resp.readline().decode()
    assert first == "event: snapshot\n" and data.startswith("data: {")
    assert time.monotonic() - started < 10             # not held back by the proxy


def test_the_desk_websocket_passes_and_keeps_its_origin_check(proxied):
    kc, base, context = proxied
    CREW.hire(kc)
    client = ProxyClient(base, context)
    assert client.login(SCHOOL, PASSWORD)[0] == 302
    cookie = f"kc_session={client.cookie('kc_session').value}"
    wss = base.replace("https://", "wss://") + "/desk/ws"

    async def talk(origin: str) -> str:
        connector = aiohttp.TCPConnector(ssl=context, local_addr=(CLIENT, 0))
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                async with session.ws_connect(wss, headers={"Cookie": cookie, "Origin": origin},
                                              timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws:
                    await ws.send_str("ping")
                    while True:
                        msg = await asyncio.wait_for(ws.receive(), 15)
                        if msg.type == aiohttp.WSMsgType.TEXT and '"pong"' in msg.data:
                            return "pong"
            except aiohttp.WSServerHandshakeError as exc:
                return f"refused {exc.status}"
    assert asyncio.run(talk(base)) == "pong"
    assert asyncio.run(talk("https://elsewhere.example")) == "refused 403"
