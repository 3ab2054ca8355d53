// @ts-check
/** The invitation page: waiting room, then the call, then the end. */

import { ChatPanel } from "./chat.js";
import { ConsentUi, consentOfPatient } from "./consent.js";
import { currentLang, setLang, t, translatePage } from "./i18n.js";
import { Call, listDevices, openDevices, openScreen, watchLevel } from "./media.js";
import { runNetTest } from "./nettest.js";
import { Pip } from "./pip.js";
import { RecordingUi } from "./recording.js";
import { SignalingClient, closingUrl, peerStatus, socketUrl } from "./protocol.js";
import { WhiteboardUI } from "./whiteboard.js";

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
  remoteScreen: /** @type {HTMLVideoElement} */ (byTestId("remote-screen")),
  remoteMuted: byTestId("remote-muted"),
  placeholder: byTestId("remote-placeholder"),
  screenToggle: byTestId("screen-toggle"),
  pipToggle: byTestId("pip-toggle"),
  pipNote: byTestId("pip-note"),
  devices: byTestId("devices"),
  devicesDialog: /** @type {HTMLDialogElement} */ (byTestId("devices-dialog")),
  devicesFields: /** @type {HTMLElement} */ (document.querySelector("#devices-dialog .dialog-fields")),
  devicesClose: byTestId("devices-close"),
  micField: /** @type {HTMLElement} */ (document.querySelector('.device-field[data-field="mic"]')),
  camField: /** @type {HTMLElement} */ (document.querySelector('.device-field[data-field="cam"]')),
  stage: /** @type {HTMLElement} */ (document.querySelector(".stage")),
  micSelect: /** @type {HTMLSelectElement} */ (byTestId("mic-select")),
  camSelect: /** @type {HTMLSelectElement} */ (byTestId("cam-select")),
  micToggle: byTestId("mic-toggle"),
  camToggle: byTestId("cam-toggle"),
  micLevel: /** @type {HTMLMeterElement} */ (byTestId("mic-level")),
  deviceError: byTestId("device-error"),
  previewBox: /** @type {HTMLElement} */ (document.querySelector("#waiting .preview")),
  peerStatus: byTestId("peer-status"),
  netTest: /** @type {HTMLButtonElement} */ (byTestId("net-test")),
  netResult: byTestId("net-test-result"),
  readinessCard: byTestId("readiness-card"),
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
  /** @type {MediaStreamTrack|null} */
  screen: null,
  quality: { self: "unknown", peer: "unknown" },
  /** @type {string} the screen shown */
  screenId: "loading",
  /** @type {import("./verdict.js").NetResult|null} the last connection test's result */
  netResult: null,
  /** device changes run one after the other */
  switching: Promise.resolve(),
};
const pip = new Pip(ui.remoteVideo);
const recording = new RecordingUi(app.client);
const consent = new ConsentUi(app.client);
const chat = new ChatPanel(app.client);
const board = new WhiteboardUI(app.client, ui.stage, byTestId("whiteboard-toggle"));

/** @param {string} id */
function show(id) {
  for (const s of SCREENS) screen(s).hidden = s !== id;
  app.screenId = id;
  placeControls();
}

/**
 * Move `el` to `parent` (first or last), unless it is already there: moving a
 * focused element would drop the keyboard focus.
 * @param {HTMLElement} el @param {HTMLElement} parent @param {"first"|"last"} where
 */
function putIn(el, parent, where) {
  if (el.parentElement === parent) return;
  if (where === "first") parent.prepend(el); else parent.append(el);
}

/** @param {HTMLElement} el @param {HTMLElement} next */
function putBefore(el, next) {
  if (el.nextElementSibling !== next) next.before(el);
}

/**
 * One element per control (same testids everywhere): the mic and cam toggles, the
 * source lists and their error live in the waiting room, then in the call (toolbar,
 * sources dialog); the toggles and hang-up in the floating window while it is open.
 */
