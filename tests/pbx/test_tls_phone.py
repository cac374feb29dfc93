"""An agent's phone over SIP TLS with SRTP answers a resident's call, on the real PBX; the
resident still calls in over plain UDP (the operator's trunk).

SIPp here has no TLS (`sipp -v`: SCTP-PCAP-RTPSTREAM), so the phone is `sip_tls_phone.py`, a
small SIP user agent on Python's TLS that checks Asterisk's certificate."""
from __future__ import annotations

import socket
import subprocess
import time

import pytest

from kc_instance import free_port, now_iso, running_instance
from own_agents import PASSWORD, Crew
from sip_tls_phone import TlsPhone
from sipp_driver import call

pytestmark = pytest.mark.telephony

BROMMA = "0850810000"
CREW = Crew(__name__)
ELDER, = CREW.of("elder")
crew = CREW.fixture("tls_kc")


@pytest.fixture(scope="module")
def tls_kc():
    with running_instance({"KC_AGENT_TLS": "1", "KC_SIP_TLS_PORT": str(free_port())}) as inst:
        yield inst


def phone(kc, agent: str = ELDER) -> TlsPhone:
    p = TlsPhone("127.0.0.1", int(kc.env["KC_SIP_TLS_PORT"]), agent, PASSWORD,
                 cafile=str(kc.var / "tls" / "sip.crt"))
    p.connect()
    return p


def test_the_demo_certificate_is_self_signed_for_the_sip_host_and_its_key_private(tls_kc):
    cert, key = tls_kc.var / "tls" / "sip.crt", tls_kc.var / "tls" / "sip.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text
    # a client that does not trust it is refused at the handshake
    import ssl
    with socket.create_connection(("127.0.0.1", int(tls_kc.env["KC_SIP_TLS_PORT"]))) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_an_agent_over_tls_and_srtp_answers_a_residents_udp_call(tls_kc, workdir):
    kc = tls_kc
    agent = phone(kc)
    try:
        (cipher, _, _), version = agent.cipher
        assert version in ("TLSv1.2", "TLSv1.3"), version
        assert agent.register().status == 200
        kc.wait_for(lambda: kc.agent(ELDER)["registered"], 10, "registered over TLS")
        kc.set_state(ELDER, "ready")
        since = now_iso()
        resident = call(workdir, kc.sip_port, BROMMA, digits=[(2.0, "1")],
                        caller_number="0706660001", hangup_after=None, wait_far_bye=60)
        offer = agent.answer(timeout=40)
        assert "RTP/SAVP" in offer and "a=crypto:" in offer          # SRTP, keys inside TLS
        assert "RTP/AVP " not in offer
        kc.wait_for(lambda: kc.agent(ELDER)["state"] == "on_call", 20, "on call")
        time.sleep(2)
        assert agent.hang_up().status == 200
        result = resident.wait_ok(60)
        assert result.answered and result.hangup == "far"

        def answered():
            return next((c for c in kc.contacts(since)
                         if c["caller"] == "0706660001" and c["outcome"]), None)
        contact = kc.wait_for(answered, 30, "the answered contact")
        assert contact["outcome"] == "answered" and contact["agent"] == ELDER
        assert contact["talk_seconds"] >= 1
    finally:
        agent.close()
