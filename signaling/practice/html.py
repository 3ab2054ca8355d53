"""Server-rendered HTML of the practice: every value escaped, every string a data-i18n key."""

from __future__ import annotations

import datetime
import html
from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

from aiohttp import web

from clinic import timestamps
from clinic.audit import AuditEvent
from clinic.consent import ConsentEntry
from clinic.mail import MailMessage
from clinic.models import Consultation, Patient
from clinic.patient_links import PatientLink
from clinic.records import TeamMember

from .auth import CSRF_FIELD
from .texts import text, tr

e = html.escape


class DocumentLike(Protocol):
    """What the pages show of a document of the store."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def media_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def created_at(self) -> str: ...
    @property
    def consultation_id(self) -> str: ...


def _lang_select() -> str:
    return ('<label class="lang"><span data-i18n="language">Langue</span>'
            '<select data-testid="lang-select" aria-label="Langue / Language">'
            '<option value="fr">Français</option><option value="en">English</option></select></label>')


def page(title_key: str, body: str, *, csrf: str, logged_in: bool, status: int = 200,
         script: str = "practice.js") -> web.Response:
    """A whole page: top bar (navigation and logout when logged in), then `body`."""
    nav = ""
    if logged_in:
        nav = (f'<nav class="practice-nav" aria-label="{e(text("nav.main"))}" data-i18n-aria="nav.main">'
               f'<a href="/" data-testid="nav-day">{tr("nav.day")}</a>'
               f'<a href="/patients" data-testid="nav-patients">{tr("nav.patients")}</a>'
               f'<a href="/account/password" data-testid="nav-account">{tr("nav.account")}</a></nav>')
    logout = ""
    if logged_in:
        logout = (f'<form method="post" action="/logout" class="logout">{csrf_field(csrf)}'
                  f'<button type="submit" data-testid="logout">{tr("nav.logout")}</button></form>')
    document = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="csrf-token" content="{e(csrf)}">
<title data-i18n="{title_key}">{e(text(title_key))}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/css/app.css">
<script type="module" src="/static/js/{script}"></script></head>
<body><header class="topbar"><a class="brand" href="/">Teleconsult</a>{nav}{_lang_select()}{logout}</header>
<main class="practice">{body}</main></body></html>
"""
    return web.Response(text=document, status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def csrf_field(csrf: str) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{e(csrf)}">'


def alert(key: str | None, extra: str = "") -> str:
    if key is None:
        return ""
    return f'<p class="form-error" role="alert" data-testid="form-error" data-error="{e(key)}">{tr(key)}{extra}</p>'


def notice(key: str | None) -> str:
    return "" if key is None else f'<p class="form-notice" role="status" data-testid="form-notice">{tr(key)}</p>'


def local(value: datetime.datetime | None, tz: datetime.tzinfo, fmt: str = "%d/%m/%Y %H:%M") -> str:
    return "" if value is None else value.astimezone(tz).strftime(fmt)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} o"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} Ko"
    return f"{size / 1024 / 1024:.1f} Mo"


# login

def login_page(csrf: str, *, error: str | None = None, email: str = "", next_path: str = "/",
               status: int = 200) -> web.Response:
    body = f"""<section class="card narrow" aria-labelledby="login-title">
<h1 id="login-title">{tr("login.title")}</h1>{alert(error)}
<form method="post" action="/login" class="stack" data-testid="login-form">{csrf_field(csrf)}
<input type="hidden" name="next" value="{e(next_path)}">
<label><span data-i18n="login.email">{e(text("login.email"))}</span>
<input type="email" name="email" autocomplete="username" required value="{e(email)}" data-testid="login-email"></label>
<label><span data-i18n="login.password">{e(text("login.password"))}</span>
<input type="password" name="password" autocomplete="current-password" required data-testid="login-password"></label>
<button type="submit" class="primary" data-testid="login-submit">{tr("login.submit")}</button>
</form></section>"""
    return page("login.title", body, csrf=csrf, logged_in=False, status=status)


# the day list

