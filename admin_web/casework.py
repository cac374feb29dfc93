"""This area's wiring: routes (one call from `admin_web.app.setup`) and the long-lived parts
(one `cleanup_ctx` from `kommuncentral.service.build_app`, after the ACD's): the desktop hub, the e-mail
task runner, the SMTP intake and the daily retention purge."""
from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

from aiohttp import web

from acd import queue_log
from acd.tasks import TaskRunner
from kc import cases
from kc.channels import ChannelSettings, IntakeHandler, SmtpIntake
from kc.clock import Clock, iso, parse_iso
from kc.settings import Settings
from kc.store import Store

from . import case_pages, desk, desk_after_hours
from .keys import CLOCK, DISTRIBUTOR, SETTINGS, STORE

log = logging.getLogger(__name__)
PURGE_EVERY = 24 * 3600.0


def setup(app: web.Application) -> None:
    app.add_routes(desk.routes)
    app.add_routes(desk_after_hours.routes)   # after-hours requests on the desktop
    app.add_routes(case_pages.routes)
    channels = ChannelSettings.from_env()
    app[desk.CHANNELS] = channels
    app[case_pages.LIMITER] = case_pages.RateLimiter(channels.form_limit, channels.form_window)


async def run_purge(settings: Settings, store: Store, clock: Clock, days: int) -> dict[str, int]:
    """`kc purge` and the daily run: personal data older than `days` removed/pseudonymised."""
    cutoff = cases.cutoff_for(clock(), days)
    key = settings.secret("pseudonym.key")
    counts = await store.run(cases.purge, cutoff, key)
    # The queue_log carries callers' numbers too (ENTERQUEUE): same pseudonyms there.
    counts["queue_log"] = await asyncio.get_running_loop().run_in_executor(
        None, queue_log.pseudonymise, settings.queue_log, parse_iso(cutoff).timestamp(),
        lambda number: cases.pseudonym(key, number), cases.PSEUDONYM_PREFIX)
    await store.run(_audit_purge, iso(clock()), days, counts)
    return counts


def _audit_purge(db, at: str, days: int, counts: dict[str, int]) -> None:
    from kc import web_store
    web_store.add_audit(db, at, "system", "retention.purge", f"{days} days", None, counts)


async def _purge_daily(settings: Settings, store: Store, clock: Clock, days: int) -> None:
    while True:
        try:
            counts = await run_purge(settings, store, clock, days)
            log.info("retention purge (%d days): %s", days, counts)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention purge failed; retried in a day")
        await asyncio.sleep(PURGE_EVERY)


async def casework_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, store, clock = app[SETTINGS], app[STORE], app[CLOCK]
    channels: ChannelSettings = app[desk.CHANNELS]
    hub = desk.DeskHub(app)
    runner = TaskRunner(app[DISTRIBUTOR], store, clock, available=hub.online,
                        on_assigned=lambda agent, contact: hub.changed())
    app[desk.HUB], app[desk.TASKS] = hub, runner
    hub.start()
    await runner.start()
    intake = SmtpIntake(channels, IntakeHandler(store, clock, on_contact=lambda _: runner.kick()))
    try:
        await intake.start()
    except OSError as exc:   # the rest of the centre keeps working without the e-mail intake
        log.error("SMTP intake could not listen on %s:%s: %s", channels.smtp_host,
                  channels.smtp_port, exc)
    purge = asyncio.create_task(_purge_daily(settings, store, clock, channels.retention_days))
    yield
    purge.cancel()
    await asyncio.gather(purge, return_exceptions=True)
    await intake.stop()
    await runner.stop()
    await hub.stop()
