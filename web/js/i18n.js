// @ts-check
/** The one FR/EN translation table of the browser app; French by default. */

/** @type {Record<string, {fr: string, en: string}>} */
export const STRINGS = {
  language: { fr: "Langue", en: "Language" },
  loading: { fr: "Connexion…", en: "Connecting…" },
  "waiting.title": { fr: "Salle d'attente", en: "Waiting room" },
  "preview.label": { fr: "Aperçu de votre caméra", en: "Your camera preview" },
  "devices.mic": { fr: "Microphone", en: "Microphone" },
  "devices.cam": { fr: "Caméra", en: "Camera" },
  "devices.speaker": { fr: "Haut-parleur", en: "Speaker" },
  "speaker.test": { fr: "Tester le son", en: "Test the sound" },
  "devices.none": { fr: "Aucun appareil", en: "No device" },
  "mic.toggle": { fr: "Micro", en: "Microphone" },
  "mic.level": { fr: "Niveau du micro", en: "Microphone level" },
  "cam.toggle": { fr: "Caméra", en: "Camera" },
  "mic.on": { fr: "Couper le micro", en: "Mute the microphone" },
  "mic.off": { fr: "Activer le micro", en: "Unmute the microphone" },
  "cam.on": { fr: "Couper la caméra", en: "Turn the camera off" },
  "cam.off": { fr: "Activer la caméra", en: "Turn the camera on" },
  join: { fr: "Accéder à la vidéo consultation", en: "Enter the video consultation" },
  ready: { fr: "Je suis prêt", en: "I'm ready" },
  "peer.practitioner": { fr: "Votre praticien", en: "Your practitioner" },
  "peer.patient": { fr: "Votre patient", en: "Your patient" },
  "status.absent": { fr: "{peer} n'est pas encore connecté.", en: "{peer} is not connected yet." },
  "status.waiting-room": { fr: "{peer} est dans la salle d'attente.", en: "{peer} is in the waiting room." },
  "status.waiting-for-you": { fr: "{peer} vous attend : cliquez sur « Je suis prêt ».", en: "{peer} is waiting for you: click “I'm ready”." },
  "status.needs-consent": { fr: "{peer} vous attend : la consultation commence après votre accord.", en: "{peer} is waiting for you: the consultation starts once you agree." },
  "status.invited": { fr: "{peer} a été invité à vous rejoindre. Veuillez patienter…", en: "{peer} has been invited to join you. Please wait…" },
  "status.in-call": { fr: "{peer} est en consultation.", en: "{peer} is in the consultation." },
  "wait.told": { fr: "Votre praticien a été prévenu de votre arrivée.", en: "Your practitioner has been told you are here." },
  "wait.minutes": { fr: "Rendez-vous à {time} : environ {minutes} min d'attente.", en: "Appointment at {time}: about {minutes} min to wait." },
  "wait.soon": { fr: "Rendez-vous à {time} : il vous rejoint dès que possible.", en: "Appointment at {time}: they will be with you as soon as possible." },
  "call.title": { fr: "Vidéo consultation", en: "Video consultation" },
  "call.toolbar": { fr: "Commandes de l'appel", en: "Call controls" },
  "remote.label": { fr: "Vidéo de votre correspondant", en: "Your correspondent's video" },
  "local.label": { fr: "Votre caméra", en: "Your camera" },
  "call.connecting": { fr: "Connexion de la vidéo…", en: "Connecting the video…" },
  "call.peer-away": { fr: "{peer} s'est déconnecté. Il peut revenir avec son lien.", en: "{peer} got disconnected and can come back with their link." },
  "call.peer-left": { fr: "{peer} a quitté l'appel.", en: "{peer} left the call." },
  "call.media-failed": { fr: "La connexion vidéo a été perdue, nouvelle tentative…", en: "The video connection was lost, retrying…" },
  "screen.toggle": { fr: "Partager l'écran", en: "Share screen" },
  "screen.on": { fr: "Arrêter le partage d'écran", en: "Stop sharing the screen" },
  "screen.off": { fr: "Partager votre écran", en: "Share your screen" },
  "screen.remote": { fr: "Écran partagé par votre correspondant", en: "Screen shared by your correspondent" },
  "screen.failed": { fr: "Le partage d'écran n'a pas pu démarrer.", en: "Screen sharing could not start." },
  "remote.muted": { fr: "Micro coupé", en: "Microphone muted" },
  "quality.self": { fr: "Votre connexion : {level}", en: "Your connection: {level}" },
  "quality.peer": { fr: "{peer} : {level}", en: "{peer}: {level}" },
  "quality.good": { fr: "bonne", en: "good" },
  "quality.fair": { fr: "moyenne", en: "fair" },
  "quality.poor": { fr: "faible", en: "poor" },
  "quality.unknown": { fr: "en mesure…", en: "measuring…" },
  "pip.toggle": { fr: "Incrustation", en: "Picture-in-picture" },
  "pip.off": { fr: "Afficher votre correspondant dans une fenêtre flottante", en: "Show your correspondent in a floating window" },
  "pip.on": { fr: "Fermer la fenêtre flottante", en: "Close the floating window" },
  "pip.title": { fr: "Vidéo consultation — Teleconsult", en: "Video consultation — Teleconsult" },
  "pip.note": { fr: "Votre correspondant et les commandes de l'appel sont dans la fenêtre flottante.", en: "Your correspondent and the call controls are in the floating window." },
  "pip.failed": { fr: "La fenêtre flottante n'a pas pu s'ouvrir.", en: "The floating window could not open." },
  "devices.button": { fr: "Micro et caméra", en: "Mic and camera" },
  "devices.title": { fr: "Changer de micro ou de caméra", en: "Change the microphone or camera" },
  "devices.close": { fr: "Fermer", en: "Close" },
  "role.patient": { fr: "Patient", en: "Patient" },
  "role.practitioner": { fr: "Praticien", en: "Practitioner" },
  "placeholder.camera-off": { fr: "caméra coupée", en: "camera off" },
  "placeholder.away": { fr: "absent de l'appel", en: "not in the call" },
  hangup: { fr: "Raccrocher", en: "Hang up" },
  "ended.title": { fr: "La consultation est terminée", en: "The consultation has ended" },
  "ended.text": { fr: "Vous pouvez fermer cette page.", en: "You can close this page." },
  "replaced.title": { fr: "Consultation ouverte dans un autre onglet", en: "Consultation opened in another tab" },
  "replaced.text": {
    fr: "Cette page a été déconnectée car le même lien a été ouvert ailleurs. Fermez cette page ou rechargez-la pour reprendre ici.",
    en: "This page was disconnected because the same link was opened elsewhere. Close this page, or reload it to continue here.",
  },
  "net.reconnecting": { fr: "Connexion perdue, reconnexion…", en: "Connection lost, reconnecting…" },
  "device.denied": {
    fr: "L'accès à la caméra ou au micro a été refusé. Autorisez-le dans la barre d'adresse du navigateur, puis rechargez la page. Vous pouvez aussi continuer sans.",
    en: "Access to the camera or microphone was denied. Allow it from the browser's address bar, then reload. You can also continue without.",
  },
  "device.missing": {
    fr: "Aucune caméra ni aucun micro n'a été trouvé. Vous pouvez tout de même rejoindre la consultation.",
    en: "No camera or microphone was found. You can still join the consultation.",
  },
  "device.busy": {
    fr: "La caméra ou le micro est utilisé par une autre application. Fermez-la, puis rechargez la page.",
    en: "The camera or microphone is used by another application. Close it, then reload the page.",
  },
  "device.audio-only": {
    fr: "Caméra indisponible : vous rejoindrez la consultation avec le micro seulement.",
    en: "Camera unavailable: you will join with the microphone only.",
  },
  "net.test": { fr: "Tester ma connexion", en: "Test my connection" },
  "net.running": { fr: "Test de la connexion en cours (10 secondes au plus)…", en: "Testing the connection (10 seconds at most)…" },
  "net.details": { fr: "Détails", en: "Details" },
  "net.good": { fr: "Votre connexion est bonne : la vidéo consultation fonctionnera bien.", en: "Your connection is good: the video consultation will work well." },
  "net.fair": {
    fr: "Votre connexion est moyenne : la consultation est possible, mais l'image pourra être saccadée par moments.",
    en: "Your connection is fair: the consultation will work, but the picture may stutter at times.",
  },
  "net.poor": {
    fr: "Votre connexion est faible : l'image risque de se figer. Rapprochez-vous de votre box, ou fermez les autres applications qui utilisent Internet.",
    en: "Your connection is poor: the picture may freeze. Move closer to your router, or close other applications that use the Internet.",
  },
  "net.failed.ice": {
    fr: "La connexion avec le serveur n'a pas pu s'établir : ce réseau bloque peut-être la vidéo. Essayez un autre réseau (par exemple le partage de connexion de votre téléphone).",
    en: "The connection to the server could not be made: this network may block video. Try another network (for example your phone's hotspot).",
  },
  "net.failed.channel": { fr: "Le test n'a pas pu démarrer. Rechargez la page et réessayez.", en: "The test could not start. Reload the page and try again." },
  "net.failed.timeout": { fr: "Le test a pris trop de temps : la connexion est très lente ou instable.", en: "The test took too long: the connection is very slow or unstable." },
  "net.failed.server": { fr: "Le serveur n'a pas répondu au test. Vérifiez votre connexion Internet, puis réessayez.", en: "The server did not answer the test. Check your Internet connection, then try again." },
  "net.failed.unsupported": { fr: "Ce navigateur ne permet pas la vidéo. Utilisez une version récente de Firefox, Chrome, Edge ou Safari.", en: "This browser cannot do video. Use a recent Firefox, Chrome, Edge or Safari." },
  "net.rtt": { fr: "Temps aller-retour", en: "Round-trip time" },
  "net.jitter": { fr: "Gigue", en: "Jitter" },
  "net.loss": { fr: "Pertes", en: "Packet loss" },
  "net.up": { fr: "Envoi", en: "Upload" },
  "net.down": { fr: "Réception", en: "Download" },
  "net.path": { fr: "Chemin", en: "Path" },
  "net.direct": { fr: "direct (UDP)", en: "direct (UDP)" },
  "net.relay": { fr: "par un relais TURN (ce réseau en a besoin)", en: "through a TURN relay (this network needs it)" },
  "net.unknown": { fr: "non mesuré", en: "not measured" },
  "consent.title": { fr: "Avant la consultation", en: "Before the consultation" },
  "consent.accept": { fr: "J'accepte", en: "I agree" },
  "consent.refuse": { fr: "Je refuse", en: "I do not agree" },
  "consent.refused": {
    fr: "Sans votre accord, la consultation ne peut pas avoir lieu par vidéo. Rien n'a été transmis.",
    en: "Without your consent the consultation cannot take place over video. Nothing was sent.",
  },
  "consent.contact": { fr: "Pour convenir d'un autre rendez-vous, contactez le cabinet : {contact}", en: "To arrange another appointment, contact the practice: {contact}" },
  "consent.contact-usual": { fr: "Pour convenir d'un autre rendez-vous, contactez votre praticien comme d'habitude.", en: "To arrange another appointment, contact your practitioner as usual." },
  "consent.review": { fr: "Relire la notice", en: "Read the notice again" },
  "consent.withdraw": { fr: "Retirer mon accord à la téléconsultation", en: "Withdraw my consent to the teleconsultation" },
  "readiness.consent.given": { fr: "accord donné", en: "consent given" },
  "readiness.consent.refused": { fr: "accord refusé", en: "consent refused" },
  "readiness.consent.withdrawn": { fr: "accord retiré", en: "consent withdrawn" },
  "readiness.consent.pending": { fr: "accord pas encore donné", en: "consent not given yet" },
  "readiness.consent-only": { fr: "Patient : {consent}", en: "Patient: {consent}" },
  "readiness.line": { fr: "Connexion {peer} : {conn} · {devices}", en: "{peer} connection: {conn} · {devices}" },
  "readiness.of-patient": { fr: "du patient", en: "Patient's" },
  "readiness.of-practitioner": { fr: "du praticien", en: "Practitioner's" },
  "readiness.untested": { fr: "pas encore testée", en: "not tested yet" },
  "readiness.failed": { fr: "le test a échoué", en: "the test failed" },
  "readiness.relay": { fr: "par relais", en: "relayed" },
  "readiness.all-ready": { fr: "micro et caméra prêts", en: "microphone and camera ready" },
  "readiness.mic.on": { fr: "micro prêt", en: "microphone ready" },
  "readiness.mic.off": { fr: "micro coupé", en: "microphone muted" },
  "readiness.mic.missing": { fr: "pas de micro", en: "no microphone" },
  "readiness.camera.on": { fr: "caméra prête", en: "camera ready" },
  "readiness.camera.off": { fr: "caméra coupée", en: "camera off" },
  "readiness.camera.missing": { fr: "pas de caméra", en: "no camera" },
  "chat.toggle": { fr: "Messages", en: "Messages" },
  "chat.title": { fr: "Messages", en: "Messages" },
  "chat.close": { fr: "Fermer les messages", en: "Close the messages" },
  "chat.unread": { fr: "{n} non lu(s)", en: "{n} unread" },
  "chat.input": { fr: "Votre message", en: "Your message" },
  "chat.send": { fr: "Envoyer", en: "Send" },
  "chat.attach": { fr: "Fichier", en: "File" },
  "chat.file": { fr: "Joindre un fichier (image, son, vidéo, PDF…)", en: "Attach a file (image, audio, video, PDF…)" },
  "chat.progress": { fr: "Progression de l'envoi", en: "Upload progress" },
  "chat.cancel": { fr: "Annuler l'envoi", en: "Cancel the upload" },
  "chat.uploading": { fr: "Envoi de « {name} »…", en: "Sending “{name}”…" },
  "chat.cancelled": { fr: "Envoi annulé.", en: "Upload cancelled." },
  "chat.busy": { fr: "Un fichier est déjà en cours d'envoi.", en: "A file is already being sent." },
  "chat.too-large": { fr: "Ce fichier est trop volumineux : {max} au maximum.", en: "This file is too large: {max} at most." },
  "chat.disk-full": { fr: "Le serveur manque d'espace disque : le fichier n'a pas été enregistré.", en: "The server is short of disk space: the file was not saved." },
  "chat.type-refused": { fr: "Ce type de fichier n'est pas accepté.", en: "This type of file is not accepted." },
  "chat.quota-side": { fr: "Vous avez déjà partagé le maximum de fichiers pour cette consultation.", en: "You have already shared as many files as this consultation allows." },
  "chat.quota-consultation": { fr: "Cette consultation a atteint le maximum de fichiers partagés.", en: "This consultation has reached its limit of shared files." },
  "chat.closed": { fr: "L'acte est clôturé : plus aucun fichier ne peut y être ajouté.", en: "The act is closed: no more files can be added to it." },
  "chat.upload-failed": { fr: "L'envoi du fichier a échoué. Vérifiez votre connexion et réessayez.", en: "The file could not be sent. Check your connection and try again." },
  "chat.too-long": { fr: "Message trop long : {max} caractères au maximum.", en: "Message too long: {max} characters at most." },
  "chat.offline": { fr: "Connexion perdue : le message n'a pas été envoyé.", en: "Connection lost: the message was not sent." },
  "chat.rate": { fr: "Trop de messages d'un coup : patientez un instant.", en: "Too many messages at once: wait a moment." },
  "chat.refused": { fr: "Ce message n'a pas pu être envoyé.", en: "This message could not be sent." },
  "chat.you": { fr: "Vous", en: "You" },
  "chat.open-pdf": { fr: "Ouvrir « {name} » (PDF)", en: "Open “{name}” (PDF)" },
  "chat.download": { fr: "Télécharger « {name} »", en: "Download “{name}”" },
  "chat.removed": { fr: "Fichier retiré", en: "File removed" },
  "chat.who.practitioner": { fr: "Le praticien", en: "The practitioner" },
  "chat.who.patient": { fr: "Le patient", en: "The patient" },
  "chat.system.joined": { fr: "{who} a rejoint l'appel", en: "{who} joined the call" },
  "chat.system.joined.self": { fr: "Vous avez rejoint l'appel", en: "You joined the call" },
  "chat.system.left": { fr: "{who} a quitté l'appel", en: "{who} left the call" },
  "chat.system.left.self": { fr: "Vous avez quitté l'appel", en: "You left the call" },
  "chat.system.ended": { fr: "La consultation est terminée", en: "The consultation has ended" },
  "recording.disk-full": { fr: "Le serveur manque d'espace disque : l'enregistrement ne peut pas démarrer.", en: "The server is short of disk space: the recording cannot start." },
  "recording.toggle": { fr: "Enregistrer", en: "Record" },
  "recording.button.stop": { fr: "Arrêter l'enregistrement", en: "Stop recording" },
  "recording.button.cancel": { fr: "Annuler la demande", en: "Cancel the request" },
  "recording.toggle.start": { fr: "Enregistrer la consultation", en: "Record the consultation" },
  "recording.toggle.stop": { fr: "Arrêter l'enregistrement", en: "Stop recording" },
  "recording.toggle.cancel": { fr: "Annuler la demande d'enregistrement", en: "Cancel the recording request" },
  "recording.on": { fr: "Enregistrement en cours", en: "Recording" },
  "recording.starting": { fr: "Enregistrement : démarrage dès que votre correspondant voit l'avis…", en: "Recording: starts as soon as your correspondent sees the notice…" },
  "recording.short": { fr: "Enregistrement", en: "Recording" },
  "recording.asking": { fr: "Demande d'accord envoyée à votre correspondant…", en: "Asking your correspondent for consent…" },
  "recording.refused": { fr: "Votre correspondant a refusé l'enregistrement : rien n'a été enregistré.", en: "Your correspondent refused the recording: nothing was recorded." },
  "recording.failed": { fr: "L'enregistrement n'a pas pu être lancé.", en: "The recording could not be started." },
  "recording.consent.title": { fr: "Enregistrement de la consultation", en: "Recording the consultation" },
  "recording.consent.text": {
    fr: "Votre correspondant souhaite enregistrer la consultation (image et son). L'enregistrement sera joint à votre dossier. Acceptez-vous ?",
    en: "Your correspondent wishes to record the consultation (picture and sound). The recording will be added to your record. Do you accept?",
  },
  "chat.system.recording-started": { fr: "{who} a lancé l'enregistrement de la consultation", en: "{who} started recording the consultation" },
  "chat.system.recording-started.self": { fr: "Vous avez lancé l'enregistrement de la consultation", en: "You started recording the consultation" },
  "chat.system.recording-stopped-disk-full": { fr: "L'enregistrement s'est arrêté : le serveur manque d'espace disque (ce qui a été enregistré est conservé)", en: "Recording stopped: the server is short of disk space (what was recorded is kept)" },
  "chat.system.recording-stopped": { fr: "L'enregistrement de la consultation est terminé", en: "Recording of the consultation stopped" },
  "recording.consent.accept": { fr: "Accepter", en: "Accept" },
  "recording.consent.refuse": { fr: "Refuser", en: "Refuse" },
  "error.generic": { fr: "Une erreur est survenue : {message}", en: "Something went wrong: {message}" },
  // the whiteboard (web/js/whiteboard.js)
  "wb.toggle": { fr: "Tableau", en: "Whiteboard" },
  "wb.open": { fr: "Ouvrir le tableau partagé", en: "Open the shared whiteboard" },
  "wb.close": { fr: "Fermer le tableau partagé", en: "Close the shared whiteboard" },
  "wb.tools": { fr: "Outils du tableau", en: "Whiteboard tools" },
  "wb.canvas": { fr: "Tableau partagé", en: "Shared whiteboard" },
  "wb.color.black": { fr: "Crayon noir", en: "Black pen" },
  "wb.color.red": { fr: "Crayon rouge", en: "Red pen" },
  "wb.color.blue": { fr: "Crayon bleu", en: "Blue pen" },
  "wb.color.green": { fr: "Crayon vert", en: "Green pen" },
  "wb.color.yellow": { fr: "Crayon jaune", en: "Yellow pen" },
  "wb.color.white": { fr: "Crayon blanc", en: "White pen" },
  "wb.width.thin": { fr: "Trait fin", en: "Thin line" },
  "wb.width.medium": { fr: "Trait moyen", en: "Medium line" },
  "wb.width.thick": { fr: "Trait épais", en: "Thick line" },
  "wb.eraser": { fr: "Gomme", en: "Eraser" },
  "wb.eraser.title": { fr: "Gomme : efface les traits qu'elle touche", en: "Eraser: removes the strokes it touches" },
  "wb.undo": { fr: "Annuler", en: "Undo" },
  "wb.undo.title": { fr: "Annuler votre dernière action", en: "Undo your last action" },
  "wb.redo": { fr: "Rétablir", en: "Redo" },
  "wb.redo.title": { fr: "Rétablir votre dernière action annulée", en: "Redo your last undone action" },
  "wb.clear": { fr: "Tout effacer", en: "Clear" },
  "wb.clear.title": { fr: "Effacer tous les traits de cette page", en: "Clear every stroke of this page" },
  "wb.clear.confirm": { fr: "Effacer toute la page ?", en: "Clear the whole page?" },
  "wb.clear.text": {
    fr: "Tous les traits de cette page disparaîtront, pour vous et votre correspondant. Vous pourrez annuler.",
    en: "Every stroke of this page will disappear, for you and your correspondent. You can undo it.",
  },
  "wb.cancel": { fr: "Annuler", en: "Cancel" },
  "wb.file": { fr: "Afficher un document (image ou PDF) sur le tableau", en: "Show a document (image or PDF) on the whiteboard" },
  "wb.file.button": { fr: "Document…", en: "Document…" },
  "wb.prev": { fr: "Page précédente", en: "Previous page" },
  "wb.next": { fr: "Page suivante", en: "Next page" },
  "wb.page": { fr: "Page {n} sur {total}", en: "Page {n} of {total}" },
  "wb.blank": { fr: "Page blanche", en: "Blank page" },
  "wb.blank.title": { fr: "Retirer le document et revenir au tableau blanc", en: "Remove the document and go back to the blank board" },
  "wb.save": { fr: "Enregistrer", en: "Save" },
  "wb.save.title": { fr: "Enregistrer le tableau en image dans les documents de la consultation", en: "Save the board as a picture in the consultation's documents" },
  "wb.saved": { fr: "Tableau enregistré dans les documents de la consultation.", en: "Board saved in the consultation's documents." },
  "wb.pointer": { fr: "Pointeur : {who}", en: "Pointer: {who}" },
  "wb.uploading": { fr: "Envoi du document…", en: "Sending the document…" },
  "wb.uploaded": { fr: "Document affiché sur le tableau.", en: "Document shown on the whiteboard." },
  "wb.too-large": { fr: "Ce document est trop volumineux.", en: "This document is too large." },
  "wb.bad-type": { fr: "Seules les images (PNG, JPEG, GIF, WebP) et les PDF peuvent être affichés.", en: "Only images (PNG, JPEG, GIF, WebP) and PDF documents can be shown." },
  "wb.disk-full": { fr: "Le serveur manque d'espace disque : le document n'a pas été enregistré.", en: "The server is short of disk space: the document was not saved." },
  "wb.too-many": { fr: "Trop de documents ont déjà été affichés pendant cette consultation.", en: "Too many documents were already shown during this consultation." },
  "wb.upload-failed": { fr: "Le document n'a pas pu être affiché. Réessayez.", en: "The document could not be shown. Try again." },
  "wb.full": { fr: "Le tableau est plein : effacez des traits pour continuer.", en: "The board is full: erase some strokes to go on." },
  "wb.refused": { fr: "Cette action n'a pas pu être faite sur le tableau.", en: "This could not be done on the whiteboard." },
};

const STORAGE_KEY = "teleconsult.lang";

/** @returns {"fr"|"en"} */
export function currentLang() {
  const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
  return saved === "en" ? "en" : "fr";
}

/** @param {"fr"|"en"} lang */
export function setLang(lang) {
  globalThis.localStorage?.setItem(STORAGE_KEY, lang);
}

/**
 * Translate a key, replacing {name} placeholders.
 * @param {string} key
 * @param {Record<string, string>} [vars]
 */
export function t(key, vars = {}) {
  const entry = STRINGS[key];
  if (!entry) return key;
  let text = entry[currentLang()];
  for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, value);
  return text;
}

/** Apply translations to every element carrying data-i18n / data-i18n-title / data-i18n-aria under root. */
export function translatePage(root = document) {
  root.documentElement.lang = currentLang();
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(/** @type {string} */ (el.getAttribute("data-i18n")));
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) {
    el.setAttribute("title", t(/** @type {string} */ (el.getAttribute("data-i18n-title"))));
  }
  for (const el of root.querySelectorAll("[data-i18n-aria]")) {
    const text = t(/** @type {string} */ (el.getAttribute("data-i18n-aria")));
    el.setAttribute("aria-label", text);
    el.setAttribute("title", text);
  }
}
