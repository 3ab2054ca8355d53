"""Every string of the practice pages, French and English.

The server renders the French text with a `data-i18n` key; the browser merges
this table (served as /practice/strings.js) into web/js/i18n.js, whose
translatePage() switches to English when the user picks it.
"""

from __future__ import annotations

import html
import json
from typing import Final

STRINGS: Final[dict[str, tuple[str, str]]] = {
    "nav.day": ("Ma journée", "My day"),
    "nav.patients": ("Patients", "Patients"),
    "nav.logout": ("Se déconnecter", "Log out"),
    "nav.main": ("Navigation principale", "Main navigation"),
    "language": ("Langue", "Language"),
    "login.title": ("Connexion praticien", "Practitioner login"),
    "login.email": ("Adresse e-mail", "Email address"),
    "login.password": ("Mot de passe", "Password"),
    "login.submit": ("Se connecter", "Log in"),
    "login.failed": ("E-mail ou mot de passe incorrect.", "Wrong email or password."),
    "login.too-many": ("Trop de tentatives ont échoué : patientez quelques minutes avant de réessayer.",
                       "Too many failed attempts: wait a few minutes before trying again."),
    "day.title": ("Ma journée", "My day"),
    "day.date": ("Jour", "Day"),
    "day.show": ("Afficher", "Show"),
    "day.empty": ("Aucune consultation ce jour-là.", "No consultation that day."),
    "day.time": ("Heure", "Time"),
    "day.patient": ("Patient", "Patient"),
    "day.status": ("Statut", "Status"),
    "day.action": ("Action", "Action"),
    "day.join": ("Rejoindre", "Join"),
    "day.close": ("Clôturer", "Close"),
    "status.scheduled": ("Patient absent", "Patient absent"),
    "status.absent": ("Patient absent", "Patient absent"),
    "status.waiting-room": ("Patient en salle d'attente", "Patient in the waiting room"),
    "status.in-call": ("En consultation", "In call"),
    "status.ended": ("Terminée, à clôturer", "Ended, to close"),
    "status.closed": ("Clôturée", "Closed"),
    "readiness.good": ("connexion bonne", "good connection"),
    "readiness.fair": ("connexion moyenne", "fair connection"),
    "readiness.poor": ("connexion faible", "poor connection"),
    "readiness.failed": ("test de connexion échoué", "connection test failed"),
    "readiness.untested": ("connexion non testée", "connection not tested"),
    "patients.title": ("Patients", "Patients"),
    "patients.new": ("Nouveau patient", "New patient"),
    "patients.empty": ("Aucun patient pour le moment.", "No patient yet."),
    "patient.name": ("Nom et prénom", "Full name"),
    "patient.email": ("E-mail", "Email"),
    "patient.birth": ("Date de naissance", "Date of birth"),
    "patient.save": ("Enregistrer", "Save"),
    "patient.new-title": ("Nouveau patient", "New patient"),
    "patient.edit-title": ("Modifier la fiche", "Edit the record"),
    "patient.edit": ("Modifier", "Edit"),
    "error.name": ("Le nom doit compter de 1 à 200 caractères.", "The name must have 1 to 200 characters."),
    "error.email": ("L'adresse e-mail n'est pas valide.", "The email address is not valid."),
    "error.birth": ("La date de naissance n'est pas valide.", "The date of birth is not valid."),
    "error.when": ("La date ou l'heure n'est pas valide.", "The date or time is not valid."),
    "error.colleague": ("Aucun praticien avec cette adresse.", "No practitioner with this address."),
    "error.last-member": ("Le dernier praticien ayant accès ne peut pas être retiré.",
                          "The last practitioner with access cannot be removed."),
    "record.title": ("Dossier patient", "Patient record"),
    "record.identity": ("Identité", "Identity"),
    "record.schedule": ("Programmer une consultation", "Schedule a consultation"),
    "record.date": ("Date", "Date"),
    "record.time": ("Heure", "Time"),
    "record.schedule-submit": ("Programmer", "Schedule"),
    "record.scheduled": ("Consultation programmée ; l'invitation part par e-mail.",
                         "Consultation scheduled; the invitation goes by email."),
    "record.consultations": ("Consultations", "Consultations"),
    "record.no-consultations": ("Aucune consultation.", "No consultation."),
    "record.documents": ("Documents", "Documents"),
    "record.no-documents": ("Aucun document.", "No document."),
    "record.download": ("Télécharger", "Download"),
    "record.team": ("Équipe de soins (accès au dossier)", "Care team (access to the record)"),
    "record.grant": ("Donner accès à un confrère (e-mail)", "Give a colleague access (email)"),
    "record.grant-submit": ("Donner accès", "Give access"),
    "record.revoke": ("Retirer l'accès", "Remove access"),
    "record.links": ("Liens envoyés au patient", "Links sent to the patient"),
    "record.no-links": ("Aucun lien envoyé.", "No link sent."),
    "record.link-revoke": ("Révoquer le lien", "Revoke the link"),
    "record.opened-first": ("Première ouverture", "First opened"),
    "record.opened-last": ("Dernière ouverture", "Last opened"),
    "record.never": ("jamais", "never"),
    "record.expires": ("Expire le", "Expires on"),
    "record.mail": ("E-mails au patient", "Emails to the patient"),
    "record.no-mail": ("Aucun e-mail.", "No email."),
    "record.attempts": ("tentatives", "attempts"),
    "record.audit": ("Journal d'audit", "Audit log"),
    "record.when": ("Quand", "When"),
    "record.who": ("Qui", "Who"),
    "record.what": ("Quoi", "What"),
    "record.object": ("Objet", "Object"),
    "link.active": ("actif", "active"),
    "link.revoked": ("révoqué", "revoked"),
    "link.locked": ("bloqué (trop d'essais)", "locked (too many attempts)"),
    "link.expired": ("expiré", "expired"),
    "mail.queued": ("en attente d'envoi", "waiting to be sent"),
    "mail.sent": ("envoyé", "sent"),
    "mail.failed": ("échec définitif", "failed for good"),
    "mail.invitation": ("Invitation", "Invitation"),
    "mail.documents": ("Accès aux documents", "Access to documents"),
    "state.scheduled": ("programmée", "scheduled"),
    "state.waiting": ("en attente", "waiting"),
    "state.in_call": ("en cours", "in call"),
    "state.ended": ("terminée", "ended"),
    "state.closed": ("clôturée", "closed"),
    "source.chat": ("chat", "chat"),
    "source.closing": ("clôture", "closing"),
    "source.recording": ("enregistrement", "recording"),
    "source.whiteboard": ("tableau blanc", "whiteboard"),
    "closing.title": ("Clôture de la consultation", "Closing the consultation"),
    "closing.ended": ("La consultation est terminée.", "The consultation has ended."),
    "closing.import": ("Importer un document", "Import a document"),
    "closing.import-hint": ("Ordonnance, compte rendu… plusieurs fichiers à la fois si besoin.",
                            "Prescription, report… several files at once if needed."),
    "closing.list": ("Documents de la consultation", "Documents of the consultation"),
    "closing.none": ("Aucun document pour le moment.", "No document yet."),
    "closing.remove": ("Retirer", "Remove"),
    "closing.close": ("Clôturer l'acte", "Close the act"),
    "closing.closed": ("L'acte est clôturé.", "The act is closed."),
    "closing.mail-queued": ("Le patient va recevoir un e-mail avec un lien vers ses documents.",
                            "The patient will receive an email with a link to their documents."),
    "closing.no-mail": ("Aucun document : aucun e-mail n'est envoyé au patient.",
                        "No document: no email is sent to the patient."),
    "closing.uploading": ("Envoi en cours…", "Uploading…"),
    "closing.upload-failed": ("L'envoi a échoué : {message}", "The upload failed: {message}"),
    "closing.not-ended": ("La consultation n'est pas terminée : l'acte ne peut pas encore être clôturé.",
                          "The consultation has not ended: the act cannot be closed yet."),
    "closing.back": ("Retour à ma journée", "Back to my day"),
    "access.title": ("Vos documents", "Your documents"),
    "access.intro": ("Pour accéder à vos documents, indiquez votre date de naissance.",
                     "To see your documents, enter your date of birth."),
    "access.birth": ("Date de naissance", "Date of birth"),
    "access.submit": ("Accéder aux documents", "Open my documents"),
    "access.wrong": ("Date de naissance incorrecte.", "Wrong date of birth."),
    "access.remaining": ("Essais restants :", "Attempts left:"),
    "access.too-many": ("Trop d'essais récents : patientez une minute avant de réessayer.",
                        "Too many recent attempts: wait a minute before trying again."),
    "access.list": ("Documents mis à votre disposition", "Documents made available to you"),
    "access.none": ("Aucun document.", "No document."),
    "access.view": ("Ouvrir", "Open"),
    "access.download": ("Télécharger", "Download"),
}


def text(key: str) -> str:
    """The French text of a key (the page's default language)."""
    return STRINGS[key][0]


def tr(key: str, tag: str = "span", attrs: str = "") -> str:
    """An element showing a key's French text, translated in the browser."""
    extra = f" {attrs}" if attrs else ""
    return f'<{tag} data-i18n="{key}"{extra}>{html.escape(text(key))}</{tag}>'


def as_module() -> str:
    """The table as an ES module for the browser: {key: {fr, en}}."""
    table = {key: {"fr": fr, "en": en} for key, (fr, en) in STRINGS.items()}
    return "// generated from signaling/practice_texts.py\nexport default " + json.dumps(table, ensure_ascii=False) + ";\n"
