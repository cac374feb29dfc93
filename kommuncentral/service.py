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
from typing import Any, AsyncIterator

from aiohttp import web

from acd import queue_log
from acd.ami import AmiLink
from acd.ami_events import AMI_EVENTS
from acd.cluster import ClusterLinks, ClusterTelephony, node_events
from acd.distributor import Distributor, Queued
from acd.options import AcdOptions
from acd.queue_log import QueueLog
from acd.tasks import TaskRunner
from acd.telephony import AmiTelephony
from admin_web import app as web_app
from admin_web.desk import DeskHub
from admin_web.metrics_route import METRICS
from admin_web.keys import (AMI, CALL_DATA, CLOCK, DISTRIBUTOR, HUB, MAIL, ORG_CHANGED,
                            RELOAD_PJSIP, SETTINGS, STORE, TASKS, TELEMETRY)
from agi.after_hours import setup as after_hours_setup
from agi.acd_routes import AcdRoutes
from agi.survey import SurveyRoute
from agi import fallback_stage
from agi.call_catalogue import LiveCatalogue
from agi.call_flow import AGENT_PHRASES, CallFlow
from agi.dial_by_name import DialByName
from agi.opening_callbacks import OpeningCallbacks
from agi.outbound import OutboundCalls
from agi.fastagi import FastAgiServer, parse_allow
from agi import phrasebook
from agi.phrases import PhraseParts
from agi.prompts import PromptCache
from cases import retention
from cases.mail_directory import MailDirectory
from cases.smtp_intake import IntakeHandler, SmtpIntake

from kc import backup, queries, web_store
from kc.clock import Clock, iso, parse_iso, system_clock
from kc.errors import InvalidInput
from kc.i18n import gettext as _
from kc.settings import Settings
from kc.store import Store, private_file
from kc.telemetry import StepLog, Telemetry
from kommuncentral import cluster
from kommuncentral.metrics import Metrics
from kommuncentral.follow import Follower
from pbx.asterisk import (AgentEndpoint, AsteriskContext, DistrictNumber, default_run_user,
                         render_config)
from pbx.kamailio import render_front_door
from pbx import tls as tls_files
from pbx.process import AsteriskProcess, reload_succeeded
from reporting import reports
from pbx.runtime import AsteriskRuntime, RuntimeMissing, runtime_for

log = logging.getLogger(__name__)

