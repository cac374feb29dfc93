"""The site's language: chosen per user (stored), per browser before log-in; Swedish first.

Pages speak the user's chosen language (`users.language`), a visitor's the one of the
`kc_lang` cookie, and Swedish otherwise. The JSON API speaks English unless the request asks
for Swedish (`Accept-Language: sv`): its callers are programs. The language is set for the
request's task (`kc.i18n.use`), so templates, handlers and the messages of the layers below all
follow it. `POST /language` switches (audited for a logged-in user).
"""
from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from kc import i18n, web_store
from kc.audit import audit

from .auth import safe_next
from .keys import CLOCK, SETTINGS, STORE, USER

COOKIE = "kc_lang"

routes = web.RouteTableDef()


@web.middleware
async def choose(request: web.Request,
                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every request starts in the visitor's language (requests on one connection share a
    task, so it is set each time); `authenticate` then makes it the user's own choice."""
    if request.path.startswith("/api/"):
        wanted = request.headers.get("Accept-Language", "")
        i18n.use("sv" if wanted.strip().lower().startswith("sv") else "en")
    else:
        i18n.use(request.cookies.get(COOKIE))
    return await handler(request)


@routes.post("/language")
async def switch(request: web.Request) -> web.Response:
    form = await request.post()
    lang = i18n.language(str(form.get("lang", "")))
    back = str(form.get("next", "/"))
    resp = web.HTTPFound(safe_next(back))
    user = request.get(USER)
    if user is not None:
        store = request.app[STORE]
        before = await store.run(web_store.set_language, user["username"], lang)
        await audit(store, request.app[CLOCK], user["username"], "user.language",
                    user["username"], {"language": before}, {"language": lang})
    resp.set_cookie(COOKIE, lang, httponly=True, samesite="Lax", path="/", max_age=365 * 86400,
                    secure=request.app[SETTINGS].secure_cookies)
    raise resp