def arrivals_panel(events_url: str) -> str:
    """The arrival announcements (web/js/arrivals.js): live region, sound and desktop notification switches."""
    return (f'<div class="arrivals" data-arrivals="{e(events_url)}" role="group" aria-label="{e(text("arrival.region"))}"'
            f' data-i18n-aria="arrival.region">'
            f'<p class="arrival-notice" data-testid="arrival-notice" role="status" aria-live="polite" aria-atomic="true">'
            f'</p><label class="inline"><input type="checkbox" data-testid="arrival-sound"> '
            f'<span data-i18n="arrival.sound">{e(text("arrival.sound"))}</span></label>'
            f' <button type="button" data-testid="arrival-notifications" hidden>{tr("arrival.notify")}</button></div>')


def status_cell(status: str, readiness: str | None) -> str:
    detail = ""
    if readiness is not None:
        detail = f' · <span data-i18n="readiness.{e(readiness)}">{e(text("readiness." + readiness))}</span>'
    return (f'<span data-i18n="status.{e(status)}">{e(text("status." + status))}</span>{detail}')


def day_page(csrf: str, day: datetime.date, rows: Sequence[tuple[Consultation, Patient, str, str | None]],
             tz: datetime.tzinfo) -> web.Response:
    items = []
    for consultation, patient, status, readiness in rows:
        action = ""
        if status in ("absent", "scheduled", "waiting-room", "in-call"):  # "cancelled": no way in
            action = (f'<form method="post" action="/consultations/{e(consultation.id)}/join">{csrf_field(csrf)}'
                      f'<button type="submit" class="primary" data-testid="join-consultation">{tr("day.join")}</button></form>')
        elif status == "ended":
            action = (f'<form method="post" action="/consultations/{e(consultation.id)}/closing">{csrf_field(csrf)}'
                      f'<button type="submit" data-testid="close-consultation">{tr("day.close")}</button></form>')
        action += appointment_controls(csrf, consultation, f"/?day={day.isoformat()}")
        items.append(
            f'<tr data-testid="day-item" data-consultation-id="{e(consultation.id)}">'
            f'<td>{local(consultation.scheduled_at, tz, "%H:%M")}</td>'
            f'<td><a href="/records/{e(patient.id)}">{e(patient.name)}</a></td>'
            f'<td data-testid="consultation-status" data-status="{e(status)}" data-readiness="{e(readiness or "")}"'
            f' aria-live="polite">{status_cell(status, readiness)}</td><td>{action}</td></tr>')
    if items:
        table = (f'<table class="list" data-testid="day-list"><thead><tr><th>{tr("day.time")}</th>'
                 f'<th>{tr("day.patient")}</th><th>{tr("day.status")}</th><th>{tr("day.action")}</th></tr></thead>'
                 f'<tbody>{"".join(items)}</tbody></table>')
    else:
        table = f'<p data-testid="day-list" data-empty="true">{tr("day.empty")}</p>'
    body = f"""<section class="card" aria-labelledby="day-title" data-day-status="/day/status?day={day.isoformat()}">
<h1 id="day-title">{tr("day.title")} — {day.strftime("%d/%m/%Y")}</h1>
<form method="get" action="/" class="inline"><label><span data-i18n="day.date">{e(text("day.date"))}</span>
<input type="date" name="day" value="{day.isoformat()}" data-testid="day-date"></label>
<button type="submit">{tr("day.show")}</button></form>
{arrivals_panel(f"/day/events?day={day.isoformat()}")}
{table}</section>"""
    return page("day.title", body, csrf=csrf, logged_in=True)


# cancel and move

