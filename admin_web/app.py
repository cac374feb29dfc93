"""Routes and middleware of the site; the services come from the composition root."""
from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import api, pages
from .auth import bearer_auth
from .errors import translate_errors

TEMPLATES = Path(__file__).parent / "templates"


def setup(app: web.Application) -> None:
    app.middlewares.extend([translate_errors, bearer_auth])
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    app.add_routes(api.routes)
    app.add_routes(pages.routes)
