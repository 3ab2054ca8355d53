// @ts-check
/**
 * The patient's consent to the teleconsultation, in the waiting room: the versioned
 * notice (sent by the server in `welcome`), accept / refuse, and the withdrawal.
 * Without consent the join buttons stay hidden (the server refuses them anyway) and a
 * refusal shows why and how to reach the practice (docs/protocol.md, "Consent").
 */

import { byTestId } from "./dom.js";
import { currentLang, t } from "./i18n.js";

export class ConsentUi {
  /** @param {import("./protocol.js").SignalingClient} client */
  constructor(client) {
    this.client = client;
    this.notice = byTestId("consent-notice");
    this.text = /** @type {HTMLElement} */ (this.notice.querySelector(".consent-text"));
    this.refused = byTestId("consent-refused");
    this.contact = /** @type {HTMLElement} */ (this.refused.querySelector(".consent-contact"));
    this.withdraw = /** @type {HTMLButtonElement} */ (byTestId("consent-withdraw"));
    /** @type {boolean} the patient asked to read the notice again after refusing */
    this.reviewing = false;
    byTestId("consent-accept").addEventListener("click", () => this.answer("given"));
    byTestId("consent-refuse").addEventListener("click", () => this.answer("refused"));
    byTestId("consent-review").addEventListener("click", () => { this.reviewing = true; this.render(); });
    this.withdraw.addEventListener("click", () => this.answer("withdrawn"));
  }

  /** @returns {any} */
  get welcome() { return this.client.welcome; }

  /** @param {"given"|"refused"|"withdrawn"} decision */
  answer(decision) {
    const version = this.welcome?.notices?.teleconsultation?.version;
    if (!version) return;
    this.reviewing = false;
    this.client.send({ type: "consent", decision, version });
  }

  /** The decision that counts now ("pending" until answered). */
  decision() {
    return this.client.state?.consent?.teleconsultation ?? "pending";
  }

  /** Whether joining is possible: always for the practitioner, after consenting for the patient. */
  allowsJoining() {
    return this.welcome?.role !== "patient" || this.decision() === "given";
  }

  /** Show the notice, the refusal page or nothing; call after the waiting room was drawn. */
  render() {
    const patient = this.welcome?.role === "patient";
    const notice = this.welcome?.notices?.teleconsultation;
    const decision = this.decision();
    const asking = patient && notice && (decision === "pending" || decision === "withdrawn" || this.reviewing);
    this.notice.hidden = !asking;
    if (notice) {
      this.notice.dataset.version = notice.version;
      this.text.textContent = currentLang() === "en" ? notice.en : notice.fr;
    }
    this.refused.hidden = !(patient && decision === "refused" && !this.reviewing);
    this.contact.textContent = this.welcome?.practice_contact
      ? t("consent.contact", { contact: this.welcome.practice_contact })
      : t("consent.contact-usual");
    this.withdraw.hidden = !(patient && decision === "given");
  }
}

/** The practitioner's view of the patient's consent, for the readiness card. @param {any} state */
export function consentOfPatient(state) {
  return state?.consent?.teleconsultation ?? "pending";
}
