// @ts-check
/**
 * The signaling client: one WebSocket, the messages of docs/protocol.md, and
 * reconnection.  No DOM here: the screens listen to its events.
 *
 * Events (CustomEvent, detail = the server message): one per server message type of
 * docs/protocol.md, named by its `type` ("welcome", "state", "answer", "media",
 * "quality", "error", "replaced", "reconnect", "chat-…", "recording-…", whiteboard messages...);
 * plus "connection" with detail {online: boolean} when the socket drops or comes back, and
 * "refused" when a socket could not open before any `welcome`.
 */

export const PROTOCOL_VERSION = 1;
const CLOSE_REPLACED = 4001;

export class SignalingClient extends EventTarget {
  /** @param {string} url WebSocket URL of this invitation */
  constructor(url) {
    super();
    /** the page's own node, and where the next attempt goes */
    this.home = url;
    this.url = url;
    /** @type {string|null} the same socket through the site's shared address (welcome.site_url) */
    this.site = null;
    /** the node said it is stopping (`reconnect`): go through the site's address next */
    this.moving = false;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.retries = 0;
    this.stopped = false;
    /** @type {any} */
    this.welcome = null;
    /** @type {any} */
    this.state = null;
  }

  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.retries = 0;
      this.dispatchEvent(new CustomEvent("connection", { detail: { online: true } }));
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === "welcome") {
        this.welcome = msg;
        this.site = msg.site_url ? siteSocketUrl(msg.site_url, this.home) : null;
      }
      if (msg.type === "reconnect") this.moving = true;
      if (msg.type === "state") this.state = msg;
      this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === CLOSE_REPLACED) {
        this.stopped = true;
        return;
      }
      if (this.stopped) return;
      this.dispatchEvent(new CustomEvent("connection", { detail: { online: false } }));
      // several nodes: a node that stopped (or died, or does not serve the call) is left for
      // the site's shared address, which sends us to a live node; attempts then alternate
      if (this.site && this.moving) {
        this.moving = false;
        this.url = this.site;
        this.retries = 0;
      } else if (this.site && !opened) {
        this.url = this.url === this.site ? this.home : this.site;
      } else if (!opened && !this.welcome) {
        // refused before we ever got in: maybe another node took the consultation meanwhile
        this.dispatchEvent(new CustomEvent("refused"));
      }
      // back off 0.5 s, 1 s, 2 s ... up to 5 s; a dropped network never loses one's place
      // (alternating with the site's address, each step covers one attempt on each)
      const step = this.site ? Math.floor(this.retries++ / 2) : this.retries++;
      const delay = Math.min(5000, 500 * 2 ** step);
      setTimeout(() => this.connect(), delay);
    };
  }

  close() {
    this.stopped = true;
    this.ws?.close();
  }

  /** @param {Record<string, unknown>} message */
  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  join() { return this.send({ type: "join" }); }
  ready() { return this.send({ type: "ready" }); }
  hangup() { return this.send({ type: "hangup" }); }
  /** @param {string} sdp */
  offer(sdp) { return this.send({ type: "offer", sdp }); }
  /** A chat message (docs/protocol.md `chat`). @param {string} text */
  chat(text) { return this.send({ type: "chat", text }); }

  // the whiteboard (docs/protocol.md, "Whiteboard"): coordinates are fractions 0..1 of the board
  /** @param {boolean} open */
  whiteboardOpen(open) { return this.send({ type: "whiteboard-open", open }); }
  /**
   * One chunk of a stroke being drawn; `end` finishes it.
   * @param {{stroke: string, page: number, color: string, width: number, points: number[], end: boolean}} chunk
   */
  whiteboardStroke(chunk) { return this.send({ type: "whiteboard-stroke", ...chunk }); }
  /** @param {string[]} strokes */
  whiteboardErase(strokes) { return this.send({ type: "whiteboard-erase", strokes }); }
  whiteboardUndo() { return this.send({ type: "whiteboard-undo" }); }
  whiteboardRedo() { return this.send({ type: "whiteboard-redo" }); }
  whiteboardClear() { return this.send({ type: "whiteboard-clear" }); }
  /** @param {number} page */
  whiteboardPage(page) { return this.send({ type: "whiteboard-page", page }); }
  whiteboardBackgroundRemove() { return this.send({ type: "whiteboard-background-remove" }); }
  whiteboardSave() { return this.send({ type: "whiteboard-save" }); }
  /** The pointer over the board, or null when it left. @param {number|null} x @param {number|null} y */
  pointer(x, y) { return this.send({ type: "pointer", x, y }); }
  /** Start (true) or stop (false) recording. @param {boolean} on */
  record(on) { return this.send({ type: "record", on }); }
}

