"""Our errors become JSON answers at the HTTP seam; nothing else leaks to the client."""
from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web

from kc.errors import InvalidInput, NotFound, TelephonyDown
from kc.i18n import N_, gettext as _

from .keys import USER
from .nav import landing

log = logging.getLogger(__name__)


async def json_object(request: web.Request, message: str = "body must be a JSON object",
                      undecodable: str | None = None) -> dict[str, Any]:
    """The request's JSON body, which must be an object: InvalidInput(`message`) otherwise
    (`undecodable`, if given, when it is not JSON at all)."""
    body = await read_json(request, undecodable or message)
    if not isinstance(body, dict):
        raise InvalidInput(message)
    return body


MAX_DEPTH = 32


def _depth_ok(value: Any, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_depth_ok(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_depth_ok(v, depth + 1) for v in value)
    return True


async def read_json(request: web.Request, message: str = "body must be JSON") -> Any:
    """The request's JSON body, or InvalidInput: not JSON, nested deeper than MAX_DEPTH,
    text that is not Unicode (a lone surrogate such as "\\ud800") or an integer beyond 64 bits."""
    raw = await request.read()
    if raw.count(b"[") + raw.count(b"{") > 10000:
        raise InvalidInput("body: too many nested objects or lists")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidInput(message) from None
    if not _depth_ok(body):
        raise InvalidInput(f"body: nested deeper than {MAX_DEPTH} levels")
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("body: text must be valid Unicode (no lone surrogates)") from None
    if _has_huge_int(body):
        raise InvalidInput("body: a number is out of range")
    return body


def _has_huge_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -2 ** 63 <= value < 2 ** 63
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf")) or abs(value) > 1e15
    if isinstance(value, dict):
        return any(_has_huge_int(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_huge_int(v) for v in value)
    return False


def _message(exc: web.HTTPException) -> str:
    text = (exc.text or "").strip()
    return text if text and not text.startswith("{") and len(text) < 300 else exc.reason


def json_error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _error(request: web.Request, status: int, message: str, **extra: object) -> web.Response:
    """JSON for the API; for forms and pages, the message in the site's layout with a way on."""
    if request.path.startswith("/api/"):
        return json_error(status, message, **extra)
    return error_page(request, status, message)


TITLES = {403: N_("You may not open this page"), 404: N_("The page was not found"),
          422: N_("Something in the form needs fixing"), 500: N_("Something went wrong"),
          503: N_("The telephone system does not answer")}


def error_page(request: web.Request, status: int, message: str = "") -> web.Response:
    title = _(TITLES.get(status, TITLES[500]))
    return aiohttp_jinja2.render_template("error.html", request, {
        "status": status, "title": title, "message": message if message != title else "",
        "landing": landing(request.get(USER))},
        status=status)


def _page_message(exc: web.HTTPException) -> str:
    """A handler's own words (a 403's reason); aiohttp's bare reasons say nothing more."""
    text = (exc.text or "").strip()
    return "" if not text or text == f"{exc.status}: {exc.reason}" else _message(exc)


@web.middleware
async def translate_errors(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if (exc.status >= 400 and request.path.startswith("/api/")
                and exc.content_type != "application/json"):
            # aiohttp's own refusals (404, 405, 413, ...): JSON with a message on the API too
            resp = json_error(exc.status, _message(exc))
            for name in ("Allow", "WWW-Authenticate", "Retry-After"):
                if name in exc.headers:
                    resp.headers[name] = exc.headers[name]
            return resp
        if exc.status >= 400 and not request.path.startswith("/api/") and exc.content_type in (
                "text/plain", "text/html") and request.method in ("GET", "HEAD", "POST"):
            return error_page(request, exc.status, _page_message(exc))
        raise
    except (RecursionError, OverflowError, UnicodeError) as exc:
        # Input no handler should have let through this far (nested too deep, numbers or dates
        # out of range, text that is not Unicode): refused, and logged to be fixed at its root.
        log.warning("bad input reached %s %s: %r", request.method, request.path, exc)
        return _error(request, 422, _("the request holds a value out of range or too deeply nested"))
    except InvalidInput as exc:
        return _error(request, 422, str(exc), **getattr(exc, "details", {}))
    except NotFound as exc:
        return _error(request, 404, str(exc))
    except TelephonyDown as exc:
        return _error(request, 503, str(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(request, 500, _("internal error"))
