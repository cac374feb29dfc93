"""What the reports mean: every figure's definition, the period and the scope of a report.

Plain data and date arithmetic; `reporting.reports` computes the figures these define.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from kc.errors import InvalidInput
from kc.i18n import N_, gettext
from kc.schema import REPEAT_WINDOW_HOURS

SHORT_ABANDON_SECONDS = 5.0
RUNDGANG_DAYS = 14                # the default of the setting KC_RUNDGANG_DAYS
DEFAULT_TARGET_SECONDS = 30.0
SERVICE_LEVEL_GOAL = 0.8          # for the Erlang C staffing suggestion
REPORT_TZ = "Europe/Stockholm"    # hour of day and day are local time
BREAKDOWNS = ("district", "queue", "category", "hour", "day")


# The numbers the definitions' texts name (`%(short)s` in a message).
_VALUES = {"short": f"{SHORT_ABANDON_SECONDS:g}", "target": f"{DEFAULT_TARGET_SECONDS:g}",
           "repeat": f"{REPEAT_WINDOW_HOURS}"}


@dataclass(frozen=True)
class Definition:
    """A figure: its key, its name and its definition, written for the catalog (`kc.i18n`);
    `label` and `text` are the English (the API's and the CSV's), `shown_label()` and
    `shown_text()` the page's language."""
    key: str
    label_message: str
    unit: str          # "count", "percent", "seconds"
    text_message: str

    @property
    def label(self) -> str:
        return self.label_message % _VALUES

    @property
    def text(self) -> str:
        return self.text_message % _VALUES

    def shown_label(self) -> str:
        return gettext(self.label_message) % _VALUES

    def shown_text(self) -> str:
        return gettext(self.text_message) % _VALUES


DEFINITIONS: tuple[Definition, ...] = (
    Definition("contacts", N_("Contacts"), "count",
               N_("Every recorded contact that started in the period (menu, queue, after hours, failed).")),
    Definition("offered", N_("Offered"), "count",
               N_("Contacts that reached a queue (skill@district) to wait for an agent, i.e. the menu "
               "put them in a queue. Menu hang-ups and after-hours contacts are not offered.")),
    Definition("answered", N_("Answered"), "count",
               N_("Offered contacts that an agent answered (the call was connected to the agent).")),
    Definition("abandoned", N_("Abandoned"), "count",
               N_("Offered contacts where the caller hung up while waiting, after "
               "%(short)s seconds or more.")),
    Definition("abandoned_short", N_("Abandoned < %(short)s s"), "count",
               N_("Offered contacts where the caller hung up within %(short)s seconds "
               "of waiting (counted apart: not in Abandoned, and left out of the service level).")),
    Definition("menu_abandoned", N_("Hung up in menu"), "count",
               N_("Contacts that ended (abandoned) in the menu, before reaching a queue.")),
    Definition("answered_in_target", N_("Answered within target"), "count",
               N_("Answered contacts whose wait was at most the queue's service-level target "
               "(default %(target)s s; the target set on the queue otherwise); a written contact "
               "(e-mail, web form) waits in the same queue against the queue's target for written "
               "contacts (default 8 h).")),
    Definition("service_level", N_("Service level"), "percent",
               N_("Answered within target ÷ (offered − abandoned < "
               "%(short)s s), as a percentage.")),
    Definition("abandon_rate", N_("Abandon rate"), "percent",
               N_("Abandoned ÷ (offered − abandoned < %(short)s s), as a percentage: "
               "the callers who gave up waiting, of those who waited long enough to count.")),
    Definition("availability", N_("Answered ÷ offered"), "percent",
               N_("Answered ÷ offered, as a percentage (every offered contact counts, short "
               "abandons included; called \"availability\" in the API and the CSV).")),
    Definition("asa", N_("Average speed of answer"), "seconds",
               N_("Mean wait in the queue of the answered contacts, from entering the queue to the "
               "agent answering.")),
    Definition("average_talk", N_("Average talk time"), "seconds",
               N_("Mean time connected to the agent of the answered and finished contacts (agent "
               "answered to hang-up or transfer; time the agent held the caller is inside it).")),
    Definition("average_wrap_up", N_("Average wrap-up"), "seconds",
               N_("Mean wrap-up after the answered contacts whose wrap-up has ended (the agent's "
               "after-call work, 0 when none; recorded per contact).")),
    Definition("aht", N_("Average handle time"), "seconds",
               N_("Mean of talk (hold included) + wrap-up of the answered contacts whose call and "
               "wrap-up have ended. Erlang C staffing is computed on it.")),
    Definition("longest_wait", N_("Longest wait"), "seconds",
               N_("The longest queue wait of any offered contact, answered or abandoned.")),
    Definition("overflowed_out", N_("Overflowed out"), "count",
               N_("Contacts to the district (or queue) answered by an agent of another district.")),
    Definition("overflowed_in", N_("Overflowed in"), "count",
               N_("Contacts to another district answered by an agent of this district (for a queue: "
               "this skill, answered here for another district). Per hour or day: all overflows.")),
    Definition("after_hours", N_("After hours"), "count",
               N_("Contacts that arrived when the district was closed (outcome after hours).")),
    Definition("callbacks", N_("Callbacks"), "count",
               N_("Contacts where the caller asked to be called back: in the queue (the contact has a "
               "call-back number, or a contact event whose kind starts with \"callback\") or after "
               "hours (an after-hours event of kind \"callback\").")),
    Definition("repeat_callers", N_("Repeat callers"), "count",
               N_("Contacts from a number whose previous contact, less than %(repeat)s h "
               "earlier, was not answered by an agent (hidden numbers are never repeats).")),
    Definition("uncategorised", N_("Uncategorised"), "count",
               N_("Answered contacts with no registered case (so no category): the matter was "
               "never written down.")),
    Definition("rundgang", N_("Rundgång"), "count",
               N_("Contacts where the same resident (number or e-mail address) had contacted us about "
               "the same category within the last N days (the setting KC_RUNDGANG_DAYS), whatever "
               "that contact's outcome, or that an agent passed on to another unit (transferred). "
               "The category is the registered case's, else the one of the queue's skill. Counted "
               "per district, category and channel, with the list behind each number.")),
    Definition("first_contact_resolution", N_("First-contact resolution"), "percent",
               N_("Answered contacts of the period whose case says \"resolved at first contact\" "
               "and whose resident did not contact us again about the same category within N "
               "days (KC_RUNDGANG_DAYS), ÷ all answered contacts of the period (a contact without "
               "a case is not resolved). Empty when none was answered. Only in the summary.")),
)
DEFINITION_BY_KEY = {d.key: d for d in DEFINITIONS}
FIGURES = tuple(d.key for d in DEFINITIONS)