function placeControls() {
  const inCall = app.screenId === "call";
  if (inCall && pip.bar) {
    for (const el of [ui.micToggle, ui.camToggle, ui.hangup]) putIn(el, pip.bar, "last");
  } else if (inCall) {
    putIn(ui.camToggle, ui.toolbar, "first");
    putIn(ui.micToggle, ui.toolbar, "first");
    if (ui.micToggle.nextElementSibling !== ui.camToggle) ui.micToggle.after(ui.camToggle);
    putIn(ui.hangup, ui.toolbar, "last");
  } else {
    putIn(ui.micToggle, ui.waitingRow[0], "first");
    putIn(ui.camToggle, ui.waitingRow[1], "first");
    putIn(ui.hangup, ui.toolbar, "last");
  }
  if (inCall) {
    putIn(ui.micField, ui.devicesFields, "first");
    putIn(ui.camField, ui.devicesFields, "last");
    putIn(ui.deviceError, ui.devicesFields, "last");
  } else {
    putIn(ui.deviceError, ui.previewBox, "last");
    putBefore(ui.micField, ui.waitingRow[0]);
    putBefore(ui.camField, ui.waitingRow[1]);
    if (ui.devicesDialog.open) ui.devicesDialog.close();
  }
  ui.pipNote.hidden = !(inCall && pip.bar);
  // the practitioner's view of the patient's readiness: in the waiting room, then above the call's controls
  if (inCall) putBefore(ui.readinessCard, ui.toolbar);
  else putBefore(ui.readinessCard, ui.peerStatus);
}

function peerName() {
  return t(app.client.welcome?.role === "patient" ? "peer.practitioner" : "peer.patient");
}

