"""Our errors become JSON answers at the HTTP seam; nothing else leaks to the client."""
from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web

from kc.errors import InvalidInput, NotFound, TelephonyDown

log = logging.getLogger(__name__)


def json_error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


@web.middleware
async def translate_errors(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except InvalidInput as exc:
        return json_error(422, str(exc))
    except NotFound as exc:
        return json_error(404, str(exc))
    except TelephonyDown as exc:
        return json_error(503, str(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error")
