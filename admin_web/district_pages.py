"""Admin pages for districts and skills: list, add, edit and retire a district (name, numbers,
e-mail addresses, region, the switchboard that answers for it, its menu copied from another
district's or shared, its first opening hours), add and edit skills. Queue settings per skill ×
district are on `/admin/queues/<skill>/<district>` (`queue_pages`), linked from each district.

Routes (admin only; the role is checked before anything is looked up):
  GET  /admin/districts                       every district, retired ones too
  GET  /admin/districts/new, POST             the form; a new district
  GET  /admin/districts/{district}, POST      the form; save
  POST /admin/districts/{district}/retire     retire: numbers and addresses stop answering,
                                              contacts, cases and reports keep it
  GET  /admin/skills, POST                    the skills; a new skill
  GET  /admin/skills/{skill}, POST            a skill's form; save

Every change goes through `district_api.change_organisation`, as the JSON API's: the same
edits of `city.districts`, checked as a whole, written in one transaction, audited, and followed
live by the ACD, the menus, the e-mail intake and Asterisk. Bad input shows every problem on the
form, which keeps what was typed.
"""
from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from city import districts, store as city_store
from kc.errors import InvalidInput, NotFound
from kc.i18n import gettext as _

from .auth import require_page_role
from .district_api import change_organisation
from .keys import STORE

routes = web.RouteTableDef()

ALWAYS_OPEN = {"always_open": True, "week": {}, "exceptions": []}
TEXT_FIELDS = ("id", "name", "numbers", "addresses", "region", "switchboard", "menu", "hours",
               "overflow_seconds", "overflow_to")


def _lines(text: str) -> list[str]:
    """One entry a line (commas and semicolons separate too)."""
    return [part.strip() for part in re.split(r"[\n,;]+", text) if part.strip()]


def district_body(form: Mapping[str, str], new: bool) -> dict[str, Any]:
    """The district's body for `city.districts` from the form's fields (pure)."""
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "numbers": [n.replace(" ", "").replace("-", "") for n in _lines(form.get("numbers", ""))],
        "addresses": _lines(form.get("addresses", "")),
        "region": form.get("region", "").strip() or None,
        "switchboard": form.get("switchboard", "").strip() or None,
    }
    how, _sep, source = form.get("menu", "").partition(":")
    if how == "copy" and source:
        body["menu_copy_of"] = source
    elif how == "shared" and source:
        body["menu_of"] = source
    elif new:
        raise InvalidInput(_("Choose the district's menu: a copy of another district's menu, "
                             "or another district's menu shared."))
    if new:
        how, _sep, source = form.get("hours", "").partition(":")
        if how == "copy" and source:
            body["hours_copy_of"] = source
        else:
            body["hours"] = ALWAYS_OPEN
    return body


def first_queues(form: Mapping[str, str], skills: list[str]) -> list[dict[str, Any]] | None:
    """A new district's queues, one per skill, overflowing as the form says (pure); None when
    the form gives no overflow (the queues then get their settings on their own pages)."""
    to = form.get("overflow_to", "").strip()
    if not to:
        return None
    raw = form.get("overflow_seconds", "").strip().replace(",", ".")
    try:
        seconds = float(raw)
    except ValueError:
        raise InvalidInput(_("Overflow: %(value)s is not a number of seconds.")
                           % {"value": repr(raw)}) from None
    return [{"skill": skill, "overflow": [[seconds, [to]]]} for skill in skills]


def _typed(form: Mapping[str, str]) -> dict[str, str]:
    return {key: str(form.get(key, "")) for key in TEXT_FIELDS}


def _problems(exc: InvalidInput) -> list[str]:
    return list(getattr(exc, "problems", None) or [str(exc)])


async def _organisation(request: web.Request) -> dict[str, Any]:
    return await request.app[STORE].run(city_store.export)


