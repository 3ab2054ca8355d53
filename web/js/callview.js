// @ts-check
/**
 * The call screen: the correspondent's picture (or a placeholder with their role),
 * their shared screen, the muted badge, status and quality lines, the share and
 * floating-window toggles, and the sources dialog.
 */

import { byTestId } from "./dom.js";
import { t } from "./i18n.js";
import { Pip } from "./pip.js";

export class CallView {
  /** @param {Pip} pip */
  constructor(pip) {
    this.pip = pip;
    this.remoteVideo = /** @type {HTMLVideoElement} */ (byTestId("remote-video"));
    this.remoteScreen = /** @type {HTMLVideoElement} */ (byTestId("remote-screen"));
    this.remoteMuted = byTestId("remote-muted");
    this.placeholder = byTestId("remote-placeholder");
    this.screenToggle = byTestId("screen-toggle");
    this.pipToggle = byTestId("pip-toggle");
    this.pipNote = byTestId("pip-note");
    this.devices = byTestId("devices");
    this.devicesDialog = /** @type {HTMLDialogElement} */ (byTestId("devices-dialog"));
    this.devicesFields = /** @type {HTMLElement} */ (document.querySelector("#devices-dialog .dialog-fields"));
    this.devicesClose = byTestId("devices-close");
    this.stage = /** @type {HTMLElement} */ (document.querySelector(".stage"));
    this.status = byTestId("call-status");
    this.quality = byTestId("connection-quality");
    this.toolbar = /** @type {HTMLElement} */ (document.querySelector(".toolbar"));
    this.hangup = byTestId("hangup");
    /** @type {HTMLElement} the toolbar's groups the mic and cam toggles and hang-up move into */
    this.mediaGroup = /** @type {HTMLElement} */ (this.toolbar.querySelector('[data-group="media"]'));
    this.endGroup = /** @type {HTMLElement} */ (this.toolbar.querySelector('[data-group="end"]'));
  }

  /**
   * @param {any} state the server's state
   * @param {string} peerRole the correspondent's role as a label ("Patient", "Praticien")
   * @param {string} peerName the correspondent as a phrase ("votre patient")
   * @param {boolean} mediaFailed
   */
  render(state, peerRole, peerName, mediaFailed) {
    const tracks = state.peer.tracks ?? { mic: true, camera: true, screen: false };
    const away = !state.peer.connected || state.peer.stage !== "in_call";
    // no frozen picture: the correspondent's role stands in while their camera is off or they are away
    const pictureOff = away || tracks.camera === false;
    this.placeholder.hidden = !pictureOff;
    this.remoteVideo.hidden = pictureOff; // hidden, not paused: its sound goes on
    /** @type {HTMLElement} */ (this.placeholder.querySelector(".initials")).textContent = peerRole.charAt(0).toUpperCase();
    /** @type {HTMLElement} */ (this.placeholder.querySelector(".who")).textContent =
      `${peerRole} · ${t(away ? "placeholder.away" : "placeholder.camera-off")}`;
    this.pip.mirror(this.placeholder);
    this.remoteMuted.hidden = !state.peer.connected || tracks.mic;
    this.remoteScreen.hidden = !tracks.screen;
    this.stage.classList.toggle("sharing", Boolean(tracks.screen));
    let text = "";
    if (!state.peer.connected) text = t("call.peer-away", { peer: peerName });
    else if (state.peer.stage !== "in_call") text = t("call.peer-left", { peer: peerName });
    else if (mediaFailed) text = t("call.media-failed");
    this.status.textContent = text;
    this.status.hidden = !text;
  }

  /** @param {{self: string, peer: string}} quality @param {string} peerName */
  renderQuality(quality, peerName) {
    const el = this.quality;
    el.dataset.level = quality.self;
    el.dataset.peerLevel = quality.peer;
    el.textContent = `${t("quality.self", { level: t(`quality.${quality.self}`) })} · ${t("quality.peer", { peer: peerName, level: t(`quality.${quality.peer}`) })}`;
  }

  /** @param {boolean} sharing @param {boolean} floating */
  renderToggles(sharing, floating) {
    for (const [button, on, key] of /** @type {const} */ ([[this.screenToggle, sharing, "screen"], [this.pipToggle, floating, "pip"]])) {
      button.setAttribute("aria-pressed", String(on));
      const label = t(`${key}.${on ? "on" : "off"}`);
      button.setAttribute("aria-label", label);
      button.title = label;
    }
  }

  /** A failure the person should know of (screen share refused, no floating window). @param {string} key */
  tell(key) {
    this.status.textContent = t(key);
    this.status.hidden = false;
  }

  /** @param {MediaStream|null} stream */
  setRemote(stream) {
    this.remoteVideo.srcObject = stream;
    if (stream) this.pip.setStream(stream);
  }

  /** @param {MediaStream|null} stream */
  setRemoteScreen(stream) {
    this.remoteScreen.srcObject = stream;
  }

  /** @param {() => Promise<void>} refresh the device lists (a device plugged in since) */
  wire(refresh) {
    this.devices.addEventListener("click", async () => {
      this.devicesDialog.showModal();
      await refresh();
    });
    this.devicesClose.addEventListener("click", () => this.devicesDialog.close());
    // no screen sharing or floating video on browsers without them (most phones)
    this.screenToggle.hidden = !navigator.mediaDevices?.getDisplayMedia;
    this.pipToggle.hidden = !Pip.supported;
  }
}
