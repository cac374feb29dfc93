"""Authentication and roles for the API: bearer tokens now, sessions later, one check for both."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from aiohttp import web

from kc import queries
from kc.passwords import token_hash

from .keys import STORE, USER
from .errors import json_error

PUBLIC_API = {"/api/health"}


@web.middleware
async def bearer_auth(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    if request.path.startswith("/api/") and request.path not in PUBLIC_API:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = None
        if scheme.lower() == "bearer" and token.strip():
            user = await request.app[STORE].run(queries.user_for_token, token_hash(token.strip()))
        if user is None:
            resp = json_error(401, "missing or invalid bearer token")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="kommuncentral"'
            return resp
        request[USER] = user
    return await handler(request)


def require_role(request: web.Request, *roles: str) -> dict[str, Any]:
    user = request.get(USER)
    if user is None:
        raise web.HTTPUnauthorized(
            text='{"error": "not authenticated"}', content_type="application/json")
    if user["role"] not in roles:
        raise web.HTTPForbidden(
            text='{"error": "your role may not do this"}', content_type="application/json")
    return user