def _district(doc: dict[str, Any], district_id: str) -> dict[str, Any]:
    found = next((d for d in doc["districts"] if d["id"] == district_id), None)
    if found is None:
        raise NotFound(_("there is no district %(district)s") % {"district": district_id})
    return found


def _form_of(d: dict[str, Any]) -> dict[str, str]:
    return {"id": d["id"], "name": d["name"], "numbers": "\n".join(d["numbers"]),
            "addresses": "\n".join(d["addresses"]), "region": d["region"] or "",
            "switchboard": d["switchboard"] or "", "menu": "", "hours": "", "overflow_seconds": "",
            "overflow_to": ""}


def _render(request: web.Request, doc: dict[str, Any], district: dict | None,
            form: dict[str, str], problems: list[str], status: int = 200) -> web.Response:
    live = [d for d in doc["districts"] if not d["retired"]]
    return aiohttp_jinja2.render_template("district_edit.html", request, {
        "district": district, "form": form, "problems": problems,
        "others": [d for d in live if district is None or d["id"] != district["id"]],
        "menu_owners": [d for d in live if d["menu"] is not None
                        and (district is None or d["id"] != district["id"])],
        "skills": [s for s in doc["skills"] if not s["retired"]],
        "queues": {q["skill"]: q for q in doc["queues"]
                   if district is not None and q["district"] == district["id"]},
        "names": {d["id"]: d["name"] for d in doc["districts"]},
        "agents": [a["id"] for a in doc["agents"] if district and a["district"] == district["id"]],
        "saved": request.query.get("saved") == "1"}, status=status)


@routes.get("/admin/districts")
@aiohttp_jinja2.template("districts.html")
async def districts_page(request: web.Request) -> dict[str, Any]:
    require_page_role(request, "admin")
    doc = await _organisation(request)
    names = {d["id"]: d["name"] for d in doc["districts"]}
    return {"districts": doc["districts"], "names": names,
            "notice": request.query.get("notice", "")[:200]}


@routes.get("/admin/districts/new")
async def new_district_page(request: web.Request) -> web.Response:
    require_page_role(request, "admin")
    return _render(request, await _organisation(request), None, _typed({}), [])


