// @ts-check
/**
 * The waiting room's own parts: the connection test and its result, the
 * practitioner's card of the patient's readiness, the correspondent's status
 * line and the two handshake buttons ("Accéder à la vidéo consultation", "Je suis prêt"),
 * which the patient gets only after accepting the teleconsultation notice (consent.js).
 */

import { ConsentUi, consentOfPatient } from "./consent.js";
import { byTestId } from "./dom.js";
import { t } from "./i18n.js";
import { runNetTest } from "./nettest.js";
import { peerStatus } from "./protocol.js";

/** @typedef {import("./verdict.js").NetResult} NetResult */

const NUMBERS = /** @type {const} */ ([
  ["rtt_ms", "rttMs", "net.rtt", "ms"], ["jitter_ms", "jitterMs", "net.jitter", "ms"], ["loss_pct", "lossPct", "net.loss", "%"],
  ["up_kbps", "upKbps", "net.up", "kbit/s"], ["down_kbps", "downKbps", "net.down", "kbit/s"],
]);

export class WaitingRoom {
  /** @param {import("./protocol.js").SignalingClient} client */
  constructor(client) {
    this.client = client;
    this.netTest = /** @type {HTMLButtonElement} */ (byTestId("net-test"));
    this.netResult = byTestId("net-test-result");
    this.readinessCard = byTestId("readiness-card");
    this.peerStatus = byTestId("peer-status");
    this.waitEstimate = byTestId("wait-estimate");
    this.join = /** @type {HTMLButtonElement} */ (byTestId("join"));
    this.ready = /** @type {HTMLButtonElement} */ (byTestId("ready"));
    this.consent = new ConsentUi(client);
    this.rows = /** @type {HTMLElement[]} */ ([...document.querySelectorAll("#waiting .row")]);
    this.previewBox = /** @type {HTMLElement} */ (document.querySelector("#waiting .preview"));
    /** @type {any} the last state shown (the wait line counts down from it) */
    this.lastState = null;
    /** @type {NetResult|null} the last connection test's result */
    this.result = null;
    /** called with a finished test's result (it is stored and shown to the practitioner) */
    this.onTested = (/** @type {NetResult} */ _result) => {};
  }

  async runTest() {
    this.netTest.disabled = true;
    this.result = null;
    this.renderNetResult();
    try {
      this.result = await runNetTest(this.client);
    } finally {
      this.netTest.disabled = false;
    }
    this.renderNetResult();
    this.onTested(this.result);
  }

  renderNetResult() {
    const el = this.netResult;
    const result = this.result;
    const text = /** @type {HTMLElement} */ (el.querySelector(".net-verdict"));
    const list = /** @type {HTMLElement} */ (el.querySelector("dl"));
    el.hidden = !result && !this.netTest.disabled;
    if (!result) {
      delete el.dataset.verdict;
      for (const [, attr] of NUMBERS) delete el.dataset[attr];
      text.textContent = this.netTest.disabled ? t("net.running") : "";
      list.replaceChildren();
      /** @type {HTMLDetailsElement} */ (el.querySelector("details")).hidden = true;
      return;
    }
    el.dataset.verdict = result.verdict;
    text.textContent = t(result.verdict === "failed" ? `net.failed.${result.reason}` : `net.${result.verdict}`);
    const rows = [];
    for (const [key, attr, label, unit] of NUMBERS) {
      const value = result[key];
      if (value === null) delete el.dataset[attr];
      else el.dataset[attr] = String(value);
      rows.push([t(label), value === null ? t("net.unknown") : `${value} ${unit}`]);
    }
    if (result.verdict !== "failed") rows.push([t("net.path"), t(result.relay ? "net.relay" : "net.direct")]);
    list.replaceChildren(...rows.flatMap(([dt, dd]) => {
      const a = document.createElement("dt"); a.textContent = dt;
      const b = document.createElement("dd"); b.textContent = dd;
      return [a, b];
    }));
    /** @type {HTMLDetailsElement} */ (el.querySelector("details")).hidden = false;
  }

