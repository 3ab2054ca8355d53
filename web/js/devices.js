// @ts-check
/**
 * The local devices: microphone and camera (chosen, remembered, switched without
 * renegotiating), their on/off toggles, the preview and the microphone level; the
 * speaker (audio output: where the correspondent is heard, with a test sound), only
 * where the browser can choose it (`setSinkId`), remembered likewise.
 */

import { byTestId } from "./dom.js";
import { t } from "./i18n.js";
import { listDevices, openDevices, watchLevel } from "./media.js";

const DEVICE_KEY = "teleconsult.devices";
const SINK_SUPPORTED = typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;

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
    this.speakerField = /** @type {HTMLElement} */ (document.querySelector('[data-field="speaker"]'));
    this.speakerSelect = /** @type {HTMLSelectElement} */ (byTestId("speaker-select"));
    this.speakerTest = /** @type {HTMLButtonElement} */ (byTestId("speaker-test"));
    /** the elements whose sound goes to the chosen speaker: the correspondent, the test sound */
    this.sinks = [/** @type {HTMLMediaElement} */ (byTestId("remote-video"))];
    /** @type {HTMLAudioElement|null} */
    this.testSound = null;
    this.local = new MediaStream();
    /** @type {string|null} */
    this.problem = null;
    this.stopLevel = () => {};
    /** whether the microphone's meter runs (meter()) */
    this.metering = false;
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
    this.runMeter();
    await this.fillLists();
    this.renderToggles();
  }

  /**
   * Run the microphone's meter, only while it can be seen (the waiting room): its AudioContext keeps an
   * audio thread busy, which a call's own sound needs more on a weak device.
   * @param {boolean} on
   */
  meter(on) {
    if (on === this.metering) return;
    this.metering = on;
    this.runMeter();
  }

  /** (Re)start the meter on the current stream, or leave it stopped while it is not shown. */
  runMeter() {
    this.stopLevel();
    this.stopLevel = this.metering ? watchLevel(this.local, (level) => {
      this.micLevel.value = level;
      this.micLevel.dataset.level = level.toFixed(2);
    }) : () => {};
  }

  async fillLists() {
    const { mics, cams, speakers } = await listDevices();
    const fill = (/** @type {HTMLSelectElement} */ sel, /** @type {MediaDeviceInfo[]} */ list, /** @type {string|undefined} */ current) => {
      sel.replaceChildren(...list.map((d, i) => new Option(d.label || `${i + 1}`, d.deviceId)));
      if (!list.length) sel.replaceChildren(new Option(t("devices.none"), ""));
      if (current) sel.value = current;
    };
    fill(this.micSelect, mics, this.local.getAudioTracks()[0]?.getSettings().deviceId);
    fill(this.camSelect, cams, this.local.getVideoTracks()[0]?.getSettings().deviceId);
    // no choice where the browser cannot route sound (setSinkId) or names no output
    const canChoose = SINK_SUPPORTED && speakers.length > 0;
    this.speakerField.hidden = !canChoose;
    if (!canChoose) return;
    const wanted = this.speakerSelect.value || loadChoice().speakerId || "";
    fill(this.speakerSelect, speakers, undefined);
    this.speakerSelect.value = speakers.some((d) => d.deviceId === wanted) ? wanted : speakers[0].deviceId;
    await this.applySpeaker();
  }

  /** Route the correspondent's sound (and the test sound) to the chosen speaker. */
  async applySpeaker() {
    const id = this.speakerSelect.value;
    const elements = this.testSound ? [...this.sinks, this.testSound] : this.sinks;
    await Promise.all(elements.map(async (el) => {
      // @ts-ignore -- setSinkId is not in every DOM typing yet
      if (el.sinkId !== id) await el.setSinkId(id).catch(() => {}); // an output unplugged meanwhile: keep the current one
    }));
    this.speakerField.dataset.sinkId = id;
  }

  /** A short tone on the chosen speaker: generated (WebAudio), played through an audio element that follows the choice. */
  async playTestSound() {
    if (!this.testSound) {
      this.testSound = document.createElement("audio");
      this.testSound.hidden = true;
      this.testSound.dataset.role = "speaker-test";
      this.speakerField.append(this.testSound);
    }
    const context = new AudioContext();
    const out = context.createMediaStreamDestination();
    const tone = context.createOscillator();
    const gain = context.createGain();
    tone.frequency.value = 440;
    gain.gain.setValueAtTime(0.2, context.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, context.currentTime + 0.8);
    tone.connect(gain).connect(out);
    this.testSound.srcObject = out.stream;
    await this.applySpeaker();
    await this.testSound.play().catch(() => {});
    tone.start();
    tone.stop(context.currentTime + 0.8);
    tone.onended = () => { void context.close(); };
    this.speakerTest.dataset.played = String(Number(this.speakerTest.dataset.played || 0) + 1);
  }

  /** A source was picked (waiting room or the call's sources dialog): switch, never renegotiate. */
  choose() {
    const run = () => this._switch();
    this.switching = this.switching.then(run, run);
    return this.switching;
  }

  saveChoice() {
    localStorage.setItem(DEVICE_KEY, JSON.stringify({
      micId: this.micSelect.value, camId: this.camSelect.value, speakerId: this.speakerSelect.value || loadChoice().speakerId,
    }));
  }

  async _switch() {
    this.saveChoice();
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
    this.speakerSelect.addEventListener("change", () => { this.saveChoice(); void this.applySpeaker(); });
    this.speakerTest.addEventListener("click", () => this.playTestSound());
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.fillLists());
  }
}

function loadChoice() {
  try { return JSON.parse(localStorage.getItem(DEVICE_KEY) ?? "{}"); } catch { return {}; }
}
