"""People's words on every page: names instead of codes, rounded numbers, local short times.

One set of template filters and functions, used by every template (`install`) and by the
handlers that build text: a state, an outcome, a channel, a role or an opening-hours reason
by its name in the page's language; a district, skill or queue by its name; a time in
Europe/Stockholm, short ("i dag 14:05") or relative ("om 3 h"); a number rounded for people;
an audit record as a list of changes. Pure functions of their arguments and the language of
the moment (`kc.i18n`); the names come from the page's context (`names_context`).
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import get_day_names, get_month_names
from babel.numbers import format_decimal

from kc.i18n import N_, current, gettext as _

ZONE = ZoneInfo("Europe/Stockholm")
BABEL_LOCALE = {"sv": "sv_SE", "en": "en_GB"}

# Codes as people say them (marked for the catalog; translated when shown).
CODES: dict[str, str] = {
    # agent states
    "logged_out": N_("logged out"), "ready": N_("ready"), "ringing": N_("ringing"),
    "on_call": N_("on a call"), "wrap_up": N_("wrap-up"), "paused": N_("paused"),
    # contact outcomes
    "answered": N_("answered"), "abandoned": N_("abandoned"), "after_hours": N_("after hours"),
    "transferred": N_("transferred"), "info": N_("information only"), "failed": N_("failed"),
    # case outcomes
    "resolved_first_contact": N_("resolved at first contact"), "forwarded": N_("forwarded"),
    "referred_eservice": N_("referred to an e-service"), "visit_booked": N_("visit booked"),
    # channels
    "phone": N_("phone"), "email": N_("e-mail"), "web": N_("web form"), "fax": N_("fax"),
    "post": N_("letter"),
    # roles
    "admin": N_("administrator"), "supervisor": N_("supervisor"), "manager": N_("manager"),
    "agent": N_("agent"),
    # opening hours
    "open": N_("open"), "short_hours": N_("short hours before a holiday"),
    "exception": N_("special day"), "eve": N_("eve of a holiday"), "holiday": N_("public holiday"),
    "outside_hours": N_("outside opening hours"), "always_open": N_("always open"),
}


def word(code: Any) -> str:
    """A code as people say it (an enum's value too); unknown codes are shown as they are."""
    if code is None or code == "":
        return "–"
    value = getattr(code, "value", code)
    text = CODES.get(str(value))
    return _(text) if text else str(value)


def _locale() -> str:
    return BABEL_LOCALE.get(current(), "sv_SE")


def number(value: Any, decimals: int = 0) -> str:
    """Rounded for people, in the page's language (decimal comma in Swedish); "–" for none."""
    if value is None or value == "":
        return "–"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    fmt = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return format_decimal(round(value, decimals), format=fmt, locale=_locale())


def percent(value: Any, decimals: int = 0) -> str:
    """A share (0–1) as a percentage."""
    if value is None or value == "":
        return "–"
    return number(float(value) * 100, decimals) + " %"


def month_name(month: int, width: str = "wide") -> str:
    return str(get_month_names(width, locale=_locale())[int(month)]).capitalize()


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def weekday_name(day: Any, width: str = "wide") -> str:
    """A weekday ("mon" or 0–6 from Monday) by its name: "Måndag", or "M" narrow."""
    index = WEEKDAYS.index(day) if isinstance(day, str) and day in WEEKDAYS else int(day)
    return str(get_day_names(width, locale=_locale())[index]).capitalize()


def _aware(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=ZONE)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def when(value: Any, now: datetime | None = None) -> str:
    """A moment as a short local time: "i dag 14:05", "i går 09:12", "12 mars 14:05",
    "12 mars 2025 14:05" (another year). Text that is no time is shown as it is."""
    moment = _aware(value)
    if moment is None:
        return "–" if value in (None, "") else str(value)
    local = moment.astimezone(ZONE)
    today = (now or datetime.now(timezone.utc)).astimezone(ZONE).date()
    clock = local.strftime("%H:%M")
    days = (today - local.date()).days
    if days == 0:
        return _("today %(time)s") % {"time": clock}
    if days == 1:
        return _("yesterday %(time)s") % {"time": clock}
    if days == -1:
        return _("tomorrow %(time)s") % {"time": clock}
    month = str(get_month_names("wide", locale=_locale())[local.month])
    day = f"{local.day} {month}"
    if local.year != today.year:
        day += f" {local.year}"
    return f"{day} {clock}"


def day(value: Any) -> str:
    """A date (or a moment's local date) as "12 mars 2026"."""
    moment = _aware(value)
    if moment is None:
        return "–" if value in (None, "") else str(value)
    local = moment.astimezone(ZONE) if isinstance(value, (datetime, str)) else moment
    month = str(get_month_names("wide", locale=_locale())[local.month])
    return f"{local.day} {month} {local.year}"


def relative(value: Any, now: datetime | None = None) -> str:
    """How far a moment is from now: "om 3 h", "om 12 min", "för 5 min sedan"; then the
    short time in brackets when it is more than an hour away."""
    moment = _aware(value)
    if moment is None:
        return "–" if value in (None, "") else str(value)
    seconds = (moment - (now or datetime.now(timezone.utc))).total_seconds()
    span = abs(seconds)
    if span < 60:
        return _("now")
    if span < 3600:
        amount = _("%(n)d min") % {"n": round(span / 60)}
    elif span < 48 * 3600:
        amount = _("%(n)d h") % {"n": round(span / 3600)}
    else:
        amount = _("%(n)d days") % {"n": round(span / 86400)}
    text = (_("in %(span)s") if seconds > 0 else _("%(span)s ago")) % {"span": amount}
    return text if span < 3600 else f"{text} ({when(moment, now)})"


def duration(seconds: Any) -> str:
    """Seconds as people read them: "45 s", "3 min 20 s", "2 h 5 min"."""
    if seconds is None or seconds == "":
        return "–"
    s = round(float(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


# ---------------------------------------------------------------- names of the organisation

def district_name(names: Mapping[str, Any], district: Any) -> str:
    if not district:
        return "–"
    return names.get("districts", {}).get(district, district)


def skill_name(names: Mapping[str, Any], skill: Any) -> str:
    if not skill:
        return "–"
    return names.get("skills", {}).get(skill, skill)


def queue_name(names: Mapping[str, Any], queue: Any) -> str:
    """A queue (skill@district) as "<the skill's name>, <the district's name>"."""
    if not queue:
        return _("(no queue)")
    skill, _sep, district = str(queue).partition("@")
    if not district:
        return skill_name(names, skill)
    return f"{skill_name(names, skill)}, {district_name(names, district)}"


# ---------------------------------------------------------------- the audit log, readable

def _shown(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value) or "–"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_shown(v)}" for k, v in value.items()) or "–"
    return word(value) if isinstance(value, str) and value in CODES else str(value)


def _loaded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# What the audit log's actions and fields are called (others are shown as recorded).
ACTIONS: dict[str, str] = {
    "login": N_("logged in"), "logout": N_("logged out"), "login.throttle": N_("log-ins paused"),
    "login.throttled": N_("log-in refused while paused"), "user.create": N_("user created"),
    "user.role": N_("role changed"), "user.password": N_("password changed"),
    "user.unlock": N_("unlocked"), "user.districts": N_("supervised districts changed"),
    "user.language": N_("language chosen"), "token.create": N_("API token created"),
    "token.delete": N_("API token revoked"), "agent.create": N_("agent created"),
    "agent.update": N_("agent changed"), "agent.state": N_("agent's state changed"),
    "agent.move": N_("agent moved for the day"), "agent.sip_password": N_("new SIP password"),
    "menu.publish": N_("menu published"), "menu.rollback": N_("menu rolled back"),
    "menu.draft.save": N_("menu draft saved"), "menu.draft.discard": N_("menu draft discarded"),
    "menu.share": N_("menu shared"), "menu.unshare": N_("own menu again"),
    "menu.announcement.set": N_("announcement set"),
    "menu.announcement.clear": N_("announcement removed"),
    "schedule.replace": N_("opening hours changed"), "queue.update": N_("queue changed"),
    "case.create": N_("case registered"), "case.view": N_("confidential case read"),
    "category.save": N_("category saved"), "department.save": N_("department saved"),
    "kb.save": N_("article saved"), "kb.delete": N_("article deleted"),
    "config.import": N_("organisation imported"), "retention.purge": N_("old personal data removed"),
    "after_hours.done": N_("after-hours request done"),
    "after_hours.listen": N_("voice message listened to"),
    "attachment.download": N_("attachment downloaded"),
    "directory.import": N_("staff directory imported"),
    "person.export": N_("a resident's data exported"), "survey.update": N_("survey saved"),
    "phrase.record": N_("phrase recorded"),
}
FIELDS: dict[str, str] = {
    "role": N_("role"), "districts": N_("districts"), "district": N_("district"),
    "state": N_("state"), "pending": N_("then"), "until": N_("until"), "password": N_("password"),
    "sessions_ended": N_("sessions ended"), "locked_until": N_("locked until"),
    "label": N_("label"), "language": N_("language"), "version": N_("version"),
    "note": N_("note"), "menu": N_("menu"), "revision": N_("revision"), "week": N_("week"),
    "exceptions": N_("exceptions"), "always_open": N_("always open"),
    "after_hours": N_("after hours"), "agent": N_("agent"), "name": N_("name"),
    "skills": N_("skills"), "client": N_("address"), "failures": N_("failures"),
    # what the retention purge went through
    "contacts": N_("contacts"), "contact_events": N_("contact events"), "cases": N_("cases"),
    "messages": N_("messages"), "attachments": N_("attachments"),
    "after_hours_requests": N_("after-hours requests"), "audit_log": N_("audit log"),
}


def action_name(action: str) -> str:
    text = ACTIONS.get(action)
    return _(text) if text else action


def changes(before: Any, after: Any) -> list[dict[str, str]]:
    """An audit record's before and after as a list of changes: each field with what it was
    and what it became (fields that stayed the same are left out)."""
    before, after = _loaded(before), _loaded(after)
    if not isinstance(before, dict) and not isinstance(after, dict):
        if before is None and after is None:
            return []
        return [{"field": "", "recorded": False, "before": _shown(before), "after": _shown(after)}]
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    rows = []
    for key in list(dict.fromkeys([*before, *after])):
        old, new = before.get(key), after.get(key)
        if old != new:
            field = FIELDS.get(str(key))
            rows.append({"field": _(field) if field else str(key), "recorded": field is None,
                         "before": _shown(old),
                         "after": _shown(new)})
    return rows


def desk_words(reasons: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the desk's script writes, in the page's language (`static/desk.js`)."""
    texts = {
        "today": _("today %(time)s"), "yesterday": _("yesterday %(time)s"),
        "then": _("then: %(state)s"), "no_articles": _("No articles."),
        "unknown_number": _("unknown number"), "ongoing": _("ongoing"),
        "confidential": _("confidential"), "no_history": _("No earlier contacts."),
        "from": _("From %(who)s"), "reply_to": _("Reply to %(who)s"), "saving": _("Saving…"),
        "case_saved": _("Case %(id)s saved."),
        "registered": _("Registered: contact %(contact)s, case %(id)s."),
        "error": _("Error: %(message)s"), "connected": _("connected"),
        "reconnecting": _("disconnected – reconnecting"), "call": _("call %(number)s"),
        "left": _("left %(when)s"), "language": _("language %(language)s"),
        "done_register": _("Done – register the case"), "after_closing": _("after closing"),
        "marked_done": _("Marked as done. Register the case in the form."), "none": _("None."),
        # the switchboard (`static/switchboard.js`)
        "no_call_to_transfer": _("No call to transfer."), "transferring": _("Transferring…"),
        "calling_person": _("Calling %(name)s…"),
        "consulting": _("Asking %(name)s first. Hang up to hand the call over."),
        "transferred_to": _("Transferred to %(name)s."), "not_available": _("not available"),
        "transfer": _("Transfer"), "transfer_attended": _("Transfer after asking"),
        "no_match": _("No match."), "ringing_your_phone": _("Ringing your phone…"),
        "answer_your_phone": _("Answer your phone: %(number)s is called next."),
    }
    kinds = {"voice_message": _("voice message"), "callback": _("call-back")}
    return {**texts, "lang": current(), "reasons": dict(reasons or {}),
            "codes": {**{k: _(v) for k, v in CODES.items()}, **kinds}}


def install(env: jinja2.Environment) -> None:
    """The filters and functions, for every template."""
    env.filters.update({"word": word, "number": number, "percent": percent, "when": when,
                        "day": day, "relative": relative, "duration": duration,
                        "month_name": month_name, "weekday_name": weekday_name})
    env.globals.update({"changes": changes})
    env.filters["action_name"] = action_name

    @jinja2.pass_context
    def _district(ctx: Any, value: Any) -> str:
        return district_name(ctx.get("names") or {}, value)

    @jinja2.pass_context
    def _skill(ctx: Any, value: Any) -> str:
        return skill_name(ctx.get("names") or {}, value)

    @jinja2.pass_context
    def _queue(ctx: Any, value: Any) -> str:
        return queue_name(ctx.get("names") or {}, value)

    env.filters.update({"district": _district, "skill": _skill, "queue": _queue})
