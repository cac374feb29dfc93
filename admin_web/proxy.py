"""Behind a reverse proxy: the client's address, scheme and host as the proxy saw them.

`X-Forwarded-For`, `-Proto` and `-Host` are believed only from the addresses in
`KC_TRUSTED_PROXIES` (the proxy's; empty, the default: from nobody). Of `X-Forwarded-For`,
the address nearest the proxy that is not itself a trusted proxy is the client (addresses
further left could be made up by the client). From anyone else the headers are ignored, so a
client cannot pose as another address (the log-in throttle, the public form's limit and the
metrics' allow-list all go by the client's address) or claim HTTPS.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Awaitable, Callable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def networks(text: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in text.split(",") if n.strip())


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address((text or "").strip().split("%")[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(text: str | None, nets: tuple[Network, ...]) -> bool:
    address = _address(text)
    return address is not None and any(address in net for net in nets)


def client_of(peer: str | None, forwarded_for: str, trusted: tuple[Network, ...]) -> str | None:
    """The client's address: the peer, or (from a trusted proxy) the right-most address of
    `X-Forwarded-For` that is not a trusted proxy; None when the header is malformed."""
    client = peer
    if not in_networks(peer, trusted):
        return client
    for hop in reversed([h for h in forwarded_for.split(",") if h.strip()]):
        address = _address(hop)
        if address is None:
            return None
        client = str(address)
        if not any(address in net for net in trusted):
            break
    return client


def middleware(trusted_text: str) -> Callable:
    trusted = networks(trusted_text)

    @web.middleware
    async def from_proxy(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if not trusted or not in_networks(request.remote, trusted):
            return await handler(request)
        client = client_of(request.remote, request.headers.get("X-Forwarded-For", ""), trusted)
        if client is None:
            raise web.HTTPBadRequest(text="malformed X-Forwarded-For")
        changes: dict[str, str] = {"remote": client}
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            changes["scheme"] = proto
        host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if host and _HOST.match(host):
            changes["host"] = host
        return await handler(request.clone(**changes))
    return from_proxy