AMI_USER = "kc"
SYSTEM_PYTHON = "/usr/bin/python3"
FALLBACK_TEXT = "Vi har tekniska problem just nu. Ring gärna igen om en stund."
FEATURES = {"21": "ready", "22": "logged_out"}
PURGE_EVERY = 24 * 3600.0
BACKUP_FIRST = 300.0    # the first daily backup, after start-up has settled


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
    tls = {}
    if settings.agent_tls:
        cert, key = settings.tls_pair
        if settings.tls_cert is None:
            tls_files.ensure_demo_pair(cert, key, settings.sip_host)
        pem_cert, pem_key = tls_files.read_pair(cert, key)
        tls = dict(tls_port=settings.sip_tls_port, tls_cert_pem=pem_cert, tls_key_pem=pem_key)
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
        **tls,
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
    telemetry = app[TELEMETRY] = Telemetry()   # call steps and timings: to the log and metrics
    metrics = Metrics(settings.node, clock)
    metrics.listen(telemetry)
    app[METRICS] = metrics.render
    web_app.setup(app)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        steps = StepLog(settings.call_log, settings.node)
        telemetry.on_step(steps)
        store = Store(settings.db_path, telemetry)
        await store.run(queries.list_districts)   # opens and migrates
        app[STORE] = metrics.sources.store = store
        app[CALL_DATA] = metrics.sources.catalogue = LiveCatalogue(store)   # parsed once here
        await app[CALL_DATA].refresh()
        app[RELOAD_PJSIP] = functools.partial(reload_pjsip, settings, store)
        app[MAIL] = MailDirectory(store)          # addresses and keywords: data, kept current
        imported = await import_fallback_spool(settings, store)
        if imported:
            log.info("registered %d calls that met the fallback", imported)
        warm = asyncio.create_task(_warm_reports(store))
        loops = [asyncio.create_task(store.keep_retrying()),
                 asyncio.create_task(_import_spool_continuously(settings, store))]
        if settings.backup_daily:
            loops.append(asyncio.create_task(_backup_daily(settings, clock)))
        yield
        for task in (warm, *loops):
            task.cancel()
        await asyncio.gather(warm, *loops, return_exceptions=True)
        store.close()
        steps.close()

    async def acd_ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[STORE]
        holder: dict[str, Distributor] = {}
        nodes = await asyncio.to_thread(cluster.read_nodes, store)
        homes = await asyncio.to_thread(cluster.agent_nodes, store)
        links = {node.id: _node_link(settings, node.id, node.ami_host, node.ami_port, holder)
                 for node in nodes}
        if links:     # a cluster: every node over its own link
            telephony: Any = ClusterTelephony(links, homes)
            link: Any = ClusterLinks(links)
        else:
            link = telephony_link = AmiLink(
                settings.bind_host, settings.ami_port, AMI_USER, settings.secret("ami.secret"),
                on_event=lambda event: holder["d"].on_event(event),
                on_ready=lambda: holder["d"].resync(telephony_link.lost_at),
                on_gone=lambda at: holder["d"].pbx_gone(at),
            )
            telephony = AmiTelephony(telephony_link)
        options = AcdOptions.from_settings(settings)
        distributor = Distributor(store, telephony, clock,
                                  QueueLog(private_file(settings.queue_log)),   # callers' numbers
                                  ring_timeout=settings.ring_timeout,
                                  wrap_up_seconds=options.wrap_up_seconds, options=options,
                                  telemetry=telemetry)
        holder["d"] = metrics.sources.distributor = distributor
        metrics.sources.ami = link
        distributor.floor.agent_nodes.update(homes)
        await distributor.load()
        app[AMI], app[DISTRIBUTOR] = link, distributor
        await distributor.restore_moves()   # supervisors' moves of the day
        for each in links.values() or [link]:
            await each.start()

        async def reload_organisation() -> None:
            fresh = await asyncio.to_thread(cluster.agent_nodes, store)
            for known in (distributor.floor.agent_nodes, homes):   # `homes`: the cluster's own
                known.clear()
                known.update(fresh)
            await distributor.reload_organisation()
        follower = Follower(store, reload_organisation,
                            functools.partial(reload_pbx, settings, store))
        await follower.start()
        app[ORG_CHANGED] = follower.changed
        following = asyncio.create_task(follower.run())
        yield
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        for each in links.values() or [link]:
            await each.stop()
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
                        telemetry=telemetry, directory=DialByName(store, prompts),
                        digit_wait=settings.menu_timeout, silent_tries=settings.menu_silent_tries)
        flow.after_hours, closer = after_hours_setup(settings, store, prompts, clock, catalogue,
                                                     distributor, app[AMI], asterisk_user_ids(settings))
        flow.after_hours.telemetry = telemetry
        server = FastAgiServer({"menu": flow.menu, "agent-feature": flow.agent_feature,
                                **flow.after_hours.routes(),
                                **OutboundCalls(store, clock, distributor).routes(),
                                **AcdRoutes(distributor, prompts, catalogue).routes(),
                                "survey": SurveyRoute(store, prompts, clock,
                                                      distributor.agent_left).survey},
                               settings.bind_host, settings.agi_port,
                               secret=settings.secret("agi.secret"),
                               allow=parse_allow(settings.agi_allow))
        async with port_of("KC_AGI_PORT", settings.bind_host, settings.agi_port):
            await server.start()
        metrics.sources.agi = server
        opening = OpeningCallbacks(store, clock, catalogue, lambda contact_id, due: (
            distributor.queue_callback(contact_id, Queued(due.skill, due.district, due.language,
                                                          due.number), due.number)))
        opening.start()
        warm = asyncio.create_task(_warm_prompts(catalogue, prompts))
        yield
        warm.cancel()
        await opening.stop()
        await closer.stop()
        await server.stop()

    async def casework_ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[STORE]
        hub = DeskHub(app)
        runner = TaskRunner(app[DISTRIBUTOR], store, clock, available=hub.online,
                            on_assigned=lambda agent, contact: hub.changed())
        app[HUB], app[TASKS] = hub, runner
        metrics.sources.tasks = runner
        hub.start()
        await runner.start()
        intake = SmtpIntake(settings.smtp_host, settings.smtp_port, settings.smtp_max_bytes,
                            IntakeHandler(store, clock, app[MAIL],
                                          on_contact=lambda _: app[DISTRIBUTOR].changed()))
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


