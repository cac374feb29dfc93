"""Typed application keys: how handlers find the services the composition root built."""
from __future__ import annotations


from aiohttp import web

from acd.ami import AmiLink
from acd.distributor import Distributor
from cases.email import Mailboxes
from cases.messages import Categoriser
from kc.clock import Clock
from kc.settings import Settings
from kc.store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CLOCK = web.AppKey("clock", Clock)  # type: ignore[arg-type]
DISTRIBUTOR = web.AppKey("distributor", Distributor)
AMI = web.AppKey("ami", AmiLink)
MAILBOXES = web.AppKey("mailboxes", Mailboxes)        # the e-mail channel's addresses
CATEGORISER = web.AppKey("categoriser", Categoriser)  # a written matter's text → skill
USER = "kc_user"   # request key: the authenticated user (dict) or absent
