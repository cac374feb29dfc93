"""HTML pages. The site grows in later work; today: the front page."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from pbx.runtime import parse_version

from .keys import AMI

routes = web.RouteTableDef()


@routes.get("/")
@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict:
    return {"asterisk_version": parse_version(request.app[AMI].pbx_version or "")}
