"""The texts of appointment mails, per kind and language, rendered with `string.Template`.

Why string.Template and not Jinja2: the mails have no loops or conditions, only
a handful of values, and the standard library needs no new dependency.  HTML
safety does not rest on each template remembering to escape: `render` escapes
every value once, centrally, before it goes into the HTML layout (the templates
themselves are trusted text); `substitute` raises on a missing value, so a typo
in a template fails the tests instead of mailing "$when".

Only practice, practitioner, date/time and the link appear: never a reason for
the visit, a note or a document name.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
from string import Template
from typing import Final

#: kind -> language -> (subject, paragraphs, button label or "" when the mail has no link)
_TEXTS: Final[dict[str, dict[str, tuple[str, tuple[str, ...], str]]]] = {
    "invitation": {
        "fr": ("Votre vidéo consultation du $when — $practice",
               ("Bonjour,",
                "$practitioner ($practice) vous a fixé un rendez-vous de vidéo consultation le $when.",
                "Le moment venu, ouvrez ce lien personnel (ne le transmettez à personne) :"),
               "Rejoindre la consultation"),
        "en": ("Your video consultation on $when — $practice",
               ("Hello,",
                "$practitioner ($practice) has scheduled a video consultation with you on $when.",
                "When the time comes, open this personal link (do not share it):"),
               "Join the consultation"),
    },
    "reminder": {
        "fr": ("Rappel : vidéo consultation le $when — $practice",
               ("Bonjour,",
                "Nous vous rappelons votre rendez-vous de vidéo consultation avec $practitioner ($practice)"
                " le $when.",
                "Le moment venu, ouvrez ce lien personnel (ne le transmettez à personne) :"),
               "Rejoindre la consultation"),
        "en": ("Reminder: video consultation on $when — $practice",
               ("Hello,",
                "This is a reminder of your video consultation with $practitioner ($practice) on $when.",
                "When the time comes, open this personal link (do not share it):"),
               "Join the consultation"),
    },
    "moved": {
        "fr": ("Rendez-vous déplacé au $when — $practice",
               ("Bonjour,",
                "Votre rendez-vous de vidéo consultation avec $practitioner ($practice) prévu le $old_when"
                " est déplacé au $when.",
                "Le lien de votre précédent message ne fonctionne plus. Le moment venu, ouvrez ce nouveau"
                " lien personnel (ne le transmettez à personne) :"),
               "Rejoindre la consultation"),
        "en": ("Appointment moved to $when — $practice",
               ("Hello,",
                "Your video consultation with $practitioner ($practice) planned on $old_when"
                " has been moved to $when.",
                "The link of the earlier message no longer works. When the time comes, open this new"
                " personal link (do not share it):"),
               "Join the consultation"),
    },
    "cancelled": {
        "fr": ("Rendez-vous annulé : $when — $practice",
               ("Bonjour,",
                "Votre rendez-vous de vidéo consultation avec $practitioner ($practice) prévu le $when"
                " est annulé. Le lien qui vous avait été envoyé ne fonctionne plus.",
                "Pour convenir d'un autre rendez-vous, contactez le cabinet. $contact"),
               ""),
        "en": ("Appointment cancelled: $when — $practice",
               ("Hello,",
                "Your video consultation with $practitioner ($practice) planned on $when"
                " has been cancelled. The link you were sent no longer works.",
                "To arrange another appointment, contact the practice. $contact"),
               ""),
    },
    "documents": {
        "fr": ("Des documents sont disponibles — $practice",
               ("Bonjour,",
                "$practitioner ($practice) a mis des documents à votre disposition après votre consultation.",
                "Ouvrez ce lien personnel ; votre date de naissance vous sera demandée. Il est valable jusqu'au"
                " $expires. Ne le transmettez à personne :"),
               "Voir les documents"),
        "en": ("Documents are available — $practice",
               ("Hello,",
                "$practitioner ($practice) made documents available to you after your consultation.",
                "Open this personal link; you will be asked for your date of birth. It is valid until $expires."
                " Do not share it:"),
               "See the documents"),
    },
}

KINDS: Final = tuple(_TEXTS)
LANGUAGES: Final = ("fr", "en")

_MONTHS: Final = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}

_LAYOUT: Final = Template("""<!doctype html>
<html lang="$lang"><head><meta charset="utf-8"><title>$subject</title></head>
<body style="margin:0;padding:24px;background:#f4f6f8;font-family:Arial,Helvetica,sans-serif;color:#1d2733">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center">
<table role="presentation" width="560" cellpadding="0" cellspacing="0" style="background:#ffffff;border-radius:8px;padding:24px">
<tr><td><h1 style="font-size:20px;margin:0 0 16px">$practice</h1>
$paragraphs
$button
</td></tr></table></td></tr></table></body></html>
""")

_BUTTON: Final = Template('<p style="margin:24px 0"><a href="$link" style="background:#1f5fa8;color:#ffffff;'
                          'padding:12px 20px;border-radius:6px;text-decoration:none;display:inline-block">'
                          '$label</a></p><p style="font-size:12px;color:#5a6675">$link</p>')


@dataclasses.dataclass(frozen=True, slots=True)
class RenderedMail:
    """A mail's subject, plain-text part and HTML part."""

    subject: str
    text: str
    html: str


def calendar_summary(language: str, practitioner: str, practice: str) -> str:
    """The calendar entry's title: what, with whom, where; nothing about why."""
    what = "Vidéo consultation" if language == "fr" else "Video consultation"
    return f"{what} — {practitioner} ({practice})"


def date_text(value: datetime.datetime, tz: datetime.tzinfo, language: str) -> str:
    """A day as the patient reads it ("4 mars 2030"), in the practice's time zone."""
    local = value.astimezone(tz)
    return f"{local.day} {_MONTHS[language][local.month - 1]} {local.year}"


def when_text(value: datetime.datetime, tz: datetime.tzinfo, language: str) -> str:
    """An appointment's date and time as the patient reads it, in the practice's time zone."""
    local = value.astimezone(tz)
    zone = getattr(tz, "key", None) or local.strftime("%Z")
    return f"{date_text(value, tz, language)} {'à' if language == 'fr' else 'at'} {local:%H:%M} ({zone})"


def render(kind: str, language: str, values: dict[str, str], link: str | None) -> RenderedMail:
    """Fill the `kind` template of `language`; KeyError for an unknown kind or a missing value."""
    subject_t, paragraph_ts, label = _TEXTS[kind][language if language in LANGUAGES else "fr"]
    subject = Template(subject_t).substitute(values)
    paragraphs = [Template(p).substitute(values).strip() for p in paragraph_ts]
    text = "\n\n".join(paragraphs) + (f"\n\n{link}\n" if link else "\n")
    escaped = {k: html.escape(v) for k, v in values.items()}
    button = "" if not link else _BUTTON.substitute(link=html.escape(link), label=html.escape(label))
    body = _LAYOUT.substitute(
        lang=html.escape(language), subject=html.escape(subject), practice=escaped["practice"],
        paragraphs="\n".join(f'<p style="margin:0 0 12px;line-height:1.5">{Template(p).substitute(escaped).strip()}</p>'
                             for p in paragraph_ts),
        button=button)
    return RenderedMail(subject, text, body)
