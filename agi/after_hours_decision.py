"""What a call to a closed district gets, and how it is said (pure: no clock, no I/O).

`decide(hours, playable, district, now)` is the whole after-hours decision, over the opening
hours held in memory (`schedules.hours.OpeningHours`) and the moment of the call:
- `Open(district)`: open, or no schedule: the call goes on in its district;
- `Routed(...)`: closed, and the first open partner of its `after_hours.route_to` takes it;
- `Offer(...)`: closed and no partner open: say why and when we open, and offer a voice
  message and/or a call-back, with every sentence in the caller's language.
`agi.after_hours` carries the decision out on the channel and records it.

`opening_phrase(next_open, now, "sv")` -> "Vi öppnar igen måndag klockan 8." Times are written
the way espeak-ng reads them naturally ("klockan 8 och 30", "at 8:30 a.m.").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Container, Mapping, Sequence, Union

from schedules.hours import OpeningHours
from schedules.schedule import TZ, Status

from . import phrasebook

LANGUAGES = phrasebook.languages()   # every language the after-hours texts are in

_SV_DAYS = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SV_MONTHS = ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
              "september", "oktober", "november", "december")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")

def text(key: str, language: str, **values: str) -> str:
    """An after-hours sentence (`agi.phrasebook`, keys `after_hours_*`) in `language`, else Swedish."""
    return phrasebook.say(f"after_hours_{key}", language)[0].format(**values)


def _sv_clock(moment: datetime) -> str:
    return f"klockan {moment.hour}" + (f" och {moment.minute}" if moment.minute else "")


def _en_clock(moment: datetime) -> str:
    hour, minute = moment.hour, moment.minute
    if (hour, minute) == (0, 0):
        return "at midnight"
    if (hour, minute) == (12, 0):
        return "at noon"
    suffix = "a.m." if hour < 12 else "p.m."
    h12 = hour % 12 or 12
    return f"at {h12}:{minute:02d} {suffix}" if minute else f"at {h12} {suffix}"


def _when(day: date, today: date, language: str) -> str:
    delta = (day - today).days
    if language == "sv":
        if delta == 0:
            return "i dag"
        if delta == 1:
            return "i morgon"
        name = _SV_DAYS[day.weekday()]
        return name if delta < 7 else f"{name} den {day.day} {_SV_MONTHS[day.month - 1]}"
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    name = _EN_DAYS[day.weekday()]
    return f"on {name}" if delta < 7 else f"on {name} {day.day} {_EN_MONTHS[day.month - 1]}"


def opening_phrase(next_open: datetime | None, now: datetime, language: str) -> str:
    """"Vi öppnar igen måndag klockan 8." / "We open again on Monday at 8 a.m." (Stockholm time)."""
    language = language if language in LANGUAGES else "sv"
    if next_open is None:
        return text("never", language)
    local, today = next_open.astimezone(TZ), now.astimezone(TZ).date()
    if language in phrasebook.OPENING:
        return _opening_in(phrasebook.OPENING[language], local, today)
    when = _when(local.date(), today, language)
    if language == "sv":
        return f"Vi öppnar igen {when} {_sv_clock(local)}."
    phrase = f"We open again {when} {_en_clock(local)}"
    return phrase if phrase.endswith(".") else phrase + "."


def _opening_in(words: Mapping[str, Any], local: datetime, today: date) -> str:
    """"We open again <when> <clock>." from a language's words (`agi.phrasebook.OPENING`);
    a day a week or more away is its weekday and date (day.month)."""
    delta = (local.date() - today).days
    day = words["days"][local.weekday()]
    when = (words["today"] if delta == 0 else words["tomorrow"] if delta == 1
            else day if delta < 7 else f"{day} {local.day}.{local.month}.")
    clock = (words["minute"] if local.minute else words["hour"]).format(h=local.hour, mm=f"{local.minute:02d}")
    return words["sentence"].format(when=when, clock=clock)


# ---------------------------------------------------------------------- the decision

@dataclass(frozen=True)
class Open:
    """Open (or without a schedule): the call goes on in `district`."""

    district: str


@dataclass(frozen=True)
class Routed:
    """Closed; the partner `target`, open, takes the call."""

    district: str          # the one called, closed
    target: str
    reason: str            # why `district` is closed (a `schedules.schedule` reason)
    name: str
    target_name: str

    def sentence(self, language: str) -> str:
        return text("routed", language, name=self.name, target=self.target_name)


@dataclass(frozen=True)
class Offer:
    """Closed, and no partner open: inform, then offer what the district's policy allows."""

    district: str
    name: str
    status: Status
    now: datetime
    voice: bool                          # a voice message may be left
    callback: bool                       # a call-back may be asked for (the caller ID is known)
    emergency: Mapping[str, str]         # language -> text

    @property
    def due(self) -> datetime | None:
        """When a request left now is due: the next opening."""
        return self.status.next_open

    def info(self, language: str) -> list[str]:
        """Why and until when it is closed: the day's message, closed, when we open, emergency."""
        out = []
        message = self.status.message
        said = message.get(language) or (message.get("sv") if message else None)
        if said:
            out.append(said)
        out.append(text("closed", language, name=self.name))
        out.append(opening_phrase(self.status.next_open, self.now, language))
        emergency = self.emergency.get(language)
        if emergency:
            out.append(emergency)
        return out

    def choices(self, language: str) -> str | None:
        """The keys to press, or None when nothing is offered (the next language is offered
        apart, in that language: `next_language`, `text("this_language", ...)`)."""
        keys = [k for k, on in (("choices_voice", self.voice), ("choices_callback", self.callback)) if on]
        if not keys:
            return None
        return " ".join(text(k, language) for k in keys)


def next_language(offered: Sequence[str], language: str) -> str | None:
    """The language the caller's 9 switches to: the next of `offered` (the menu's languages
    the after-hours texts can be said in) after `language`, round; None when there is no other."""
    others = [lang for lang in dict.fromkeys(offered) if lang != language]
    if not others:
        return None
    order = list(dict.fromkeys(offered))
    if language not in order:
        return others[0]
    at = order.index(language)
    return next(lang for lang in order[at + 1:] + order[:at] if lang != language)


Decision = Union[Open, Routed, Offer]


def decide(hours: OpeningHours, playable: Container[str], district: str, now: datetime,
           skill: str | None = None, caller: str = "") -> Decision:
    """The call to `district` at `now`: before the menu (`skill` None; a partner must have a
    menu to play, `playable`) or waiting in the `skill` queue (the partner's queue must be
    open). `caller` is the caller ID: a call-back needs one."""
    status = hours.status(district, now, skill)
    if status is None or status.open:
        return Open(district)
    policy = hours.policy(district)
    for target in policy.route_to:
        if target not in hours or (skill is None and target not in playable):
            continue
        if hours.is_open(target, now, skill):
            return Routed(district, target, status.reason, hours.name(district), hours.name(target))
    return Offer(district, hours.name(district), status, now, voice=policy.voice_message,
                 callback=policy.callback and bool(caller), emergency=policy.emergency)
