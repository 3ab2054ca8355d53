// @ts-check
/** Local devices and the call's peer connection (no screen logic here). */

const MEDIA_TIMEOUT_MS = 10000;

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @returns {Promise<T>}
 */
function withTimeout(promise, ms) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(Object.assign(new Error("timeout"), { name: "TimeoutError" })), ms)),
  ]);
}

/**
 * Open the camera and microphone, falling back to what works.
 * @param {{micId?: string, camId?: string}} choice
 * @returns {Promise<{stream: MediaStream, problem: string|null}>} problem: an i18n key or null
 */
export async function openDevices(choice = {}) {
  const audio = choice.micId ? { deviceId: { exact: choice.micId } } : true;
  const video = {
    width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30, max: 30 },
    ...(choice.camId ? { deviceId: { exact: choice.camId } } : {}),
  };
  const md = navigator.mediaDevices;
  if (!md?.getUserMedia) return { stream: new MediaStream(), problem: "device.missing" };
  try {
    return { stream: await withTimeout(md.getUserMedia({ audio, video }), MEDIA_TIMEOUT_MS), problem: null };
  } catch (err) {
    const name = /** @type {Error} */ (err).name;
    if (name === "NotAllowedError" || name === "SecurityError") return { stream: new MediaStream(), problem: "device.denied" };
    // camera missing or busy: try the microphone alone, so the consultation still works
    try {
      const stream = await withTimeout(md.getUserMedia({ audio }), MEDIA_TIMEOUT_MS);
      return { stream, problem: "device.audio-only" };
    } catch (err2) {
      const name2 = /** @type {Error} */ (err2).name;
      if (name2 === "NotReadableError") return { stream: new MediaStream(), problem: "device.busy" };
      return { stream: new MediaStream(), problem: "device.missing" };
    }
  }
}

/** @returns {Promise<{mics: MediaDeviceInfo[], cams: MediaDeviceInfo[]}>} */
export async function listDevices() {
  const all = (await navigator.mediaDevices?.enumerateDevices?.()) ?? [];
  return {
    mics: all.filter((d) => d.kind === "audioinput"),
    cams: all.filter((d) => d.kind === "videoinput"),
    speakers: all.filter((d) => d.kind === "audiooutput"),
  };
}

/**
 * Calls onLevel(0..1) about 10 times a second with the microphone's level.
 * @param {MediaStream} stream
 * @param {(level: number) => void} onLevel
 * @returns {() => void} stop
 */
export function watchLevel(stream, onLevel) {
  const track = stream.getAudioTracks()[0];
  if (!track || typeof AudioContext === "undefined") return () => {};
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 4096; // ~85 ms: every sound between two reads is seen
  ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  let level = 0;
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let peak = 0;
    for (const v of buf) peak = Math.max(peak, Math.abs(v));
    // a peak meter that falls back slowly, like a sound engineer's: speech reads clearly
    level = track.enabled ? Math.max(Math.min(1, peak), level * 0.8) : 0;
    onLevel(level < 0.01 ? 0 : level);
  }, 80);
  return () => { clearInterval(timer); ctx.close(); };
}

/**
 * The peer connection to our SFU: audio then video, each carrying our track up
 * and the correspondent's down (docs/protocol.md), so it never renegotiates.
 */
export class Call extends EventTarget {
  /**
   * @param {import("./protocol.js").SignalingClient} client
   * @param {MediaStream} local
   */
  constructor(client, local) {
    super();
    this.client = client;
    this.local = local;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {Record<string, RTCRtpTransceiver>} */
    this.transceivers = {};
    /** @type {MediaStreamTrack|null} the screen being shared, if any */
    this.screen = null;
    this.remote = new MediaStream();
    this.onAnswer = (/** @type {any} */ ev) => this.pc?.setRemoteDescription({ type: "answer", sdp: ev.detail.sdp });
    client.addEventListener("answer", this.onAnswer);
  }

