"""The SMS channel's rules, pure: which number a contact is texted at, what the text says and
what it costs in segments, when a text may go out, and what an inbound reply means.

- Numbers: the books' mobile first, then phone, parsed with `phonenumbers` in the contact's
  country and written E.164; a number that is not a mobile (or cannot be parsed) gets no text.
- Segments as carriers bill them: GSM-7 when every character is in the GSM 03.38 alphabet (160
  characters, or 153 a part once split; the extension table's characters count twice), UCS-2
  otherwise (70, or 67 a part, in UTF-16 code units): Hebrew and Polish diacritics change it.
- When: inside the organisation's send window cut to 08:00 to 21:00 (the US TCPA's hours,
  applied everywhere as a cautious default; UNVERIFIED for the other countries), never on a
  public holiday, on a weekend only if the organisation sends on any day, all in the
  customer's time zone; a number whose country spans several zones must be inside the hours
  in every one of them.
- Replies: STOP and its usual synonyms in the five languages opt out, START opts in again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from phonenumbers import timezone as number_zones

from rules.calendar import OrgCalendar
from rules.messages import TEMPLATE_DIR, TONES, MessageContext, join_template, language_of, render

LAW_START, LAW_END = time(8, 0), time(21, 0)
MAX_BODY = 1600  # Twilio's limit on a concatenated text
MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)

GSM_ALPHABET = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJ"
                "KLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_DOUBLE = "^{}\\[~]|€\f"  # the extension table: an escape and the character

# Where an alphanumeric sender ID cannot be used (the North American numbering plan's
# countries: carriers there take texts from numbers only); a text to them goes from the
# server's number. UNVERIFIED beyond these: Twilio's per-country guidelines list more
# (searched: Twilio "alphanumeric sender ID supported countries"), not copied in here.
NUMBERS_ONLY = frozenset({"US", "CA", "PR", "AG", "AI", "AS", "BB", "BM", "BS", "DM", "DO",
                          "GD", "GU", "JM", "KN", "KY", "LC", "MP", "MS", "SX", "TC", "TT",
                          "VC", "VG", "VI"})

OPT_OUT_WORDS = frozenset({
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE",  # en
    "STOPP", "ABMELDEN", "ABBESTELLEN", "ENDE", "AUSTRAGEN",  # de
    "AVSLUTT", "AVMELD", "MELD AV",  # nb (STOPP above)
    "REZYGNACJA", "REZYGNUJĘ", "REZYGNUJE", "WYPISZ", "KONIEC", "NIE",  # pl
    "עצור", "הסר", "הסרה", "הפסק",  # he
})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES", "ANMELDEN", "TAK", "התחל"})


@dataclass(frozen=True)
class SmsNumber:
    """A contact's number as we may text it, or why not."""

    e164: str | None
    reason: str | None = None  # "no_number", "unparseable", "not_mobile"
    region: str | None = None


def number_for(mobile: str | None, phone: str | None, country: str | None) -> SmsNumber:
    """The first of the books' mobile and phone that is a mobile number, E.164; else why not
    (the reason of the mobile, the more telling one, when both fail)."""
    tried = [n for n in (mobile, phone) if n and n.strip()]
    if not tried:
        return SmsNumber(None, "no_number")
    outcomes = [_parse(n, (country or "").strip().upper() or None) for n in tried]
    for outcome in outcomes:
        if outcome.e164:
            return outcome
    return outcomes[0]


@lru_cache(maxsize=8192)
def _parse(raw: str, country: str | None) -> SmsNumber:
    try:
        parsed = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        return SmsNumber(None, "unparseable")
    if not phonenumbers.is_valid_number(parsed):
        return SmsNumber(None, "unparseable")
    region = phonenumbers.region_code_for_number(parsed)
    if phonenumbers.number_type(parsed) not in MOBILE_TYPES:
        return SmsNumber(None, "not_mobile", region)
    return SmsNumber(phonenumbers.format_number(parsed, PhoneNumberFormat.E164), None, region)


def is_alphanumeric_sender(sender: str) -> bool:
    return not sender.startswith("+")


def sender_for(sender: str, fallback: str, region: str | None) -> str | None:
    """The sender a text to `region` can come from: an alphanumeric ID only where the country
    takes one, else the number `fallback` (None: no sender can reach it)."""
    if not is_alphanumeric_sender(sender) or (region or "").upper() not in NUMBERS_ONLY:
        return sender
    return fallback if fallback.startswith("+") else None


