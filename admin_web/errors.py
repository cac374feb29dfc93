"""Our errors become JSON answers at the HTTP seam; nothing else leaks to the client."""
from __future__ import annotations

import html
import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from kc.errors import InvalidInput, NotFound, TelephonyDown

log = logging.getLogger(__name__)


async def json_object(request: web.Request, message: str = "body must be a JSON object",
                      undecodable: str | None = None) -> dict[str, Any]:
    """The request's JSON body, which must be an object: InvalidInput(`message`) otherwise
    (`undecodable`, if given, when it is not JSON at all)."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput(undecodable or message) from None
    if not isinstance(body, dict):
        raise InvalidInput(message)
    return body


def json_error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _error(request: web.Request, status: int, message: str, **extra: object) -> web.Response:
    """JSON for the API, a small page with the message for forms and pages."""
    if request.path.startswith("/api/"):
        return json_error(status, message, **extra)
    body = (f"<!doctype html><meta charset=utf-8><title>Error</title>"
            f"<main role=alert><h1>{status}</h1><p class=error>{html.escape(message)}</p>"
            f"<p><a href=\"javascript:history.back()\">Back</a></p></main>")
    return web.Response(status=status, text=body, content_type="text/html")


@web.middleware
async def translate_errors(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except InvalidInput as exc:
        return _error(request, 422, str(exc), **getattr(exc, "details", {}))
    except NotFound as exc:
        return _error(request, 404, str(exc))
    except TelephonyDown as exc:
        return _error(request, 503, str(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(request, 500, "internal error")
