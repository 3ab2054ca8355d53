// @ts-check
/**
 * The invitation page: waiting room, then the call, then the end.
 *
 * Each screen's elements belong to its module (devices.js, waitingroom.js,
 * callview.js, chat.js, whiteboard.js, recording.js); this module keeps the
 * call's state, moves the shared controls between screens and wires the
 * signaling client's events to them.
 */

import { CallView } from "./callview.js";
import { ChatPanel } from "./chat.js";
import { Devices } from "./devices.js";
import { byTestId } from "./dom.js";
import { trapDialogFocus } from "./focustrap.js";
import { currentLang, setLang, t, translatePage } from "./i18n.js";
import { Call, openScreen } from "./media.js";
import { Pip } from "./pip.js";
import { RecordingUi } from "./recording.js";
import { SignalingClient, closingUrl, socketUrl } from "./protocol.js";
import { WaitingRoom } from "./waitingroom.js";
import { WhiteboardUI } from "./whiteboard.js";

const SCREENS = ["loading", "waiting", "call", "ended", "replaced"];

const client = new SignalingClient(socketUrl(location));
const devices = new Devices();
const waiting = new WaitingRoom(client);
const pip = new Pip(/** @type {HTMLVideoElement} */ (byTestId("remote-video")));
const view = new CallView(pip);
trapDialogFocus();
const recording = new RecordingUi(client);
const chat = new ChatPanel(client);
const board = new WhiteboardUI(client, view.stage, byTestId("whiteboard-toggle"));

const app = {
  client,
  /** @type {Call|null} */
  call: null,
  mediaFailed: false,
  /** @type {MediaStreamTrack|null} */
  screen: null,
  quality: { self: "unknown", peer: "unknown" },
  /** @type {string} the screen shown */
  screenId: "loading",
  get local() { return devices.local; },
};

/** @param {string} id */
function show(id) {
  for (const s of SCREENS) /** @type {HTMLElement} */ (document.getElementById(s)).hidden = s !== id;
  app.screenId = id;
  devices.meter(id === "waiting");
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
  const { micToggle, camToggle, micField, camField, speakerField, error } = devices;
  if (inCall && pip.bar) {
    for (const el of [micToggle, camToggle, view.hangup]) putIn(el, pip.bar, "last");
  } else if (inCall) {
    putIn(camToggle, view.mediaGroup, "first");
    putIn(micToggle, view.mediaGroup, "first");
    if (micToggle.nextElementSibling !== camToggle) micToggle.after(camToggle);
    putIn(view.hangup, view.endGroup, "last");
  } else {
    putIn(micToggle, waiting.rows[0], "first");
    putIn(camToggle, waiting.rows[1], "first");
    putIn(view.hangup, view.endGroup, "last");
  }
  if (inCall) {
    putIn(micField, view.devicesFields, "first");
    putIn(camField, view.devicesFields, "last");
    putIn(speakerField, view.devicesFields, "last");
    putIn(error, view.devicesFields, "last");
  } else {
    putIn(error, waiting.previewBox, "last");
    putBefore(micField, waiting.rows[0]);
    putBefore(camField, waiting.rows[1]);
    if (speakerField.previousElementSibling !== waiting.rows[1]) waiting.rows[1].after(speakerField);
    if (view.devicesDialog.open) view.devicesDialog.close();
  }
  view.pipNote.hidden = !(inCall && pip.bar);
  // the practitioner's view of the patient's readiness: in the waiting room, then above the call's controls
  if (inCall) putBefore(waiting.readinessCard, view.toolbar);
  else putBefore(waiting.readinessCard, waiting.peerStatus);
}

function peerName() {
  return t(client.welcome?.role === "patient" ? "peer.practitioner" : "peer.patient");
}

/** The correspondent's role, as a label ("Patient", "Praticien"): the page knows no names. */
function peerRole() {
  return t(client.welcome?.role === "patient" ? "role.practitioner" : "role.patient");
}

/**
 * Tell the server our devices and, after a test, its result: stored with the consultation
 * and shown to the practitioner. `test` null keeps the last stored result.
 * @param {import("./verdict.js").NetResult|null} test
 */
function sendReadiness(test) {
  client.send({ type: "readiness", mic: devices.state("audio"), camera: devices.state("video"), test });
}

/** Tell the server what we send, so the other side can show it (muted, sharing...). */
function sendTracks() {
  client.send({
    type: "tracks",
    mic: Boolean(devices.track("audio")?.enabled),
    camera: Boolean(devices.track("video")?.enabled),
    screen: Boolean(app.screen),
  });
  sendReadiness(null);
}

function renderToggles() {
  devices.renderToggles();
  view.renderToggles(Boolean(app.screen), pip.open);
}

