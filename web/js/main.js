// @ts-check
/** The invitation page: waiting room, then the call, then the end. */

import { currentLang, setLang, t, translatePage } from "./i18n.js";
import { Call, listDevices, openDevices, watchLevel } from "./media.js";
import { SignalingClient, peerStatus, socketUrl } from "./protocol.js";

/** @param {string} id */
const byTestId = (id) => /** @type {HTMLElement} */ (document.querySelector(`[data-testid="${id}"]`));
/** @param {string} id */
const screen = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

const SCREENS = ["loading", "waiting", "call", "ended", "replaced"];
const DEVICE_KEY = "teleconsult.devices";

const ui = {
  preview: /** @type {HTMLVideoElement} */ (byTestId("local-preview")),
  localVideo: /** @type {HTMLVideoElement} */ (byTestId("local-video")),
  remoteVideo: /** @type {HTMLVideoElement} */ (byTestId("remote-video")),
  micSelect: /** @type {HTMLSelectElement} */ (byTestId("mic-select")),
  camSelect: /** @type {HTMLSelectElement} */ (byTestId("cam-select")),
  micToggle: byTestId("mic-toggle"),
  camToggle: byTestId("cam-toggle"),
  micLevel: /** @type {HTMLMeterElement} */ (byTestId("mic-level")),
  deviceError: byTestId("device-error"),
  peerStatus: byTestId("peer-status"),
  join: /** @type {HTMLButtonElement} */ (byTestId("join")),
  ready: /** @type {HTMLButtonElement} */ (byTestId("ready")),
  hangup: byTestId("hangup"),
  callStatus: byTestId("call-status"),
  banner: byTestId("connection-banner"),
  lang: /** @type {HTMLSelectElement} */ (byTestId("lang-select")),
  toolbar: /** @type {HTMLElement} */ (document.querySelector(".toolbar")),
  waitingRow: /** @type {HTMLElement[]} */ ([...document.querySelectorAll("#waiting .row")]),
};

const app = {
  client: new SignalingClient(socketUrl(location)),
  local: new MediaStream(),
  /** @type {Call|null} */
  call: null,
  stopLevel: () => {},
  /** @type {string|null} */
  deviceProblem: null,
  mediaFailed: false,
};

/** @param {string} id */
function show(id) {
  for (const s of SCREENS) screen(s).hidden = s !== id;
  // one mic and one cam toggle: they live in the toolbar during the call
  if (id === "call") ui.toolbar.prepend(ui.micToggle, ui.camToggle);
  else { ui.waitingRow[0].prepend(ui.micToggle); ui.waitingRow[1].prepend(ui.camToggle); }
}

function peerName() {
  return t(app.client.welcome?.role === "patient" ? "peer.practitioner" : "peer.patient");
}

function loadChoice() {
  try { return JSON.parse(localStorage.getItem(DEVICE_KEY) ?? "{}"); } catch { return {}; }
}

async function startDevices() {
  const { stream, problem } = await openDevices(loadChoice());
  app.local = stream;
  app.deviceProblem = problem;
  ui.deviceError.hidden = !problem;
  if (problem) ui.deviceError.textContent = t(problem);
  ui.preview.srcObject = stream;
  ui.localVideo.srcObject = stream;
  app.stopLevel();
  app.stopLevel = watchLevel(stream, (level) => {
    ui.micLevel.value = level;
    ui.micLevel.dataset.level = level.toFixed(2);
  });
  await fillDeviceLists();
  renderToggles();
}

async function fillDeviceLists() {
  const { mics, cams } = await listDevices();
  const fill = (/** @type {HTMLSelectElement} */ sel, /** @type {MediaDeviceInfo[]} */ list, /** @type {string|undefined} */ current) => {
    sel.replaceChildren(...list.map((d, i) => new Option(d.label || `${i + 1}`, d.deviceId)));
    if (!list.length) sel.replaceChildren(new Option(t("devices.none"), ""));
    if (current) sel.value = current;
  };
  fill(ui.micSelect, mics, app.local.getAudioTracks()[0]?.getSettings().deviceId);
  fill(ui.camSelect, cams, app.local.getVideoTracks()[0]?.getSettings().deviceId);
}

async function chooseDevices() {
  localStorage.setItem(DEVICE_KEY, JSON.stringify({ micId: ui.micSelect.value, camId: ui.camSelect.value }));
  const enabled = { audio: isOn(ui.micToggle), video: isOn(ui.camToggle) };
  for (const track of app.local.getTracks()) track.stop();
  await startDevices();
  for (const track of app.local.getTracks()) track.enabled = enabled[/** @type {"audio"|"video"} */ (track.kind)];
  renderToggles();
  for (const track of app.local.getTracks()) await app.call?.replaceTrack(track);
}