def appointment_controls(csrf: str, consultation: Consultation, back: str) -> str:
    """Cancel and move forms of a consultation still to come (nothing for the others)."""
    if consultation.cancelled_at is not None or consultation.state.value not in ("scheduled", "waiting"):
        return ""
    base = f"/consultations/{e(consultation.id)}"
    hidden = f'{csrf_field(csrf)}<input type="hidden" name="next" value="{e(back)}">'
    return (f'<details class="appointment-move"><summary data-testid="appointment-move-open">{tr("appointment.move")}'
            f'</summary><form method="post" action="{base}/move" class="inline">{hidden}'
            f'<label><span data-i18n="record.date">{e(text("record.date"))}</span>'
            f'<input type="date" name="date" required data-testid="appointment-move-date"></label>'
            f'<label><span data-i18n="record.time">{e(text("record.time"))}</span>'
            f'<input type="time" name="time" required data-testid="appointment-move-time"></label>'
            f'<button type="submit" data-testid="appointment-move">{tr("appointment.move-submit")}</button></form>'
            f'</details><form method="post" action="{base}/cancel" class="inline">{hidden}'
            f'<button type="submit" data-testid="appointment-cancel">{tr("appointment.cancel")}</button></form>')


def appointment_error(csrf: str, key: str, back: str, status: int) -> web.Response:
    """A refused cancel or move: why, and the way back (nothing was changed)."""
    body = (f'<section class="card narrow" aria-labelledby="appointment-title">'
            f'<h1 id="appointment-title">{tr("appointment.error-title")}</h1>{alert(key)}'
            f'<p><a href="{e(back)}" data-testid="appointment-back">{tr("appointment.back")}</a></p></section>')
    return page("appointment.error-title", body, csrf=csrf, logged_in=True, status=status)


# patients

def patients_page(csrf: str, patients: Iterable[Patient]) -> web.Response:
    items = "".join(
        f'<li data-testid="patient-item"><a href="/records/{e(p.id)}">{e(p.name)}</a>'
        f' <span class="muted">{p.date_of_birth.strftime("%d/%m/%Y")}</span></li>' for p in patients)
    listing = f'<ul class="list">{items}</ul>' if items else f'<p>{tr("patients.empty")}</p>'
    body = f"""<section class="card" aria-labelledby="patients-title">
<h1 id="patients-title">{tr("patients.title")}</h1>
<p><a class="button primary" href="/patients/new" data-testid="patient-new">{tr("patients.new")}</a></p>
{listing}</section>"""
    return page("patients.title", body, csrf=csrf, logged_in=True)


def patient_form_page(csrf: str, *, action: str, title_key: str, name: str = "", email: str = "",
                      birth: str = "", language: str = "fr", error: str | None = None,
                      status: int = 200) -> web.Response:
    languages = "".join(f'<option value="{code}"{" selected" if code == language else ""}>{label}</option>'
                        for code, label in (("fr", "Français"), ("en", "English")))
    body = f"""<section class="card narrow" aria-labelledby="patient-title">
<h1 id="patient-title">{tr(title_key)}</h1>{alert(error)}
<form method="post" action="{e(action)}" class="stack" data-testid="patient-form">{csrf_field(csrf)}
<label><span data-i18n="patient.name">{e(text("patient.name"))}</span>
<input name="name" required maxlength="200" value="{e(name)}" data-testid="patient-name"></label>
<label><span data-i18n="patient.email">{e(text("patient.email"))}</span>
<input type="email" name="email" required value="{e(email)}" data-testid="patient-email"></label>
<label><span data-i18n="patient.birth">{e(text("patient.birth"))}</span>
<input type="date" name="date_of_birth" required value="{e(birth)}" data-testid="patient-birth"></label>
<label><span data-i18n="patient.language">{e(text("patient.language"))}</span>
<select name="language" data-testid="patient-language">{languages}</select></label>
<button type="submit" class="primary" data-testid="patient-save">{tr("patient.save")}</button>
</form></section>"""
    return page(title_key, body, csrf=csrf, logged_in=True, status=status)


# the record

