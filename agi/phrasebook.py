"""Every fixed sentence the system speaks outside the menus, in every language it has it in:
one table, data only (the menus' own prompts are the menus' data). The wait announcement's
parts (`agi.phrases` composes them with numbers), the call-back confirmation, the after-hours
texts and how they say when we open, and the survey's introduction and thanks.

`say(key, language)` -> (text, language used): the caller's language when the phrase exists in
it, else Swedish. `missing(languages, voices, recorded)` lists, per language a menu offers, the
phrases without a text and, for a language without a speech voice, the phrases said whole
(`RECORDED_ALONE`) that have no recording yet (`agi.phrase_recordings`), for the check at menu
publish. The phrases composed with numbers, names and times (the wait announcement, the
after-hours texts) cannot be recorded whole: a language without a voice hears them in Swedish.

Texts other than Swedish and English were written for the city's common languages (Finnish,
Arabic, Somali, Persian, Spanish, Tigrinya, Polish) and should be read by a native speaker
before use; Somali and Tigrinya have no espeak-ng voice, so their texts are the script for
recordings.
"""
from __future__ import annotations

from typing import Container, Iterable

DEFAULT_LANGUAGE = "sv"
COMMON_LANGUAGES = ("sv", "en", "fi", "ar", "so", "fa", "es", "ti", "pl")

