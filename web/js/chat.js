// @ts-check
/**
 * The call's chat panel: messages over the signaling socket, files over HTTP
 * (progress bar and cancel), an unread badge while the panel is closed.
 * Everything shown goes through i18n; message text is only ever textContent.
 */

import { byTestId } from "./dom.js";
import { currentLang, t } from "./i18n.js";
import { fileUrl, uploadFile } from "./protocol.js";

/**
 * @typedef {{id: string, name: string, media_type: string, size: number, url: string}} SharedDocument
 * @typedef {{type: "chat-message", id: string, kind: "text"|"file"|"system", author: string, at: string,
 *   text?: string, document?: SharedDocument|null, key?: string, params?: Record<string, string>}} ChatMessage
 * @typedef {{status: number, body: any}} UploadResult
 */


/** Bytes as "1,5 Mo" / "1.5 MB". @param {number} bytes */
export function formatSize(bytes) {
  const fr = currentLang() === "fr";
  const units = fr ? ["o", "Ko", "Mo", "Go"] : ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  const number = new Intl.NumberFormat(fr ? "fr-FR" : "en-GB", { maximumFractionDigits: unit ? 1 : 0 }).format(value);
  return `${number} ${units[unit]}`;
}

/** How a shared file is shown: played in the page, opened in a tab, or downloaded. @param {string} type */
export function presentation(type) {
  if (/^image\/(png|jpeg|gif|webp|avif)$/.test(type)) return "image";  // HEIC/HEIF: browsers cannot show them
  if (type.startsWith("audio/")) return "audio";
  if (type.startsWith("video/")) return "video";
  if (type === "application/pdf") return "pdf";
  return "download";
}

export class ChatPanel {
  /** @param {import("./protocol.js").SignalingClient} client */
  constructor(client) {
    this.client = client;
    this.toggle = byTestId("chat-toggle");
    this.badge = byTestId("chat-unread");
    this.panel = byTestId("chat-panel");
    this.log = byTestId("chat-log");
    this.form = /** @type {HTMLFormElement} */ (byTestId("chat-form"));
    this.input = /** @type {HTMLTextAreaElement} */ (byTestId("chat-input"));
    this.file = /** @type {HTMLInputElement} */ (byTestId("chat-file"));
    this.uploadBox = byTestId("chat-upload");
    this.progress = /** @type {HTMLProgressElement} */ (byTestId("chat-progress"));
    this.cancel = byTestId("chat-upload-cancel");
    this.error = byTestId("chat-error");
    /** @type {Map<string, ChatMessage>} every message, by id, in order */
    this.messages = new Map();
    this.unread = 0;
    this.loaded = false;
    this.maxChars = 4000;
    this.maxUpload = 100 * 1024 * 1024;
    /** @type {{abort: () => void, done: Promise<UploadResult>}|null} */
    this.upload = null;
    this.wire();
    this.renderBadge();
  }

  get open() { return !this.panel.hidden; }

  /** The role of this page ("practitioner" or "patient"). */
  get me() { return this.client.welcome?.role ?? ""; }