async function togglePip() {
  try {
    if (pip.open) pip.close();
    else await pip.show();
  } catch (err) {
    console.warn("picture-in-picture failed:", /** @type {Error} */ (err).name);
    view.tell("pip.failed");
  }
  renderToggles();
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
    view.tell("screen.failed");
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

/** @param {any} state */
function render(state) {
  waiting.renderReadiness(state);
  const stage = state.self.stage;
  if (stage === "ended" || state.consultation_state === "ended" || state.consultation_state === "closed") {
    leaveCall();
    if (client.welcome?.role === "practitioner") {
      // the practitioner goes on to the consultation's closing page
      client.close();
      location.assign(closingUrl(location));
      return;
    }
    show("ended");
    return;
  }
  if (stage === "in_call") {
    enterCall();
    view.render(state, peerRole(), peerName(), app.mediaFailed);
    return;
  }
  leaveCall();
  show("waiting");
  waiting.renderStatus(state, peerName());
}

function enterCall() {
  show("call");
  if (app.call) return;
  const call = new Call(client, devices.local);
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
    if (client.state) view.render(client.state, peerRole(), peerName(), app.mediaFailed);
  });
  call.addEventListener("remote", (ev) => view.setRemote(/** @type {CustomEvent} */ (ev).detail));
  call.addEventListener("remote-screen", (ev) => view.setRemoteScreen(/** @type {CustomEvent} */ (ev).detail));
  call.start();
}

function leaveCall() {
  pip.close();
  app.call?.stop();
  app.call = null;
  view.setRemote(null);
  view.setRemoteScreen(null);
  if (app.screen) { app.screen.stop(); app.screen = null; renderToggles(); }
}

/**
 * Back in through the site's address after our node went away (docs/protocol.md): reopen
 * the page there, so chat files and board images come from a live node too. The stages
 * are stored, so the call resumes by itself after the reload.
 */
function reopenThroughSite() {
  const site = client.welcome?.site_url;
  if (!site || client.url === client.home || new URL(site).origin === location.origin) return;
  client.close();
  location.replace(new URL(location.pathname + location.search, site).href);
}

/**
 * Our socket was refused before we ever got in: when another node took the consultation
 * meanwhile (two people opening it on two nodes at once), the page's own address now
 * redirects there (307): reload to follow it. Offline, the fetch fails: keep retrying.
 */
async function followOwner() {
  try {
    const reply = await fetch(location.href, { redirect: "manual", cache: "no-store" });
    if (reply.type === "opaqueredirect") location.reload();
  } catch {
    // no network: the socket's retries go on
  }
}

function wire() {
  const lang = /** @type {HTMLSelectElement} */ (byTestId("lang-select"));
  lang.value = currentLang();
  lang.addEventListener("change", () => {
    setLang(lang.value === "en" ? "en" : "fr");
    translatePage();
    if (pip.win) translatePage(pip.win.document); // the buttons that float there
    devices.translate();
    renderToggles();
    if (client.state) render(client.state);
    view.renderQuality(app.quality, peerName());
    waiting.renderNetResult();
    board.translate();
    recording.render();
  });
  devices.wire(sendTracks);
  devices.onSwitched = async (stream) => {
    const call = app.call;
    if (!call) return;
    call.local = stream; // a media restart must offer the new tracks, not the stopped ones
    for (const track of stream.getTracks()) await call.replaceTrack(track);
    sendTracks();
  };
  waiting.wire();
  waiting.onTested = (result) => sendReadiness(result);
  view.wire(() => devices.fillLists());
  view.hangup.addEventListener("click", () => { pip.close(); client.hangup(); });
  view.pipToggle.addEventListener("click", togglePip);
  view.screenToggle.addEventListener("click", toggleScreen);
  pip.addEventListener("change", () => { placeControls(); renderToggles(); });

  client.addEventListener("welcome", reopenThroughSite);
  client.addEventListener("refused", followOwner);
  client.addEventListener("welcome", sendTracks);
  client.addEventListener("state", (ev) => { waiting.ready.disabled = false; render(/** @type {CustomEvent} */ (ev).detail); });
  client.addEventListener("media", (ev) => {
    const state = /** @type {CustomEvent} */ (ev).detail.state;
    app.mediaFailed = state !== "connected";
    // a restart under way (its offer not answered yet) already replaces the leg the server reports
    if (app.mediaFailed && app.call && app.call.pc?.connectionState !== "new") app.call.start();
    if (client.state) render(client.state);
  });
  client.addEventListener("error", (ev) => {
    const detail = /** @type {CustomEvent} */ (ev).detail;
    console.warn("server refused a message:", detail.code, detail.message);
    waiting.enableButtons();
  });
  client.addEventListener("quality", (ev) => {
    app.quality = /** @type {CustomEvent} */ (ev).detail;
    view.renderQuality(app.quality, peerName());
  });
  client.addEventListener("replaced", () => { leaveCall(); show("replaced"); });
  const banner = byTestId("connection-banner");
  client.addEventListener("connection", (ev) => {
    const online = /** @type {CustomEvent} */ (ev).detail.online;
    banner.hidden = online;
    banner.textContent = online ? "" : t("net.reconnecting");
    // back online: the server kept our place; restart media if we are in the call
    if (online && app.call) { app.call.stop(); app.call = null; }
  });
}

async function main() {
  translatePage();
  wire();
  await devices.start();
  renderToggles();
  client.connect();
}

// exposed for tests and debugging: no secrets in here
/** @type {any} */ (window).__teleconsult = app;
/** @type {any} */ (window).__teleconsultChat = chat;
main();
