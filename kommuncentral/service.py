"""The composition root: every long-lived part is built here and nowhere else.

`build_app` returns an aiohttp application whose `cleanup_ctx` opens and closes, in order:
the store, the ACD with its AMI link, the FastAGI server, and case work (the desktop hub, the
e-mail task runner, the SMTP intake and the daily retention purge). `asterisk_context` derives the
PBX configuration from the same settings and data, so PBX and service always agree on ports,
secrets and agents.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
from pathlib import Path
import contextlib
import errno
from typing import AsyncIterator

from aiohttp import web

from acd import estimate, queue_log
from acd.ami import AmiLink
from acd.ami_events import AMI_EVENTS
from acd.distributor import Distributor, Queued
from acd.options import AcdOptions
from acd.queue_log import QueueLog
from acd.tasks import TaskRunner
from acd.telephony import AmiTelephony
from admin_web import app as web_app
from admin_web.desk import DeskHub
from admin_web.keys import (AMI, CALL_DATA, CLOCK, DISTRIBUTOR, HUB, MAIL, ORG_CHANGED,
                            RELOAD_PJSIP, SETTINGS, STORE, TASKS)
from agi.after_hours import setup as after_hours_setup
from agi.acd_routes import AcdRoutes
from agi import fallback_stage
from agi.call_catalogue import LiveCatalogue
from agi.call_flow import CallFlow
from agi.fastagi import FastAgiServer, parse_allow
from agi.phrases import PhraseParts
from agi.prompts import PromptCache
from cases import retention
from cases.mail_directory import MailDirectory
from cases.smtp_intake import IntakeHandler, SmtpIntake

from kc import queries, web_store
from kc.clock import Clock, iso, parse_iso, system_clock
from kc.errors import InvalidInput
from kc.i18n import gettext as _
from kc.settings import Settings
from kc.store import Store, private_file
from kommuncentral.follow import Follower
from pbx.asterisk import (AgentEndpoint, AsteriskContext, DistrictNumber, default_run_user,
                         render_config)
from pbx.process import AsteriskProcess, reload_succeeded
from reporting import reports
from pbx.runtime import AsteriskRuntime, RuntimeMissing, runtime_for

log = logging.getLogger(__name__)

AMI_USER = "kc"
SYSTEM_PYTHON = "/usr/bin/python3"
FALLBACK_TEXT = "Vi har tekniska problem just nu. Ring gärna igen om en stund."
FEATURES = {"21": "ready", "22": "logged_out"}
PURGE_EVERY = 24 * 3600.0


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
        agi_secret=settings.secret("agi.secret"),
        trunk_match=settings.trunk_match,
        districts=tuple(DistrictNumber(d.id, n) for d in districts for n in d.numbers),
        agents=tuple(AgentEndpoint(a, d, h) for a, d, h in creds),
        fallback_command=tuple(command),
        run_user=run_user,
        ami_write_system=False,   # least privilege: resync reads DEVICE_STATE() instead
        announce_seconds=settings.announce_seconds,
        callback_trunk=settings.callback_trunk,
        ami_events=AMI_EVENTS,    # the only events the service reads: manager.conf drops the rest
        runtime=runtime,
        shared_dirs=(settings.var_dir,),   # prompts, recordings, the fallback's spool
    )


SPOOL_EVERY = 2.0


async def import_fallback_spool(settings: Settings, store: Store) -> int:
    """Calls that met the fallback (the service unreachable) become contacts (outcome
    `failed`), exactly once per call: a contact the menu already had for the channel is closed
    instead of a second one made. A record, so a database fault delays it only."""
    spool = settings.fallback_spool
    count = 0
    for path in sorted(spool.glob("*.json")) if spool.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            bad = path.with_suffix(".unreadable")
            log.warning("unreadable fallback record %s kept for inspection as %s", path, bad.name)
            path.rename(bad)
            continue
        clean = {key: str(record.get(key) or "")[:300] for key in
                 ("at", "district", "dialed", "caller", "caller_name", "uniqueid")}
        await store.record(queries.register_fallback_call, clean)
        path.unlink()
        count += 1
    return count


async def _import_spool_continuously(settings: Settings, store: Store) -> None:
    """Calls meet the fallback while the service runs too (a stall, a restart of the menus):
    registered within seconds, not at the next start."""
    while True:
        await asyncio.sleep(SPOOL_EVERY)
        try:
            imported = await import_fallback_spool(settings, store)
            if imported:
                log.info("registered %d calls that met the fallback", imported)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("importing the fallback spool failed; retried in %.0f s", SPOOL_EVERY)


def build_app(settings: Settings, clock: Clock = system_clock) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    web_app.setup(app)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = Store(settings.db_path)
        await store.run(queries.list_districts)   # opens and migrates
        app[STORE] = store
        app[CALL_DATA] = LiveCatalogue(store)     # hours, policies, menus: parsed once here
        await app[CALL_DATA].refresh()
        app[RELOAD_PJSIP] = functools.partial(reload_pjsip, settings, store)
        app[MAIL] = MailDirectory(store)          # addresses and keywords: data, kept current
        imported = await import_fallback_spool(settings, store)
        if imported:
            log.info("registered %d calls that met the fallback", imported)
        warm = asyncio.create_task(_warm_reports(store))
        loops = [asyncio.create_task(store.keep_retrying()),
                 asyncio.create_task(_import_spool_continuously(settings, store))]
        yield
        for task in (warm, *loops):
            task.cancel()
        await asyncio.gather(warm, *loops, return_exceptions=True)
        store.close()

    async def acd_ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[STORE]
        holder: dict[str, Distributor] = {}
        link = AmiLink(
            settings.bind_host, settings.ami_port, AMI_USER, settings.secret("ami.secret"),
            on_event=lambda event: holder["d"].on_event(event),
            on_ready=lambda: holder["d"].resync(link.lost_at),
            on_gone=lambda at: holder["d"].pbx_gone(at),
        )
        options = AcdOptions.from_settings(settings)
        distributor = Distributor(store, AmiTelephony(link), clock,
                                  QueueLog(private_file(settings.queue_log)),   # callers' numbers
                                  ring_timeout=settings.ring_timeout,
                                  wrap_up_seconds=options.wrap_up_seconds, options=options)
        holder["d"] = distributor
        await distributor.load()
        app[AMI], app[DISTRIBUTOR] = link, distributor
        await distributor.restore_moves()   # supervisors' moves of the day
        await link.start()
        follower = Follower(store, distributor.reload_organisation,
                            functools.partial(reload_pbx, settings, store))
        await follower.start()
        app[ORG_CHANGED] = follower.changed
        following = asyncio.create_task(follower.run())
        yield
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await link.stop()
        await distributor.close()

    async def agi_ctx(app: web.Application) -> AsyncIterator[None]:
        store, distributor, catalogue = app[STORE], app[DISTRIBUTOR], app[CALL_DATA]
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

        flow = CallFlow(store, prompts, clock, catalogue, on_feature, on_queued=on_queued,
                        digit_wait=settings.menu_timeout, silent_tries=settings.menu_silent_tries)
        flow.after_hours, closer = after_hours_setup(settings, store, prompts, clock, catalogue,
                                                     distributor, app[AMI], asterisk_user_ids(settings))
        server = FastAgiServer({"menu": flow.menu, "agent-feature": flow.agent_feature,
                                **flow.after_hours.routes(),
                                **AcdRoutes(distributor, prompts, catalogue).routes()},
                               settings.bind_host, settings.agi_port,
                               secret=settings.secret("agi.secret"),
                               allow=parse_allow(settings.agi_allow))
        async with port_of("KC_AGI_PORT", settings.bind_host, settings.agi_port):
            await server.start()
        warm = asyncio.create_task(_warm_prompts(catalogue, prompts))
        yield
        warm.cancel()
        await closer.stop()
        await server.stop()

    async def casework_ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[STORE]
        hub = DeskHub(app)
        runner = TaskRunner(app[DISTRIBUTOR], store, clock, available=hub.online,
                            on_assigned=lambda agent, contact: hub.changed())
        app[HUB], app[TASKS] = hub, runner
        hub.start()
        await runner.start()
        intake = SmtpIntake(settings.smtp_host, settings.smtp_port, settings.smtp_max_bytes,
                            IntakeHandler(store, clock, app[MAIL],
                                          on_contact=lambda _: runner.kick()))
        try:
            await intake.start()
        except OSError as exc:   # the rest of the centre keeps working without the e-mail intake
            log.error("SMTP intake could not listen on %s:%s: %s", settings.smtp_host,
                      settings.smtp_port, exc)
        purge = asyncio.create_task(_purge_daily(settings, store, clock))
        yield
        purge.cancel()
        await asyncio.gather(purge, return_exceptions=True)
        await intake.stop()
        await runner.stop()
        await hub.stop()

    app.cleanup_ctx.extend([store_ctx, acd_ctx, agi_ctx, casework_ctx])
    return app


async def run_purge(settings: Settings, store: Store, clock: Clock, days: int) -> dict[str, int]:
    """`kc purge` and the daily run: personal data older than `days` removed/pseudonymised."""
    cutoff = retention.cutoff_for(clock(), days)
    key = settings.secret("pseudonym.key")
    job = retention.Purge(cutoff, key, settings.asterisk_root / "spool" / "kc-messages")  # voice messages
    steps, longest, loop = 0, 0.0, asyncio.get_running_loop()
    while True:   # one bounded window per store job: the calls' records go in between
        started = loop.time()
        done = await store.run(job.step)
        steps, longest = steps + 1, max(longest, loop.time() - started)
        if done:
            break
    log.info("retention purge: %d steps, the longest %.1f ms in the writer, %.1f ms with its wait "
             "for the writer; %d over 50 ms", steps, job.longest * 1000, longest * 1000, job.over_50ms)
    counts = job.result()
    # The queue_log carries callers' numbers too (ENTERQUEUE): same pseudonyms there.
    counts["queue_log"] = await asyncio.get_running_loop().run_in_executor(
        None, queue_log.pseudonymise, settings.queue_log, parse_iso(cutoff).timestamp(),
        lambda number: retention.pseudonym(key, number), retention.PSEUDONYM_PREFIX)
    await store.run(web_store.add_audit, iso(clock()), "system", "retention.purge",
                    f"{days} days", None, counts)
    return counts


async def _purge_daily(settings: Settings, store: Store, clock: Clock) -> None:
    days = settings.retention_days
    while True:
        try:
            counts = await run_purge(settings, store, clock, days)
            log.info("retention purge (%d days): %s", days, counts)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention purge failed; retried in a day")
        await asyncio.sleep(PURGE_EVERY)


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


async def _warm_prompts(catalogue: LiveCatalogue, prompts: PromptCache) -> None:
    """Synthesise every menu's prompts, as each district's callers hear them, ahead of the
    first call."""
    try:
        for call_menu in (await catalogue.current()).menus.values():
            await prompts.ensure_menu(call_menu.menu)
        for text in ("Du är inloggad och redo.", "Du är utloggad.", "Du har paus.",
                     "Det gick inte. Försök igen."):
            await prompts.ensure(text, "sv")
        # what waiting callers hear: the announcements' parts and the call-back confirmation
        await PhraseParts(prompts).render(
            {lang: [estimate.callback_text(lang)[0]] for lang in estimate.CALLBACK_TEXT})
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("prompt warm-up failed; prompts will be made on first use")


def asterisk_user_ids(settings: Settings) -> tuple[int, int] | None:
    """The (uid, gid) Asterisk runs as, when it runs as its own user; None otherwise (and when
    the service runs against an Asterisk started elsewhere)."""
    try:
        runtime = runtime_for(settings)
        run_user = default_run_user(runtime)
        return runtime.user_ids(run_user) if run_user else None
    except RuntimeMissing as exc:
        log.warning("%s; recordings directory left to us", exc)
        return None


async def reload_pjsip(settings: Settings, store: Store) -> str:
    """Render pjsip.conf from the database and have Asterisk reload PJSIP (no restart).

    The AMI user is deliberately not allowed `system` actions (module reloads), so the reload
    goes through Asterisk's control socket, as `kc asterisk` itself uses it."""
    prompt = await fallback_prompt(settings)
    ctx = await asyncio.to_thread(asterisk_context, settings, store, prompt)
    await asyncio.to_thread(render_config, ctx)
    rc, out = await AsteriskProcess(ctx)._rx("module reload res_pjsip.so", timeout=15)
    if rc != 0 or not reload_succeeded(out):
        raise InvalidInput(f"Asterisk did not reload PJSIP: {out.strip()[:200]}")
    return out.strip()