/** @param {HTMLElement} button */
const isOn = (button) => button.getAttribute("aria-pressed") === "true";

function renderToggles() {
  for (const [button, kind, key] of /** @type {const} */ ([[ui.micToggle, "audio", "mic"], [ui.camToggle, "video", "cam"]])) {
    const track = kind === "audio" ? app.local.getAudioTracks()[0] : app.local.getVideoTracks()[0];
    const on = Boolean(track?.enabled);
    button.setAttribute("aria-pressed", String(on));
    button.toggleAttribute("disabled", !track);
    const label = t(`${key}.${on ? "on" : "off"}`);
    button.setAttribute("aria-label", label);
    button.title = label;
  }
}

/** @param {"audio"|"video"} kind */
function toggle(kind) {
  const track = kind === "audio" ? app.local.getAudioTracks()[0] : app.local.getVideoTracks()[0];
  if (track) track.enabled = !track.enabled;
  renderToggles();
}

/** @param {any} state */
function render(state) {
  const stage = state.self.stage;
  if (stage === "ended" || state.consultation_state === "ended" || state.consultation_state === "closed") {
    leaveCall();
    show("ended");
    return;
  }
  if (stage === "in_call") {
    enterCall();
    renderCallStatus(state);
    return;
  }
  leaveCall();
  show("waiting");
  const status = peerStatus(state);
  ui.peerStatus.dataset.state = status;
  ui.peerStatus.textContent = t(`status.${status}`, { peer: peerName() });
  ui.ready.hidden = status !== "waiting-for-you";
  ui.join.hidden = status === "waiting-for-you";
  ui.join.disabled = stage === "joined";
}

/** @param {any} state */
function renderCallStatus(state) {
  let text = "";
  if (!state.peer.connected) text = t("call.peer-away", { peer: peerName() });
  else if (state.peer.stage !== "in_call") text = t("call.peer-left", { peer: peerName() });
  else if (app.mediaFailed) text = t("call.media-failed");
  ui.callStatus.textContent = text;
  ui.callStatus.hidden = !text;
}

function enterCall() {
  show("call");
  if (app.call) return;
  const call = new Call(app.client, app.local);
  app.call = call;
  call.addEventListener("remote", (ev) => { ui.remoteVideo.srcObject = /** @type {CustomEvent} */ (ev).detail; });
  call.start();
}

function leaveCall() {
  app.call?.stop();
  app.call = null;
  ui.remoteVideo.srcObject = null;
}

function wire() {
  ui.lang.value = currentLang();
  ui.lang.addEventListener("change", () => {
    setLang(ui.lang.value === "en" ? "en" : "fr");
    translatePage();
    renderToggles();
    if (app.client.state) render(app.client.state);
    if (app.deviceProblem) ui.deviceError.textContent = t(app.deviceProblem);
  });
  ui.micToggle.addEventListener("click", () => toggle("audio"));
  ui.camToggle.addEventListener("click", () => toggle("video"));
  ui.micSelect.addEventListener("change", chooseDevices);
  ui.camSelect.addEventListener("change", chooseDevices);
  navigator.mediaDevices?.addEventListener?.("devicechange", fillDeviceLists);
  ui.join.addEventListener("click", () => { ui.join.disabled = true; app.client.join(); });
  ui.ready.addEventListener("click", () => { ui.ready.disabled = true; app.client.ready(); });
  ui.hangup.addEventListener("click", () => app.client.hangup());

  const client = app.client;
  client.addEventListener("state", (ev) => { ui.ready.disabled = false; render(/** @type {CustomEvent} */ (ev).detail); });
  client.addEventListener("media", (ev) => {
    const state = /** @type {CustomEvent} */ (ev).detail.state;
    app.mediaFailed = state !== "connected";
    if (app.mediaFailed && app.call) app.call.start();
    if (client.state) render(client.state);
  });
  client.addEventListener("error", (ev) => {
    const detail = /** @type {CustomEvent} */ (ev).detail;
    console.warn("server refused a message:", detail.code, detail.message);
    ui.join.disabled = false;
    ui.ready.disabled = false;
  });
  client.addEventListener("replaced", () => { leaveCall(); show("replaced"); });
  client.addEventListener("connection", (ev) => {
    const online = /** @type {CustomEvent} */ (ev).detail.online;
    ui.banner.hidden = online;
    ui.banner.textContent = online ? "" : t("net.reconnecting");
    // back online: the server kept our place; restart media if we are in the call
    if (online && app.call) { app.call.stop(); app.call = null; }
  });
}

async function main() {
  translatePage();
  wire();
  await startDevices();
  app.client.connect();
}

// exposed for tests and debugging: no secrets in here
/** @type {any} */ (window).__teleconsult = app;
main();
