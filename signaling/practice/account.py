"""The practitioner's own account: change one's password (the old one required, other sessions closed)."""

from __future__ import annotations

from aiohttp import web

from .. import keys as app_keys
from .auth import SESSION_COOKIE, require_session
from .html import alert, csrf_field, e, notice, page
from .texts import text, tr
from .views import form

MIN_PASSWORD_CHARS = 10


def password_page(csrf: str, *, error: str | None = None, done: bool = False, status: int = 200) -> web.Response:
    def field(name: str, key: str, autocomplete: str) -> str:
        return (f'<label><span data-i18n="{key}">{e(text(key))}</span>'
                f'<input type="password" name="{name}" autocomplete="{autocomplete}" required'
                f' data-testid="account-{name}"></label>')

    body = f"""<section class="card narrow" aria-labelledby="account-title">
<h1 id="account-title">{tr("account.title")}</h1>{alert(error)}{notice("account.changed" if done else None)}
<form method="post" action="/account/password" class="stack" data-testid="account-form">{csrf_field(csrf)}
{field("old", "account.old", "current-password")}
{field("new", "account.new", "new-password")}
{field("confirm", "account.confirm", "new-password")}
<button type="submit" class="primary" data-testid="account-submit">{tr("account.submit")}</button>
</form></section>"""
    return page("account.title", body, csrf=csrf, logged_in=True, status=status)


async def password_form(request: web.Request) -> web.Response:
    session = await require_session(request)
    return password_page(session.csrf_token)


async def change_password(request: web.Request) -> web.Response:
    session = await require_session(request)
    data = await form(request)
    old, new = data.get("old", ""), data.get("new", "")
    if len(new) < MIN_PASSWORD_CHARS:
        return password_page(session.csrf_token, error="account.too-short", status=400)
    if new != data.get("confirm", ""):
        return password_page(session.csrf_token, error="account.mismatch", status=400)
    ended = await request.config_dict[app_keys.CLINIC].practice.change_password(
        session.practitioner.id, old, new, request.cookies.get(SESSION_COOKIE, ""))
    if ended is None:
        return password_page(session.csrf_token, error="account.wrong-old", status=403)
    return password_page(session.csrf_token, done=True)


def setup_account_routes(app: web.Application) -> None:
    app.router.add_get("/account/password", password_form)
    app.router.add_post("/account/password", change_password)
