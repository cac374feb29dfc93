"""What a caller hears after hours, as text in their language (pure: no clock, no I/O).

`opening_phrase(next_open, now, "sv")` -> "Vi öppnar igen måndag klockan 8." Times are written
the way espeak-ng reads them naturally ("klockan 8 och 30", "at 8:30 a.m.").
"""
from __future__ import annotations

from datetime import date, datetime

from schedules.schedule import TZ

LANGUAGES = ("sv", "en")

_SV_DAYS = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SV_MONTHS = ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti",
              "september", "oktober", "november", "december")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")

TEXTS = {
    "sv": {
        "closed": "{name} har stängt just nu.",
        "closed_holiday": "{name} har stängt i dag, {detail}.",
        "never": "Vi kan inte säga när vi öppnar igen.",
        "routed": "{name} har stängt just nu. Vi kopplar dig till {target}.",
        "choices_voice": "Tryck 1 för att lämna ett röstmeddelande.",
        "choices_callback": "Tryck 2 så ringer vi upp dig när vi öppnar.",
        "other_language": "For English, press 9.",
        "record": "Tala in ditt meddelande efter tonen. Avsluta med fyrkant.",
        "recorded": "Tack. Ditt meddelande är registrerat och vi hör av oss när vi öppnar.",
        "callback": "Tack. Vi ringer upp dig på det nummer du ringer från när vi öppnar.",
        "nothing": "Ditt meddelande blev tomt.",
        "goodbye": "Tack för att du ringde. Hej då.",
    },
    "en": {
        "closed": "{name} is closed right now.",
        "closed_holiday": "{name} is closed today, {detail}.",
        "never": "We cannot say when we will open again.",
        "routed": "{name} is closed right now. We are connecting you to {target}.",
        "choices_voice": "Press 1 to leave a voice message.",
        "choices_callback": "Press 2 and we will call you back when we open.",
        "other_language": "För svenska, tryck 9.",
        "record": "Please speak your message after the tone. Press the hash key when you are done.",
        "recorded": "Thank you. Your message is registered and we will get back to you when we open.",
        "callback": "Thank you. We will call you back on the number you are calling from when we open.",
        "nothing": "Your message was empty.",
        "goodbye": "Thank you for calling. Goodbye.",
    },
}


def text(key: str, language: str, **values: str) -> str:
    table = TEXTS.get(language, TEXTS["sv"])
    return table[key].format(**values)


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
    when = _when(local.date(), today, language)
    if language == "sv":
        return f"Vi öppnar igen {when} {_sv_clock(local)}."
    phrase = f"We open again {when} {_en_clock(local)}"
    return phrase if phrase.endswith(".") else phrase + "."