# key -> language -> text. `{name}`, `{target}`, `{detail}` are filled in when said.
PHRASES: dict[str, dict[str, str]] = {
    # ---- the wait announcement: "<wait_you_are> 12 <wait_in_queue> <wait_is> 3 <minutes>"
    "wait_you_are": {
        "sv": "Du är nummer", "en": "You are number", "fi": "Olet jonossa numero",
        "ar": "أنت رقم", "so": "Waxaad tahay lambarka", "fa": "شما نفر",
        "es": "Usted es el número", "ti": "ኣብ መስርዕ ቁጽሪ", "pl": "Jesteś numerem",
    },
    "wait_in_queue": {
        "sv": "i kön.", "en": "in the queue.", "fi": "", "ar": "في قائمة الانتظار.",
        "so": "ee safka.", "fa": "در صف هستید.", "es": "en la cola.", "ti": "ኢኻ።",
        "pl": "w kolejce.",
    },
    "wait_is": {
        "sv": "Beräknad väntetid är", "en": "The estimated waiting time is",
        "fi": "Arvioitu odotusaika on", "ar": "وقت الانتظار المتوقع هو",
        "so": "Waqtiga sugitaanka la filayo waa", "fa": "زمان تقریبی انتظار",
        "es": "El tiempo de espera estimado es de", "ti": "ግምታዊ ግዜ ምጽባይ", "pl": "Szacowany czas oczekiwania to",
    },
    "wait_one": {        # how "one" is said before the minute ("" = in the minute's own text)
        "sv": "en", "ar": "", "so": "hal", "es": "un", "ti": "", "pl": "jedna",
    },
    "wait_minute": {
        "sv": "minut.", "en": "minute.", "fi": "minuutti.", "ar": "دقيقة واحدة.", "so": "daqiiqo.",
        "fa": "دقیقه است.", "es": "minuto.", "ti": "ሓንቲ ደቒቕ እዩ።", "pl": "minuta.",
    },
    "wait_minutes": {    # after a number above one (Polish 5+, Arabic 11+: see PLURALS)
        "sv": "minuter.", "en": "minutes.", "fi": "minuuttia.", "ar": "دقيقة.", "so": "daqiiqo.",
        "fa": "دقیقه است.", "es": "minutos.", "ti": "ደቓይቕ እዩ።", "pl": "minut.",
    },
    "wait_minutes_few": {   # Polish 2-4 (not 12-14), Arabic 3-10
        "ar": "دقائق.", "pl": "minuty.",
    },
    "wait_and": {        # between hundreds and the rest ("three hundred and five")
        "en": "and",
    },
    # ---- the call-back asked for while waiting
    "callback_confirmed": {
        "sv": "Tack. Du behåller din plats i kön och vi ringer upp dig så snart en handläggare är "
              "ledig. Du kan lägga på nu.",
        "en": "Thank you. You keep your place in the queue and we will call you back as soon as "
              "an agent is free. You may hang up now.",
        "fi": "Kiitos. Pidät paikkasi jonossa, ja soitamme sinulle takaisin heti kun käsittelijä "
              "vapautuu. Voit nyt katkaista puhelun.",
        "ar": "شكرا. ستحتفظ بمكانك في قائمة الانتظار وسنتصل بك عندما يصبح أحد الموظفين متاحا. "
              "يمكنك إنهاء المكالمة الآن.",
        "so": "Mahadsanid. Booskaaga safka waad haysaa, waana ku soo wacaynaa marka shaqaale "
              "bannaanaado. Hadda waad dhigi kartaa.",
        "fa": "متشکریم. جای شما در صف حفظ می‌شود و به محض آزاد شدن یک کارشناس با شما تماس "
              "می‌گیریم. اکنون می‌توانید تماس را قطع کنید.",
        "es": "Gracias. Mantiene su lugar en la cola y le devolveremos la llamada en cuanto un "
              "agente esté libre. Ya puede colgar.",
        "ti": "የቐንየልና። ቦታኻ ኣብ መስርዕ ትሕዞ፣ ሰራሕተኛ ምስ ተፈትሐ ክንድውለልካ ኢና። ሕጂ ክትዓጽዎ ትኽእል ኢኻ።",
        "pl": "Dziękujemy. Zachowujesz swoje miejsce w kolejce i oddzwonimy, gdy tylko konsultant "
              "będzie wolny. Możesz się teraz rozłączyć.",
    },
    # ---- the survey after the call
    "survey_intro": {
        "sv": "Vi vill gärna veta vad du tyckte om samtalet. Svara med en siffra från 1 till 5, "
              "där 5 är bäst.",
        "en": "We would like to know what you thought of the call. Answer with a digit from 1 "
              "to 5, where 5 is best.",
        "fi": "Haluaisimme tietää, mitä pidit puhelusta. Vastaa numerolla 1–5, jossa 5 on paras.",
        "ar": "نود أن نعرف رأيك في المكالمة. أجب برقم من 1 إلى 5، حيث 5 هو الأفضل.",
        "so": "Waxaan jeclaan lahayn inaan ogaanno sida aad u aragtay wicitaanka. Ku jawaab "
              "lambar 1 ilaa 5, halkaas oo 5 ay tahay tan ugu fiican.",
        "fa": "مایلیم نظر شما را درباره این تماس بدانیم. با عددی از 1 تا 5 پاسخ دهید، 5 یعنی بهترین.",
        "es": "Nos gustaría saber qué le pareció la llamada. Responda con un número del 1 al 5, "
              "donde 5 es el mejor.",
        "ti": "ብዛዕባ እዚ ደወል እንታይ ከም ዝመሰለካ ክንፈልጥ ንደሊ። ካብ 1 ክሳብ 5 ብቑጽሪ መልስ፣ 5 እቲ ዝበለጸ እዩ።",
        "pl": "Chcielibyśmy wiedzieć, co myślisz o rozmowie. Odpowiedz cyfrą od 1 do 5, gdzie 5 "
              "oznacza najlepiej.",
    },
    "survey_thanks": {
        "sv": "Tack för dina svar. Hej då.", "en": "Thank you for your answers. Goodbye.",
        "fi": "Kiitos vastauksistasi. Näkemiin.", "ar": "شكرا على إجاباتك. مع السلامة.",
        "so": "Waad ku mahadsan tahay jawaabahaaga. Nabad gelyo.",
        "fa": "از پاسخ‌های شما متشکریم. خدانگهدار.", "es": "Gracias por sus respuestas. Adiós.",
        "ti": "ስለ መልስታትካ የቐንየልና። ደሓን ኩን።", "pl": "Dziękujemy za odpowiedzi. Do widzenia.",
    },
}

