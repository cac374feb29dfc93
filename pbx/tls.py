"""The certificate and key of the agents' SIP TLS transport.

An operator names their own in `KC_TLS_CERT` / `KC_TLS_KEY`; for the demo (and tests) a
self-signed pair for the SIP host is made once with the system's `openssl` into `var/tls/`.
Asterisk gets copies in its own tree (`keys/`, its user's, 0600), so a private root sees them
and a key outside `var/` needs no wider permissions.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

from kc.errors import ConfigError

DAYS = 825       # the longest validity clients accept for a server certificate


def subject_names(host: str) -> list[str]:
    """subjectAltName entries for a SIP host (`0.0.0.0`: this machine's loopback)."""
    names = ["DNS:localhost", "IP:127.0.0.1"]
    try:
        address = ipaddress.ip_address(host)
        if not address.is_unspecified and str(address) != "127.0.0.1":
            names.append(f"IP:{address}")
    except ValueError:
        names.append(f"DNS:{host}")
    return names


def ensure_demo_pair(cert: Path, key: Path, host: str) -> None:
    """Make a self-signed certificate and its key (RSA 2048, SHA-256) unless both exist."""
    if cert.is_file() and key.is_file():
        return
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ConfigError("KC_AGENT_TLS needs a certificate: name one in KC_TLS_CERT and "
                          "KC_TLS_KEY, or install openssl to make a self-signed one")
    cert.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(cert.parent, 0o700)
    partial_key, partial_cert = key.with_suffix(".key.new"), cert.with_suffix(".crt.new")
    out = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes", "-days", str(DAYS),
         "-subj", "/O=Kommuncentral/CN=kommuncentral-sip",
         "-addext", "subjectAltName=" + ",".join(subject_names(host)),
         "-keyout", str(partial_key), "-out", str(partial_cert)],
        capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise ConfigError(f"openssl could not make the demo certificate: {out.stderr.strip()[:300]}")
    os.chmod(partial_key, 0o600)
    os.replace(partial_key, key)
    os.replace(partial_cert, cert)


def read_pair(cert: Path, key: Path) -> tuple[str, str]:
    """The PEM texts; a clear error naming the setting when one is missing or not PEM."""
    texts = []
    for name, path, marker in (("KC_TLS_CERT", cert, "CERTIFICATE"), ("KC_TLS_KEY", key, "PRIVATE KEY")):
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None
        if "-----BEGIN " not in text or marker not in text:
            raise ConfigError(f"{name}: {path} is not a PEM {marker.lower()}")
        texts.append(text)
    return texts[0], texts[1]
