"""Password hashing (scrypt, a memory-hard KDF from the standard library) and API tokens."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1


# The SIP digest realm of every agent endpoint (pjsip.conf and the stored HA1 agree on it).
SIP_REALM = "kommuncentral"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"scrypt${_N}${_R}${_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def token_hash(token: str) -> str:
    """API tokens are random, so a plain SHA-256 suffices to keep them out of the database."""
    return hashlib.sha256(token.encode()).hexdigest()


def sip_ha1(username: str, realm: str, password: str) -> str:
    """Digest HA1 for PJSIP's md5_cred, so no SIP password is stored in clear."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()