# ---- after hours (agi.after_hours_decision): said in the caller's language; `this_language`
# offers the language it is written in (said in it, after the choices in the caller's language)
_AFTER_HOURS: dict[str, dict[str, str]] = {
    "sv": {
        "closed": "{name} har stängt just nu.",
        "closed_holiday": "{name} har stängt i dag, {detail}.",
        "never": "Vi kan inte säga när vi öppnar igen.",
        "routed": "{name} har stängt just nu. Vi kopplar dig till {target}.",
        "choices_voice": "Tryck 1 för att lämna ett röstmeddelande.",
        "choices_callback": "Tryck 2 så ringer vi upp dig när vi öppnar.",
        "this_language": "På svenska, tryck 9.",
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
        "this_language": "For English, press 9.",
        "record": "Please speak your message after the tone. Press the hash key when you are done.",
        "recorded": "Thank you. Your message is registered and we will get back to you when we open.",
        "callback": "Thank you. We will call you back on the number you are calling from when we open.",
        "nothing": "Your message was empty.",
        "goodbye": "Thank you for calling. Goodbye.",
    },
    "fi": {
        "closed": "{name} on nyt suljettu.", "closed_holiday": "{name} on tänään suljettu, {detail}.",
        "never": "Emme voi sanoa, milloin avaamme taas.",
        "routed": "{name} on nyt suljettu. Yhdistämme sinut: {target}.",
        "choices_voice": "Paina 1 jättääksesi ääniviestin.",
        "choices_callback": "Paina 2, niin soitamme sinulle takaisin kun avaamme.",
        "this_language": "Suomeksi, paina 9.",
        "record": "Puhu viestisi äänimerkin jälkeen. Lopeta painamalla risuaitaa.",
        "recorded": "Kiitos. Viestisi on kirjattu ja otamme yhteyttä kun avaamme.",
        "callback": "Kiitos. Soitamme sinulle numeroon, josta soitat, kun avaamme.",
        "nothing": "Viestisi oli tyhjä.", "goodbye": "Kiitos soitostasi. Näkemiin.",
    },
    "ar": {
        "closed": "{name} مغلق الآن.", "closed_holiday": "{name} مغلق اليوم، {detail}.",
        "never": "لا يمكننا أن نقول متى سنفتح مرة أخرى.",
        "routed": "{name} مغلق الآن. سنحولك إلى {target}.",
        "choices_voice": "اضغط 1 لترك رسالة صوتية.",
        "choices_callback": "اضغط 2 وسنتصل بك عندما نفتح.",
        "this_language": "للعربية اضغط 9.",
        "record": "سجل رسالتك بعد النغمة. اضغط على المربع عند الانتهاء.",
        "recorded": "شكرا. تم تسجيل رسالتك وسنتواصل معك عندما نفتح.",
        "callback": "شكرا. سنتصل بك على الرقم الذي تتصل منه عندما نفتح.",
        "nothing": "رسالتك كانت فارغة.", "goodbye": "شكرا لاتصالك. مع السلامة.",
    },
    "so": {
        "closed": "{name} hadda waa xiran yahay.", "closed_holiday": "{name} maanta waa xiran yahay, {detail}.",
        "never": "Ma sheegi karno goorta aan dib u furayno.",
        "routed": "{name} hadda waa xiran yahay. Waxaan kugu xireynaa {target}.",
        "choices_voice": "Riix 1 si aad farriin cod ah uga tagto.",
        "choices_callback": "Riix 2 waana ku soo wacaynaa marka aan furno.",
        "this_language": "Af-Soomaali, riix 9.",
        "record": "Duub farriintaada codka kadib. Ku dhammee calaamadda jaantuska.",
        "recorded": "Mahadsanid. Farriintaada waa la diiwaangeliyay, waana kula soo xiriiri doonnaa marka aan furno.",
        "callback": "Mahadsanid. Waxaan kugu soo wacaynaa lambarka aad ka soo wacayso marka aan furno.",
        "nothing": "Farriintaadu way madhnayd.", "goodbye": "Waad ku mahadsan tahay wicitaanka. Nabad gelyo.",
    },
    "fa": {
        "closed": "{name} اکنون بسته است.", "closed_holiday": "{name} امروز بسته است، {detail}.",
        "never": "نمی‌توانیم بگوییم چه زمانی دوباره باز می‌کنیم.",
        "routed": "{name} اکنون بسته است. شما را به {target} وصل می‌کنیم.",
        "choices_voice": "برای گذاشتن پیام صوتی 1 را فشار دهید.",
        "choices_callback": "2 را فشار دهید تا وقتی باز کردیم با شما تماس بگیریم.",
        "this_language": "برای فارسی 9 را فشار دهید.",
        "record": "پیام خود را بعد از بوق بگویید. در پایان مربع را فشار دهید.",
        "recorded": "متشکریم. پیام شما ثبت شد و وقتی باز کردیم با شما تماس می‌گیریم.",
        "callback": "متشکریم. وقتی باز کردیم با شماره‌ای که از آن تماس می‌گیرید تماس می‌گیریم.",
        "nothing": "پیام شما خالی بود.", "goodbye": "از تماس شما متشکریم. خدانگهدار.",
    },
    "es": {
        "closed": "{name} está cerrado en este momento.", "closed_holiday": "{name} está cerrado hoy, {detail}.",
        "never": "No podemos decir cuándo volveremos a abrir.",
        "routed": "{name} está cerrado en este momento. Le pasamos con {target}.",
        "choices_voice": "Pulse 1 para dejar un mensaje de voz.",
        "choices_callback": "Pulse 2 y le llamaremos cuando abramos.",
        "this_language": "Para español, pulse 9.",
        "record": "Deje su mensaje después del tono. Pulse la almohadilla al terminar.",
        "recorded": "Gracias. Su mensaje ha quedado registrado y nos pondremos en contacto cuando abramos.",
        "callback": "Gracias. Le llamaremos al número desde el que llama cuando abramos.",
        "nothing": "Su mensaje estaba vacío.", "goodbye": "Gracias por llamar. Adiós.",
    },
    "ti": {
        "closed": "{name} ሕጂ ዕጹው እዩ።", "closed_holiday": "{name} ሎሚ ዕጹው እዩ፣ {detail}።",
        "never": "መዓስ ከም እንኸፍት ክንብል ኣይንኽእልን ኢና።",
        "routed": "{name} ሕጂ ዕጹው እዩ። ናብ {target} ነራኽበካ ኣለና።",
        "choices_voice": "ናይ ድምጺ መልእኽቲ ንምግዳፍ 1 ጠውቕ።",
        "choices_callback": "2 ጠውቕ፣ ምስ ከፈትና ክንድውለልካ ኢና።",
        "this_language": "ንትግርኛ 9 ጠውቕ።",
        "record": "ድሕሪ እቲ ድምጺ መልእኽትኻ ተዛረብ። ምስ ወዳእካ ትርብዒት ጠውቕ።",
        "recorded": "የቐንየልና። መልእኽትኻ ተመዝጊቡ ኣሎ፣ ምስ ከፈትና ክንረኽበካ ኢና።",
        "callback": "የቐንየልና። ምስ ከፈትና በቲ እትድውለሉ ዘለኻ ቁጽሪ ክንድውለልካ ኢና።",
        "nothing": "መልእኽትኻ ባዶ እዩ ነይሩ።", "goodbye": "ስለ ዝደወልካ የቐንየልና። ደሓን ኩን።",
    },
    "pl": {
        "closed": "{name} jest teraz zamknięte.", "closed_holiday": "{name} jest dziś zamknięte, {detail}.",
        "never": "Nie możemy powiedzieć, kiedy znowu otworzymy.",
        "routed": "{name} jest teraz zamknięte. Łączymy z: {target}.",
        "choices_voice": "Naciśnij 1, aby zostawić wiadomość głosową.",
        "choices_callback": "Naciśnij 2, a oddzwonimy, gdy otworzymy.",
        "this_language": "Po polsku, naciśnij 9.",
        "record": "Nagraj wiadomość po sygnale. Zakończ krzyżykiem.",
        "recorded": "Dziękujemy. Twoja wiadomość została zarejestrowana, odezwiemy się po otwarciu.",
        "callback": "Dziękujemy. Oddzwonimy na numer, z którego dzwonisz, gdy otworzymy.",
        "nothing": "Twoja wiadomość była pusta.", "goodbye": "Dziękujemy za telefon. Do widzenia.",
    },
}
for _lang, _texts in _AFTER_HOURS.items():
    for _key, _text in _texts.items():
        PHRASES.setdefault(f"after_hours_{_key}", {})[_lang] = _text