  /** (Re)start the media: a new peer connection and a new offer. */
  async start() {
    this.pc?.close();
    const welcome = this.client.welcome;
    const pc = new RTCPeerConnection({ iceServers: welcome?.ice_servers ?? [], iceTransportPolicy: welcome?.ice_transport_policy ?? "all" });
    this.pc = pc;
    const audioTrack = this.local.getAudioTracks()[0] ?? null;
    const videoTrack = this.local.getVideoTracks()[0] ?? null;
    const audio = pc.addTransceiver(audioTrack ?? "audio", { direction: "sendrecv", streams: [this.local] });
    const video = pc.addTransceiver(videoTrack ?? "video", { direction: "sendrecv", streams: [this.local] });
    const screen = pc.addTransceiver(this.screen ?? "video", { direction: "sendrecv" });
    preferCodec(video, "video/VP8");
    preferCodec(screen, "video/VP8");
    this.transceivers = { audio, video, screen };
    this.remote = new MediaStream([audio.receiver.track, video.receiver.track]);
    this.dispatchEvent(new CustomEvent("remote", { detail: this.remote }));
    this.dispatchEvent(new CustomEvent("remote-screen", { detail: new MediaStream([screen.receiver.track]) }));
    pc.onconnectionstatechange = () => this.dispatchEvent(new CustomEvent("state", { detail: pc.connectionState }));
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringDone(pc, 3000);
    if (this.pc !== pc) return;
    this.client.offer(/** @type {RTCSessionDescription} */ (pc.localDescription).sdp);
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState !== "connected") return;
      capBitrate(video.sender, (welcome?.max_video_kbps ?? 1500) * 1000);
      capBitrate(screen.sender, (welcome?.max_video_kbps ?? 1500) * 1000);
      capBitrate(audio.sender, (welcome?.max_audio_kbps ?? 32) * 1000);
    });
  }

  /**
   * Replace the outgoing track of one kind (device change), without renegotiation.
   * @param {MediaStreamTrack} track
   */
  async replaceTrack(track) {
    await this.transceivers[track.kind]?.sender.replaceTrack(track);
  }

  /**
   * Start or stop sending a shared screen (its own section: the camera goes on).
   * @param {MediaStreamTrack|null} track
   */
  async setScreen(track) {
    this.screen = track;
    const sender = this.transceivers.screen?.sender;
    await sender?.replaceTrack(track);
    if (sender && track) await capBitrate(sender, (this.client.welcome?.max_video_kbps ?? 1500) * 1000);
  }

  stop() {
    this.client.removeEventListener("answer", this.onAnswer);
    this.pc?.close();
    this.pc = null;
  }
}

/** @param {RTCRtpTransceiver} transceiver @param {string} mime */
function preferCodec(transceiver, mime) {
  const caps = globalThis.RTCRtpReceiver?.getCapabilities?.("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const first = caps.codecs.filter((c) => c.mimeType === mime);
  const rtx = caps.codecs.filter((c) => c.mimeType === "video/rtx");
  if (first.length) transceiver.setCodecPreferences([...first, ...rtx]);
}

/**
 * Resolves when ICE gathering completes (we send whole offers, no trickle), or after `ms`.
 * @param {RTCPeerConnection} pc @param {number} ms
 */
export function gatheringDone(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(undefined); }
    });
  });
}

/** @param {RTCRtpSender} sender @param {number} bps */
async function capBitrate(sender, bps) {
  const params = sender.getParameters();
  if (!sender.track || !params.encodings?.length) return;
  params.encodings[0].maxBitrate = bps;
  try { await sender.setParameters(params); } catch { /* not fatal: the browser keeps its own estimate */ }
}

/**
 * Ask the browser for a screen to share (bounded: without a user answer it may hang).
 * @returns {Promise<MediaStreamTrack>}
 */
export async function openScreen() {
  const stream = await withTimeout(
    navigator.mediaDevices.getDisplayMedia({ video: { width: { max: 1920 }, height: { max: 1080 }, frameRate: { max: 15 } }, audio: false }),
    60000,
  );
  return stream.getVideoTracks()[0];
}
