"""Refusals as a person or a script sees them: plain French pages (never a stack trace) and JSON problems."""

from __future__ import annotations

import html

from aiohttp import web

_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — Teleconsult</title>
<link rel="stylesheet" href="/static/css/app.css"></head>
<body><main class="notice" data-testid="error-page" data-status="{status}">
<h1>{title}</h1><p>{text}</p>
<p lang="en" class="translation">{english}</p>
</main></body></html>
"""

# kind -> (status, French title, French text, English text)
MESSAGES = {
    "invitation-unknown": (404, "Lien d'invitation invalide",
          "Ce lien ne correspond à aucune consultation. Vérifiez que vous avez copié "
          "le lien en entier, ou demandez un nouveau lien à votre praticien.",
          "This invitation link is not valid. Check that you copied the whole link, or ask your practitioner for a new one."),
    "invitation-gone": (410, "Lien d'invitation expiré",
          "Ce lien n'est plus valable : il a expiré ou a été révoqué. "
          "Demandez un nouveau lien à votre praticien.",
          "This invitation link has expired or was revoked. Ask your practitioner for a new one."),
    "appointment-cancelled": (410, "Rendez-vous annulé",
          "Ce rendez-vous a été annulé : ce lien ne fonctionne plus. Contactez le cabinet pour en convenir d'un autre.",
          "This appointment was cancelled: this link no longer works. Contact the practice to arrange another one."),
    "appointment-moved": (410, "Rendez-vous déplacé",
          "Ce rendez-vous a été déplacé : ce lien ne fonctionne plus. Le nouveau lien vous a été envoyé par "
          "e-mail ; sinon, contactez le cabinet.",
          "This appointment was moved: this link no longer works. The new link was sent to you by email; "
          "otherwise, contact the practice."),
    "csrf": (403, "Formulaire expiré",
             "Ce formulaire a expiré ou ne vient pas de Teleconsult (jeton CSRF absent ou faux). "
             "Rechargez la page, puis recommencez.",
             "This form has expired or did not come from Teleconsult (missing or wrong CSRF token). Reload the page and try again."),
    "too-many": (429, "Trop de tentatives",
                 "Trop de tentatives ont échoué récemment. Patientez quelques minutes avant de réessayer.",
                 "Too many attempts failed recently. Wait a few minutes before trying again."),
    "link-gone": (410, "Lien expiré",
                  "Ce lien n'est plus valable : il a expiré, a été révoqué ou bloqué après trop d'essais. "
                  "Demandez un nouveau lien à votre praticien.",
                  "This link is no longer valid: it expired, was revoked or was locked after too many attempts. Ask your practitioner for a new one."),
    "served-elsewhere": (409, "Consultation sur un autre serveur",
                         "Cette consultation a lieu sur un autre serveur. Rechargez la page pour la rejoindre.",
                         "This consultation is served by another server. Reload the page to join it."),
    "node-stopping": (503, "Serveur en cours d'arrêt",
                      "Ce serveur s'arrête. Rechargez la page pour rejoindre la consultation sur un autre serveur.",
                      "This server is stopping. Reload the page to join the consultation on another server."),
    "not-found": (404, "Page introuvable",
                  "Cette adresse ne correspond à aucune page de Teleconsult.",
                  "This address matches no Teleconsult page."),
    "server-error": (500, "Erreur du serveur",
                     "Une erreur est survenue de notre côté. Réessayez dans un instant.",
                     "Something went wrong on our side. Please try again in a moment."),
}


def error_page(kind: str) -> web.Response:
    status, title, text, english = MESSAGES[kind]
    body = _PAGE.format(status=status, title=html.escape(title), text=html.escape(text), english=html.escape(english))
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8")


def problem(status: int, code: str, message: str, **extra: object) -> web.Response:
    """The JSON refusal of an API route: `error` is the code pages translate, `message` for people reading raw HTTP."""
    return web.json_response({"error": code, "message": message, **extra}, status=status,
                             headers={"Cache-Control": "no-store"})