def record_page(csrf: str, tz: datetime.tzinfo, patient: Patient, *, consultations: Sequence[Consultation],
                documents: Sequence[DocumentLike], team: Sequence[TeamMember], links: Sequence[PatientLink],
                mails: Sequence[MailMessage], events: Sequence[AuditEvent], names: dict[str, str],
                consents: Sequence[ConsentEntry] = (),
                error: str | None = None, note: str | None = None, status: int = 200) -> web.Response:
    now = datetime.datetime.now(datetime.UTC)
    base = f"/records/{e(patient.id)}"
    consultation_rows = "".join(
        f'<li data-testid="record-consultation" data-consultation-id="{e(c.id)}" data-state="{e(c.state.value)}"'
        f' data-cancelled="{"true" if c.cancelled_at else "false"}">'
        f'{local(c.scheduled_at, tz)} — {tr("state." + ("cancelled" if c.cancelled_at else c.state.value))}'
        f' {appointment_controls(csrf, c, f"/records/{patient.id}")}</li>' for c in consultations)
    document_rows = "".join(
        f'<li data-testid="record-document" data-document-id="{e(d.id)}">'
        f'<a href="{base}/documents/{e(d.id)}" target="_blank" rel="noopener">{e(d.name)}</a>'
        f' <span class="muted">({tr("source." + d.source)}, {_size(d.size)})</span>'
        f' <a href="{base}/documents/{e(d.id)}?download=1" data-testid="record-document-download">{tr("record.download")}</a>'
        f'</li>' for d in documents)
    team_rows = "".join(
        f'<li data-testid="team-member" data-practitioner-id="{e(m.practitioner.id)}">{e(m.practitioner.display_name)}'
        f' &lt;{e(m.practitioner.email)}&gt; <form method="post" action="{base}/access/{e(m.practitioner.id)}/revoke"'
        f' class="inline">{csrf_field(csrf)}<button type="submit" data-testid="team-revoke">{tr("record.revoke")}</button>'
        f'</form></li>' for m in team)
    link_rows = "".join(_link_row(link, now, tz, base, csrf) for link in links)
    mail_rows = "".join(
        f'<li data-testid="mail-item" data-mail-id="{e(m.id)}" data-state="{e(m.state)}" data-attempts="{m.attempts}">'
        f'{tr("mail." + m.kind)} — {tr("mail." + m.state)} ({m.attempts} {tr("record.attempts")})'
        f'{" — " + e(m.last_error) if m.last_error and m.state != "sent" else ""}'
        f' <span class="muted">{local(m.sent_at or m.created_at, tz)}</span></li>' for m in mails)
    event_rows = "".join(
        f'<tr data-testid="audit-event" data-action="{e(ev.action)}"><td>{local(ev.at, tz, "%d/%m/%Y %H:%M:%S")}</td>'
        f'<td>{e(names.get(ev.actor_id or "", ev.actor_kind))}</td><td><code>{e(ev.action)}</code></td>'
        f'<td><code>{e(ev.document_id or ev.object_id or ev.consultation_id or "")}</code></td></tr>' for ev in events)
    consent_rows = "".join(
        f'<li data-testid="consent-entry" data-subject="{e(c.subject)}" data-decision="{e(c.decision)}"'
        f' data-version="{e(c.notice_version)}">{local(timestamps.from_text(c.at), tz)} — {tr("consent." + c.subject)}'
        f' : {tr("consent." + c.decision)} <span class="muted">({e(c.notice_version)})</span></li>' for c in consents)
    body = f"""<section class="card" aria-labelledby="record-title" data-testid="record" data-patient-id="{e(patient.id)}">
<h1 id="record-title">{tr("record.title")} — <span data-testid="record-name">{e(patient.name)}</span></h1>
{arrivals_panel(f"/day/events?patient={patient.id}")}
{alert(error)}{notice(note)}
<h2>{tr("record.identity")}</h2>
<dl class="identity"><dt>{tr("patient.email")}</dt><dd>{e(patient.email)}</dd>
<dt>{tr("patient.birth")}</dt><dd>{patient.date_of_birth.strftime("%d/%m/%Y")}</dd></dl>
<p><a href="{base}/edit" data-testid="patient-edit">{tr("patient.edit")}</a>
 · <a href="{base}/export" data-testid="record-export" download>{tr("record.export")}</a></p>
<h2>{tr("record.schedule")}</h2>
<form method="post" action="{base}/consultations" class="inline" data-testid="schedule-form">{csrf_field(csrf)}
<label><span data-i18n="record.date">{e(text("record.date"))}</span><input type="date" name="date" required data-testid="schedule-date"></label>
<label><span data-i18n="record.time">{e(text("record.time"))}</span><input type="time" name="time" required data-testid="schedule-time"></label>
<button type="submit" class="primary" data-testid="schedule-submit">{tr("record.schedule-submit")}</button></form>
<h2>{tr("record.consultations")}</h2>
{f'<ul class="list">{consultation_rows}</ul>' if consultation_rows else f'<p>{tr("record.no-consultations")}</p>'}
<h2>{tr("record.documents")}</h2>
{f'<ul class="list" data-testid="record-documents">{document_rows}</ul>' if document_rows else f'<p data-testid="record-documents" data-empty="true">{tr("record.no-documents")}</p>'}
<h2>{tr("record.consents")}</h2>
{f'<ul class="list" data-testid="consent-ledger">{consent_rows}</ul>' if consent_rows else f'<p data-testid="consent-ledger" data-empty="true">{tr("record.no-consents")}</p>'}
<h2>{tr("record.team")}</h2>
<ul class="list" data-testid="team">{team_rows}</ul>
<form method="post" action="{base}/access" class="inline" data-testid="grant-form">{csrf_field(csrf)}
<label><span data-i18n="record.grant">{e(text("record.grant"))}</span><input type="email" name="email" required data-testid="grant-email"></label>
<button type="submit" data-testid="grant-submit">{tr("record.grant-submit")}</button></form>
<h2>{tr("record.links")}</h2>
{f'<ul class="list">{link_rows}</ul>' if link_rows else f'<p>{tr("record.no-links")}</p>'}
<h2>{tr("record.mail")}</h2>
{f'<ul class="list" data-testid="mail-list">{mail_rows}</ul>' if mail_rows else f'<p>{tr("record.no-mail")}</p>'}
<h2>{tr("record.audit")}</h2>
<table class="list audit" data-testid="audit-log"><thead><tr><th>{tr("record.when")}</th><th>{tr("record.who")}</th>
<th>{tr("record.what")}</th><th>{tr("record.object")}</th></tr></thead><tbody>{event_rows}</tbody></table>
</section>"""
    return page("record.title", body, csrf=csrf, logged_in=True, status=status)