# ---- "we open again <when> <clock>" in the languages beyond Swedish and English (those two
# keep their own wording with months in agi.after_hours_decision): the week's days as said
# after "again" (Monday first), today, tomorrow, the clock, and the sentence.
OPENING: dict[str, dict[str, object]] = {
    "fi": {"days": ("maanantaina", "tiistaina", "keskiviikkona", "torstaina", "perjantaina",
                    "lauantaina", "sunnuntaina"), "today": "tänään", "tomorrow": "huomenna",
           "hour": "kello {h}", "minute": "kello {h}.{mm}", "sentence": "Avaamme taas {when} {clock}."},
    "ar": {"days": ("يوم الاثنين", "يوم الثلاثاء", "يوم الأربعاء", "يوم الخميس", "يوم الجمعة",
                    "يوم السبت", "يوم الأحد"), "today": "اليوم", "tomorrow": "غدا",
           "hour": "الساعة {h}", "minute": "الساعة {h}:{mm}", "sentence": "نفتح مرة أخرى {when} {clock}."},
    "so": {"days": ("Isniinta", "Talaadada", "Arbacada", "Khamiista", "Jimcaha", "Sabtida", "Axadda"),
           "today": "maanta", "tomorrow": "berri", "hour": "saacadda {h}", "minute": "saacadda {h}:{mm}",
           "sentence": "Waxaan dib u furaynaa {when} {clock}."},
    "fa": {"days": ("دوشنبه", "سه‌شنبه", "چهارشنبه", "پنجشنبه", "جمعه", "شنبه", "یکشنبه"),
           "today": "امروز", "tomorrow": "فردا", "hour": "ساعت {h}", "minute": "ساعت {h}:{mm}",
           "sentence": "ما دوباره {when} {clock} باز می‌کنیم."},
    "es": {"days": ("el lunes", "el martes", "el miércoles", "el jueves", "el viernes",
                    "el sábado", "el domingo"), "today": "hoy", "tomorrow": "mañana",
           "hour": "a las {h}", "minute": "a las {h}:{mm}", "sentence": "Volvemos a abrir {when} {clock}."},
    "ti": {"days": ("ሰኑይ", "ሰሉስ", "ረቡዕ", "ሓሙስ", "ዓርቢ", "ቀዳም", "ሰንበት"), "today": "ሎሚ",
           "tomorrow": "ጽባሕ", "hour": "ሰዓት {h}", "minute": "ሰዓት {h}:{mm}",
           "sentence": "{when} {clock} ከም ብሓድሽ ንኸፍት ኢና።"},
    "pl": {"days": ("w poniedziałek", "we wtorek", "w środę", "w czwartek", "w piątek",
                    "w sobotę", "w niedzielę"), "today": "dzisiaj", "tomorrow": "jutro",
           "hour": "o godzinie {h}", "minute": "o godzinie {h}:{mm}",
           "sentence": "Otwieramy ponownie {when} {clock}."},
}