# Columns of a bucket row, all sums except `longest_wait` (max).
_SUMS = ("contacts", "offered", "answered", "abandoned", "abandoned_short", "menu_abandoned",
         "answered_in_target", "wait_answered", "talk_sum", "talk_count", "overflowed_out",
         "after_hours", "callbacks", "repeat_callers", "wrap_sum", "handle_sum", "handle_count",
         "uncategorised")


# ------------------------------------------------------------------------------ periods


@dataclass(frozen=True)
class Period:
    start: datetime      # aware, inclusive
    end: datetime        # aware, exclusive
    tz: str = REPORT_TZ

    @property
    def start_iso(self) -> str:
        return _iso(self.start)

    @property
    def end_iso(self) -> str:
        return _iso(self.end)

    def as_json(self) -> dict[str, str]:
        zone = ZoneInfo(self.tz)
        return {"from": self.start_iso, "to": self.end_iso, "timezone": self.tz,
                "from_local": self.start.astimezone(zone).isoformat(),
                "to_local": self.end.astimezone(zone).isoformat()}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_bound(text: str, zone: ZoneInfo, is_end: bool) -> datetime:
    value = text.strip()
    try:
        if len(value) == 10:            # a local date; `to` includes that whole day
            day = date.fromisoformat(value)
            if is_end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), zone)
        if value.endswith(("Z", "z")):
            value = value[:-1] + "+00:00"
        moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{text[:40]!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    if not 1900 <= moment.year <= 2999:
        raise InvalidInput(f"{text[:40]!r} is out of range (years 1900-2999)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def period_from(start: str | None, end: str | None, now: datetime, tz: str = REPORT_TZ) -> Period:
    """`from`/`to` as local dates (`to` inclusive) or ISO times (`to` exclusive; no zone = local).
    Defaults: `to` = now, `from` = the start of the day 30 days before `to`'s day."""
    zone = ZoneInfo(tz)
    stop = _parse_bound(end, zone, True) if end else now
    if start:
        begin = _parse_bound(start, zone, False)
    else:
        local = stop.astimezone(zone).date() - timedelta(days=30)
        begin = datetime.combine(local, time(0), zone)
    if begin >= stop:
        raise InvalidInput("`from` must be before `to`")
    if stop - begin > timedelta(days=3 * 366):
        raise InvalidInput("a report covers at most three years")
    return Period(begin.astimezone(timezone.utc), stop.astimezone(timezone.utc), tz)


def today(now: datetime, tz: str = REPORT_TZ) -> Period:
    zone = ZoneInfo(tz)
    local = now.astimezone(zone).date()
    begin = datetime.combine(local, time(0), zone)
    return Period(begin.astimezone(timezone.utc), now.astimezone(timezone.utc), tz)


@dataclass(frozen=True)
class Scope:
    """Which contacts: all, one called district, one queue (skill@district), one skill."""
    district: str | None = None
    queue: str | None = None
    skill: str | None = None

    def __post_init__(self) -> None:
        if self.queue is not None and "@" not in self.queue:
            raise InvalidInput("queue must look like skill@district")

    @property
    def skill_filter(self) -> str | None:
        return self.queue.split("@", 1)[0] if self.queue else self.skill

    @property
    def district_filter(self) -> str | None:
        return self.queue.split("@", 1)[1] if self.queue else self.district

    def where(self, district_col: str = "district", skill_col: str = "skill") -> tuple[str, list[Any]]:
        clauses, args = [], []
        if self.district_filter:
            clauses.append(f"{district_col} = ?")
            args.append(self.district_filter)
        if self.skill_filter:
            clauses.append(f"{skill_col} = ?")
            args.append(self.skill_filter)
        return (" and ".join(clauses) or "1"), args

    def as_json(self) -> dict[str, str | None]:
        return {"district": self.district, "queue": self.queue, "skill": self.skill}


# ------------------------------------------------------------------------------ targets and hooks
