// @ts-check
/**
 * The practice pages (server-rendered): translation, language switch, and the
 * day list's live status.  Their strings come from /practice/strings.js (made
 * from signaling/practice/texts.py) and go through i18n.js like every other.
 */

import { watchArrivals } from "./arrivals.js";
import { findByTestId } from "./dom.js";
import { STRINGS, currentLang, setLang, t, translatePage } from "./i18n.js";
// @ts-ignore -- served by the server, not a file of web/
import table from "/practice/strings.js";

Object.assign(STRINGS, table);

/** The CSRF token every state-changing request of this page must carry. */
export function csrfToken() {
  const meta = /** @type {HTMLMetaElement|null} */ (document.querySelector('meta[name="csrf-token"]'));
  return meta ? meta.content : "";
}

/** @param {() => void} [after] what else follows the language (the tab title) */
function setupLanguage(after = () => {}) {
  const select = /** @type {HTMLSelectElement|null} */ (findByTestId("lang-select"));
  translatePage();
  if (!select) return;
  select.value = currentLang();
  select.addEventListener("change", () => {
    setLang(select.value === "en" ? "en" : "fr");
    translatePage();
    after();
  });
}

/**
 * A status cell's content: status text, then the waiting patient's connection verdict.
 * @param {HTMLElement} cell
 * @param {string} status
 * @param {string|null} readiness
 */
function renderStatus(cell, status, readiness) {
  cell.dataset.status = status;
  cell.dataset.readiness = readiness || "";
  const main = document.createElement("span");
  main.dataset.i18n = `status.${status}`;
  main.textContent = t(`status.${status}`);
  const parts = [main];
  if (readiness) {
    const extra = document.createElement("span");
    extra.dataset.i18n = `readiness.${readiness}`;
    extra.textContent = t(`readiness.${readiness}`);
    parts.push(document.createTextNode(" · "), extra);
  }
  cell.replaceChildren(...parts);
}

/**
 * The day list's live status: pushed by the arrivals stream (arrivals.js), with a poll
 * every few seconds as the fallback while no push arrived lately.
 */
function watchDay() {
  const section = /** @type {HTMLElement|null} */ (document.querySelector("[data-day-status]"));
  let pushedAt = 0;
  /** @param {Record<string, {status: string, readiness: string|null}>} data */
  const apply = (data) => {
    for (const row of document.querySelectorAll('[data-testid="day-item"]')) {
      const item = data[/** @type {HTMLElement} */ (row).dataset.consultationId || ""];
      const cell = /** @type {HTMLElement|null} */ (row.querySelector('[data-testid="consultation-status"]'));
      if (!item || !cell) continue;
      if (cell.dataset.status !== item.status && (item.status === "ended" || cell.dataset.status === "ended")) {
        location.reload(); // the action button changes too
        return;
      }
      renderStatus(cell, item.status, item.readiness);
    }
  };
  let pushed = "";
  const retitle = watchArrivals((data) => {
    const text = JSON.stringify(data);
    if (section && text !== pushed) apply(data);
    pushed = text;
  }, () => { pushedAt = Date.now(); });
  setupLanguage(retitle);
  if (!section) return;
  const url = /** @type {string} */ (section.dataset.dayStatus);
  let known = "";
  const refresh = async () => {
    if (Date.now() - pushedAt < 20000) return; // the stream is alive (it speaks every 15 s at least)
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) return;
      const data = await response.json();
      const text = JSON.stringify(data);
      if (text === known) return;
      known = text;
      apply(data);
    } catch {
      // offline for a moment: the next round tries again
    }
  };
  setInterval(refresh, 3000);
}

watchDay();