# Phrases only some languages need (their grammar), never reported missing elsewhere.
OPTIONAL = frozenset({"wait_minutes_few", "wait_and", "wait_one"})
# Phrases said whole, on their own: a recording can stand in for a voice the system lacks.
RECORDED_ALONE = ("callback_confirmed", "survey_intro", "survey_thanks")


def has(key: str, language: str) -> bool:
    return key in PHRASES and language in PHRASES[key]


def text(key: str, language: str) -> str:
    """The phrase in `language` exactly ("" when that language leaves it out)."""
    return PHRASES[key][language]


def say(key: str, language: str) -> tuple[str, str]:
    texts = PHRASES[key]
    lang = language if language in texts else DEFAULT_LANGUAGE
    return texts[lang], lang


def languages() -> tuple[str, ...]:
    """The languages every required phrase has a text in."""
    required = [texts for key, texts in PHRASES.items() if key not in OPTIONAL]
    return tuple(lang for lang in COMMON_LANGUAGES if all(lang in t for t in required))


def minute_word(language: str, n: int) -> str:
    """The word after a number of minutes above one, by the language's plural rule."""
    few = PHRASES["wait_minutes_few"].get(language)
    if few and language == "pl" and 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    if few and language == "ar" and 3 <= n <= 10:
        return few
    return PHRASES["wait_minutes"][language]


def missing(languages: Iterable[str], voices: Container[str],
            recorded: Container[tuple[str, str]] = frozenset()) -> list[str]:
    """Every phrase x language the system could not say for a menu offering `languages`: no
    text, or neither a speech voice nor a recording (`recorded`: (key, language) pairs)."""
    problems = []
    for lang in languages:
        absent = [key for key, texts in PHRASES.items() if key not in OPTIONAL and lang not in texts]
        if absent:
            problems.append(f"language {lang!r}: the system's phrases {', '.join(absent)} have no "
                            "text (add them to agi/phrasebook.py)")
        elif lang not in voices:
            keys = [key for key in RECORDED_ALONE if (key, lang) not in recorded]
            if keys:
                problems.append(f"language {lang!r}: no speech voice and no recording for the "
                                f"system's phrases {', '.join(keys)} (upload them at "
                                "/admin/phrases)")
    return problems
