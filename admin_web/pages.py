"""HTML pages. The site grows in later work; today: the front page."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from kc import queries
from pbx.runtime import parse_version

from .keys import AMI, STORE, USER
from .nav import landing

routes = web.RouteTableDef()


@routes.get("/")
@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict:
    """Each role's own start page (an agent the desk, a manager the reports, a supervisor the
    wallboard); for an administrator and a visitor, the overview: the districts in service, by
    name as written (å, ä, ö), and the Asterisk in use."""
    if landing(request.get(USER)) != "/":
        raise web.HTTPFound(landing(request.get(USER)))
    return {"districts": await request.app[STORE].run(queries.list_districts),
            "asterisk_version": parse_version(request.app[AMI].pbx_version or "")}
