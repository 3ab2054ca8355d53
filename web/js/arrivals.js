// @ts-check
/**
 * Patient arrivals on the practitioner's day list and record page: the server pushes
 * the day's statuses and each arrival (GET /day/events, Server-Sent Events); an arrival
 * is announced in an ARIA live region (`arrival-notice`), in the tab title while the
 * patient waits, by an optional short tone (WebAudio, off by default, remembered) and by
 * a desktop notification when the practitioner allowed them (never the patient's name:
 * notifications show on locked screens).
 */

import { findByTestId } from "./dom.js";
import { t } from "./i18n.js";

const SOUND_KEY = "teleconsult.arrival-sound";

/** A short two-note chime, generated (no audio file). @param {AudioContext} context */
export function chime(context) {
  const gain = context.createGain();
  gain.connect(context.destination);
  const start = context.currentTime;
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.5);
  for (const [i, frequency] of [660, 880].entries()) {
    const tone = context.createOscillator();
    tone.frequency.value = frequency;
    tone.connect(gain);
    tone.start(start + i * 0.15);
    tone.stop(start + 0.5);
  }
}

/** The name shown for a consultation: its row on the day list, else the record's patient. @param {string} id */
function patientName(id) {
  const link = document.querySelector(`[data-consultation-id="${CSS.escape(id)}"] a`);
  const record = findByTestId("record-name");
  return (link || record)?.textContent?.trim() || "";
}

/**
 * Follow the page's event stream; `onStatus` gets every `status` event's data.
 * @param {(data: Record<string, {status: string, readiness: string|null}>) => void} onStatus
 * @param {() => void} onAlive called on every event, pings included
 * @returns {() => void} what to call after the language changed (the tab title)
 */
export function watchArrivals(onStatus, onAlive) {
  const panel = /** @type {HTMLElement|null} */ (document.querySelector("[data-arrivals]"));
  const notice = findByTestId("arrival-notice");
  if (!panel || !notice || typeof EventSource === "undefined") return () => {};
  const sound = /** @type {HTMLInputElement|null} */ (findByTestId("arrival-sound"));
  const notify = findByTestId("arrival-notifications");
  /** @type {AudioContext|null} */
  let audio = null;
  let announced = 0;
  let played = 0;
  let waiting = 0;

  const retitle = () => {
    const key = document.querySelector("title")?.dataset.i18n || "";
    const base = key ? t(key) : document.title;
    document.title = waiting ? `(${waiting}) ${t("arrival.title")} — ${base}` : base;
  };
  if (sound) {
    sound.checked = localStorage.getItem(SOUND_KEY) === "on";
    // the context is made during a click, so the browser lets it play later
    const prepare = () => { if (sound.checked && !audio && typeof AudioContext !== "undefined") audio = new AudioContext(); };
    sound.addEventListener("change", () => {
      localStorage.setItem(SOUND_KEY, sound.checked ? "on" : "off");
      prepare();
    });
    document.addEventListener("click", prepare, { once: true });
  }
  if (notify && "Notification" in window && Notification.permission === "default") {
    notify.hidden = false;
    notify.addEventListener("click", async () => {
      await Notification.requestPermission();
      notify.hidden = Notification.permission === "default";
    });
  }

  const source = new EventSource(/** @type {string} */ (panel.dataset.arrivals));
  source.addEventListener("ping", onAlive);
  source.addEventListener("status", (event) => {
    onAlive();
    const data = JSON.parse(/** @type {MessageEvent} */ (event).data);
    waiting = Object.values(data).filter((item) => item.status === "waiting-room").length;
    retitle();
    onStatus(data);
  });
  source.addEventListener("arrival", (event) => {
    const { consultation } = JSON.parse(/** @type {MessageEvent} */ (event).data);
    notice.textContent = t("arrival.announce", { name: patientName(consultation) });
    notice.dataset.consultationId = consultation;
    notice.dataset.count = String(++announced);
    if (sound?.checked && audio) {
      void audio.resume().then(() => {
        if (!audio) return;
        chime(audio);
        panel.dataset.chimes = String(++played);
      });
    }
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification(t("arrival.title"), { body: t("arrival.notification"), tag: consultation });
    }
  });
  return retitle;
}
