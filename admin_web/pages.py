"""HTML pages. The site grows in later work; today: the front page."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from kc import queries
from pbx.runtime import parse_version

from .keys import AMI, STORE

routes = web.RouteTableDef()


@routes.get("/")
@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict:
    """The districts in service, by name as written (å, ä, ö), and the Asterisk in use."""
    return {"districts": await request.app[STORE].run(queries.list_districts),
            "asterisk_version": parse_version(request.app[AMI].pbx_version or "")}
