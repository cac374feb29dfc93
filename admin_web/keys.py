"""Typed application keys: how handlers find the services the composition root built."""
from __future__ import annotations


from typing import Awaitable, Callable

from aiohttp import web

from acd.ami import AmiLink
from acd.distributor import Distributor
from acd.tasks import TaskRunner
from cases.mail_directory import MailDirectory
from agi.call_catalogue import LiveCatalogue
from kc.clock import Clock
from kc.settings import Settings
from kc.store import Store
from kc.telemetry import Telemetry

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CLOCK = web.AppKey("clock", Clock)  # type: ignore[arg-type]
DISTRIBUTOR = web.AppKey("distributor", Distributor)
AMI = web.AppKey("ami", AmiLink)
# What calls decide on, held in memory: opening hours, after-hours policies, published menus.
CALL_DATA = web.AppKey("call_data", LiveCatalogue)
# Renders pjsip.conf from the database and has Asterisk reload PJSIP; returns its answer.
RELOAD_PJSIP = web.AppKey("reload_pjsip", Callable[[], Awaitable[str]])
# The e-mail channel's addresses and the keywords (a written matter's text → skill), current.
MAIL = web.AppKey("mail_directory", MailDirectory)
# The organisation changed (districts, numbers, agents, skills, queues): the ACD reloads and
# the PBX's dialplan and PJSIP are rendered and reloaded; returns what was done.
ORG_CHANGED = web.AppKey("org_changed", Callable[[], Awaitable[str]])
TASKS = web.AppKey("task_runner", TaskRunner)         # e-mail/web tasks offered to agents
HUB = web.AppKey("desk_hub", "DeskHub")   # type: ignore[arg-type]   # admin_web.desk.DeskHub
THROTTLE = web.AppKey("login_throttle", "LoginThrottle")  # type: ignore[arg-type]  # admin_web.login_throttle
DEVICE_KEY = web.AppKey("device_key", str)   # signs the log-in throttle's device cookies
STREAMS = web.AppKey("streams", "Streams")  # type: ignore[arg-type]  # admin_web.auth.Streams
TELEMETRY = web.AppKey("telemetry", Telemetry)   # call steps the web takes (kc.telemetry)
USER = "kc_user"   # request key: the authenticated user (dict) or absent