# ------------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    characters: int
    segments: int

    def cost(self, per_segment: Decimal | None) -> Decimal | None:
        """Per message: the digits that matter and at least cents, whatever scale the price was
        stored with (NUMERIC(19,4) on PostgreSQL reads 0.1000 where SQLite keeps 0.10)."""
        if per_segment is None:
            return None
        exact = (per_segment * self.segments).normalize()
        exponent = exact.as_tuple().exponent
        return exact.quantize(Decimal("0.01")) if isinstance(exponent, int) and exponent >= -2 \
            else exact


def segments_of(text: str) -> Segments:
    gsm = all(ch in GSM_ALPHABET or ch in GSM_DOUBLE for ch in text)
    if gsm:
        units, single, part = len(text) + sum(ch in GSM_DOUBLE for ch in text), 160, 153
    else:
        units, single, part = len(text.encode("utf-16-le")) // 2, 70, 67
    count = 1 if units <= single else (units + part - 1) // part
    return Segments("GSM-7" if gsm else "UCS-2", len(text), count)


# ---------------------------------------------------------------------------------- texts


def shipped_sms_template(language: str, tone: str) -> str:
    if tone not in TONES:
        raise ValueError(f"tone must be one of {', '.join(TONES)}, not {tone!r}")
    source = (TEMPLATE_DIR / "sms" / f"{language_of(language)}.txt").read_text(
        encoding="utf-8")
    sections = {head.split("\n", 1)[0].strip(): head.split("\n", 1)[1]
                for head in source.split("== ")[1:]}
    return sections[tone]


def sms_text(context: MessageContext, tone: str) -> str:
    """The reminder as a text, in the contact's language, on one line."""
    body = shipped_sms_template(context.locale, tone)
    text = render(join_template("", body), context).text
    return " ".join(text.split())[:MAX_BODY]


# ----------------------------------------------------------------------------------- when


def zones_for(e164: str, books_zone: str | None) -> tuple[str, ...]:
    """The customer's time zone(s): the books' when they say, else the number's country's."""
    if books_zone:
        return (books_zone,)
    found = number_zones.time_zones_for_number(phonenumbers.parse(e164))
    return tuple(z for z in found if z != "Etc/Unknown") or ("UTC",)


def _inside(moment: datetime, zone: str, start: time, end: time, country: str,
            weekdays_only: bool) -> bool:
    calendar = OrgCalendar(zone, country)
    local = moment.astimezone(calendar.zone)
    day = local.date()
    weekend = day.weekday() in calendar.weekend
    holiday = not weekend and not calendar.is_business_day(day)
    return start <= local.time() < end and not holiday and not (weekdays_only and weekend)


def window_of(send_time: time, window_hours: int) -> tuple[time, time]:
    """The organisation's send window cut to the law's hours."""
    start = max(send_time.replace(tzinfo=None), LAW_START)
    minutes = send_time.hour * 60 + send_time.minute + window_hours * 60
    end = LAW_END if minutes >= 24 * 60 else min(time(minutes // 60, minutes % 60), LAW_END)
    return start, end


def may_text_at(moment: datetime, zones: tuple[str, ...], send_time: time, window_hours: int,
                country: str, weekdays_only: bool = True) -> bool:
    """Whether a text may go out at `moment`: inside the window in each of the customer's
    zones, never on a public holiday of the customer's country (rules/calendar.py), and on a
    weekend only if the organisation sends on any day (`weekdays_only` False)."""
    start, end = window_of(send_time, window_hours)
    return all(_inside(moment, zone, start, end, country, weekdays_only) for zone in zones)


def next_text_moment(moment: datetime, zones: tuple[str, ...], send_time: time,
                     window_hours: int, country: str,
                     weekdays_only: bool = True) -> datetime | None:
    """The first moment from `moment` a text may go: `moment` itself when it is inside the
    hours, else the first quarter hour that is (within three weeks)."""
    if may_text_at(moment, zones, send_time, window_hours, country, weekdays_only):
        return moment
    candidate = moment.replace(second=0, microsecond=0)
    candidate += timedelta(minutes=(-candidate.minute) % 15)
    for _ in range(21 * 24 * 4):
        if may_text_at(candidate, zones, send_time, window_hours, country, weekdays_only):
            return max(candidate, moment)
        candidate += timedelta(minutes=15)
    return None


# -------------------------------------------------------------------------------- replies


def reply_keyword(body: str) -> str | None:
    """"opt_out", "opt_in" or None for an inbound text: the whole text is the keyword, as
    carriers and Twilio read it ("Nie mam" is a reply, not an opt-out)."""
    word = " ".join(body.strip().upper().rstrip(".!").split())
    if word in OPT_OUT_WORDS:
        return "opt_out"
    return "opt_in" if word in OPT_IN_WORDS else None