  /** The practitioner sees the patient's devices and connection test (stored: survives reloads). @param {any} state */
  renderReadiness(state) {
    const card = this.readinessCard;
    const readiness = state?.peer?.readiness;
    if (this.client.welcome?.role !== "practitioner") { card.hidden = true; return; }
    // the patient's consent to the teleconsultation (issue 19), shown even before any device report
    const consentState = consentOfPatient(state);
    card.dataset.consent = consentState === "withdrawn" ? "refused" : consentState;
    const consentText = t(`readiness.consent.${consentState}`);
    if (!readiness) {
      card.textContent = t("readiness.consent-only", { consent: consentText });
      card.hidden = false;
      return;
    }
    const test = readiness.test;
    let conn = t("readiness.untested");
    if (test?.verdict === "failed") conn = t("readiness.failed");
    else if (test) {
      conn = t(`quality.${test.verdict}`) + (test.rtt_ms === null ? "" : `, ${Math.round(test.rtt_ms)} ms`);
      if (test.relay) conn += ` (${t("readiness.relay")})`;
    }
    const devices = readiness.mic === "on" && readiness.camera === "on"
      ? t("readiness.all-ready")
      : `${t(`readiness.mic.${readiness.mic}`)}, ${t(`readiness.camera.${readiness.camera}`)}`;
    card.textContent = `${t("readiness.line", { peer: t("readiness.of-patient"), conn, devices })} · ${consentText}`;
    card.dataset.verdict = test?.verdict ?? "none";
    card.dataset.mic = readiness.mic;
    card.dataset.camera = readiness.camera;
    if (test?.rtt_ms != null) card.dataset.rttMs = String(test.rtt_ms); else delete card.dataset.rttMs;
    if (test?.loss_pct != null) card.dataset.lossPct = String(test.loss_pct); else delete card.dataset.lossPct;
    card.title = test ? NUMBERS.map(([key, , label, unit]) => `${t(label)} : ${test[key] ?? "–"} ${unit}`).join(" · ") : "";
    card.hidden = false;
  }

  /** Where the handshake stands, from this side. @param {any} state @param {string} peerName */
  renderStatus(state, peerName) {
    const status = peerStatus(state);
    const allowed = this.consent.allowsJoining();
    this.peerStatus.dataset.state = status;
    const said = status === "waiting-for-you" && !allowed ? "needs-consent" : status;
    this.peerStatus.textContent = t(`status.${said}`, { peer: peerName });
    this.ready.hidden = status !== "waiting-for-you" || !allowed;
    this.join.hidden = status === "waiting-for-you" || !allowed;
    this.join.disabled = state.self.stage === "joined";
    this.consent.render();
    this.renderWait(state);
  }

  /**
   * The patient's estimated wait: told as soon as they are here (the practitioner's day
   * list announces the arrival), then the minutes left until the appointment.
   * @param {any} state
   */
  renderWait(state) {
    this.lastState = state;
    const line = this.waitEstimate;
    const at = this.client.welcome?.scheduled_at;
    if (this.client.welcome?.role !== "patient" || !at || !state || state.self.stage === "in_call"
        || state.peer.stage === "in_call") {
      line.hidden = true;
      return;
    }
    const when = new Date(at);
    const minutes = Math.ceil((when.getTime() - Date.now()) / 60000);
    const time = when.toLocaleTimeString(document.documentElement.lang || "fr", { hour: "2-digit", minute: "2-digit" });
    line.textContent = `${t("wait.told")} ${minutes > 0 ? t("wait.minutes", { time, minutes: String(minutes) }) : t("wait.soon", { time })}`;
    line.dataset.minutes = String(Math.max(0, minutes));
    line.hidden = false;
  }

  /** A refused message or a new state: the buttons may be pressed again. */
  enableButtons() {
    this.join.disabled = false;
    this.ready.disabled = false;
  }

  wire() {
    this.netTest.addEventListener("click", () => this.runTest());
    this.join.addEventListener("click", () => { this.join.disabled = true; this.client.join(); });
    this.ready.addEventListener("click", () => { this.ready.disabled = true; this.client.ready(); });
    setInterval(() => { if (!this.waitEstimate.hidden) this.renderWait(this.lastState); }, 30000); // the minutes go down
  }
}
