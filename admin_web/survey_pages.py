"""The survey after a call: switched on per queue, its questions in every menu language, and
its report.

  GET  /api/surveys                          admin, supervisor, manager
  PUT  /api/surveys/{skill}/{district}       admin, a supervisor of the district;
                                             body {"enabled", "every_nth", "questions": [{lang: text}]}
  GET  /api/reports/survey?by=district|queue|agent|category&from=&to=&district=&queue=
                                             admin, supervisor, manager (CSV: /api/reports/survey.csv)
  GET  /admin/surveys                        admin, supervisor: every queue's survey, a form each
  POST /admin/surveys/{skill}/{district}     admin, a supervisor of the district
"""
from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from agi import menu_store
from cases.access import supervises
from kc import queries, surveys
from kc.audit import audit
from kc.errors import InvalidInput, NotFound
from kc.i18n import gettext as _
from reporting import survey_report

from .auth import require_page_role, require_role
from .errors import json_object
from .keys import CLOCK, STORE
from .report_pages import READERS, _params

routes = web.RouteTableDef()
EDITORS = ("admin", "supervisor")


async def _queue(request: web.Request, user: dict[str, Any]) -> tuple[str, str]:
    """The queue of the path, once the user may change it (role first, then the lookup)."""
    skill, district = request.match_info["skill"], request.match_info["district"]
    if user["role"] == "supervisor" and not supervises(user, district):
        raise web.HTTPForbidden(text='{"error": "you do not supervise that district"}',
                                content_type="application/json")
    store = request.app[STORE]
    if skill not in {s.id for s in await store.run(queries.list_skills)} or \
            district not in {d.id for d in await store.run(queries.list_districts)}:
        raise NotFound(_("there is no queue %(queue)s") % {"queue": f"{skill}@{district}"})
    return skill, district


async def _save(request: web.Request, user: dict[str, Any], config: surveys.SurveyConfig) -> None:
    store = request.app[STORE]
    before = await store.run(surveys.get_survey, config.skill, config.district)
    await store.run(surveys.save_survey, config)
    await audit(store, request.app[CLOCK], user["username"], "survey.update",
                f"{config.skill}@{config.district}", before.to_dict(), config.to_dict())


def menu_languages(db, district: str) -> list[str]:
    """The languages the menu the district plays offers (its own or the one it shares)."""
    live = menu_store.current_version(db, menu_store.menu_of(db, district) or district)
    return list((live or {}).get("body", {}).get("languages", [])) if live else []


@routes.get("/api/surveys")
async def api_surveys(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    configs = await request.app[STORE].run(surveys.list_surveys)
    return web.json_response({"surveys": [c.to_dict() for c in configs]})


@routes.put("/api/surveys/{skill}/{district}")
async def api_put_survey(request: web.Request) -> web.Response:
    user = require_role(request, *EDITORS)
    skill, district = await _queue(request, user)
    body = await json_object(request)
    config = surveys.SurveyConfig.from_dict({**body, "skill": skill, "district": district})
    await _save(request, user, config)
    missing = config.missing_languages(await request.app[STORE].run(menu_languages, district))
    return web.json_response({**config.to_dict(), "missing": missing})


@routes.get("/api/reports/survey")
async def api_survey_report(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    period, scope = _params(request)
    by = request.query.get("by") or None
    rows = await request.app[STORE].run(survey_report.survey_table, period, scope, by)
    return web.json_response({"period": period.as_json(), "by": by, "rows": rows,
                              "definitions": survey_report.DEFINITIONS})


def _questions_from_form(form: Any) -> tuple[dict[str, str], ...]:
    """Question N's texts from the form's `qN` textarea, one `language: text` a line."""
    questions = []
    for n in range(1, surveys.MAX_QUESTIONS + 1):
        texts: dict[str, str] = {}
        for i, line in enumerate(str(form.get(f"q{n}", "")).splitlines(), 1):
            if not line.strip():
                continue
            lang, sep, text = line.partition(":")
            if not sep:
                raise InvalidInput(_("question %(n)s, line %(line)s: write 'language: text', e.g. 'sv: …'")
                                   % {"n": n, "line": i})
            texts[lang.strip()] = text.strip()
        if texts:
            questions.append(texts)
    return tuple(questions)


async def _page_rows(request: web.Request) -> list[dict[str, Any]]:
    store = request.app[STORE]
    saved = {(c.skill, c.district): c for c in await store.run(surveys.list_surveys)}
    rows = []
    for d in await store.run(queries.list_districts):
        languages = await store.run(menu_languages, d.id)
        for s in await store.run(queries.list_skills):
            config = saved.get((s.id, d.id)) or surveys.SurveyConfig(s.id, d.id)
            rows.append({"config": config, "skill": s, "district": d, "languages": languages,
                         "missing": [_("question %(n)s: %(language)s") % {"n": n, "language": lang}
                                     for n, lang in config.missing(languages)],
                         "texts": ["\n".join(f"{k}: {v}" for k, v in q.items()) for q in config.questions]
                         + [""] * (surveys.MAX_QUESTIONS - len(config.questions))})
    return rows


@routes.get("/admin/surveys")
async def surveys_page(request: web.Request) -> web.Response:
    user = require_page_role(request, *EDITORS)
    rows = await _page_rows(request)
    return aiohttp_jinja2.render_template("surveys.html", request, {
        "rows": rows, "user": user, "saved": request.query.get("saved", ""), "error": None,
        "may_edit": lambda district: user["role"] == "admin" or supervises(user, district)})


@routes.post("/admin/surveys/{skill}/{district}")
async def survey_save(request: web.Request) -> web.Response:
    user = require_page_role(request, *EDITORS)
    skill, district = await _queue(request, user)
    form = await request.post()
    try:
        try:
            nth = int(str(form.get("every_nth", "0")).strip() or 0)
        except ValueError:
            raise InvalidInput(_("every n-th caller must be a whole number")) from None
        config = surveys.SurveyConfig(skill, district, form.get("enabled") == "on", nth,
                                      _questions_from_form(form))
        await _save(request, user, config)
    except InvalidInput as exc:
        rows = await _page_rows(request)
        return aiohttp_jinja2.render_template("surveys.html", request, {
            "rows": rows, "user": user, "saved": "", "error": str(exc),
            "error_queue": f"{skill}@{district}",
            "may_edit": lambda d: user["role"] == "admin" or supervises(user, d)}, status=422)
    raise web.HTTPFound(f"/admin/surveys?saved={skill}@{district}")
