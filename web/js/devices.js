// @ts-check
/**
 * The local devices: microphone and camera (chosen, remembered, switched without
 * renegotiating), their on/off toggles, the preview and the microphone level.
 */

import { byTestId } from "./dom.js";
import { t } from "./i18n.js";
import { listDevices, openDevices, watchLevel } from "./media.js";

const DEVICE_KEY = "teleconsult.devices";

/** @param {HTMLElement} button */
export const isOn = (button) => button.getAttribute("aria-pressed") === "true";

export class Devices {
  constructor() {
    this.preview = /** @type {HTMLVideoElement} */ (byTestId("local-preview"));
    this.localVideo = /** @type {HTMLVideoElement} */ (byTestId("local-video"));
    this.micSelect = /** @type {HTMLSelectElement} */ (byTestId("mic-select"));
    this.camSelect = /** @type {HTMLSelectElement} */ (byTestId("cam-select"));
    this.micToggle = byTestId("mic-toggle");
    this.camToggle = byTestId("cam-toggle");
    this.micLevel = /** @type {HTMLMeterElement} */ (byTestId("mic-level"));
    this.error = byTestId("device-error");
    this.micField = /** @type {HTMLElement} */ (document.querySelector('.device-field[data-field="mic"]'));
    this.camField = /** @type {HTMLElement} */ (document.querySelector('.device-field[data-field="cam"]'));
    this.local = new MediaStream();
    /** @type {string|null} */
    this.problem = null;
    this.stopLevel = () => {};
    /** device changes run one after the other */
    this.switching = Promise.resolve();
    /** called with the new stream once a change of source is done (the call replaces its tracks) */
    this.onSwitched = async (/** @type {MediaStream} */ _stream) => {};
  }

  /** Open the remembered (or default) devices and show them. */
  async start() {
    const { stream, problem } = await openDevices(loadChoice());
    this.local = stream;
    this.problem = problem;
    this.error.hidden = !problem;
    if (problem) this.error.textContent = t(problem);
    this.preview.srcObject = stream;
    this.localVideo.srcObject = stream;
    this.stopLevel();
    this.stopLevel = watchLevel(stream, (level) => {
      this.micLevel.value = level;
      this.micLevel.dataset.level = level.toFixed(2);
    });
    await this.fillLists();
    this.renderToggles();
  }

  async fillLists() {
    const { mics, cams } = await listDevices();
    const fill = (/** @type {HTMLSelectElement} */ sel, /** @type {MediaDeviceInfo[]} */ list, /** @type {string|undefined} */ current) => {
      sel.replaceChildren(...list.map((d, i) => new Option(d.label || `${i + 1}`, d.deviceId)));
      if (!list.length) sel.replaceChildren(new Option(t("devices.none"), ""));
      if (current) sel.value = current;
    };
    fill(this.micSelect, mics, this.local.getAudioTracks()[0]?.getSettings().deviceId);
    fill(this.camSelect, cams, this.local.getVideoTracks()[0]?.getSettings().deviceId);
  }

  /** A source was picked (waiting room or the call's sources dialog): switch, never renegotiate. */
  choose() {
    const run = () => this._switch();
    this.switching = this.switching.then(run, run);
    return this.switching;
  }

  async _switch() {
    localStorage.setItem(DEVICE_KEY, JSON.stringify({ micId: this.micSelect.value, camId: this.camSelect.value }));
    const enabled = { audio: isOn(this.micToggle), video: isOn(this.camToggle) };
    for (const track of this.local.getTracks()) track.stop();
    await this.start();
    for (const track of this.local.getTracks()) track.enabled = enabled[/** @type {"audio"|"video"} */ (track.kind)];
    this.renderToggles();
    await this.onSwitched(this.local);
  }

  /** @param {"audio"|"video"} kind */
  track(kind) {
    return kind === "audio" ? this.local.getAudioTracks()[0] : this.local.getVideoTracks()[0];
  }

  /** @param {"audio"|"video"} kind @returns {"on"|"off"|"missing"} */
  state(kind) {
    const track = this.track(kind);
    if (!track || track.readyState === "ended") return "missing";
    return track.enabled ? "on" : "off";
  }

  /** @param {"audio"|"video"} kind */
  toggle(kind) {
    const track = this.track(kind);
    if (track) track.enabled = !track.enabled;
    this.renderToggles();
  }

  renderToggles() {
    for (const [button, kind, key] of /** @type {const} */ ([[this.micToggle, "audio", "mic"], [this.camToggle, "video", "cam"]])) {
      const track = this.track(kind);
      const on = Boolean(track?.enabled);
      button.setAttribute("aria-pressed", String(on));
      button.toggleAttribute("disabled", !track);
      const label = t(`${key}.${on ? "on" : "off"}`);
      button.setAttribute("aria-label", label);
      button.title = label;
    }
  }

  translate() {
    this.renderToggles();
    if (this.problem) this.error.textContent = t(this.problem);
  }

  /** @param {() => void} changed called after a toggle (tell the server what we send) */
  wire(changed) {
    this.micToggle.addEventListener("click", () => { this.toggle("audio"); changed(); });
    this.camToggle.addEventListener("click", () => { this.toggle("video"); changed(); });
    this.micSelect.addEventListener("change", () => this.choose());
    this.camSelect.addEventListener("change", () => this.choose());
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.fillLists());
  }
}

function loadChoice() {
  try { return JSON.parse(localStorage.getItem(DEVICE_KEY) ?? "{}"); } catch { return {}; }
}