@routes.post("/admin/districts/new")
async def new_district(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    form = {k: str(v) for k, v in (await request.post()).items()}
    district_id = form.get("id", "").strip()
    try:
        if not district_id:
            raise InvalidInput(_("Give the district's id (lower-case letters, digits and -)."))
        body = district_body(form, new=True)
        skills = [s["id"] for s in (await _organisation(request))["skills"] if not s["retired"]]
        queues = first_queues(form, skills)
        if queues is not None:
            body["queues"] = queues
        await change_organisation(request, user, f"district {district_id}",
                                  lambda doc: districts.add_district(doc, district_id, body))
    except InvalidInput as exc:
        return _render(request, await _organisation(request), None, _typed(form),
                       _problems(exc), status=422)
    raise web.HTTPFound(f"/admin/districts/{quote(district_id)}?saved=1")


@routes.get("/admin/districts/{district}")
async def district_page(request: web.Request) -> web.Response:
    require_page_role(request, "admin")
    doc = await _organisation(request)
    district = _district(doc, request.match_info["district"])
    return _render(request, doc, district, _form_of(district), [])


@routes.post("/admin/districts/{district}")
async def district_save(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    doc = await _organisation(request)
    district = _district(doc, request.match_info["district"])
    form = {k: str(v) for k, v in (await request.post()).items()}
    try:
        if district["retired"]:
            raise InvalidInput(_("The district is retired and cannot be changed here."))
        body = district_body(form, new=False)
        await change_organisation(request, user, f"district {district['id']}",
                                  lambda d: districts.put_district(d, district["id"], body))
    except InvalidInput as exc:
        return _render(request, doc, district, {**_typed(form), "id": district["id"]},
                       _problems(exc), status=422)
    raise web.HTTPFound(f"/admin/districts/{quote(district['id'])}?saved=1")


@routes.post("/admin/districts/{district}/retire")
async def district_retire(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    doc = await _organisation(request)
    district = _district(doc, request.match_info["district"])
    try:
        await change_organisation(request, user, f"retire district {district['id']}",
                                  lambda d: districts.retire_district(d, district["id"]))
    except (InvalidInput, NotFound) as exc:
        return _render(request, doc, district, _form_of(district),
                       [_("The district was not retired: %(problem)s") % {"problem": p}
                        for p in _problems(exc)], status=422)
    raise web.HTTPFound("/admin/districts?notice=" + quote(_("%(district)s is retired.") % {"district": district["name"]}))


# ----------------------------------------------------------------------------- skills


def skill_body(form: Mapping[str, str]) -> dict[str, Any]:
    return {"name": form.get("name", "").strip(), "confidential": form.get("confidential") == "1",
            "retired": form.get("retired") == "1"}


@routes.get("/admin/skills")
async def skills_page(request: web.Request) -> web.Response:
    require_page_role(request, "admin")
    return await _skills(request, {}, [])


async def _skills(request: web.Request, form: Mapping[str, str], problems: list[str],
                  status: int = 200) -> web.Response:
    doc = await _organisation(request)
    return aiohttp_jinja2.render_template("skills.html", request, {
        "skills": doc["skills"], "form": dict(form), "problems": problems,
        "notice": request.query.get("notice", "")[:200]}, status=status)


@routes.post("/admin/skills")
async def new_skill(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    form = {k: str(v) for k, v in (await request.post()).items()}
    skill_id = form.get("id", "").strip()
    try:
        if not skill_id:
            raise InvalidInput(_("Give the skill's id (lower-case letters, digits and -)."))
        doc = await _organisation(request)
        if any(s["id"] == skill_id for s in doc["skills"]):
            raise InvalidInput(_("There is already a skill with the id %(skill)s.")
                               % {"skill": repr(skill_id)})
        body = skill_body(form)
        await change_organisation(request, user, f"skill {skill_id}",
                                  lambda d: districts.put_skill(d, skill_id, body))
    except InvalidInput as exc:
        return await _skills(request, form, _problems(exc), status=422)
    raise web.HTTPFound("/admin/skills?notice=" + quote(_("The skill %(skill)s is saved.") % {"skill": skill_id}))


@routes.get("/admin/skills/{skill}")
async def skill_page(request: web.Request) -> web.Response:
    require_page_role(request, "admin")
    return await _skill(request, None, [])


async def _skill(request: web.Request, form: Mapping[str, str] | None, problems: list[str],
                 status: int = 200) -> web.Response:
    doc = await _organisation(request)
    skill = next((s for s in doc["skills"] if s["id"] == request.match_info["skill"]), None)
    if skill is None:
        raise NotFound(_("there is no skill %(skill)s") % {"skill": request.match_info["skill"]})
    if form is None:
        form = {"name": skill["name"], "confidential": "1" if skill["confidential"] else "",
                "retired": "1" if skill["retired"] else ""}
    return aiohttp_jinja2.render_template("skill_edit.html", request, {
        "skill": skill, "form": form, "problems": problems,
        "districts": [d for d in doc["districts"] if not d["retired"]]}, status=status)


@routes.post("/admin/skills/{skill}")
async def skill_save(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    skill_id = request.match_info["skill"]
    form = {k: str(v) for k, v in (await request.post()).items()}
    doc = await _organisation(request)
    if not any(s["id"] == skill_id for s in doc["skills"]):
        raise NotFound(_("there is no skill %(skill)s") % {"skill": skill_id})
    try:
        body = skill_body(form)
        await change_organisation(request, user, f"skill {skill_id}",
                                  lambda d: districts.put_skill(d, skill_id, body))
    except InvalidInput as exc:
        return await _skill(request, form, _problems(exc), status=422)
    raise web.HTTPFound("/admin/skills?notice=" + quote(_("The skill %(skill)s is saved.") % {"skill": skill_id}))

