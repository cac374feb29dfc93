"""An agent's phone over SIP TLS with SRTP keys (SDES), for the tests.

The SIPp here is built without TLS (`sipp -v`: SCTP, PCAP, RTPSTREAM only), so this is a
small SIP user agent on Python's own TLS: it verifies Asterisk's certificate, registers with
digest authentication, answers one INVITE with an SRTP answer (RTP/SAVP and an `a=crypto`
key of the offered suite) and hangs up with BYE. It holds one TLS connection, which Asterisk
reuses to reach it (as softphones behind NAT are reached). It sends no media.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclass
class Message:
    first: str
    headers: list[tuple[str, str]]
    body: str = ""

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return ""

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def status(self) -> int:
        return int(self.first.split()[1]) if self.first.startswith("SIP/2.0") else 0

    @property
    def method(self) -> str:
        return "" if self.first.startswith("SIP/2.0") else self.first.split()[0]


@dataclass
class TlsPhone:
    host: str
    port: int
    user: str
    password: str
    cafile: str
    server_name: str = "localhost"
    sock: ssl.SSLSocket | None = None
    buffer: bytes = b""
    cseq: int = 0
    call_id: str = field(default_factory=lambda: secrets.token_hex(8))
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    dialog: Message | None = None
    answer_tag: str = ""
    media: socket.socket | None = None

    def connect(self) -> None:
        context = ssl.create_default_context(cafile=self.cafile)      # verifies the server
        raw = socket.create_connection((self.host, self.port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname=self.server_name)
        self.local = self.sock.getsockname()
        self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.media.bind(("127.0.0.1", 0))

    def close(self) -> None:
        for s in (self.sock, self.media):
            if s is not None:
                s.close()

    @property
    def cipher(self) -> tuple:
        assert self.sock is not None
        return self.sock.cipher(), self.sock.version()

    # ------------------------------------------------------------------ the wire
    def _via(self) -> str:
        return (f"SIP/2.0/TLS {self.local[0]}:{self.local[1]};rport;"
                f"branch=z9hG4bK{secrets.token_hex(6)}")

    def _contact(self) -> str:
        return f"<sip:{self.user}@{self.local[0]}:{self.local[1]};transport=tls>"

    def send(self, first: str, headers: list[tuple[str, str]], body: str = "") -> None:
        assert self.sock is not None
        lines = [first, *[f"{k}: {v}" for k, v in headers], f"Content-Length: {len(body.encode())}",
                 "", body]
        self.sock.sendall("\r\n".join(lines).encode())

    def read(self, timeout: float) -> Message:
        assert self.sock is not None
        deadline = time.monotonic() + timeout
        while True:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if sep:
                text = head.decode("utf-8", "replace")
                if not text.strip():           # keep-alive CRLFs
                    self.buffer = rest
                    continue
                first, *lines = text.split("\r\n")
                headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines)]
                length = int(next((v for k, v in headers if k.lower() in ("content-length", "l")), "0"))
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return Message(first, headers, rest[:length].decode("utf-8", "replace"))
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.user}: no SIP message within {timeout} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionError(f"{self.user}: the TLS connection was closed")
            self.buffer += chunk

    # ------------------------------------------------------------------ registering
    def register(self, expires: int = 300, timeout: float = 15) -> Message:
        uri = f"sip:{self.host}:{self.port};transport=tls"
        authorization = None
        for _ in range(2):
            self.cseq += 1
            headers = [("Via", self._via()), ("Max-Forwards", "70"),
                       ("From", f"<sip:{self.user}@{self.host}>;tag={self.tag}"),
                       ("To", f"<sip:{self.user}@{self.host}>"), ("Call-ID", self.call_id),
                       ("CSeq", f"{self.cseq} REGISTER"), ("Contact", self._contact()),
                       ("Expires", str(expires)), ("User-Agent", "kc-test-tls-phone")]
            if authorization:
                headers.append(("Authorization", authorization))
            self.send(f"REGISTER {uri} SIP/2.0", headers)
            reply = self._final(timeout)
            if reply.status == 401 and authorization is None:
                authorization = self._digest("REGISTER", uri, reply.header("WWW-Authenticate"))
                continue
            return reply
        return reply

    def _final(self, timeout: float) -> Message:
        while True:
            reply = self.read(timeout)
            if reply.status >= 200:
                return reply

    def _digest(self, method: str, uri: str, challenge: str) -> str:
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
        realm, nonce = params["realm"], params["nonce"]
        ha1, ha2 = _md5(f"{self.user}:{realm}:{self.password}"), _md5(f"{method}:{uri}")
        parts = [f'username="{self.user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
                 'algorithm=MD5']
        if "auth" in params.get("qop", "").split(","):
            cnonce, nc = secrets.token_hex(8), "00000001"
            response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            parts += [f'cnonce="{cnonce}"', f"nc={nc}", "qop=auth"]
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        if "opaque" in params:
            parts.append(f'opaque="{params["opaque"]}"')
        return "Digest " + ", ".join(parts + [f'response="{response}"'])

    # ------------------------------------------------------------------ a call to the phone
    def answer(self, timeout: float = 40) -> str:
        """Wait for an INVITE, answer it with SRTP, wait for the ACK; returns the offer's SDP."""
        while True:
            invite = self.read(timeout)
            if invite.method == "INVITE":
                break
            if invite.method in ("OPTIONS", "NOTIFY"):
                self._reply(invite, 200, "OK")
        self.dialog, self.answer_tag = invite, secrets.token_hex(4)
        self._reply(invite, 100, "Trying", tag=False)
        self._reply(invite, 180, "Ringing")
        crypto = re.search(r"a=crypto:(\d+) (\S+) ", invite.body)
        assert crypto, f"the INVITE offers no SRTP key:\n{invite.body}"
        key = base64.b64encode(os.urandom(30)).decode()
        port = self.media.getsockname()[1] if self.media else 4000
        sdp = "\r\n".join([
            "v=0", f"o=- {int(time.time())} 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1",
            "t=0 0", f"m=audio {port} RTP/SAVP 0 101", "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16",
            f"a=crypto:{crypto.group(1)} {crypto.group(2)} inline:{key}", "a=sendrecv", ""])
        self._reply(invite, 200, "OK", body=sdp, extra=[("Content-Type", "application/sdp"),
                                                         ("Contact", self._contact())])
        while True:
            ack = self.read(timeout)
            if ack.method == "ACK":
                return invite.body

    def _reply(self, request: Message, status: int, reason: str, body: str = "",
               extra: list[tuple[str, str]] = (), tag: bool = True) -> None:
        to = request.header("To")
        if tag and ";tag=" not in to:
            to += f";tag={self.answer_tag or self.tag}"
        headers = [("Via", v) for v in request.all("Via")]
        headers += [("From", request.header("From")), ("To", to),
                    ("Call-ID", request.header("Call-ID")), ("CSeq", request.header("CSeq")),
                    *extra]
        self.send(f"SIP/2.0 {status} {reason}", headers, body)

    def hang_up(self, timeout: float = 15) -> Message:
        """BYE in the answered dialog; returns the final reply."""
        invite = self.dialog
        assert invite is not None
        target = re.search(r"<([^>]+)>", invite.header("Contact")).group(1)
        self.send(f"BYE {target} SIP/2.0", [
            ("Via", self._via()), ("Max-Forwards", "70"),
            ("From", invite.header("To") + f";tag={self.answer_tag}"), ("To", invite.header("From")),
            ("Call-ID", invite.header("Call-ID")),
            ("CSeq", f"{int(invite.header('CSeq').split()[0]) + 1} BYE")])
        while True:
            reply = self.read(timeout)
            if reply.status >= 200 and "BYE" in reply.header("CSeq"):
                return reply
            if reply.method:            # the PBX's own requests meanwhile
                self._reply(reply, 200, "OK")