/** The correspondent's role, as a label ("Patient", "Praticien"): the page knows no names. */
function peerRole() {
  return t(app.client.welcome?.role === "patient" ? "role.practitioner" : "role.patient");
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

/** A source was picked (waiting room or the call's sources dialog): switch, never renegotiate. */
function chooseDevices() {
  app.switching = app.switching.then(switchDevices, switchDevices);
  return app.switching;
}

async function switchDevices() {
  localStorage.setItem(DEVICE_KEY, JSON.stringify({ micId: ui.micSelect.value, camId: ui.camSelect.value }));
  const enabled = { audio: isOn(ui.micToggle), video: isOn(ui.camToggle) };
  for (const track of app.local.getTracks()) track.stop();
  await startDevices();
  for (const track of app.local.getTracks()) track.enabled = enabled[/** @type {"audio"|"video"} */ (track.kind)];
  renderToggles();
  const call = app.call;
  if (!call) return;
  call.local = app.local; // a media restart must offer the new tracks, not the stopped ones
  for (const track of app.local.getTracks()) await call.replaceTrack(track);
  sendTracks();
}

/** @param {"audio"|"video"} kind @returns {"on"|"off"|"missing"} */
function deviceState(kind) {
  const track = kind === "audio" ? app.local.getAudioTracks()[0] : app.local.getVideoTracks()[0];
  if (!track || track.readyState === "ended") return "missing";
  return track.enabled ? "on" : "off";
}

/**
 * Tell the server our devices and, after a test, its result: stored with the consultation
 * and shown to the practitioner. `test` null keeps the last stored result.
 * @param {import("./verdict.js").NetResult|null} test
 */
function sendReadiness(test) {
  app.client.send({ type: "readiness", mic: deviceState("audio"), camera: deviceState("video"), test });
}

async function runTest() {
  ui.netTest.disabled = true;
  app.netResult = null;
  renderNetResult();
  try {
    app.netResult = await runNetTest(app.client);
  } finally {
    ui.netTest.disabled = false;
  }
  renderNetResult();
  sendReadiness(app.netResult);
}

const NUMBERS = /** @type {const} */ ([
  ["rtt_ms", "rttMs", "net.rtt", "ms"], ["jitter_ms", "jitterMs", "net.jitter", "ms"], ["loss_pct", "lossPct", "net.loss", "%"],
  ["up_kbps", "upKbps", "net.up", "kbit/s"], ["down_kbps", "downKbps", "net.down", "kbit/s"],
]);

function renderNetResult() {
  const el = ui.netResult;
  const result = app.netResult;
  const text = /** @type {HTMLElement} */ (el.querySelector(".net-verdict"));
  const list = /** @type {HTMLElement} */ (el.querySelector("dl"));
  el.hidden = !result && !ui.netTest.disabled;
  if (!result) {
    delete el.dataset.verdict;
    for (const [, attr] of NUMBERS) delete el.dataset[attr];
    text.textContent = ui.netTest.disabled ? t("net.running") : "";
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
function renderReadiness(state) {
  const card = ui.readinessCard;
  const readiness = state?.peer?.readiness;
  if (app.client.welcome?.role !== "practitioner") { card.hidden = true; return; }
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

/** @param {HTMLElement} button */
const isOn = (button) => button.getAttribute("aria-pressed") === "true";

/** Tell the server what we send, so the other side can show it (muted, sharing...). */
function sendTracks() {
  app.client.send({
    type: "tracks",
    mic: Boolean(app.local.getAudioTracks()[0]?.enabled),
    camera: Boolean(app.local.getVideoTracks()[0]?.enabled),
    screen: Boolean(app.screen),
  });
  sendReadiness(null);
}

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
  const sharing = Boolean(app.screen);
  ui.screenToggle.setAttribute("aria-pressed", String(sharing));
  const label = t(`screen.${sharing ? "on" : "off"}`);
  ui.screenToggle.setAttribute("aria-label", label);
  ui.screenToggle.title = label;
  const floating = pip.open;
  ui.pipToggle.setAttribute("aria-pressed", String(floating));
  const pipLabel = t(`pip.${floating ? "on" : "off"}`);
  ui.pipToggle.setAttribute("aria-label", pipLabel);
  ui.pipToggle.title = pipLabel;
}

async function togglePip() {
  try {
    if (pip.open) pip.close();
    else await pip.show();
  } catch (err) {
    console.warn("picture-in-picture failed:", /** @type {Error} */ (err).name);
    ui.callStatus.textContent = t("pip.failed");
    ui.callStatus.hidden = false;
  }
  renderToggles();
}

async function openDevicesDialog() {
  ui.devicesDialog.showModal();
  await fillDeviceLists(); // a device plugged in since
}

async function toggleScreen() {
  if (app.screen) return stopScreen();
  try {
    const track = await openScreen();
    app.screen = track;
    // the browser's own "stop sharing" bar ends the track
    track.addEventListener("ended", () => { if (app.screen === track) stopScreen(); });
    await app.call?.setScreen(track);
  } catch (err) {
    console.warn("screen share failed:", /** @type {Error} */ (err).name);
    ui.callStatus.textContent = t("screen.failed");
    ui.callStatus.hidden = false;
  }
  renderToggles();
  sendTracks();
}

async function stopScreen() {
  const track = app.screen;
  app.screen = null;
  track?.stop();
  await app.call?.setScreen(null);
  renderToggles();
  sendTracks();
}

/** @param {"audio"|"video"} kind */
function toggle(kind) {
  const track = kind === "audio" ? app.local.getAudioTracks()[0] : app.local.getVideoTracks()[0];
  if (track) track.enabled = !track.enabled;
  renderToggles();
  sendTracks();
}

/** @param {any} state */
function render(state) {
  renderReadiness(state);
  const stage = state.self.stage;
  if (stage === "ended" || state.consultation_state === "ended" || state.consultation_state === "closed") {
    leaveCall();
    if (app.client.welcome?.role === "practitioner") {
      // the practitioner goes on to the consultation's closing page
      app.client.close();
      location.assign(closingUrl(location));
      return;
    }
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
  const said = status === "waiting-for-you" && !consent.allowsJoining() ? "needs-consent" : status;
  ui.peerStatus.textContent = t(`status.${said}`, { peer: peerName() });
  ui.ready.hidden = status !== "waiting-for-you" || !consent.allowsJoining();
  ui.join.hidden = status === "waiting-for-you" || !consent.allowsJoining();
  ui.join.disabled = stage === "joined";
  consent.render();
}

function renderQuality() {
  const el = byTestId("connection-quality");
  const { self, peer } = app.quality;
  el.dataset.level = self;
  el.dataset.peerLevel = peer;
  el.textContent = `${t("quality.self", { level: t(`quality.${self}`) })} · ${t("quality.peer", { peer: peerName(), level: t(`quality.${peer}`) })}`;
}

/** @param {any} state */
function renderCallStatus(state) {
  const tracks = state.peer.tracks ?? { mic: true, camera: true, screen: false };
  const away = !state.peer.connected || state.peer.stage !== "in_call";
  // no frozen picture: the correspondent's role stands in while their camera is off or they are away
  const pictureOff = away || tracks.camera === false;
  ui.placeholder.hidden = !pictureOff;
  ui.remoteVideo.hidden = pictureOff; // hidden, not paused: its sound goes on
  const who = peerRole();
  /** @type {HTMLElement} */ (ui.placeholder.querySelector(".initials")).textContent = who.charAt(0).toUpperCase();
  /** @type {HTMLElement} */ (ui.placeholder.querySelector(".who")).textContent =
    `${who} · ${t(away ? "placeholder.away" : "placeholder.camera-off")}`;
  pip.mirror(ui.placeholder);
  ui.remoteMuted.hidden = !state.peer.connected || tracks.mic;
  ui.remoteScreen.hidden = !tracks.screen;
  ui.stage.classList.toggle("sharing", Boolean(tracks.screen));
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
  call.screen = app.screen;
  // the media path broke (network change, ICE failure): a new offer rebuilds it
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let retry;
  call.addEventListener("state", (ev) => {
    const state = /** @type {CustomEvent} */ (ev).detail;
    clearTimeout(retry);
    app.mediaFailed = state === "failed" || state === "disconnected";
    if (state === "failed") retry = setTimeout(() => app.call === call && call.start(), 500);
    else if (state === "disconnected") retry = setTimeout(() => app.call === call && call.start(), 4000);
    if (app.client.state) renderCallStatus(app.client.state);
  });
  call.addEventListener("remote", (ev) => {
    const stream = /** @type {MediaStream} */ (/** @type {CustomEvent} */ (ev).detail);
    ui.remoteVideo.srcObject = stream;
    pip.setStream(stream);
  });
  call.addEventListener("remote-screen", (ev) => { ui.remoteScreen.srcObject = /** @type {CustomEvent} */ (ev).detail; });
  call.start();
}

function leaveCall() {
  pip.close();
  app.call?.stop();
  app.call = null;
  ui.remoteVideo.srcObject = null;
  ui.remoteScreen.srcObject = null;
  if (app.screen) { app.screen.stop(); app.screen = null; renderToggles(); }
}

function wire() {
  ui.lang.value = currentLang();
  ui.lang.addEventListener("change", () => {
    setLang(ui.lang.value === "en" ? "en" : "fr");
    translatePage();
    if (pip.win) translatePage(pip.win.document); // the buttons that float there
    renderToggles();
    if (app.client.state) render(app.client.state);
    if (app.deviceProblem) ui.deviceError.textContent = t(app.deviceProblem);
    renderQuality();
    renderNetResult();
    board.translate();
    recording.render();
  });
  ui.netTest.addEventListener("click", runTest);
  ui.micToggle.addEventListener("click", () => toggle("audio"));
  ui.camToggle.addEventListener("click", () => toggle("video"));
  ui.micSelect.addEventListener("change", chooseDevices);
  ui.camSelect.addEventListener("change", chooseDevices);
  navigator.mediaDevices?.addEventListener?.("devicechange", fillDeviceLists);
  ui.join.addEventListener("click", () => { ui.join.disabled = true; app.client.join(); });
  ui.ready.addEventListener("click", () => { ui.ready.disabled = true; app.client.ready(); });
  ui.hangup.addEventListener("click", () => { pip.close(); app.client.hangup(); });
  ui.pipToggle.addEventListener("click", togglePip);
  pip.addEventListener("change", () => { placeControls(); renderToggles(); });
  ui.devices.addEventListener("click", openDevicesDialog);
  ui.devicesClose.addEventListener("click", () => ui.devicesDialog.close());
  // no screen sharing or floating video on browsers without them (most phones)
  ui.screenToggle.hidden = !navigator.mediaDevices?.getDisplayMedia;
  ui.pipToggle.hidden = !Pip.supported;
  ui.screenToggle.addEventListener("click", toggleScreen);

  const client = app.client;
  client.addEventListener("welcome", sendTracks);
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
  client.addEventListener("quality", (ev) => {
    app.quality = /** @type {CustomEvent} */ (ev).detail;
    renderQuality();
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
/** @type {any} */ (window).__teleconsultChat = chat;
main();
