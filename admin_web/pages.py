"""HTML pages. The site grows in later work; today: the front page."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

routes = web.RouteTableDef()


@routes.get("/")
@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict:
    return {}