def _link_row(link: PatientLink, now: datetime.datetime, tz: datetime.tzinfo, base: str, csrf: str) -> str:
    state = link.state(now)
    never = tr("record.never")
    revoke = ""
    if state == "active":
        revoke = (f'<form method="post" action="{base}/links/{e(link.id)}/revoke" class="inline">{csrf_field(csrf)}'
                  f'<button type="submit" data-testid="link-revoke">{tr("record.link-revoke")}</button></form>')
    return (f'<li data-testid="patient-link" data-link-id="{e(link.id)}" data-state="{state}"'
            f' data-first-opened="{local(link.first_opened_at, tz) if link.first_opened_at else ""}"'
            f' data-last-opened="{local(link.last_opened_at, tz) if link.last_opened_at else ""}">'
            f'{tr("link." + state)} — {tr("record.expires")} {local(link.expires_at, tz, "%d/%m/%Y")} — '
            f'{tr("record.opened-first")} : {local(link.first_opened_at, tz) or never} — '
            f'{tr("record.opened-last")} : {local(link.last_opened_at, tz) or never} {revoke}</li>')


# closing

def closing_page(csrf: str, token: str, consultation: Consultation,
                 documents: Sequence[DocumentLike], shared: Collection[str] = (), *, logged_in: bool) -> web.Response:
    closed = consultation.state.value == "closed"
    items = "".join(
        f'<li data-testid="doc-item" data-document-id="{e(d.id)}"><a href="/c/{e(token)}/files/{e(d.id)}"'
        f' target="_blank" rel="noopener">{e(d.name)}</a> <span class="muted">({tr("source." + d.source)},'
        f' {_size(d.size)})</span>'
        f' <label class="share"><input type="checkbox" data-testid="doc-share" data-document-id="{e(d.id)}"'
        f'{" checked" if d.id in shared else ""}{" disabled" if closed else ""}> {tr("closing.share")}</label>'
        + ("" if closed or d.source != "closing" else
           f' <button type="button" data-testid="doc-remove" data-document-id="{e(d.id)}"'
           f' aria-label="{e(text("closing.remove"))} {e(d.name)}">{tr("closing.remove")}</button>')
        + "</li>" for d in documents)
    controls = ""
    if not closed:
        controls = f"""<div class="stack">
<label class="file-import"><span data-i18n="closing.import">{e(text("closing.import"))}</span>
<input type="file" multiple data-testid="doc-import" aria-describedby="import-hint"></label>
<p id="import-hint" class="muted">{tr("closing.import-hint")}</p>
<p class="form-error" role="alert" data-testid="closing-error" hidden></p>
<p class="muted" role="status" aria-live="polite" data-testid="closing-progress"></p>
</div>"""
    state_note = (f'<p role="status" data-testid="act-closed">{tr("closing.closed")}</p>' if closed else
                  f'<p data-testid="ended">{tr("closing.ended")}</p>')
    close_button = "" if closed else (
        f'<button type="button" class="primary" data-testid="close-act">{tr("closing.close")}</button>'
        f'<p class="form-notice" role="status" data-testid="close-result" hidden></p>')
    body = f"""<section class="card" aria-labelledby="closing-title" data-testid="closing-page"
 data-token="{e(token)}" data-state="{e(consultation.state.value)}">
<h1 id="closing-title">{tr("closing.title")}</h1>{state_note}{controls}
<h2>{tr("closing.list")}</h2>
<ul class="list" data-testid="doc-list">{items}</ul>
<p data-testid="doc-empty"{" hidden" if items else ""}>{tr("closing.none")}</p>
{close_button}
{f'<p><a href="/">{tr("closing.back")}</a></p>' if logged_in else ""}
</section>"""
    return page("closing.title", body, csrf=csrf, logged_in=logged_in, script="closing.js")