  wire() {
    this.toggle.addEventListener("click", () => this.setOpen(!this.open));
    byTestId("chat-close").addEventListener("click", () => { this.setOpen(false); this.toggle.focus(); });
    this.panel.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") { this.setOpen(false); this.toggle.focus(); }
    });
    this.form.addEventListener("submit", (ev) => { ev.preventDefault(); this.sendText(); });
    this.input.addEventListener("keydown", (ev) => {
      // Enter sends, Shift+Enter starts a new line
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); this.sendText(); }
    });
    this.file.addEventListener("change", () => {
      const chosen = this.file.files?.[0];
      this.file.value = ""; // the same file may be chosen again
      if (chosen) this.sendFile(chosen);
    });
    this.cancel.addEventListener("click", () => this.upload?.abort());
    this.client.addEventListener("chat-history", (ev) => this.onHistory(/** @type {CustomEvent} */ (ev).detail));
    this.client.addEventListener("chat-message", (ev) => this.onMessage(/** @type {CustomEvent} */ (ev).detail));
    this.client.addEventListener("error", (ev) => {
      const detail = /** @type {CustomEvent} */ (ev).detail;
      if (detail.ref_type === "chat") this.showError(t(detail.code === "rate-limited" ? "chat.rate" : "chat.refused"));
    });
    // after main.js has switched the language (its listener runs after this one)
    byTestId("lang-select").addEventListener("change", () => setTimeout(() => this.renderAll(), 0));
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute("aria-pressed", String(open));
    document.getElementById("call")?.classList.toggle("chat-open", open);
    if (open) {
      this.unread = 0;
      this.scrollDown();
      this.input.focus();
    }
    this.renderBadge();
  }

  /** @param {{messages: ChatMessage[], max_chars: number, max_upload_bytes: number}} history */
  onHistory(history) {
    this.maxChars = history.max_chars;
    this.maxUpload = history.max_upload_bytes;
    this.input.maxLength = history.max_chars;
    // after a reconnection, what arrived meanwhile from the other side counts as unread
    const fresh = history.messages.filter((m) => !this.messages.has(m.id) && this.counts(m));
    if (this.loaded && !this.open) this.unread += fresh.length;
    this.messages = new Map(history.messages.map((m) => [m.id, m]));
    this.loaded = true;
    this.renderAll();
    this.renderBadge();
  }

  /** @param {ChatMessage} message */
  onMessage(message) {
    if (this.messages.has(message.id)) return;
    this.messages.set(message.id, message);
    this.log.append(this.renderMessage(message));
    if (!this.open && this.counts(message)) this.unread++;
    this.renderBadge();
    this.scrollDown();
  }

  sendText() {
    const text = this.input.value;
    if (!text.trim()) return;
    if (text.length > this.maxChars) { this.showError(t("chat.too-long", { max: String(this.maxChars) })); return; }
    if (!this.client.chat(text)) { this.showError(t("chat.offline")); return; }
    this.input.value = "";
    this.showError("");
  }

  /** @param {File} file */
  async sendFile(file) {
    if (this.upload) { this.showError(t("chat.busy")); return; }
    if (file.size > this.maxUpload) {
      this.showError(t("chat.too-large", { max: formatSize(this.maxUpload) }));
      return;
    }
    this.showError("");
    const upload = uploadFile(location.pathname, file, (fraction) => {
      this.progress.value = fraction;
      this.progress.dataset.fraction = fraction.toFixed(3);
    });
    this.upload = upload;
    this.progress.value = 0;
    this.progress.dataset.fraction = "0";
    /** @type {HTMLElement} */ (this.uploadBox.querySelector(".chat-upload-name")).textContent = t("chat.uploading", { name: file.name });
    this.uploadBox.hidden = false;
    const { status, body } = await upload.done;
    this.upload = null;
    this.uploadBox.hidden = true;
    if (status === 201) return; // the chat-message arrives over the socket, to both sides
    const code = body?.error;
    if (code === "cancelled") this.showError(t("chat.cancelled"), "status");
    else if (code === "quota") this.showError(t(body?.scope === "side" ? "chat.quota-side" : "chat.quota-consultation"));
    else if (code === "closed") this.showError(t("chat.closed"));
    else if (status === 413) this.showError(t("chat.too-large", { max: formatSize(body?.max_bytes ?? this.maxUpload) }));
    else if (status === 415) this.showError(t("chat.type-refused"));
    else if (code === "disk-full") this.showError(t("chat.disk-full"));
    else this.showError(t("chat.upload-failed"));
  }

  /** @param {string} text @param {"alert"|"status"} [kind] */
  showError(text, kind = "alert") {
    this.error.textContent = text;
    this.error.hidden = !text;
    this.error.dataset.kind = kind;
  }

  renderBadge() {
    this.badge.textContent = this.unread > 99 ? "99+" : String(this.unread);
    this.badge.hidden = this.unread === 0;
    this.toggle.dataset.unread = String(this.unread);
    const label = this.unread ? `${t("chat.toggle")} — ${t("chat.unread", { n: String(this.unread) })}` : t("chat.toggle");
    this.toggle.setAttribute("aria-label", label);
    this.toggle.title = label;
  }

  renderAll() {
    this.log.replaceChildren(...[...this.messages.values()].map((m) => this.renderMessage(m)));
    this.renderBadge();
    this.scrollDown();
  }

  scrollDown() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  /** What the badge counts: what the other side wrote or shared (not system lines). @param {ChatMessage} message */
  counts(message) {
    return message.kind !== "system" && message.author !== this.me;
  }

  /** @param {string} author */
  who(author) {
    if (author === this.me) return t("chat.you");
    return t(author === "practitioner" ? "role.practitioner" : "role.patient");
  }

  /** @param {ChatMessage} message */
  renderMessage(message) {
    const li = document.createElement("li");
    li.dataset.testid = "chat-message";
    li.dataset.kind = message.kind;
    li.dataset.author = message.author;
    li.dataset.id = message.id;
    li.className = `chat-msg ${message.kind === "system" ? "system" : message.author === this.me ? "mine" : "theirs"}`;
    const time = document.createElement("time");
    time.dateTime = message.at;
    time.textContent = formatTime(message.at);
    if (message.kind === "system") {
      const text = document.createElement("span");
      text.className = "text";
      const params = message.params ?? {};
      // "Le patient a rejoint l'appel": the role as the subject of a sentence
      const vars = { ...params, who: t(params.role === "practitioner" ? "chat.who.practitioner" : "chat.who.patient") };
      const key = `chat.system.${message.key}${params.role && params.role === this.me ? ".self" : ""}`;
      text.textContent = t(key, vars);
      li.append(text, " ", time);
      return li;
    }
    const meta = document.createElement("p");
    meta.className = "meta";
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = this.who(message.author);
    meta.append(who, " ", time);
    li.append(meta);
    if (message.kind === "text") {
      const text = document.createElement("p");
      text.className = "text";
      text.textContent = message.text ?? "";
      li.append(text);
    } else {
      li.append(this.renderDocument(message.document ?? null));
    }
    return li;
  }

  /** @param {SharedDocument|null} doc */
  renderDocument(doc) {
    const box = document.createElement("div");
    box.className = "chat-file";
    if (!doc) {
      box.textContent = t("chat.removed");
      return box;
    }
    const url = fileUrl(location.pathname, doc.url);
    const caption = document.createElement("p");
    caption.className = "caption";
    caption.textContent = `${doc.name} · ${formatSize(doc.size)}`;
    const kind = presentation(doc.media_type);
    box.dataset.presentation = kind;
    if (kind === "image") {
      const img = document.createElement("img");
      img.dataset.testid = "chat-image";
      img.src = url;
      img.alt = doc.name;
      img.addEventListener("error", () => img.replaceWith(downloadLink(url, doc)));
      box.append(img, caption);
    } else if (kind === "audio" || kind === "video") {
      const media = document.createElement(kind);
      media.dataset.testid = `chat-${kind}`;
      media.controls = true;
      media.preload = "metadata";
      if (media instanceof HTMLVideoElement) media.playsInline = true;
      media.src = url;
      media.setAttribute("aria-label", doc.name);
      // a format this browser cannot play (e.g. some .mov): offer it as a download instead
      media.addEventListener("error", () => media.replaceWith(downloadLink(url, doc)));
      box.append(media, caption);
    } else if (kind === "pdf") {
      const link = document.createElement("a");
      link.dataset.testid = "chat-pdf";
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.textContent = t("chat.open-pdf", { name: doc.name });
      box.append(link, caption);
    } else {
      box.append(downloadLink(url, doc), caption);
    }
    return box;
  }
}

/** @param {string} url @param {SharedDocument} doc */
function downloadLink(url, doc) {
  const link = document.createElement("a");
  link.dataset.testid = "chat-download";
  link.href = url;
  link.download = doc.name;
  link.rel = "noopener noreferrer";
  link.textContent = t("chat.download", { name: doc.name });
  return link;
}

/** "14:03", or "12/03 14:03" for another day. @param {string} iso */
function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const locale = currentLang() === "fr" ? "fr-FR" : "en-GB";
  const time = date.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString(locale, { day: "2-digit", month: "2-digit" })} ${time}`;
}
