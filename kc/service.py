"""The composition root: every long-lived part is built here and nowhere else.

`build_app` returns an aiohttp application whose `cleanup_ctx` opens and closes, in order:
the store, the ACD with its AMI link, and the FastAGI server. `asterisk_context` derives the
PBX configuration from the same settings and data, so PBX and service always agree on ports,
secrets and agents.
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web

from acd.ami import AmiLink
from acd.distributor import Distributor, Queued
from acd.options import AcdOptions
from acd.queue_log import QueueLog
from acd.telephony import AmiTelephony
from admin_web import app as web_app
from admin_web.casework import casework_ctx
from admin_web.keys import AMI, CLOCK, DISTRIBUTOR, SETTINGS, STORE
from agi.after_hours import setup as after_hours_setup
from agi.acd_routes import AcdRoutes
from agi import fallback_stage
from agi.call_flow import CallFlow
from agi.fastagi import FastAgiServer
from agi.menu import Menu
from agi.prompts import PromptCache

from . import queries, reports
from .asterisk import AgentEndpoint, AsteriskContext, DistrictNumber, default_run_user
from .asterisk_runtime import AsteriskRuntime, runtime_for
from .clock import Clock, system_clock
from .errors import InvalidInput
from .settings import Settings
from .store import Store

log = logging.getLogger(__name__)

AMI_USER = "kc"
SYSTEM_PYTHON = "/usr/bin/python3"
FALLBACK_TEXT = "Vi har tekniska problem just nu. Ring gärna igen om en stund."
FEATURES = {"21": "ready", "22": "logged_out"}


def fallback_interpreter(settings: Settings, runtime: AsteriskRuntime, run_user: str | None) -> list[str]:
    """How Asterisk starts the process-AGI fallback (staged by agi/fallback_stage.py).

    Asterisk running as ourselves from the system: our own interpreter. Running as its own
    user, or inside a private root: the python3 it can see there (the root has one)."""
    if run_user is None and runtime.sysroot is None:
        return [settings.python]
    if not runtime.host_path(SYSTEM_PYTHON).exists():
        log.warning("no %s for Asterisk (%s): the fallback AGI cannot run", SYSTEM_PYTHON,
                    runtime.describe())
    return [SYSTEM_PYTHON]


def asterisk_context(settings: Settings, store: Store, fallback_prompt: Path | None) -> AsteriskContext:
    districts = store.run_sync(queries.list_districts)
    creds = store.run_sync(queries.agent_sip_credentials)
    settings.fallback_spool.mkdir(parents=True, exist_ok=True)
    runtime = runtime_for(settings)
    run_user = default_run_user(runtime)
    script = fallback_stage.stage(settings.asterisk_root / "agi-bin" / "kc-fallback.d")
    command = [*fallback_interpreter(settings, runtime, run_user), str(script),
               "--spool", str(settings.fallback_spool)]
    if fallback_prompt is not None:
        command += ["--prompt", str(fallback_prompt)]
    return AsteriskContext(
        root=settings.asterisk_root,
        sip_host=settings.sip_host, sip_port=settings.sip_port,
        rtp_start=settings.rtp_start, rtp_end=settings.rtp_end,
        ami_host=settings.bind_host, ami_port=settings.ami_port,
        ami_user=AMI_USER, ami_secret=settings.secret("ami.secret"),
        agi_host=settings.bind_host, agi_port=settings.agi_port,
        trunk_match=settings.trunk_match,
        districts=tuple(DistrictNumber(d.id, d.number) for d in districts),
        agents=tuple(AgentEndpoint(a, d, h) for a, d, h in creds),
        fallback_command=tuple(command),
        run_user=run_user,
        ami_write_system=False,   # least privilege: resync reads DEVICE_STATE() instead
        announce_seconds=AcdOptions.from_env().announce_seconds,
        callback_trunk=AcdOptions.from_env().callback_trunk,
        runtime=runtime,
        shared_dirs=(settings.var_dir,),   # prompts, recordings, the fallback's spool
    )


async def import_fallback_spool(settings: Settings, store: Store) -> int:
    """Calls that met the fallback while we were down become contacts (outcome `failed`)."""
    spool = settings.fallback_spool
    count = 0
    for path in sorted(spool.glob("*.json")) if spool.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("unreadable fallback record %s kept for inspection", path)
            continue
        contact_id = await store.run(
            queries.create_contact, channel="phone", district=record.get("district") or None,
            dialed=record.get("dialed"), caller=record.get("caller") or None,
            caller_name=record.get("caller_name") or None, started_at=record.get("at"),
            ended_at=record.get("at"), outcome="failed", uniqueid=record.get("uniqueid"))
        await store.run(queries.add_event, contact_id, record.get("at") or "", "failed",
                        {"reason": "service unreachable"})
        path.unlink()
        count += 1
    return count


def build_app(settings: Settings, clock: Clock = system_clock) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    web_app.setup(app)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = Store(settings.db_path)
        await store.run(queries.list_districts)   # opens and migrates
        app[STORE] = store
        imported = await import_fallback_spool(settings, store)
        if imported:
            log.info("registered %d calls that met the fallback", imported)
        warm = asyncio.create_task(_warm_reports(store))
        yield
        warm.cancel()
        await asyncio.gather(warm, return_exceptions=True)
        store.close()

    async def acd_ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[STORE]
        holder: dict[str, Distributor] = {}
        link = AmiLink(
            settings.bind_host, settings.ami_port, AMI_USER, settings.secret("ami.secret"),
            on_event=lambda event: holder["d"].on_event(event),
            on_ready=lambda: holder["d"].resync(),
        )
        acd_options = AcdOptions.from_env()
        distributor = Distributor(store, AmiTelephony(link), clock, QueueLog(settings.queue_log),
                                  ring_timeout=settings.ring_timeout,
                                  wrap_up_seconds=acd_options.wrap_up_seconds, options=acd_options)
        holder["d"] = distributor
        await distributor.load()
        app[AMI], app[DISTRIBUTOR] = link, distributor
        await web_app.restore_agent_moves(app)   # supervisors' moves of the day
        await link.start()
        yield
        await link.stop()
        await distributor.close()

    async def agi_ctx(app: web.Application) -> AsyncIterator[None]:
        store, distributor = app[STORE], app[DISTRIBUTOR]
        prompts = PromptCache(settings.sounds_dir, audio_root=settings.sounds_dir)

        async def on_feature(agent: str, code: str) -> str:
            if code == "23":
                return (await distributor.toggle_pause(agent)).state.value
            if code not in FEATURES:
                raise InvalidInput(f"unknown feature code {code!r}")
            return (await distributor.request_state(agent, FEATURES[code])).state.value

        def on_queued(contact_id: int, skill: str, district: str, language: str, caller: str,
                      priority: int | None) -> None:
            distributor.expect(contact_id, Queued(skill, district, language or "sv", caller, priority))

        flow = CallFlow(store, prompts, clock, on_feature, on_queued=on_queued)
        flow.after_hours, closer = after_hours_setup(settings, store, prompts, clock, distributor,
                                                     app[AMI])
        server = FastAgiServer({"menu": flow.menu, "agent-feature": flow.agent_feature,
                                **flow.after_hours.routes(),
                                **AcdRoutes(distributor, prompts).routes()},
                               settings.bind_host, settings.agi_port)
        await server.start()
        warm = asyncio.create_task(_warm_prompts(store, prompts))
        yield
        warm.cancel()
        await closer.stop()
        await server.stop()

    app.cleanup_ctx.extend([store_ctx, acd_ctx, agi_ctx])
    app.cleanup_ctx.append(casework_ctx)   # desktop hub, e-mail tasks, SMTP intake, daily purge
    return app


async def _warm_reports(store: Store) -> None:
    """Catch the reports' hour cache up in the background (after an upgrade every hour is
    dirty), one bounded step at a time, so the first report is quick and calls registered
    meanwhile never wait for more than one step."""
    try:
        done = await reports.catch_up(store, pause=0.05)
        if done:
            log.info("report cache: %d hours brought up to date", done)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("report cache warm-up failed; reports will catch up on first use")


async def _warm_prompts(store: Store, prompts: PromptCache) -> None:
    """Synthesise every published menu's prompts ahead of the first call."""
    try:
        for district in await store.run(queries.list_districts):
            published = await store.run(queries.published_menu, district.id)
            if published:
                await prompts.ensure_menu(Menu.from_dict(published[1]))
        for text in ("Du är inloggad och redo.", "Du är utloggad.", "Du har paus.",
                     "Det gick inte. Försök igen."):
            await prompts.ensure(text, "sv")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("prompt warm-up failed; prompts will be made on first use")


async def fallback_prompt(settings: Settings) -> Path:
    return await PromptCache(settings.sounds_dir).ensure(FALLBACK_TEXT, "sv")


async def run_service(settings: Settings, stop: asyncio.Event, clock: Clock = system_clock) -> None:
    """Serve until `stop` is set."""
    app = build_app(settings, clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.bind_host, settings.web_port)
    await site.start()
    log.info("web on %s", settings.web_url)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