async def reload_pbx(settings: Settings, store: Store) -> str:
    """Numbers or agents changed: render the configuration and reload the dialplan and PJSIP."""
    out = await reload_pjsip(settings, store)
    ctx = await asyncio.to_thread(asterisk_context, settings, store, await fallback_prompt(settings))
    rc, text = await AsteriskProcess(ctx)._rx("dialplan reload", timeout=15)
    if rc != 0:
        raise InvalidInput(f"Asterisk did not reload the dialplan: {text.strip()[:200]}")
    return f"{out} {text.strip()}"


async def fallback_prompt(settings: Settings) -> Path:
    return await PromptCache(settings.sounds_dir).ensure(FALLBACK_TEXT, "sv")


@contextlib.asynccontextmanager
async def port_of(setting: str, host: str, port: int) -> AsyncIterator[None]:
    """Opening a listening port: when it is taken, say which and by which setting to move it."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        why = {errno.EADDRINUSE: _("another program uses it"),
               errno.EACCES: _("this user may not open it"),
               errno.EADDRNOTAVAIL: _("the address is not this machine's")}[exc.errno]
        raise OSError(exc.errno, _("%(host)s:%(port)s cannot be opened: %(why)s. Choose another "
                                   "port with %(setting)s (or another address with KC_BIND).")
                      % {"host": host, "port": port, "why": why, "setting": setting}) from None


async def run_service(settings: Settings, stop: asyncio.Event, clock: Clock = system_clock) -> None:
    """Serve until `stop` is set."""
    app = build_app(settings, clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.bind_host, settings.web_port)
    try:
        async with port_of("KC_WEB_PORT", settings.bind_host, settings.web_port):
            await site.start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("web on %s", settings.web_url)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
