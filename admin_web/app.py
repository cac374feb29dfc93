"""Routes and middleware of the site; the services come from the composition root."""
from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from kc import i18n

from . import (access_pages, acd_api, agent_pages, api, case_pages, desk, desk_after_hours,
               desk_calls, directory_api, district_api, district_pages, language, menu_api,
               menu_pages, metrics_route, nav, openapi, pages, phrase_pages, proxy, queue_pages,
               report_pages, schedule_api, survey_pages, wait_alerts, wallboard, words)
from .auth import Streams, authenticate, template_context
from .errors import translate_errors
from .keys import DEVICE_KEY, SETTINGS, STREAMS, THROTTLE
from .login_throttle import LoginThrottle

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


# Every answer, pages, API and errors alike. No inline script anywhere (styles may be inline);
# nothing may frame the site (clickjacking); no MIME sniffing; no URLs leak to other sites.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
                               "'unsafe-inline'; img-src 'self' data:; media-src 'self'; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)   # a stricter one set by a handler stays


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    # the client as the reverse proxy saw it (only from KC_TRUSTED_PROXIES), before anything
    # that goes by the client's address or scheme
    app.middlewares.extend([proxy.middleware(settings.trusted_proxies), language.choose,
                            translate_errors, authenticate])
    app.on_response_prepare.append(_security_headers)
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                               autoescape=True, context_processors=[template_context],
                               extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True,   # type: ignore[attr-defined]
                                  pgettext=i18n.pgettext)
    words.install(env)
    env.globals["nav_links"] = nav.links_for
    env.globals["wait_alerts_shown"] = wait_alerts.shown      # the header's waiting-too-long
    env.globals["wait_alert_words"] = wait_alerts.words
    app.add_routes(api.routes)
    app.add_routes(openapi.routes)            # GET /api/openapi.json
    app.add_routes(acd_api.routes)
    app.add_routes(pages.routes)
    app.add_routes(language.routes)           # POST /language
    app.add_routes(access_pages.routes)
    app.add_routes(schedule_api.routes)
    app.add_routes(menu_api.routes)
    app.add_routes(menu_pages.routes)
    app.add_routes(phrase_pages.routes)      # recordings of the system's own phrases
    app.add_routes(desk.routes)               # the agent desktop
    app.add_routes(desk_after_hours.routes)   # after-hours requests on the desktop
    app.add_routes(desk_calls.routes)         # click to call
    app.add_routes(case_pages.routes)         # cases, categories, KB, contact form, FCR
    app[case_pages.LIMITER] = case_pages.RateLimiter(settings.form_limit, settings.form_window)
    app[THROTTLE] = LoginThrottle()
    app[STREAMS] = Streams()
    app[DEVICE_KEY] = settings.secret("session.key")
    app.add_routes(report_pages.routes)
    app.add_routes(wallboard.routes)
    app.add_routes(agent_pages.routes)
    app.add_routes(queue_pages.routes)
    app.add_routes(survey_pages.routes)       # the survey after a call, its report
    app.add_routes(district_api.routes)      # districts, skills, the whole organisation
    app.add_routes(district_pages.routes)    # the same, as admin pages
    app.add_routes(metrics_route.routes)     # /metrics: by address or token, no log-in
    app.add_routes(directory_api.routes)     # the switchboard's staff directory
    app.router.add_static("/static", STATIC)