/**
 * What the page shows about recording (docs/protocol.md, "Recording").
 * @param {any} welcome the `welcome` message (or null)
 * @param {any} state the last `state` message (or null)
 * @returns {{state: "off"|"consent"|"notice"|"recording", id: string|null, mine: boolean,
 *   mayRecord: boolean, indicator: boolean, askMe: boolean}}
 */
export function recordingView(welcome, state) {
  const rec = state?.recording ?? null;
  const role = welcome?.role ?? null;
  const mine = Boolean(rec && rec.by === role);
  const current = rec ? rec.state : "off";
  return {
    state: current,
    id: rec ? rec.id : null,
    mine,
    mayRecord: Boolean(welcome?.recording?.allowed),
    // from the notice on, both sides see it; nothing is written before the other side drew it
    indicator: current === "notice" || current === "recording",
    askMe: current === "consent" && !mine,
  };
}

/**
 * What the waiting room should show about the other side.
 * @param {{self: {stage: string}, peer: {connected: boolean, stage: string}}} state
 * @returns {"absent"|"waiting-room"|"waiting-for-you"|"invited"|"in-call"}
 */
export function peerStatus(state) {
  const { self, peer } = state;
  if (peer.stage === "joined") return "waiting-for-you";
  if (self.stage === "joined") return "invited";
  if (peer.stage === "in_call") return "in-call";
  return peer.connected ? "waiting-room" : "absent";
}

/**
 * The socket `home` through the site's shared address `site` ("https://teleconsult.example").
 * @param {string} site @param {string} home
 */
export function siteSocketUrl(site, home) {
  const scheme = site.startsWith("https:") ? "wss:" : "ws:";
  return `${scheme}//${new URL(site).host}${new URL(home).pathname}`;
}

/** WebSocket URL for the invitation page at `location`. @param {Location} location */
export function socketUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${location.pathname.replace(/\/$/, "")}/ws`;
}

/**
 * Upload a file to the consultation (POST /c/{token}/files, the raw file as body), with progress.
 * Resolves with the HTTP status and JSON body; status 0 with `error` "cancelled" or "network".
 * @param {string} pagePath the invitation page's path, /c/{token}
 * @param {Blob & {name?: string}} file
 * @param {(fraction: number) => void} onProgress
 * @returns {{done: Promise<{status: number, body: any}>, abort: () => void}}
 */
export function uploadFile(pagePath, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const url = `${pagePath.replace(/\/$/, "")}/files?name=${encodeURIComponent(file.name ?? "")}`;
  const done = new Promise((resolve) => {
    xhr.upload.addEventListener("progress", (ev) => { if (ev.lengthComputable && ev.total) onProgress(ev.loaded / ev.total); });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* an HTML error page */ }
      resolve({ status: xhr.status, body });
    });
    xhr.addEventListener("error", () => resolve({ status: 0, body: { error: "network" } }));
    xhr.addEventListener("abort", () => resolve({ status: 0, body: { error: "cancelled" } }));
  });
  xhr.open("POST", url);
  // the server decides the type from the bytes; this label is ignored
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.send(file);
  return { done, abort: () => xhr.abort() };
}

/** Where a shared document is read: its `url` is relative to the invitation link. @param {string} pagePath @param {string} url */
export function fileUrl(pagePath, url) {
  return `${pagePath.replace(/\/$/, "")}/${url}`;
}

/** The practitioner's closing page for the invitation page at `location`. @param {Location} location */
export function closingUrl(location) {
  return `${location.pathname.replace(/\/$/, "")}/closing`;
}

/** Where the invitation page at `location` uploads a whiteboard background. @param {Location} location */
export function boardUploadUrl(location) {
  return `${location.pathname.replace(/\/$/, "")}/whiteboard/background`;
}

/** A background page's PNG. @param {Location} location @param {string} background @param {number} page */
export function boardPageUrl(location, background, page) {
  return `${location.pathname.replace(/\/$/, "")}/whiteboard/${background}/${page}.png`;
}
