"""Typed application keys: how handlers find the services the composition root built."""
from __future__ import annotations


from typing import Awaitable, Callable

from aiohttp import web

from acd.ami import AmiLink
from acd.distributor import Distributor
from agi.call_catalogue import LiveCatalogue
from kc.clock import Clock
from kc.settings import Settings
from kc.store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CLOCK = web.AppKey("clock", Clock)  # type: ignore[arg-type]
DISTRIBUTOR = web.AppKey("distributor", Distributor)
AMI = web.AppKey("ami", AmiLink)
# What calls decide on, held in memory: opening hours, after-hours policies, published menus.
CALL_DATA = web.AppKey("call_data", LiveCatalogue)
# Renders pjsip.conf from the database and has Asterisk reload PJSIP; returns its answer.
RELOAD_PJSIP = web.AppKey("reload_pjsip", Callable[[], Awaitable[str]])
USER = "kc_user"   # request key: the authenticated user (dict) or absent
