"""`GET /metrics`: the centre's metrics for the operations team's Prometheus.

Not a page of the site: no log-in. It opens to the addresses in `KC_METRICS_ALLOW` (the
scraping Prometheus; default the machine itself) or to anyone bearing `KC_METRICS_TOKEN`;
everyone else gets 403. The address is the client's: the TCP peer, or the client a trusted
reverse proxy names (`KC_TRUSTED_PROXIES`, admin_web/proxy.py), never a header from anyone
else. What is served comes from the composition root
(`kommuncentral/metrics.py`), through `METRICS`.
"""
from __future__ import annotations

import hmac
from typing import Awaitable, Callable

from aiohttp import web

from .keys import SETTINGS
from .proxy import in_networks, networks

# Renders the exposition: (body, content type).
METRICS = web.AppKey("metrics", Callable[[], Awaitable[tuple[bytes, str]]])
PATH = "/metrics"

routes = web.RouteTableDef()


def may_scrape(peer: str | None, authorization: str, allow: str, token: str | None) -> bool:
    """The peer's address is on the allow-list, or the request bears the token."""
    scheme, _, given = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                   token.encode()):
        return True
    return in_networks(peer, networks(allow))


@routes.get(PATH)
async def metrics(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not may_scrape(request.remote, request.headers.get("Authorization", ""),
                      settings.metrics_allow, settings.metrics_token):
        return web.Response(status=403, text="403: /metrics is open to KC_METRICS_ALLOW or "
                                             "KC_METRICS_TOKEN only\n")
    render = request.app.get(METRICS)
    if render is None:
        return web.Response(status=503, text="503: the service is starting\n")
    body, content_type = await render()
    return web.Response(body=body, headers={"Content-Type": content_type,
                                            "Cache-Control": "no-store"})