# the patient's access

def access_form_page(csrf: str, token: str, *, error: str | None = None, remaining: int | None = None,
                     status: int = 200) -> web.Response:
    extra = ""
    if remaining is not None:
        extra = f' {tr("access.remaining")} <span data-testid="attempts-left">{remaining}</span>'
    body = f"""<section class="card narrow" aria-labelledby="access-title">
<h1 id="access-title">{tr("access.title")}</h1>
<p>{tr("access.intro")}</p>{alert(error, extra)}
<form method="post" action="/d/{e(token)}" class="stack" data-testid="access-form">{csrf_field(csrf)}
<label><span data-i18n="access.birth">{e(text("access.birth"))}</span>
<input type="date" name="date_of_birth" required data-testid="access-birth"></label>
<button type="submit" class="primary" data-testid="access-submit">{tr("access.submit")}</button>
</form></section>"""
    return page("access.title", body, csrf=csrf, logged_in=False, status=status)


def access_list_page(csrf: str, token: str, documents: Sequence[DocumentLike]) -> web.Response:
    items = "".join(
        f'<li data-testid="access-document" data-document-id="{e(d.id)}">{e(d.name)}'
        f' <span class="muted">({_size(d.size)})</span>'
        f' <a href="/d/{e(token)}/documents/{e(d.id)}" target="_blank" rel="noopener" data-testid="access-view">{tr("access.view")}</a>'
        f' <a href="/d/{e(token)}/documents/{e(d.id)}?download=1" data-testid="access-download">{tr("access.download")}</a></li>'
        for d in documents)
    listing = f'<ul class="list" data-testid="access-documents">{items}</ul>' if items else f'<p>{tr("access.none")}</p>'
    body = f"""<section class="card" aria-labelledby="access-title">
<h1 id="access-title">{tr("access.list")}</h1>{listing}</section>"""
    return page("access.list", body, csrf=csrf, logged_in=False)
