// @ts-check
/**
 * The connection test against our server (docs/connection-test.md): a separate
 * peer connection with one unordered, unreliable data channel; round-trip
 * time, upload and download at ~1 Mbit/s.  No DOM here.
 */

import { gatheringDone } from "./media.js";
import { failed, jitter, lossPct, median, rateKbps, verdict } from "./verdict.js";

export const BOUND_MS = 10000;
const ICE_MS = 5000;
const CHANNEL_MS = 2000;
const PINGS = 15;
const PING_EVERY_MS = 40;
const PACKET_BYTES = 1000;
const PACKET_EVERY_MS = 8; // 1000 bytes every 8 ms: 1 Mbit/s
const UP_PACKETS = 250; // 2 s
const MAX_BUFFERED = 256 * 1024;

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Failure extends Error {
  /** @param {string} reason */
  constructor(reason) { super(reason); this.reason = reason; }
}

/**
 * Run the test; never rejects, never takes more than BOUND_MS.
 * @param {import("./protocol.js").SignalingClient} client
 * @returns {Promise<import("./verdict.js").NetResult>}
 */
export async function runNetTest(client) {
  if (typeof RTCPeerConnection === "undefined") return failed("unsupported");
  const probe = new Probe(client);
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let timer;
  const bound = new Promise((_, reject) => { timer = setTimeout(() => reject(new Failure("timeout")), BOUND_MS); });
  try {
    return await Promise.race([probe.measure(), bound]);
  } catch (err) {
    if (!(err instanceof Failure)) console.warn("connection test failed:", /** @type {Error} */ (err).name);
    return failed(err instanceof Failure ? err.reason : "server");
  } finally {
    clearTimeout(timer);
    probe.close();
  }
}

class Probe {
  /** @param {import("./protocol.js").SignalingClient} client */
  constructor(client) {
    this.client = client;
    const welcome = client.welcome;
    this.servers = /** @type {RTCIceServer[]} */ (welcome?.ice_servers ?? []);
    this.pc = new RTCPeerConnection({ iceServers: this.servers, iceTransportPolicy: welcome?.ice_transport_policy ?? "all" });
    this.dc = this.pc.createDataChannel("probe", { ordered: false, maxRetransmits: 0 });
    this.dc.binaryType = "arraybuffer";
    this.closed = false;
    /** @type {Map<number, number>} ping number -> sent at */
    this.pingSent = new Map();
    /** @type {number[]} */
    this.rtts = [];
    /** @type {Map<string, (msg: any) => void>} */
    this.waiting = new Map();
    this.down = { seen: new Set(), bytes: 0, first: 0, last: 0 };
    this.dc.onmessage = (ev) => this.onMessage(ev.data);
  }

  /** @param {string|ArrayBuffer} data */
  onMessage(data) {
    const now = performance.now();
    if (typeof data !== "string") {
      if (data.byteLength < 4) return;
      const seq = new DataView(data).getUint32(0);
      if (this.down.seen.has(seq)) return;
      if (!this.down.seen.size) this.down.first = now;
      this.down.last = now;
      this.down.seen.add(seq);
      this.down.bytes += data.byteLength;
      return;
    }
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (msg.t === "pong") {
      const sent = this.pingSent.get(msg.n);
      if (sent !== undefined) { this.rtts.push(now - sent); this.pingSent.delete(msg.n); }
      return;
    }
    this.waiting.get(msg.t)?.(msg);
  }

  /**
   * Send `msg` until a `kind` message comes back (control messages may be lost too).
   * @param {object} msg @param {string} kind @param {number} tries @param {number} everyMs
   */
  async request(msg, kind, tries, everyMs) {
    const answered = new Promise((resolve) => this.waiting.set(kind, resolve));
    for (let i = 0; i < tries; i++) {
      if (this.dc.readyState === "open") this.dc.send(JSON.stringify(msg));
      const got = await Promise.race([answered, sleep(everyMs).then(() => null)]);
      if (got) return got;
    }
    return null;
  }

  async measure() {
    await this.connect();
    const relay = await this.usesRelay();
    const { rtt, jit } = await this.pings();
    const up = await this.upload();
    const down = await this.download();
    if (this.dc.readyState === "open") this.dc.send(JSON.stringify({ t: "bye" }));
    const m = {
      reason: null,
      rtt_ms: rtt === null ? null : round(rtt),
      jitter_ms: jit === null ? null : round(jit),
      loss_pct: round(Math.max(up.loss, down.loss)),
      up_kbps: round(up.kbps),
      down_kbps: round(down.kbps),
      relay,
    };
    return { verdict: verdict(m), ...m };
  }

