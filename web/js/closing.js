// @ts-check
/**
 * The closing page: import documents (several at once, each streamed as the
 * raw body of one request), remove them before closing, close the act.
 */

import { t, translatePage } from "./i18n.js";
import { findByTestId } from "./dom.js";
import { csrfToken } from "./practice.js";

const page = /** @type {HTMLElement} */ (findByTestId("closing-page"));
const token = page.dataset.token || "";
const base = `/c/${encodeURIComponent(token)}/closing`;
const list = /** @type {HTMLElement} */ (findByTestId("doc-list"));
const empty = /** @type {HTMLElement} */ (findByTestId("doc-empty"));
const input = /** @type {HTMLInputElement|null} */ (findByTestId("doc-import"));
const errorBox = /** @type {HTMLElement|null} */ (findByTestId("closing-error"));
const progress = /** @type {HTMLElement|null} */ (findByTestId("closing-progress"));
const closeButton = /** @type {HTMLButtonElement|null} */ (findByTestId("close-act"));
const result = /** @type {HTMLElement|null} */ (findByTestId("close-result"));

/** @param {string} message */
function showError(message) {
  if (!errorBox) return;
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

/** @param {number} size */
function humanSize(size) {
  if (size < 1024) return `${size} o`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} Ko`;
  return `${(size / 1024 / 1024).toFixed(1)} Mo`;
}

/** @param {{id: string, name: string, size: number, source: string}} doc */
function addItem(doc) {
  const li = document.createElement("li");
  li.dataset.testid = "doc-item";
  li.dataset.documentId = doc.id;
  const link = document.createElement("a");
  link.href = `/c/${encodeURIComponent(token)}/files/${doc.id}`;
  link.target = "_blank";
  link.rel = "noopener";
  link.textContent = doc.name;
  const meta = document.createElement("span");
  meta.className = "muted";
  meta.textContent = ` (${t("source." + doc.source)}, ${humanSize(doc.size)}) `;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.dataset.testid = "doc-remove";
  remove.dataset.documentId = doc.id;
  remove.dataset.i18n = "closing.remove";
  remove.textContent = t("closing.remove");
  remove.setAttribute("aria-label", `${t("closing.remove")} ${doc.name}`);
  // an imported document goes in the patient's link unless unticked
  const share = document.createElement("label");
  share.className = "share";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = true;
  box.dataset.testid = "doc-share";
  box.dataset.documentId = doc.id;
  share.append(box, ` ${t("closing.share")}`);
  li.append(link, meta, share, remove);
  list.append(li);
  empty.hidden = true;
}

/** Known refusals in the user's language, others as the server words them. @param {Response} response */
async function problem(response) {
  try {
    const body = await response.json();
    const key = `closing.error.${body.error}`;
    const text = t(key);
    return text !== key ? text : body.message || response.statusText;
  } catch {
    return response.statusText || String(response.status);
  }
}

/** @param {File} file */
async function upload(file) {
  const response = await fetch(`${base}/documents?name=${encodeURIComponent(file.name)}`, {
    method: "POST",
    headers: {
      "X-CSRF-Token": csrfToken(),
      "Content-Type": "application/octet-stream",
      Accept: "application/json",
    },
    body: file,
  });
  if (response.status !== 201) throw new Error(`${file.name}: ${await problem(response)}`);
  addItem(await response.json());
}

input?.addEventListener("change", async () => {
  const files = [...(input.files || [])];
  showError("");
  input.disabled = true;
  if (closeButton) closeButton.disabled = true;
  const failures = [];
  for (const [i, file] of files.entries()) {
    if (progress) progress.textContent = `${t("closing.uploading")} ${i + 1}/${files.length}`;
    try {
      await upload(file);
    } catch (err) {
      failures.push(/** @type {Error} */ (err).message);
    }
  }
  if (progress) progress.textContent = "";
  if (failures.length) showError(t("closing.upload-failed", { message: failures.join(" ; ") }));
  input.value = "";
  input.disabled = false;
  if (closeButton) closeButton.disabled = false;
  page.dataset.uploads = String(Number(page.dataset.uploads || "0") + files.length);
});

list.addEventListener("click", async (event) => {
  const button = /** @type {HTMLElement} */ (event.target);
  if (!(button instanceof HTMLButtonElement) || button.dataset.testid !== "doc-remove") return;
  button.disabled = true;
  const response = await fetch(`${base}/documents/${button.dataset.documentId}`, {
    method: "DELETE",
    headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json" },
  });
  if (response.ok) {
    button.closest("li")?.remove();
    empty.hidden = list.children.length > 0;
  } else {
    button.disabled = false;
    showError(t("closing.upload-failed", { message: await problem(response) }));
  }
});

closeButton?.addEventListener("click", async () => {
  closeButton.disabled = true;
  showError("");
  // what the patient's link gives: the ticked documents only
  const share = [...document.querySelectorAll('[data-testid="doc-share"]')]
    .filter((box) => /** @type {HTMLInputElement} */ (box).checked)
    .map((box) => /** @type {HTMLElement} */ (box).dataset.documentId);
  const response = await fetch(`${base}/close`, {
    method: "POST",
    headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json", "Content-Type": "application/json" },
    body: JSON.stringify({ share }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const key = body.error === "not-ended" ? "closing.not-ended" : `closing.error.${body.error}`;
    showError(t(key) !== key ? t(key) : body.message || response.statusText);
    closeButton.disabled = false;
    return;
  }
  const body = await response.json();
  page.dataset.state = "closed";
  for (const el of document.querySelectorAll('[data-testid="doc-remove"]')) el.remove();
  for (const el of document.querySelectorAll('[data-testid="doc-share"]')) /** @type {HTMLInputElement} */ (el).disabled = true;
  input?.closest(".stack")?.remove();
  closeButton.hidden = true;
  if (result) {
    result.dataset.mailQueued = String(body.mail_queued);
    result.dataset.i18n = body.mail_queued ? "closing.mail-queued" : "closing.no-mail";
    const closed = document.createElement("p");
    closed.dataset.testid = "act-closed";
    closed.dataset.i18n = "closing.closed";
    closed.setAttribute("role", "status");
    result.before(closed);
    result.hidden = false;
    translatePage();
  }
});