def _node_link(settings: Settings, node: str, host: str, port: int,
               holder: dict[str, Distributor]) -> AmiLink:
    """One node's AMI link: its events carry its name, its loss makes its agents unroutable
    at once, its refusal (the node stopped) closes its calls, its return resynchronises."""
    link = AmiLink(host, port, AMI_USER, settings.secret("ami.secret"),
                   on_event=node_events(node, lambda event: holder["d"].on_event(event)),
                   on_ready=lambda: holder["d"].resync(link.lost_at),
                   on_gone=lambda at: holder["d"].pbx_gone(at, node),
                   on_down=lambda: holder["d"].node_down(node), name=f"ami-{node}")
    return link


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
             "for the writer; %d over 50 ms; p99 %.1f ms, p50 %.1f ms; the longest used %.1f ms of CPU",
             steps, job.longest * 1000, longest * 1000, job.over_50ms, job.hold_percentile(99) * 1000,
             job.hold_percentile(50) * 1000, job.longest_cpu * 1000)
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


async def take_daily_backup(settings: Settings, clock: Clock) -> Path:
    """One daily backup into `KC_BACKUP_DIR`, then all but the newest `KC_BACKUP_KEEP` removed.
    In a thread, on its own database connection: the writer and the calls go on."""
    target = settings.backups / backup.daily_name(clock())
    done = await asyncio.to_thread(backup.backup, settings.var_dir, target, settings.node)
    gone = await asyncio.to_thread(backup.prune, settings.backups, settings.backup_keep)
    log.info("daily backup: %d files, %d bytes into %s; %d old ones removed", done.files,
             done.bytes, done.path, len(gone))
    return done.path


async def _backup_daily(settings: Settings, clock: Clock) -> None:
    await asyncio.sleep(BACKUP_FIRST)
    while True:
        try:
            await take_daily_backup(settings, clock)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("daily backup failed; tried again in a day")
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
        for text in AGENT_PHRASES.values():       # what an agent's feature code answers
            await prompts.ensure(text, "sv")
        # what waiting callers hear: the announcements' parts and the call-back confirmation;
        # the survey's introduction and thanks
        fixed = ("callback_confirmed", "survey_intro", "survey_thanks")
        await PhraseParts(prompts).render(
            {lang: [phrasebook.text(key, lang) for key in fixed]
             for lang in phrasebook.languages() if lang in prompts.voices})
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


def asterisk_contexts(settings: Settings, store: Store, fallback_prompt: Path | None) -> list[AsteriskContext]:
    """Every Asterisk of the centre: the nodes of the cluster, or the one of the settings."""
    base = asterisk_context(settings, store, fallback_prompt)
    return list(cluster.node_contexts(settings, store, base).values()) or [base]


async def _reload(settings: Settings, store: Store, commands: tuple[str, ...]) -> str:
    """Render every Asterisk's configuration from the database and run `commands` on each
    (no restart). A node that is down is left (it reads its new files when it starts)."""
    prompt = await fallback_prompt(settings)
    contexts = await asyncio.to_thread(asterisk_contexts, settings, store, prompt)
    out, failed = [], []
    for ctx in contexts:
        await asyncio.to_thread(render_config, ctx)
        for command in commands:
            rc, text = await AsteriskProcess(ctx)._rx(command, timeout=15)
            ok = rc == 0 and (reload_succeeded(text) if "module reload" in command else True)
            (out if ok else failed).append(f"{ctx.node + ': ' if ctx.node else ''}{text.strip()[:200]}")
    if failed and (len(contexts) == 1 or len(failed) == len(contexts) * len(commands)):
        raise InvalidInput(f"Asterisk did not reload: {' '.join(failed)}")
    for problem in failed:
        log.warning("a node did not reload (down?): %s", problem)
    door = await asyncio.to_thread(cluster.front_door, settings, store)
    if door is not None:   # whoever runs the front door restarts it on the new files
        await asyncio.to_thread(render_front_door, door)
    return " ".join(out)


async def reload_pjsip(settings: Settings, store: Store) -> str:
    """Render pjsip.conf from the database and have Asterisk reload PJSIP (no restart).

    The AMI user is deliberately not allowed `system` actions (module reloads), so the reload
    goes through Asterisk's control socket, as `kc asterisk` itself uses it."""
    return await _reload(settings, store, ("module reload res_pjsip.so",))


async def reload_pbx(settings: Settings, store: Store) -> str:
    """Numbers or agents changed: render the configuration and reload the dialplan and PJSIP."""
    return await _reload(settings, store, ("module reload res_pjsip.so", "dialplan reload"))


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
