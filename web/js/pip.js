// @ts-check
/**
 * Picture-in-Picture: the correspondent's video floats above other windows.
 * Where the browser has Document Picture-in-Picture, the floating window also
 * carries the call's buttons (the screen moves the very same elements in);
 * elsewhere the remote <video> itself goes into the browser's PiP.
 *
 * Events: "change" (no detail) whenever it opens or closes.
 */

import { currentLang, t } from "./i18n.js";

/** @returns {any} the Document PiP API, or undefined */
const documentPip = () => /** @type {any} */ (window).documentPictureInPicture;

export class Pip extends EventTarget {
  /** @param {HTMLVideoElement} remoteVideo */
  constructor(remoteVideo) {
    super();
    this.remoteVideo = remoteVideo;
    /** @type {Window|null} the Document PiP window while open */
    this.win = null;
    /** @type {HTMLElement|null} where the screen puts its buttons while open */
    this.bar = null;
    /** @type {HTMLVideoElement|null} */
    this.video = null;
    /** @type {HTMLElement|null} */
    this.placeholder = null;
    const changed = () => this.dispatchEvent(new Event("change"));
    remoteVideo.addEventListener("enterpictureinpicture", changed);
    remoteVideo.addEventListener("leavepictureinpicture", changed);
  }

  /** Whether this browser can float a video at all. */
  static get supported() {
    return Boolean(documentPip()) || Boolean(document.pictureInPictureEnabled);
  }

  get open() {
    return Boolean(this.win) || (document.pictureInPictureElement === this.remoteVideo && this.remoteVideo.isConnected);
  }

  /** Open the floating window (needs a user gesture: call it from a click). */
  async show() {
    if (this.open) return;
    const api = documentPip();
    if (!api) {
      await this.remoteVideo.requestPictureInPicture();
      return;
    }
    const win = /** @type {Window} */ (await api.requestWindow({ width: 420, height: 340 }));
    const doc = win.document;
    doc.documentElement.lang = currentLang();
    doc.title = t("pip.title");
    const css = doc.createElement("link");
    css.rel = "stylesheet";
    css.href = new URL("/static/css/app.css", location.href).href;
    doc.head.append(css);
    doc.body.className = "pip-body";

    const stage = doc.createElement("div");
    stage.className = "pip-stage";
    const video = doc.createElement("video");
    video.className = "pip-video";
    video.dataset.testid = "pip-video";
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true; // the sound keeps playing from the main page
    video.setAttribute("aria-label", t("remote.label"));
    video.srcObject = this.remoteVideo.srcObject;
    const placeholder = doc.createElement("div");
    placeholder.className = "placeholder";
    placeholder.dataset.testid = "pip-placeholder";
    placeholder.hidden = true;
    const bar = doc.createElement("nav");
    bar.className = "toolbar pip-bar";
    bar.setAttribute("aria-label", t("call.toolbar"));
    stage.append(video, placeholder);
    doc.body.append(stage, bar);

    this.win = win;
    this.bar = bar;
    this.video = video;
    this.placeholder = placeholder;
    // closed by its own button or by the browser: the screen takes its buttons back first
    win.addEventListener("pagehide", () => { if (this.win === win) this.forget(); });
    video.play().catch(() => { /* autoplay of a muted video: not expected to fail */ });
    this.dispatchEvent(new Event("change"));
  }

  /** Close the floating window, if any (safe to call twice). */
  close() {
    const win = this.win;
    if (win) {
      this.forget(); // buttons go home before the window's document goes away
      win.close();
      return;
    }
    if (document.pictureInPictureElement) document.exitPictureInPicture().catch(() => {});
  }

  /** @param {MediaStream|null} stream the correspondent's camera (and sound) */
  setStream(stream) {
    if (this.video) this.video.srcObject = stream;
  }

  /**
   * Mirror the main stage's placeholder in the floating window.
   * @param {HTMLElement} mainPlaceholder
   */
  mirror(mainPlaceholder) {
    if (!this.placeholder || !this.video) return;
    this.placeholder.replaceChildren(...[...mainPlaceholder.childNodes].map((n) => n.cloneNode(true)));
    this.placeholder.hidden = mainPlaceholder.hidden;
    this.video.hidden = !mainPlaceholder.hidden;
  }

  forget() {
    this.win = null;
    this.bar = null;
    this.video = null;
    this.placeholder = null;
    this.dispatchEvent(new Event("change"));
  }
}