  async connect() {
    const pc = this.pc;
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringDone(pc, 2000);
    const id = `probe-${Math.random().toString(36).slice(2, 10)}`;
    const answer = new Promise((resolve, reject) => {
      const onAnswer = (/** @type {any} */ ev) => { done(); resolve(ev.detail.sdp); };
      const onError = (/** @type {any} */ ev) => { if (ev.detail.ref_type === "probe-offer") { done(); reject(new Failure("server")); } };
      const timer = setTimeout(() => { done(); reject(new Failure("server")); }, 3000);
      const done = () => {
        clearTimeout(timer);
        this.client.removeEventListener("probe-answer", onAnswer);
        this.client.removeEventListener("error", onError);
      };
      this.client.addEventListener("probe-answer", onAnswer);
      this.client.addEventListener("error", onError);
    });
    if (!this.client.send({ type: "probe-offer", sdp: /** @type {RTCSessionDescription} */ (pc.localDescription).sdp, id })) {
      answer.catch(() => {});
      throw new Failure("server");
    }
    await pc.setRemoteDescription({ type: "answer", sdp: /** @type {string} */ (await answer) });
    const connected = await until(() => pc.connectionState === "connected" || pc.connectionState === "failed", ICE_MS);
    if (!connected || pc.connectionState !== "connected") throw new Failure("ice");
    if (!(await until(() => this.dc.readyState === "open", CHANNEL_MS))) throw new Failure("channel");
  }

  /** Whether the selected candidate pair goes through a TURN relay; null without TURN servers. */
  async usesRelay() {
    const turn = this.servers.some((s) => [s.urls].flat().some((u) => /^turns?:/.test(String(u))));
    if (!turn) return null;
    const stats = await this.pc.getStats();
    /** @type {any} */
    let pair = null;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) stats.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
    const local = pair ? stats.get(pair.localCandidateId) : null;
    return local ? local.candidateType === "relay" : null;
  }

  async pings() {
    for (let n = 0; n < PINGS; n++) {
      this.pingSent.set(n, performance.now());
      this.dc.send(JSON.stringify({ t: "ping", n }));
      await sleep(PING_EVERY_MS);
    }
    await until(() => this.pingSent.size === 0, 500);
    return { rtt: median(this.rtts), jit: jitter(this.rtts) };
  }

  async upload() {
    const packet = new Uint8Array(PACKET_BYTES);
    const view = new DataView(packet.buffer);
    const start = performance.now();
    let seq = 0;
    while (seq < UP_PACKETS) {
      // paced against the clock: a late timer sends what is due, so the rate holds
      const due = Math.min(UP_PACKETS, Math.floor((performance.now() - start) / PACKET_EVERY_MS) + 1);
      for (; seq < due; seq++) {
        if (this.dc.readyState !== "open") throw new Failure("channel");
        // a full send buffer means the path cannot carry the rate: those packets count as lost
        if (this.dc.bufferedAmount > MAX_BUFFERED) continue;
        view.setUint32(0, seq);
        this.dc.send(packet);
      }
      await sleep(PACKET_EVERY_MS);
    }
    const result = await this.request({ t: "up-done", sent: UP_PACKETS }, "up-result", 5, 400);
    if (!result) return { kbps: 0, loss: 100 };
    return { kbps: Number(result.kbps) || 0, loss: lossPct(UP_PACKETS, Number(result.received) || 0) };
  }

  async download() {
    const done = new Promise((resolve) => this.waiting.set("down-done", resolve));
    // asked again until packets come: the request itself may be lost
    for (let i = 0; i < 5 && !this.down.seen.size; i++) {
      this.dc.send(JSON.stringify({ t: "down" }));
      await Promise.race([done, sleep(300)]);
    }
    const end = /** @type {any} */ (await Promise.race([done, sleep(3500).then(() => null)]));
    await sleep(150); // unordered: the last packets may come after down-done
    const sent = Number(end?.sent) || 250;
    const { seen, bytes, first, last } = this.down;
    return { kbps: rateKbps(bytes, seen.size, last - first), loss: lossPct(sent, seen.size) };
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.waiting.clear();
    this.pc.close();
  }
}

/** @param {number} v */
const round = (v) => Math.round(v * 10) / 10;

/** Poll `check` every 50 ms until true or `ms` pass. @param {() => boolean} check @param {number} ms */
async function until(check, ms) {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) return false;
    await sleep(50);
  }
  return true;
}
