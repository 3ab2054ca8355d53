// @ts-check
/**
 * Recording in the page: the record toggle (for the roles that may record), the
 * `recording-indicator` shown on both sides for as long as a recording runs, the
 * consent dialog, and the `recording-seen` acknowledgement of the notice
 * (docs/protocol.md, "Recording"): the server writes nothing before the other side's
 * page has drawn the indicator.
 */

import { byTestId } from "./dom.js";
import { t } from "./i18n.js";
import { recordingView } from "./protocol.js";


export class RecordingUi {
  /** @param {import("./protocol.js").SignalingClient} client */
  constructor(client) {
    this.client = client;
    this.toggle = /** @type {HTMLButtonElement} */ (byTestId("record-toggle"));
    this.indicator = byTestId("recording-indicator");
    this.status = byTestId("recording-status");
    this.dialog = /** @type {HTMLDialogElement} */ (byTestId("recording-consent-dialog"));
    this.title = document.title;
    /** @type {string|null} the recording id this socket acknowledged */
    this.acked = null;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.statusTimer = undefined;
    /** @type {string|null} an id whose consent was answered (the dialog stays closed) */
    this.answered = null;
    this.toggle.addEventListener("click", () => this.client.record(!this.active()));
    byTestId("recording-consent-accept").addEventListener("click", () => this.answer(true));
    byTestId("recording-consent-refuse").addEventListener("click", () => this.answer(false));
    // Escape must not dodge the question: it counts as a refusal
    this.dialog.addEventListener("cancel", (ev) => { ev.preventDefault(); this.answer(false); });
    client.addEventListener("welcome", () => { this.acked = null; this.render(); });
    client.addEventListener("state", () => this.render());
    client.addEventListener("recording-refused", () => this.say(t("recording.refused"), 8000));
    client.addEventListener("error", (ev) => {
      const detail = /** @type {CustomEvent} */ (ev).detail;
      if (detail.ref_type === "record") this.say(t(detail.code === "disk-full" ? "recording.disk-full" : "recording.failed"), 8000);
    });
  }

  active() {
    return Boolean(this.client.state?.recording);
  }

  /** @param {boolean} accept */
  answer(accept) {
    const rec = this.client.state?.recording;
    if (rec) {
      this.answered = rec.id;
      this.client.send({ type: "recording-consent", recording: rec.id, accept });
    }
    if (this.dialog.open) this.dialog.close();
  }

  /** @param {string} text @param {number} ms */
  say(text, ms) {
    clearTimeout(this.statusTimer);
    this.status.textContent = text;
    this.status.hidden = false;
    this.statusTimer = setTimeout(() => { this.status.hidden = true; }, ms);
  }

  render() {
    const view = recordingView(this.client.welcome, this.client.state);
    const inCall = this.client.state?.self?.stage === "in_call";
    this.toggle.hidden = !(view.mayRecord && inCall);
    this.toggle.setAttribute("aria-pressed", String(view.state !== "off"));
    const label = t(`recording.toggle.${view.state === "off" ? "start" : view.state === "consent" ? "cancel" : "stop"}`);
    this.toggle.setAttribute("aria-label", label);
    this.toggle.title = label;
    // the visible word says what a press does: record, stop, cancel the request
    /** @type {HTMLElement} */ (this.toggle.querySelector(".label")).textContent = t(view.state === "off" ? "recording.toggle" : view.state === "consent" ? "recording.button.cancel" : "recording.button.stop");

    this.indicator.hidden = !view.indicator;
    this.indicator.dataset.state = view.state;
    /** @type {HTMLElement} */ (this.indicator.querySelector(".rec-text")).textContent =
      view.state === "notice" && view.mine ? t("recording.starting") : t("recording.on");
    document.title = view.indicator ? `● ${t("recording.short")} · ${this.title}` : this.title;

    if (view.askMe && this.answered !== view.id) {
      if (!this.dialog.open) this.dialog.showModal();
    } else if (this.dialog.open) {
      this.dialog.close();
    }
    if (view.state === "consent" && view.mine) this.say(t("recording.asking"), 60000);
    else if (view.state !== "off" && !this.status.hidden && this.status.textContent === t("recording.asking")) this.status.hidden = true;

    // the notice is on the page (and in the tab's title): tell the server, once per recording
    if (view.indicator && view.id && this.acked !== view.id) {
      const id = view.id;
      this.acked = id;
      const ack = () => this.client.send({ type: "recording-seen", recording: id });
      if (document.visibilityState === "visible") requestAnimationFrame(() => setTimeout(ack, 0));
      else ack();
    }
  }
}
