"""Reports: the page managers steer by, its JSON API, CSV export of every table and SVG charts.

- `GET /api/reports/summary?from=&to=&district=&queue=&skill=` → `{"period", "scope", "figures",
  "definitions"}` (figures as defined in `reporting.reports.DEFINITIONS`).
- `GET /api/reports/table?by=district|queue|category|hour|day&...` → `{"rows": [...]}`;
  `GET /api/reports/{by}.csv?...` the same as CSV (also `summary.csv`, `staffing.csv`).
- `GET /api/reports/staffing?...` → Erlang C agents needed per hour of day.
- `GET /api/reports/charts/{name}.svg?...` → a chart drawn on the server (names in
  `reporting.report_output.CHARTS`).
- `GET /reports` the page (definitions written on it).
Readers: admin, supervisor, manager (bearer token or session).
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from cases.access import agent_clearance, may_read, supervises
from reporting import reports, rundgang, survey_report, uncategorised
from kc.errors import InvalidInput, NotFound
from reporting.report_output import CHARTS, chart, to_csv
from kc import queries
from kc.i18n import N_, gettext as _

from . import report_charts, words
from .auth import require_page_role, require_role
from .keys import CLOCK, SETTINGS, STORE

routes = web.RouteTableDef()
READERS = ("admin", "supervisor", "manager")
_MAX_PARAM = 64


def _params(request: web.Request) -> tuple[reports.Period, reports.Scope]:
    q = request.query
    for key in ("from", "to", "district", "queue", "skill"):
        if len(q.get(key, "")) > _MAX_PARAM:
            raise InvalidInput(_("%(field)s is too long") % {"field": key})
    period = reports.period_from(q.get("from") or None, q.get("to") or None, request.app[CLOCK]())
    scope = reports.Scope(district=q.get("district") or None, queue=q.get("queue") or None,
                          skill=q.get("skill") or None)
    return period, scope


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


async def _figures(request: web.Request, period: reports.Period, scope: reports.Scope,
                   by: str | None = None) -> Any:
    store = request.app[STORE]
    await reports.catch_up(store)      # a backlog in bounded steps, other writes in between
    return await store.run(reports.figures, period, scope, by, None, True,
                           request.app[SETTINGS].rundgang_days)


@routes.get("/api/reports/summary")
async def summary(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    period, scope = _params(request)
    figures = await _figures(request, period, scope)
    return web.json_response({"period": period.as_json(), "scope": scope.as_json(),
                              "figures": figures, "definitions": reports.definitions_json()},
                             dumps=_dumps)


@routes.get("/api/reports/table")
async def table(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    by = request.query.get("by", "")
    if by not in reports.BREAKDOWNS:
        raise InvalidInput(f"by must be one of {', '.join(reports.BREAKDOWNS)}")
    period, scope = _params(request)
    rows = await _figures(request, period, scope, by)
    return web.json_response({"period": period.as_json(), "scope": scope.as_json(), "by": by,
                              "rows": rows}, dumps=_dumps)


async def _rundgang(request: web.Request, user: dict[str, Any], period: reports.Period,
                    scope: reports.Scope) -> dict[str, Any]:
    """Rundgång and first-contact resolution with the contacts behind each number, as `user`
    may see them: a confidential contact is listed only for those who may read its district's
    confidential matters (`cases.access`), and the resident (number or address) only for
    admins and the district's supervisors (of a confidential contact: only for those cleared)."""
    store = request.app[STORE]
    found = await store.run(rundgang.analyse, period, scope, request.app[SETTINGS].rundgang_days)
    clearance = await store.run(agent_clearance, user.get("agent"))

    def shown(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            cleared = may_read(user, item["district"], clearance)
            if item["confidential"] and not cleared:
                continue   # not even admin: confidential matters are for those cleared
            personal = cleared if item["confidential"] else (
                user["role"] == "admin" or supervises(user, item["district"]))
            out.append({**item, "resident": item["resident"] if personal else None})
        return out
    found["rundgang"]["contacts"] = shown(found["rundgang"]["contacts"])
    found["first_contact_resolution"]["contacts"] = shown(found["first_contact_resolution"]["contacts"])
    return found


def _rundgang_definitions() -> list[dict[str, str]]:
    return [d for d in reports.definitions_json() if d["key"] in ("rundgang", "first_contact_resolution")]


@routes.get("/api/reports/rundgang")
async def rundgang_report(request: web.Request) -> web.Response:
    """Rundgång per district, category and channel, and first-contact resolution checked
    against it, with the contacts behind each number (as the reader may see them)."""
    user = require_role(request, *READERS)
    period, scope = _params(request)
    found = await _rundgang(request, user, period, scope)
    return web.json_response({"period": period.as_json(), "scope": scope.as_json(), **found,
                              "definitions": _rundgang_definitions()}, dumps=_dumps)


@routes.get("/api/reports/agents")
async def agents_report(request: web.Request) -> web.Response:
    """Uncategorised contacts per agent (and the agent's district) beside all they answered."""
    require_role(request, *READERS)
    period, scope = _params(request)
    rows = await request.app[STORE].run(uncategorised.by_agent, period, scope)
    return web.json_response({"period": period.as_json(), "scope": scope.as_json(), "rows": rows,
                              "definition": reports.DEFINITION_BY_KEY["uncategorised"].text},
                             dumps=_dumps)


@routes.get("/api/reports/staffing")
async def staffing(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    period, scope = _params(request)
    rows = await request.app[STORE].run(reports.staffing, period, scope)
    return web.json_response({"period": period.as_json(), "scope": scope.as_json(),
                              "goal": reports.SERVICE_LEVEL_GOAL, "rows": rows}, dumps=_dumps)


STAFFING_COLUMNS = ["hour", "calls_per_hour", "aht", "erlangs", "agents",
                    "predicted_service_level", "predicted_asa"]


RUNDGANG_COLUMNS = ("contact", "started_at", "district", "category", "channel", "why",
                    "earlier_contact", "earlier_outcome", "passed", "resident")


def _rundgang_notes(found: dict[str, Any]) -> list[str]:
    """The CSV's header comments: the definitions, the counts, what each column says."""
    r, f = found["rundgang"], found["first_contact_resolution"]
    notes = [f"{d['key']}: {d['label']}. {d['definition']}" for d in _rundgang_definitions()]
    rate = f["rate"] if f["rate"] is not None else "–"
    notes.append(f"N = {found['days']} days. Rundgång {r['total']} (again {r['again']}, passed on "
                 f"{r['passed']}); first-contact resolution {rate} % ({f['resolved']} of "
                 f"{f['answered']} answered; {f['resolved_but_came_back']} resolved but came back)")
    for by in ("district", "category", "channel"):
        counts = ", ".join(f"{k} {v}" for k, v in r[f"by_{by}"].items()) or "none"
        notes.append(f"rundgång by {by}: {counts}")
    notes.append("One row per rundgång contact. why: again (the same resident about the same "
                 "category within N days; earlier_contact, earlier_outcome) or passed (an agent "
                 "passed it on to another unit); resident: shown only to those allowed to see it")
    return notes


@routes.get(r"/api/reports/{name:[a-z]+}.csv")
async def csv_export(request: web.Request) -> web.Response:
    user = require_role(request, *READERS)
    name = request.match_info["name"]
    period, scope = _params(request)
    notes: list[str] = []
    if name == "summary":
        rows, columns = [await _figures(request, period, scope)], reports.columns(None)
    elif name == "staffing":
        rows, columns = await request.app[STORE].run(reports.staffing, period, scope), STAFFING_COLUMNS
    elif name == "survey":   # ?by=district|queue|agent|category
        by = request.query.get("by") or None
        rows = await request.app[STORE].run(survey_report.survey_table, period, scope, by)
        columns = survey_report.columns(by) if by else list(survey_report.COLUMNS)
    elif name in reports.BREAKDOWNS:
        rows, columns = await _figures(request, period, scope, name), reports.columns(name)
    elif name == "agents":
        rows = await request.app[STORE].run(uncategorised.by_agent, period, scope)
        columns = list(uncategorised.COLUMNS)
        notes.append("uncategorised per agent (agent_district: the agent's district): "
                     + reports.DEFINITION_BY_KEY["uncategorised"].text)
    elif name == "rundgang":
        found = await _rundgang(request, user, period, scope)
        rows, columns = found["rundgang"]["contacts"], list(RUNDGANG_COLUMNS)
        notes += _rundgang_notes(found)
    else:
        raise NotFound(f"no table {name!r}")
    stamp = f"{period.as_json()['from_local'][:10]}_{period.as_json()['to_local'][:10]}"
    notes.insert(0, f"Kommuncentral {name}, {period.as_json()['from_local']} to {period.as_json()['to_local']}")
    if name == "staffing":
        notes.append("agents: Erlang C, the agents needed per hour of day for the service-level "
                     "goal, on the measured arrivals and the full average handle time (aht)")
    return web.Response(
        text=to_csv(rows, columns, notes), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="kommuncentral-{name}-{stamp}.csv"'})


@routes.get(r"/api/reports/charts/{name:[a-z-]+}.svg")
async def chart_svg(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    name = request.match_info["name"]
    if name not in CHARTS:
        raise NotFound(f"no chart {name!r}")
    by, series, title, kind = CHARTS[name]
    period, scope = _params(request)
    rows = await _figures(request, period, scope, by)
    svg = chart(rows, by, series, title, kind)
    return web.Response(text=svg, content_type="image/svg+xml", charset="utf-8",
                        headers={"Cache-Control": "private, max-age=30",
                                 "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


def _fmt(value: Any, unit: str) -> str:
    """A figure rounded for people: whole numbers, whole percentages and seconds."""
    if value is None:
        return "–"
    if unit == "percent":
        return words.number(value) + " %"
    if unit == "seconds":
        return words.number(value) + " s"
    return words.number(value)


# The page's charts: (id, breakdown, figures, title, unit); the service level against its goal.
PAGE_CHARTS = (
    ("volume-by-day", "day", ("offered", "answered", "abandoned"), N_("Contacts per day"), "count"),
    ("service-level-by-day", "day", ("service_level",), N_("Service level per day"), "percent"),
    ("volume-by-hour", "hour", ("offered", "answered", "abandoned"),
     N_("Contacts by hour of day (all days of the period)"), "count"),
    ("asa-by-hour", "hour", ("asa", "aht"), N_("Speed of answer and handle time by hour of day"),
     "seconds"),
    ("volume-by-queue", "queue", ("offered", "answered", "abandoned", "overflowed_out"),
     N_("Contacts by queue"), "count"),
    ("service-level-by-queue", "queue", ("service_level",), N_("Service level by queue"), "percent"),
    ("volume-by-district", "district", ("offered", "answered", "abandoned", "overflowed_out",
                                        "overflowed_in"), N_("Contacts by district"), "count"),
)
UNIT_AXIS = {"count": N_("Contacts"), "percent": N_("Per cent"), "seconds": N_("Seconds")}
BREAKDOWN_LABELS = {"district": N_("District"), "queue": N_("Queue"),
                    "category": N_("Matter category"), "hour": N_("Hour of day"), "day": N_("Day"),
                    "agent": N_("Agent")}


def row_label(by: str, value: Any, names: dict[str, Any]) -> str:
    """A breakdown's value as people read it: a district's or queue's name, an hour "08–09",
    a day "30 nov"."""
    if by == "district":
        return words.district_name(names, value) if value else _("(no district)")
    if by == "queue":
        return words.queue_name(names, value)
    if by == "hour" and value is not None:
        return f"{int(value):02d}–{int(value) + 1:02d}"
    if by == "day" and value:
        return words.day(value).rsplit(" ", 1)[0]
    return str(value) if value is not None else "–"


def _charts(tables: dict[str, list[dict[str, Any]]], names: dict[str, Any]) -> list[Any]:
    goal = reports.SERVICE_LEVEL_GOAL * 100
    out = []
    for chart_id, by, keys, title, unit in PAGE_CHARTS:
        series = [(k, reports.DEFINITION_BY_KEY[k].shown_label()) for k in keys]
        target = ((goal, _("target %(goal)s %%") % {"goal": words.number(goal)})
                  if unit == "percent" else None)
        out.append(report_charts.draw(
            chart_id, _(title), tables[by], by, series,
            lambda v, by=by: row_label(by, v, names), lambda v, unit=unit: _fmt(v, unit),
            _(UNIT_AXIS[unit]), _(BREAKDOWN_LABELS[by]), percent=unit == "percent", target=target))
    return out


@routes.get("/reports")
@aiohttp_jinja2.template("reports.html")
async def reports_page(request: web.Request) -> dict[str, Any]:
    user = require_page_role(request, *READERS)
    try:
        period, scope = _params(request)
        error = None
    except InvalidInput as exc:
        error = str(exc)
        period, scope = reports.period_from(None, None, request.app[CLOCK]()), reports.Scope()
    store = request.app[STORE]
    totals = await _figures(request, period, scope)
    tables = {by: await _figures(request, period, scope, by) for by in reports.BREAKDOWNS}
    staffing_rows = await store.run(reports.staffing, period, scope, tables["hour"])
    per_agent = await store.run(uncategorised.by_agent, period, scope)
    found = await _rundgang(request, user, period, scope)
    districts = await store.run(queries.list_districts)
    skills = await store.run(queries.list_skills)
    names = await store.read(queries.names)
    local = period.as_json()
    query = {"from": local["from_local"][:10], "to": request.query.get("to") or "",
             "district": scope.district or "", "queue": scope.queue or ""}
    if not query["to"]:
        query["to"] = local["to_local"][:10]
    qs = urlencode({k: v for k, v in query.items() if v})
    goal = reports.SERVICE_LEVEL_GOAL * 100
    return {
        "error": error, "period": local, "scope": scope, "totals": totals, "tables": tables,
        "staffing": staffing_rows, "definitions": reports.DEFINITIONS, "fmt": _fmt,
        "per_agent": per_agent, "rundgang": found, "defs": reports.DEFINITION_BY_KEY,
        "units": {d.key: d.unit for d in reports.DEFINITIONS}, "qs": qs, "query": query,
        "districts": districts, "queues": [f"{s.id}@{d.id}" for d in districts for s in skills],
        "charts": _charts(tables, names), "breakdowns": reports.BREAKDOWNS,
        "goal": int(goal), "short": reports.SHORT_ABANDON_SECONDS,
        "default_target": reports.DEFAULT_TARGET_SECONDS,
        "labels": {k: _(v) for k, v in BREAKDOWN_LABELS.items()},
        "row_label": lambda by, value: row_label(by, value, names),
        "print_view": request.query.get("view") == "print",
        "survey": {by: await store.run(survey_report.survey_table, period, scope, by)
                   for by in survey_report.SURVEY_BREAKDOWNS},
    }
